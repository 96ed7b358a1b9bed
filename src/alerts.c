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
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* longest text of a value quoted in an alert's details */
#define DETAIL_VALUE_MAX 64

static SPIPlanPtr raise_plan = NULL;

/*
 * The rule, key and window triples this transaction has offered to
 * txpipe.alerts: each has its alert now, inserted or found there, so a
 * later batch of the transaction does not offer it again (an outlier rule
 * finds every outlying value of a window, a flag rule every matching
 * record).  An aborted subtransaction forgets what it added, as it takes
 * back its rows; the end of the transaction forgets everything.
 */
#define KNOWN_KEY (3 * NAMEDATALEN + 48 + TXPIPE_ALERT_KEY_MAX)

typedef struct KnownAlert
{
	char		key[KNOWN_KEY];
	SubTransactionId subid;
} KnownAlert;

static HTAB *known_alerts = NULL;
static KnownAlert **known_log = NULL;	/* in the order added */
static int	known_n = 0;
static int	known_cap = 0;

/* a hash of strings that lives as long as the transaction */
static HTAB *
xact_hash(const char *name, long nelem, Size keysize, Size entrysize)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = TopTransactionContext;
	return hash_create(name, nelem, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
}
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

/* the event times of a batch's stored records in one field */
typedef struct EventTimes
{
	int			field;
	int		   *order;			/* the records by event time, then batch order */
	bool	   *has;			/* of order[i]: its time */
	TimestampTz *time;
} EventTimes;

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
/*
 * The common forms quickly: "YYYY-MM-DD HH:MM:SS" (or with a T), alone or
 * followed by "+00", "Z" or "+00:00", all UTC; false leaves s to the
 * date/time parser.
 */
static bool
parse_iso_utc(const char *s, TimestampTz *result)
{
	int			len = strlen(s);
	int			f[6];
	static const int at[6] = {0, 5, 8, 11, 14, 17};
	static const int width[6] = {4, 2, 2, 2, 2, 2};
	int			y,
				m,
				d;

	if (len < 19 || s[4] != '-' || s[7] != '-' || (s[10] != ' ' && s[10] != 'T') ||
		s[13] != ':' || s[16] != ':')
		return false;
	if (!(len == 19 || (len == 20 && s[19] == 'Z') || (len == 22 && strcmp(s + 19, "+00") == 0) ||
		  (len == 25 && strcmp(s + 19, "+00:00") == 0)))
		return false;
	for (int k = 0; k < 6; k++)
	{
		f[k] = 0;
		for (int c = 0; c < width[k]; c++)
		{
			char		ch = s[at[k] + c];

			if (ch < '0' || ch > '9')
				return false;
			f[k] = f[k] * 10 + (ch - '0');
		}
	}
	if (f[0] < 1 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 59)
		return false;
	/* a day the month has: the date comes back the same */
	j2date(date2j(f[0], f[1], f[2]), &y, &m, &d);
	if (y != f[0] || m != f[1] || d != f[2])
		return false;
	*result = ((int64) (date2j(f[0], f[1], f[2]) - POSTGRES_EPOCH_JDATE)) * USECS_PER_DAY +
		((int64) ((f[3] * 60 + f[4]) * 60 + f[5])) * USECS_PER_SEC;
	return true;
}

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

	if (parse_iso_utc(s, result))
		return true;
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

/* a JSON integer in canonical form: digits, no leading zero, maybe a minus */
static bool
plain_integer(TxValue *v)
{
	int			i = 0;

	if (v->kind != TX_NUMBER || v->len == 0 || v->len > 18)
		return false;
	if (v->text[0] == '-')
		i++;
	if (i >= v->len || (v->text[i] == '0' && v->len > i + 1) || (v->text[i] == '0' && i > 0))
		return false;
	for (; i < v->len; i++)
		if (v->text[i] < '0' || v->text[i] > '9')
			return false;
	return true;
}

