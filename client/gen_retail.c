/*
 * txpipe gen retail: NDJSON invoice lines shaped like the UCI Online Retail
 * file (see DATA.md), optionally mixed with bad records and re-sent
 * duplicates, with a summary of what a loader must find.
 *
 * Each record has exactly the file's eight columns, as "txpipe load" makes
 * of a row of the CSV file: InvoiceDate in the file's own form
 * ("12/1/2010 8:26"), Description and CustomerID left out when the cell is
 * empty.  The file has no line id: a line's identity is its content, so an
 * exact copy of a line is a duplicate.  The file's own share of exact
 * duplicate rows is made on purpose (the same item entered twice on an
 * invoice) and counted with the re-sends; any other repeat of a line's
 * content is avoided.
 *
 * Invoice numbers and times are drawn per seed: numbers are spread over the
 * file's range (536365 .. 581587) with random gaps, so that two files of
 * different seeds share a line only by a coincidence of invoice number,
 * minute, stock code, quantity, price, customer and country.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "gen_common.h"
#include "retail_data.h"
#include "rng.h"

#define N_CUSTOMERS 4372
#define CUSTOMER_NO_LO 12346
#define CUSTOMER_NO_HI 18287
#define N_MERCHANDISE 4050		/* with the special codes, 4,070 stock codes */
#define PERIOD_DAYS 374			/* 2010-12-01 .. 2011-12-09 */
#define FIRST_INVOICE 536365
#define LAST_INVOICE 581587
#define ROWS_PER_INVOICE 20.92	/* 541,909 rows, 25,900 invoices */

/* shares of all rows, steered exactly (see plan_day) */
#define CANCEL_SHARE 0.01714	/* 9,288 of 541,909 */
#define ADJUST_SHARE 0.00247	/* negative quantity, no C: 1,336 */
#define BAD_DEBT_SHARE 0.0000055	/* 3 "A" invoices */
/* a guest invoice has twice the lines: 14.6% of invoices, ~25% of rows */
#define GUEST_SHARE 0.146
#define ZERO_PRICE_SHARE 0.0022 /* sale lines given away (samples) */
#define DUPLICATE_SHARE 0.009721	/* exact duplicate rows: 5,268 of 541,909 */
#define MAX_LINES 1000			/* of one invoice: a guest sale of 500 */
/* one cancellation spike: so many cancelled invoices of so many lines in one hour */
#define SPIKE_INVOICES 3
#define SPIKE_LINES 40
#define SPIKE_HOUR 11
#define SPIKE_HISTORY 24		/* the template's cancellation_spike rule: an hour ... */
#define SPIKE_FACTOR 4.0		/* ... with more than 4 times the mean of the 24 before ... */
#define SPIKE_MIN 100			/* ... and at least 100 cancelled lines */

typedef enum invoice_kind
{
	INVOICE_SALE,
	INVOICE_CANCEL,
	INVOICE_ADJUST,				/* stock adjustment: one line, no customer */
	INVOICE_BAD_DEBT			/* "A" invoice */
} invoice_kind;

typedef enum retail_bad
{
	BAD_TRUNCATED,
	BAD_MISSING_FIELD,
	BAD_QUANTITY_STRING,
	BAD_QUANTITY_FRACTION,
	BAD_PRICE_STRING,
	BAD_PRICE_NAN,
	BAD_DATE_ISO,
	BAD_DATE_INVALID,
	BAD_INVOICE_PATTERN,
	BAD_CUSTOMER_STRING,
	BAD_COUNTRY_EMPTY,
	BAD_STOCK_CODE_EMPTY,
	BAD_EXTRA_FIELD,
	BAD_TRAILING_COMMA,
	BAD_CONTROL_CHAR,
	BAD_INVALID_UTF8,
	N_RETAIL_BAD
} retail_bad;

static const char *const retail_bad_names[N_RETAIL_BAD] = {
	"truncated", "missing_field", "quantity_string", "quantity_fraction",
	"price_string", "price_nan", "date_iso", "date_invalid",
	"invoice_pattern", "customer_string", "country_empty", "stock_code_empty",
	"extra_field", "trailing_comma", "control_char", "invalid_utf8",
};

/* invalid UTF-8 is rare among bad records, about 1 in 30 */
static const double retail_bad_weights[N_RETAIL_BAD] = {
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1,
};

typedef struct product
{
	char		code[16];
	char		description[80];
	int64_t		price;			/* thousandths */
	int			special;		/* index into special_codes, or -1 */
} product;

typedef struct customer
{
	int			no;				/* CustomerID */
	int			country;
} customer;

/* one invoice line, before it is written out */
typedef struct line
{
	char		invoice_no[12];
	int			product;
	int			quantity;
	int64_t		price;			/* thousandths */
	int			has_description;
	int			customer;		/* -1: guest */
	int			country;
	int			year,
				month,
				day,
				hour,
				minute;
} line;

