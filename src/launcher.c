/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher (with shared_preload_libraries): it starts worker 0 in a
 *	  database where there is work, and the board in shared memory through
 *	  which workers and enqueuers tell it where that is.
 *
 * A database's worker 0 leaves once nothing was routed there for
 * txpipe.worker_idle_timeout (see worker.c), so idle databases hold no
 * background worker slot.  The board has one entry per database: whether
 * worker 0 runs there, why it left (parked: idle, disabled, no extension),
 * and whether work was committed while it did not run (pending).
 *
 * A transaction that put records into the inbox (enqueue, async COPY) or
 * created a pipeline marks its database at commit: it sets the latches of
 * the database's running workers (each puts its own on the board), so they
 * look at the inbox at once, and if no worker 0 runs there it marks the
 * database pending and sets the launcher's latch.  Waking by latch, not by
 * NOTIFY, keeps enqueuers' commits apart: a NOTIFYing transaction holds
 * one lock of the whole server from before its commit record until its
 * end, so NOTIFYing commits cannot share a WAL flush.  The mark
 * says only "this database": the launcher starts the same worker 0 it
 * starts at server start, as the bootstrap superuser, which reads its
 * database's catalog for itself; an enqueuer chooses nothing else, and a
 * mark already set costs it nothing more.
 *
 * Race with a worker that leaves: worker 0 clears "running" under the lock,
 * then looks at the queue once more in a new snapshot.  An enqueuer that
 * saw "running" took the lock before that, after its commit, so the last
 * look sees its records; one that came later sees "running" cleared and
 * marks the database pending.
 *
 * Work the marks miss (records committed while the launcher was down, in
 * a prepared transaction committed later, more databases than the board
 * has entries) is found by probes: a worker 0 started with nothing known
 * to do, which routes what it finds and leaves at once when there is
 * nothing.  The launcher probes every database when it starts, then each
 * parked one every LAUNCHER_SWEEP_MS, at most LAUNCHER_PROBES at a time.
 *
 * The board lives in shared memory, so it survives a launcher restart
 * (the launcher probes every database again then) and is made afresh
 * after a crash of the server, when every worker starts over anyway.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

#define LAUNCHER_NAPTIME_MS 5000	/* how often the launcher looks */
#define LAUNCHER_SOON_MS 1000		/* ... when it put something off */
#define LAUNCHER_PROBE_MS 60000		/* how often it tries a database again whose
									 * worker left at once without saying why */
#define LAUNCHER_SETTLE_MS 5000		/* a worker seen running this long after
									 * its start has run: if it stops, it
									 * comes back at once */
#define LAUNCHER_SWEEP_MS 300000	/* how often a parked database is probed */
#define LAUNCHER_PROBES 2			/* probes running at once */
#define LAUNCHER_RETRY_MS 1000		/* pending work: least time between two
									 * starts of worker 0 in one database */
#define BOARD_DATABASES 256
#define BOARD_WORKERS 16		/* txpipe.workers at most */

typedef struct BoardEntry
{
	Oid			dboid;			/* InvalidOid: free */
	bool		running;		/* worker 0 routes here */
	bool		pending;		/* work committed while it did not */
	TxPark		park;			/* why worker 0 left */
	TimestampTz parked_at;
	TimestampTz last_work;		/* a worker of this database routed */
	Latch	   *workers[BOARD_WORKERS];	/* the running workers' latches */
	bool		wanted;			/* start_worker() asked for a worker */
} BoardEntry;

typedef struct Board
{
	LWLock	   *lock;
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		overflow;		/* a mark found no free entry */
	BoardEntry	dbs[BOARD_DATABASES];
} Board;

static Board *board = NULL;
static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* this backend marks its database pending when its transaction commits */
static bool mark_at_commit = false;
static bool xact_callback_set = false;

/* worker 0 of this backend's database has "running" set */
static bool running_set = false;

/* this worker's latch is on the board, as workers[attached_index] */
static int	attached_index = -1;

PGDLLEXPORT void txpipe_launcher_main(Datum arg);

/* ----------------------------------------------------------------
 * the board
 * ----------------------------------------------------------------
 */

static void
board_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(Board)));
	RequestNamedLWLockTranche("txpipe launcher", 1);
}