/* the key of rec for rule; false when a key field is missing or too long */
static bool
rule_key(TxPlan *plan, TxAlertRule *rule, TxRecord *rec, StringInfo buf)
{
	resetStringInfo(buf);
	if (rule->nkeys == 0)
	{
		/* all the pipeline's records together */
		appendStringInfoChar(buf, '*');
		return true;
	}
	if (rule->nkeys > 1)
		appendStringInfoChar(buf, '[');
	for (int k = 0; k < rule->nkeys; k++)
	{
		TxValue    *v = &rec->values[rule->key_fields[k]];
		char	   *txt;

		if (!value_present(v))
			return false;
		if (rule->nkeys == 1 && (v->kind == TX_STRING || plain_integer(v)))
		{
			/* as it is: a string, or a number already in canonical form */
			appendBinaryStringInfo(buf, v->text, v->len);
			break;
		}
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

static TimestampTz
window_of(TxAlertRule *rule, TimestampTz t)
{
	int64		q = t / rule->window;

	if (t % rule->window < 0)
		q--;
	return q * rule->window;
}

/* the record's event time for rule, and its window */
static void
rule_time(TxPlan *plan, TxAlertRule *rule, TxRecord *rec, RuleInput *in)
{
	TxValue    *v;

	in->has_time = false;
	if (rule->time_field < 0)
		return;
	v = &rec->values[rule->time_field];
	if (v->kind != TX_STRING)
		return;
	/* a field with an inputFormat holds its ISO form once the contract has run */
	in->has_time = parse_event_time(v->text, &in->time);
	if (in->has_time && rule->window > 0)
		in->window_start = window_of(rule, in->time);
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
raise_flag(TxPlan *plan, int r, TxRecord *recs, int *stored, EventTimes *ot, int n, Candidates *cs)
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
		in.has_time = ot->has[i];
		in.time = ot->time[i];
		if (in.has_time && rule->window > 0)
			in.window_start = window_of(rule, in.time);
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

/* ----------------------------------------------------------------
 * the rules' state
 * ----------------------------------------------------------------
 */

/* a window of a rate or baseline rule with records of its key */
typedef struct RateWindow
{
	TimestampTz start;
	int64		count;
} RateWindow;

/*
 * The state rows this transaction read, locked and changed, by table,
 * pipeline, rule, definition and key: txpipe.alert_history for outlier
 * rules, txpipe.alert_counts for rate and baseline rules.  A row stays
 * locked from its first read to the end of the transaction, so no other
 * session changes it meanwhile: the next batches of the transaction (a
 * COPY's, a worker's) take it from here, and it is written back once, when
 * the transaction commits (or is prepared), instead of once per batch.  An
 * aborted subtransaction takes back its changes to the cache as it takes
 * back its rows and locks (the undo log, newest last).
 */
#define STATE_KEY (2 * NAMEDATALEN + 28 + TXPIPE_ALERT_KEY_MAX + 1)

typedef struct StateCached
{
	char		hkey[STATE_KEY];
	char		table;			/* 'o': alert_history, 'r': alert_counts */
	bool		present;		/* read and locked in this transaction */
	bool		dirty;			/* changed since */
	SubTransactionId subid;		/* of its last change */
	ItemPointerData tid;		/* the row locked */
	/* outlier: the values so far */
	int64		n;
	double		mean;
	double		m2;
	/* rate and baseline */
	bool		has_latest;
	TimestampTz latest;			/* the newest event time counted */
	bool		has_since;
	TimestampTz since;			/* the oldest window ever counted */
	int			nwin;			/* the windows kept, oldest first */
	int			capwin;
	RateWindow *win;			/* in TopTransactionContext */
} StateCached;

typedef struct StateUndo
{
	StateCached *entry;
	StateCached saved;			/* the entry before subid changed it */
	SubTransactionId subid;
} StateUndo;

static HTAB *state_cache = NULL;
static StateUndo *state_undo = NULL;
static int	state_nundo = 0;
static int	state_undo_cap = 0;

/* "table/pipeline/rule/definition/key", cut to STATE_KEY; names fit */
static void
state_key(char *hkey, char table, const char *pipeline, const char *rule, int64 definition, const char *key)
{
	char	   *p = hkey;
	char	   *end = hkey + STATE_KEY - 1;
	const char *parts[3] = {pipeline, rule, NULL};
	char		num[MAXINT8LEN + 1];

	*p++ = table;
	(void) pg_lltoa(definition, num);
	parts[2] = num;
	for (int i = 0; i < 3; i++)
	{
		size_t		len = strlen(parts[i]);

		*p++ = '/';
		if (len > (size_t) (end - p - 1))
			len = end - p - 1;
		memcpy(p, parts[i], len);
		p += len;
	}
	*p++ = '/';
	strlcpy(p, key, end - p + 1);
}

static StateCached *
state_entry(char table, const char *pipeline, const char *rule, int64 definition, const char *key)
{
	char		hkey[STATE_KEY];
	StateCached *e;
	bool		found;

	if (state_cache == NULL)
		state_cache = xact_hash("txpipe alert state", 1024, STATE_KEY, sizeof(StateCached));
	state_key(hkey, table, pipeline, rule, definition, key);
	e = hash_search(state_cache, hkey, HASH_ENTER, &found);
	if (!found)
	{
		memset(((char *) e) + STATE_KEY, 0, sizeof(StateCached) - STATE_KEY);
		e->table = table;
		e->subid = InvalidSubTransactionId;
		ItemPointerSetInvalid(&e->tid);
	}
	return e;
}

/* before changing e: what a subtransaction's abort puts back */
static void
state_change(StateCached *e)
{
	SubTransactionId cur = GetCurrentSubTransactionId();

	if (e->subid == cur)
		return;
	if (cur != TopSubTransactionId)
	{
		StateUndo  *u;

		if (state_nundo == state_undo_cap)
		{
			state_undo_cap = Max(state_undo_cap * 2, 64);
			state_undo = state_undo == NULL ?
				MemoryContextAlloc(TopTransactionContext, sizeof(StateUndo) * state_undo_cap) :
				repalloc(state_undo, sizeof(StateUndo) * state_undo_cap);
		}
		u = &state_undo[state_nundo++];
		u->entry = e;
		u->saved = *e;
		u->subid = cur;
		if (e->nwin > 0)
		{
			u->saved.win = MemoryContextAlloc(TopTransactionContext, sizeof(RateWindow) * e->nwin);
			memcpy(u->saved.win, e->win, sizeof(RateWindow) * e->nwin);
			u->saved.capwin = e->nwin;
		}
		else
		{
			u->saved.win = NULL;
			u->saved.capwin = 0;
		}
	}
	e->subid = cur;
}

/* a row of the state's read into e (its columns after the key) */
static void
state_fill(StateCached *e, HeapTuple tup, TupleDesc desc)
{
	bool		isnull;
	Datum		d;

	if (e->table == 'o')
	{
		e->n = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		e->mean = DatumGetFloat8(SPI_getbinval(tup, desc, 3, &isnull));
		e->m2 = DatumGetFloat8(SPI_getbinval(tup, desc, 4, &isnull));
	}
	else
	{
		Datum	   *starts;
		Datum	   *counts;
		int			nstarts;
		int			ncounts;

		d = SPI_getbinval(tup, desc, 2, &isnull);
		e->has_latest = !isnull;
		e->latest = isnull ? 0 : DatumGetTimestampTz(d);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		e->has_since = !isnull;
		e->since = isnull ? 0 : DatumGetTimestampTz(d);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull)), TIMESTAMPTZOID,
						  sizeof(TimestampTz), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &starts, NULL, &nstarts);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull)), INT8OID,
						  sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &counts, NULL, &ncounts);
		if (nstarts != ncounts)
			elog(ERROR, "alert counts of key \"%s\" have %d windows and %d counts", e->hkey, nstarts, ncounts);
		e->nwin = nstarts;
		e->capwin = Max(nstarts, 4);
		e->win = MemoryContextAlloc(TopTransactionContext, sizeof(RateWindow) * e->capwin);
		for (int i = 0; i < nstarts; i++)
		{
			e->win[i].start = DatumGetTimestampTz(starts[i]);
			e->win[i].count = DatumGetInt64(counts[i]);
		}
	}
	ItemPointerCopy((ItemPointer) DatumGetPointer(SPI_getbinval(tup, desc, e->table == 'o' ? 5 : 6, &isnull)),
					&e->tid);
}

