/*-------------------------------------------------------------------------
 *
 * contract.c
 *	  Checks a decoded record against its pipeline's contract, a subset of
 *	  JSON Schema: type, required, enum, pattern, minimum/maximum,
 *	  minLength/maxLength, format (date, timestamp) with a declared
 *	  inputFormat (datefmt.c), additionalProperties.
 *
 * Numbers are compared exactly on their decimal lexemes, never through a
 * double.  "integer" means a number whose value is an integer, however it
 * is written (1, 1.0, 1e0); one written with a fraction or an exponent is
 * passed on in integer form, so an integer column takes it, unless it has
 * more significant digits than a double holds.
 * Rules apply to top-level fields; a nested object or array is checked
 * for its type only.  Opt-ins of the spec: numbersAsStrings takes a string
 * holding a JSON number lexeme as that number, emptyIsAbsent takes "" as
 * an absent field, and ignore drops top-level keys by name before
 * additionalProperties is checked.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "catalog/pg_collation.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "regex/regex.h"
#include "utils/builtins.h"

/* a JSON number lexeme as sign, significant digits and exponent */
typedef struct Decimal
{
	int			sign;			/* -1, 0, 1 */
	const char *digits;			/* first significant digit */
	int			ndigits;		/* significant digits, across the point */
	long		exponent;		/* value = 0.digits x 10^exponent */
	const char *point;			/* position of '.' within digits, or NULL */
} Decimal;

static void
decimal_parse(const char *s, Decimal *d)
{
	const char *p = s;
	const char *intstart;
	const char *intend;
	const char *fracstart = NULL;
	const char *fracend = NULL;
	long		exp10 = 0;
	long		intdigits;
	int			neg = 0;

	if (*p == '-')
	{
		neg = 1;
		p++;
	}
	intstart = p;
	while (*p >= '0' && *p <= '9')
		p++;
	intend = p;
	if (*p == '.')
	{
		fracstart = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		fracend = p;
	}
	if (*p == 'e' || *p == 'E')
	{
		int			esign = 1;

		p++;
		if (*p == '+' || *p == '-')
			esign = (*p++ == '-') ? -1 : 1;
		while (*p >= '0' && *p <= '9')
		{
			if (exp10 < 1000000000L)
				exp10 = exp10 * 10 + (*p - '0');
			p++;
		}
		exp10 *= esign;
	}

	/* skip leading zeros of the integer part */
	while (intstart < intend && *intstart == '0')
		intstart++;
	intdigits = intend - intstart;
	d->point = NULL;
	if (intdigits > 0)
	{
		d->digits = intstart;
		d->exponent = intdigits + exp10;
		d->point = fracstart ? intend : NULL;
		d->ndigits = intdigits + (fracstart ? (int) (fracend - fracstart) : 0);
	}
	else
	{
		const char *f = fracstart;

		if (f)
			while (f < fracend && *f == '0')
				f++;
		if (f == NULL || f == fracend)
		{
			d->sign = 0;
			d->digits = "";
			d->ndigits = 0;
			d->exponent = 0;
			return;
		}
		d->digits = f;
		d->exponent = exp10 - (f - fracstart);
		d->ndigits = fracend - f;
	}
	d->sign = neg ? -1 : 1;
}

/* the i-th significant digit, skipping the decimal point; '0' past the end */
static char
decimal_digit(const Decimal *d, int i)
{
	const char *p;

	if (i >= d->ndigits)
		return '0';
	p = d->digits + i;
	if (d->point && p >= d->point)
		p++;
	return *p;
}

/*
 * A number lexeme's value in one form: a plain decimal without leading or
 * trailing zeros ("2.5" for 2.50 and 25e-1, "17850" for 1.785e4), or, far
 * from 1, the significant digits with an exponent ("0.12e400").
 */
