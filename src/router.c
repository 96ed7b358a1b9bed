/*-------------------------------------------------------------------------
 *
 * router.c
 *	  Routes a batch of records: decode, contract, duplicates, then the
 *	  routes in order, set-based (one statement per route per batch, the
 *	  values passed as arrays), then rejects and the batch log.
 *
 * Lookup routes resolve natural keys to surrogate ids through a per-route
 * key cache; only keys missing from it reach the table (SELECT, then
 * INSERT ... ON CONFLICT DO NOTHING for the ones still missing, then SELECT
 * once more for keys a concurrent session inserted meanwhile).
 *
 * The routes of a batch run in a subtransaction.  When the database
 * refuses a row (a constraint, a value its type rejects), the
 * subtransaction is rolled back, key caches are dropped (they may hold ids
 * from the rolled-back work) and the batch is split in halves until the
 * refused record is alone; it becomes a db_refused reject with the
 * database's SQLSTATE and message, and every other record lands.  Errors
 * that are not about one record (cancel, out of memory, permissions)
 * propagate and abort the statement: nothing is half-committed.
 *
 * Duplicates: records whose idempotency key repeats within the batch or
 * already exists in the grain table are counted, not routed.  A key
 * inserted concurrently by another session between the check and the
 * insert makes the insert do nothing (ON CONFLICT), or, when the grain
 * table is written directly (writer.c), raises a unique violation on the
 * key's index; either way the batch is retried, and its check sees the
 * other session's row.  The last retry uses the INSERT ... ON CONFLICT,
 * which returns the rows it stored: the other records are duplicates, and
 * raise no alert.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "catalog/namespace.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#define MAX_RETRIES 3

typedef struct KeyDigest
{
	uint64		h[2];
} KeyDigest;

typedef struct KeyEntry
{
	KeyDigest	key;
	int64		id;
} KeyEntry;

typedef struct MissEntry
{
	KeyDigest	key;
	int			miss;
} MissEntry;

static SPIPlanPtr reject_plan = NULL;
static SPIPlanPtr batch_plan = NULL;

/* rolled-back attempts in the current batch: retries and bisection steps */
static int	batch_retries = 0;

static KeyDigest
digest(const char *s, int len)
{
	KeyDigest	d;

	d.h[0] = hash_bytes_extended((const unsigned char *) s, len, UINT64CONST(0x9E3779B97F4A7C15));
	d.h[1] = hash_bytes_extended((const unsigned char *) s, len, UINT64CONST(0xC2B2AE3D27D4EB4F));
	return d;
}

/* a digest is already a hash */
static uint32
digest_hash(const void *key, Size keysize)
{
	return (uint32) ((const KeyDigest *) key)->h[0];
}

static HTAB *
digest_table(const char *name, Size entrysize, long n, MemoryContext cxt)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(KeyDigest);
	ctl.entrysize = entrysize;
	ctl.hash = digest_hash;
	ctl.hcxt = cxt;
	return hash_create(name, Max(n, 16), &ctl, HASH_ELEM | HASH_FUNCTION | HASH_CONTEXT);
}

/*
 * The text of a column's value for rec; false for SQL NULL.  Route ids are
 * returned through *id.
 */
bool
txpipe_column_value(TxRecord *rec, TxColumn *col, const char **txt, int *len, int64 *id)
{
	switch (col->source)
	{
		case TXS_FIELD:
			{
				TxValue    *v = &rec->values[col->field];

				if (v->kind == TX_ABSENT || v->kind == TX_NULL)
					return false;
				if (col->lpad > v->len)
				{
					char	   *buf = palloc(col->lpad + 1);
					int			pad = col->lpad - v->len;

					memset(buf, col->padchar, pad);
					memcpy(buf + pad, v->text, v->len);
					buf[col->lpad] = '\0';
					*txt = buf;
					*len = col->lpad;
				}
				else
				{
					*txt = v->text;
					*len = v->len;
				}
				return true;
			}
		case TXS_ROUTE:
			if (rec->idnull[col->route])
				return false;
			*id = rec->ids[col->route];
			return true;
		default:
			if (col->constval == NULL)
				return false;
			*txt = col->constval;
			*len = strlen(col->constval);
			return true;
	}
}

/* does rec meet a route's or an alert rule's condition? */
bool
txpipe_when_holds(TxWhen *when, TxRecord *rec)
{
	TxValue    *v;
	bool		r;

	if (when == NULL)
		return true;
	v = &rec->values[when->field];
	switch (when->op)
	{
		case TXW_EXISTS:
			r = (v->kind != TX_ABSENT && v->kind != TX_NULL);
			break;
		case TXW_PATTERN:
			r = txpipe_value_matches(v, when->pattern);
			break;
		default:
			r = txpipe_value_equals(v, &when->equals);
			break;
	}
	return when->negate ? !r : r;
}

