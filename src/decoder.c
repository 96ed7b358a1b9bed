/*-------------------------------------------------------------------------
 *
 * decoder.c
 *	  Strict JSON decoding of one record into the plan's field slots, on
 *	  PostgreSQL's own JSON lexer and recursive-descent parser
 *	  (common/jsonapi.h) with semantic callbacks.
 *
 * The lexer already refuses what json-c lets through: NaN and Infinity,
 * single quotes, raw control characters, trailing commas and text, lone
 * surrogates and \u0000.  On top of it this file refuses duplicate keys,
 * nesting deeper than txpipe.max_depth (checked before parsing, because the
 * parser recurses and would otherwise hit the stack limit with an ERROR)
 * and records longer than txpipe.max_record_size.  Numbers are kept as
 * their lexemes, so nothing passes through a double.
 *
 * Most records are one flat object of scalars; they are read by a direct
 * scanner first, and anything it does not take (nesting, escapes, bad
 * syntax, a repeated key) goes through the parser, so both give the same
 * values and the same rejects.
 *
 * Every problem becomes a TxError with a reject code, a JSON path and a
 * message; decoding never raises an ERROR for bad input.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "common/cryptohash.h"
#include "common/hashfn.h"
#include "common/jsonapi.h"
#include "common/sha2.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/memutils.h"

/*
 * Keys of an object are compared with the ones before them in a list up to
 * this many; past it they go into a hash set of the whole record, so that
 * the duplicate check stays linear in the number of keys.
 */
#define KEYS_LISTED 16

/* an entry of the hash set: a key of object obj */
typedef struct KeySeen
{
	uint32		obj;
	const char *key;
} KeySeen;

typedef struct PathStep
{
	bool		is_array;
	int			index;
	char	   *key;
	List	   *keys;			/* keys seen in this object, the first
								 * KEYS_LISTED of them */
	int			nkeys;			/* keys seen in this object */
	bool		hashed;			/* its keys are in the hash set */
	uint32		obj;			/* number of this object in the record */
} PathStep;

typedef struct DecodeState
{
	TxPlan	   *plan;
	TxRecord   *rec;
	JsonLexContext *lex;
	int			depth;			/* open containers */
	int			field;			/* current top-level field slot, -1 unknown */
	int			last_known;		/* the last top-level field in the contract
								 * seen so far, -1 none */
	char	   *value_start;	/* raw start of a container value at depth 1 */
	PathStep   *path;			/* [1..depth] */
	TxError		err;			/* first semantic error */
	uint32		nobjects;		/* objects opened so far */
	HTAB	   *keys_seen;		/* KeySeen of objects past KEYS_LISTED keys */
	List	   *unknown;		/* top-level keys outside the contract */
} DecodeState;

static uint32
key_seen_hash(const void *key, Size keysize)
{
	const KeySeen *k = key;

	return hash_bytes((const unsigned char *) k->key, strlen(k->key)) ^ (k->obj * 0x9E3779B1u);
}

static int
key_seen_match(const void *a, const void *b, Size keysize)
{
	const KeySeen *x = a;
	const KeySeen *y = b;

	return (x->obj == y->obj && strcmp(x->key, y->key) == 0) ? 0 : 1;
}

/*
 * Adds key to the keys of the object at p; true when it was there already.
 * The first KEYS_LISTED keys of an object are compared one by one (most
 * objects are small); from then on every key goes through the hash set.
 */