char *
txpipe_number_canonical(const char *lexeme)
{
	Decimal		d;
	StringInfoData out;
	int			n;

	decimal_parse(lexeme, &d);
	if (d.sign == 0)
		return "0";
	n = d.ndigits;
	while (n > 0 && decimal_digit(&d, n - 1) == '0')
		n--;
	initStringInfo(&out);
	if (d.sign < 0)
		appendStringInfoChar(&out, '-');
	if (d.exponent > 40 || d.exponent < -40)
	{
		appendStringInfoString(&out, "0.");
		for (int i = 0; i < n; i++)
			appendStringInfoChar(&out, decimal_digit(&d, i));
		appendStringInfo(&out, "e%ld", d.exponent);
	}
	else if (d.exponent <= 0)
	{
		appendStringInfoString(&out, "0.");
		for (long i = d.exponent; i < 0; i++)
			appendStringInfoChar(&out, '0');
		for (int i = 0; i < n; i++)
			appendStringInfoChar(&out, decimal_digit(&d, i));
	}
	else
	{
		for (long i = 0; i < Max(d.exponent, n); i++)
		{
			if (i == d.exponent)
				appendStringInfoChar(&out, '.');
			appendStringInfoChar(&out, decimal_digit(&d, i));
		}
	}
	return out.data;
}

/* exact comparison of a parsed JSON number with a number lexeme */
static int
decimal_cmp(const Decimal *xp, const char *b)
{
	Decimal		x = *xp,
				y;
	int			mag = 0;

	decimal_parse(b, &y);
	if (x.sign != y.sign)
		return x.sign < y.sign ? -1 : 1;
	if (x.sign == 0)
		return 0;
	if (x.exponent != y.exponent)
		mag = x.exponent < y.exponent ? -1 : 1;
	else
	{
		int			n = Max(x.ndigits, y.ndigits);

		for (int i = 0; i < n && mag == 0; i++)
		{
			char		cx = decimal_digit(&x, i);
			char		cy = decimal_digit(&y, i);

			if (cx != cy)
				mag = cx < cy ? -1 : 1;
		}
	}
	return x.sign * mag;
}

/* exact comparison of two JSON number lexemes */
static int
number_cmp(const char *a, const char *b)
{
	Decimal		x;

	decimal_parse(a, &x);
	return decimal_cmp(&x, b);
}

static bool
is_integer_lexeme(const char *s)
{
	for (; *s; s++)
		if (*s == '.' || *s == 'e' || *s == 'E')
			return false;
	return true;
}

/* longest integer, in digits, that a fraction or exponent may stand for */
#define INTEGRAL_MAX_DIGITS 1000
/* significant digits a double holds exactly (DBL_DIG) */
#define INTEGRAL_MAX_SIGNIFICANT 15

/*
 * A JSON number lexeme whose value is an integer although it is written
 * with a fraction or an exponent (17850.0, 1.785e4, 1e2): JSON Schema has
 * counted those as integers since draft 6.  Returns its digits as an
 * integer lexeme (17850), or NULL when the value has a fraction, has more
 * than INTEGRAL_MAX_SIGNIFICANT significant digits, or would have more than
 * INTEGRAL_MAX_DIGITS digits.
 */
static char *
integral_lexeme(const char *s)
{
	bool		neg = (*s == '-');
	const char *p = neg ? s + 1 : s;
	StringInfoData digits;
	int			intlen = 0;
	long		exp = 0;
	long		point;
	StringInfoData out;
	bool		nonzero = false;

	initStringInfo(&digits);
	for (; *p >= '0' && *p <= '9'; p++, intlen++)
		appendStringInfoChar(&digits, *p);
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			appendStringInfoChar(&digits, *p);
	if (*p == 'e' || *p == 'E')
	{
		bool		eneg;

		p++;
		eneg = (*p == '-');
		if (*p == '-' || *p == '+')
			p++;
		for (; *p >= '0' && *p <= '9'; p++)
		{
			if (exp < 10L * INTEGRAL_MAX_DIGITS)
				exp = exp * 10 + (*p - '0');
		}
		if (eneg)
			exp = -exp;
	}
	/*
	 * More significant digits than a double holds exactly: written in float
	 * form, the number has likely been through a double and lost digits
	 * (a 19-digit id read as a float), so it is not taken as an integer.
	 */
	{
		int			first = 0,
					last = digits.len - 1;

		while (first < digits.len && digits.data[first] == '0')
			first++;
		while (last >= first && digits.data[last] == '0')
			last--;
		if (last - first + 1 > INTEGRAL_MAX_SIGNIFICANT)
			return NULL;
	}
	/* the digits after the decimal point, the exponent applied, must be 0 */
	point = intlen + exp;
	for (int i = Max(point, 0); i < digits.len; i++)
		if (digits.data[i] != '0')
			return NULL;
	if (point > INTEGRAL_MAX_DIGITS + digits.len)
		return NULL;
	initStringInfo(&out);
	for (long i = 0; i < point; i++)
	{
		char		c = i < digits.len ? digits.data[i] : '0';

		if (c != '0')
			nonzero = true;
		if (nonzero)
			appendStringInfoChar(&out, c);
	}
	if (!nonzero)
		return pstrdup("0");
	if (out.len > INTEGRAL_MAX_DIGITS)
		return NULL;
	return neg ? psprintf("-%s", out.data) : out.data;
}

