/*-------------------------------------------------------------------------
 *
 * alerts.c
 *	  Raises the alerts of a routed batch: the spec's rules ("alerts") run
 *	  over the records that were stored, in the batch's transaction, and
 *	  each new alert is sent with NOTIFY txpipe_alerts.
 *
 * An alert is one per pipeline, rule, key and window (the unique index of
 * txpipe.alerts): a burst of records is one alert, and a record that is
 * stored again after its row was deleted raises nothing new.  Only
 * records stored by this batch count: duplicates, rejects and records a
 * refused row took down are not in the batch's set.  Everything is written
 * in the caller's transaction, so a rollback takes the alerts, their
 * notifications (PostgreSQL sends NOTIFY at commit) and the rules' state
 * back together.
 *
 * Windows are tumbling, aligned to the epoch in UTC, on event time: the
 * window of a record is fixed by its own time field, so a late record
 * counts in the window its event time falls in.  An event time written
 * without a zone is taken as UTC.
 *
 * State: a rate rule counts records per key and window in
 * txpipe.alert_windows; an outlier rule keeps per key the count, mean and
 * sum of squared deviations of the values seen (Welford's method, O(1) per
 * record) in txpipe.alert_history.  Both are updated with row locks taken
 * in key order, so concurrent batches add up exactly and do not deadlock
 * on each other's keys.  A history, locked from its first read to the end
 * of the transaction, is kept in the transaction's memory and written back
 * once, at commit.  State is kept per definition of a rule: changing a
 * rule starts it afresh.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* longest text of a value quoted in an alert's details */
#define DETAIL_VALUE_MAX 64

static SPIPlanPtr raise_plan = NULL;
static SPIPlanPtr window_plan = NULL;
static SPIPlanPtr history_new_plan = NULL;
static SPIPlanPtr history_lock_plan = NULL;
/* an alert to raise, unless its rule, key and window has one already */
typedef struct Candidate
{
	int			rule;
	int			rec;
	char	   *key;
	bool		has_window;
	TimestampTz window_start;
	bool		has_time;
	TimestampTz event_time;
	char	   *details;
} Candidate;

typedef struct Candidates
{
	int			n;
	int			cap;
	Candidate  *c;
	HTAB	   *seen;			/* rule, key, window already a candidate */
} Candidates;

typedef struct SeenEntry
{
	char		key[TXPIPE_ALERT_KEY_MAX + 48];
} SeenEntry;

/* a record's fields as a rule reads them */
typedef struct RuleInput
{
	char	   *key;
	bool		has_time;
	TimestampTz time;
	TimestampTz window_start;
} RuleInput;

/*
 * A timestamp's text as timestamptz, a zone-less one taken as UTC; false
 * when it is not a point in time (the date/time parser reports errors
 * without raising them, so the session's zone is swapped only around it).
 */
static bool
parse_event_time(const char *s, TimestampTz *result)
{
	static pg_tz *utc = NULL;
	char		workbuf[MAXDATELEN + MAXDATEFIELDS];
	char	   *field[MAXDATEFIELDS];
	int			ftype[MAXDATEFIELDS];
	int			nf;
	int			dtype;
	struct pg_tm tt;
	fsec_t		fsec;
	int			tz;
	int			rc;
	pg_tz	   *session = session_timezone;

	if (strlen(s) >= MAXDATELEN)
		return false;
	if (utc == NULL)
		utc = pg_tzset("UTC");
	if (utc == NULL)
		elog(ERROR, "time zone UTC is not available");
	if (ParseDateTime(s, workbuf, sizeof(workbuf), field, ftype, MAXDATEFIELDS, &nf) != 0)
		return false;
	session_timezone = utc;
	rc = DecodeDateTime(field, ftype, nf, &dtype, &tt, &fsec, &tz);
	session_timezone = session;
	if (rc != 0 || dtype != DTK_DATE)
		return false;
	return tm2timestamp(&tt, fsec, &tz, result) == 0 && IS_VALID_TIMESTAMP(*result);
}

static bool
value_present(TxValue *v)
{
	return v->kind != TX_ABSENT && v->kind != TX_NULL;
}

/* the key of rec for rule; false when a key field is missing or too long */
static bool
rule_key(TxPlan *plan, TxAlertRule *rule, TxRecord *rec, StringInfo buf)
{
	resetStringInfo(buf);
	if (rule->nkeys > 1)
		appendStringInfoChar(buf, '[');
	for (int k = 0; k < rule->nkeys; k++)
	{
		TxValue    *v = &rec->values[rule->key_fields[k]];
		char	   *txt;

		if (!value_present(v))
			return false;
		txt = v->kind == TX_NUMBER ? txpipe_number_canonical(v->text) : pnstrdup(v->text, v->len);
		if (rule->nkeys == 1)
			appendStringInfoString(buf, txt);
		else
		{
			if (k > 0)
				appendStringInfoString(buf, ", ");
			escape_json(buf, txt);
		}
		if (buf->len > TXPIPE_ALERT_KEY_MAX)
			return false;
	}
	if (rule->nkeys > 1)
		appendStringInfoChar(buf, ']');
	return buf->len <= TXPIPE_ALERT_KEY_MAX;
}

