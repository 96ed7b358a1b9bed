/*-------------------------------------------------------------------------
 *
 * ingest.c
 *	  SQL-callable entry points: txpipe.ingest(), txpipe.ingest_raw(),
 *	  txpipe.validate(), txpipe.plan() and the spec check behind
 *	  create_pipeline().
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

PG_FUNCTION_INFO_V1(txpipe_ingest);
PG_FUNCTION_INFO_V1(txpipe_ingest_raw);
PG_FUNCTION_INFO_V1(txpipe_validate);
PG_FUNCTION_INFO_V1(txpipe_check_spec);
PG_FUNCTION_INFO_V1(txpipe_grain_table);
PG_FUNCTION_INFO_V1(txpipe_plan_routes);
PG_FUNCTION_INFO_V1(txpipe_contract);

static bool
blank(const char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

/*
 * Routes the NDJSON lines of buf in batches of txpipe.batch_size.  With
 * check_encoding, each line is first checked to be valid text.
 */
static Datum
ingest_lines(FunctionCallInfo fcinfo, const char *pipeline, const char *buf, int len,
			 bool check_encoding)
{
	TxCounts	counts = {0};
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	MemoryContext work;
	MemoryContext old;
	int			batch = Max(txpipe_batch_size, 1);
	TxRecord   *recs = palloc0(sizeof(TxRecord) * batch);
	int			n = 0;
	Size		bytes = 0;
	const char *p = buf;
	const char *end = buf + len;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	work = AllocSetContextCreate(CurrentMemoryContext, "txpipe batch", ALLOCSET_DEFAULT_SIZES);
	txpipe_spi_connect();
	txpipe_check_send(pipeline);
	old = MemoryContextSwitchTo(work);
	while (p < end)
	{
		const char *nl = memchr(p, '\n', end - p);
		const char *lend = nl ? nl : end;
		int			l = lend - p;

		CHECK_FOR_INTERRUPTS();
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l > txpipe_max_record_size)
		{
			/* neither checked nor copied whole: a prefix, a length, a hash */
			txpipe_too_large(&recs[n], p, l, check_encoding);
			bytes += recs[n].len;
			n++;
		}
		else if (!blank(p, l))
		{
			recs[n].payload = p;
			recs[n].len = l;
			if (check_encoding)
				(void) txpipe_check_encoding(&recs[n]);
			bytes += l;
			n++;
		}
		p = nl ? nl + 1 : end;
		if (n == batch || bytes >= TXPIPE_BATCH_BYTES || (p >= end && n > 0))
		{
			TxPlan	   *plan = txpipe_get_plan(pipeline);

			txpipe_route(plan, recs, n, "ingest", &counts);
			MemoryContextReset(work);
			memset(recs, 0, sizeof(TxRecord) * batch);
			n = 0;
			bytes = 0;
		}
	}
	if (counts.received == 0)
		(void) txpipe_get_plan(pipeline);	/* an unknown pipeline is an error */
	MemoryContextSwitchTo(old);
	SPI_finish();
	MemoryContextDelete(work);

	values[0] = Int64GetDatum(counts.accepted);
	values[1] = Int64GetDatum(counts.rejected);
	values[2] = Int64GetDatum(counts.duplicates);
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls));
}

Datum
txpipe_ingest(PG_FUNCTION_ARGS)
{
	char	   *pipeline = text_to_cstring(PG_GETARG_TEXT_PP(0));
	text	   *docs = PG_GETARG_TEXT_PP(1);

	return ingest_lines(fcinfo, pipeline, VARDATA_ANY(docs), VARSIZE_ANY_EXHDR(docs), false);
}

Datum
txpipe_ingest_raw(PG_FUNCTION_ARGS)
{
	char	   *pipeline = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bytea	   *docs = PG_GETARG_BYTEA_PP(1);

	return ingest_lines(fcinfo, pipeline, VARDATA_ANY(docs), VARSIZE_ANY_EXHDR(docs), true);
}

#define VALIDATE_MAX_ERRORS 100