/*
 * Whether s[0..len) is exactly a JSON number lexeme: -?(0|[1-9][0-9]*),
 * then an optional fraction and exponent; no sign +, no blanks.
 */
static bool
json_number_lexeme(const char *s, int len)
{
	int			i = 0;

	if (i < len && s[i] == '-')
		i++;
	if (i >= len)
		return false;
	if (s[i] == '0')
		i++;
	else if (s[i] >= '1' && s[i] <= '9')
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	else
		return false;
	if (i < len && s[i] == '.')
	{
		if (++i >= len || s[i] < '0' || s[i] > '9')
			return false;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E'))
	{
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= len || s[i] < '0' || s[i] > '9')
			return false;
		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
	}
	return i == len;
}

bool
txpipe_value_equals(TxValue *v, TxEnumValue *e)
{
	if (v->kind == TX_NUMBER && e->kind == TX_NUMBER)
		return number_cmp(v->text, e->text) == 0;
	if (v->kind != e->kind)
		return false;
	if (v->kind == TX_NULL)
		return true;
	return strlen(e->text) == (size_t) v->len && memcmp(v->text, e->text, v->len) == 0;
}

/* ----------------------------------------------------------------
 * patterns
 * ----------------------------------------------------------------
 */

static void
set_add(TxPatternAtom *a, int lo, int hi)
{
	for (int c = lo; c <= hi; c++)
		a->set[c >> 6] |= UINT64CONST(1) << (c & 63);
}

static bool
set_has(TxPatternAtom *a, int c)
{
	return c < 128 && (a->set[c >> 6] & (UINT64CONST(1) << (c & 63))) != 0;
}

/* a repeat count of at most 255 (the regex engine's limit); -1 if none */
static int
repeat_count(const char *p, int len, int *i)
{
	int			n = 0;
	int			start = *i;

	while (*i < len && p[*i] >= '0' && p[*i] <= '9' && n <= 255)
		n = n * 10 + (p[(*i)++] - '0');
	return (*i == start || n > 255) ? -1 : n;
}

/*
 * Parses p as a plain pattern: an optional ^, then characters (ASCII
 * letters, digits, punctuation, \d, a backslash before punctuation) and
 * bracket classes of ASCII characters and ranges, each with an optional
 * quantifier (* + ? {n} {n,} {n,m}, greedy or not), then an optional $.
 * Anything else (alternatives, groups, dots, negated or named classes,
 * escapes, options, non-ASCII) returns false and is left to the regex
 * engine.
 */