/* the record's event time for rule, and its window */
static void
rule_time(TxAlertRule *rule, TxRecord *rec, RuleInput *in)
{
	TxValue    *v;

	in->has_time = false;
	if (rule->time_field < 0)
		return;
	v = &rec->values[rule->time_field];
	if (v->kind != TX_STRING)
		return;
	in->has_time = parse_event_time(v->text, &in->time);
	if (in->has_time && rule->window > 0)
	{
		int64		q = in->time / rule->window;

		if (in->time % rule->window < 0)
			q--;
		in->window_start = q * rule->window;
	}
}

static void
candidate_add(Candidates *cs, int rule, int rec, TxAlertRule *r, RuleInput *in, char *details)
{
	SeenEntry	key;
	bool		found;
	Candidate  *c;

	memset(&key, 0, sizeof(key));
	snprintf(key.key, sizeof(key.key), "%d/%s/" INT64_FORMAT, rule, in->key,
			 r->window > 0 ? (int64) in->window_start : (int64) 0);
	(void) hash_search(cs->seen, &key, HASH_ENTER, &found);
	if (found)
		return;
	if (cs->n == cs->cap)
	{
		cs->cap *= 2;
		cs->c = repalloc(cs->c, sizeof(Candidate) * cs->cap);
	}
	c = &cs->c[cs->n++];
	c->rule = rule;
	c->rec = rec;
	c->key = pstrdup(in->key);
	c->has_window = r->window > 0;
	c->window_start = in->window_start;
	c->has_time = in->has_time;
	c->event_time = in->time;
	c->details = details;
}

/* a value as JSON in details, a string cut to DETAIL_VALUE_MAX bytes */
static void
append_value(StringInfo s, TxValue *v)
{
	switch (v->kind)
	{
		case TX_NUMBER:
		case TX_BOOL:
			appendBinaryStringInfo(s, v->text, v->len);
			break;
		case TX_STRING:
			{
				char	   *cut = pnstrdup(v->text, pg_mbcliplen(v->text, v->len, DETAIL_VALUE_MAX));

				escape_json(s, cut);
				break;
			}
		default:
			appendStringInfoString(s, "null");
			break;
	}
}

static void
append_double(StringInfo s, double d)
{
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];

	(void) double_to_shortest_decimal_buf(d, buf);
	appendStringInfoString(s, buf);
}

