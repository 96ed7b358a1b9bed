/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  Draining the inbox: txpipe.drain(), and what each worker batch does.
 *
 * Each pipeline's inbox rows fall into TXPIPE_QUEUE_CLASSES classes by the
 * hash of the order key, so the records of one key stay in one class and
 * are routed in order.  A class's position (txpipe.queue_positions) is two
 * snapshots and a cursor: every row whose transaction is visible in
 * done_upto is consumed; a pass routes the rows visible in pass_upto but
 * not in done_upto, in (xid, id) order, and remembers the last one; when
 * the pass is through, done_upto becomes pass_upto.  Such a set of rows is
 * final once its transactions are over, so nothing is passed over, and a
 * transaction still running when a pass starts simply falls into the next
 * one: no reader waits for a long writer.
 *
 * The position row is locked (FOR UPDATE SKIP LOCKED) for the batch and
 * moved in the same transaction as the rows routed from it: two workers
 * never take the same class at once, and a crash repeats nothing and
 * loses nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(txpipe_drain);
PG_FUNCTION_INFO_V1(txpipe_enqueue_text);
PG_FUNCTION_INFO_V1(txpipe_enqueue_texts);
PG_FUNCTION_INFO_V1(txpipe_enqueue_jsonb);
PG_FUNCTION_INFO_V1(txpipe_enqueue_jsonbs);

static SPIPlanPtr lock_plan = NULL;
static SPIPlanPtr init_plan = NULL;
static SPIPlanPtr snap_plan = NULL;
static SPIPlanPtr fetch_running_plan = NULL;
static SPIPlanPtr fetch_new_plan = NULL;
static SPIPlanPtr update_plan = NULL;
static SPIPlanPtr poison_plan = NULL;
static SPIPlanPtr enqueue_plan[2] = {NULL, NULL};	/* [true]: no NOTIFY */

/* records per inbox statement, and the bytes that end a statement early */
#define QUEUE_PUT_CHUNK 1000
#define QUEUE_PUT_CHUNK_BYTES (8 * 1024 * 1024)

typedef struct QueuePos
{
	int			cls;
	char	   *done;
	char	   *pass;			/* NULL: no pass under way */
	char	   *last_xid;
	int64		last_id;
	bool		stored_pass;	/* pass is in the table already */
	bool		exhausted;		/* nothing more to take now */
	bool		dirty;			/* to be written back */
	int64		consumed;		/* taken since written back */
} QueuePos;

#define keep txpipe_spi_keep_generic