static bool
pattern_parse(TxPattern *pat, const char *p, int len)
{
	int			i = 0;
	int			cap = 8;

	pat->natoms = 0;
	pat->atoms = palloc0(sizeof(TxPatternAtom) * cap);
	if (i < len && p[i] == '^')
	{
		pat->anchor_start = true;
		i++;
	}
	while (i < len)
	{
		TxPatternAtom *a;
		unsigned char c = p[i];

		if (c == '$' && i == len - 1)
		{
			pat->anchor_end = true;
			break;
		}
		if (pat->natoms == cap)
		{
			cap *= 2;
			pat->atoms = repalloc(pat->atoms, sizeof(TxPatternAtom) * cap);
		}
		a = &pat->atoms[pat->natoms++];
		memset(a, 0, sizeof(TxPatternAtom));
		a->min = a->max = 1;

		if (c == '[')
		{
			bool		empty = true;

			i++;
			if (i < len && (p[i] == '^' || p[i] == ']'))
				return false;
			while (i < len && p[i] != ']')
			{
				unsigned char lo = p[i];

				if (lo < 0x20 || lo >= 0x7f || lo == '\\' || lo == '[')
					return false;
				if (i + 2 < len && p[i + 1] == '-' && p[i + 2] != ']')
				{
					unsigned char hi = p[i + 2];

					if (hi < 0x20 || hi >= 0x7f || hi == '\\' || hi == '[' || lo > hi)
						return false;
					set_add(a, lo, hi);
					i += 3;
				}
				else
				{
					set_add(a, lo, lo);
					i++;
				}
				empty = false;
			}
			if (i >= len || empty)
				return false;
			i++;
		}
		else if (c == '\\')
		{
			unsigned char d = (i + 1 < len) ? p[i + 1] : 0;

			if (d == 'd')
				set_add(a, '0', '9');
			else if (d >= 0x21 && d < 0x7f && !isalnum(d))
				set_add(a, d, d);
			else
				return false;
			i += 2;
		}
		else if (c < 0x20 || c >= 0x7f || strchr(".^$()|*+?{}[]", c) != NULL)
			return false;
		else
		{
			set_add(a, c, c);
			i++;
		}

		if (i < len && strchr("*+?{", p[i]) != NULL)
		{
			switch (p[i++])
			{
				case '*':
					a->min = 0;
					a->max = -1;
					break;
				case '+':
					a->min = 1;
					a->max = -1;
					break;
				case '?':
					a->min = 0;
					a->max = 1;
					break;
				default:
					a->min = a->max = repeat_count(p, len, &i);
					if (a->min < 0)
						return false;
					if (i < len && p[i] == ',')
					{
						i++;
						a->max = (i < len && p[i] == '}') ? -1 : repeat_count(p, len, &i);
						if (i < len && p[i] != '}' && a->max < 0)
							return false;
						if (a->max >= 0 && a->max < a->min)
							return false;
					}
					if (i >= len || p[i] != '}')
						return false;
					i++;
					break;
			}
			/* non-greedy: the same strings match */
			if (i < len && p[i] == '?')
				i++;
			if (i < len && strchr("*+?{", p[i]) != NULL)
				return false;
		}
	}
	return true;
}

/* compiles a pattern the regex engine has accepted */
TxPattern *
txpipe_pattern_compile(text *source)
{
	TxPattern  *pat = palloc0(sizeof(TxPattern));

	pat->source = source;
	pat->simple = pattern_parse(pat, VARDATA_ANY(source), VARSIZE_ANY_EXHDR(source));
	return pat;
}

/* strings up to this many bytes are matched without palloc */
#define SIMPLE_MATCH_STACK 256

/*
 * Whether s contains a match of a plain pattern.  positions[p] tells that
 * the atoms so far can end at character p; each atom moves every such
 * position forward by an allowed number of characters of its class.
 */