typedef struct invoice_plan
{
	invoice_kind kind;
	int			guest;			/* a sale without a customer */
	int			lines;
	int			sod;			/* seconds of the day */
} invoice_plan;

typedef struct generator
{
	const gen_options *opt;
	rng			traffic;
	rng			lines;
	line_mix	mix;
	strbuf		bad_line;
	uint64_t	bad_counts[N_RETAIL_BAD];
	product	   *products;
	int			n_products;
	int			bad_debt_product;	/* stock code B */
	customer	customers[N_CUSTOMERS];
	alias_table pick_customer;
	alias_table pick_country;
	alias_table pick_merchandise;
	alias_table pick_sale_special;
	alias_table pick_cancel_special;
	alias_table pick_quantity;
	alias_table pick_hour;
	alias_table pick_bad;
	double		sale_special_share;
	double		cancel_special_share;
	int			next_invoice;
	/* rows planned so far, by kind, to steer the shares */
	uint64_t	planned;
	uint64_t	planned_cancel;
	uint64_t	planned_adjust;
	uint64_t	planned_bad_debt;
	line		cur;			/* the valid line about to be written */
	line		invoice_lines[MAX_LINES];	/* the lines of the current invoice */
	uint64_t	n_lines;		/* valid lines written, duplicates included */
	uint64_t	n_duplicates;	/* of them, exact copies of an earlier line */
	/* what was written */
	uint64_t	n_invoices;
	uint64_t	n_cancel_lines;
	uint64_t	n_cancel_invoices;
	/* stored cancelled lines per hour of the period, for the spike rule */
	int		   *hour_cancels;
	int			first_hour;
	int64_t		day0;
	int			spike_done;
	uint64_t	spike_lines;
	uint64_t	n_guest_lines;
	uint64_t	n_negative;
	uint64_t	n_zero_price;
	uint64_t	n_no_description;
	int64_t		sum_quantity;
	int64_t		sum_revenue;	/* thousandths */
	unsigned char *seen_product;
	unsigned char seen_customer[N_CUSTOMERS];
	unsigned char seen_country[N_RETAIL_COUNTRIES];
	uint64_t	n_products_seen;
	uint64_t	n_customers_seen;
	uint64_t	n_countries_seen;
} generator;

/* quantities of sale lines: packs of 6, 12, 24 are common */
static const int quantity_values[] = {
	1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 25, 36, 48, 72, 96, 100, 144, 200, 288, 480, 1000,
};
static const double quantity_weights[] = {
	25, 14, 7, 8, 2, 12, 4, 6, 14, 1, 2, 5, 1, 1, 1.5, 0.5, 0.5, 0.5, 0.3, 0.1, 0.1, 0.05, 0.02,
};
#define N_QUANTITIES ((int) (sizeof(quantity_values) / sizeof(quantity_values[0])))

/* invoices per hour of the day, 6h to 20h */
static const double hour_weights[24] = {
	0, 0, 0, 0, 0, 0, 0.05, 0.4, 1.8, 6.3, 9.6, 10.6, 14.3, 13.3, 12.3, 14.0, 9.0, 5.0,
	1.4, 0.7, 0.15, 0, 0, 0,
};