/* column arrays for SPI: one array per column over the chosen records */
typedef struct ColumnArrays
{
	int			ncols;
	int			n;
	Datum	  **elems;
	bool	  **nulls;
} ColumnArrays;

static void
arrays_init(ColumnArrays *a, int ncols, int capacity)
{
	a->ncols = ncols;
	a->n = 0;
	a->elems = palloc(sizeof(Datum *) * ncols);
	a->nulls = palloc(sizeof(bool *) * ncols);
	for (int c = 0; c < ncols; c++)
	{
		a->elems[c] = palloc(sizeof(Datum) * Max(capacity, 1));
		a->nulls[c] = palloc(sizeof(bool) * Max(capacity, 1));
	}
}

static void
arrays_add(ColumnArrays *a, TxRecord *rec, TxColumn *cols, int ncols)
{
	for (int c = 0; c < ncols; c++)
	{
		const char *txt;
		int			len;
		int64		id;

		if (!txpipe_column_value(rec, &cols[c], &txt, &len, &id))
		{
			a->elems[c][a->n] = (Datum) 0;
			a->nulls[c][a->n] = true;
		}
		else
		{
			a->elems[c][a->n] = (cols[c].source == TXS_ROUTE) ? Int64GetDatum(id) :
				PointerGetDatum(cstring_to_text_with_len(txt, len));
			a->nulls[c][a->n] = false;
		}
	}
	a->n++;
}

static Datum *
arrays_datums(ColumnArrays *a, TxColumn *cols)
{
	Datum	   *args = palloc(sizeof(Datum) * a->ncols);
	int			lb = 1;

	for (int c = 0; c < a->ncols; c++)
	{
		ArrayType  *arr;

		if (cols[c].source == TXS_ROUTE)
			arr = construct_md_array(a->elems[c], a->nulls[c], 1, &a->n, &lb,
									 INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
		else
			arr = construct_md_array(a->elems[c], a->nulls[c], 1, &a->n, &lb,
									 TEXTOID, -1, false, TYPALIGN_INT);
		args[c] = PointerGetDatum(arr);
	}
	return args;
}

/* runs a lookup statement and stores (ordinal -> id) into miss_id via map */
static void
run_lookup(SPIPlanPtr plan, Datum *args, int *map, int64 *miss_id, bool *miss_found)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = SPI_execute_plan(plan, args, NULL, false, 0);

	MemoryContextSwitchTo(cxt);
	if (rc != SPI_OK_SELECT && rc != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "txpipe lookup failed: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		o = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		int			m = map[o - 1];

		miss_id[m] = id;
		miss_found[m] = true;
	}
	SPI_freetuptable(SPI_tuptable);
}