static bool
simple_match(TxPattern *pat, const char *s, int len)
{
	unsigned char codebuf[SIMPLE_MATCH_STACK];
	bool		reachbuf[SIMPLE_MATCH_STACK + 1];
	int			runbuf[SIMPLE_MATCH_STACK + 1];
	int			diffbuf[SIMPLE_MATCH_STACK + 2];
	bool		small = (len <= SIMPLE_MATCH_STACK);
	unsigned char *code = small ? codebuf : palloc(len);
	bool	   *reach = small ? reachbuf : palloc(sizeof(bool) * (len + 1));
	int		   *run = small ? runbuf : palloc(sizeof(int) * (len + 1));
	int		   *diff = small ? diffbuf : palloc(sizeof(int) * (len + 2));
	int			n = 0;
	bool		any;

	/* one code per character: its ASCII value, or 128 */
	for (int i = 0; i < len;)
	{
		unsigned char c = s[i];

		if (c < 0x80)
		{
			code[n++] = c;
			i++;
		}
		else
		{
			code[n++] = 128;
			i += pg_mblen(s + i);
		}
	}
	for (int q = 0; q <= n; q++)
		reach[q] = !pat->anchor_start || q == 0;

	for (int k = 0; k < pat->natoms; k++)
	{
		TxPatternAtom *a = &pat->atoms[k];
		int			sum = 0;

		/* run[q]: characters of the class from q on */
		run[n] = 0;
		for (int q = n - 1; q >= 0; q--)
			run[q] = set_has(a, code[q]) ? run[q + 1] + 1 : 0;
		memset(diff, 0, sizeof(int) * (n + 2));
		for (int q = 0; q <= n; q++)
		{
			int			hi;

			if (!reach[q] || run[q] < a->min)
				continue;
			hi = (a->max < 0 || a->max > run[q]) ? run[q] : a->max;
			diff[q + a->min]++;
			diff[q + hi + 1]--;
		}
		any = false;
		for (int q = 0; q <= n; q++)
		{
			sum += diff[q];
			reach[q] = (sum > 0);
			any |= reach[q];
		}
		if (!any)
			return false;
	}
	if (pat->anchor_end)
		return reach[n];
	for (int q = 0; q <= n; q++)
		if (reach[q])
			return true;
	return false;
}

bool
txpipe_value_matches(TxValue *v, TxPattern *pattern)
{
	if (v->kind != TX_STRING)
		return false;
	if (pattern->simple)
		return simple_match(pattern, v->text, v->len);
	return RE_compile_and_execute(pattern->source, v->text, v->len, REG_ADVANCED,
								  C_COLLATION_OID, 0, NULL);
}

static int
digits(const char *s, int n)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* YYYY-MM-DD at s; length 10 */
static bool
valid_date(const char *s, int len)
{
	int			y,
				m,
				d;

	if (len < 10 || s[4] != '-' || s[7] != '-')
		return false;
	y = digits(s, 4);
	m = digits(s + 5, 2);
	d = digits(s + 8, 2);
	return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= txpipe_days_in_month(y, m);
}

/*
 * YYYY-MM-DD[T ]HH:MM[:SS[.fff]] with an optional zone: Z, +HH, +HH:MM,
 * +HHMM, or " UTC".
 */
static bool
valid_timestamp(const char *s, int len)
{
	int			i = 10;
	int			hh,
				mi,
				ss = 0;

	if (!valid_date(s, len) || len < 16 || (s[10] != ' ' && s[10] != 'T'))
		return false;
	hh = digits(s + 11, 2);
	mi = digits(s + 14, 2);
	if (s[13] != ':' || hh < 0 || hh > 23 || mi < 0 || mi > 59)
		return false;
	i = 16;
	if (i < len && s[i] == ':')
	{
		if (len < 19 || (ss = digits(s + 17, 2)) < 0 || ss > 60)
			return false;
		i = 19;
		if (i < len && s[i] == '.')
		{
			i++;
			if (i >= len || s[i] < '0' || s[i] > '9')
				return false;
			while (i < len && s[i] >= '0' && s[i] <= '9')
				i++;
		}
	}
	if (i == len)
		return true;
	if (s[i] == 'Z' && i + 1 == len)
		return true;
	if (len - i == 4 && strncmp(s + i, " UTC", 4) == 0)
		return true;
	if (s[i] == '+' || s[i] == '-')
	{
		int			rest = len - i - 1;
		const char *z = s + i + 1;

		if (rest == 2)
			return digits(z, 2) >= 0 && digits(z, 2) <= 14;
		if (rest == 4)
			return digits(z, 2) >= 0 && digits(z, 2) <= 14 && digits(z + 2, 2) >= 0 && digits(z + 2, 2) <= 59;
		if (rest == 5 && z[2] == ':')
			return digits(z, 2) >= 0 && digits(z, 2) <= 14 && digits(z + 3, 2) >= 0 && digits(z + 3, 2) <= 59;
	}
	return false;
}