static Datum
text_array(char **vals, bool *nulls, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			lb = 1;

	for (int i = 0; i < n; i++)
		d[i] = (nulls && nulls[i]) ? (Datum) 0 : CStringGetTextDatum(vals[i]);
	return PointerGetDatum(construct_md_array(d, nulls, 1, &n, &lb, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
scalar_array(Datum *d, bool *nulls, int n, Oid elem)
{
	int16		typlen;
	bool		typbyval;
	char		typalign;
	int			lb = 1;

	get_typlenbyvalalign(elem, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(d, nulls, 1, &n, &lb, elem, typlen, typbyval, typalign));
}

/* ----------------------------------------------------------------
 * the rules
 * ----------------------------------------------------------------
 */

static void
raise_flag(TxPlan *plan, int r, TxRecord *recs, int *stored, int n, Candidates *cs)
{
	TxAlertRule *rule = &plan->alerts[r];
	TxValue    *cond;
	StringInfoData key;
	StringInfoData details;

	initStringInfo(&key);
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[stored[i]];
		RuleInput	in;

		if (!txpipe_when_holds(rule->when, rec) || !rule_key(plan, rule, rec, &key))
			continue;
		in.key = key.data;
		rule_time(rule, rec, &in);
		if (rule->window > 0 && !in.has_time)
			continue;
		cond = &rec->values[rule->when->field];
		initStringInfo(&details);
		appendStringInfoString(&details, "{\"field\": ");
		escape_json(&details, plan->fields[rule->when->field].name);
		appendStringInfoString(&details, ", \"value\": ");
		append_value(&details, cond);
		if (rule->window > 0)
		{
			appendStringInfoString(&details, ", \"window\": ");
			escape_json(&details, rule->window_text);
		}
		appendStringInfoChar(&details, '}');
		candidate_add(cs, r, stored[i], rule, &in, details.data);
	}
}

/* a key's records in one window of a rate rule, in batch order */
typedef struct RateGroup
{
	char	   *key;
	TimestampTz window_start;
	int			n;
	int			cap;
	int		   *recs;
} RateGroup;

static void
raise_rate(TxPlan *plan, int r, TxRecord *recs, int *stored, int n, Candidates *cs)
{
	TxAlertRule *rule = &plan->alerts[r];
	StringInfoData key;
	HASHCTL		ctl;
	HTAB	   *index;
	RateGroup  *groups = palloc(sizeof(RateGroup) * Max(n, 1));
	int			ngroups = 0;
	Datum		args[7];
	char	  **keys;
	Datum	   *starts;
	Datum	   *counts;
	TimestampTz *times = palloc(sizeof(TimestampTz) * Max(n, 1));
	uint64		nrows;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SeenEntry);
	ctl.entrysize = sizeof(SeenEntry) + sizeof(int);
	ctl.hcxt = CurrentMemoryContext;
	index = hash_create("txpipe rate groups", Max(n, 16), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	initStringInfo(&key);
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[stored[i]];
		RuleInput	in;
		SeenEntry	gk;
		char	   *entry;
		bool		found;
		RateGroup  *g;

		if (!txpipe_when_holds(rule->when, rec) || !rule_key(plan, rule, rec, &key))
			continue;
		rule_time(rule, rec, &in);
		if (!in.has_time)
			continue;
		times[i] = in.time;
		memset(&gk, 0, sizeof(gk));
		snprintf(gk.key, sizeof(gk.key), "%s/" INT64_FORMAT, key.data, (int64) in.window_start);
		entry = hash_search(index, &gk, HASH_ENTER, &found);
		if (!found)
		{
			g = &groups[ngroups];
			g->key = pstrdup(key.data);
			g->window_start = in.window_start;
			g->n = 0;
			g->cap = 4;
			g->recs = palloc(sizeof(int) * g->cap);
			memcpy(entry + sizeof(SeenEntry), &ngroups, sizeof(int));
			ngroups++;
		}
		else
		{
			int			gi;

			memcpy(&gi, entry + sizeof(SeenEntry), sizeof(int));
			g = &groups[gi];
		}
		if (g->n == g->cap)
		{
			g->cap *= 2;
			g->recs = repalloc(g->recs, sizeof(int) * g->cap);
		}
		g->recs[g->n++] = i;
	}
	if (ngroups == 0)
		return;

	if (window_plan == NULL)
	{
		Oid			types[7] = {TEXTOID, TEXTOID, INT8OID, TEXTARRAYOID, TIMESTAMPTZARRAYOID,
		INT8ARRAYOID, INT8OID};

		window_plan = txpipe_spi_keep("WITH u AS MATERIALIZED ("
									  "  SELECT * FROM ROWS FROM (pg_catalog.unnest($4::pg_catalog.text[]), "
									  "    pg_catalog.unnest($5::pg_catalog.timestamptz[]), pg_catalog.unnest($6::pg_catalog.int8[])) "
									  "    WITH ORDINALITY AS u(k, ws, n, o)), "
									  "w AS ("
									  "  INSERT INTO txpipe.alert_windows AS w (pipeline, rule, definition, key, window_start, count) "
									  "  SELECT $1, $2, $3, u.k, u.ws, u.n FROM u ORDER BY u.k, u.ws "
									  "  ON CONFLICT (pipeline, rule, definition, key, window_start) "
									  "  DO UPDATE SET count = w.count OPERATOR(pg_catalog.+) excluded.count "
									  "  RETURNING w.key, w.window_start, w.count) "
									  "SELECT u.o, w.count FROM w JOIN u ON u.k OPERATOR(pg_catalog.=) w.key "
									  "   AND u.ws OPERATOR(pg_catalog.=) w.window_start "
									  " WHERE w.count OPERATOR(pg_catalog.>) $7 "
									  "   AND w.count OPERATOR(pg_catalog.-) u.n OPERATOR(pg_catalog.<=) $7",
									  7, types);
	}
	keys = palloc(sizeof(char *) * ngroups);
	starts = palloc(sizeof(Datum) * ngroups);
	counts = palloc(sizeof(Datum) * ngroups);
	for (int g = 0; g < ngroups; g++)
	{
		keys[g] = groups[g].key;
		starts[g] = TimestampTzGetDatum(groups[g].window_start);
		counts[g] = Int64GetDatum(groups[g].n);
	}
	args[0] = CStringGetTextDatum(plan->name);
	args[1] = CStringGetTextDatum(rule->name);
	args[2] = Int64GetDatum(rule->definition);
	args[3] = text_array(keys, NULL, ngroups);
	args[4] = scalar_array(starts, NULL, ngroups, TIMESTAMPTZOID);
	args[5] = scalar_array(counts, NULL, ngroups, INT8OID);
	args[6] = Int64GetDatum(rule->threshold);
	nrows = txpipe_spi_run(window_plan, args, NULL, false, 0, SPI_OK_SELECT, "count records in alert windows");
	for (uint64 row = 0; row < nrows; row++)
	{
		bool		isnull;
		int64		o = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));
		int64		total = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 2, &isnull));
		RateGroup  *g = &groups[o - 1];
		int64		before = total - g->n;
		int			i = g->recs[rule->threshold - before];	/* the record over
															 * the threshold */
		RuleInput	in;
		StringInfoData details;

		in.key = g->key;
		in.has_time = true;
		in.time = times[i];
		in.window_start = g->window_start;
		initStringInfo(&details);
		appendStringInfo(&details, "{\"count\": " INT64_FORMAT ", \"threshold\": " INT64_FORMAT ", \"window\": ",
						 total, rule->threshold);
		escape_json(&details, rule->window_text);
		appendStringInfoChar(&details, '}');
		candidate_add(cs, r, stored[i], rule, &in, details.data);
	}
	SPI_freetuptable(SPI_tuptable);
}

/* a key's running history for an outlier rule */
typedef struct History
{
	char	   *key;
	int64		n;
	double		mean;
	double		m2;
} History;