static void
build_products(generator *g, rng *r)
{
	hashset		seen;
	double	   *w;
	int			i;

	g->n_products = N_MERCHANDISE + N_SPECIAL_CODES;
	g->products = xcalloc((size_t) g->n_products, sizeof(product));
	hs_init(&seen, (size_t) g->n_products);
	for (i = 0; i < N_SPECIAL_CODES; i++)
	{
		product    *p = &g->products[N_MERCHANDISE + i];

		snprintf(p->code, sizeof(p->code), "%s", special_codes[i].code);
		snprintf(p->description, sizeof(p->description), "%s", special_codes[i].description);
		p->special = i;
		if (strcmp(p->code, "B") == 0)
			g->bad_debt_product = N_MERCHANDISE + i;
		hs_add(&seen, hash_bytes(p->code, strlen(p->code), 0));
	}

	/* merchandise: five digits, some with a letter for a variant */
	w = xmalloc(sizeof(double) * N_PRICE_POINTS);
	for (i = 0; i < N_PRICE_POINTS; i++)
		w[i] = price_weights[i];
	{
		alias_table pick_price;

		alias_init(&pick_price, w, N_PRICE_POINTS);
		for (i = 0; i < N_MERCHANDISE; i++)
		{
			product    *p = &g->products[i];

			do
			{
				int			n = (int) rng_range(r, 10002, 90214);

				if (rng_chance(r, 0.18))
					snprintf(p->code, sizeof(p->code), "%d%c", n, (char) ('A' + rng_below(r, 7)));
				else
					snprintf(p->code, sizeof(p->code), "%d", n);
			} while (!hs_add(&seen, hash_bytes(p->code, strlen(p->code), 0)));
			if (rng_chance(r, 0.3))
				snprintf(p->description, sizeof(p->description), "%s %s %s",
						 desc_colours[rng_below(r, (uint64_t) n_desc_colours)],
						 desc_motifs[rng_below(r, (uint64_t) n_desc_motifs)],
						 desc_items[rng_below(r, (uint64_t) n_desc_items)]);
			else if (rng_chance(r, 0.5))
				snprintf(p->description, sizeof(p->description), "%s %s",
						 desc_motifs[rng_below(r, (uint64_t) n_desc_motifs)],
						 desc_items[rng_below(r, (uint64_t) n_desc_items)]);
			else
				snprintf(p->description, sizeof(p->description), "%s %s",
						 desc_colours[rng_below(r, (uint64_t) n_desc_colours)],
						 desc_items[rng_below(r, (uint64_t) n_desc_items)]);
			p->price = price_points[alias_draw(&pick_price, r)];
			p->special = -1;
		}
		alias_free(&pick_price);
	}
	free(w);
	hs_free(&seen);

	/* popularity falls off with rank, as in a catalogue with a few hits */
	w = xmalloc(sizeof(double) * N_MERCHANDISE);
	for (i = 0; i < N_MERCHANDISE; i++)
		w[i] = 1.0 / pow(i + 30.0, 1.05);
	alias_init(&g->pick_merchandise, w, N_MERCHANDISE);
	free(w);
}

static void
build_customers(generator *g, rng *r)
{
	int			span = CUSTOMER_NO_HI - CUSTOMER_NO_LO + 1;
	int		   *nos = xmalloc(sizeof(int) * span);
	double	   *activity = xmalloc(sizeof(double) * N_CUSTOMERS);
	int			i;

	/* CustomerIDs: N_CUSTOMERS distinct numbers of the file's range */
	for (i = 0; i < span; i++)
		nos[i] = CUSTOMER_NO_LO + i;
	for (i = 0; i < N_CUSTOMERS; i++)
	{
		int			j = i + (int) rng_below(r, (uint64_t) (span - i));
		int			t = nos[i];

		nos[i] = nos[j];
		nos[j] = t;
	}
	for (i = 0; i < N_CUSTOMERS; i++)
	{
		g->customers[i].no = nos[i];
		g->customers[i].country = alias_draw(&g->pick_country, r);
		activity[i] = exp(1.3 * rng_normal(r));
	}
	alias_init(&g->pick_customer, activity, N_CUSTOMERS);
	free(activity);
	free(nos);
}

static void
setup_tables(generator *g)
{
	double		w[N_SPECIAL_CODES > N_RETAIL_COUNTRIES ? N_SPECIAL_CODES : N_RETAIL_COUNTRIES];
	int			i;

	for (i = 0; i < N_RETAIL_COUNTRIES; i++)
		w[i] = retail_countries[i].rows;
	alias_init(&g->pick_country, w, N_RETAIL_COUNTRIES);
	g->sale_special_share = 0;
	for (i = 0; i < N_SPECIAL_CODES; i++)
	{
		w[i] = special_codes[i].sale_share;
		g->sale_special_share += w[i];
	}
	alias_init(&g->pick_sale_special, w, N_SPECIAL_CODES);
	g->cancel_special_share = 0;
	for (i = 0; i < N_SPECIAL_CODES; i++)
	{
		w[i] = special_codes[i].cancel_share;
		g->cancel_special_share += w[i];
	}
	alias_init(&g->pick_cancel_special, w, N_SPECIAL_CODES);
	alias_init(&g->pick_quantity, quantity_weights, N_QUANTITIES);
	alias_init(&g->pick_hour, hour_weights, 24);
	alias_init(&g->pick_bad, retail_bad_weights, N_RETAIL_BAD);
}

/*
 * Relative volume of each day: the month's rows spread over its trading
 * days.  The shop sends no invoices on Saturdays nor over Christmas
 * (2010-12-24 to 2011-01-03), and fewer on Sundays.
 */
static void
day_weights(double *w, int64_t day0)
{
	double		month_days[13] = {0};
	int			day;

	for (day = 0; day < PERIOD_DAYS; day++)
	{
		int			y,
					m,
					d,
					dow = (int) ((day0 + day + 4) % 7);	/* 0 = Sunday */
		int			month;

		civil_from_days(day0 + day, &y, &m, &d);
		month = (y - 2010) * 12 + m - 12;
		if (dow == 6 || (y == 2010 && m == 12 && d >= 24) || (y == 2011 && m == 1 && d <= 3))
			w[day] = 0;
		else
			w[day] = dow == 0 ? 0.6 : 1.0;
		month_days[month] += w[day];
	}
	for (day = 0; day < PERIOD_DAYS; day++)
	{
		int			y,
					m,
					d;

		civil_from_days(day0 + day, &y, &m, &d);
		if (w[day] > 0)
			w[day] *= retail_month_rows[(y - 2010) * 12 + m - 12] / month_days[(y - 2010) * 12 + m - 12];
	}
}