Datum
txpipe_validate(PG_FUNCTION_ARGS)
{
	char	   *pipeline = text_to_cstring(PG_GETARG_TEXT_PP(0));
	text	   *doc = PG_GETARG_TEXT_PP(1);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TxRecord	rec;
	TxError    *errors = palloc0(sizeof(TxError) * VALIDATE_MAX_ERRORS);
	int			nerrors;
	TxPlan	   *plan;

	InitMaterializedSRF(fcinfo, 0);
	memset(&rec, 0, sizeof(rec));
	rec.payload = VARDATA_ANY(doc);
	rec.len = VARSIZE_ANY_EXHDR(doc);

	txpipe_spi_connect();
	txpipe_check_send(pipeline);
	plan = txpipe_get_plan(pipeline);
	if (rec.len > txpipe_max_record_size)
	{
		txpipe_too_large(&rec, rec.payload, rec.len, false);
		errors[0] = rec.err;
		nerrors = 1;
	}
	else if (!txpipe_decode(plan, &rec))
	{
		errors[0] = rec.err;
		nerrors = 1;
	}
	else
		nerrors = Min(txpipe_contract_check(plan, &rec, errors, VALIDATE_MAX_ERRORS),
					  VALIDATE_MAX_ERRORS);

	for (int i = 0; i < nerrors; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(errors[i].code);
		values[1] = CStringGetTextDatum(errors[i].path);
		values[2] = CStringGetTextDatum(errors[i].message);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}

Datum
txpipe_check_spec(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *spec = PG_GETARG_JSONB_P(1);
	/* the 0.2.0 signature has no owner: the caller's */
	Oid			owner = PG_NARGS() > 2 ? PG_GETARG_OID(2) : GetUserId();

	txpipe_compile_check(name, spec, owner);
	PG_RETURN_VOID();
}

/* the table of a pipeline's grain route, as its compiled plan chose it */
Datum
txpipe_grain_table(PG_FUNCTION_ARGS)
{
	char	   *pipeline = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TxPlan	   *plan;
	Oid			relid = InvalidOid;

	txpipe_spi_connect();
	plan = txpipe_get_plan(pipeline);
	if (plan->grain_route >= 0)
		relid = plan->routes[plan->grain_route].relid;
	SPI_finish();
	if (!OidIsValid(relid))
		PG_RETURN_NULL();
	PG_RETURN_OID(relid);
}

/*
 * The routes of a pipeline's plan as this backend compiled it: kind,
 * table, and how an insert route writes (directly, or by its INSERT
 * statement, and why).
 */
Datum
txpipe_plan_routes(PG_FUNCTION_ARGS)
{
	char	   *pipeline = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext cxt = CurrentMemoryContext;
	TxPlan	   *plan;

	InitMaterializedSRF(fcinfo, 0);
	txpipe_spi_connect();
	plan = txpipe_get_plan(pipeline);
	txpipe_check_owner(plan, "show the plan of");
	for (int r = 0; r < plan->nroutes; r++)
	{
		TxRoute    *route = &plan->routes[r];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		MemoryContext old = MemoryContextSwitchTo(cxt);

		values[0] = CStringGetTextDatum(route->name);
		values[1] = CStringGetTextDatum(route->lookup ? "lookup" : route->grain ? "grain" : "insert");
		values[2] = ObjectIdGetDatum(route->relid);
		if (route->lookup)
		{
			values[3] = CStringGetTextDatum("statement");
			values[4] = CStringGetTextDatum("lookup routes insert new keys by INSERT ... ON CONFLICT");
		}
		else if (route->writer == NULL)
		{
			values[3] = CStringGetTextDatum("statement");
			values[4] = CStringGetTextDatum(route->write_note);
		}
		else if (!txpipe_direct_write)
		{
			values[3] = CStringGetTextDatum("statement");
			values[4] = CStringGetTextDatum("txpipe.direct_write is off");
		}
		else
		{
			Oid			probe = txpipe_writer_probe_index(route);

			values[3] = CStringGetTextDatum("direct");
			if (route->grain && OidIsValid(probe))
				values[4] = CStringGetTextDatum(psprintf("stored keys looked up in index %s",
														 get_rel_name(probe)));
			else
				nulls[4] = true;
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/*
 * txpipe.contract(pipeline): the contract of a pipeline the caller may
 * send to (or owns); NULL for a pipeline without one.
 */
Datum
txpipe_contract(PG_FUNCTION_ARGS)
{
	char	   *pipeline = text_to_cstring(PG_GETARG_TEXT_PP(0));
	TxPlan	   *plan;
	TxIdentity	id;
	Datum		arg = CStringGetTextDatum(pipeline);
	Datum		result = (Datum) 0;
	bool		isnull = true;
	MemoryContext cxt = CurrentMemoryContext;

	txpipe_spi_connect();
	plan = txpipe_get_plan(pipeline);
	if (!has_privs_of_role(GetUserId(), plan->owner))
		txpipe_check_send(pipeline);
	txpipe_enter_catalog(&id);
	if (SPI_execute_with_args("SELECT p.spec OPERATOR(pg_catalog.->) 'contract' FROM ONLY txpipe.pipelines p"
							  " WHERE p.name OPERATOR(pg_catalog.=) $1",
							  1, (Oid[]) {TEXTOID}, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read txpipe.pipelines");
	MemoryContextSwitchTo(cxt);
	txpipe_leave(&id);
	if (SPI_processed == 1)
	{
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			result = PointerGetDatum(PG_DETOAST_DATUM_COPY(result));
	}
	SPI_finish();
	if (isnull)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(result);
}
