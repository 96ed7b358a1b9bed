/*-------------------------------------------------------------------------
 *
 * replay.c
 *	  txpipe.replay_rejects(): re-runs stored rejects of a pipeline through
 *	  its current plan (contract and routes).
 *
 * The caller must own the pipeline (be that role, a member of it or a
 * superuser: txpipe._require_owner decides, run as the owner of txpipe's
 * tables with the caller's oid, as manage.c does).  Rejects are taken in
 * batches of txpipe.batch_size in reject_id order, up to the last reject
 * stored when the call began (so the rejects a replay stores are not
 * replayed by the same call).  A batch is claimed by setting replayed_at
 * (FOR UPDATE SKIP LOCKED: two replays never take the same reject), routed
 * with source 'replay' as the pipeline's owner, then each claimed reject
 * gets its replay_outcome (accepted, rejected, duplicate), all in the
 * caller's transaction.  A claimed reject is never matched by the
 * deduplication of new rejects (router.c), so a record that fails again is
 * stored as a new reject with its new reason, unless an identical reject
 * not replayed yet is stored, whose count it then adds to.  too_large
 * rejects keep only a prefix of the record: they are not replayed, only
 * counted as skipped.  A reject with payload_raw is replayed from those
 * bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(txpipe_replay_rejects);

#define REPLAY_FILTER \
	" r.pipeline OPERATOR(pg_catalog.=) $1 AND r.replayed_at IS NULL " \
	" AND r.reject_id OPERATOR(pg_catalog.>) $2 AND r.reject_id OPERATOR(pg_catalog.<=) $3 " \
	" AND ($4 IS NULL OR r.error_code OPERATOR(pg_catalog.=) $4) " \
	" AND ($5 IS NULL OR r.received_at OPERATOR(pg_catalog.>=) $5) " \
	" AND ($6 IS NULL OR r.received_at OPERATOR(pg_catalog.<) $6) " \
	" AND ($7 IS NULL OR r.source OPERATOR(pg_catalog.=) $7) "

typedef struct Claimed
{
	int64		id;
	char	   *data;
	int			len;
	bool		raw;
} Claimed;

static int
claimed_cmp(const void *a, const void *b)
{
	int64		x = ((const Claimed *) a)->id;
	int64		y = ((const Claimed *) b)->id;

	return (x > y) - (x < y);
}

Datum
txpipe_replay_rejects(PG_FUNCTION_ARGS)
{
	char	   *pipeline;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Datum		args[8];
	char		argnulls[9] = "        ";
	Oid			types[8] = {TEXTOID, INT8OID, INT8OID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	TEXTOID, INT4OID};
	Oid			owner_types[2] = {TEXTOID, OIDOID};
	Datum		owner_args[2];
	Oid			mark_types[2] = {INT8ARRAYOID, TEXTARRAYOID};
	SPIPlanPtr	claim_plan;
	SPIPlanPtr	mark_plan;
	TxIdentity	id;
	TxCounts	counts = {0};
	int64		replayed = 0;
	int64		skipped = 0;
	int64		hi;
	bool		isnull;
	int			batch = Max(txpipe_batch_size, 1);
	MemoryContext work;
	MemoryContext old;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the pipeline of replay_rejects must not be null")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	pipeline = text_to_cstring(PG_GETARG_TEXT_PP(0));

	args[0] = CStringGetTextDatum(pipeline);
	args[1] = Int64GetDatum(0);
	for (int i = 1; i <= 4; i++)
	{
		args[2 + i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);
		argnulls[2 + i] = PG_ARGISNULL(i) ? 'n' : ' ';
	}
	args[7] = Int32GetDatum(batch);

	work = AllocSetContextCreate(CurrentMemoryContext, "txpipe replay", ALLOCSET_DEFAULT_SIZES);
	txpipe_spi_connect();

	/* the caller's right to the pipeline, then what there is to replay */
	owner_args[0] = args[0];
	owner_args[1] = ObjectIdGetDatum(GetUserId());
	txpipe_enter_catalog(&id);
	if (SPI_execute_with_args("SELECT txpipe._require_owner($1, $2, 'replay the rejects of')",
							  2, owner_types, owner_args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not check the owner of pipeline \"%s\"", pipeline);
	if (SPI_execute_with_args("SELECT pg_catalog.max(r.reject_id) FROM ONLY txpipe.rejects r "
							  "WHERE r.pipeline OPERATOR(pg_catalog.=) $1",
							  1, types, args, NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the rejects of pipeline \"%s\"", pipeline);
	hi = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (isnull)
		hi = 0;
	args[2] = Int64GetDatum(hi);
	if (SPI_execute_with_args("SELECT pg_catalog.count(*) FROM ONLY txpipe.rejects r WHERE"
							  REPLAY_FILTER " AND r.error_code OPERATOR(pg_catalog.=) 'too_large'",
							  7, types, args, argnulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not count the too_large rejects of pipeline \"%s\"", pipeline);
	skipped = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	claim_plan = SPI_prepare("WITH c AS ("
							 "  SELECT r.reject_id FROM ONLY txpipe.rejects r WHERE" REPLAY_FILTER
							 "     AND r.error_code OPERATOR(pg_catalog.<>) 'too_large' "
							 "   ORDER BY r.reject_id LIMIT $8 FOR UPDATE SKIP LOCKED) "
							 "UPDATE ONLY txpipe.rejects r SET replayed_at = pg_catalog.now() "
							 "  FROM c WHERE r.reject_id OPERATOR(pg_catalog.=) c.reject_id "
							 "RETURNING r.reject_id, r.payload, r.payload_raw",
							 8, types);
	mark_plan = SPI_prepare("UPDATE ONLY txpipe.rejects r SET replay_outcome = u.outcome "
							"  FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2)) AS u(id, outcome) "
							" WHERE r.reject_id OPERATOR(pg_catalog.=) u.id",
							2, mark_types);
	if (claim_plan == NULL || mark_plan == NULL)
		elog(ERROR, "could not prepare the replay statements: %s", SPI_result_code_string(SPI_result));
	txpipe_leave(&id);

	old = MemoryContextSwitchTo(work);
	for (;;)
	{
		uint64		n;
		Claimed    *c;
		TxRecord   *recs;
		Datum	   *ids;
		Datum	   *outcomes;
		TxPlan	   *plan;
		int			lb = 1;
		int			nn;
		Datum		margs[2];

		CHECK_FOR_INTERRUPTS();
		txpipe_enter_catalog(&id);
		n = txpipe_spi_run(claim_plan, args, argnulls, false, 0, SPI_OK_UPDATE_RETURNING,
						   "claim rejects to replay");
		txpipe_leave(&id);
		if (n == 0)
			break;
		c = palloc(sizeof(Claimed) * n);
		for (uint64 i = 0; i < n; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			Datum		d;

			c[i].id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			d = SPI_getbinval(tup, desc, 3, &isnull);
			c[i].raw = !isnull;
			if (isnull)
				d = SPI_getbinval(tup, desc, 2, &isnull);
			{
				struct varlena *v = PG_DETOAST_DATUM_COPY(d);

				c[i].data = VARDATA_ANY(v);
				c[i].len = VARSIZE_ANY_EXHDR(v);
			}
		}
		SPI_freetuptable(SPI_tuptable);
		qsort(c, n, sizeof(Claimed), claimed_cmp);
		args[1] = Int64GetDatum(c[n - 1].id);

		recs = palloc0(sizeof(TxRecord) * n);
		for (uint64 i = 0; i < n; i++)
		{
			recs[i].payload = c[i].data;
			recs[i].len = c[i].len;
			if (recs[i].len > txpipe_max_record_size)
				txpipe_too_large(&recs[i], c[i].data, c[i].len, c[i].raw);
			else if (c[i].raw)
				(void) txpipe_check_encoding(&recs[i]);
		}
		plan = txpipe_get_plan(pipeline);
		txpipe_route(plan, recs, (int) n, "replay", &counts);
		replayed += n;

		ids = palloc(sizeof(Datum) * n);
		outcomes = palloc(sizeof(Datum) * n);
		for (uint64 i = 0; i < n; i++)
		{
			ids[i] = Int64GetDatum(c[i].id);
			outcomes[i] = CStringGetTextDatum(recs[i].err.code ? "rejected" :
											  recs[i].routed ? "accepted" : "duplicate");
		}
		nn = (int) n;
		margs[0] = PointerGetDatum(construct_md_array(ids, NULL, 1, &nn, &lb, INT8OID, 8,
													  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		margs[1] = PointerGetDatum(construct_md_array(outcomes, NULL, 1, &nn, &lb, TEXTOID, -1,
													  false, TYPALIGN_INT));
		txpipe_enter_catalog(&id);
		(void) txpipe_spi_run(mark_plan, margs, NULL, false, 0, SPI_OK_UPDATE,
							  "mark replayed rejects");
		txpipe_leave(&id);
		MemoryContextReset(work);
	}
	MemoryContextSwitchTo(old);
	SPI_finish();
	MemoryContextDelete(work);

	values[0] = Int64GetDatum(replayed);
	values[1] = Int64GetDatum(counts.accepted);
	values[2] = Int64GetDatum(counts.rejected);
	values[3] = Int64GetDatum(counts.duplicates);
	values[4] = Int64GetDatum(skipped);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}