static int
sale_lines(rng *r)
{
	double		x = 13.0 * exp(0.9 * rng_normal(r));

	if (x < 1)
		return 1;
	return x > 500 ? 500 : (int) x;
}

/*
 * Invoices of one day making up at least n rows, but never more than left,
 * the rows still to write (the last invoice is then cut short); the next
 * day's n makes up for a day that went over.  Cancellations, stock adjustments and bad-debt invoices
 * are steered so that their shares of all rows so far follow the file's.
 */
static int
plan_day(generator *g, invoice_plan **plans, int *cap, uint64_t n, uint64_t left)
{
	rng		   *r = &g->traffic;
	uint64_t	rows = 0;
	int			k = 0;

	if (n > left)
		n = left;
	while (rows < n)
	{
		invoice_plan *p;
		double		after = (double) g->planned + 1;

		if (k == *cap)
		{
			*cap = *cap ? *cap * 2 : 64;
			*plans = xrealloc(*plans, sizeof(invoice_plan) * (size_t) *cap);
		}
		p = &(*plans)[k++];
		if ((double) g->planned_bad_debt + 1 <= BAD_DEBT_SHARE * after)
		{
			p->kind = INVOICE_BAD_DEBT;
			p->guest = 1;
			p->lines = 1;
		}
		else if ((double) g->planned_adjust + 1 <= ADJUST_SHARE * after)
		{
			p->kind = INVOICE_ADJUST;
			p->guest = 1;
			p->lines = 1;
		}
		else if ((double) g->planned_cancel + 1 <= CANCEL_SHARE * after)
		{
			p->kind = INVOICE_CANCEL;
			p->guest = 0;
			p->lines = 1 + (int) fmin(49, floor(-log(1.0 - rng_unit(r)) * 1.4));
		}
		else
		{
			p->kind = INVOICE_SALE;
			p->guest = rng_chance(r, GUEST_SHARE);
			p->lines = sale_lines(r) * (p->guest ? 2 : 1);
		}
		if ((uint64_t) p->lines > left - rows)
			p->lines = (int) (left - rows);
		rows += (uint64_t) p->lines;
		g->planned += (uint64_t) p->lines;
		if (p->kind == INVOICE_CANCEL)
			g->planned_cancel += (uint64_t) p->lines;
		else if (p->kind == INVOICE_ADJUST)
			g->planned_adjust += (uint64_t) p->lines;
		else if (p->kind == INVOICE_BAD_DEBT)
			g->planned_bad_debt += (uint64_t) p->lines;
		p->sod = alias_draw(&g->pick_hour, r) * 3600 + (int) rng_below(r, 60) * 60;
	}
	return k;
}

static int
cmp_plan(const void *a, const void *b)
{
	const invoice_plan *x = a,
			   *y = b;

	return (x->sod > y->sod) - (x->sod < y->sod);
}

static int64_t
special_price(rng *r, const special_code *s)
{
	int64_t		steps = (s->price_hi - s->price_lo) / s->price_step;

	return s->price_lo + (int64_t) rng_below(r, (uint64_t) steps + 1) * s->price_step;
}

/* ---- writing ---- */

/* a price with two decimals, or three when it needs them */
static void
put_price(strbuf *sb, int64_t thousandths)
{
	if (thousandths % 10 == 0)
		sb_put_fixed(sb, thousandths / 10, 2);
	else
		sb_put_fixed(sb, thousandths, 3);
}

static void
put_string(strbuf *sb, const char *s)
{
	sb_put_json_string(sb, s, strlen(s));
}

/*
 * One line as compact JSON, keys in the order of the file's columns.  A bad
 * kind changes exactly what makes the record fail the contract.
 */