/*
 * The histories this transaction read, locked and changed, by pipeline,
 * rule, definition and key.  A row of txpipe.alert_history stays locked
 * from its first read to the end of the transaction, so no other session
 * changes it meanwhile: the next batches of the transaction (a COPY's, a
 * worker's) take it from here, and it is written back once, when the
 * transaction commits (or is prepared), instead of once per batch.  An
 * aborted subtransaction takes back its changes to the cache as it takes
 * back its rows and locks (the undo log, newest last).
 */
#define HIST_CACHE_KEY (2 * NAMEDATALEN + 24 + TXPIPE_ALERT_KEY_MAX + 1)

typedef struct HistCached
{
	char		hkey[HIST_CACHE_KEY];
	bool		present;		/* read and locked in this transaction */
	bool		dirty;			/* changed since */
	SubTransactionId subid;		/* of its last change */
	ItemPointerData tid;		/* the row locked */
	int64		n;
	double		mean;
	double		m2;
} HistCached;

typedef struct HistUndo
{
	HistCached *entry;
	HistCached	saved;			/* the entry before subid changed it */
	SubTransactionId subid;
} HistUndo;

static HTAB *hist_cache = NULL;
static HistUndo *hist_undo = NULL;
static int	hist_nundo = 0;
static int	hist_undo_cap = 0;

static HistCached *
hist_cache_entry(const char *pipeline, const char *rule, int64 definition, const char *key)
{
	char		hkey[HIST_CACHE_KEY];
	HistCached *e;
	bool		found;

	if (hist_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = HIST_CACHE_KEY;
		ctl.entrysize = sizeof(HistCached);
		ctl.hcxt = TopTransactionContext;
		hist_cache = hash_create("txpipe alert histories", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(hkey, 0, sizeof(hkey));
	snprintf(hkey, sizeof(hkey), "%s/%s/" INT64_FORMAT "/%s", pipeline, rule, definition, key);
	e = hash_search(hist_cache, hkey, HASH_ENTER, &found);
	if (!found)
	{
		e->present = false;
		e->dirty = false;
		e->subid = InvalidSubTransactionId;
		ItemPointerSetInvalid(&e->tid);
		e->n = 0;
		e->mean = 0;
		e->m2 = 0;
	}
	return e;
}

/* before changing e: what a subtransaction's abort puts back */
static void
hist_change(HistCached *e)
{
	SubTransactionId cur = GetCurrentSubTransactionId();

	if (e->subid == cur)
		return;
	if (cur != TopSubTransactionId)
	{
		if (hist_nundo == hist_undo_cap)
		{
			hist_undo_cap = Max(hist_undo_cap * 2, 64);
			hist_undo = hist_undo == NULL ?
				MemoryContextAlloc(TopTransactionContext, sizeof(HistUndo) * hist_undo_cap) :
				repalloc(hist_undo, sizeof(HistUndo) * hist_undo_cap);
		}
		hist_undo[hist_nundo].entry = e;
		hist_undo[hist_nundo].saved = *e;
		hist_undo[hist_nundo].subid = cur;
		hist_nundo++;
	}
	e->subid = cur;
}

static SPIPlanPtr history_save_plan = NULL;

/*
 * Writes the changed histories back, as the owner of txpipe's tables; with
 * forget, the cache then holds none (their rows are read and locked again
 * when next needed).  A row deleted meanwhile in this transaction
 * (drop_pipeline) is not written.
 */
static void
hist_flush(bool forget)
{
	HASH_SEQ_STATUS status;
	HistCached *e;
	int			n = 0;
	long		cap;
	Datum	   *tids,
			   *ns,
			   *means,
			   *m2s;
	MemoryContext cxt;
	MemoryContext old;
	Oid			nsp;

	if (hist_cache == NULL)
		return;
	/* DROP EXTENSION in the transaction took the histories with it */
	nsp = get_namespace_oid("txpipe", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("alert_history", nsp)))
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "txpipe alert histories", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	cap = Max(hash_get_num_entries(hist_cache), 1);
	tids = palloc(sizeof(Datum) * cap);
	ns = palloc(sizeof(Datum) * cap);
	means = palloc(sizeof(Datum) * cap);
	m2s = palloc(sizeof(Datum) * cap);
	hash_seq_init(&status, hist_cache);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->present && e->dirty)
		{
			tids[n] = PointerGetDatum(&e->tid);
			ns[n] = Int64GetDatum(e->n);
			means[n] = Float8GetDatum(e->mean);
			m2s[n] = Float8GetDatum(e->m2);
			n++;
		}
	}
	if (n > 0)
	{
		TxIdentity	id;
		Datum		args[4];
		bool		snapshot = !ActiveSnapshotSet();

		/* at commit, no statement's snapshot is there */
		if (snapshot)
			PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		txpipe_enter_catalog(&id);
		if (history_save_plan == NULL)
		{
			Oid			types[4] = {TIDARRAYOID, INT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID};

			/* the rows locked, by their place: no search of the keys again */
			history_save_plan = txpipe_spi_keep("UPDATE ONLY txpipe.alert_history h SET n = u.n, mean = u.mean, m2 = u.m2 "
												"  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.tid[]), "
												"    pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.float8[]), "
												"    pg_catalog.unnest($4::pg_catalog.float8[])) AS u(t, n, mean, m2) "
												" WHERE h.ctid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.tid[]) "
												"   AND h.ctid OPERATOR(pg_catalog.=) u.t",
												4, types);
		}
		args[0] = scalar_array(tids, NULL, n, TIDOID);
		args[1] = scalar_array(ns, NULL, n, INT8OID);
		args[2] = scalar_array(means, NULL, n, FLOAT8OID);
		args[3] = scalar_array(m2s, NULL, n, FLOAT8OID);
		(void) txpipe_spi_run(history_save_plan, args, NULL, false, 0, SPI_OK_UPDATE, "save alert history");
		txpipe_leave(&id);
		SPI_finish();
		if (snapshot)
			PopActiveSnapshot();
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (!forget)
		return;
	hash_seq_init(&status, hist_cache);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->present || e->dirty)
		{
			hist_change(e);
			e->present = false;
			e->dirty = false;
		}
	}
}