static void
route_lookup(TxPlan *plan, int r, TxRecord *recs, int *idx, int n)
{
	TxRoute    *route = &plan->routes[r];
	int		   *rec_miss = palloc(sizeof(int) * Max(n, 1));
	int		   *miss_first = palloc(sizeof(int) * Max(n, 1));
	KeyDigest  *miss_key = palloc(sizeof(KeyDigest) * Max(n, 1));
	int64	   *miss_id;
	bool	   *miss_found;
	int		   *map;
	int			nmiss = 0;
	HTAB	   *misses = NULL;
	StringInfoData key;

	if (route->cache == NULL)
	{
		route->cache = digest_table("txpipe key cache", sizeof(KeyEntry), 1024, plan->cxt);
		route->cache_entries = 0;
	}
	initStringInfo(&key);
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[idx[i]];
		bool		null_key = false;
		KeyDigest	d;
		KeyEntry   *e;
		MissEntry  *m;
		bool		found;
		const char *kdata = NULL;
		int			klen = 0;
		int64		id;

		rec_miss[i] = -1;
		if (rec->duplicate || !txpipe_when_holds(route->when, rec))
			continue;
		/* a single key is digested in place; several, with separators */
		resetStringInfo(&key);
		for (int k = 0; k < route->nkeys && !null_key; k++)
		{
			const char *txt;
			int			len;

			if (!txpipe_column_value(rec, &route->cols[k], &txt, &len, &id))
				null_key = true;
			else
			{
				if (route->cols[k].source == TXS_ROUTE)
				{
					txt = (const char *) &id;
					len = sizeof(id);
				}
				if (route->nkeys == 1)
				{
					kdata = txt;
					klen = len;
					break;
				}
				enlargeStringInfo(&key, len + 1);
				memcpy(key.data + key.len, txt, len);
				key.len += len;
				key.data[key.len++] = '\x1f';
				kdata = key.data;
				klen = key.len;
			}
		}
		if (null_key)
			continue;
		d = digest(kdata, klen);
		e = hash_search(route->cache, &d, HASH_FIND, NULL);
		if (e)
		{
			rec->ids[r] = e->id;
			rec->idnull[r] = false;
			continue;
		}
		if (misses == NULL)
			misses = digest_table("txpipe key misses", sizeof(MissEntry), n, CurrentMemoryContext);
		m = hash_search(misses, &d, HASH_ENTER, &found);
		if (!found)
		{
			m->miss = nmiss;
			miss_first[nmiss] = i;
			miss_key[nmiss] = d;
			nmiss++;
		}
		rec_miss[i] = m->miss;
	}
	if (nmiss == 0)
		return;

	miss_id = palloc0(sizeof(int64) * nmiss);
	miss_found = palloc0(sizeof(bool) * nmiss);
	map = palloc(sizeof(int) * nmiss);

	/* existing keys, then insert the rest, then keys a concurrent session added */
	for (int step = 0; step < 3; step++)
	{
		ColumnArrays a;
		bool		inserting = (step == 1);
		int			ncols = inserting ? route->ncols : route->nkeys;

		arrays_init(&a, ncols, nmiss);
		for (int m = 0; m < nmiss; m++)
		{
			if (miss_found[m])
				continue;
			map[a.n] = m;
			arrays_add(&a, &recs[idx[miss_first[m]]], route->cols, ncols);
		}
		if (a.n == 0)
			break;
		run_lookup(inserting ? route->insert_plan : route->select_plan,
				   arrays_datums(&a, route->cols), map, miss_id, miss_found);
	}
	for (int m = 0; m < nmiss; m++)
	{
		KeyEntry   *e;

		if (!miss_found[m])
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("could not resolve a key of route \"%s\" of pipeline \"%s\"",
							route->name, plan->name),
					 errdetail("The row was removed by a concurrent transaction.")));
		if (route->cache_entries >= txpipe_key_cache_size)
		{
			hash_destroy(route->cache);
			route->cache = digest_table("txpipe key cache", sizeof(KeyEntry), 1024, plan->cxt);
			route->cache_entries = 0;
		}
		e = hash_search(route->cache, &miss_key[m], HASH_ENTER, NULL);
		e->id = miss_id[m];
		route->cache_entries++;
	}
	for (int i = 0; i < n; i++)
	{
		if (rec_miss[i] < 0)
			continue;
		recs[idx[i]].ids[r] = miss_id[rec_miss[i]];
		recs[idx[i]].idnull[r] = false;
	}
}

/*
 * Returns how many rows were inserted.  The route's table is written
 * directly when it can be, except on the last try, whose INSERT ... ON
 * CONFLICT counts keys stored concurrently as duplicates.
 */
static uint64
route_insert(TxPlan *plan, int r, TxRecord *recs, int *idx, int n, int *napplied, bool last_try)
{
	TxRoute    *route = &plan->routes[r];
	ColumnArrays a;
	TxRecord  **rows = palloc(sizeof(TxRecord *) * Max(n, 1));
	int			nrows = 0;

	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[idx[i]];

		if (rec->duplicate || !txpipe_when_holds(route->when, rec))
			continue;
		rows[nrows++] = rec;
	}
	*napplied = nrows;
	if (nrows == 0)
		return 0;
	if (route->writer && txpipe_direct_write && !last_try &&
		txpipe_writer_insert(plan, route, rows, nrows))
		return nrows;

	arrays_init(&a, route->ncols, nrows);
	for (int i = 0; i < nrows; i++)
		arrays_add(&a, rows[i], route->cols, route->ncols);
	if (!route->grain)
		return txpipe_spi_run(route->insert_plan, arrays_datums(&a, route->cols), NULL, false, 0,
							  SPI_OK_INSERT, "insert routed rows");
	else
	{
		/* the ordinals of the rows stored; on the last try, the others are duplicates */
		uint64		stored = txpipe_spi_run(route->insert_plan, arrays_datums(&a, route->cols), NULL, false, 0,
											SPI_OK_SELECT, "insert routed rows");
		bool	   *kept = palloc0(sizeof(bool) * nrows);

		for (uint64 i = 0; i < stored; i++)
		{
			bool		isnull;

			kept[DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)) - 1] = true;
		}
		SPI_freetuptable(SPI_tuptable);
		if (last_try)
			for (int i = 0; i < nrows; i++)
				if (!kept[i])
					rows[i]->duplicate = true;
		return stored;
	}
}