static void
write_line(strbuf *sb, const generator *g, const line *x, int bad, int variant, uint64_t cut)
{
	const product *p = &g->products[x->product];
	char		date[32];

	sb->len = 0;
	PUT_LIT(sb, "{\"InvoiceNo\":\"");
	if (bad == BAD_INVOICE_PATTERN)
	{
		/* seven digits, or a lower-case prefix */
		if (variant % 2 == 0)
			sb_putc(sb, '5');
		else
			sb_putc(sb, 'c');
	}
	sb_puts(sb, x->invoice_no);
	sb_putc(sb, '"');

	if (!(bad == BAD_MISSING_FIELD && variant % 3 == 0))
	{
		PUT_LIT(sb, ",\"StockCode\":");
		put_string(sb, bad == BAD_STOCK_CODE_EMPTY ? "" : p->code);
	}
	if (x->has_description || bad == BAD_CONTROL_CHAR || bad == BAD_INVALID_UTF8)
	{
		PUT_LIT(sb, ",\"Description\":");
		if (bad == BAD_CONTROL_CHAR || bad == BAD_INVALID_UTF8)
		{
			/* a raw tab, or the pound sign in ISO-8859-1 as the real file has it */
			size_t		half = strlen(p->description) / 2;

			sb_putc(sb, '"');
			sb_put(sb, p->description, half);
			sb_putc(sb, bad == BAD_CONTROL_CHAR ? '\t' : (char) 0xA3);
			sb_puts(sb, p->description + half);
			sb_putc(sb, '"');
		}
		else
			put_string(sb, p->description);
	}
	if (!(bad == BAD_MISSING_FIELD && variant % 3 == 1))
	{
		PUT_LIT(sb, ",\"Quantity\":");
		if (bad == BAD_QUANTITY_STRING)
		{
			sb_putc(sb, '"');
			sb_put_i64(sb, x->quantity);
			sb_putc(sb, '"');
		}
		else if (bad == BAD_QUANTITY_FRACTION)
		{
			sb_put_i64(sb, x->quantity);
			PUT_LIT(sb, ".5");
		}
		else
			sb_put_i64(sb, x->quantity);
	}
	if (!(bad == BAD_MISSING_FIELD && variant % 3 == 2))
	{
		PUT_LIT(sb, ",\"InvoiceDate\":\"");
		if (bad == BAD_DATE_ISO)
			/* ISO, as another export would write it: not the file's form */
			snprintf(date, sizeof(date), "%04d-%02d-%02d %02d:%02d:00",
					 x->year, x->month, x->day, x->hour, x->minute);
		else if (bad == BAD_DATE_INVALID && variant % 2 == 0)
			/* February 30th */
			snprintf(date, sizeof(date), "2/30/%d %d:%02d", x->year, x->hour, x->minute);
		else if (bad == BAD_DATE_INVALID)
			/* no such hour */
			snprintf(date, sizeof(date), "%d/%d/%d %d:%02d",
					 x->month, x->day, x->year, 24 + x->hour % 6, x->minute);
		else
			/* the file's own form: 12/1/2010 8:26 */
			snprintf(date, sizeof(date), "%d/%d/%d %d:%02d",
					 x->month, x->day, x->year, x->hour, x->minute);
		sb_puts(sb, date);
		sb_putc(sb, '"');
	}
	PUT_LIT(sb, ",\"UnitPrice\":");
	if (bad == BAD_PRICE_STRING)
	{
		sb_putc(sb, '"');
		put_price(sb, x->price);
		sb_putc(sb, '"');
	}
	else if (bad == BAD_PRICE_NAN)
		PUT_LIT(sb, "NaN");
	else
		put_price(sb, x->price);
	if (bad == BAD_CUSTOMER_STRING)
	{
		/* digits in a string; a guest line gets a number too, as "" is absent */
		PUT_LIT(sb, ",\"CustomerID\":\"");
		sb_put_i64(sb, g->customers[x->customer >= 0 ? x->customer : variant].no);
		sb_putc(sb, '"');
	}
	else if (x->customer >= 0)
	{
		PUT_LIT(sb, ",\"CustomerID\":");
		sb_put_i64(sb, g->customers[x->customer].no);
	}
	PUT_LIT(sb, ",\"Country\":");
	put_string(sb, bad == BAD_COUNTRY_EMPTY ? "" : retail_countries[x->country].name);
	if (bad == BAD_EXTRA_FIELD)
		PUT_LIT(sb, ",\"Channel\":\"web\"");
	if (bad == BAD_TRAILING_COMMA)
		sb_putc(sb, ',');
	sb_putc(sb, '}');

	/* any proper prefix of an object is invalid JSON */
	if (bad == BAD_TRUNCATED)
		sb->len = 1 + (size_t) (cut % (sb->len - 2));
}

/*
 * A bad record: the line about to be written, broken in one way.  A sender
 * that fixes it and sends it again is what the valid line then looks like.
 */
static int
write_bad(void *ctx, strbuf *sb)
{
	generator  *g = ctx;
	int			kind = alias_draw(&g->pick_bad, &g->lines);
	int			variant = (int) rng_below(&g->lines, 6);

	write_line(sb, g, &g->cur, kind, variant, rng_next(&g->lines));
	return kind;
}

static void
put_bad(generator *g)
{
	int			kind = write_bad(g, &g->bad_line);

	g->bad_counts[kind]++;
	mix_put_bad(&g->mix, &g->bad_line);
}