/*
 * Writes this transaction's outlier histories now, and reads them again
 * when next needed: before SQL of this transaction changes the rows
 * (drop_pipeline deletes them).
 */
void
txpipe_alerts_flush(void)
{
	hist_flush(true);
}

static void
alerts_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			hist_flush(false);
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			break;
		default:
			/* the transaction's memory goes with it */
			hist_cache = NULL;
			hist_undo = NULL;
			hist_nundo = 0;
			hist_undo_cap = 0;
			break;
	}
}

static void
alerts_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	/* the changes of mySubid and of its children are the newest */
	while (hist_nundo > 0 && hist_undo[hist_nundo - 1].subid >= mySubid)
	{
		hist_nundo--;
		*hist_undo[hist_nundo].entry = hist_undo[hist_nundo].saved;
	}
}

void
txpipe_alerts_init(void)
{
	RegisterXactCallback(alerts_xact_callback, NULL);
	RegisterSubXactCallback(alerts_subxact_callback, NULL);
}

static bool
numeric_value(TxValue *v, double *x)
{
	char	   *end;

	if (v->kind != TX_NUMBER && v->kind != TX_STRING)
		return false;
	if (v->len == 0 || v->len > 64)
		return false;
	errno = 0;
	*x = strtod(v->text, &end);
	if (end != v->text + v->len || errno != 0 || !isfinite(*x))
		return false;
	/* a string only when it is a JSON number's lexeme: no "inf", " 1", "0x10" */
	if (v->kind == TX_STRING && !(v->text[0] == '-' || (v->text[0] >= '0' && v->text[0] <= '9')))
		return false;
	return true;
}

/*
 * Takes the rows the history's read returned into hist (through index, the
 * keys' places in it), with the place of each row; returns how many of
 * hist's keys have no row yet.
 */
static int
history_read(HTAB *index, History *hist, Datum *tids, bool *has_tid, uint64 nrows)
{
	int			nhist = hash_get_num_entries(index);
	int			missing = 0;

	for (uint64 row = 0; row < nrows; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *k = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		SeenEntry	hk;
		char	   *entry;
		int			h;
		ItemPointer tid;

		memset(&hk, 0, sizeof(hk));
		strlcpy(hk.key, k, sizeof(hk.key));
		entry = hash_search(index, &hk, HASH_FIND, NULL);
		if (entry == NULL)
			continue;
		memcpy(&h, entry + sizeof(SeenEntry), sizeof(int));
		hist[h].n = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		hist[h].mean = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &isnull));
		hist[h].m2 = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
		tid = palloc(sizeof(ItemPointerData));
		ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, 5, &isnull)), tid);
		tids[h] = PointerGetDatum(tid);
		has_tid[h] = true;
	}
	SPI_freetuptable(SPI_tuptable);
	for (int h = 0; h < nhist; h++)
		if (!has_tid[h])
			missing++;
	return missing;
}