static const char *
kind_name(TxValue *v)
{
	switch (v->kind)
	{
		case TX_NULL:
			return "null";
		case TX_STRING:
			return "a string";
		case TX_NUMBER:
			return is_integer_lexeme(v->text) ? "an integer" : "a number";
		case TX_BOOL:
			return "a boolean";
		case TX_OBJECT:
			return "an object";
		case TX_ARRAY:
			return "an array";
		default:
			return "nothing";
	}
}

static char *
types_list(uint8 types)
{
	static const char *const names[] = {"null", "string", "number", "integer", "boolean", "object", "array"};
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < 7; i++)
		if (types & (1 << i))
			appendStringInfo(&buf, "%s%s", buf.len ? " or " : "", names[i]);
	return buf.data;
}

static char *
shown(TxValue *v)
{
	if (v->kind == TX_STRING)
		return psprintf("\"%.*s%s\"", Min(v->len, 60), v->text, v->len > 60 ? "..." : "");
	if (v->kind == TX_NULL)
		return "null";
	return psprintf("%.*s%s", Min(v->len, 60), v->text, v->len > 60 ? "..." : "");
}

static bool
type_ok(TxField *f, TxValue *v)
{
	switch (v->kind)
	{
		case TX_NULL:
			return (f->types & TXT_NULL) != 0;
		case TX_STRING:
			return (f->types & TXT_STRING) != 0;
		case TX_NUMBER:
			if ((f->types & TXT_NUMBER) != 0 ||
				((f->types & TXT_INTEGER) != 0 && is_integer_lexeme(v->text)))
				return true;
			if ((f->types & TXT_INTEGER) != 0)
			{
				/* an integer written as 17850.0 is stored as 17850 */
				char	   *digits = integral_lexeme(v->text);

				if (digits == NULL)
					return false;
				v->text = digits;
				v->len = strlen(digits);
				return true;
			}
			return false;
		case TX_BOOL:
			return (f->types & TXT_BOOLEAN) != 0;
		case TX_OBJECT:
			return (f->types & TXT_OBJECT) != 0;
		case TX_ARRAY:
			return (f->types & TXT_ARRAY) != 0;
		default:
			return false;
	}
}

/* a top-level key the contract's ignore lists */
static bool
key_ignored(TxPlan *plan, const char *key)
{
	ListCell   *lc;

	foreach(lc, plan->ignored)
		if (strcmp(lfirst(lc), key) == 0)
			return true;
	return false;
}

/*
 * Fills errors[] with up to maxerrors contract violations of rec, in the
 * order of the contract's fields; returns how many there are.
 */