/* the bad and re-sent lines due before the next valid one */
static void
lines_before_valid(generator *g)
{
	for (;;)
	{
		line_kind	k = mix_draw(&g->mix);

		if (k == LINE_VALID)
			return;
		if (k == LINE_BAD)
			put_bad(g);
		else
			mix_put_dup(&g->mix);
	}
}

/*
 * Writes g->cur.  A duplicate repeats a line already written and counted:
 * it is written, but adds nothing to the figures of the stored lines.
 */
static void
write_valid(generator *g, int duplicate)
{
	const line *x = &g->cur;

	lines_before_valid(g);
	write_line(mix_valid_slot(&g->mix), g, x, -1, 0, 0);
	mix_put_valid(&g->mix);
	g->n_lines++;
	if (duplicate)
	{
		g->n_duplicates++;
		return;
	}

	g->sum_quantity += x->quantity;
	g->sum_revenue += (int64_t) x->quantity * x->price;
	if (x->invoice_no[0] == 'C')
	{
		int			h = (int) (days_from_civil(x->year, x->month, x->day) - g->day0) * 24 + x->hour;

		g->n_cancel_lines++;
		if (h >= 0 && h < PERIOD_DAYS * 24)
		{
			g->hour_cancels[h]++;
			if (g->first_hour < 0 || h < g->first_hour)
				g->first_hour = h;
		}
	}
	if (x->customer < 0)
		g->n_guest_lines++;
	else if (!g->seen_customer[x->customer])
	{
		g->seen_customer[x->customer] = 1;
		g->n_customers_seen++;
	}
	if (x->quantity < 0)
		g->n_negative++;
	if (x->price == 0)
		g->n_zero_price++;
	if (!x->has_description)
		g->n_no_description++;
	if (!g->seen_product[x->product])
	{
		g->seen_product[x->product] = 1;
		g->n_products_seen++;
	}
	if (!g->seen_country[x->country])
	{
		g->seen_country[x->country] = 1;
		g->n_countries_seen++;
	}
}

/* the next invoice number: gaps spread the invoices left over the numbers left */
static void
next_invoice_no(generator *g)
{
	double		invoices_left = (double) (g->mix.left_valid) / ROWS_PER_INVOICE;
	double		gap = (LAST_INVOICE - g->next_invoice) / fmax(invoices_left, 1.0);
	uint64_t	span = gap > 1.5 ? (uint64_t) llround(2 * gap - 1) : 2;

	g->next_invoice += 1 + (int) rng_below(&g->traffic, span);
}

/* what varies between the lines of one invoice, and so tells them apart */
static int
same_line(const line *a, const line *b)
{
	return a->product == b->product && a->quantity == b->quantity &&
		a->price == b->price && a->has_description == b->has_description;
}

/* the product, quantity and price of one line of an invoice of kind k */
static void
draw_line(generator *g, invoice_kind k, line *x)
{
	rng		   *r = &g->traffic;
	const product *pr;
	double		special = k == INVOICE_CANCEL ? g->cancel_special_share :
		g->sale_special_share;

	x->has_description = 1;
	if (k == INVOICE_BAD_DEBT)
		x->product = g->bad_debt_product;
	else if (k != INVOICE_ADJUST && rng_chance(r, special))
		x->product = N_MERCHANDISE + alias_draw(k == INVOICE_CANCEL ?
												&g->pick_cancel_special :
												&g->pick_sale_special, r);
	else
		x->product = alias_draw(&g->pick_merchandise, r);
	pr = &g->products[x->product];

	switch (k)
	{
		case INVOICE_SALE:
			if (pr->special >= 0)
			{
				x->quantity = 1 + (rng_chance(r, 0.1) ? (int) rng_below(r, 3) : 0);
				x->price = special_price(r, &special_codes[pr->special]);
			}
			else
			{
				x->quantity = quantity_values[alias_draw(&g->pick_quantity, r)];
				/* wholesale orders: a few in ten thousand lines, rarely huge */
				if (rng_chance(r, 0.0004))
					x->quantity = (int) exp(log(1000.0) + rng_unit(r) * log(5.0));
				else if (rng_chance(r, 0.000005))
					x->quantity = (int) rng_range(r, 5000, 80995);
				x->price = pr->price;
				/* bulk price */
				if (x->quantity >= 1000)
					x->price = (pr->price / 4) / 10 * 10 + 10;
				else if (x->quantity >= 24 && rng_chance(r, 0.5))
					x->price = (pr->price * 85 / 100) / 10 * 10;
				if (rng_chance(r, ZERO_PRICE_SHARE))
				{
					x->price = 0;
					x->has_description = !rng_chance(r, 0.1);
				}
			}
			break;
		case INVOICE_CANCEL:
			x->quantity = -(pr->special >= 0 ? 1 :
							quantity_values[alias_draw(&g->pick_quantity, r)]);
			x->price = pr->special >= 0 ? special_price(r, &special_codes[pr->special]) :
				pr->price;
			break;
		case INVOICE_ADJUST:
			/* stock written off or found: no customer, no price, rarely a note */
			x->quantity = -(int) (1 + rng_below(r, rng_chance(r, 0.2) ? 400 : 24));
			x->price = 0;
			x->has_description = 0;
			break;
		case INVOICE_BAD_DEBT:
			x->quantity = 1;
			x->price = -(int64_t) rng_range(r, 100000, 15000000) / 10 * 10;
			break;
	}
}

