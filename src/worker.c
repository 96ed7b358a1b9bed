/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  Background workers that drain the inbox, the launcher that starts them
 *	  when txpipe is in shared_preload_libraries, txpipe.start_worker() and
 *	  txpipe.stop_worker(), and the utility hook that lets DROP DATABASE
 *	  through.
 *
 * Each database has txpipe.workers workers, numbered 0..n-1; worker w takes
 * the queue classes c with c % n == w (the position lock, not this split,
 * is what keeps two workers off the same records).  Worker 0 starts the
 * others.  A worker holds a session advisory lock on its number, so a
 * second copy steps aside at once.
 *
 * A commit that queued records sets the latches of its database's workers
 * (the board in launcher.c).  A background process cannot LISTEN, so each
 * worker opens a libpq connection to its own server, LISTENs there on
 * txpipe_ingest (fire-and-forget records) and txpipe_wakeup (what enqueue
 * sends instead of setting latches when txpipe is not preloaded), and
 * waits on its latch and that socket together, with
 * txpipe.worker_poll_interval as the fallback.  Without that connection
 * it polls.
 *
 * Signals: SIGHUP reloads the settings; SIGTERM cancels the batch under
 * way (it rolls back and is routed again) and exits with code 1, so the
 * postmaster starts the worker again after 5 s (pg_terminate_backend does
 * this); SIGUSR2 does the same but exits with code 0, and the worker stays
 * stopped: txpipe.stop_worker() and DROP DATABASE use it.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "fmgr.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "postmaster/postmaster.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#define WORKER_TYPE "txpipe worker"
#define LAUNCHER_TYPE "txpipe launcher"
#define WORKER_RESTART_SECONDS 5
#define ADVISORY_KEY 0x7478	/* "tx" */

/* settings */
int			txpipe_workers = 1;
int			txpipe_worker_idle_timeout = 60000;
int			txpipe_worker_poll_interval = 1000;
int			txpipe_worker_max_attempts = 3;
char	   *txpipe_databases = NULL;
char	   *txpipe_worker_conninfo = NULL;
int			txpipe_inbox_slot_seconds = 10;
int			txpipe_worker_lock_timeout = 1000;
int			txpipe_worker_statement_timeout = 60000;
int			txpipe_notify_rate = 1000;
int			txpipe_notify_max_records = 100;

PGDLLEXPORT void txpipe_worker_main(Datum arg);
PGDLLEXPORT void txpipe_launcher_main(Datum arg);

PG_FUNCTION_INFO_V1(txpipe_start_worker);
PG_FUNCTION_INFO_V1(txpipe_stop_worker);

static volatile sig_atomic_t got_sigterm = false;
static volatile sig_atomic_t step_aside = false;
static volatile sig_atomic_t in_batch = false;
static ProcessUtility_hook_type prev_utility = NULL;

static PGconn *listen_conn = NULL;
static TimestampTz listen_retry_at = 0;
static bool listen_warned = false;

/* per pipeline: records that failed alone, by class */
typedef struct FailState
{
	char		pipeline[NAMEDATALEN];
	bool		careful;		/* one record per transaction */
	int			attempts[16];
	struct FailState *next;
} FailState;

static FailState *failures = NULL;

/* this worker's number */
static int	worker_index = 0;

/*
 * NOTIFY txpipe_ingest: records this database's worker 0 may still take
 * (txpipe.notify_rate a second, at most a second's worth saved up), and
 * the payloads dropped since the last LOG line about them.
 */
static double notify_tokens = 0;
static TimestampTz notify_refilled = 0;
static int64 notify_dropped_rate = 0;
static int64 notify_dropped_off = 0;
static TimestampTz notify_logged = 0;

/* when the batch under way started, for telling its own timeout */
static TimestampTz batch_started = 0;

/* ----------------------------------------------------------------
 * registering workers
 * ----------------------------------------------------------------
 */

/* a background worker of this library, restarted 5 s after it fails */
static void
worker_entry(BackgroundWorker *w, const char *function, const char *type)
{
	memset(w, 0, sizeof(*w));
	w->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w->bgw_start_time = BgWorkerStart_RecoveryFinished;
	w->bgw_restart_time = WORKER_RESTART_SECONDS;
	strlcpy(w->bgw_library_name, "txpipe", BGW_MAXLEN);
	strlcpy(w->bgw_function_name, function, BGW_MAXLEN);
	strlcpy(w->bgw_name, type, BGW_MAXLEN);
	strlcpy(w->bgw_type, type, BGW_MAXLEN);
}

/*
 * TX_WORKER_EXPLICIT: started by start_worker() or by worker 0, not by the
 * launcher: it runs even if worker_state says disabled (start_worker's own
 * update may not be committed yet), and waits for a worker of its number
 * that is still stepping aside.  TX_WORKER_PROBE: started by the launcher
 * with nothing known to do; it leaves after one look if nothing is queued.
 */