static void
prepare_plans(void)
{
	Oid			t[8];

	if (update_plan)
		return;
	t[0] = TEXTOID;
	t[1] = INT4OID;
	/*
	 * A class has work when a row not visible in done_upto is visible now:
	 * a row of a transaction in done_upto's xip list (an index lookup by
	 * xid each: as a filter, ANY (xips) reads the class), or
	 * of one from done_upto's xmax on.  Asked as a range from done_upto's
	 * xmin, it would read every row since the oldest transaction running
	 * then, on every pass.
	 */
	lock_plan = keep("SELECT q.class, q.done_upto::pg_catalog.text, q.pass_upto::pg_catalog.text, q.last_xid::pg_catalog.text, q.last_id"
					 "  FROM txpipe.queue_positions q"
					 " WHERE q.pipeline = $1 AND (($2 >> q.class) & 1) = 1"
					 "   AND (q.pass_upto IS NOT NULL"
					 "		OR EXISTS (SELECT 1 FROM pg_catalog.pg_snapshot_xip(q.done_upto) x"
					 "				   CROSS JOIN LATERAL (SELECT 1 FROM txpipe.inbox i"
					 "									   WHERE i.pipeline = q.pipeline AND i.class = q.class AND i.xid = x"
					 "									   LIMIT 1) i"
					 "				   WHERE pg_catalog.pg_visible_in_snapshot(x, pg_catalog.pg_current_snapshot()))"
					 "		OR EXISTS (SELECT 1 FROM txpipe.inbox i"
					 "				   WHERE i.pipeline = q.pipeline AND i.class = q.class"
					 "					 AND i.xid >= pg_catalog.pg_snapshot_xmax(q.done_upto)"
					 "					 AND pg_catalog.pg_visible_in_snapshot(i.xid, pg_catalog.pg_current_snapshot())))"
					 " ORDER BY q.class FOR UPDATE OF q SKIP LOCKED", 2, t);
	init_plan = keep("INSERT INTO txpipe.queue_positions (pipeline, class)"
					 " SELECT $1, c FROM pg_catalog.generate_series(0, 15) c"
					 "   WHERE EXISTS (SELECT 1 FROM txpipe.pipelines WHERE name = $1)"
					 "	 AND NOT EXISTS (SELECT 1 FROM txpipe.queue_positions WHERE pipeline = $1)"
					 " ON CONFLICT DO NOTHING", 1, t);
	snap_plan = keep("SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text", 0, NULL);

	/*
	 * Two queries for every class taken, per class (in the order given) its
	 * rows visible in pass but not in done, after (lx, li), at most lim:
	 * those of the transactions that were running at done and are over at
	 * pass (an index lookup per transaction: as a filter on the class's
	 * rows in (xid, id) order, it read every row left in the class), then
	 * those of the transactions that started after done.  All of the
	 * first have smaller ids than done's xmax, all of the second not, so
	 * the first query's rows come before the second's in (xid, id) order.
	 * A snapshot's xip list is in ascending order: the first query's rows
	 * come in (xid, id) order per class by the ordinality.
	 */
	t[1] = INT4ARRAYOID;
	t[2] = TEXTARRAYOID;
	t[3] = TEXTARRAYOID;
	t[4] = TEXTARRAYOID;
	t[5] = INT8ARRAYOID;
	t[6] = INT4ARRAYOID;
	fetch_running_plan = keep("SELECT p.c, r.id, r.xid::pg_catalog.text, r.source, r.doc"
							  "  FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) WITH ORDINALITY AS p(c, done, pass, lx, li, lim, ord)"
							  " CROSS JOIN LATERAL ("
							  "  SELECT i.id, i.xid, i.source, i.doc"
							  "	FROM pg_catalog.pg_snapshot_xip(p.done::pg_catalog.pg_snapshot) WITH ORDINALITY AS x(xid, o)"
							  "   CROSS JOIN LATERAL (SELECT id, xid, source, doc FROM txpipe.inbox"
							  "						WHERE pipeline = $1 AND class = p.c AND xid = x.xid"
							  "						  AND (xid, id) > (p.lx::pg_catalog.xid8, p.li)"
							  "						ORDER BY xid, id LIMIT p.lim) i"
							  "   WHERE pg_catalog.pg_visible_in_snapshot(x.xid, p.pass::pg_catalog.pg_snapshot)"
							  "   ORDER BY x.o, i.id LIMIT p.lim) r"
							  " ORDER BY p.ord, r.xid, r.id", 7, t);
	fetch_new_plan = keep("SELECT p.c, r.id, r.xid::pg_catalog.text, r.source, r.doc"
						  "  FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) WITH ORDINALITY AS p(c, done, pass, lx, li, lim, ord)"
						  " CROSS JOIN LATERAL ("
						  "  SELECT id, xid, source, doc FROM txpipe.inbox"
						  "   WHERE pipeline = $1 AND class = p.c"
						  "	 AND xid >= pg_catalog.pg_snapshot_xmax(p.done::pg_catalog.pg_snapshot)"
						  "	 AND xid < pg_catalog.pg_snapshot_xmax(p.pass::pg_catalog.pg_snapshot)"
						  "	 AND pg_catalog.pg_visible_in_snapshot(xid, p.pass::pg_catalog.pg_snapshot)"
						  "	 AND (xid, id) > (p.lx::pg_catalog.xid8, p.li)"
						  "   ORDER BY xid, id LIMIT p.lim) r"
						  " ORDER BY p.ord, r.xid, r.id", 7, t);
	t[6] = INT8ARRAYOID;
	update_plan = keep("UPDATE txpipe.queue_positions q"
					   "   SET done_upto = u.done::pg_catalog.pg_snapshot, pass_upto = u.pass::pg_catalog.pg_snapshot,"
					   "	   last_xid = u.lx::pg_catalog.xid8, last_id = u.li, consumed = q.consumed + u.n,"
					   "	   updated_at = pg_catalog.clock_timestamp()"
					   "  FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7)) AS u(c, done, pass, lx, li, n)"
					   " WHERE q.pipeline = $1 AND q.class = u.c", 7, t);
	t[0] = TEXTOID;
	t[1] = TEXTOID;
	t[2] = TEXTOID;
	t[3] = TEXTOID;
	poison_plan = keep("INSERT INTO txpipe.rejects (pipeline, source, payload, error_code, error_path, message)"
					   " VALUES ($1, $2, $3, 'poison', '$', $4)", 4, t);
}

static char *
getstr(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);
}