static SPIPlanPtr state_lock_plan[2] = {NULL, NULL};
static SPIPlanPtr state_add_plan[2] = {NULL, NULL};

/* the rows the read returned into their entries; how many were there */
static int
state_read(char table, const char *pipeline, const char *rule, int64 definition, uint64 nrows)
{
	int			got = 0;

	for (uint64 row = 0; row < nrows; row++)
	{
		HeapTuple	tup = SPI_tuptable->vals[row];
		bool		isnull;
		char	   *k = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		char		hkey[STATE_KEY];
		StateCached *e;

		state_key(hkey, table, pipeline, rule, definition, k);
		e = hash_search(state_cache, hkey, HASH_FIND, NULL);
		if (e == NULL || e->present)
			continue;
		state_change(e);
		state_fill(e, tup, SPI_tuptable->tupdesc);
		e->present = true;
		e->dirty = false;
		got++;
	}
	SPI_freetuptable(SPI_tuptable);
	return got;
}

/*
 * The state of the keys keys[0..n-1] (distinct) of a rule, into ents:
 * from the cache when this transaction holds it already; else the rows
 * that exist are read and locked, in key order, and only the keys without
 * one are added (waiting for a session adding the same key); the rows
 * added are this transaction's own and need no lock, and the keys another
 * session added meanwhile are read and locked in turn.
 */