bool
txpipe_register_worker(Oid dboid, int index, BackgroundWorkerHandle **handle, bool notify_me, int flags)
{
	BackgroundWorker w;
	bool		explicit = (flags & TX_WORKER_EXPLICIT) != 0;

	worker_entry(&w, "txpipe_worker_main", WORKER_TYPE);
	snprintf(w.bgw_name, BGW_MAXLEN, "txpipe worker %d for database %u", index, dboid);
	w.bgw_main_arg = Int32GetDatum(index);
	memcpy(w.bgw_extra, &dboid, sizeof(Oid));
	w.bgw_extra[sizeof(Oid)] = explicit ? 1 : 0;
	w.bgw_extra[sizeof(Oid) + 1] = (flags & TX_WORKER_PROBE) ? 1 : 0;
	/* the launcher starts its own again, and never into a dropped database */
	if (!explicit)
		w.bgw_restart_time = BGW_NEVER_RESTART;
	w.bgw_notify_pid = notify_me ? MyProcPid : 0;
	return RegisterDynamicBackgroundWorker(&w, handle);
}

/* pids of this server's txpipe workers in database dboid */
static List *
worker_pids(Oid dboid)
{
	List	   *pids = NIL;
	int			n;

	pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *b;
		const char *type;

		if (l == NULL)
			continue;
		b = &l->backendStatus;
		if (b->st_backendType != B_BG_WORKER || b->st_databaseid != dboid || b->st_procpid == MyProcPid)
			continue;
		type = GetBackgroundWorkerTypeByPid(b->st_procpid);
		if (type && strcmp(type, WORKER_TYPE) == 0)
			pids = lappend_int(pids, b->st_procpid);
	}
	pgstat_clear_backend_activity_snapshot();
	return pids;
}

static int
signal_workers(Oid dboid, int sig)
{
	List	   *pids = worker_pids(dboid);
	ListCell   *lc;
	int			n = 0;

	foreach(lc, pids)
		if (kill(lfirst_int(lc), sig) == 0)
			n++;
	return n;
}

/* ----------------------------------------------------------------
 * the LISTEN connection
 * ----------------------------------------------------------------
 */

static void
listen_close(void)
{
	if (listen_conn)
		PQfinish(listen_conn);
	listen_conn = NULL;
}

/* needs a transaction (catalog lookups) */
static void
listen_open(void)
{
	const char *keys[8];
	const char *vals[8];
	int			k = 0;
	char		port[16];
	char	   *host = NULL;
	PGresult   *res;

	if (listen_conn || GetCurrentTimestamp() < listen_retry_at)
		return;
	if (txpipe_worker_conninfo && txpipe_worker_conninfo[0])
	{
		keys[k] = "dbname";
		vals[k++] = txpipe_worker_conninfo;
		keys[k] = "dbname";
		vals[k++] = get_database_name(MyDatabaseId);
	}
	else
	{
		if (Unix_socket_directories && Unix_socket_directories[0])
		{
			char	   *dirs = pstrdup(Unix_socket_directories);
			List	   *list;

			if (SplitDirectoriesString(dirs, ',', &list) && list != NIL)
				host = linitial(list);
		}
		snprintf(port, sizeof(port), "%d", PostPortNumber);
		keys[k] = "host";
		vals[k++] = host ? host : "localhost";
		keys[k] = "port";
		vals[k++] = port;
		keys[k] = "dbname";
		vals[k++] = get_database_name(MyDatabaseId);
		keys[k] = "user";
		vals[k++] = GetUserNameFromId(BOOTSTRAP_SUPERUSERID, false);
	}
	keys[k] = "application_name";
	vals[k++] = "txpipe listener";
	keys[k] = "connect_timeout";
	vals[k++] = "5";
	keys[k] = NULL;
	vals[k] = NULL;

	/* with txpipe.worker_conninfo, its dbname is a conninfo string that the
	 * second dbname (this database) overrides */
	listen_conn = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(listen_conn) != CONNECTION_OK)
		goto failed;
	res = PQexec(listen_conn, "LISTEN txpipe_wakeup; LISTEN txpipe_ingest");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		PQclear(res);
		goto failed;
	}
	PQclear(res);
	if (PQsetnonblocking(listen_conn, 1) != 0)
		goto failed;
	if (listen_warned)
		ereport(LOG, (errmsg("txpipe worker: LISTEN connection open again")));
	listen_warned = false;
	return;

failed:
	if (!listen_warned)
		ereport(WARNING,
				(errmsg("txpipe worker could not LISTEN through a connection to its own server: %s",
						listen_conn ? PQerrorMessage(listen_conn) : "out of memory"),
				 errhint("The worker polls every txpipe.worker_poll_interval instead.  Set txpipe.worker_conninfo to a connection string that reaches this server.")));
	listen_warned = true;
	listen_close();
	listen_retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 60000);
}

/* reads what arrived; returns the NOTIFY txpipe_ingest payloads */
static List *
listen_collect(bool *woken)
{
	List	   *payloads = NIL;
	PGnotify   *n;

	if (listen_conn == NULL)
		return NIL;
	if (!PQconsumeInput(listen_conn))
	{
		ereport(WARNING, (errmsg("txpipe worker lost its LISTEN connection: %s", PQerrorMessage(listen_conn))));
		listen_warned = true;
		listen_close();
		return NIL;
	}
	while ((n = PQnotifies(listen_conn)) != NULL)
	{
		*woken = true;
		/* every worker listens; worker 0 alone takes the records */
		if (strcmp(n->relname, "txpipe_ingest") == 0 && worker_index == 0)
			payloads = lappend(payloads, pstrdup(n->extra));
		PQfreemem(n);
	}
	return payloads;
}

/* ----------------------------------------------------------------
 * the worker
 * ----------------------------------------------------------------
 */