/* locks the positions of the classes in mask that have work; *npos set */
static QueuePos *
lock_positions(const char *pipeline, uint32 mask, int *npos)
{
	Datum		args[2];
	QueuePos   *pos;
	int			rc;
	int			nest;

	args[0] = CStringGetTextDatum(pipeline);
	args[1] = Int32GetDatum((int32) mask);
	nest = txpipe_plan_by_index();
	rc = txpipe_spi_exec(lock_plan, args, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not lock queue positions: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		/* a pipeline made before the queue existed has no positions yet */
		rc = txpipe_spi_exec(init_plan, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "could not create queue positions: %s", SPI_result_code_string(rc));
		if (SPI_processed > 0)
			rc = txpipe_spi_exec(lock_plan, args, NULL, false, 0);
	}
	AtEOXact_GUC(true, nest);
	*npos = SPI_processed;
	pos = palloc0(sizeof(QueuePos) * Max(*npos, 1));
	for (int i = 0; i < *npos; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *last_id;

		pos[i].cls = DatumGetInt16(SPI_getbinval(tup, desc, 1, &isnull));
		pos[i].done = getstr(tup, desc, 2);
		pos[i].pass = getstr(tup, desc, 3);
		pos[i].last_xid = getstr(tup, desc, 4);
		last_id = getstr(tup, desc, 5);
		pos[i].last_id = last_id ? strtoi64(last_id, NULL, 10) : 0;
		pos[i].stored_pass = (pos[i].pass != NULL);
		if (pos[i].last_xid == NULL)
			pos[i].last_xid = "0";
	}
	SPI_freetuptable(SPI_tuptable);
	return pos;
}