static void
board_startup(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	board = ShmemInitStruct("txpipe launcher", sizeof(Board), &found);
	if (!found)
	{
		memset(board, 0, sizeof(Board));
		board->lock = &(GetNamedLWLockTranche("txpipe launcher"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* from _PG_init, while preloading */
void
txpipe_launch_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = board_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = board_startup;
}

/* whether a launcher runs on this server (txpipe is preloaded) */
bool
txpipe_launch_enabled(void)
{
	return board != NULL;
}

/* the entry of dboid, made if there is none and make; under the lock */
static BoardEntry *
board_entry(Oid dboid, bool make)
{
	BoardEntry *free_entry = NULL;

	for (int i = 0; i < BOARD_DATABASES; i++)
	{
		if (board->dbs[i].dboid == dboid)
			return &board->dbs[i];
		if (free_entry == NULL && board->dbs[i].dboid == InvalidOid)
			free_entry = &board->dbs[i];
	}
	if (!make || free_entry == NULL)
		return NULL;
	memset(free_entry, 0, sizeof(BoardEntry));
	free_entry->dboid = dboid;
	return free_entry;
}

static void
wake_launcher(Latch *latch)
{
	if (latch)
		SetLatch(latch);
}

/*
 * The database has work: called once its records are visible (or
 * prepared).  Its running workers are woken (their latches set), and the
 * launcher if none runs.  A latch set after its process left is one that
 * PGPROC slot's next owner sees as a spurious wakeup, which latches allow.
 */
static void
board_mark(Oid dboid)
{
	BoardEntry *e;
	Latch	   *wake = NULL;
	Latch	   *workers[BOARD_WORKERS];
	int			nworkers = 0;

	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(dboid, true);
	if (e == NULL)
	{
		if (!board->overflow)
			wake = board->launcher_latch;
		board->overflow = true;
	}
	else
	{
		for (int i = 0; i < BOARD_WORKERS; i++)
			if (e->workers[i])
				workers[nworkers++] = e->workers[i];
		if (!e->running && !e->pending)
		{
			e->pending = true;
			if (e->park != TX_PARK_DISABLED)
				wake = board->launcher_latch;
		}
	}
	LWLockRelease(board->lock);
	for (int i = 0; i < nworkers; i++)
		SetLatch(workers[i]);
	wake_launcher(wake);
}

static void
mark_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PREPARE:
			/* a prepared transaction's records: the worker sees them once
			 * COMMIT PREPARED makes them visible, if it still runs then */
			if (mark_at_commit && board)
				board_mark(MyDatabaseId);
			mark_at_commit = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			mark_at_commit = false;
			break;
		default:
			break;
	}
}

/*
 * This transaction gave the workers of this database something to do (it
 * put records into the inbox, or made a pipeline that may take NOTIFY):
 * at commit, its workers are woken, and the launcher starts worker 0 if
 * none runs.  False when this server has no board (txpipe is not
 * preloaded) or the board has no room for this database: the caller then
 * wakes the workers by NOTIFY txpipe_wakeup.
 */
bool
txpipe_launch_want(void)
{
	BoardEntry *e;

	if (board == NULL)
		return false;
	if (!xact_callback_set)
	{
		RegisterXactCallback(mark_xact_callback, NULL);
		xact_callback_set = true;
	}
	mark_at_commit = true;
	LWLockAcquire(board->lock, LW_SHARED);
	e = board_entry(MyDatabaseId, false);
	LWLockRelease(board->lock);
	if (e == NULL)
	{
		LWLockAcquire(board->lock, LW_EXCLUSIVE);
		e = board_entry(MyDatabaseId, true);
		LWLockRelease(board->lock);
	}
	return e != NULL;
}

/*
 * txpipe._wake_launcher(), run by CREATE EXTENSION: a worker 0 that found
 * no extension in this database (while pg_restore made it, say) parked
 * it; at commit the database is marked again and the launcher starts
 * worker 0, without waiting for the next probe.
 */
PG_FUNCTION_INFO_V1(txpipe_wake_launcher);

Datum
txpipe_wake_launcher(PG_FUNCTION_ARGS)
{
	(void) txpipe_launch_want();
	PG_RETURN_VOID();
}

static void
detach_worker(int code, Datum arg)
{
	BoardEntry *e;

	if (attached_index < 0)
		return;
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, false);
	if (e && e->workers[attached_index] == MyLatch)
		e->workers[attached_index] = NULL;
	LWLockRelease(board->lock);
	attached_index = -1;
}