static void
write_invoice(generator *g, const invoice_plan *p, int year, int month, int day)
{
	rng		   *r = &g->traffic;
	line	   *x = &g->cur;
	int			customer = -1;
	int			country;
	int			i,
				j;

	next_invoice_no(g);
	if (!p->guest)
		customer = alias_draw(&g->pick_customer, r);
	country = customer >= 0 ? g->customers[customer].country :
		p->kind == INVOICE_SALE ? alias_draw(&g->pick_country, r) : 0;

	snprintf(x->invoice_no, sizeof(x->invoice_no), "%s%d",
			 p->kind == INVOICE_CANCEL ? "C" : p->kind == INVOICE_BAD_DEBT ? "A" : "",
			 g->next_invoice);
	x->year = year;
	x->month = month;
	x->day = day;
	x->hour = (p->sod / 3600) % 24;
	x->minute = p->sod / 60 % 60;
	x->customer = customer;
	x->country = country;

	for (i = 0; i < p->lines; i++)
	{
		int			tries = 0;

		/* the file's exact duplicates, steered to its share of the lines */
		if (i > 0 &&
			(double) g->n_duplicates + 1 <= DUPLICATE_SHARE * (double) (g->n_lines + 1))
		{
			const line *orig = &g->invoice_lines[rng_below(r, (uint64_t) i)];

			x->product = orig->product;
			x->quantity = orig->quantity;
			x->price = orig->price;
			x->has_description = orig->has_description;
			g->invoice_lines[i] = *x;
			write_valid(g, 1);
			continue;
		}

		/* any other line differs from the invoice's earlier ones */
		for (;;)
		{
			draw_line(g, p->kind, x);
			for (j = 0; j < i && !same_line(x, &g->invoice_lines[j]); j++)
				;
			if (j == i)
				break;
			if (++tries >= 100)
			{
				/* a line the draws keep repeating: one more (or one fewer) */
				while (j < i)
				{
					x->quantity += x->quantity < 0 ? -1 : 1;
					for (j = 0; j < i && !same_line(x, &g->invoice_lines[j]); j++)
						;
				}
				break;
			}
		}
		g->invoice_lines[i] = *x;
		write_valid(g, 0);
	}
	g->n_invoices++;
	if (p->kind == INVOICE_CANCEL)
		g->n_cancel_invoices++;
}

/* the template's cancellation_spike rule over the stored lines, as txpipe counts them */
static uint64_t
spike_alerts(const generator *g)
{
	return baseline_alerts(g->hour_cancels, PERIOD_DAYS * 24, g->first_hour, SPIKE_HISTORY,
						   SPIKE_FACTOR, SPIKE_MIN);
}

static void
write_retail_summary(generator *g)
{
	json_object *o = mix_summary(&g->mix, g->opt->rows, g->n_duplicates);
	strbuf		sum;

	sb_init(&sum, 32);
	sb_put_fixed(&sum, g->sum_revenue, 3);
	sb_putc(&sum, '\0');
	json_object_object_add(o, "duplicate_rows", json_object_new_int64((int64_t) g->n_duplicates));
	json_object_object_add(o, "invoices", json_object_new_int64((int64_t) g->n_invoices));
	json_object_object_add(o, "cancelled_invoices", json_object_new_int64((int64_t) g->n_cancel_invoices));
	json_object_object_add(o, "cancellations", json_object_new_int64((int64_t) g->n_cancel_lines));
	json_object_object_add(o, "spike_lines", json_object_new_int64((int64_t) g->spike_lines));
	{
		json_object *a = json_object_new_object();

		json_object_object_add(a, "cancellation_spike", json_object_new_int64((int64_t) spike_alerts(g)));
		json_object_object_add(o, "alerts", a);
	}
	json_object_object_add(o, "negative_quantity", json_object_new_int64((int64_t) g->n_negative));
	json_object_object_add(o, "guest_lines", json_object_new_int64((int64_t) g->n_guest_lines));
	json_object_object_add(o, "zero_price", json_object_new_int64((int64_t) g->n_zero_price));
	json_object_object_add(o, "no_description", json_object_new_int64((int64_t) g->n_no_description));
	json_object_object_add(o, "customers", json_object_new_int64((int64_t) g->n_customers_seen));
	json_object_object_add(o, "products", json_object_new_int64((int64_t) g->n_products_seen));
	json_object_object_add(o, "countries", json_object_new_int64((int64_t) g->n_countries_seen));
	json_object_object_add(o, "sum_quantity", json_object_new_int64(g->sum_quantity));
	json_object_object_add(o, "sum_revenue", json_object_new_string(sum.data));
	write_summary(o, g->opt->summary_path, retail_bad_names, g->bad_counts, N_RETAIL_BAD);
	sb_free(&sum);
}