static Datum
text_array(char **v, bool *nulls, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			lb = 1;

	for (int i = 0; i < n; i++)
		d[i] = v[i] ? CStringGetTextDatum(v[i]) : (Datum) 0;
	return PointerGetDatum(construct_md_array(d, nulls, 1, &n, &lb, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
int_array(Datum *d, int n, Oid type)
{
	bool		byval = (type == INT4OID) ? true : FLOAT8PASSBYVAL;

	return PointerGetDatum(construct_array(d, n, type, type == INT4OID ? 4 : 8, byval,
										   type == INT4OID ? TYPALIGN_INT : TYPALIGN_DOUBLE));
}

/* writes back the positions marked dirty, in one statement */
static void
write_positions(const char *pipeline, QueuePos *pos, int npos)
{
	Datum		args[7];
	Datum	   *cls = palloc(sizeof(Datum) * npos);
	char	  **done = palloc(sizeof(char *) * npos);
	char	  **pass = palloc(sizeof(char *) * npos);
	char	  **lx = palloc(sizeof(char *) * npos);
	bool	   *pnull = palloc0(sizeof(bool) * npos);
	bool	   *nonull = palloc0(sizeof(bool) * npos);
	Datum	   *li = palloc(sizeof(Datum) * npos);
	Datum	   *n = palloc(sizeof(Datum) * npos);
	int			m = 0;
	int			rc;

	for (int k = 0; k < npos; k++)
	{
		QueuePos   *p = &pos[k];

		if (!p->dirty)
			continue;
		cls[m] = Int32GetDatum(p->cls);
		done[m] = p->done;
		pass[m] = p->pass;
		lx[m] = p->pass ? p->last_xid : NULL;
		pnull[m] = (p->pass == NULL);
		li[m] = Int64GetDatum(p->pass ? p->last_id : 0);
		n[m] = Int64GetDatum(p->consumed);
		m++;
		p->dirty = false;
		p->consumed = 0;
		p->stored_pass = (p->pass != NULL);
	}
	if (m == 0)
		return;
	args[0] = CStringGetTextDatum(pipeline);
	args[1] = int_array(cls, m, INT4OID);
	args[2] = text_array(done, nonull, m);
	args[3] = text_array(pass, pnull, m);
	args[4] = text_array(lx, pnull, m);
	args[5] = int_array(li, m, INT8OID);
	args[6] = int_array(n, m, INT8OID);
	rc = txpipe_spi_exec(update_plan, args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE || SPI_processed != (uint64) m)
		elog(ERROR, "could not move the queue positions of pipeline \"%s\"", pipeline);
}

static const char *const sources[] = {"queue", "copy", "notify"};

/* the xmax of snapshot text "xmin:xmax:xip,..." */
static uint64
snapshot_xmax(const char *snap)
{
	const char *colon = strchr(snap, ':');

	return colon ? strtou64(colon + 1, NULL, 10) : 0;
}

/* does snapshot text "xmin:xmax:xip,..." list running transactions? */
static bool
snapshot_has_xip(const char *snap)
{
	size_t		len = strlen(snap);

	return len > 0 && snap[len - 1] != ':';
}

/*
 * Runs one of the fetch plans and appends its rows to recs and src from
 * *n on, counting them in got and moving the cursors of the classes in
 * taken (their strings in poscxt).  The rows of each class must come after
 * its cursor, in (xid, id) order: the cursor is what the next batch of the
 * pass starts after.  The rows are read through a cursor, a few at a time,
 * and reading stops once the payloads taken reach TXPIPE_BATCH_BYTES
 * (*bytes counts them, *cut says so): a batch never holds more than that
 * and one record, whatever txpipe.batch_size is.
 */
#define FETCH_CHUNK 64

static void
fetch_rows(SPIPlanPtr fetch, Datum *args, QueuePos **taken, int m, int *got,
		   TxRecord *recs, char **src, int *n, int room, MemoryContext poscxt,
		   Size *bytes, bool *cut)
{
	MemoryContext cxt = CurrentMemoryContext;
	Portal		portal;
	uint64		k = 0;

	portal = SPI_cursor_open(NULL, fetch, args, NULL, false);
	MemoryContextSwitchTo(cxt);
	for (;;)
	{
		uint64		rows;

		CHECK_FOR_INTERRUPTS();
		SPI_cursor_fetch(portal, true, FETCH_CHUNK);
		MemoryContextSwitchTo(cxt);
		rows = SPI_processed;
		if (rows == 0)
			break;
		if (rows > (uint64) (room - *n))
			elog(ERROR, "the inbox returned more rows than asked for");
		for (uint64 i = 0; i < rows; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			bool		isnull;
			int			c = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
			int64		id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			char	   *xid = getstr(tup, desc, 3);
			uint64		x = strtou64(xid, NULL, 10);
			uint64		lx;
			QueuePos   *p;
			MemoryContext o;

			while (k < m && taken[k]->cls != c)
				k++;
			if (k >= m)
				elog(ERROR, "inbox rows of class %d came out of order", c);
			p = taken[k];
			lx = strtou64(p->last_xid, NULL, 10);
			if (x < lx || (x == lx && id <= p->last_id))
				elog(ERROR, "inbox rows of class %d came out of order", c);
			got[k]++;
			src[*n] = getstr(tup, desc, 4);
			recs[*n].payload = getstr(tup, desc, 5);
			recs[*n].len = strlen(recs[*n].payload);
			*bytes += recs[*n].len;
			(*n)++;
			p->last_id = id;
			o = MemoryContextSwitchTo(poscxt);
			p->last_xid = pstrdup(xid);
			MemoryContextSwitchTo(o);
			if (*bytes >= TXPIPE_BATCH_BYTES)
			{
				*cut = true;
				break;
			}
		}
		SPI_freetuptable(SPI_tuptable);
		if (*cut)
			break;
	}
	SPI_cursor_close(portal);
	MemoryContextSwitchTo(cxt);
}

/*
 * Takes up to about limit rows, spread over the positions that are not
 * exhausted, into the arrays returned (payloads in the current memory context), and
 * moves the positions in memory (their strings in poscxt).  Returns how
 * many rows.
 */
static int
take_rows(TxPlan *plan, QueuePos *pos, int npos, int start, int limit,
		  TxRecord **recs_out, char ***src_out, MemoryContext poscxt)
{
	Datum		args[7];
	Datum	   *cls = palloc(sizeof(Datum) * npos);
	char	  **done = palloc(sizeof(char *) * npos);
	char	  **pass = palloc(sizeof(char *) * npos);
	char	  **lx = palloc(sizeof(char *) * npos);
	bool	   *nonull = palloc0(sizeof(bool) * npos);
	Datum	   *li = palloc(sizeof(Datum) * npos);
	Datum	   *lim = palloc(sizeof(Datum) * npos);
	QueuePos  **taken = palloc(sizeof(QueuePos *) * npos);
	int		   *got = palloc0(sizeof(int) * npos);
	int			m = 0;
	int			each;
	int			rc;
	int			n = 0;
	int			room;
	bool		running = false;
	char	   *snap = NULL;
	int			nest;
	Size		bytes = 0;
	bool		cut = false;
	TxRecord   *recs;
	char	  **src;
	MemoryContext o;

	for (int k = 0; k < npos; k++)
		if (!pos[(start + k) % npos].exhausted)
			taken[m++] = &pos[(start + k) % npos];
	if (m == 0)
		return 0;
	each = Max((limit + m - 1) / m, 1);
	room = m * each;
	for (int k = 0; k < m; k++)
	{
		QueuePos   *p = taken[k];

		if (p->pass == NULL)
		{
			if (snap == NULL)
			{
				rc = txpipe_spi_exec(snap_plan, NULL, NULL, false, 1);
				if (rc != SPI_OK_SELECT || SPI_processed != 1)
					elog(ERROR, "could not take a snapshot");
				o = MemoryContextSwitchTo(poscxt);
				snap = getstr(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
				MemoryContextSwitchTo(o);
				SPI_freetuptable(SPI_tuptable);
			}
			p->pass = snap;
			p->last_xid = "0";
			p->last_id = 0;
		}
		if (snapshot_has_xip(p->done))
			running = true;
		cls[k] = Int32GetDatum(p->cls);
		done[k] = p->done;
		pass[k] = p->pass;
		li[k] = Int64GetDatum(p->last_id);
		lim[k] = Int32GetDatum(each);
	}
	recs = palloc0(sizeof(TxRecord) * room);
	src = palloc(sizeof(char *) * room);
	args[0] = CStringGetTextDatum(plan->name);
	args[1] = int_array(cls, m, INT4OID);
	args[2] = text_array(done, nonull, m);
	args[3] = text_array(pass, nonull, m);

	/*
	 * Each class's rows come in index order, merged across the inbox's
	 * partitions, so a batch reads what it takes: planned with a sort (or
	 * on statistics of a slot that looked empty), a batch would read every
	 * row left in the class, which grows with the backlog.
	 */
	nest = txpipe_plan_by_index();

	/* the transactions that were running at done (none: nothing to ask) */
	if (running)
	{
		for (int k = 0; k < m; k++)
			lx[k] = taken[k]->last_xid;
		args[4] = text_array(lx, nonull, m);
		args[5] = int_array(li, m, INT8OID);
		args[6] = int_array(lim, m, INT4OID);
		fetch_rows(fetch_running_plan, args, taken, m, got, recs, src, &n, room, poscxt,
				   &bytes, &cut);
	}

	/* then those that started after done, as many as there is room for */
	if (n < room && !cut)
	{
		for (int k = 0; k < m; k++)
		{
			QueuePos   *p = taken[k];
			uint64		from = snapshot_xmax(p->done);

			/*
			 * The index scan starts at the row comparison with the cursor,
			 * not at done's xmax: a cursor before done's xmax (a new pass,
			 * or one that took rows of running transactions) is moved up
			 * to it, or the scan would read every row of the class below
			 * it, which grows with the inbox.
			 */
			if (strtou64(p->last_xid, NULL, 10) < from)
			{
				lx[k] = psprintf(UINT64_FORMAT, from);
				li[k] = Int64GetDatum(PG_INT64_MIN);
			}
			else
			{
				lx[k] = p->last_xid;
				li[k] = Int64GetDatum(p->last_id);
			}
			lim[k] = Int32GetDatum(each - got[k]);
		}
		args[4] = text_array(lx, nonull, m);
		args[5] = int_array(li, m, INT8OID);
		args[6] = int_array(lim, m, INT4OID);
		fetch_rows(fetch_new_plan, args, taken, m, got, recs, src, &n, room, poscxt,
				   &bytes, &cut);
	}
	AtEOXact_GUC(true, nest);

	for (int k = 0; k < m; k++)
	{
		QueuePos   *p = taken[k];

		p->consumed += got[k];
		/* a batch cut by its bytes says nothing of what is left */
		if (got[k] < each && !cut)
		{
			/* the pass is through */
			p->done = p->pass;
			p->pass = NULL;
			p->exhausted = true;
			if (got[k] > 0 || p->stored_pass)
				p->dirty = true;
		}
		else
			p->dirty = true;
	}
	*recs_out = recs;
	*src_out = src;
	return n;
}

/* routes (or dead-letters) the records taken, each source's together */
static void
route_taken(TxPlan *plan, TxRecord *recs, char **src, int n, const char *poison, TxCounts *counts)
{
	if (poison)
	{
		for (int i = 0; i < n; i++)
		{
			Datum		a[4];

			a[0] = CStringGetTextDatum(plan->name);
			a[1] = CStringGetTextDatum(src[i]);
			a[2] = CStringGetTextDatum(recs[i].payload);
			a[3] = CStringGetTextDatum(poison);
			if (txpipe_spi_exec(poison_plan, a, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not store a poison record");
			counts->received++;
			counts->rejected++;
		}
		return;
	}
	for (int s = 0; s < lengthof(sources); s++)
	{
		TxRecord   *part = palloc(sizeof(TxRecord) * Max(n, 1));
		int			m = 0;

		for (int i = 0; i < n; i++)
			if (strcmp(src[i], sources[s]) == 0)
				part[m++] = recs[i];
		if (m > 0)
			txpipe_route(plan, part, m, sources[s], counts);
	}
}

/*
 * Routes up to max records of pipeline waiting in the classes of mask, in
 * batches of txpipe.batch_size taken from all those classes together,
 * starting with the class after start (so that no class starves).  With
 * poison set, the records taken are dead-lettered with that message
 * instead.  Runs inside a transaction and an SPI connection; the positions
 * taken stay locked until it ends.  Returns how many records it consumed.
 */
static int64
queue_drain(const char *pipeline, uint32 mask, int max, int start,
			const char *poison, TxCounts *counts)
{
	int			npos;
	QueuePos   *pos;
	TxPlan	   *plan;
	int64		total = 0;
	int			batch = Max(txpipe_batch_size, 1);
	MemoryContext work;
	MemoryContext old;

	prepare_plans();
	pos = lock_positions(pipeline, mask, &npos);
	if (npos == 0)
		return 0;
	plan = txpipe_get_plan(pipeline);
	work = AllocSetContextCreate(CurrentMemoryContext, "txpipe queue batch", ALLOCSET_DEFAULT_SIZES);
	while (total < max)
	{
		int			limit = (int) Min((int64) batch, max - total);
		TxRecord   *recs = NULL;
		char	  **src = NULL;
		int			n;
		bool		open = false;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(work);
		n = take_rows(plan, pos, npos, start, limit, &recs, &src, old);
		if (n > 0)
			route_taken(plan, recs, src, n, poison, counts);
		write_positions(plan->name, pos, npos);
		MemoryContextSwitchTo(old);
		MemoryContextReset(work);
		total += n;
		for (int k = 0; k < npos; k++)
			if (!pos[k].exhausted)
				open = true;
		if (!open)
			break;
	}
	MemoryContextDelete(work);
	return total;
}

/*
 * The inbox and the positions are read and written as the owner of
 * txpipe's tables; the records taken are routed as their pipeline's owner.
 */
int64
txpipe_queue_drain(const char *pipeline, uint32 mask, int max, int start,
				   const char *poison, TxCounts *counts)
{
	TxIdentity	id;
	int64		n;

	txpipe_enter_catalog(&id);
	n = queue_drain(pipeline, mask, max, start, poison, counts);
	txpipe_leave(&id);
	return n;
}

/*
 * txpipe.drain(pipeline text DEFAULT NULL, max_records int DEFAULT NULL):
 * what a worker does, in the caller's transaction.  NULL pipeline: every
 * pipeline.  Classes another transaction is draining are skipped.
 */
Datum
txpipe_drain(PG_FUNCTION_ARGS)
{
	int64		max = PG_ARGISNULL(1) ? PG_INT64_MAX : PG_GETARG_INT32(1);
	int64		total = 0;
	TxCounts	counts = {0};
	List	   *names = NIL;
	ListCell   *lc;

	if (!PG_ARGISNULL(1) && max < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_records must not be negative")));
	txpipe_spi_connect();
	if (!PG_ARGISNULL(0))
	{
		char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));

		/* an unknown pipeline is an error; another role's, too */
		txpipe_check_owner(txpipe_get_plan(name), "drain");
		names = list_make1(name);
	}
	else
	{
		TxIdentity	id;

		/* the pipelines whose owner the caller acts for */
		txpipe_enter_catalog(&id);
		if (SPI_execute_with_args("SELECT p.name FROM ONLY txpipe.pipelines p"
								  " WHERE pg_catalog.pg_has_role($1, p.owner, 'USAGE') ORDER BY p.name",
								  1, (Oid[]) {OIDOID}, (Datum[]) {ObjectIdGetDatum(id.userid)},
								  NULL, true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read txpipe.pipelines");
		txpipe_leave(&id);
		for (uint64 i = 0; i < SPI_processed; i++)
			names = lappend(names, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	}
	foreach(lc, names)
	{
		if (total >= max)
			break;
		total += txpipe_queue_drain(lfirst(lc), 0xFFFF, (int) Min(max - total, (int64) PG_INT32_MAX),
									0, NULL, &counts);
	}
	SPI_finish();
	PG_RETURN_INT64(total);
}

/* the class of a record with this order key; the same as _queue_class() */
int
txpipe_queue_class(const char *key, int len)
{
	if (key == NULL)
		return (int) (pg_prng_uint32(&pg_global_prng_state) % TXPIPE_QUEUE_CLASSES);
	return (int) ((DatumGetUInt32(hash_any((const unsigned char *) key, len)) & 0x7fffffff)
				  % TXPIPE_QUEUE_CLASSES);
}

/*
 * The inbox slot a row written now goes to: what txpipe._inbox_slot()
 * computes, the column's default, without running a SQL function per
 * statement.
 */
static int16
inbox_slot(void)
{
	int64		us = GetCurrentTimestamp() +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
	/* extract(epoch ...)::bigint rounds to the nearest second */
	int64		secs = (us + USECS_PER_SEC / 2) / USECS_PER_SEC;

	return (int16) ((secs / Max(txpipe_inbox_slot_seconds, 1)) % 8);
}

/*
 * Puts recs[0..n-1] (payloads as received) into the inbox, in statements
 * of at most QUEUE_PUT_CHUNK records or QUEUE_PUT_CHUNK_BYTES.
 */
static void
put_rows(TxPlan *plan, TxRecord *recs, int n, const char *source)
{
	Datum	   *classes;
	Datum	   *docs;
	Datum		args[5];
	TxIdentity	id;
	MemoryContext chunk;
	MemoryContext old;
	int			from = 0;
	bool		by_latch;

	if (n == 0)
		return;
	/*
	 * At commit the workers are woken through shared memory, and the
	 * launcher starts one here if none runs (launcher.c); without that
	 * board, by NOTIFY txpipe_wakeup.
	 */
	by_latch = txpipe_launch_want();
	/* writers may not write the inbox themselves: as its owner */
	txpipe_enter_catalog(&id);
	if (enqueue_plan[by_latch] == NULL)
	{
		Oid			t[5] = {TEXTOID, TEXTOID, INT2ARRAYOID, TEXTARRAYOID, INT2OID};

		enqueue_plan[by_latch] =
			keep(by_latch ?
				 "INSERT INTO txpipe.inbox (slot, pipeline, class, source, doc)"
				 " SELECT $5, $1, u.c, $2, u.d FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) AS u(c, d)" :
				 "WITH i AS (INSERT INTO txpipe.inbox (slot, pipeline, class, source, doc)"
				 " SELECT $5, $1, u.c, $2, u.d FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4)) AS u(c, d))"
				 " SELECT pg_catalog.pg_notify('txpipe_wakeup', $1)", 5, t);
	}
	/* a statement per chunk of records, its memory freed after each */
	chunk = AllocSetContextCreate(CurrentMemoryContext, "txpipe inbox chunk", ALLOCSET_DEFAULT_SIZES);
	while (from < n)
	{
		int			m = 0;
		Size		bytes = 0;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(chunk);
		classes = palloc(sizeof(Datum) * Min(n - from, QUEUE_PUT_CHUNK));
		docs = palloc(sizeof(Datum) * Min(n - from, QUEUE_PUT_CHUNK));
		while (from + m < n && m < QUEUE_PUT_CHUNK && bytes < QUEUE_PUT_CHUNK_BYTES)
		{
			TxRecord   *rec = &recs[from + m];
			const char *key = NULL;
			int			len = 0;

			if (plan->order_field >= 0 && txpipe_decode(plan, rec))
			{
				TxValue    *v = &rec->values[plan->order_field];

				if (v->kind == TX_STRING || v->kind == TX_NUMBER || v->kind == TX_BOOL)
				{
					key = v->text;
					len = v->len;
				}
			}
			classes[m] = Int16GetDatum((int16) txpipe_queue_class(key, len));
			docs[m] = PointerGetDatum(cstring_to_text_with_len(rec->payload, rec->len));
			/* the decoded values are not needed again */
			rec->values = NULL;
			bytes += rec->len;
			m++;
		}
		args[0] = CStringGetTextDatum(plan->name);
		args[1] = CStringGetTextDatum(source);
		args[2] = PointerGetDatum(construct_array(classes, m, INT2OID, 2, true, TYPALIGN_SHORT));
		args[3] = PointerGetDatum(construct_array(docs, m, TEXTOID, -1, false, TYPALIGN_INT));
		args[4] = Int16GetDatum(inbox_slot());
		(void) txpipe_spi_run(enqueue_plan[by_latch], args, NULL, false, 0,
							  by_latch ? SPI_OK_INSERT : SPI_OK_SELECT, "put records into the inbox");
		SPI_freetuptable(SPI_tuptable);
		MemoryContextSwitchTo(old);
		MemoryContextReset(chunk);
		from += m;
	}
	MemoryContextDelete(chunk);
	txpipe_leave(&id);
}

/*
 * Puts recs[0..n-1] (payloads as received) into the inbox for the
 * workers, and wakes them at commit.  A record that failed already
 * (too_large: only its prefix is left) becomes a reject now instead.
 * Inside an SPI connection.
 */
void
txpipe_queue_put(TxPlan *plan, TxRecord *recs, int n, const char *source)
{
	TxRecord   *failed = NULL;
	int			nfailed = 0;
	TxRecord   *ok = palloc(sizeof(TxRecord) * Max(n, 1));
	int			nok = 0;

	for (int i = 0; i < n; i++)
	{
		if (recs[i].err.code)
		{
			if (failed == NULL)
				failed = palloc(sizeof(TxRecord) * n);
			failed[nfailed++] = recs[i];
		}
		else
			ok[nok++] = recs[i];
	}
	put_rows(plan, ok, nok, source);
	if (nfailed > 0)
	{
		TxCounts	counts = {0};

		txpipe_route(plan, failed, nfailed, source, &counts);
	}
}

static Datum
enqueue_texts(const char *pipeline, Datum *docs, bool *nulls, int n)
{
	TxRecord   *recs = palloc0(sizeof(TxRecord) * Max(n, 1));
	TxPlan	   *plan;
	int			queued = 0;

	for (int i = 0; i < n; i++)
	{
		if (nulls && nulls[i])
		{
			recs[i].payload = "null";
			recs[i].len = 4;
			queued++;
		}
		else
		{
			text	   *t = DatumGetTextPP(docs[i]);

			if (VARSIZE_ANY_EXHDR(t) > txpipe_max_record_size)
				txpipe_too_large(&recs[i], VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t), false);
			else
			{
				recs[i].payload = VARDATA_ANY(t);
				recs[i].len = VARSIZE_ANY_EXHDR(t);
				queued++;
			}
		}
	}
	txpipe_spi_connect();
	txpipe_check_send(pipeline);
	plan = txpipe_get_plan(pipeline);
	txpipe_queue_put(plan, recs, n, "queue");
	SPI_finish();
	PG_RETURN_INT64(queued);
}

/*
 * txpipe.enqueue(pipeline text, doc text): one record as received, JSON or
 * not; the worker decodes it like a COPY line, so a malformed one becomes a
 * reject instead of an error here.
 */
Datum
txpipe_enqueue_text(PG_FUNCTION_ARGS)
{
	Datum		doc = PG_GETARG_DATUM(1);

	return enqueue_texts(text_to_cstring(PG_GETARG_TEXT_PP(0)), &doc, NULL, 1);
}

/* txpipe.enqueue(pipeline text, docs text[]) */
Datum
txpipe_enqueue_texts(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(1);
	Datum	   *docs;
	bool	   *nulls;
	int			n;

	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("docs must be a one-dimensional array")));
	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &docs, &nulls, &n);
	return enqueue_texts(text_to_cstring(PG_GETARG_TEXT_PP(0)), docs, nulls, n);
}

/*
 * txpipe.enqueue(pipeline text, doc jsonb) and (pipeline text, docs
 * jsonb[]): the records as jsonb writes them, then as the text forms.
 */
static void
require_pipeline(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("pipeline must not be null")));
}

Datum
txpipe_enqueue_jsonb(PG_FUNCTION_ARGS)
{
	bool		isnull = PG_ARGISNULL(1);
	Datum		d = (Datum) 0;

	require_pipeline(fcinfo);
	if (!isnull)
	{
		Jsonb	   *doc = PG_GETARG_JSONB_P(1);

		d = CStringGetTextDatum(JsonbToCString(NULL, &doc->root, VARSIZE(doc)));
	}
	return enqueue_texts(text_to_cstring(PG_GETARG_TEXT_PP(0)), &d, &isnull, 1);
}

Datum
txpipe_enqueue_jsonbs(PG_FUNCTION_ARGS)
{
	ArrayType  *a;
	Datum	   *docs;
	bool	   *nulls;
	int			n;

	require_pipeline(fcinfo);
	if (PG_ARGISNULL(1))
		PG_RETURN_INT64(0);
	a = PG_GETARG_ARRAYTYPE_P(1);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("docs must be a one-dimensional array")));
	deconstruct_array(a, JSONBOID, -1, false, TYPALIGN_INT, &docs, &nulls, &n);
	for (int i = 0; i < n; i++)
		if (!nulls[i])
		{
			Jsonb	   *doc = DatumGetJsonbP(docs[i]);

			docs[i] = CStringGetTextDatum(JsonbToCString(NULL, &doc->root, VARSIZE(doc)));
		}
	return enqueue_texts(text_to_cstring(PG_GETARG_TEXT_PP(0)), docs, nulls, n);
}