/*
 * Worker index of this database puts its latch on the board: a commit
 * that queued records here sets it.  False when it cannot (no board, no
 * room): the worker is woken by NOTIFY txpipe_wakeup then.
 */
bool
txpipe_launch_attach(int index)
{
	BoardEntry *e;

	if (board == NULL || index < 0 || index >= BOARD_WORKERS)
		return false;
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, true);
	if (e)
		e->workers[index] = MyLatch;
	LWLockRelease(board->lock);
	if (e == NULL)
		return false;
	if (attached_index < 0)
		before_shmem_exit(detach_worker, (Datum) 0);
	attached_index = index;
	return true;
}

static void
clear_running(int code, Datum arg)
{
	BoardEntry *e;

	if (!running_set)
		return;
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, false);
	if (e)
		e->running = false;
	LWLockRelease(board->lock);
	running_set = false;
}

/*
 * Worker 0 routes this database from now on: clears pending (its first
 * look, after this, sees what was marked) and the park.  False when the
 * board has no room: the worker then never leaves for idleness.
 */
bool
txpipe_launch_begin(void)
{
	static bool exit_hook = false;
	BoardEntry *e;

	if (board == NULL)
		return false;
	if (!exit_hook)
	{
		before_shmem_exit(clear_running, (Datum) 0);
		exit_hook = true;
	}
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, true);
	if (e)
	{
		e->running = true;
		e->pending = false;
		e->park = TX_PARK_NONE;
		e->last_work = GetCurrentTimestamp();
		running_set = true;
	}
	LWLockRelease(board->lock);
	return e != NULL;
}

/* a worker of this database routed something */
void
txpipe_launch_worked(void)
{
	BoardEntry *e;

	if (board == NULL)
		return;
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, false);
	if (e)
		e->last_work = GetCurrentTimestamp();
	LWLockRelease(board->lock);
}

/*
 * start_worker() asks for a worker here: one that runs (a probe, say)
 * stays for the idle timeout like one that routed something.
 */
void
txpipe_launch_ask(void)
{
	BoardEntry *e;

	if (board == NULL)
		return;
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, true);
	if (e)
	{
		e->wanted = true;
		e->last_work = GetCurrentTimestamp();
	}
	LWLockRelease(board->lock);
}

/* whether start_worker() asked for a worker since the last call; clears it */
bool
txpipe_launch_asked(void)
{
	BoardEntry *e;
	bool		asked = false;

	if (board == NULL)
		return false;
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, false);
	if (e)
	{
		asked = e->wanted;
		e->wanted = false;
	}
	LWLockRelease(board->lock);
	return asked;
}

/* when a worker of this database last routed something (0: never) */
TimestampTz
txpipe_launch_last_work(void)
{
	BoardEntry *e;
	TimestampTz t = 0;

	if (board == NULL)
		return 0;
	LWLockAcquire(board->lock, LW_SHARED);
	e = board_entry(MyDatabaseId, false);
	if (e)
		t = e->last_work;
	LWLockRelease(board->lock);
	return t;
}

/*
 * Worker 0 is about to leave (running false) or stays after all (true):
 * leaving, it clears "running" before its last look at the queue.
 */
void
txpipe_launch_running(bool running)
{
	BoardEntry *e;

	if (board == NULL)
		return;
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, true);
	if (e)
	{
		e->running = running;
		if (running)
		{
			e->pending = false;
			e->last_work = GetCurrentTimestamp();
		}
	}
	running_set = running && e != NULL;
	LWLockRelease(board->lock);
}

/*
 * Whether worker 0 of this database got past its start and routes (true
 * without the board: no launcher starts workers that may leave then).
 */
bool
txpipe_launch_routing(void)
{
	BoardEntry *e;
	bool		routing;

	if (board == NULL)
		return true;
	LWLockAcquire(board->lock, LW_SHARED);
	e = board_entry(MyDatabaseId, false);
	routing = e != NULL && e->running;
	LWLockRelease(board->lock);
	return routing;
}

/*
 * Worker 0 leaves, and says why (or stop_worker() parks the database as
 * disabled before it signals the workers); the launcher is told at once.
 */