/* a key conflict found in the batch or against a stored row, as rec's reject */
static void
set_conflict_error(TxPlan *plan, TxRecord *rec)
{
	TxRoute    *g = &plan->routes[plan->grain_route];

	txpipe_set_error(&rec->err, "key_conflict",
					 psprintf("$.%s", plan->fields[g->cols[g->idem_col].field].name),
					 "%s", rec->conflict_message);
}

/* marks records whose idempotency key is already in the grain table */
static void
mark_stored_duplicates(TxPlan *plan, TxRecord *recs, int *idx, int n)
{
	TxRoute    *g = &plan->routes[plan->grain_route];
	TxColumn   *kc = &g->cols[g->idem_col];
	ColumnArrays a;
	int		   *map = palloc(sizeof(int) * Max(n, 1));
	int			nest;

	arrays_init(&a, 1, n);
	for (int i = 0; i < n; i++)
	{
		map[a.n] = i;
		arrays_add(&a, &recs[idx[i]], kc, 1);
	}
	/*
	 * Not read-only: it must see what earlier batches of this statement
	 * wrote.  The keys are looked up in the key's unique index: the grain
	 * table grows with every batch, and a plan kept from when it was small
	 * would read all of it for the few keys of a queue batch.
	 */
	nest = txpipe_plan_by_index();
	(void) txpipe_spi_run(g->dup_plan, arrays_datums(&a, kc), NULL, false, 0, SPI_OK_SELECT,
						  "look up stored idempotency keys");
	AtEOXact_GUC(true, nest);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		o = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		TxRecord   *rec = &recs[idx[map[o - 1]]];

		rec->duplicate = true;
		if (plan->nconflict > 0)
		{
			Datum	   *stored = palloc(sizeof(Datum) * plan->nconflict);
			bool	   *nulls = palloc(sizeof(bool) * plan->nconflict);

			for (int c = 0; c < plan->nconflict; c++)
				stored[c] = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, c + 2, &nulls[c]);
			(void) txpipe_stored_conflict(plan, rec, stored, nulls);
		}
	}
	SPI_freetuptable(SPI_tuptable);
}

/* one try at routing the records idx[0..n-1]; raises on any error */
static void
route_attempt(TxPlan *plan, TxRecord *recs, int *idx, int n, bool last_try)
{
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[idx[i]];

		rec->duplicate = false;
		rec->conflict = false;
		rec->routed = false;
		for (int r = 0; r < plan->nroutes; r++)
			rec->idnull[r] = true;
	}
	if (plan->grain_route >= 0 &&
		!txpipe_writer_find_stored(plan, &plan->routes[plan->grain_route], recs, idx, n))
		mark_stored_duplicates(plan, recs, idx, n);

	for (int r = 0; r < plan->nroutes; r++)
	{
		CHECK_FOR_INTERRUPTS();
		if (plan->routes[r].lookup)
			route_lookup(plan, r, recs, idx, n);
		else
		{
			int			applied;
			uint64		inserted = route_insert(plan, r, recs, idx, n, &applied, last_try);

			/* on the last try, route_insert marked those records duplicates */
			if (plan->routes[r].grain && inserted < (uint64) applied && !last_try)
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("a concurrent transaction inserted the same idempotency key")));
		}
	}
	for (int i = 0; i < n; i++)
		if (!recs[idx[i]].duplicate)
			recs[idx[i]].routed = true;
}

/* errors that concern the rows of the batch rather than the session */
static bool
is_record_error(int sqlerrcode)
{
	char	   *state = unpack_sql_state(sqlerrcode);

	return strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
		strncmp(state, "P0", 2) == 0 || strncmp(state, "44", 2) == 0 ||
		strncmp(state, "09", 2) == 0 || strncmp(state, "27", 2) == 0;
}

static bool
attempt_in_subxact(TxPlan *plan, TxRecord *recs, int *idx, int n, bool last_try,
				   ErrorData **edata)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	volatile bool ok = true;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		route_attempt(plan, recs, idx, n, last_try);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		*edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		ok = false;
	}
	PG_END_TRY();
	if (!ok)
	{
		batch_retries++;
		txpipe_reset_key_caches();
	}
	return ok;
}