static bool
key_repeated(DecodeState *st, PathStep *p, char *key)
{
	KeySeen		k;
	bool		found;

	p->nkeys++;
	if (!p->hashed && list_length(p->keys) < KEYS_LISTED)
	{
		ListCell   *lc;

		foreach(lc, p->keys)
			if (strcmp(lfirst(lc), key) == 0)
				return true;
		p->keys = lappend(p->keys, key);
		return false;
	}
	if (st->keys_seen == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(KeySeen);
		ctl.entrysize = sizeof(KeySeen);
		ctl.hash = key_seen_hash;
		ctl.match = key_seen_match;
		ctl.hcxt = CurrentMemoryContext;
		st->keys_seen = hash_create("txpipe record keys", 256, &ctl,
									HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	}
	if (!p->hashed)
	{
		ListCell   *lc;

		p->hashed = true;
		/* the listed keys join the set (they are all different) */
		foreach(lc, p->keys)
		{
			k.obj = p->obj;
			k.key = lfirst(lc);
			(void) hash_search(st->keys_seen, &k, HASH_ENTER, &found);
		}
	}
	k.obj = p->obj;
	k.key = key;
	(void) hash_search(st->keys_seen, &k, HASH_ENTER, &found);
	return found;
}

void
txpipe_set_error(TxError *err, const char *code, const char *path, const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	err->code = code;
	err->path = pstrdup(path);
	err->message = buf.data;
	err->sqlstate = NULL;
}

static char *
path_string(DecodeState *st, int upto)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '$');
	for (int d = 1; d <= upto; d++)
	{
		PathStep   *p = &st->path[d];

		if (p->is_array)
		{
			if (p->index >= 0)
				appendStringInfo(&buf, "[%d]", p->index);
		}
		else if (p->key)
		{
			bool		plain = (p->key[0] != '\0');

			for (const char *c = p->key; *c && plain; c++)
				if (!(isalnum((unsigned char) *c) || *c == '_'))
					plain = false;
			if (plain)
				appendStringInfo(&buf, ".%s", p->key);
			else
			{
				appendStringInfoString(&buf, "[\"");
				for (const char *c = p->key; *c; c++)
				{
					if (*c == '"' || *c == '\\')
						appendStringInfoChar(&buf, '\\');
					appendStringInfoChar(&buf, *c);
				}
				appendStringInfoString(&buf, "\"]");
			}
		}
	}
	return buf.data;
}

static void
semantic_error(DecodeState *st, const char *code, const char *fmt, const char *arg)
{
	if (st->err.code == NULL)
		txpipe_set_error(&st->err, code, path_string(st, st->depth), fmt, arg);
}

static void
open_container(DecodeState *st, bool is_array)
{
	PathStep   *p;

	if (st->depth == 0 && is_array)
		semantic_error(st, "not_object", "a record must be a JSON object, found %s", "an array");
	if (st->depth == 1)
		st->value_start = st->lex->token_start;
	st->depth++;
	p = &st->path[st->depth];
	p->is_array = is_array;
	p->index = -1;
	p->key = NULL;
	p->keys = NIL;
	p->nkeys = 0;
	p->hashed = false;
	p->obj = is_array ? 0 : ++st->nobjects;
}

static void
close_container(DecodeState *st, TxKind kind)
{
	st->depth--;
	if (st->depth == 1 && st->field >= 0)
	{
		TxValue    *v = &st->rec->values[st->field];

		v->kind = kind;
		v->text = st->value_start;
		v->len = st->lex->prev_token_terminator - st->value_start;
	}
}

static void
on_object_start(void *state)
{
	open_container((DecodeState *) state, false);
}

static void
on_object_end(void *state)
{
	close_container((DecodeState *) state, TX_OBJECT);
}

static void
on_array_start(void *state)
{
	open_container((DecodeState *) state, true);
}

static void
on_array_end(void *state)
{
	close_container((DecodeState *) state, TX_ARRAY);
}

static void
on_array_element_start(void *state, bool isnull)
{
	DecodeState *st = state;

	CHECK_FOR_INTERRUPTS();
	st->path[st->depth].index++;
}

/*
 * The field number of a top-level key.  Records of one producer list their
 * keys in the same order, so the field that followed the previous one last
 * time is tried before the plan's field index.
 */
static int
field_lookup(DecodeState *st, const char *fname)
{
	TxPlan	   *plan = st->plan;
	int		   *after = plan->field_after;
	int			guess;
	int			f;

	if (after == NULL)
	{
		after = MemoryContextAlloc(GetMemoryChunkContext(plan->fields),
								   sizeof(int) * (plan->nfields + 1));
		for (int i = 0; i <= plan->nfields; i++)
			after[i] = -1;
		plan->field_after = after;
	}
	guess = after[st->last_known + 1];
	if (guess >= 0 && strcmp(plan->fields[guess].name, fname) == 0)
		f = guess;
	else
	{
		f = txpipe_field_lookup(plan, fname);
		if (f < 0)
			return f;
		after[st->last_known + 1] = f;
	}
	st->last_known = f;
	return f;
}