void
txpipe_launch_park(TxPark why)
{
	BoardEntry *e;
	Latch	   *wake;

	if (board == NULL)
		return;
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	e = board_entry(MyDatabaseId, true);
	if (e)
	{
		e->running = false;
		e->park = why;
		e->parked_at = GetCurrentTimestamp();
	}
	running_set = false;
	wake = board->launcher_latch;
	LWLockRelease(board->lock);
	wake_launcher(wake);
}

bool
txpipe_database_listed(const char *name)
{
	char	   *list;
	List	   *names;
	ListCell   *lc;

	if (txpipe_databases == NULL || strcmp(txpipe_databases, "*") == 0)
		return true;
	list = pstrdup(txpipe_databases);
	if (!SplitIdentifierString(list, ',', &names))
		return false;
	foreach(lc, names)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

/* ----------------------------------------------------------------
 * the launcher
 * ----------------------------------------------------------------
 */

typedef struct LaunchedDb
{
	Oid			dboid;
	BackgroundWorkerHandle *handle;
	bool		seen_running;	/* a look found the worker running */
	bool		probe;			/* the worker was started as a probe */
	TimestampTz registered_at;
} LaunchedDb;

typedef enum LaunchKind
{
	LAUNCH_NONE,
	LAUNCH_WORKER,
	LAUNCH_PROBE
} LaunchKind;

/*
 * What to start in a database whose worker 0 (started by this launcher)
 * does not run.  e is a copy of its board entry (dboid invalid if none).
 */
static LaunchKind
launch_kind(LaunchedDb *d, BoardEntry *e, bool sweep_all, TimestampTz now)
{
	bool		sweep = sweep_all ||
		TimestampDifferenceExceeds(e->parked_at, now, LAUNCHER_SWEEP_MS);
	bool		retry_ok = d == NULL || d->handle == NULL ||
		TimestampDifferenceExceeds(d->registered_at, now, LAUNCHER_RETRY_MS);

	if (e->running)
		return LAUNCH_NONE;		/* one runs there, started by someone else */
	switch (e->park)
	{
		case TX_PARK_IDLE:
		case TX_PARK_NO_EXTENSION:
			if (e->pending)
				return retry_ok ? LAUNCH_WORKER : LAUNCH_NONE;
			return sweep ? LAUNCH_PROBE : LAUNCH_NONE;
		case TX_PARK_DISABLED:
			/* start_worker() starts its own; a change by hand is probed */
			return sweep ? LAUNCH_PROBE : LAUNCH_NONE;
		case TX_PARK_NONE:
			break;
	}
	if (d == NULL || d->handle == NULL)
		return txpipe_worker_idle_timeout > 0 ? LAUNCH_PROBE : LAUNCH_WORKER;
	if (e->pending)
		return retry_ok ? LAUNCH_WORKER : LAUNCH_NONE;
	/*
	 * A worker that ran and stopped without parking (terminated, crashed)
	 * (a probe too, which found work) comes back once LAUNCHER_SETTLE_MS
	 * have passed since its start; one that left sooner without saying why
	 * is tried again a minute later.
	 */
	if (d->seen_running || TimestampDifferenceExceeds(d->registered_at, now, LAUNCHER_SETTLE_MS))
		return LAUNCH_WORKER;
	if (TimestampDifferenceExceeds(d->registered_at, now, LAUNCHER_PROBE_MS))
		return LAUNCH_PROBE;
	return LAUNCH_NONE;
}

/* one look; returns how long to wait before the next */
static long
launch_all(LaunchedDb **dbs, int *ndbs)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	List	   *oids = NIL;
	ListCell   *lc;
	int			probes = 0;
	bool		sweep_all;
	bool		soon = false;
	TimestampTz now = GetCurrentTimestamp();

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate && txpipe_database_listed(NameStr(db->datname)))
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			oids = lappend_oid(oids, db->oid);
			MemoryContextSwitchTo(old);
		}
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();

	/* entries of databases dropped or no longer listed go */
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	sweep_all = board->overflow;
	board->overflow = false;
	for (int i = 0; i < BOARD_DATABASES; i++)
		if (board->dbs[i].dboid != InvalidOid && !board->dbs[i].running &&
			!list_member_oid(oids, board->dbs[i].dboid))
		{
			bool		attached = false;

			for (int j = 0; j < BOARD_WORKERS; j++)
				attached |= board->dbs[i].workers[j] != NULL;
			if (!attached)
				board->dbs[i].dboid = InvalidOid;
		}
	LWLockRelease(board->lock);

	/* probes under way */
	for (int i = 0; i < *ndbs; i++)
	{
		pid_t		pid;

		/* a probe still there after LAUNCHER_SETTLE_MS found work */
		if ((*dbs)[i].probe && (*dbs)[i].handle &&
			GetBackgroundWorkerPid((*dbs)[i].handle, &pid) != BGWH_STOPPED &&
			!TimestampDifferenceExceeds((*dbs)[i].registered_at, now, LAUNCHER_SETTLE_MS))
			probes++;
	}

	foreach(lc, oids)
	{
		Oid			dboid = lfirst_oid(lc);
		LaunchedDb *d = NULL;
		BoardEntry	e;
		BoardEntry *found;
		LaunchKind	kind;
		pid_t		pid;

		for (int i = 0; i < *ndbs; i++)
			if ((*dbs)[i].dboid == dboid)
				d = &(*dbs)[i];
		if (d && d->handle && GetBackgroundWorkerPid(d->handle, &pid) != BGWH_STOPPED)
		{
			/*
			 * One that leaves at once, however slowly it starts, has not
			 * run; a probe still there after that found work and stays.
			 */
			if (TimestampDifferenceExceeds(d->registered_at, now, LAUNCHER_SETTLE_MS))
			{
				d->seen_running = true;
				d->probe = false;	/* no longer one of the probes under way */
			}
			continue;
		}

		LWLockAcquire(board->lock, LW_SHARED);
		found = board_entry(dboid, false);
		if (found)
			e = *found;
		else
			memset(&e, 0, sizeof(e));
		LWLockRelease(board->lock);

		kind = launch_kind(d, &e, sweep_all, now);
		if (kind == LAUNCH_NONE)
		{
			if (e.pending && !e.running && e.park != TX_PARK_DISABLED)
				soon = true;
			continue;
		}
		if (kind == LAUNCH_PROBE && probes >= LAUNCHER_PROBES)
		{
			soon = true;
			continue;
		}
		if (d == NULL)
		{
			*dbs = repalloc(*dbs, sizeof(LaunchedDb) * (*ndbs + 1));
			d = &(*dbs)[(*ndbs)++];
			d->dboid = dboid;
			d->handle = NULL;
		}
		if (d->handle)
			pfree(d->handle);
		d->handle = NULL;
		d->seen_running = false;
		d->probe = kind == LAUNCH_PROBE;
		d->registered_at = now;
		if (!txpipe_register_worker(dboid, 0, &d->handle, true,
									kind == LAUNCH_PROBE ? TX_WORKER_PROBE : 0))
		{
			ereport(WARNING,
					(errmsg("txpipe launcher could not start a worker for database %u", dboid),
					 errhint("Raise max_worker_processes (README, \"Worker slots\").")));
			d->handle = NULL;
			soon = true;
		}
		else if (kind == LAUNCH_PROBE)
			probes++;
	}
	list_free(oids);
	return soon ? LAUNCHER_SOON_MS : LAUNCHER_NAPTIME_MS;
}

static void
launcher_leave(int code, Datum arg)
{
	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	if (board->launcher_pid == MyProcPid)
	{
		board->launcher_pid = 0;
		board->launcher_latch = NULL;
	}
	LWLockRelease(board->lock);
}

void
txpipe_launcher_main(Datum arg)
{
	LaunchedDb *dbs;
	int			ndbs = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("txpipe launcher");
	dbs = MemoryContextAlloc(TopMemoryContext, sizeof(LaunchedDb));

	LWLockAcquire(board->lock, LW_EXCLUSIVE);
	board->launcher_pid = MyProcPid;
	board->launcher_latch = &MyProc->procLatch;
	LWLockRelease(board->lock);
	before_shmem_exit(launcher_leave, (Datum) 0);

	for (;;)
	{
		long		naptime;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		naptime = launch_all(&dbs, &ndbs);
		pgstat_report_activity(STATE_IDLE, NULL);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 naptime, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}