/* routes idx[0..n-1], isolating records the database refuses */
static void
route_set(TxPlan *plan, TxRecord *recs, int *idx, int n)
{
	ErrorData  *edata = NULL;
	bool		stale_retry_done = false;

	if (n == 0)
		return;
	for (int attempt = 0;; attempt++)
	{
		CHECK_FOR_INTERRUPTS();
		if (attempt_in_subxact(plan, recs, idx, n, attempt >= MAX_RETRIES, &edata))
			return;
		if ((edata->sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE ||
			 edata->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
			 txpipe_writer_key_conflict(plan, edata)) && attempt < MAX_RETRIES)
			continue;
		if (!is_record_error(edata->sqlerrcode))
			ReThrowError(edata);
		/* a cached id may point at a row deleted since: retry once afresh */
		if (edata->sqlerrcode == ERRCODE_FOREIGN_KEY_VIOLATION && !stale_retry_done)
		{
			stale_retry_done = true;
			continue;
		}
		break;
	}
	if (n == 1)
	{
		TxRecord   *rec = &recs[idx[0]];
		char	   *msg = edata->detail ? psprintf("%s (%s)", edata->message, edata->detail)
			: pstrdup(edata->message);

		txpipe_set_error(&rec->err, "db_refused", "$", "%s", msg);
		rec->err.sqlstate = pstrdup(unpack_sql_state(edata->sqlerrcode));
		rec->routed = false;
		rec->duplicate = false;
		return;
	}
	route_set(plan, recs, idx, n / 2);
	route_set(plan, recs, idx + n / 2, n - n / 2);
}

/*
 * Rejects are written in statements of at most REJECT_FLUSH_ROWS rows and
 * about REJECT_FLUSH_BYTES of payload and message, so no array of a
 * statement nears the 1 GB limit of a value whatever the batch holds.
 */
#define REJECT_FLUSH_ROWS	1000
#define REJECT_FLUSH_BYTES	(64 * 1024 * 1024)
#define REJECT_COLS			9

typedef struct RejectBuf
{
	int			n;
	Size		bytes;
	Datum	   *cols[REJECT_COLS];	/* payload, raw, hash, code, path, message,
									 * sqlstate, count, errors */
	bool	   *nulls[REJECT_COLS];
	HTAB	   *seen;			/* identical rejects of this statement */
	bool		legacy;			/* the tables are of a version before 0.3.0 */
} RejectBuf;

/* whether reject_plan is the statement for tables before 0.3.0 */
static bool reject_plan_legacy = false;

/*
 * Between the install of this library and ALTER EXTENSION txpipe UPDATE,
 * txpipe.rejects may still be of a version without payload_hash: then
 * rejects are stored as that version did, one row each.
 */