int
txpipe_contract_check(TxPlan *plan, TxRecord *rec, TxError *errors, int maxerrors)
{
	int			n = 0;

#define ADD_ERROR(code, f, ...) \
	do { \
		if (n < maxerrors) \
			txpipe_set_error(&errors[n], code, psprintf("$.%s", (f)->name), __VA_ARGS__); \
		n++; \
	} while (0)

	for (int i = 0; i < plan->nfields && n < maxerrors; i++)
	{
		TxField    *f = &plan->fields[i];
		TxValue    *v = &rec->values[i];
		bool		from_string = false;

		CHECK_FOR_INTERRUPTS();
		if (v->kind == TX_STRING)
		{
			/* the opt-ins: "" as absent, "35.79" as 35.79 */
			if (v->len == 0 && f->empty_absent)
			{
				v->kind = TX_ABSENT;
				v->text = NULL;
			}
			else if (f->numstr && json_number_lexeme(v->text, v->len))
			{
				v->kind = TX_NUMBER;
				from_string = true;
			}
		}
		if (v->kind == TX_ABSENT)
		{
			if (f->required)
				ADD_ERROR("required", f, "field \"%s\" is required", f->name);
			continue;
		}
		if (f->types != 0 && !type_ok(f, v))
		{
			if (from_string)
				v->kind = TX_STRING;	/* shown as it came */
			ADD_ERROR("type", f, "expected %s, found %s %s", types_list(f->types), kind_name(v), shown(v));
			continue;
		}
		if (f->nenum > 0)
		{
			bool		match = false;

			for (int e = 0; e < f->nenum && !match; e++)
				match = txpipe_value_equals(v, &f->enumvals[e]);
			if (!match)
			{
				StringInfoData list;

				initStringInfo(&list);
				for (int e = 0; e < f->nenum && e < 16; e++)
					appendStringInfo(&list, "%s%s", e ? ", " : "",
									 f->enumvals[e].text ? f->enumvals[e].text : "null");
				if (f->nenum > 16)
					appendStringInfo(&list, ", ... (%d values)", f->nenum);
				ADD_ERROR("enum", f, "%s is not one of: %s", shown(v), list.data);
				continue;
			}
		}
		if (v->kind == TX_STRING)
		{
			/* a character takes one byte at least, at most the encoding's longest */
			if ((f->min_length >= 0 && v->len < f->min_length * pg_database_encoding_max_length()) ||
				(f->max_length >= 0 && v->len > f->max_length))
			{
				int			chars = pg_mbstrlen_with_len(v->text, v->len);

				if (f->min_length >= 0 && chars < f->min_length)
				{
					ADD_ERROR("min_length", f, "%d characters, fewer than minLength %d", chars, f->min_length);
					continue;
				}
				if (f->max_length >= 0 && chars > f->max_length)
				{
					ADD_ERROR("max_length", f, "%d characters, more than maxLength %d", chars, f->max_length);
					continue;
				}
			}
			if (f->pattern && !txpipe_value_matches(v, f->pattern))
			{
				ADD_ERROR("pattern", f, "%s does not match the pattern %s", shown(v),
						  text_to_cstring(f->pattern->source));
				continue;
			}
			if (f->input_format)
			{
				/* parsed by its format once; a second pass sees the ISO form */
				char	   *iso = v->normalized ? v->text :
					txpipe_datefmt_parse(f->input_format, v->text, v->len);

				if (iso == NULL)
				{
					ADD_ERROR("format", f, "%s does not match the input format %s", shown(v),
							  txpipe_datefmt_source(f->input_format));
					continue;
				}
				v->text = iso;
				v->len = strlen(iso);
				v->normalized = true;
			}
			else if (f->format == TXF_DATE && !valid_date(v->text, v->len))
			{
				ADD_ERROR("format", f, "%s is not a valid date (YYYY-MM-DD)", shown(v));
				continue;
			}
			else if (f->format == TXF_DATE && v->len != 10)
			{
				ADD_ERROR("format", f, "%s is not a valid date (YYYY-MM-DD)", shown(v));
				continue;
			}
			else if (f->format == TXF_TIMESTAMP && !valid_timestamp(v->text, v->len))
			{
				ADD_ERROR("format", f, "%s is not a valid timestamp (YYYY-MM-DD HH:MM:SS)", shown(v));
				continue;
			}
		}
		else if (v->kind == TX_NUMBER && (f->minimum || f->maximum))
		{
			Decimal		x;

			decimal_parse(v->text, &x);
			if (f->minimum && decimal_cmp(&x, f->minimum) < 0)
			{
				ADD_ERROR("minimum", f, "%s is less than the minimum %s", v->text, f->minimum);
				continue;
			}
			if (f->maximum && decimal_cmp(&x, f->maximum) > 0)
			{
				ADD_ERROR("maximum", f, "%s is greater than the maximum %s", v->text, f->maximum);
				continue;
			}
		}
	}
	if (!plan->additional_ok)
	{
		ListCell   *lc;

		foreach(lc, rec->unknown_keys)
		{
			char	   *key = lfirst(lc);

			if (plan->ignored != NIL && key_ignored(plan, key))
				continue;
			if (n >= maxerrors)
				break;			/* the count is enough past the maximum */
			if (n < maxerrors)
				txpipe_set_error(&errors[n], "additional_property", psprintf("$.%s", key),
								 "field \"%s\" is not allowed by the contract", key);
			n++;
		}
	}
	return n;
#undef ADD_ERROR
}
