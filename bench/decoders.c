/*-------------------------------------------------------------------------
 *
 * decoders.c
 *	  Decoding speed of one NDJSON file with json-c and with PostgreSQL's
 *	  own JSON parser (common/jsonapi.h, frontend build), side by side.
 *
 * The file is read into memory once; each decoder then makes passes over
 * its lines and the best pass counts, so disk and page cache stay out of
 * the figures.  Decoders:
 *
 *	 json-c		json_tokener_parse_ex per line, then json_object_put: the
 *				tree json-c builds for every record.
 *	 pg-fields	pg_parse_json with semantic callbacks that keep each
 *				top-level field's scalar in a slot found by field name, as
 *				the extension's decoder does (strings de-escaped).
 *	 pg-validate	pg_parse_json with nullSemAction: syntax check only.
 *
 * Output: one tab-separated line per decoder,
 *	 decoder  name  best_seconds  records  bytes  ok  failed
 * where ok/failed count the records each decoder accepted or refused (the
 * decoders disagree on lax input such as NaN).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres_fe.h"

#include <time.h>

#include <json-c/json.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

/* the top-level fields of the cards contract */
static const char *const field_names[] = {
	"trans_date_trans_time", "cc_num", "merchant", "category", "amt",
	"first", "last", "gender", "street", "city", "state", "zip",
	"lat", "long", "city_pop", "job", "dob", "trans_num",
	"unix_time", "merch_lat", "merch_long", "is_fraud"
};

#define NFIELDS lengthof(field_names)
#define NSLOTS 128				/* open-addressing table, power of two */

typedef struct Line
{
	char	   *text;
	int			len;
} Line;

typedef struct FieldState
{
	int			depth;
	int			field;			/* current top-level field, -1 unknown */
	char	   *values[NFIELDS];
	JsonTokenType types[NFIELDS];
} FieldState;

static int	slot_field[NSLOTS];

static uint32
name_hash(const char *s)
{
	uint32		h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return h;
}

static void
field_index_build(void)
{
	for (int i = 0; i < NSLOTS; i++)
		slot_field[i] = -1;
	for (int f = 0; f < (int) NFIELDS; f++)
	{
		uint32		s = name_hash(field_names[f]) & (NSLOTS - 1);

		while (slot_field[s] >= 0)
			s = (s + 1) & (NSLOTS - 1);
		slot_field[s] = f;
	}
}

static int
field_lookup(const char *name)
{
	uint32		s = name_hash(name) & (NSLOTS - 1);

	while (slot_field[s] >= 0)
	{
		if (strcmp(field_names[slot_field[s]], name) == 0)
			return slot_field[s];
		s = (s + 1) & (NSLOTS - 1);
	}
	return -1;
}

static void
on_object_start(void *state)
{
	((FieldState *) state)->depth++;
}

static void
on_object_end(void *state)
{
	((FieldState *) state)->depth--;
}

static void
on_array_start(void *state)
{
	((FieldState *) state)->depth++;
}

static void
on_array_end(void *state)
{
	((FieldState *) state)->depth--;
}

static void
on_field_start(void *state, char *fname, bool isnull)
{
	FieldState *st = state;

	if (st->depth == 1)
		st->field = field_lookup(fname);
	pfree(fname);
}

static void
on_scalar(void *state, char *token, JsonTokenType tokentype)
{
	FieldState *st = state;

	if (st->depth == 1 && st->field >= 0 && st->values[st->field] == NULL)
	{
		st->values[st->field] = token;
		st->types[st->field] = tokentype;
		return;
	}
	if (token)
		pfree(token);
}

static void
lex_free(JsonLexContext *lex)
{
	if (lex->strval)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
}