static void
on_field_start(void *state, char *fname, bool isnull)
{
	DecodeState *st = state;
	PathStep   *p = &st->path[st->depth];
	bool		dup = false;

	CHECK_FOR_INTERRUPTS();
	p->key = fname;
	if (st->depth == 1)
	{
		int			f = field_lookup(st, fname);

		st->field = f;
		if (f >= 0)
		{
			p->nkeys++;
			dup = (st->rec->values[f].kind != TX_ABSENT);
		}
		else
		{
			dup = key_repeated(st, p, fname);
			if (!dup)
				st->unknown = lappend(st->unknown, fname);
		}
		if (f >= 0 && !dup)
			st->rec->values[f].kind = TX_NULL;	/* present; set below */
	}
	else
		dup = key_repeated(st, p, fname);
	if (p->nkeys > txpipe_max_keys)
	{
		if (st->err.code == NULL)
			txpipe_set_error(&st->err, "too_many_keys", path_string(st, st->depth - 1),
							 "an object has more than txpipe.max_keys (%d) keys", txpipe_max_keys);
		if (st->depth == 1)
			st->field = -1;
		return;
	}
	if (dup)
	{
		semantic_error(st, "json_duplicate_key", "key \"%s\" appears twice in one object", fname);
		if (st->depth == 1)
			st->field = -1;		/* keep the first occurrence */
	}
}

static void
on_scalar(void *state, char *token, JsonTokenType tokentype)
{
	DecodeState *st = state;
	TxValue    *v;

	if (st->depth == 0)
	{
		semantic_error(st, "not_object", "a record must be a JSON object, found %s",
					   tokentype == JSON_TOKEN_STRING ? "a string" :
					   tokentype == JSON_TOKEN_NUMBER ? "a number" :
					   tokentype == JSON_TOKEN_NULL ? "null" : "a boolean");
		return;
	}
	if (st->depth != 1 || st->field < 0)
		return;
	v = &st->rec->values[st->field];
	v->text = token;
	v->len = token ? strlen(token) : 0;
	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v->kind = TX_STRING;
			break;
		case JSON_TOKEN_NUMBER:
			v->kind = TX_NUMBER;
			break;
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v->kind = TX_BOOL;
			break;
		default:
			v->kind = TX_NULL;
			v->text = NULL;
			v->len = 0;
			break;
	}
}

/*
 * Checks the nesting and the keys per object of a record before it is
 * parsed, in one pass over its bytes: the parser recurses (too deep a
 * record would hit the stack limit with an ERROR), and cannot stop at the
 * first object with too many keys, so a record of millions of keys would
 * cost its whole parse.  Returns 0, or 1 when arrays and objects nest
 * deeper than maxdepth, or 2 when an object has more than maxkeys keys
 * (at *at_depth); *depth is the deepest nesting seen.
 */