/* cancels a batch under way (or its wait for a lock) and ends the loop */
static void
request_stop(bool aside)
{
	if (aside)
		step_aside = true;
	got_sigterm = true;
	if (in_batch)
	{
		QueryCancelPending = true;
		InterruptPending = true;
	}
	SetLatch(MyLatch);
}

static void
worker_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	request_stop(false);
	errno = save_errno;
}

static void
worker_sigusr2(SIGNAL_ARGS)
{
	int			save_errno = errno;

	request_stop(true);
	errno = save_errno;
}

static void
worker_exit(int code)
{
	listen_close();
	proc_exit(code);
}

/* what the worker checks each round; needs a transaction */
typedef enum RoundCheck
{
	ROUND_OK,
	ROUND_NO_EXTENSION,
	ROUND_VERSION,
	ROUND_DISABLED
} RoundCheck;

static char *installed_version = NULL;

static RoundCheck
round_check(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	RoundCheck	result = ROUND_NO_EXTENSION;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("txpipe"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);
		char	   *v = isnull ? "" : TextDatumGetCString(d);

		result = strcmp(v, TXPIPE_VERSION) == 0 ? ROUND_OK : ROUND_VERSION;
		if (installed_version)
			pfree(installed_version);
		installed_version = MemoryContextStrdup(TopMemoryContext, v);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (result == ROUND_OK)
	{
		SPI_connect();
		if (SPI_execute("SELECT enabled FROM txpipe.worker_state", true, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
		{
			bool		isnull;

			if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
				result = ROUND_DISABLED;
		}
		SPI_finish();
	}
	return result;
}

static List *
pipeline_names(MemoryContext caller)
{
	List	   *names = NIL;

	SPI_connect();
	if (SPI_execute("SELECT name FROM txpipe.pipelines ORDER BY name", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read txpipe.pipelines");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
		MemoryContext old = MemoryContextSwitchTo(caller);

		names = lappend(names, pstrdup(name));
		MemoryContextSwitchTo(old);
	}
	SPI_finish();
	return names;
}

/*
 * Timeouts for the worker's own transactions: txpipe.worker_lock_timeout
 * and txpipe.worker_statement_timeout, as SET LOCAL would set them.  A
 * background worker runs no client statements, so the statement timeout
 * is armed here (with statement), for the whole transaction, and disarmed
 * by end_timeouts().
 */
static void
begin_timeouts(bool statement)
{
	(void) set_config_option("lock_timeout", psprintf("%d", txpipe_worker_lock_timeout),
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	(void) set_config_option("statement_timeout", psprintf("%d", txpipe_worker_statement_timeout),
							 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	batch_started = GetCurrentTimestamp();
	if (statement && txpipe_worker_statement_timeout > 0)
		enable_timeout_after(STATEMENT_TIMEOUT, txpipe_worker_statement_timeout);
}

static void
end_timeouts(void)
{
	disable_timeout(STATEMENT_TIMEOUT, false);
}

/* the records NOTIFY may still bring now */
static double
notify_budget(void)
{
	TimestampTz now = GetCurrentTimestamp();

	if (notify_refilled == 0)
		notify_tokens = txpipe_notify_rate;
	else
		notify_tokens += (double) txpipe_notify_rate * (double) (now - notify_refilled) / 1000000.0;
	notify_tokens = Min(notify_tokens, (double) Max(txpipe_notify_rate, 1));
	notify_refilled = now;
	return notify_tokens;
}

static void
notify_log_drops(void)
{
	if ((notify_dropped_rate == 0 && notify_dropped_off == 0) ||
		!TimestampDifferenceExceeds(notify_logged, GetCurrentTimestamp(), 10000))
		return;
	ereport(LOG,
			(errmsg("txpipe worker dropped " INT64_FORMAT " NOTIFY txpipe_ingest payloads over txpipe.notify_rate and " INT64_FORMAT " for pipelines without \"notify\": true",
					notify_dropped_rate, notify_dropped_off)));
	notify_dropped_rate = 0;
	notify_dropped_off = 0;
	notify_logged = GetCurrentTimestamp();
}

/*
 * Stores the payloads of a round, each in its own subtransaction: one that
 * fails (whatever it holds) becomes a reject and costs no other.
 */
static void
store_notifications(List *payloads)
{
	ListCell   *lc;
	MemoryContext cxt;

	if (payloads == NIL)
		return;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	begin_timeouts(true);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "storing NOTIFY txpipe_ingest records");
	cxt = CurrentMemoryContext;
	foreach(lc, payloads)
	{
		Oid			t[2] = {TEXTOID, INT4OID};
		Datum		a[2];
		ResourceOwner owner = CurrentResourceOwner;

		CHECK_FOR_INTERRUPTS();
		if (txpipe_notify_rate <= 0 || notify_budget() < 1)
		{
			notify_dropped_rate++;
			continue;
		}
		a[0] = CStringGetTextDatum(lfirst(lc));
		a[1] = Int32GetDatum(Max(txpipe_notify_max_records, 0));
		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			bool		isnull;
			int64		n;

			if (SPI_execute_with_args("SELECT txpipe._notify_in($1, $2)", 2, t, a, NULL, false, 0) != SPI_OK_SELECT ||
				SPI_processed != 1)
				elog(ERROR, "could not store a NOTIFY payload");
			n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
			if (n < 0)
				notify_dropped_off++;
			/* a reject costs one record */
			notify_tokens -= Max(n, 1);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;
			Oid			rt[3] = {TEXTOID, TEXTOID, TEXTOID};
			Datum		ra[3];

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			/* the worker's own stop, or its statement timeout: not the payload's fault */
			if (got_sigterm || edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
				ReThrowError(edata);
			notify_tokens -= 1;
			ra[0] = a[0];
			ra[1] = CStringGetTextDatum(edata->message);
			ra[2] = CStringGetTextDatum(unpack_sql_state(edata->sqlerrcode));
			if (SPI_execute_with_args("INSERT INTO txpipe.rejects (pipeline, source, payload, error_code, error_path, message, sqlstate)"
									  " VALUES ('', 'notify', $1, 'db_refused', '$', $2, $3)",
									  3, rt, ra, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not store a NOTIFY payload's reject");
		}
		PG_END_TRY();
	}
	PopActiveSnapshot();
	SPI_finish();
	end_timeouts();
	CommitTransactionCommand();
	notify_log_drops();
}

static void
rotate_inbox(List *unused)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "truncating routed inbox slots");
	(void) SPI_execute("SELECT txpipe._rotate_inbox()", false, 0);
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

/*
 * Logs an error of the worker's own transaction without its DETAIL and
 * CONTEXT: those can quote a record (a key's value, a statement's
 * parameters), card numbers included.
 */
static void
log_error_terse(ErrorData *edata)
{
	ereport(LOG,
			(errcode(edata->sqlerrcode),
			 errmsg("txpipe worker: %s", edata->message),
			 errdetail("SQLSTATE %s; the error's detail and context are not logged, as they can quote a record.",
					   unpack_sql_state(edata->sqlerrcode))));
}

/* runs fn in its own transaction; an error is logged and rolled back */
static void
guarded(void (*fn) (List *), List *arg, MemoryContext keep)
{
	in_batch = true;
	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(keep);
		end_timeouts();
		log_error_terse(CopyErrorData());
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	in_batch = false;
	QueryCancelPending = false;
	MemoryContextSwitchTo(keep);
}

/*
 * Compiles a pipeline's plan ahead of its first records: a worker that
 * just started, or a pipeline new to it, would otherwise make the first
 * records wait while it reads the spec and opens the tables.
 */
static void
warm_plan(List *names)
{
	const char *pipeline = linitial(names);

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	begin_timeouts(true);
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, psprintf("compiling the plan of pipeline %s", pipeline));
	(void) txpipe_get_plan(pipeline);
	PopActiveSnapshot();
	SPI_finish();
	end_timeouts();
	CommitTransactionCommand();
}

/* the pipelines whose plans this worker compiled ahead, in TopMemoryContext */
static List *warmed = NIL;

static void
warm_new_plans(List *pipelines, MemoryContext keep)
{
	ListCell   *lc;

	foreach(lc, pipelines)
	{
		char	   *name = lfirst(lc);
		ListCell   *w;
		bool		seen = false;
		MemoryContext old;

		foreach(w, warmed)
			if (strcmp(lfirst(w), name) == 0)
				seen = true;
		if (seen || got_sigterm)
			continue;
		/* once per name, even if it fails: the batch then says why */
		old = MemoryContextSwitchTo(TopMemoryContext);
		warmed = lappend(warmed, pstrdup(name));
		MemoryContextSwitchTo(old);
		guarded(warm_plan, list_make1(name), keep);
	}
}

static FailState *
fail_state(const char *pipeline)
{
	FailState  *f;

	for (f = failures; f; f = f->next)
		if (strcmp(f->pipeline, pipeline) == 0)
			return f;
	f = MemoryContextAllocZero(TopMemoryContext, sizeof(FailState));
	strlcpy(f->pipeline, pipeline, NAMEDATALEN);
	f->next = failures;
	failures = f;
	return f;
}

/*
 * Errors that say nothing about the records: the pipeline or the server is
 * not ready (a missing table or privilege, no resources, a cancel, a lock
 * or serialization conflict).  Those are retried and never make a record
 * poison.
 */
static bool
is_pipeline_error(int sqlerrcode)
{
	static const char *const classes[] = {"08", "25", "3D", "3F", "40", "42", "53", "55", "57", "58", "F0", NULL};
	char	   *state = unpack_sql_state(sqlerrcode);

	/*
	 * The worker's own lock timeout, and its statement timeout (a cancel
	 * that came after the batch ran that long; one from outside, or a stop,
	 * comes sooner or sets got_sigterm): the batch's records are isolated
	 * and one that keeps exceeding them alone becomes poison.
	 */
	if (sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE)
		return false;
	if (sqlerrcode == ERRCODE_QUERY_CANCELED && !got_sigterm && txpipe_worker_statement_timeout > 0 &&
		TimestampDifferenceExceeds(batch_started, GetCurrentTimestamp(), txpipe_worker_statement_timeout))
		return false;

	for (int i = 0; classes[i]; i++)
		if (strncmp(state, classes[i], 2) == 0)
			return true;
	return false;
}

/*
 * One transaction: routes up to max records of pipeline from the classes
 * of mask (or dead-letters them with poison).  Returns records consumed,
 * or -1 after an error (rolled back, logged, *edata set).
 */
static int64
run_batch(const char *pipeline, uint32 mask, int max, int start, const char *poison,
		  MemoryContext keep, ErrorData **edata)
{
	volatile int64 n = 0;
	MemoryContext cxt = CurrentMemoryContext;

	if (got_sigterm)
		return 0;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	in_batch = true;
	PG_TRY();
	{
		TxCounts	counts = {0};

		/* dead-lettering a record is not timed: it must get through */
		begin_timeouts(poison == NULL);
		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, psprintf("routing queued records of pipeline %s", pipeline));
		n = txpipe_queue_drain(pipeline, mask, max, start, poison, &counts);
		PopActiveSnapshot();
		SPI_finish();
		end_timeouts();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(keep);
		end_timeouts();
		*edata = CopyErrorData();
		log_error_terse(*edata);
		FlushErrorState();
		AbortCurrentTransaction();
		n = -1;
	}
	PG_END_TRY();
	in_batch = false;
	QueryCancelPending = false; /* a signal is handled by its flag */
	MemoryContextSwitchTo(cxt);
	pgstat_report_stat(false);
	return n;
}

static uint32
class_mask(int index)
{
	uint32		mask = 0;
	int			n = Max(txpipe_workers, 1);

	for (int c = 0; c < 16; c++)
		if (c % n == index)
			mask |= (1u << c);
	return mask;
}

/*
 * Drains one pipeline as far as it goes.  After an error the pipeline is
 * taken one record per transaction, class by class: a record that fails
 * alone txpipe.worker_max_attempts times, with an error that concerns the
 * record, goes to txpipe.rejects as poison and the records behind it go on.
 * Returns records consumed; sets *backoff when the pipeline cannot route
 * now.
 */
static int64
drain_pipeline(const char *pipeline, int index, MemoryContext keep, bool *backoff)
{
	static int	rr = 0;
	FailState  *f = fail_state(pipeline);
	uint32		mask = class_mask(index);
	int64		total = 0;
	int			batch = Max(txpipe_batch_size, 1);

	while (!got_sigterm && !ConfigReloadPending)
	{
		ErrorData  *edata = NULL;
		int64		n;

		if (!f->careful)
		{
			n = run_batch(pipeline, mask, batch, rr++, NULL, keep, &edata);
			if (n >= 0)
			{
				total += n;
				if (n < batch)
					break;
				continue;
			}
			if (got_sigterm)
				break;
			if (is_pipeline_error(edata->sqlerrcode))
			{
				*backoff = true;
				break;
			}
			f->careful = true;
		}

		/* careful: one record per class and transaction */
		{
			bool		errors = false;
			bool		progress = false;

			for (int c = 0; c < 16 && !got_sigterm; c++)
			{
				if (!(mask & (1u << c)))
					continue;
				edata = NULL;
				n = run_batch(pipeline, 1u << c, 1, 0, NULL, keep, &edata);
				if (n > 0)
				{
					total += n;
					progress = true;
					f->attempts[c] = 0;
				}
				else if (n < 0 && (got_sigterm || is_pipeline_error(edata->sqlerrcode)))
				{
					*backoff = true;
					return total;
				}
				else if (n < 0)
				{
					errors = true;
					if (++f->attempts[c] >= Max(txpipe_worker_max_attempts, 1))
					{
						char	   *msg = psprintf("routing failed %d times: %s (SQLSTATE %s)",
												   f->attempts[c], edata->message,
												   unpack_sql_state(edata->sqlerrcode));

						if (run_batch(pipeline, 1u << c, 1, 0, msg, keep, &edata) > 0)
							ereport(LOG,
									(errmsg("txpipe worker moved a record of pipeline \"%s\" to txpipe.rejects as poison", pipeline),
									 errdetail("%s", msg)));
						f->attempts[c] = 0;
					}
				}
			}
			if (!errors)
			{
				/* a sweep without an error: back to whole batches */
				f->careful = false;
				memset(f->attempts, 0, sizeof(f->attempts));
				if (!progress)
					break;
			}
		}
	}
	return total;
}

static bool database_idle = false;

/* nothing queued, and no pipeline takes NOTIFY (that needs a listener) */
static void
check_idle(List *unused)
{
	bool		isnull;

	database_idle = false;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "looking for queued records before leaving");
	if (SPI_execute("SELECT NOT EXISTS (SELECT 1 FROM txpipe.queue)"
					" AND NOT EXISTS (SELECT 1 FROM ONLY txpipe.pipelines p"
					" WHERE p.spec OPERATOR(pg_catalog.->) 'notify' OPERATOR(pg_catalog.=) 'true'::pg_catalog.jsonb)",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look at the queue");
	database_idle = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
}

/*
 * Worker 0 of a database where nothing was routed for
 * txpipe.worker_idle_timeout (a probe: at its first look) leaves, and the
 * database's other workers with it, so an idle database holds no slot;
 * the launcher starts it again when work is committed there (launcher.c).
 * "running" is cleared before the last look at the queue: what is
 * committed after that look marks the database for the launcher.  Returns
 * true when the worker is to leave now; otherwise it stays for another
 * txpipe.worker_idle_timeout.
 */
static bool
leave_if_idle(MemoryContext keep, bool probe, TimestampTz last_work)
{
	txpipe_launch_running(false);
	guarded(check_idle, NULL, keep);
	/* a start_worker() meanwhile counts as work */
	if (!database_idle || got_sigterm || txpipe_launch_last_work() != last_work ||
		(probe && txpipe_launch_asked()))
	{
		txpipe_launch_running(true);
		return false;
	}
	txpipe_launch_park(TX_PARK_IDLE);
	(void) signal_workers(MyDatabaseId, SIGUSR2);
	if (probe)
		ereport(DEBUG1, (errmsg("txpipe worker 0 leaves: nothing is queued")));
	else
		ereport(LOG, (errmsg("txpipe worker 0 leaves: nothing routed for txpipe.worker_idle_timeout (%d ms); the launcher starts it again when records are queued",
							 txpipe_worker_idle_timeout)));
	return true;
}

void
txpipe_worker_main(Datum arg)
{
	int			index = DatumGetInt32(arg);
	Oid			dboid;
	MemoryContext loop_cxt;
	RoundCheck	last_check = ROUND_OK;
	bool		ok;
	bool		explicit;
	TimestampTz last_rotate = 0;
	TimestampTz last_prune = 0;
	TimestampTz last_round = 0;
	MemoryContext names_cxt;
	List	   *pipelines = NIL;
	bool		probing;
	bool		may_idle;
	TimestampTz began = 0;

	worker_index = index;
	memcpy(&dboid, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, worker_sigterm);
	pqsignal(SIGUSR2, worker_sigusr2);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	SetConfigOption("application_name", psprintf("txpipe worker %d", index), PGC_USERSET, PGC_S_SESSION);

	/*
	 * A batch commits without waiting for its WAL to reach disk.  A crash
	 * can undo the last batches, but their inbox positions go back with
	 * them, so the records are routed again: nothing is lost or doubled.
	 * Whatever read those rows and committed (a refresh, a report) flushed
	 * the WAL up to its own commit, which includes the batch.
	 */
	SetConfigOption("synchronous_commit", "off", PGC_USERSET, PGC_S_SESSION);
	/* whatever the database's or role's settings say */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname(psprintf("txpipe worker %d", index));
	loop_cxt = AllocSetContextCreate(TopMemoryContext, "txpipe worker loop", ALLOCSET_DEFAULT_SIZES);
	names_cxt = AllocSetContextCreate(TopMemoryContext, "txpipe worker pipelines", ALLOCSET_SMALL_SIZES);

	/*
	 * Is there work for this worker here?  Only one worker of each number
	 * runs (a session advisory lock); one started explicitly waits up to
	 * 10 s for a predecessor that is still stepping aside.
	 */
	explicit = MyBgworkerEntry->bgw_extra[sizeof(Oid)] != 0;
	for (int tries = 0;; tries++)
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		last_check = round_check();
		ok = DatumGetBool(DirectFunctionCall2(pg_try_advisory_lock_int4,
											  Int32GetDatum(ADVISORY_KEY), Int32GetDatum(index)));
		PopActiveSnapshot();
		CommitTransactionCommand();
		if (ok || !explicit || tries >= 100 || got_sigterm || last_check == ROUND_NO_EXTENSION)
			break;
		/* a worker 0 that routes here is no predecessor stepping aside */
		if (index == 0 && txpipe_launch_routing())
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 100, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	if (last_check == ROUND_NO_EXTENSION || (last_check == ROUND_DISABLED && !explicit) || !ok ||
		index >= txpipe_workers || got_sigterm)
	{
		/* worker 0 tells the launcher why, so it is not started over and over */
		if (ok && index == 0 && last_check != ROUND_OK && last_check != ROUND_VERSION)
			txpipe_launch_park(last_check == ROUND_NO_EXTENSION ? TX_PARK_NO_EXTENSION : TX_PARK_DISABLED);
		worker_exit(0);			/* stays stopped */
	}
	/* commits that queue records here set this worker's latch */
	(void) txpipe_launch_attach(index);
	probing = MyBgworkerEntry->bgw_extra[sizeof(Oid) + 1] != 0;
	may_idle = false;
	if (index == 0 && txpipe_launch_begin())
	{
		began = txpipe_launch_last_work();
		/* a worker that is not a probe is what start_worker() asked for */
		if (!probing)
			(void) txpipe_launch_asked();
		/* the launcher starts workers again only where txpipe.databases says */
		StartTransactionCommand();
		may_idle = txpipe_database_listed(get_database_name(MyDatabaseId));
		CommitTransactionCommand();
	}
	ereport(probing ? DEBUG1 : LOG, (errmsg("txpipe worker %d of %d started", index, txpipe_workers)));

	if (index == 0)
		for (int i = 1; i < txpipe_workers; i++)
			(void) txpipe_register_worker(MyDatabaseId, i, NULL, false, TX_WORKER_EXPLICIT);

	while (!got_sigterm)
	{
		List	   *names = NIL;
		List	   *payloads = NIL;
		bool		woken = false;
		bool		backoff = false;
		int64		routed = 0;
		ListCell   *lc;
		int			events;
		int			rc;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			int			before = txpipe_workers;

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (index >= txpipe_workers)
			{
				ereport(LOG, (errmsg("txpipe worker %d stops: txpipe.workers is now %d", index, txpipe_workers)));
				worker_exit(0);
			}
			if (index == 0 && txpipe_workers > before)
				for (int i = before; i < txpipe_workers; i++)
					(void) txpipe_register_worker(MyDatabaseId, i, NULL, false, TX_WORKER_EXPLICIT);
		}
		MemoryContextReset(loop_cxt);
		MemoryContextSwitchTo(loop_cxt);

		payloads = listen_collect(&woken);

		/* the extension, its version and the pipelines: once a second */
		if (TimestampDifferenceExceeds(last_round, GetCurrentTimestamp(), 1000))
		{
			SetCurrentStatementStartTimestamp();
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			last_check = round_check();
			MemoryContextReset(names_cxt);
			pipelines = NIL;
			if (last_check == ROUND_OK)
			{
				/* a probe that finds nothing leaves without listening */
				if (!probing)
					listen_open();
				pipelines = pipeline_names(names_cxt);
			}
			PopActiveSnapshot();
			CommitTransactionCommand();
			MemoryContextSwitchTo(loop_cxt);
			last_round = GetCurrentTimestamp();
		}
		names = pipelines;
		if (last_check == ROUND_OK && !probing)
			warm_new_plans(pipelines, loop_cxt);

		/* (txpipe.stop_worker() stops a running worker with SIGUSR2) */
		if (last_check == ROUND_NO_EXTENSION)
		{
			ereport(LOG, (errmsg("txpipe worker %d stops: the extension is not installed in this database", index)));
			if (index == 0)
				txpipe_launch_park(TX_PARK_NO_EXTENSION);
			worker_exit(0);
		}
		if (last_check == ROUND_VERSION)
		{
			/* the tables are of another version than this code: wait */
			static bool warned = false;

			if (!warned)
				ereport(WARNING,
						(errmsg("txpipe worker %d waits: the extension's version in this database is %s, the library's is %s",
								index, installed_version, TXPIPE_VERSION),
						 errhint("Run ALTER EXTENSION txpipe UPDATE, or restart the server to load the new library.")));
			warned = true;
			names = NIL;
			payloads = NIL;
		}

		if (payloads != NIL)
			guarded(store_notifications, payloads, loop_cxt);

		foreach(lc, names)
		{
			if (got_sigterm || ConfigReloadPending)
				break;
			routed += drain_pipeline(lfirst(lc), index, loop_cxt, &backoff);
			MemoryContextSwitchTo(loop_cxt);
		}

		if (index == 0 && last_check == ROUND_OK && !got_sigterm &&
			TimestampDifferenceExceeds(last_rotate, GetCurrentTimestamp(), 1000))
		{
			last_rotate = GetCurrentTimestamp();
			guarded(rotate_inbox, NULL, loop_cxt);
		}

		/* retention: counters folded, old batches and rejects pruned */
		if (index == 0 && last_check == ROUND_OK && !got_sigterm &&
			TimestampDifferenceExceeds(last_prune, GetCurrentTimestamp(), 60000))
		{
			last_prune = GetCurrentTimestamp();
			guarded(txpipe_retention_pass, NULL, loop_cxt);
		}

		if (got_sigterm)
			break;
		if (routed > 0 || payloads != NIL)
		{
			txpipe_launch_worked();
			probing = false;
		}
		else if (may_idle && last_check == ROUND_OK && !ConfigReloadPending &&
				 txpipe_worker_idle_timeout > 0)
		{
			TimestampTz last_work = txpipe_launch_last_work();

			/* a probe that start_worker() found stays like a worker */
			if (probing && (last_work != began || txpipe_launch_asked()))
				probing = false;
			if (probing || TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(), txpipe_worker_idle_timeout))
			{
				if (leave_if_idle(loop_cxt, probing, last_work))
					worker_exit(0);
				probing = false;
			}
		}
		if (routed > 0 && !backoff)
			continue;			/* more may be waiting */

		pgstat_report_activity(STATE_IDLE, "waiting for records");
		events = WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH;
		if (listen_conn && PQsocket(listen_conn) >= 0)
			events |= WL_SOCKET_READABLE;
		rc = WaitLatchOrSocket(MyLatch, events, listen_conn ? PQsocket(listen_conn) : PGINVALID_SOCKET,
							   Max(txpipe_worker_poll_interval, 10), PG_WAIT_EXTENSION);
		if (rc & WL_LATCH_SET)
			ResetLatch(MyLatch);
	}
	/* a cancel raised by the signal may still be pending: clear it */
	QueryCancelPending = false;
	ereport(LOG, (errmsg("txpipe worker %d stops%s", index, step_aside ? "" : " and will be restarted")));
	worker_exit(step_aside ? 0 : 1);
}

/* ----------------------------------------------------------------
 * the launcher
 * ----------------------------------------------------------------
 */

void
txpipe_register_launcher(void)
{
	BackgroundWorker w;

	worker_entry(&w, "txpipe_launcher_main", LAUNCHER_TYPE);
	RegisterBackgroundWorker(&w);
}

/* ----------------------------------------------------------------
 * SQL functions
 * ----------------------------------------------------------------
 */

Datum
txpipe_start_worker(PG_FUNCTION_ARGS)
{
	TxIdentity	id;
	BackgroundWorkerHandle *handle;
	pid_t		pid;
	List	   *running;
	BgwHandleStatus status;

	SPI_connect();
	/* txpipe's table, as its owner: nobody else writes it */
	txpipe_enter_catalog(&id);
	if (SPI_execute("UPDATE ONLY txpipe.worker_state SET enabled = true, changed_at = pg_catalog.now() WHERE NOT enabled",
					false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update txpipe.worker_state");
	txpipe_leave(&id);
	SPI_finish();

	/*
	 * A worker 0 routing here (a probe that found work, say) stays for the
	 * idle timeout.  One that is still starting may have read worker_state
	 * before this update commits and leave: then the worker 0 started here
	 * takes its place (it waits for the other's advisory lock, and steps
	 * aside if the other stays after all).
	 */
	txpipe_launch_ask();
	running = worker_pids(MyDatabaseId);
	if (running != NIL && txpipe_launch_routing())
		PG_RETURN_INT32(linitial_int(running));

	if (!txpipe_register_worker(MyDatabaseId, 0, &handle, true, TX_WORKER_EXPLICIT))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start a txpipe worker: no background worker slot is free"),
				 errhint("Raise max_worker_processes (it needs a restart) or stop other background workers.")));
	status = WaitForBackgroundWorkerStartup(handle, &pid);
	if (status != BGWH_STARTED)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the txpipe worker did not start"),
				 errhint("The server log says why.")));
	PG_RETURN_INT32(pid);
}