static void
state_load(char table, TxPlan *plan, TxAlertRule *rule, char **keys, int n, StateCached **ents)
{
	int			t = table == 'o' ? 0 : 1;
	char	  **missing = palloc(sizeof(char *) * Max(n, 1));
	int			nmissing = 0;
	Datum		args[4];
	int			got;
	int			nest;

	for (int i = 0; i < n; i++)
	{
		ents[i] = state_entry(table, plan->name, rule->name, rule->definition, keys[i]);
		if (!ents[i]->present)
			missing[nmissing++] = keys[i];
	}
	if (nmissing == 0)
		return;
	if (state_lock_plan[t] == NULL)
	{
		Oid			types[4] = {TEXTOID, TEXTOID, INT8OID, TEXTARRAYOID};

		if (table == 'o')
		{
			state_add_plan[t] = txpipe_spi_keep_generic("INSERT INTO txpipe.alert_history AS h (pipeline, rule, definition, key) "
												"SELECT $1, $2, $3, u.k FROM pg_catalog.unnest($4::pg_catalog.text[]) AS u(k) "
												"ORDER BY u.k ON CONFLICT DO NOTHING "
												"RETURNING h.key, h.n, h.mean, h.m2, h.ctid",
												4, types);
			state_lock_plan[t] = txpipe_spi_keep_generic("SELECT h.key, h.n, h.mean, h.m2, h.ctid "
												 "  FROM (SELECT u.k FROM pg_catalog.unnest($4::pg_catalog.text[]) AS u(k) ORDER BY u.k) AS u "
												 "  CROSS JOIN LATERAL (SELECT h.key, h.n, h.mean, h.m2, h.ctid FROM ONLY txpipe.alert_history h "
												 "   WHERE h.pipeline OPERATOR(pg_catalog.=) $1 AND h.rule OPERATOR(pg_catalog.=) $2 "
												 "     AND h.definition OPERATOR(pg_catalog.=) $3 AND h.key OPERATOR(pg_catalog.=) u.k "
												 "   LIMIT 1 FOR UPDATE) AS h "
												 "ORDER BY u.k",
												 4, types);
		}
		else
		{
			state_add_plan[t] = txpipe_spi_keep_generic("INSERT INTO txpipe.alert_counts AS c (pipeline, rule, definition, key) "
												"SELECT $1, $2, $3, u.k FROM pg_catalog.unnest($4::pg_catalog.text[]) AS u(k) "
												"ORDER BY u.k ON CONFLICT DO NOTHING "
												"RETURNING c.key, c.latest, c.since, c.window_starts, c.counts, c.ctid",
												4, types);
			state_lock_plan[t] = txpipe_spi_keep_generic("SELECT c.key, c.latest, c.since, c.window_starts, c.counts, c.ctid "
												 "  FROM (SELECT u.k FROM pg_catalog.unnest($4::pg_catalog.text[]) AS u(k) ORDER BY u.k) AS u "
												 "  CROSS JOIN LATERAL (SELECT c.key, c.latest, c.since, c.window_starts, c.counts, c.ctid "
												 "    FROM ONLY txpipe.alert_counts c "
												 "   WHERE c.pipeline OPERATOR(pg_catalog.=) $1 AND c.rule OPERATOR(pg_catalog.=) $2 "
												 "     AND c.definition OPERATOR(pg_catalog.=) $3 AND c.key OPERATOR(pg_catalog.=) u.k "
												 "   LIMIT 1 FOR UPDATE) AS c "
												 "ORDER BY u.k",
												 4, types);
		}
	}
	args[0] = CStringGetTextDatum(plan->name);
	args[1] = CStringGetTextDatum(rule->name);
	args[2] = Int64GetDatum(rule->definition);
	args[3] = text_array(missing, NULL, nmissing);

	/*
	 * One probe of the primary key per key, the keys sorted first (the
	 * lateral subquery keeps that order and locks as it goes), whatever
	 * the statistics of these small, constantly updated tables say: with
	 * "key = ANY (keys) ORDER BY key" the planner read the rule's every
	 * row in key order and filtered each through the array, a cost that
	 * grows with the keys the rule has seen.
	 */
	nest = txpipe_plan_by_index();
	got = state_read(table, plan->name, rule->name, rule->definition,
					 txpipe_spi_run(state_lock_plan[t], args, NULL, false, 0, SPI_OK_SELECT, "read alert state"));
	if (got < nmissing)
	{
		int			m = 0;

		for (int i = 0; i < n; i++)
			if (!ents[i]->present)
				missing[m++] = keys[i];
		args[3] = text_array(missing, NULL, m);
		/* the rows this transaction inserts are its own: no lock to take */
		got += state_read(table, plan->name, rule->name, rule->definition,
						  txpipe_spi_run(state_add_plan[t], args, NULL, false, 0, SPI_OK_INSERT_RETURNING,
										 "add keys to alert state"));
		if (got < nmissing)
		{
			/* another session added the rest meanwhile: read and lock them */
			m = 0;
			for (int i = 0; i < n; i++)
				if (!ents[i]->present)
					missing[m++] = keys[i];
			args[3] = text_array(missing, NULL, m);
			(void) state_read(table, plan->name, rule->name, rule->definition,
							  txpipe_spi_run(state_lock_plan[t], args, NULL, false, 0, SPI_OK_SELECT, "read alert state"));
		}
	}
	AtEOXact_GUC(true, nest);
	for (int i = 0; i < n; i++)
		if (!ents[i]->present)
			elog(ERROR, "alert state of key \"%s\" of rule \"%s\" is missing", keys[i], rule->name);
}

static SPIPlanPtr state_save_plan[2] = {NULL, NULL};

