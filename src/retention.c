/*-------------------------------------------------------------------------
 *
 * retention.c
 *	  How long rejects, batch history and acknowledged alerts are kept:
 *	  the settings, the worker's pass and txpipe.prune().
 *
 * A pass folds committed batches into txpipe.counters (what txpipe.stats
 * reads) and deletes folded batches, rejects and acknowledged alerts past
 * their retention, in statements of 1000 rows (txpipe._prune in stats.sql).  Worker 0 runs one
 * pass a minute in its own transaction, bounded to PASS_MAX_ROWS of each
 * kind and under a short lock_timeout: it takes row locks only on rows
 * routing no longer writes, and gives up rather than wait.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

/* seconds; 0 keeps for ever */
int			txpipe_rejects_retention = 30 * 86400;
int			txpipe_batches_retention = 7 * 86400;
int			txpipe_alerts_retention = 90 * 86400;

#define PASS_MAX_ROWS	100000

PG_FUNCTION_INFO_V1(txpipe_prune);

/* runs txpipe._prune under the settings; inside SPI; out: 4 int8 datums */
static void
run_prune(int64 max_rows, Datum *out)
{
	Oid			types[4] = {INT4OID, INT4OID, INT4OID, INT8OID};
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;

	args[0] = Int32GetDatum(txpipe_rejects_retention);
	args[1] = Int32GetDatum(txpipe_batches_retention);
	args[2] = Int32GetDatum(txpipe_alerts_retention);
	args[3] = Int64GetDatum(max_rows);
	if (max_rows <= 0)
		nulls[3] = 'n';
	if (SPI_execute_with_args("SELECT p.folded, p.batches, p.rejects, p.alerts FROM txpipe._prune("
							  "CASE WHEN $1 OPERATOR(pg_catalog.>) 0 THEN pg_catalog.make_interval(secs => $1) END, "
							  "CASE WHEN $2 OPERATOR(pg_catalog.>) 0 THEN pg_catalog.make_interval(secs => $2) END, "
							  "CASE WHEN $3 OPERATOR(pg_catalog.>) 0 THEN pg_catalog.make_interval(secs => $3) END, "
							  "$4) AS p",
							  4, types, args, nulls, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not prune");
	for (int i = 0; i < 4; i++)
	{
		out[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);
		if (isnull)
			out[i] = Int64GetDatum(0);
	}
}

/* worker 0's pass, in a transaction of its own (the caller catches errors) */
void
txpipe_retention_pass(List *unused)
{
	Datum		out[4];

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "folding batch counters and pruning rejects, batches and alerts");
	(void) set_config_option("lock_timeout", "100ms", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_LOCAL, true, 0, false);
	run_prune(PASS_MAX_ROWS, out);
	ereport(DEBUG1,
			(errmsg("txpipe folded " INT64_FORMAT " batches, pruned " INT64_FORMAT " batches, " INT64_FORMAT " rejects and " INT64_FORMAT " alerts",
					DatumGetInt64(out[0]), DatumGetInt64(out[1]), DatumGetInt64(out[2]), DatumGetInt64(out[3]))));
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

/*
 * txpipe.prune(): folds every committed batch and deletes everything past
 * retention, in the caller's transaction.
 */
Datum
txpipe_prune(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		out[4];
	bool		nulls[4] = {false, false, false, false};

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "txpipe.prune must return a record");
	SPI_connect();
	run_prune(0, out);
	SPI_finish();
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), out, nulls)));
}

void
txpipe_retention_init(void)
{
	DefineCustomIntVariable("txpipe.rejects_retention",
							"How long a reject is kept after it was last received; 0 keeps rejects for ever.",
							"Worker 0 deletes older rejects once a minute; txpipe.prune() does it on demand.",
							&txpipe_rejects_retention, 30 * 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.batches_retention",
							"How long a row of txpipe.batches is kept once folded into txpipe.counters; 0 keeps them for ever.",
							"txpipe.stats counts pruned batches through txpipe.counters.",
							&txpipe_batches_retention, 7 * 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.alerts_retention",
							"How long an acknowledged alert is kept after it was acknowledged; 0 keeps alerts for ever.",
							"Open alerts are never pruned.",
							&txpipe_alerts_retention, 90 * 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
}