static int
prescan(const char *s, int len, int maxdepth, int maxkeys, int *depth, int *at_depth)
{
	int			d = 0;
	int			maxd = 0;
	int			opens = 0;
	int			colons = 0;
	bool		in_string = false;
	int		   *keys;

	/* most records: few enough brackets and colons in all */
	for (int i = 0; i < len; i++)
	{
		if ((i & 0xFFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (s[i] == '{' || s[i] == '[')
			opens++;
		else if (s[i] == ':')
			colons++;
	}
	*depth = opens;
	if (opens <= maxdepth && colons <= maxkeys)
		return 0;

	keys = palloc0(sizeof(int) * (Min(opens, maxdepth) + 2));
	for (int i = 0; i < len; i++)
	{
		char		c = s[i];

		if ((i & 0xFFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
		if (in_string)
		{
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		}
		else if (c == '"')
			in_string = true;
		else if (c == '{' || c == '[')
		{
			if (++d > maxd)
			{
				maxd = d;
				if (maxd > maxdepth)
				{
					*depth = maxd;
					return 1;
				}
			}
			keys[d] = 0;
		}
		else if (c == '}' || c == ']')
			d = Max(d - 1, 0);
		else if (c == ':' && ++keys[d] > maxkeys)
		{
			*depth = maxd;
			*at_depth = d;
			return 2;
		}
	}
	*depth = maxd;
	return 0;
}

static void
syntax_error(DecodeState *st, JsonParseErrorType rc)
{
	JsonLexContext *lex = st->lex;
	TxError    *err = &st->rec->err;
	char	   *path = path_string(st, st->depth);
	const char *tok = lex->token_start;
	int			toklen = lex->token_terminator ? lex->token_terminator - lex->token_start : 0;
	const char *end = st->rec->payload + st->rec->len;
	const char *before;

	if (tok == NULL)
		tok = st->rec->payload;

	/*
	 * A value that fails to lex fails before its field's callback runs: take
	 * the key from the bytes, the string right before the colon.
	 */
	before = tok - 1;
	while (before >= st->rec->payload && (*before == ' ' || *before == '\t' || *before == '\n' || *before == '\r'))
		before--;
	if (before >= st->rec->payload && *before == ':' &&
		st->depth >= 1 && !st->path[st->depth].is_array)
	{
		const char *close = before - 1;
		const char *open;

		while (close >= st->rec->payload && (*close == ' ' || *close == '\t' || *close == '\n' || *close == '\r'))
			close--;
		open = close - 1;
		while (open >= st->rec->payload && !(*open == '"' && (open == st->rec->payload || open[-1] != '\\')))
			open--;
		if (close > open && open >= st->rec->payload && *close == '"')
		{
			st->path[st->depth].key = pnstrdup(open + 1, close - open - 1);
			path = path_string(st, st->depth);
		}
	}
	/* text after the top-level object closed, before its callback ran */
	if (rc == JSON_INVALID_TOKEN && st->depth == 1 && before >= st->rec->payload && *before == '}')
	{
		txpipe_set_error(err, "json_trailing_garbage", "$",
						 "unexpected text after the end of the record: \"%.*s\"",
						 (int) Min(end - tok, 40), tok);
		return;
	}

	switch (rc)
	{
		case JSON_ESCAPING_REQUIRED:
			txpipe_set_error(err, "json_control_char", path,
							 "raw control character 0x%02x must be escaped",
							 (unsigned char) *lex->token_terminator);
			return;
		case JSON_UNICODE_CODE_POINT_ZERO:
			txpipe_set_error(err, "json_nul", path, "\\u0000 cannot be stored in text");
			return;
		case JSON_UNICODE_HIGH_SURROGATE:
		case JSON_UNICODE_LOW_SURROGATE:
			txpipe_set_error(err, "json_surrogate", path, "%s", json_errdetail(rc, lex));
			return;
		case JSON_ESCAPING_INVALID:
		case JSON_UNICODE_ESCAPE_FORMAT:
		case JSON_UNICODE_HIGH_ESCAPE:
			txpipe_set_error(err, "json_escape", path, "%s", json_errdetail(rc, lex));
			return;
		case JSON_EXPECTED_END:
			txpipe_set_error(err, "json_trailing_garbage", path,
							 "unexpected text after the end of the record: \"%.*s\"",
							 (int) Min(end - tok, 40), tok);
			return;
		case JSON_INVALID_TOKEN:
			if (tok < end && (unsigned char) *tok < 0x20)
			{
				txpipe_set_error(err, "json_control_char", path,
								 "raw control character 0x%02x must be escaped", (unsigned char) *tok);
				return;
			}
			if (tok < end && *tok == '\'')
			{
				txpipe_set_error(err, "json_single_quote", path,
								 "strings and keys must be in double quotes, not single quotes");
				return;
			}
			{
				const char *t = tok;

				if (t < end && (*t == '-' || *t == '+'))
					t++;
				if ((end - t >= 3 && strncmp(t, "NaN", 3) == 0) ||
					(end - t >= 3 && strncmp(t, "Inf", 3) == 0))
				{
					txpipe_set_error(err, "json_nan", path,
									 "%.*s is not a JSON number", Min(toklen, 40), tok);
					return;
				}
			}
			break;
		default:
			break;
	}

	/* a comma right before the closing brace or bracket */
	if ((rc == JSON_EXPECTED_STRING || rc == JSON_EXPECTED_JSON ||
		 rc == JSON_EXPECTED_ARRAY_FIRST || rc == JSON_EXPECTED_OBJECT_FIRST) &&
		tok < end && (*tok == '}' || *tok == ']'))
	{
		const char *p = tok - 1;

		while (p >= st->rec->payload && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
			p--;
		if (p >= st->rec->payload && *p == ',')
		{
			txpipe_set_error(err, "json_trailing_comma", path, "trailing comma before \"%c\"", *tok);
			return;
		}
	}
	if (rc == JSON_INVALID_TOKEN && tok < end && *tok == '"' && lex->token_terminator >= end)
	{
		txpipe_set_error(err, "json_syntax", path, "the record ends inside a string");
		return;
	}
	if (rc == JSON_INVALID_TOKEN)
	{
		txpipe_set_error(err, "json_syntax", path, "invalid token \"%.*s\"", Min(toklen, 40), tok);
		return;
	}
	if (rc == JSON_EXPECTED_MORE || tok >= end)
	{
		txpipe_set_error(err, "json_syntax", path, "the record ends before the JSON value is complete");
		return;
	}
	txpipe_set_error(err, "json_syntax", path, "%s", json_errdetail(rc, lex));
}

/* ----------------------------------------------------------------
 * The flat fast path
 * ----------------------------------------------------------------
 */

#define JSON_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')

/* the end of a JSON number starting at p, or NULL when it is not one */
static const char *
scan_number(const char *p, const char *end)
{
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return NULL;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (p < end && *p == '.')
	{
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

/*
 * The closing quote of a string whose contents start at p, or NULL when the
 * string has an escape or a control character, or does not end.
 */
static const char *
scan_plain_string(const char *p, const char *end)
{
	while (p < end && *p != '"')
	{
		if (*p == '\\' || (unsigned char) *p < 0x20)
			return NULL;
		p++;
	}
	return p < end ? p : NULL;
}

/*
 * Decodes the common shape of a record without the general parser: one
 * object whose values are strings without escapes, numbers, true, false
 * or null, each key once.  Returns false at anything else (a nested value,
 * an escape, bad syntax, a repeated key), having set no error: the caller
 * then decodes the record with the full parser, which gives the same
 * values or the reject.  Values are copied, NUL-terminated, into one
 * buffer.
 */
static bool
decode_flat(DecodeState *st)
{
	TxRecord   *rec = st->rec;
	const char *p = rec->payload;
	const char *end = p + rec->len;
	char	   *buf = palloc(rec->len + 1);
	char	   *out = buf;
	List	   *unknown = NIL;
	int			nkeys = 0;

	while (p < end && JSON_WS(*p))
		p++;
	if (p >= end || *p != '{')
		return false;
	p++;
	while (p < end && JSON_WS(*p))
		p++;
	if (p < end && *p == '}')
		p++;
	else
	{
		for (;;)
		{
			const char *k;
			char	   *key;
			int			f;
			const char *v;
			TxKind		kind;
			int			len;

			/* the key */
			if (p >= end || *p != '"')
				return false;
			k = ++p;
			if ((p = scan_plain_string(p, end)) == NULL)
				return false;
			key = out;
			memcpy(out, k, p - k);
			out += p - k;
			*out++ = '\0';
			p++;
			while (p < end && JSON_WS(*p))
				p++;
			if (p >= end || *p != ':')
				return false;
			p++;
			while (p < end && JSON_WS(*p))
				p++;
			if (p >= end)
				return false;

			/* the value */
			v = p;
			if (*p == '"')
			{
				v = ++p;
				if ((p = scan_plain_string(p, end)) == NULL)
					return false;
				len = p - v;
				p++;
				kind = TX_STRING;
			}
			else if (*p == '-' || (*p >= '0' && *p <= '9'))
			{
				p = scan_number(p, end);
				if (p == NULL)
					return false;
				len = p - v;
				kind = TX_NUMBER;
			}
			else if (end - p >= 4 && memcmp(p, "true", 4) == 0)
			{
				p += 4;
				len = 4;
				kind = TX_BOOL;
			}
			else if (end - p >= 5 && memcmp(p, "false", 5) == 0)
			{
				p += 5;
				len = 5;
				kind = TX_BOOL;
			}
			else if (end - p >= 4 && memcmp(p, "null", 4) == 0)
			{
				p += 4;
				len = 0;
				kind = TX_NULL;
			}
			else
				return false;	/* a container, or not JSON */
			/* what the lexer takes for the end of a token */
			if (p >= end || !(JSON_WS(*p) || *p == ',' || *p == '}'))
				return false;

			/* many keys: the parser checks them in linear time */
			if (++nkeys > KEYS_LISTED * 4 || nkeys > txpipe_max_keys)
				return false;
			f = field_lookup(st, key);
			if (f >= 0)
			{
				TxValue    *tv = &rec->values[f];

				if (tv->kind != TX_ABSENT)
					return false;
				tv->kind = kind;
				if (kind == TX_NULL)
				{
					tv->text = NULL;
					tv->len = 0;
				}
				else
				{
					tv->text = out;
					tv->len = len;
					memcpy(out, v, len);
					out += len;
					*out++ = '\0';
				}
			}
			else
			{
				ListCell   *lc;

				foreach(lc, unknown)
					if (strcmp(lfirst(lc), key) == 0)
						return false;
				unknown = lappend(unknown, key);
			}

			while (p < end && JSON_WS(*p))
				p++;
			if (p < end && *p == ',')
			{
				p++;
				while (p < end && JSON_WS(*p))
					p++;
				continue;
			}
			if (p < end && *p == '}')
			{
				p++;
				break;
			}
			return false;
		}
	}
	while (p < end && JSON_WS(*p))
		p++;
	if (p != end)
		return false;
	rec->unknown_keys = unknown;
	return true;
}

/*
 * Decodes rec->payload into rec->values (allocated here).  Returns false and
 * fills rec->err on a decoding problem.
 */
bool
txpipe_decode(TxPlan *plan, TxRecord *rec)
{
	DecodeState st;
	JsonSemAction sem;
	JsonParseErrorType rc;
	int			depth;
	int			at_depth = 0;

	rec->values = palloc0(sizeof(TxValue) * Max(plan->nfields, 1));
	rec->err.code = NULL;

	if (rec->len > txpipe_max_record_size)
	{
		txpipe_too_large(rec, rec->payload, rec->len, false);
		return false;
	}

	memset(&st, 0, sizeof(st));
	st.plan = plan;
	st.rec = rec;
	st.field = -1;
	st.last_known = -1;
	/* a flat object nests one deep, within any txpipe.max_depth */
	if (txpipe_flat_decoder && decode_flat(&st))
		return true;
	memset(rec->values, 0, sizeof(TxValue) * Max(plan->nfields, 1));
	st.last_known = -1;

	switch (prescan(rec->payload, rec->len, txpipe_max_depth, txpipe_max_keys, &depth, &at_depth))
	{
		case 1:
			txpipe_set_error(&rec->err, "too_deep", "$",
							 "arrays and objects nest deeper than txpipe.max_depth (%d)",
							 txpipe_max_depth);
			return false;
		case 2:
			if (at_depth <= 1)
				txpipe_set_error(&rec->err, "too_many_keys", "$",
								 "the record has more than txpipe.max_keys (%d) keys", txpipe_max_keys);
			else
				txpipe_set_error(&rec->err, "too_many_keys", "$",
								 "an object nested %d deep has more than txpipe.max_keys (%d) keys",
								 at_depth, txpipe_max_keys);
			return false;
		default:
			break;
	}

	st.path = palloc0(sizeof(PathStep) * (depth + 2));
	st.lex = makeJsonLexContextCstringLen((char *) rec->payload, rec->len,
										  GetDatabaseEncoding(), true);

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = on_object_start;
	sem.object_end = on_object_end;
	sem.array_start = on_array_start;
	sem.array_end = on_array_end;
	sem.object_field_start = on_field_start;
	sem.array_element_start = on_array_element_start;
	sem.scalar = on_scalar;

	rc = pg_parse_json(st.lex, &sem);
	if (rc != JSON_SUCCESS)
	{
		syntax_error(&st, rc);
		return false;
	}
	if (st.err.code != NULL)
	{
		rec->err = st.err;
		return false;
	}
	/* unknown top-level keys, for additionalProperties */
	rec->unknown_keys = st.unknown;
	return true;
}

/*
 * For bytes that arrived outside a text value (ingest_raw): true when they
 * are valid text in the database encoding; otherwise the record becomes an
 * invalid_utf8 reject whose payload shows each bad byte as U+FFFD (or '?'
 * in other encodings) and whose payload_raw keeps the bytes.
 */
bool
txpipe_check_encoding(TxRecord *rec)
{
	int			enc = GetDatabaseEncoding();
	StringInfoData shown;
	const char *s = rec->payload;
	int			len = rec->len;
	int			badat = -1;
	int			i = 0;

	if (pg_verify_mbstr(enc, s, len, true))
		return true;

	initStringInfo(&shown);
	while (i < len)
	{
		int			l = (s[i] == '\0') ? -1 : pg_encoding_verifymbchar(enc, s + i, len - i);

		if (l > 0)
		{
			appendBinaryStringInfo(&shown, s + i, l);
			i += l;
		}
		else
		{
			if (badat < 0)
				badat = i;
			if (enc == PG_UTF8)
				appendStringInfoString(&shown, "\xEF\xBF\xBD");
			else
				appendStringInfoChar(&shown, '?');
			i++;
		}
	}
	rec->raw = palloc(VARHDRSZ + len);
	SET_VARSIZE(rec->raw, VARHDRSZ + len);
	memcpy(VARDATA(rec->raw), s, len);
	rec->payload = shown.data;
	rec->len = shown.len;
	txpipe_set_error(&rec->err, "invalid_utf8", "$",
					 "invalid byte sequence for encoding \"%s\" at byte %d: 0x%02x",
					 GetDatabaseEncodingName(), badat + 1, (unsigned char) s[badat]);
	return false;
}

/*
 * Makes rec a too_large reject of the len bytes at payload: the reject
 * keeps the first TXPIPE_REJECT_PREFIX bytes (cut on a character boundary;
 * with check_encoding, before the first byte that is not valid text), and
 * its message gives the full length and the SHA-256 of all the bytes, so
 * the record can be found at its producer without being stored.
 */
void
txpipe_too_large(TxRecord *rec, const char *payload, int64 len, bool check_encoding)
{
	int			enc = GetDatabaseEncoding();
	int			keep = (int) Min(len, (int64) TXPIPE_REJECT_PREFIX);
	pg_cryptohash_ctx *ctx;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		hex[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	const char *p = payload;
	int64		left = len;
	char	   *prefix;

	if (check_encoding)
		keep = pg_encoding_verifymbstr(enc, payload, keep);
	else
		keep = pg_encoding_mbcliplen(enc, payload, keep, keep);
	/* a character cut at the end of the prefix */
	while (keep > 0 && pg_encoding_verifymbstr(enc, payload, keep) != keep)
		keep--;

	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL || pg_cryptohash_init(ctx) < 0)
		elog(ERROR, "could not start a SHA-256 digest");
	while (left > 0)
	{
		size_t		chunk = (size_t) Min(left, (int64) (16 * 1024 * 1024));

		CHECK_FOR_INTERRUPTS();
		if (pg_cryptohash_update(ctx, (const uint8 *) p, chunk) < 0)
			elog(ERROR, "could not compute a SHA-256 digest");
		p += chunk;
		left -= chunk;
	}
	if (pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		elog(ERROR, "could not finish a SHA-256 digest");
	pg_cryptohash_free(ctx);
	for (int i = 0; i < PG_SHA256_DIGEST_LENGTH; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);

	prefix = palloc(keep + 1);
	memcpy(prefix, payload, keep);
	prefix[keep] = '\0';
	rec->payload = prefix;
	rec->len = keep;
	rec->raw = NULL;
	txpipe_set_error(&rec->err, "too_large", "$",
					 "the record has " INT64_FORMAT " bytes, more than txpipe.max_record_size (%d); the payload keeps its first %d bytes; sha256 of the record: %s",
					 len, txpipe_max_record_size, keep, hex);
}