static void
raise_outlier(TxPlan *plan, int r, TxRecord *recs, int *stored, int n, Candidates *cs)
{
	TxAlertRule *rule = &plan->alerts[r];
	StringInfoData key;
	HASHCTL		ctl;
	HTAB	   *index;
	History    *hist = palloc(sizeof(History) * Max(n, 1));
	int		   *rec_hist = palloc(sizeof(int) * Max(n, 1));
	double	   *vals = palloc(sizeof(double) * Max(n, 1));
	int			nhist = 0;
	char	  **keys;
	Datum		args[4];
	Datum	   *tids;
	bool	   *has_tid;
	HistCached **ents;
	int			nmissing = 0;
	int			unread;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SeenEntry);
	ctl.entrysize = sizeof(SeenEntry) + sizeof(int);
	ctl.hcxt = CurrentMemoryContext;
	index = hash_create("txpipe outlier keys", Max(n, 16), &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	initStringInfo(&key);
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[stored[i]];
		SeenEntry	hk;
		char	   *entry;
		bool		found;
		int			h;

		rec_hist[i] = -1;
		if (!txpipe_when_holds(rule->when, rec) || !rule_key(plan, rule, rec, &key) ||
			!numeric_value(&rec->values[rule->value_field], &vals[i]))
			continue;
		memset(&hk, 0, sizeof(hk));
		strlcpy(hk.key, key.data, sizeof(hk.key));
		entry = hash_search(index, &hk, HASH_ENTER, &found);
		if (!found)
		{
			h = nhist++;
			hist[h].key = pstrdup(key.data);
			hist[h].n = 0;
			hist[h].mean = 0;
			hist[h].m2 = 0;
			memcpy(entry + sizeof(SeenEntry), &h, sizeof(int));
		}
		else
			memcpy(&h, entry + sizeof(SeenEntry), sizeof(int));
		rec_hist[i] = h;
	}
	if (nhist == 0)
		return;

	if (history_new_plan == NULL)
	{
		Oid			types[4] = {TEXTOID, TEXTOID, INT8OID, TEXTARRAYOID};

		history_new_plan = txpipe_spi_keep("INSERT INTO txpipe.alert_history (pipeline, rule, definition, key) "
										   "SELECT $1, $2, $3, u.k FROM pg_catalog.unnest($4::pg_catalog.text[]) AS u(k) "
										   "ORDER BY u.k ON CONFLICT DO NOTHING",
										   4, types);
		history_lock_plan = txpipe_spi_keep("SELECT h.key, h.n, h.mean, h.m2, h.ctid FROM ONLY txpipe.alert_history h "
											"WHERE h.pipeline OPERATOR(pg_catalog.=) $1 AND h.rule OPERATOR(pg_catalog.=) $2 "
											"  AND h.definition OPERATOR(pg_catalog.=) $3 "
											"  AND h.key OPERATOR(pg_catalog.=) ANY ($4::pg_catalog.text[]) "
											"ORDER BY h.key FOR UPDATE",
											4, types);
	}
	ents = palloc(sizeof(HistCached *) * nhist);
	tids = palloc(sizeof(Datum) * nhist);
	has_tid = palloc0(sizeof(bool) * nhist);
	keys = palloc(sizeof(char *) * nhist);

	/* the keys this transaction holds already */
	for (int h = 0; h < nhist; h++)
	{
		ents[h] = hist_cache_entry(plan->name, rule->name, rule->definition, hist[h].key);
		if (ents[h]->present)
		{
			hist[h].n = ents[h]->n;
			hist[h].mean = ents[h]->mean;
			hist[h].m2 = ents[h]->m2;
			has_tid[h] = true;
		}
		else
			keys[nmissing++] = hist[h].key;
	}

	/*
	 * The others: those with a history are read and locked, in key order;
	 * only the keys without one are added (waiting for a session adding the
	 * same key), then read and locked in turn.
	 */
	if (nmissing > 0)
	{
		args[0] = CStringGetTextDatum(plan->name);
		args[1] = CStringGetTextDatum(rule->name);
		args[2] = Int64GetDatum(rule->definition);
		args[3] = text_array(keys, NULL, nmissing);
		unread = history_read(index, hist, tids, has_tid,
							  txpipe_spi_run(history_lock_plan, args, NULL, false, 0, SPI_OK_SELECT, "read alert history"));
		if (unread > 0)
		{
			int			m = 0;

			for (int h = 0; h < nhist; h++)
				if (!has_tid[h])
					keys[m++] = hist[h].key;
			args[3] = text_array(keys, NULL, m);
			(void) txpipe_spi_run(history_new_plan, args, NULL, false, 0, SPI_OK_INSERT, "add keys to alert history");
			(void) history_read(index, hist, tids, has_tid,
								txpipe_spi_run(history_lock_plan, args, NULL, false, 0, SPI_OK_SELECT, "read alert history"));
		}
		for (int h = 0; h < nhist; h++)
		{
			HistCached *e = ents[h];

			if (!has_tid[h])
				elog(ERROR, "alert history of key \"%s\" of rule \"%s\" is missing", hist[h].key, rule->name);
			if (e->present)
				continue;
			hist_change(e);
			e->present = true;
			e->dirty = false;
			ItemPointerCopy((ItemPointer) DatumGetPointer(tids[h]), &e->tid);
			e->n = hist[h].n;
			e->mean = hist[h].mean;
			e->m2 = hist[h].m2;
		}
	}

	/* each value against the history before it, then into it */
	for (int i = 0; i < n; i++)
	{
		History    *hs;
		double		x = vals[i];
		double		d,
					mean,
					m2;

		if (rec_hist[i] < 0)
			continue;
		hs = &hist[rec_hist[i]];
		if (hs->n >= rule->min_history)
		{
			double		sd = sqrt(hs->m2 / (double) (hs->n - 1));
			double		z = sd > 0 ? (x - hs->mean) / sd : 0;

			if (sd > 0 && fabs(z) > rule->z)
			{
				TxRecord   *rec = &recs[stored[i]];
				RuleInput	in;
				StringInfoData details;

				in.key = hs->key;
				rule_time(rule, rec, &in);
				if (rule->window == 0 || in.has_time)
				{
					initStringInfo(&details);
					appendStringInfoString(&details, "{\"field\": ");
					escape_json(&details, plan->fields[rule->value_field].name);
					appendStringInfoString(&details, ", \"value\": ");
					append_double(&details, x);
					appendStringInfoString(&details, ", \"mean\": ");
					append_double(&details, hs->mean);
					appendStringInfoString(&details, ", \"stddev\": ");
					append_double(&details, sd);
					appendStringInfoString(&details, ", \"deviation\": ");
					append_double(&details, z);
					appendStringInfoString(&details, ", \"threshold\": ");
					append_double(&details, rule->z);
					appendStringInfo(&details, ", \"history\": " INT64_FORMAT "}", hs->n);
					candidate_add(cs, r, stored[i], rule, &in, details.data);
				}
			}
		}
		d = x - hs->mean;
		mean = hs->mean + d / (double) (hs->n + 1);
		m2 = hs->m2 + d * (x - mean);
		/* a value that would overflow the history is left out of it */
		if (isfinite(mean) && isfinite(m2))
		{
			hs->n++;
			hs->mean = mean;
			hs->m2 = m2;
		}
	}

	/* written back at commit */
	for (int h = 0; h < nhist; h++)
	{
		HistCached *e = ents[h];

		hist_change(e);
		e->n = hist[h].n;
		e->mean = hist[h].mean;
		e->m2 = hist[h].m2;
		e->dirty = true;
	}
}