/* writes the changed rows of one table; n of them, in es */
static void
state_save(char table, StateCached **es, int n)
{
	int			t = table == 'o' ? 0 : 1;
	Datum	   *tids = palloc(sizeof(Datum) * n);
	int			nest;

	for (int i = 0; i < n; i++)
		tids[i] = PointerGetDatum(&es[i]->tid);
	/*
	 * A TID lookup per row of the arrays, not a scan of the table through
	 * them: with "ctid = ANY ($1)" as well, each row found was checked
	 * against the whole array again, n² comparisons in all.
	 */
	nest = txpipe_plan_by_index();
	if (table == 'o')
	{
		Datum		args[4];
		Datum	   *ns = palloc(sizeof(Datum) * n);
		Datum	   *means = palloc(sizeof(Datum) * n);
		Datum	   *m2s = palloc(sizeof(Datum) * n);

		for (int i = 0; i < n; i++)
		{
			ns[i] = Int64GetDatum(es[i]->n);
			means[i] = Float8GetDatum(es[i]->mean);
			m2s[i] = Float8GetDatum(es[i]->m2);
		}
		if (state_save_plan[t] == NULL)
		{
			Oid			types[4] = {TIDARRAYOID, INT8ARRAYOID, FLOAT8ARRAYOID, FLOAT8ARRAYOID};

			/* the rows locked, by their place: no search of the keys again */
			state_save_plan[t] = txpipe_spi_keep_generic("UPDATE ONLY txpipe.alert_history h SET n = u.n, mean = u.mean, m2 = u.m2 "
												 "  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.tid[]), "
												 "    pg_catalog.unnest($2::pg_catalog.int8[]), pg_catalog.unnest($3::pg_catalog.float8[]), "
												 "    pg_catalog.unnest($4::pg_catalog.float8[])) AS u(t, n, mean, m2) "
												 " WHERE h.ctid OPERATOR(pg_catalog.=) u.t",
												 4, types);
		}
		args[0] = scalar_array(tids, NULL, n, TIDOID);
		args[1] = scalar_array(ns, NULL, n, INT8OID);
		args[2] = scalar_array(means, NULL, n, FLOAT8OID);
		args[3] = scalar_array(m2s, NULL, n, FLOAT8OID);
		(void) txpipe_spi_run(state_save_plan[t], args, NULL, false, 0, SPI_OK_UPDATE, "save alert history");
	}
	else
	{
		Datum		args[7];
		Datum	   *latest = palloc(sizeof(Datum) * n);
		bool	   *latest_nulls = palloc(sizeof(bool) * n);
		Datum	   *since = palloc(sizeof(Datum) * n);
		bool	   *since_nulls = palloc(sizeof(bool) * n);
		Datum	   *first = palloc(sizeof(Datum) * n);
		Datum	   *len = palloc(sizeof(Datum) * n);
		int			total = 0;
		Datum	   *starts;
		Datum	   *counts;
		int			w = 0;

		for (int i = 0; i < n; i++)
			total += es[i]->nwin;
		starts = palloc(sizeof(Datum) * Max(total, 1));
		counts = palloc(sizeof(Datum) * Max(total, 1));
		for (int i = 0; i < n; i++)
		{
			StateCached *e = es[i];

			latest_nulls[i] = !e->has_latest;
			latest[i] = TimestampTzGetDatum(e->latest);
			since_nulls[i] = !e->has_since;
			since[i] = TimestampTzGetDatum(e->since);
			first[i] = Int32GetDatum(w + 1);
			len[i] = Int32GetDatum(e->nwin);
			for (int j = 0; j < e->nwin; j++, w++)
			{
				starts[w] = TimestampTzGetDatum(e->win[j].start);
				counts[w] = Int64GetDatum(e->win[j].count);
			}
		}
		if (state_save_plan[t] == NULL)
		{
			Oid			types[7] = {TIDARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, INT4ARRAYOID,
			INT4ARRAYOID, TIMESTAMPTZARRAYOID, INT8ARRAYOID};

			/* each row's windows are a slice of the flat arrays $6 and $7 */
			state_save_plan[t] = txpipe_spi_keep_generic("UPDATE ONLY txpipe.alert_counts c SET latest = u.latest, since = u.since, "
												 "    window_starts = $6[u.f : u.f OPERATOR(pg_catalog.+) u.l OPERATOR(pg_catalog.-) 1], "
												 "    counts = $7[u.f : u.f OPERATOR(pg_catalog.+) u.l OPERATOR(pg_catalog.-) 1] "
												 "  FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.tid[]), "
												 "    pg_catalog.unnest($2::pg_catalog.timestamptz[]), pg_catalog.unnest($3::pg_catalog.timestamptz[]), "
												 "    pg_catalog.unnest($4::pg_catalog.int4[]), pg_catalog.unnest($5::pg_catalog.int4[])) "
												 "    AS u(t, latest, since, f, l) "
												 " WHERE c.ctid OPERATOR(pg_catalog.=) u.t",
												 7, types);
		}
		args[0] = scalar_array(tids, NULL, n, TIDOID);
		args[1] = scalar_array(latest, latest_nulls, n, TIMESTAMPTZOID);
		args[2] = scalar_array(since, since_nulls, n, TIMESTAMPTZOID);
		args[3] = scalar_array(first, NULL, n, INT4OID);
		args[4] = scalar_array(len, NULL, n, INT4OID);
		args[5] = scalar_array(starts, NULL, total, TIMESTAMPTZOID);
		args[6] = scalar_array(counts, NULL, total, INT8OID);
		(void) txpipe_spi_run(state_save_plan[t], args, NULL, false, 0, SPI_OK_UPDATE, "save alert counts");
	}
	AtEOXact_GUC(true, nest);
}

/*
 * Writes the changed state back, as the owner of txpipe's tables; with
 * forget, the cache then holds none (its rows are read and locked again
 * when next needed).  A row deleted meanwhile in this transaction
 * (drop_pipeline) is not written.
 */
static void
state_flush(bool forget)
{
	HASH_SEQ_STATUS status;
	StateCached *e;
	int			n[2] = {0, 0};
	long		cap;
	StateCached **es[2];
	MemoryContext cxt;
	MemoryContext old;
	Oid			nsp;

	if (state_cache == NULL)
		return;
	/* DROP EXTENSION in the transaction took the state with it */
	nsp = get_namespace_oid("txpipe", true);
	if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("alert_counts", nsp)))
		return;
	cxt = AllocSetContextCreate(CurrentMemoryContext, "txpipe alert state", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	cap = Max(hash_get_num_entries(state_cache), 1);
	es[0] = palloc(sizeof(StateCached *) * cap);
	es[1] = palloc(sizeof(StateCached *) * cap);
	hash_seq_init(&status, state_cache);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		int			t = e->table == 'o' ? 0 : 1;

		if (e->present && e->dirty)
			es[t][n[t]++] = e;
	}
	if (n[0] + n[1] > 0)
	{
		TxIdentity	id;
		bool		snapshot = !ActiveSnapshotSet();

		/* at commit, no statement's snapshot is there */
		if (snapshot)
			PushActiveSnapshot(GetTransactionSnapshot());
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		txpipe_enter_catalog(&id);
		if (n[0] > 0)
			state_save('o', es[0], n[0]);
		if (n[1] > 0)
			state_save('r', es[1], n[1]);
		txpipe_leave(&id);
		SPI_finish();
		if (snapshot)
			PopActiveSnapshot();
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (!forget)
		return;
	hash_seq_init(&status, state_cache);
	while ((e = hash_seq_search(&status)) != NULL)
	{
		if (e->present || e->dirty)
		{
			state_change(e);
			e->present = false;
			e->dirty = false;
		}
	}
}

/*
 * Writes this transaction's alert state now, and reads it again when next
 * needed: before SQL of this transaction changes the rows (drop_pipeline
 * deletes them).
 */
