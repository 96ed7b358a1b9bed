/*-------------------------------------------------------------------------
 *
 * identity.c
 *	  A record's identity when its source has none, and the check that a
 *	  re-sent idempotency key comes with the content it was stored with.
 *
 * Content keys.  "idempotency_key": ["f1", "f2", ...] makes the key a
 * digest of those fields as the contract reads them (after the opt-ins and
 * normalizations): each value in the listed order, length-prefixed, with
 * absent and null alike as "no value" (and "" too under emptyIsAbsent, which
 * makes it absent); a number by its exact value in one canonical form (2.5,
 * 2.50 and 25e-1 are the same, 17850.0 is 17850), written as a plain
 * decimal, so that a string field that also takes numbers sees "536365" and
 * 536365 alike; a string or boolean as its text; an object or array as its
 * JSON text as received.  The digest is SHA-256, its first 16 bytes given
 * as a UUID of version 8, in the key's own slot "$key" that no record can
 * fill.  The same record sent as a CSV row, as pandas' to_json or as the
 * simulator's all-strings object has one key.
 *
 * Key conflicts.  With a key field (e.g. trans_num), a record whose key is
 * stored already, or came earlier in the same batch, is a duplicate only
 * when the values the grain table keeps of it directly (its columns taken
 * from fields, other than the key) are the same; otherwise it is a
 * key_conflict reject.  Stored rows are compared by each column type's
 * equality, after the record's text went through the type's input as the
 * insert would; two records of one batch by their values' text (numbers in
 * the canonical form above), which needs no conversion that could fail
 * outside the batch's subtransaction.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "common/cryptohash.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "parser/parse_coerce.h"
#include "port/pg_bswap.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/typcache.h"

/* how a compared column's value is converted and compared */
typedef struct TxConflictCol
{
	int			col;			/* in the grain route's columns */
	Oid			typid;
	int32		typmod;
	Oid			collation;
	FmgrInfo	in;
	Oid			ioparam;
	FmgrInfo	out;
	bool		typmod_coerce;	/* the length coercion the insert applies */
	FmgrInfo	typmod_fn;
	bool		has_eq;
	FmgrInfo	eq;
	int16		typlen;
	bool		typbyval;
} TxConflictCol;

static void
append_value(StringInfo buf, TxValue *v)
{
	uint32		len;

	if (v->kind == TX_ABSENT || v->kind == TX_NULL)
	{
		appendStringInfoChar(buf, 'n');
		return;
	}
	if (v->kind == TX_NUMBER)
	{
		char	   *c = txpipe_number_canonical(v->text);

		appendStringInfoChar(buf, 'v');
		len = pg_hton32((uint32) strlen(c));
		appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
		appendStringInfoString(buf, c);
		return;
	}
	appendStringInfoChar(buf, 'v');
	len = pg_hton32((uint32) v->len);
	appendBinaryStringInfo(buf, (char *) &len, sizeof(len));
	appendBinaryStringInfo(buf, v->text, v->len);
}

/* sets rec's "$key" slot to the digest of its key fields */
void
txpipe_content_key(TxPlan *plan, TxRecord *rec)
{
	StringInfoData buf;
	uint8		hash[PG_SHA256_DIGEST_LENGTH];
	pg_cryptohash_ctx *ctx;
	TxValue    *key = &rec->values[plan->idem_field];
	char	   *out;

	initStringInfo(&buf);
	for (int i = 0; i < plan->nkey_fields; i++)
		append_value(&buf, &rec->values[plan->key_fields[i]]);
	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) buf.data, buf.len) < 0 ||
		pg_cryptohash_final(ctx, hash, sizeof(hash)) < 0)
		elog(ERROR, "could not compute the content key: %s", pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	pfree(buf.data);

	/* RFC 9562 version 8 (custom), variant 10 */
	hash[6] = (hash[6] & 0x0f) | 0x80;
	hash[8] = (hash[8] & 0x3f) | 0x80;
	out = palloc(37);
	snprintf(out, 37,
			 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
			 hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7],
			 hash[8], hash[9], hash[10], hash[11], hash[12], hash[13], hash[14], hash[15]);
	key->kind = TX_STRING;
	key->text = out;
	key->len = 36;
}

/*
 * The grain route's columns a key conflict compares: those from fields
 * other than the key.  None with a content key: its fields are the key.
 */