/* ----------------------------------------------------------------
 * raising
 * ----------------------------------------------------------------
 */

typedef struct TimedRecord
{
	int			pos;			/* in the batch */
	bool		has_time;
	TimestampTz time;
} TimedRecord;

static int
timed_cmp(const void *a, const void *b)
{
	const TimedRecord *x = a;
	const TimedRecord *y = b;

	if (x->has_time != y->has_time)
		return x->has_time ? -1 : 1;
	if (x->has_time && x->time != y->time)
		return x->time < y->time ? -1 : 1;
	return x->pos < y->pos ? -1 : (x->pos > y->pos ? 1 : 0);
}

/*
 * The stored records in the order a rule reads them: by event time, then
 * in batch order (records without a time last).  So the record that
 * crosses a threshold, and the order an outlier rule judges values in, do
 * not depend on how a path orders a batch (the queue's classes, say).
 */
static int *
rule_order(TxAlertRule *rule, TxRecord *recs, int *stored, int n)
{
	TimedRecord *t;
	int		   *order = palloc(sizeof(int) * n);

	if (rule->time_field < 0)
	{
		memcpy(order, stored, sizeof(int) * n);
		return order;
	}
	t = palloc(sizeof(TimedRecord) * n);
	for (int i = 0; i < n; i++)
	{
		RuleInput	in;

		rule_time(rule, &recs[stored[i]], &in);
		t[i].pos = stored[i];
		t[i].has_time = in.has_time;
		t[i].time = in.has_time ? in.time : 0;
	}
	qsort(t, n, sizeof(TimedRecord), timed_cmp);
	for (int i = 0; i < n; i++)
		order[i] = t[i].pos;
	pfree(t);
	return order;
}

/*
 * Inserts the candidates that are new for their rule, key and window, and
 * notifies each one inserted.  The payload carries the masked key and is
 * bounded well below NOTIFY's 8000 bytes: names are identifiers, keys at
 * most TXPIPE_ALERT_KEY_MAX bytes, the record's key cut to as many
 * characters, details of fixed shape.
 */