void
txpipe_alerts_flush(void)
{
	state_flush(true);
	/* the SQL that follows may delete alerts too */
	if (known_alerts != NULL)
	{
		hash_destroy(known_alerts);
		known_alerts = NULL;
	}
	known_n = 0;
}

static void
alerts_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			state_flush(false);
			break;
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			break;
		default:
			/* the transaction's memory goes with it */
			state_cache = NULL;
			state_undo = NULL;
			state_nundo = 0;
			state_undo_cap = 0;
			known_alerts = NULL;
			known_log = NULL;
			known_n = 0;
			known_cap = 0;
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
	while (state_nundo > 0 && state_undo[state_nundo - 1].subid >= mySubid)
	{
		state_nundo--;
		*state_undo[state_nundo].entry = state_undo[state_nundo].saved;
	}
	/* and the alerts they met: theirs are rolled back */
	while (known_n > 0 && known_log[known_n - 1]->subid >= mySubid)
	{
		known_n--;
		(void) hash_search(known_alerts, known_log[known_n]->key, HASH_REMOVE, NULL);
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
 * The distinct keys of the records a rule counts, and the key of each
 * record (an index into keys; -1 when the record does not count).  With
 * a window, a record without an event time does not count.
 */
typedef struct RuleKeys
{
	int			nkeys;
	char	  **keys;
	int		   *rec_key;		/* per position in the order */
	TimestampTz *times;			/* per position, when the rule has a window */
} RuleKeys;

static void
rule_keys(TxPlan *plan, TxAlertRule *rule, TxRecord *recs, int *stored, EventTimes *ot, int n,
		  RuleKeys *rk, double *vals)
{
	StringInfoData key;
	HASHCTL		ctl;
	HTAB	   *index;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(SeenEntry);
	ctl.entrysize = sizeof(SeenEntry) + sizeof(int);
	ctl.hcxt = CurrentMemoryContext;
	index = hash_create("txpipe rule keys", Max(n, 16), &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	rk->nkeys = 0;
	rk->keys = palloc(sizeof(char *) * Max(n, 1));
	rk->rec_key = palloc(sizeof(int) * Max(n, 1));
	rk->times = palloc(sizeof(TimestampTz) * Max(n, 1));
	initStringInfo(&key);
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[stored[i]];
		char	   *entry;
		bool		found;
		int			h;

		rk->rec_key[i] = -1;
		if (!txpipe_when_holds(rule->when, rec) || !rule_key(plan, rule, rec, &key))
			continue;
		if (vals != NULL && !numeric_value(&rec->values[rule->value_field], &vals[i]))
			continue;
		if (rule->kind == TXA_RATE || rule->kind == TXA_BASELINE)
		{
			if (!ot->has[i])
				continue;
			rk->times[i] = ot->time[i];
		}
		/* a key fits: rule_key keeps it to TXPIPE_ALERT_KEY_MAX bytes */
		entry = hash_search(index, key.data, HASH_ENTER, &found);
		if (!found)
		{
			h = rk->nkeys++;
			rk->keys[h] = pstrdup(key.data);
			memcpy(entry + sizeof(SeenEntry), &h, sizeof(int));
		}
		else
			memcpy(&h, entry + sizeof(SeenEntry), sizeof(int));
		rk->rec_key[i] = h;
	}
}

/* ----------------------------------------------------------------
 * rate and baseline rules
 * ----------------------------------------------------------------
 */

/* the window of e starting at start, added when it has none */
static RateWindow *
window_get(StateCached *e, TimestampTz start)
{
	int			i = e->nwin;

	/* mostly the newest */
	while (i > 0 && e->win[i - 1].start > start)
		i--;
	if (i > 0 && e->win[i - 1].start == start)
		return &e->win[i - 1];
	if (e->nwin == e->capwin)
	{
		e->capwin = Max(e->capwin * 2, 4);
		e->win = e->win == NULL ?
			MemoryContextAlloc(TopTransactionContext, sizeof(RateWindow) * e->capwin) :
			repalloc(e->win, sizeof(RateWindow) * e->capwin);
	}
	memmove(&e->win[i + 1], &e->win[i], sizeof(RateWindow) * (e->nwin - i));
	e->nwin++;
	e->win[i].start = start;
	e->win[i].count = 0;
	return &e->win[i];
}

/*
 * Drops the windows no record can count in any more: closed longer than
 * the lateness ago, and (baseline) older than the history of the newest
 * window.
 */
static void
window_prune(TxAlertRule *rule, StateCached *e)
{
	TimestampTz newest = window_of(rule, e->latest);
	int			drop = 0;

	while (drop < e->nwin &&
		   e->win[drop].start + rule->window + rule->lateness <= e->latest &&
		   e->win[drop].start < newest - rule->history * rule->window)
		drop++;
	if (drop > 0)
	{
		memmove(&e->win[0], &e->win[drop], sizeof(RateWindow) * (e->nwin - drop));
		e->nwin -= drop;
	}
}

/* the mean count of the history windows before start; empty ones are 0 */
static double
window_baseline(TxAlertRule *rule, StateCached *e, TimestampTz start)
{
	TimestampTz from = start - rule->history * rule->window;
	int64		sum = 0;

	for (int i = 0; i < e->nwin && e->win[i].start < start; i++)
		if (e->win[i].start >= from)
			sum += e->win[i].count;
	return (double) sum / rule->history;
}

static bool
baseline_exceeded(TxAlertRule *rule, int64 count, double baseline)
{
	return count >= rule->min_count && (double) count > rule->factor * baseline;
}

/* an alert a window raised in this batch: its details wait for the batch's end */
typedef struct WindowRaise
{
	int			pos;			/* in the order */
	StateCached *e;
	TimestampTz start;
	int64		count;			/* when raised */
	double		baseline;
} WindowRaise;

static void
raise_windows(TxPlan *plan, int r, TxRecord *recs, int *stored, EventTimes *ot, int n, Candidates *cs)
{
	TxAlertRule *rule = &plan->alerts[r];
	RuleKeys	rk;
	StateCached **ents;
	WindowRaise *raised = palloc(sizeof(WindowRaise) * Max(n, 1));
	int			nraised = 0;
	TimestampTz horizon;

	rule_keys(plan, rule, recs, stored, ot, n, &rk, NULL);
	if (rk.nkeys == 0)
		return;
	ents = palloc(sizeof(StateCached *) * rk.nkeys);
	state_load('r', plan, rule, rk.keys, rk.nkeys, ents);
	for (int h = 0; h < rk.nkeys; h++)
	{
		state_change(ents[h]);
		ents[h]->dirty = true;
	}

	/* a time further ahead of the clock than the lateness counts for nothing */
	horizon = GetCurrentTransactionStartTimestamp() + rule->lateness + USECS_PER_HOUR;

	for (int i = 0; i < n; i++)
	{
		StateCached *e;
		TimestampTz t = rk.times[i];
		TimestampTz start;
		RateWindow *w;

		if (rk.rec_key[i] < 0 || t > horizon)
			continue;
		e = ents[rk.rec_key[i]];
		start = window_of(rule, t);
		if (!e->has_latest || t > e->latest)
		{
			e->latest = t;
			e->has_latest = true;
			window_prune(rule, e);
		}
		/* too late: its window closed longer than the lateness ago */
		if (start + rule->window + rule->lateness <= e->latest)
			continue;
		if (!e->has_since || start < e->since)
		{
			e->since = start;
			e->has_since = true;
		}
		w = window_get(e, start);
		w->count++;
		if (rule->kind == TXA_RATE)
		{
			if (w->count == rule->threshold + 1)
			{
				raised[nraised].pos = i;
				raised[nraised].e = e;
				raised[nraised].start = start;
				raised[nraised].count = w->count;
				raised[nraised].baseline = 0;
				nraised++;
			}
		}
		else if (e->since <= start - rule->history * rule->window)
		{
			double		b = window_baseline(rule, e, start);

			if (baseline_exceeded(rule, w->count, b) && !baseline_exceeded(rule, w->count - 1, b))
			{
				raised[nraised].pos = i;
				raised[nraised].e = e;
				raised[nraised].start = start;
				raised[nraised].count = w->count;
				raised[nraised].baseline = b;
				nraised++;
			}
		}
	}

	for (int j = 0; j < nraised; j++)
	{
		WindowRaise *x = &raised[j];
		RuleInput	in;
		StringInfoData details;
		int64		count = x->count;

		/* the window's count after the batch, while it is kept */
		for (int k = 0; k < x->e->nwin; k++)
			if (x->e->win[k].start == x->start)
				count = x->e->win[k].count;
		in.key = rk.keys[rk.rec_key[x->pos]];
		in.has_time = true;
		in.time = rk.times[x->pos];
		in.window_start = x->start;
		initStringInfo(&details);
		if (rule->kind == TXA_RATE)
			appendStringInfo(&details, "{\"count\": " INT64_FORMAT ", \"threshold\": " INT64_FORMAT ", \"window\": ",
							 count, rule->threshold);
		else
		{
			appendStringInfo(&details, "{\"count\": " INT64_FORMAT ", \"baseline\": ", count);
			append_double(&details, x->baseline);
			appendStringInfoString(&details, ", \"factor\": ");
			append_double(&details, rule->factor);
			appendStringInfo(&details, ", \"min_count\": " INT64_FORMAT ", \"history\": %d, \"window\": ",
							 rule->min_count, rule->history);
		}
		escape_json(&details, rule->window_text);
		appendStringInfoChar(&details, '}');
		candidate_add(cs, r, stored[x->pos], rule, &in, details.data);
	}
}

/* ----------------------------------------------------------------
 * outlier rules
 * ----------------------------------------------------------------
 */

static void
raise_outlier(TxPlan *plan, int r, TxRecord *recs, int *stored, EventTimes *ot, int n, Candidates *cs)
{
	TxAlertRule *rule = &plan->alerts[r];
	RuleKeys	rk;
	double	   *vals = palloc(sizeof(double) * Max(n, 1));
	StateCached **ents;

	rule_keys(plan, rule, recs, stored, ot, n, &rk, vals);
	if (rk.nkeys == 0)
		return;
	ents = palloc(sizeof(StateCached *) * rk.nkeys);
	state_load('o', plan, rule, rk.keys, rk.nkeys, ents);
	/* written back at commit */
	for (int h = 0; h < rk.nkeys; h++)
	{
		state_change(ents[h]);
		ents[h]->dirty = true;
	}

	/* each value against the history before it, then into it */
	for (int i = 0; i < n; i++)
	{
		StateCached *hs;
		double		x = vals[i];
		double		d,
					mean,
					m2;

		if (rk.rec_key[i] < 0)
			continue;
		hs = ents[rk.rec_key[i]];
		if (hs->n >= rule->min_history)
		{
			double		sd = sqrt(hs->m2 / (double) (hs->n - 1));
			double		z = sd > 0 ? (x - hs->mean) / sd : 0;

			if (sd > 0 && fabs(z) > rule->z)
			{
				RuleInput	in;
				StringInfoData details;

				in.key = rk.keys[rk.rec_key[i]];
				in.has_time = ot->has[i];
				in.time = ot->time[i];
				if (in.has_time && rule->window > 0)
					in.window_start = window_of(rule, in.time);
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
rule_order(TxPlan *plan, TxAlertRule *rule, TxRecord *recs, int *stored, int n, EventTimes *cache,
		   int *ncache, EventTimes *ordered)
{
	TimedRecord *t;
	int		   *order = palloc(sizeof(int) * n);
	EventTimes *et = NULL;

	ordered->has = palloc(sizeof(bool) * Max(n, 1));
	ordered->time = palloc(sizeof(TimestampTz) * Max(n, 1));
	if (rule->time_field < 0)
	{
		memcpy(order, stored, sizeof(int) * n);
		memset(ordered->has, 0, sizeof(bool) * n);
		return order;
	}
	/* each time field is parsed and sorted once per batch, whatever the rules on it */
	for (int c = 0; c < *ncache; c++)
		if (cache[c].field == rule->time_field)
			et = &cache[c];
	if (et == NULL)
	{
		et = &cache[(*ncache)++];
		et->field = rule->time_field;
		et->has = palloc(sizeof(bool) * n);
		et->time = palloc(sizeof(TimestampTz) * n);
		et->order = palloc(sizeof(int) * n);
		t = palloc(sizeof(TimedRecord) * n);
		for (int i = 0; i < n; i++)
		{
			RuleInput	in;

			rule_time(plan, rule, &recs[stored[i]], &in);
			t[i].pos = i;
			t[i].has_time = in.has_time;
			t[i].time = in.has_time ? in.time : 0;
		}
		qsort(t, n, sizeof(TimedRecord), timed_cmp);
		for (int i = 0; i < n; i++)
		{
			et->order[i] = stored[t[i].pos];
			et->has[i] = t[i].has_time;
			et->time[i] = t[i].time;
		}
		pfree(t);
	}
	pfree(order);
	pfree(ordered->has);
	pfree(ordered->time);
	*ordered = *et;
	return et->order;
}

/* a candidate's entry in known_alerts, KNOWN_KEY bytes */
static char *
known_key(TxPlan *plan, TxAlertRule *rule, Candidate *c)
{
	char	   *k = palloc0(KNOWN_KEY);

	snprintf(k, KNOWN_KEY, "%s/%s/" INT64_FORMAT "/%s/" INT64_FORMAT "/%d", plan->name, rule->name,
			 rule->definition, c->key, c->has_window ? (int64) c->window_start : (int64) 0, c->has_window);
	return k;
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
	int			n = cs->n;	/* the candidates that are left, below */
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
	char	  **known;			/* the candidates' known_alerts keys */

	if (raise_plan == NULL)
	{
		Oid			types[10] = {TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID, BOOLARRAYOID,
		TIMESTAMPTZARRAYOID, TEXTARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID};

		raise_plan = txpipe_spi_keep_generic("WITH a AS ("
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
	if (known_alerts == NULL)
		known_alerts = xact_hash("txpipe known alerts", 256, KNOWN_KEY, sizeof(KnownAlert));
	/* the candidates whose alert this transaction has met already go */
	known = palloc(sizeof(char *) * Max(cs->n, 1));
	n = 0;
	for (int i = 0; i < cs->n; i++)
	{
		Candidate  *c = &cs->c[i];

		known[n] = known_key(plan, &plan->alerts[c->rule], c);
		if (hash_search(known_alerts, known[n], HASH_FIND, NULL) == NULL)
			cs->c[n++] = *c;
	}
	if (n == 0)
		return;
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
	for (int i = 0; i < n; i++)
	{
		bool		found;
		KnownAlert *a;

		a = hash_search(known_alerts, known[i], HASH_ENTER, &found);
		if (found)
			continue;
		a->subid = GetCurrentSubTransactionId();
		if (known_n == known_cap)
		{
			known_cap = Max(known_cap * 2, 64);
			known_log = known_log == NULL ?
				MemoryContextAlloc(TopTransactionContext, sizeof(KnownAlert *) * known_cap) :
				repalloc(known_log, sizeof(KnownAlert *) * known_cap);
		}
		known_log[known_n++] = a;
	}
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
	EventTimes *times;
	int			ntimes = 0;

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
		cs.seen = hash_create("txpipe alert candidates", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		times = palloc(sizeof(EventTimes) * plan->nalerts);
		for (int r = 0; r < plan->nalerts; r++)
		{
			int		   *order;
			EventTimes	ot;

			CHECK_FOR_INTERRUPTS();
			order = rule_order(plan, &plan->alerts[r], recs, stored, nstored, times, &ntimes, &ot);
			switch (plan->alerts[r].kind)
			{
				case TXA_FLAG:
					raise_flag(plan, r, recs, order, &ot, nstored, &cs);
					break;
				case TXA_RATE:
				case TXA_BASELINE:
					raise_windows(plan, r, recs, order, &ot, nstored, &cs);
					break;
				default:
					raise_outlier(plan, r, recs, order, &ot, nstored, &cs);
					break;
			}
			if (plan->alerts[r].time_field < 0)
				pfree(order);
		}
		if (cs.n > 0)
			raise_candidates(plan, recs, &cs);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}