static bool
decode_pg_fields(Line *l)
{
	JsonSemAction sem;
	FieldState	st;
	JsonLexContext *lex;
	JsonParseErrorType rc;

	memset(&st, 0, sizeof(st));
	st.field = -1;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = on_object_start;
	sem.object_end = on_object_end;
	sem.array_start = on_array_start;
	sem.array_end = on_array_end;
	sem.object_field_start = on_field_start;
	sem.scalar = on_scalar;

	lex = makeJsonLexContextCstringLen(l->text, l->len, PG_UTF8, true);
	rc = pg_parse_json(lex, &sem);
	lex_free(lex);
	for (int f = 0; f < (int) NFIELDS; f++)
		if (st.values[f])
			pfree(st.values[f]);
	return rc == JSON_SUCCESS;
}

static bool
decode_pg_validate(Line *l)
{
	JsonLexContext *lex;
	JsonParseErrorType rc;

	lex = makeJsonLexContextCstringLen(l->text, l->len, PG_UTF8, false);
	rc = pg_parse_json(lex, &nullSemAction);
	lex_free(lex);
	return rc == JSON_SUCCESS;
}

static json_tokener *tokener;

static bool
decode_json_c(Line *l)
{
	json_object *obj;
	bool		ok;

	json_tokener_reset(tokener);
	obj = json_tokener_parse_ex(tokener, l->text, l->len);
	ok = (obj != NULL && json_tokener_get_error(tokener) == json_tokener_success &&
		  json_tokener_get_parse_end(tokener) == (size_t) l->len);
	json_object_put(obj);
	return ok;
}

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
run(const char *name, bool (*decode) (Line *), Line *lines, long nlines,
	long bytes, int passes)
{
	double		best = -1;
	long		ok = 0;

	for (int p = 0; p < passes; p++)
	{
		double		t0 = now_seconds();
		double		t;

		ok = 0;
		for (long i = 0; i < nlines; i++)
			ok += decode(&lines[i]);
		t = now_seconds() - t0;
		if (best < 0 || t < best)
			best = t;
	}
	printf("decoder\t%s\t%.6f\t%ld\t%ld\t%ld\t%ld\n", name, best, nlines, bytes, ok, nlines - ok);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	FILE	   *f;
	char	   *buf;
	long		size;
	long		nlines = 0;
	long		cap = 1024;
	long		bytes = 0;
	Line	   *lines;
	int			passes = 5;
	char	   *p;
	char	   *end;

	if (argc < 2 || argc > 3)
	{
		fprintf(stderr, "usage: %s FILE.ndjson [PASSES]\n", argv[0]);
		return 2;
	}
	if (argc == 3 && (passes = atoi(argv[2])) < 1)
	{
		fprintf(stderr, "%s: PASSES must be a positive number\n", argv[0]);
		return 2;
	}
	if ((f = fopen(argv[1], "rb")) == NULL || fseek(f, 0, SEEK_END) != 0 ||
		(size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
	{
		fprintf(stderr, "%s: cannot read %s: %m\n", argv[0], argv[1]);
		return 1;
	}
	buf = pg_malloc(size + 1);
	if (size > 0 && fread(buf, 1, size, f) != (size_t) size)
	{
		fprintf(stderr, "%s: cannot read %s: %m\n", argv[0], argv[1]);
		return 1;
	}
	fclose(f);
	buf[size] = '\0';

	/* lines become NUL-terminated strings in place */
	lines = pg_malloc(sizeof(Line) * cap);
	p = buf;
	end = buf + size;
	while (p < end)
	{
		char	   *nl = memchr(p, '\n', end - p);
		int			len = (nl ? nl : end) - p;

		if (len > 0)
		{
			if (nlines == cap)
			{
				cap *= 2;
				lines = pg_realloc(lines, sizeof(Line) * cap);
			}
			lines[nlines].text = p;
			lines[nlines].len = len;
			p[len] = '\0';
			nlines++;
			bytes += len + 1;
		}
		p += len + 1;
	}

	field_index_build();
	tokener = json_tokener_new();
	run("json-c", decode_json_c, lines, nlines, bytes, passes);
	run("pg-fields", decode_pg_fields, lines, nlines, bytes, passes);
	run("pg-validate", decode_pg_validate, lines, nlines, bytes, passes);
	json_tokener_free(tokener);
	return 0;
}