static void
raise_candidates(TxPlan *plan, TxRecord *recs, Candidates *cs)
{
	int			n = cs->n;
	char	  **rules = palloc(sizeof(char *) * n);
	char	  **severities = palloc(sizeof(char *) * n);
	char	  **keys = palloc(sizeof(char *) * n);
	Datum	   *masks = palloc(sizeof(Datum) * n);
	Datum	   *starts = palloc(sizeof(Datum) * n);
	bool	   *start_nulls = palloc(sizeof(bool) * n);
	char	  **record_keys = palloc(sizeof(char *) * n);
	bool	   *record_key_nulls = palloc(sizeof(bool) * n);
	Datum	   *times = palloc(sizeof(Datum) * n);
	bool	   *time_nulls = palloc(sizeof(bool) * n);
	char	  **details = palloc(sizeof(char *) * n);
	Datum		args[10];
	char		nulls[11];

	if (raise_plan == NULL)
	{
		Oid			types[10] = {TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID,
		TIMESTAMPTZARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};

		raise_plan = txpipe_spi_keep("WITH a AS ("
									 "  INSERT INTO txpipe.alerts AS a (pipeline, rule, severity, key, key_masked, window_start, "
									 "    record_key, routed_table, event_time, details) "
									 "  SELECT $1, u.rule, u.severity, u.key, "
									 "         CASE WHEN NOT u.mask THEN u.key "
									 "              WHEN pg_catalog.length(u.key) OPERATOR(pg_catalog.>) 4 THEN "
									 "                pg_catalog.repeat('*', pg_catalog.length(u.key) OPERATOR(pg_catalog.-) 4) "
									 "                OPERATOR(pg_catalog.||) pg_catalog.right(u.key, 4) "
									 "              ELSE pg_catalog.repeat('*', pg_catalog.length(u.key)) END, "
									 "         u.ws, u.rk, $2, u.et, CAST(u.details AS pg_catalog.jsonb) "
									 "    FROM ROWS FROM (pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[]), "
									 "      pg_catalog.unnest($5::pg_catalog.text[]), pg_catalog.unnest($6::pg_catalog.bool[]), "
									 "      pg_catalog.unnest($7::pg_catalog.timestamptz[]), pg_catalog.unnest($8::pg_catalog.text[]), "
									 "      pg_catalog.unnest($9::pg_catalog.timestamptz[]), pg_catalog.unnest($10::pg_catalog.text[])) "
									 "      AS u(rule, severity, key, mask, ws, rk, et, details) "
									 "   ORDER BY u.rule, u.key, u.ws "
									 "  ON CONFLICT (pipeline, rule, key, window_start) DO NOTHING "
									 "  RETURNING a.alert_id, a.pipeline, a.rule, a.severity, a.key_masked, a.record_key, "
									 "    a.event_time, a.window_start, a.details) "
									 "SELECT pg_catalog.pg_notify('txpipe_alerts', pg_catalog.json_build_object("
									 "    'id', a.alert_id, 'pipeline', a.pipeline, 'rule', a.rule, 'severity', a.severity, "
									 "    'key', a.key_masked, 'record', pg_catalog.left(a.record_key, 256), "
									 "    'event_time', a.event_time, 'window_start', a.window_start, "
									 "    'details', a.details)::pg_catalog.text) "
									 "  FROM a ORDER BY a.alert_id",
									 10, types);
	}
	for (int i = 0; i < n; i++)
	{
		Candidate  *c = &cs->c[i];
		TxAlertRule *rule = &plan->alerts[c->rule];
		TxRecord   *rec = &recs[c->rec];

		rules[i] = rule->name;
		severities[i] = rule->severity;
		keys[i] = c->key;
		masks[i] = BoolGetDatum(rule->mask_key);
		start_nulls[i] = !c->has_window;
		starts[i] = c->has_window ? TimestampTzGetDatum(c->window_start) : (Datum) 0;
		record_key_nulls[i] = plan->idem_field < 0 || !value_present(&rec->values[plan->idem_field]);
		record_keys[i] = record_key_nulls[i] ? NULL : pnstrdup(rec->values[plan->idem_field].text,
															   rec->values[plan->idem_field].len);
		time_nulls[i] = !c->has_time;
		times[i] = c->has_time ? TimestampTzGetDatum(c->event_time) : (Datum) 0;
		details[i] = c->details;
	}
	args[0] = CStringGetTextDatum(plan->name);
	args[1] = plan->grain_route >= 0 ? CStringGetTextDatum(plan->routes[plan->grain_route].relname) : (Datum) 0;
	args[2] = text_array(rules, NULL, n);
	args[3] = text_array(severities, NULL, n);
	args[4] = text_array(keys, NULL, n);
	args[5] = scalar_array(masks, NULL, n, BOOLOID);
	args[6] = scalar_array(starts, start_nulls, n, TIMESTAMPTZOID);
	args[7] = text_array(record_keys, record_key_nulls, n);
	args[8] = scalar_array(times, time_nulls, n, TIMESTAMPTZOID);
	args[9] = text_array(details, NULL, n);
	memset(nulls, ' ', sizeof(nulls));
	nulls[10] = '\0';
	if (plan->grain_route < 0)
		nulls[1] = 'n';
	(void) txpipe_spi_run(raise_plan, args, nulls, false, 0, SPI_OK_SELECT, "raise alerts");
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Raises the alerts of the records recs[idx[0..n-1]] that this batch
 * stored.  Runs inside an SPI connection, as the owner of txpipe's tables
 * (txpipe_enter_catalog).
 */
void
txpipe_raise_alerts(TxPlan *plan, TxRecord *recs, int *idx, int n)
{
	MemoryContext cxt;
	MemoryContext old;
	int		   *stored;
	int			nstored = 0;
	Candidates	cs;
	HASHCTL		ctl;

	if (plan->nalerts == 0 || n == 0)
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "txpipe alerts", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	stored = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[idx[i]];

		if (rec->routed && !rec->duplicate && !rec->conflict && rec->err.code == NULL)
			stored[nstored++] = idx[i];
	}
	if (nstored > 0)
	{
		cs.n = 0;
		cs.cap = 16;
		cs.c = palloc(sizeof(Candidate) * cs.cap);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(SeenEntry);
		ctl.entrysize = sizeof(SeenEntry);
		ctl.hcxt = cxt;
		cs.seen = hash_create("txpipe alert candidates", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		for (int r = 0; r < plan->nalerts; r++)
		{
			int		   *order;

			CHECK_FOR_INTERRUPTS();
			order = rule_order(&plan->alerts[r], recs, stored, nstored);
			switch (plan->alerts[r].kind)
			{
				case TXA_FLAG:
					raise_flag(plan, r, recs, order, nstored, &cs);
					break;
				case TXA_RATE:
					raise_rate(plan, r, recs, order, nstored, &cs);
					break;
				default:
					raise_outlier(plan, r, recs, order, nstored, &cs);
					break;
			}
			pfree(order);
		}
		if (cs.n > 0)
			raise_candidates(plan, recs, &cs);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