int
gen_retail(const gen_options *opt)
{
	generator  *g = xcalloc(1, sizeof(generator));
	rng			world;
	double	   *w = xmalloc(sizeof(double) * PERIOD_DAYS);
	double		total = 0,
				cum = 0;
	int64_t		day0 = days_from_civil(2010, 12, 1);
	uint64_t	n_valid;
	invoice_plan *plans = NULL;
	int			plans_cap = 0;
	int			day,
				last;

	g->opt = opt;
	rng_seed(&world, opt->seed ^ UINT64_C(0x7e7a110000000001));
	rng_seed(&g->traffic, opt->seed ^ UINT64_C(0x7e7a110000000002));
	rng_seed(&g->lines, opt->seed ^ UINT64_C(0x7e7a110000000003));
	mix_init(&g->mix, opt, &g->lines);
	sb_init(&g->bad_line, 1024);
	n_valid = g->mix.left_valid;
	setup_tables(g);
	build_products(g, &world);
	build_customers(g, &world);
	g->seen_product = xcalloc((size_t) g->n_products, 1);
	g->next_invoice = FIRST_INVOICE - 1;
	g->day0 = day0;
	g->hour_cancels = xcalloc((size_t) PERIOD_DAYS * 24, sizeof(int));
	g->first_hour = -1;

	day_weights(w, day0);
	for (day = 0; day < PERIOD_DAYS; day++)
		total += w[day];
	/* the last trading day takes what is left */
	for (last = PERIOD_DAYS - 1; last > 0 && w[last] == 0; last--)
		;
	for (day = 0; day <= last; day++)
	{
		uint64_t	upto;
		int			y,
					m,
					d,
					k,
					i,
					spike;

		cum += w[day];
		upto = day == last ? n_valid : (uint64_t) llround((double) n_valid * cum / total);
		if (upto <= g->planned)
			continue;
		/* the spike: on the first trading day past the middle that has room for it */
		spike = !g->spike_done && day >= PERIOD_DAYS / 2 &&
			upto - g->planned >= 2 * SPIKE_INVOICES * SPIKE_LINES;
		k = plan_day(g, &plans, &plans_cap, upto - g->planned - (spike ? SPIKE_INVOICES * SPIKE_LINES : 0),
					 n_valid - g->planned - (spike ? SPIKE_INVOICES * SPIKE_LINES : 0));
		if (spike)
		{
			if (k + SPIKE_INVOICES > plans_cap)
			{
				plans_cap = k + SPIKE_INVOICES;
				plans = xrealloc(plans, sizeof(invoice_plan) * (size_t) plans_cap);
			}
			for (i = 0; i < SPIKE_INVOICES; i++)
			{
				invoice_plan *p = &plans[k++];

				p->kind = INVOICE_CANCEL;
				p->guest = 0;
				p->lines = SPIKE_LINES;
				p->sod = SPIKE_HOUR * 3600 + i * 600;
				g->planned += SPIKE_LINES;
				g->planned_cancel += SPIKE_LINES;
			}
			g->spike_done = 1;
			g->spike_lines = SPIKE_INVOICES * SPIKE_LINES;
		}
		qsort(plans, (size_t) k, sizeof(invoice_plan), cmp_plan);
		civil_from_days(day0 + day, &y, &m, &d);
		for (i = 0; i < k; i++)
			write_invoice(g, &plans[i], y, m, d);
	}

	/* the bad and re-sent lines still due */
	while (g->mix.left_bad + g->mix.left_dups > 0)
	{
		if (mix_draw(&g->mix) == LINE_BAD)
			put_bad(g);
		else
			mix_put_dup(&g->mix);
	}
	mix_finish(&g->mix);
	if (opt->summary_path)
		write_retail_summary(g);

	free(plans);
	free(w);
	free(g->seen_product);
	free(g->hour_cancels);
	free(g->products);
	mix_free(&g->mix);
	sb_free(&g->bad_line);
	alias_free(&g->pick_customer);
	alias_free(&g->pick_country);
	alias_free(&g->pick_merchandise);
	alias_free(&g->pick_sale_special);
	alias_free(&g->pick_cancel_special);
	alias_free(&g->pick_quantity);
	alias_free(&g->pick_hour);
	alias_free(&g->pick_bad);
	free(g);
	return 0;
}