static bool
rejects_legacy(void)
{
	Oid			nsp = get_namespace_oid("txpipe", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("rejects", nsp) : InvalidOid;

	return !OidIsValid(rel) || get_attnum(rel, "payload_hash") == InvalidAttrNumber;
}

static void
reject_buf_init(RejectBuf *buf)
{
	for (int c = 0; c < REJECT_COLS; c++)
	{
		buf->cols[c] = palloc(sizeof(Datum) * REJECT_FLUSH_ROWS);
		buf->nulls[c] = palloc0(sizeof(bool) * REJECT_FLUSH_ROWS);
	}
}

/* empties buf; its values and table live in row_cxt, reset here */
static void
reject_buf_reset(RejectBuf *buf, MemoryContext row_cxt)
{
	MemoryContextReset(row_cxt);
	buf->n = 0;
	buf->bytes = 0;
	buf->seen = digest_table("txpipe identical rejects", sizeof(KeyEntry), REJECT_FLUSH_ROWS, row_cxt);
}

/*
 * One statement for the buffered rejects.  A reject identical to a stored
 * one (pipeline, payload bytes, error code and path) adds to its count and
 * moves its last_received_at instead of storing the payload again;
 * identical rejects within the statement were merged already.  A stored
 * reject that another open transaction is updating is skipped, not waited
 * for (SKIP LOCKED), and the reject is stored as a row of its own: no
 * session, however long its transaction, makes another wait to reject the
 * same record.  So an identical reject is stored once, or once more for
 * each session that rejected it at the same time.
 */
static void
reject_flush(TxPlan *plan, RejectBuf *buf, const char *source)
{
	Datum		args[2 + REJECT_COLS];
	int			lb = 1;
	static const Oid elem[REJECT_COLS] = {TEXTOID, BYTEAOID, BYTEAOID, TEXTOID, TEXTOID, TEXTOID,
	TEXTOID, INT8OID, TEXTOID};

	if (buf->n == 0)
		return;
	if (reject_plan == NULL)
	{
		Oid			types[2 + REJECT_COLS] = {TEXTOID, TEXTOID, TEXTARRAYOID, BYTEAARRAYOID, BYTEAARRAYOID,
		TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTARRAYOID};

		if (buf->legacy)
			reject_plan = txpipe_spi_keep("INSERT INTO txpipe.rejects (pipeline, source, payload, payload_raw, "
									  "error_code, error_path, message, sqlstate) "
									  "SELECT $1, $2, u.payload, u.raw, u.code, u.path, u.message, u.sqlstate "
									  "  FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), "
									  "    pg_catalog.unnest($6), pg_catalog.unnest($7), pg_catalog.unnest($8), "
									  "    pg_catalog.unnest($9), pg_catalog.unnest($10), pg_catalog.unnest($11)) "
									  "       AS u(payload, raw, hash, code, path, message, sqlstate, n, errors)",
									  2 + REJECT_COLS, types);
		else
			reject_plan = txpipe_spi_keep("WITH u AS MATERIALIZED ("
									  "  SELECT u.* FROM ROWS FROM (pg_catalog.unnest($3), pg_catalog.unnest($4), "
									  "    pg_catalog.unnest($5), pg_catalog.unnest($6), pg_catalog.unnest($7), "
									  "    pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10), "
									  "    pg_catalog.unnest($11)) WITH ORDINALITY "
									  "    AS u(payload, raw, hash, code, path, message, sqlstate, n, errors, ord)), "
									  "t AS MATERIALIZED ("
									  "  SELECT u.ord, (SELECT r.reject_id FROM ONLY txpipe.rejects r "
									  "    WHERE r.pipeline OPERATOR(pg_catalog.=) $1 "
									  "      AND r.payload_hash OPERATOR(pg_catalog.=) u.hash "
									  "      AND r.error_code OPERATOR(pg_catalog.=) u.code "
									  "      AND r.error_path OPERATOR(pg_catalog.=) u.path "
									  "      AND r.replayed_at IS NULL "
									  "    LIMIT 1 FOR UPDATE SKIP LOCKED) AS reject_id "
									  "  FROM u), "
									  "s AS ("
									  "  UPDATE ONLY txpipe.rejects r "
									  "     SET count = r.count OPERATOR(pg_catalog.+) u.n, last_received_at = pg_catalog.now(), "
									  "         message = u.message, sqlstate = u.sqlstate, "
									  "         errors = CAST(u.errors AS pg_catalog.jsonb) "
									  "    FROM t JOIN u ON u.ord OPERATOR(pg_catalog.=) t.ord "
									  "   WHERE r.reject_id OPERATOR(pg_catalog.=) t.reject_id) "
									  "INSERT INTO txpipe.rejects (pipeline, source, payload, payload_raw, "
									  "  payload_hash, error_code, error_path, message, sqlstate, count, errors) "
									  "SELECT $1, $2, u.payload, u.raw, u.hash, u.code, u.path, u.message, u.sqlstate, u.n, "
									  "       CAST(u.errors AS pg_catalog.jsonb) "
									  "  FROM u JOIN t ON t.ord OPERATOR(pg_catalog.=) u.ord "
									  " WHERE t.reject_id IS NULL",
									  2 + REJECT_COLS, types);
		reject_plan_legacy = buf->legacy;
	}
	args[0] = CStringGetTextDatum(plan->name);
	args[1] = CStringGetTextDatum(source);
	for (int c = 0; c < REJECT_COLS; c++)
	{
		int16		typlen;
		bool		typbyval;
		char		typalign;

		get_typlenbyvalalign(elem[c], &typlen, &typbyval, &typalign);
		args[2 + c] = PointerGetDatum(construct_md_array(buf->cols[c], buf->nulls[c], 1, &buf->n, &lb,
														 elem[c], typlen, typbyval, typalign));
	}
	(void) txpipe_spi_run(reject_plan, args, NULL, false, 0, SPI_OK_INSERT, "store rejects");
}

/* SHA-256 of the bytes as received */
static bytea *
payload_hash(TxRecord *rec)
{
	bytea	   *h = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	const uint8 *bytes = (const uint8 *) (rec->raw ? VARDATA_ANY(rec->raw) : rec->payload);
	size_t		len = rec->raw ? VARSIZE_ANY_EXHDR(rec->raw) : rec->len;

	if (pg_cryptohash_init(ctx) < 0 || pg_cryptohash_update(ctx, bytes, len) < 0 ||
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(h), PG_SHA256_DIGEST_LENGTH) < 0)
		elog(ERROR, "could not compute the SHA-256 of a reject: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	SET_VARSIZE(h, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return h;
}

/* errors[0..n-1] as the JSON array of txpipe.rejects.errors */
static char *
reject_errors(TxError *errors, int n)
{
	StringInfoData s;

	initStringInfo(&s);
	appendStringInfoChar(&s, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(&s, ", ");
		appendStringInfoString(&s, "{\"code\": ");
		escape_json(&s, errors[i].code);
		appendStringInfoString(&s, ", \"path\": ");
		escape_json(&s, errors[i].path);
		appendStringInfoString(&s, ", \"message\": ");
		escape_json(&s, errors[i].message);
		appendStringInfoChar(&s, '}');
	}
	appendStringInfoChar(&s, ']');
	return s.data;
}

static void
store_rejects(TxPlan *plan, TxRecord *recs, int nrecs, const char *source)
{
	RejectBuf	buf;
	MemoryContext cxt;
	MemoryContext row_cxt;
	MemoryContext old = CurrentMemoryContext;
	StringInfoData key;
	bool		any = false;

	for (int i = 0; i < nrecs && !any; i++)
		any = recs[i].err.code != NULL;
	if (!any)
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "txpipe rejects", ALLOCSET_DEFAULT_SIZES);
	row_cxt = AllocSetContextCreate(cxt, "txpipe reject statement", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(cxt);
	reject_buf_init(&buf);
	buf.legacy = rejects_legacy();
	if (reject_plan != NULL && reject_plan_legacy != buf.legacy)
	{
		SPI_freeplan(reject_plan);
		reject_plan = NULL;
	}
	initStringInfo(&key);
	reject_buf_reset(&buf, row_cxt);
	MemoryContextSwitchTo(row_cxt);
	for (int i = 0; i < nrecs; i++)
	{
		TxRecord   *rec = &recs[i];
		bytea	   *hash;
		KeyDigest	d;
		KeyEntry   *e;
		bool		found;
		int			n;

		if (!rec->err.code)
			continue;
		CHECK_FOR_INTERRUPTS();
		hash = payload_hash(rec);
		resetStringInfo(&key);
		appendBinaryStringInfo(&key, VARDATA(hash), PG_SHA256_DIGEST_LENGTH);
		appendBinaryStringInfo(&key, rec->err.code, strlen(rec->err.code) + 1);
		appendBinaryStringInfo(&key, rec->err.path, strlen(rec->err.path) + 1);
		d = digest(key.data, key.len);
		e = hash_search(buf.seen, &d, HASH_ENTER, &found);
		if (found && !buf.legacy)
		{
			buf.cols[7][e->id] = Int64GetDatum(DatumGetInt64(buf.cols[7][e->id]) + 1);
			continue;
		}
		n = buf.n++;
		e->id = n;
		buf.cols[0][n] = PointerGetDatum(cstring_to_text_with_len(rec->payload, rec->len));
		buf.nulls[1][n] = rec->raw == NULL;
		buf.cols[1][n] = PointerGetDatum(rec->raw);
		buf.cols[2][n] = PointerGetDatum(hash);
		buf.cols[3][n] = CStringGetTextDatum(rec->err.code);
		buf.cols[4][n] = CStringGetTextDatum(rec->err.path);
		buf.cols[5][n] = CStringGetTextDatum(rec->err.message);
		buf.nulls[6][n] = rec->err.sqlstate == NULL;
		buf.cols[6][n] = rec->err.sqlstate ? CStringGetTextDatum(rec->err.sqlstate) : (Datum) 0;
		buf.cols[7][n] = Int64GetDatum(1);
		buf.cols[8][n] = CStringGetTextDatum(rec->errors ? rec->errors :
											 reject_errors(&rec->err, 1));
		buf.bytes += rec->len + (rec->raw ? VARSIZE_ANY(rec->raw) : 0) + strlen(rec->err.message) +
			(rec->errors ? strlen(rec->errors) : 0);
		if (buf.n >= REJECT_FLUSH_ROWS || buf.bytes >= REJECT_FLUSH_BYTES)
		{
			reject_flush(plan, &buf, source);
			reject_buf_reset(&buf, row_cxt);
		}
	}
	reject_flush(plan, &buf, source);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

static void
log_batch(TxPlan *plan, const char *source, TxCounts *c, double seconds)
{
	Datum		args[8];

	if (batch_plan == NULL)
	{
		Oid			types[8] = {TEXTOID, TEXTOID, INT8OID, INT8OID, INT8OID, INT8OID, FLOAT8OID, INT4OID};

		batch_plan = txpipe_spi_keep("INSERT INTO txpipe.batches (pipeline, source, received, accepted, "
									 "rejected, duplicates, duration, retries) "
									 "VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.make_interval(secs => $7), $8)",
									 8, types);
	}
	args[0] = CStringGetTextDatum(plan->name);
	args[1] = CStringGetTextDatum(source);
	args[2] = Int64GetDatum(c->received);
	args[3] = Int64GetDatum(c->accepted);
	args[4] = Int64GetDatum(c->rejected);
	args[5] = Int64GetDatum(c->duplicates);
	args[6] = Float8GetDatum(seconds);
	args[7] = Int32GetDatum(batch_retries);
	(void) txpipe_spi_run(batch_plan, args, NULL, false, 0, SPI_OK_INSERT, "log the batch");
}

/*
 * Routes recs[0..nrecs-1] (payloads set; err set already for records that
 * failed before decoding).  Must run inside an SPI connection.  Adds to
 * *counts.
 */
void
txpipe_route(TxPlan *plan, TxRecord *recs, int nrecs, const char *source, TxCounts *counts)
{
	int		   *idx = palloc(sizeof(int) * Max(nrecs, 1));
	int			n = 0;
	int64		duplicates = 0;
	TxCounts	c = {0};
	HTAB	   *seen = NULL;
	instr_time	start,
				elapsed;
	TxIdentity	id;
	TxError		first;

	INSTR_TIME_SET_CURRENT(start);
	batch_retries = 0;
	for (int i = 0; i < nrecs; i++)
	{
		TxRecord   *rec = &recs[i];

		CHECK_FOR_INTERRUPTS();
		rec->ids = palloc(sizeof(int64) * Max(plan->nroutes, 1));
		rec->idnull = palloc(sizeof(bool) * Max(plan->nroutes, 1));
		if (rec->err.code)
			continue;
		if (!txpipe_decode(plan, rec))
			continue;
		if (txpipe_contract_check(plan, rec, &first, 1) > 0)
		{
			/* rejected: only then look for every error */
			TxError		all[TXPIPE_REJECT_MAX_ERRORS];
			int			nall = txpipe_contract_check(plan, rec, all, TXPIPE_REJECT_MAX_ERRORS);

			rec->err = first;
			rec->errors = reject_errors(all, Min(Max(nall, 1), TXPIPE_REJECT_MAX_ERRORS));
			continue;
		}
		if (plan->nkey_fields > 0)
			txpipe_content_key(plan, rec);
		if (plan->idem_field >= 0)
		{
			TxValue    *v = &rec->values[plan->idem_field];

			if (v->kind != TX_ABSENT && v->kind != TX_NULL)
			{
				KeyDigest	d = digest(v->text, v->len);
				bool		found;
				KeyEntry   *e;

				if (seen == NULL)
					seen = digest_table("txpipe batch keys", sizeof(KeyEntry), nrecs, CurrentMemoryContext);
				e = hash_search(seen, &d, HASH_ENTER, &found);
				if (found && txpipe_batch_conflict(plan, &recs[e->id], rec))
				{
					set_conflict_error(plan, rec);
					continue;
				}
				if (found)
				{
					rec->duplicate = true;
					duplicates++;
					continue;
				}
				e->id = i;
			}
		}
		idx[n++] = i;
	}

	/* the routed tables, as their owner */
	txpipe_enter(plan->owner, &id);
	route_set(plan, recs, idx, n);
	txpipe_leave(&id);

	c.received = nrecs;
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[idx[i]];

		if (rec->conflict)
			set_conflict_error(plan, rec);
		else if (rec->duplicate)
			duplicates++;
		else if (rec->routed)
			c.accepted++;
	}
	c.duplicates = duplicates;
	for (int i = 0; i < nrecs; i++)
		if (recs[i].err.code)
			c.rejected++;

	/* txpipe's own tables, as theirs */
	txpipe_enter_catalog(&id);
	txpipe_raise_alerts(plan, recs, idx, n);
	store_rejects(plan, recs, nrecs, source);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	log_batch(plan, source, &c, INSTR_TIME_GET_DOUBLE(elapsed));
	txpipe_leave(&id);

	counts->received += c.received;
	counts->accepted += c.accepted;
	counts->rejected += c.rejected;
	counts->duplicates += c.duplicates;
}