void
txpipe_conflict_compile(TxPlan *plan)
{
	TxRoute    *g;

	plan->nconflict = 0;
	if (plan->grain_route < 0 || plan->nkey_fields > 0)
		return;
	g = &plan->routes[plan->grain_route];
	plan->conflict = palloc0(sizeof(TxConflictCol) * Max(g->ncols, 1));
	for (int c = 0; c < g->ncols; c++)
	{
		TxColumn   *col = &g->cols[c];
		TxConflictCol *cc;
		TypeCacheEntry *tce;
		Oid			in;
		Oid			out;
		bool		varlena;

		if (col->source != TXS_FIELD || c == g->idem_col)
			continue;
		cc = &plan->conflict[plan->nconflict++];
		cc->col = c;
		cc->typid = col->typid;
		cc->typmod = col->typmod;
		cc->collation = get_typcollation(col->typid);
		getTypeInputInfo(col->typid, &in, &cc->ioparam);
		fmgr_info_cxt(in, &cc->in, CurrentMemoryContext);
		getTypeOutputInfo(col->typid, &out, &varlena);
		fmgr_info_cxt(out, &cc->out, CurrentMemoryContext);
		get_typlenbyval(col->typid, &cc->typlen, &cc->typbyval);
		if (col->typmod >= 0)
		{
			Oid			funcid;

			if (find_typmod_coercion_function(col->typid, &funcid) == COERCION_PATH_FUNC)
			{
				cc->typmod_coerce = true;
				fmgr_info_cxt(funcid, &cc->typmod_fn, CurrentMemoryContext);
			}
		}
		tce = lookup_type_cache(getBaseType(col->typid), TYPECACHE_EQ_OPR_FINFO);
		cc->has_eq = OidIsValid(tce->eq_opr_finfo.fn_oid);
		if (cc->has_eq)
			fmgr_info_copy(&cc->eq, &tce->eq_opr_finfo, CurrentMemoryContext);
	}
}

/* the grain route's column the i-th compared value is, and its name */
int
txpipe_conflict_column(TxPlan *plan, int i)
{
	return plan->conflict[i].col;
}

const char *
txpipe_conflict_column_name(TxPlan *plan, int i)
{
	return plan->routes[plan->grain_route].cols[plan->conflict[i].col].name;
}

static bool
same_text(TxRecord *a, TxRecord *b, TxColumn *col)
{
	const char *ta,
			   *tb;
	int			la,
				lb;
	int64		unused;
	bool		na = !txpipe_column_value(a, col, &ta, &la, &unused);
	bool		nb = !txpipe_column_value(b, col, &tb, &lb, &unused);

	if (na || nb)
		return na == nb;
	if (la == lb && memcmp(ta, tb, la) == 0)
		return true;
	if (a->values[col->field].kind == TX_NUMBER && b->values[col->field].kind == TX_NUMBER &&
		col->lpad == 0)
		return strcmp(txpipe_number_canonical(ta), txpipe_number_canonical(tb)) == 0;
	return false;
}

static void
set_conflict(TxPlan *plan, TxRecord *rec, int i, const char *where, const char *other)
{
	TxRoute    *g = &plan->routes[plan->grain_route];
	TxColumn   *col = &g->cols[plan->conflict[i].col];
	TxValue    *key = &rec->values[plan->idem_field];

	rec->conflict = true;
	rec->conflict_message =
		psprintf("idempotency key \"%.*s%s\" is %s with other content: field \"%s\" (column \"%s\") was %s%.60s%s",
				 Min(key->len, 60), key->text, key->len > 60 ? "..." : "", where,
				 plan->fields[col->field].name, col->name,
				 other ? "\"" : "", other ? other : "null", other ? "\"" : "");
}

/*
 * Whether rec and an earlier record first of the same batch with the same
 * key differ; if so, rec becomes a key conflict.
 */
bool
txpipe_batch_conflict(TxPlan *plan, TxRecord *first, TxRecord *rec)
{
	TxRoute    *g;

	if (plan->nconflict == 0)
		return false;
	g = &plan->routes[plan->grain_route];
	for (int i = 0; i < plan->nconflict; i++)
	{
		TxColumn   *col = &g->cols[plan->conflict[i].col];

		if (!same_text(first, rec, col))
		{
			const char *t;
			int			len;
			int64		unused;
			char	   *other = NULL;

			if (txpipe_column_value(first, col, &t, &len, &unused))
				other = pnstrdup(t, len);
			set_conflict(plan, rec, i, "earlier in the same batch", other);
			return true;
		}
	}
	return false;
}

/*
 * Compares rec with the stored row whose compared columns are stored[i]
 * (null when isnull[i]); marks rec a key conflict when they differ.  Runs
 * inside the batch's subtransaction: a value its column's type refuses
 * raises, and the batch is bisected as for the insert.
 */
bool
txpipe_stored_conflict(TxPlan *plan, TxRecord *rec, Datum *stored, bool *isnull)
{
	TxRoute    *g;

	if (plan->nconflict == 0)
		return false;
	g = &plan->routes[plan->grain_route];
	for (int i = 0; i < plan->nconflict; i++)
	{
		TxConflictCol *cc = &plan->conflict[i];
		TxColumn   *col = &g->cols[cc->col];
		const char *t;
		int			len;
		int64		unused;
		bool		same;

		if (!txpipe_column_value(rec, col, &t, &len, &unused))
			same = isnull[i];
		else if (isnull[i])
			same = false;
		else
		{
			/* as the insert converts it: input, then the length coercion */
			Datum		d = InputFunctionCall(&cc->in, pnstrdup(t, len), cc->ioparam, -1);

			if (cc->typmod_coerce)
				d = FunctionCall3(&cc->typmod_fn, d, Int32GetDatum(cc->typmod), BoolGetDatum(true));

			if (cc->has_eq)
				same = DatumGetBool(FunctionCall2Coll(&cc->eq, cc->collation, d, stored[i]));
			else
				same = datumIsEqual(d, stored[i], cc->typbyval, cc->typlen);
		}
		if (!same)
		{
			set_conflict(plan, rec, i, "stored already", isnull[i] ? NULL :
						 OutputFunctionCall(&cc->out, stored[i]));
			return true;
		}
	}
	return false;
}