Datum
txpipe_stop_worker(PG_FUNCTION_ARGS)
{
	TxIdentity	id;
	int			n;

	SPI_connect();
	/* txpipe's table, as its owner: nobody else writes it */
	txpipe_enter_catalog(&id);
	if (SPI_execute("UPDATE ONLY txpipe.worker_state SET enabled = false, changed_at = pg_catalog.now() WHERE enabled",
					false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update txpipe.worker_state");
	txpipe_leave(&id);
	SPI_finish();

	/*
	 * Until this update commits, a worker that starts reads the table as
	 * it was: the launcher is told first (parked as disabled, the database
	 * is only probed, rarely), and a worker that shows up while they leave
	 * is stopped too.
	 */
	txpipe_launch_park(TX_PARK_DISABLED);
	n = signal_workers(MyDatabaseId, SIGUSR2);

	/* return once they are gone, so that a start_worker() after us starts afresh */
	for (int i = 0; i < 200 && worker_pids(MyDatabaseId) != NIL; i++)
	{
		CHECK_FOR_INTERRUPTS();
		pg_usleep(50000);
		(void) signal_workers(MyDatabaseId, SIGUSR2);
	}
	PG_RETURN_INT32(n);
}

/* ----------------------------------------------------------------
 * DROP DATABASE: the workers step aside
 * ----------------------------------------------------------------
 */

static void
utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	if (IsA(stmt, DropdbStmt))
	{
		Oid			dboid = get_database_oid(((DropdbStmt *) stmt)->dbname, true);

		/*
		 * Only for a role that may drop it: PostgreSQL checks that later,
		 * and anyone else must not be able to stop a database's workers.
		 */
		if (OidIsValid(dboid) && pg_database_ownercheck(dboid, GetUserId()) &&
			signal_workers(dboid, SIGUSR2) > 0)
		{
			/* DROP DATABASE waits up to 5 s for them to go */
			ereport(DEBUG1, (errmsg("txpipe workers of database %u asked to stop", dboid)));
		}
	}
	if (prev_utility)
		prev_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
}

void
txpipe_worker_init(void)
{
	DefineCustomIntVariable("txpipe.workers",
							"Background workers per database that drain the inbox.",
							"Each takes a share of the 16 queue classes; more than 16 gain nothing.",
							&txpipe_workers, 1, 1, 16,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.worker_poll_interval",
							"Longest time a worker waits before it looks at the inbox without being woken.",
							NULL,
							&txpipe_worker_poll_interval, 1000, 10, 3600 * 1000,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.worker_idle_timeout",
							"Time without routed records after which a database's workers leave and free their slots; 0: they stay.",
							"Only with shared_preload_libraries: the launcher starts them again when records are queued.  Workers of a database with a pipeline that takes NOTIFY stay.",
							&txpipe_worker_idle_timeout, 60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.worker_max_attempts",
							"Times a record may fail alone before the worker moves it to txpipe.rejects as poison.",
							NULL,
							&txpipe_worker_max_attempts, 3, 1, 1000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.worker_lock_timeout",
							"Longest a worker's batch waits for a lock; 0 waits for ever.",
							"A batch that times out is routed again record by record; a record that keeps timing out alone becomes poison.",
							&txpipe_worker_lock_timeout, 1000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.worker_statement_timeout",
							"Longest a worker's batch may run; 0 for no limit.",
							"A batch that times out is routed again record by record; a record that keeps timing out alone becomes poison.",
							&txpipe_worker_statement_timeout, 60000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.notify_rate",
							"Records a second a database's workers take from NOTIFY txpipe_ingest; payloads beyond it are dropped and counted.",
							"0 drops every NOTIFY txpipe_ingest payload.",
							&txpipe_notify_rate, 1000, 0, INT_MAX,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.notify_max_records",
							"Most records one NOTIFY txpipe_ingest payload may carry; a payload with more is rejected as too_large.",
							NULL,
							&txpipe_notify_max_records, 100, 0, 10000,
							PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("txpipe.databases",
							   "Databases where the launcher starts workers: * for every database, or a comma-separated list.",
							   "Only with shared_preload_libraries; a worker leaves a database without the extension at once.",
							   &txpipe_databases, "*",
							   PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("txpipe.worker_conninfo",
							   "Connection string the workers use to LISTEN on their own server; empty: the first unix socket, as the bootstrap superuser.",
							   NULL,
							   &txpipe_worker_conninfo, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.inbox_slot_seconds",
							"Seconds each of the inbox's 8 slots is written to before the next one.",
							"A slot is truncated once its records are routed and it is not the current one.",
							&txpipe_inbox_slot_seconds, 10, 1, 86400,
							PGC_SIGHUP, 0, NULL, NULL, NULL);

	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = utility_hook;
}
