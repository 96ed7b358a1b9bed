/*-------------------------------------------------------------------------
 *
 * datefmt.c
 *	  Declared input formats of dates and timestamps: a contract property's
 *	  "inputFormat" (e.g. "M/D/YYYY H:MM"), compiled once with the spec, then
 *	  every value parsed as written and passed on in ISO form.
 *
 * Tokens: YYYY (four digits), M or MM (month), D or DD (day), H or HH (hour,
 * 0-23), after an hour M or MM (minutes), S or SS (seconds).  A doubled
 * letter takes exactly two digits, a single one one or two.  Every other
 * character is literal and must be there as written; "UTC" or "Z" among
 * the literals says that the time is in UTC.  Nothing is guessed: a value
 * either matches the format and is a valid date, or it is refused.  The
 * value passed on is "YYYY-MM-DD", or "YYYY-MM-DD HH:MM:SS" (with "+00" when
 * the format says UTC), which every date and time type reads the same way
 * whatever DateStyle says.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "lib/stringinfo.h"

typedef enum TxDateTokKind
{
	DT_LITERAL,
	DT_YEAR,
	DT_MONTH,
	DT_DAY,
	DT_HOUR,
	DT_MINUTE,
	DT_SECOND
} TxDateTokKind;

typedef struct TxDateTok
{
	uint8		kind;			/* TxDateTokKind */
	uint8		width;			/* digits: 4, 2, or 0 for one or two */
	char		lit;			/* DT_LITERAL */
} TxDateTok;

struct TxDateFormat
{
	char	   *source;
	int			ntok;
	TxDateTok  *tok;
	bool		utc;
};

static const char *const tok_names[] = {"", "year", "month", "day", "hour", "minute", "second"};

int
txpipe_days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return days[m - 1];
}

/*
 * Compiles fmt for a field of format date (timestamp = false) or
 * timestamp.  Returns NULL and sets *problem when fmt is not a format.
 */
TxDateFormat *
txpipe_datefmt_compile(const char *fmt, bool timestamp, char **problem)
{
	TxDateFormat *f = palloc0(sizeof(TxDateFormat));
	int			len = strlen(fmt);
	bool		seen[DT_SECOND + 1] = {false};
	bool		after_hour = false;

	f->source = pstrdup(fmt);
	f->tok = palloc0(sizeof(TxDateTok) * Max(len, 1));
	*problem = NULL;
	for (int i = 0; i < len;)
	{
		char		c = fmt[i];
		int			run = 1;
		TxDateTok  *t = &f->tok[f->ntok++];

		while (i + run < len && fmt[i + run] == c)
			run++;
		switch (c)
		{
			case 'Y':
				t->kind = DT_YEAR;
				if (run != 4)
				{
					*problem = psprintf("a year is written YYYY, found \"%.*s\"", run, fmt + i);
					return NULL;
				}
				break;
			case 'M':
				t->kind = after_hour ? DT_MINUTE : DT_MONTH;
				break;
			case 'D':
				t->kind = DT_DAY;
				break;
			case 'H':
				t->kind = DT_HOUR;
				after_hour = true;
				break;
			case 'S':
				t->kind = DT_SECOND;
				break;
			default:
				t->kind = DT_LITERAL;
				t->lit = c;
				if (c == 'Z' || (c == 'U' && strncmp(fmt + i, "UTC", 3) == 0))
					f->utc = true;
				i++;
				continue;
		}
		if (t->kind != DT_YEAR)
		{
			if (run > 2)
			{
				*problem = psprintf("\"%.*s\": a %s takes one or two letters", run, fmt + i,
									tok_names[t->kind]);
				return NULL;
			}
			t->width = (run == 2) ? 2 : 0;
		}
		else
			t->width = 4;
		if (seen[t->kind])
		{
			*problem = psprintf("the %s appears twice", tok_names[t->kind]);
			return NULL;
		}
		seen[t->kind] = true;
		/* one or two digits, then digits again: where would one end? */
		if (f->ntok >= 2)
		{
			TxDateTok  *prev = &f->tok[f->ntok - 2];

			if (prev->kind != DT_LITERAL && (prev->width == 0 || t->width == 0))
			{
				*problem = psprintf("the %s and the %s need a separator between them: "
									"one of them may have one or two digits",
									tok_names[prev->kind], tok_names[t->kind]);
				return NULL;
			}
		}
		i += run;
	}
	if (!seen[DT_YEAR] || !seen[DT_MONTH] || !seen[DT_DAY])
	{
		*problem = pstrdup("a format needs a year (YYYY), a month (M or MM) and a day (D or DD)");
		return NULL;
	}
	if (timestamp && (!seen[DT_HOUR] || !seen[DT_MINUTE]))
	{
		*problem = pstrdup("a timestamp's format needs an hour (H or HH) and minutes (MM after the hour)");
		return NULL;
	}
	if (!timestamp && (seen[DT_HOUR] || seen[DT_MINUTE] || seen[DT_SECOND]))
	{
		*problem = pstrdup("a date's format has no hour, minutes or seconds; use format \"timestamp\"");
		return NULL;
	}
	return f;
}

const char *
txpipe_datefmt_source(const TxDateFormat *f)
{
	return f->source;
}

/*
 * Parses s[0..len-1] by f; returns the value in ISO form (palloc'd), or
 * NULL when s does not match f or is no valid date or time.
 */
char *
txpipe_datefmt_parse(const TxDateFormat *f, const char *s, int len)
{
	int			part[DT_SECOND + 1] = {0};
	int			i = 0;

	for (int t = 0; t < f->ntok; t++)
	{
		const TxDateTok *tok = &f->tok[t];
		int			want = tok->width;
		int			n = 0;
		int			v = 0;

		if (tok->kind == DT_LITERAL)
		{
			if (i >= len || s[i] != tok->lit)
				return NULL;
			i++;
			continue;
		}
		if (want == 0)
			want = (i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9') ? 2 : 1;
		for (; n < want; n++, i++)
		{
			if (i >= len || s[i] < '0' || s[i] > '9')
				return NULL;
			v = v * 10 + (s[i] - '0');
		}
		part[tok->kind] = v;
	}
	if (i != len)
		return NULL;
	if (part[DT_YEAR] < 1 || part[DT_MONTH] < 1 || part[DT_MONTH] > 12 || part[DT_DAY] < 1 ||
		part[DT_DAY] > txpipe_days_in_month(part[DT_YEAR], part[DT_MONTH]) ||
		part[DT_HOUR] > 23 || part[DT_MINUTE] > 59 || part[DT_SECOND] > 59)
		return NULL;
	for (int t = 0; t < f->ntok; t++)
		if (f->tok[t].kind == DT_HOUR)
			return psprintf("%04d-%02d-%02d %02d:%02d:%02d%s", part[DT_YEAR], part[DT_MONTH],
							part[DT_DAY], part[DT_HOUR], part[DT_MINUTE], part[DT_SECOND],
							f->utc ? "+00" : "");
	return psprintf("%04d-%02d-%02d", part[DT_YEAR], part[DT_MONTH], part[DT_DAY]);
}
