/*
 * txpipe gen cards: NDJSON credit-card transactions shaped like the Sparkov
 * fraudTrain.csv file (see DATA.md), optionally mixed with bad records and
 * re-sent duplicates, with a summary of what a loader must find.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "common.h"
#include "cards_gen.h"
#include "gen_common.h"

#define FRAUD_SHARE 0.005789	/* 7,506 of 1,296,675 */

/* legit amounts: lognormal plus a thin heavy tail, tuned to mean 67.67, median 47.28 */
#define LEGIT_MEDIAN 44.3
#define LEGIT_SIGMA 0.755
#define LEGIT_TAIL 0.0004
#define LEGIT_MAX_CENTS 2894890

/* invalid UTF-8 is rare among bad records, about 1 in 30 */
static const double bad_kind_weights[N_BAD_KINDS] = {
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1,
};

typedef struct fraud_event
{
	int64_t		t;				/* seconds since 2019-01-01 00:00:00 */
	int			card;
	int			seq;
} fraud_event;

typedef struct fraud_window
{
	int64_t		start;
	int64_t		end;
} fraud_window;

/*
 * What the cards template's alert rules make of the valid records, in the
 * order a load routes them (the file's, which is event-time order): per
 * card, the day of its last fraud alert, its 10-minute window and count,
 * and the history of its amounts (Welford, as the server keeps it).
 */
#define VELOCITY_WINDOW 600
#define VELOCITY_THRESHOLD 5
#define OUTLIER_MIN_HISTORY 20
#define OUTLIER_Z 4.0

typedef struct card_alerts
{
	int			fraud_day;		/* -1: none yet */
	int64_t		window;			/* current velocity window */
	int			window_count;
	int64_t		n;
	double		mean;
	double		m2;
	int			outlier_day;
} card_alerts;

typedef struct generator
{
	const gen_options *opt;
	universe	u;
	rng			traffic;		/* legit records */
	rng			fraud;			/* fraud plan */
	rng			lines;			/* line mix, bad records, re-sends */
	alias_table pick_card;
	alias_table legit_category;
	alias_table fraud_category;
	alias_table legit_hour;
	alias_table fraud_hour;
	alias_table pick_bad;
	fraud_window *windows;
	fraud_event *events;
	int64_t		n_events;
	calendar	cal;
	uint64_t	tn_key;
	uint64_t	tn_counter;
	line_mix	mix;
	strbuf		line;
	uint64_t	n_fraud;
	int64_t		sum_cents;
	uint64_t	bad_counts[N_BAD_KINDS];
	card_alerts *alerts;
	uint64_t	alert_fraud;
	uint64_t	alert_velocity;
	uint64_t	alert_outlier;
} generator;

/* the alerts a stored valid record raises under the template's rules */
static void
expect_alerts(generator *g, const txn *x)
{
	card_alerts *a = &g->alerts[x->card];
	int64_t		t = (int64_t) x->day * 86400 + x->sod;
	char		text[32];
	double		v,
				d,
				mean;

	/* fraud_flag: one per card and day */
	if (x->is_fraud && a->fraud_day != x->day)
	{
		a->fraud_day = x->day;
		g->alert_fraud++;
	}
	/* card_velocity: more than 5 in a tumbling 10-minute window */
	if (t / VELOCITY_WINDOW != a->window)
	{
		a->window = t / VELOCITY_WINDOW;
		a->window_count = 0;
	}
	if (++a->window_count == VELOCITY_THRESHOLD + 1)
		g->alert_velocity++;
	/* amount_outlier: the amount as the server reads it, against the history before it */
	snprintf(text, sizeof(text), "%lld.%02lld", (long long) (x->amt_cents / 100),
			 (long long) (x->amt_cents % 100));
	v = strtod(text, NULL);
	if (a->n >= OUTLIER_MIN_HISTORY)
	{
		double		sd = sqrt(a->m2 / (double) (a->n - 1));
		double		z = sd > 0 ? (v - a->mean) / sd : 0;

		if (sd > 0 && fabs(z) > OUTLIER_Z && a->outlier_day != x->day)
		{
			a->outlier_day = x->day;
			g->alert_outlier++;
		}
	}
	d = v - a->mean;
	mean = a->mean + d / (double) (a->n + 1);
	a->m2 = a->m2 + d * (v - mean);
	a->mean = mean;
	a->n++;
}

static void
setup_tables(generator *g)
{
	double		w[N_CATEGORIES > 24 ? N_CATEGORIES : 24];
	double	   *cw;
	int			i;

	for (i = 0; i < N_CATEGORIES; i++)
		w[i] = card_categories[i].share * (100.0 - card_categories[i].fraud_rate);
	alias_init(&g->legit_category, w, N_CATEGORIES);
	for (i = 0; i < N_CATEGORIES; i++)
		w[i] = card_categories[i].share * card_categories[i].fraud_rate;
	alias_init(&g->fraud_category, w, N_CATEGORIES);

	/* card activity is lower before noon */
	for (i = 0; i < 24; i++)
		w[i] = i < 12 ? 42.2 : 66.0;
	alias_init(&g->legit_hour, w, 24);

	/*
	 * Fraud: 53% of it at 22-23h, 31% at 0-3h, the rest spread over the day
	 * like legit traffic.  With legit volumes this gives fraud rates of
	 * ~2.9% at 22-23h, ~1.4% at 0-3h and ~0.1% in daytime.
	 */
	for (i = 0; i < 24; i++)
	{
		if (i >= 22)
			w[i] = 26.5;
		else if (i < 4)
			w[i] = 7.85;
		else
			w[i] = 15.6 * (i < 12 ? 42.2 : 66.0) / 997.6;
	}
	alias_init(&g->fraud_hour, w, 24);

	alias_init(&g->pick_bad, bad_kind_weights, N_BAD_KINDS);

	cw = xmalloc(sizeof(double) * g->u.n_customers);
	for (i = 0; i < g->u.n_customers; i++)
		cw[i] = g->u.customers[i].activity;
	alias_init(&g->pick_card, cw, g->u.n_customers);
	free(cw);
}

static int
cmp_event(const void *a, const void *b)
{
	const fraud_event *x = a,
			   *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The fraud plan: bursts of 2-18 fraudulent transactions, each on one card
 * within a window of one to three days.  Cards are taken in a shuffled order
 * and reused only when there are more bursts than cards.
 */
static void
plan_fraud(generator *g, uint64_t n_fraud)
{
	int			nc = g->u.n_customers;
	int		   *order = xmalloc(sizeof(int) * nc);
	int		   *burst_card;
	fraud_window *burst_win;
	int64_t		n_bursts = 0,
				cap = 64,
				b;
	uint64_t	planned = 0;
	int		   *fill;
	int			i;

	for (i = 0; i < nc; i++)
		order[i] = i;
	for (i = nc - 1; i > 0; i--)
	{
		int			j = (int) rng_below(&g->fraud, (uint64_t) i + 1);
		int			t = order[i];

		order[i] = order[j];
		order[j] = t;
	}

	g->events = xmalloc(sizeof(fraud_event) * (n_fraud ? n_fraud : 1));
	burst_card = xmalloc(sizeof(int) * cap);
	burst_win = xmalloc(sizeof(fraud_window) * cap);
	while (planned < n_fraud)
	{
		uint64_t	size = 2 + rng_below(&g->fraud, 17);
		int			ndays = 1 + (int) rng_below(&g->fraud, 3);
		int			start_day = (int) rng_below(&g->fraud, PERIOD_DAYS - ndays + 1);
		int			card = order[n_bursts % nc];
		uint64_t	k;

		if (size > n_fraud - planned)
			size = n_fraud - planned;
		if (n_bursts == cap)
		{
			cap *= 2;
			burst_card = xrealloc(burst_card, sizeof(int) * cap);
			burst_win = xrealloc(burst_win, sizeof(fraud_window) * cap);
		}
		burst_card[n_bursts] = card;
		burst_win[n_bursts].start = (int64_t) start_day * 86400;
		burst_win[n_bursts].end = (int64_t) (start_day + ndays) * 86400;
		/*
		 * One burst in four of 8 or more is card testing: every transaction
		 * within one 10-minute window (windows are aligned to the epoch, as
		 * 2019-01-01 is), which the velocity rule catches.
		 */
		int64_t		rapid = -1;

		if (n_bursts % 4 == 3 && size >= 8)
			rapid = ((int64_t) start_day * 86400 + alias_draw(&g->fraud_hour, &g->fraud) * 3600 +
					 (int64_t) rng_below(&g->fraud, 3600)) / VELOCITY_WINDOW * VELOCITY_WINDOW;
		for (k = 0; k < size; k++)
		{
			fraud_event *e = &g->events[planned + k];
			int			day = start_day + (int) rng_below(&g->fraud, (uint64_t) ndays);
			int			hour = alias_draw(&g->fraud_hour, &g->fraud);

			e->t = (int64_t) day * 86400 + hour * 3600 + (int64_t) rng_below(&g->fraud, 3600);
			if (rapid >= 0)
				e->t = rapid + (int64_t) rng_below(&g->fraud, VELOCITY_WINDOW);
			e->card = card;
			e->seq = (int) (planned + k);
		}
		planned += size;
		g->u.customers[card].n_windows++;
		n_bursts++;
	}
	g->n_events = (int64_t) n_fraud;
	qsort(g->events, (size_t) g->n_events, sizeof(fraud_event), cmp_event);

	/* windows grouped by card, for the "no legit use inside a window" rule */
	g->windows = xmalloc(sizeof(fraud_window) * (n_bursts ? n_bursts : 1));
	fill = xcalloc(nc, sizeof(int));
	b = 0;
	for (i = 0; i < nc; i++)
	{
		g->u.customers[i].first_window = (int) b;
		b += g->u.customers[i].n_windows;
	}
	for (b = 0; b < n_bursts; b++)
	{
		customer   *cu = &g->u.customers[burst_card[b]];

		g->windows[cu->first_window + fill[burst_card[b]]++] = burst_win[b];
	}
	free(fill);
	free(order);
	free(burst_card);
	free(burst_win);
}

static int
in_fraud_window(const generator *g, int card, int64_t t)
{
	const customer *cu = &g->u.customers[card];
	int			i;

	for (i = 0; i < cu->n_windows; i++)
	{
		const fraud_window *w = &g->windows[cu->first_window + i];

		if (t >= w->start && t < w->end)
			return 1;
	}
	return 0;
}

static int64_t
legit_amount(rng *r, int category)
{
	double		x;
	int64_t		cents;

	if (rng_chance(r, LEGIT_TAIL))
		x = exp(log(500.0) + rng_unit(r) * log(LEGIT_MAX_CENTS / 100.0 / 500.0));
	else
		x = LEGIT_MEDIAN * card_categories[category].legit_scale *
			exp(LEGIT_SIGMA * rng_normal(r));
	cents = llround(x * 100.0);
	if (cents < 100)
		cents = 100 + (int64_t) rng_below(r, 900);
	if (cents > LEGIT_MAX_CENTS)
		cents = LEGIT_MAX_CENTS;
	return cents;
}

static int
merchant_coordinate(rng *r, int home_e4, int limit)
{
	int64_t		v = (int64_t) home_e4 * 100 + rng_range(r, -1000000, 1000000);

	if (v > (int64_t) limit * 1000000)
		v = (int64_t) limit * 1000000;
	if (v < -(int64_t) limit * 1000000)
		v = -(int64_t) limit * 1000000;
	return (int) v;
}

static void
fill_txn(generator *g, rng *r, txn *x, int category, int64_t cents)
{
	const customer *cu = &g->u.customers[x->card];
	const city *ci = &g->u.cities[cu->city];

	x->category = category;
	x->merchant = g->u.cat_first[category] +
		(int) rng_below(r, (uint64_t) g->u.cat_count[category]);
	x->amt_cents = cents;
	x->merch_lat_e6 = merchant_coordinate(r, ci->lat_e4, 90);
	x->merch_long_e6 = merchant_coordinate(r, ci->long_e4, 180);
	/* mix64 is a bijection, so the counter makes every trans_num unique */
	x->tn_hi = mix64(g->tn_counter++ ^ g->tn_key);
	x->tn_lo = rng_next(r);
}

static void
make_legit(generator *g, rng *r, txn *x, int day, int sod)
{
	int64_t		t = (int64_t) day * 86400 + sod;
	int			tries = 0;
	int			category;

	x->day = day;
	x->sod = sod;
	x->is_fraud = 0;
	do
		x->card = alias_draw(&g->pick_card, r);
	while (in_fraud_window(g, x->card, t) && ++tries < 100);
	category = alias_draw(&g->legit_category, r);
	fill_txn(g, r, x, category, legit_amount(r, category));
}

static void
make_fraud(generator *g, txn *x, const fraud_event *e)
{
	rng		   *r = &g->fraud;
	int			category = alias_draw(&g->fraud_category, r);
	const card_category *c = &card_categories[category];

	x->day = (int) (e->t / 86400);
	x->sod = (int) (e->t % 86400);
	x->card = e->card;
	x->is_fraud = 1;
	fill_txn(g, r, x, category, rng_range(r, c->fraud_lo_cents, c->fraud_hi_cents));
}

static void
write_bad(generator *g, int day, int sod)
{
	txn			x;
	bad_kind	kind = (bad_kind) alias_draw(&g->pick_bad, &g->lines);
	int			variant = (int) rng_below(&g->lines, 4);

	make_legit(g, &g->lines, &x, day, sod);
	write_txn(&g->line, &g->u, &g->cal, &x, kind, variant, rng_next(&g->lines));
	mix_put_bad(&g->mix, &g->line);
	g->bad_counts[kind]++;
}

/* writes the next valid record, preceded by the bad records and re-sends that fall before it */
static void
write_valid(generator *g, const txn *x)
{
	line_kind	k;

	while ((k = mix_draw(&g->mix)) != LINE_VALID)
	{
		if (k == LINE_BAD)
			write_bad(g, x->day, x->sod);
		else
			mix_put_dup(&g->mix);
	}
	write_txn(mix_valid_slot(&g->mix), &g->u, &g->cal, x, NOT_BAD, 0, 0);
	mix_put_valid(&g->mix);
	g->n_fraud += x->is_fraud;
	g->sum_cents += x->amt_cents;
	expect_alerts(g, x);
}

static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a,
				y = *(const int *) b;

	return (x > y) - (x < y);
}

static void
summarize(generator *g)
{
	json_object *o = mix_summary(&g->mix, g->opt->rows, 0);
	strbuf		sum;

	sb_init(&sum, 32);
	sb_put_fixed(&sum, g->sum_cents, 2);
	sb_putc(&sum, '\0');
	json_object_object_add(o, "sum_amt", json_object_new_string(sum.data));
	json_object_object_add(o, "fraud", json_object_new_int64((int64_t) g->n_fraud));
	{
		json_object *a = json_object_new_object();

		json_object_object_add(a, "fraud_flag", json_object_new_int64((int64_t) g->alert_fraud));
		json_object_object_add(a, "card_velocity", json_object_new_int64((int64_t) g->alert_velocity));
		json_object_object_add(a, "amount_outlier", json_object_new_int64((int64_t) g->alert_outlier));
		json_object_object_add(o, "alerts", a);
	}
	write_summary(o, g->opt->summary_path, bad_kind_names, g->bad_counts, N_BAD_KINDS);
	sb_free(&sum);
}

int
gen_cards(const gen_options *opt)
{
	generator  *g = xcalloc(1, sizeof(generator));
	rng			world;
	uint64_t	n_fraud,
				n_legit;
	int		   *times = NULL;
	size_t		times_cap = 0;
	int64_t		next_event = 0;
	int			day;

	g->opt = opt;
	mix_init(&g->mix, opt, &g->lines);
	n_fraud = (uint64_t) llround(FRAUD_SHARE * (double) g->mix.left_valid);
	n_legit = g->mix.left_valid - n_fraud;

	rng_seed(&world, opt->seed ^ UINT64_C(0x5eed000000000001));
	rng_seed(&g->traffic, opt->seed ^ UINT64_C(0x5eed000000000002));
	rng_seed(&g->fraud, opt->seed ^ UINT64_C(0x5eed000000000003));
	rng_seed(&g->lines, opt->seed ^ UINT64_C(0x5eed000000000004));
	g->tn_key = mix64(opt->seed + UINT64_C(0x7a5));
	universe_build(&g->u, &world, (int) opt->cards);
	calendar_init(&g->cal);
	setup_tables(g);
	plan_fraud(g, n_fraud);
	g->alerts = xcalloc((size_t) g->u.n_customers, sizeof(card_alerts));
	for (int i = 0; i < g->u.n_customers; i++)
	{
		g->alerts[i].fraud_day = -1;
		g->alerts[i].window = -1;
		g->alerts[i].outlier_day = -1;
	}

	sb_init(&g->line, 1024);

	for (day = 0; day < PERIOD_DAYS; day++)
	{
		/* legit rows spread evenly over the days */
		uint64_t	n = (uint64_t) ((__uint128_t) n_legit * (day + 1) / PERIOD_DAYS -
								 (__uint128_t) n_legit * day / PERIOD_DAYS);
		int64_t		day_end = (int64_t) (day + 1) * 86400;
		size_t		k = 0;

		if (n > times_cap)
		{
			times_cap = n;
			times = xrealloc(times, sizeof(int) * times_cap);
		}
		for (k = 0; k < n; k++)
			times[k] = alias_draw(&g->legit_hour, &g->traffic) * 3600 +
				(int) rng_below(&g->traffic, 3600);
		if (n > 1)
			qsort(times, n, sizeof(int), cmp_int);

		k = 0;
		while (k < n || (next_event < g->n_events && g->events[next_event].t < day_end))
		{
			txn			x;

			if (next_event < g->n_events && g->events[next_event].t < day_end &&
				(k == n || g->events[next_event].t <= (int64_t) day * 86400 + times[k]))
				make_fraud(g, &x, &g->events[next_event++]);
			else
				make_legit(g, &g->traffic, &x, day, times[k++]);
			write_valid(g, &x);
		}
	}
	/* whatever bad records and re-sends fall after the last valid one */
	while (g->mix.left_bad + g->mix.left_dups > 0)
	{
		if (mix_draw(&g->mix) == LINE_BAD)
			write_bad(g, PERIOD_DAYS - 1, 86399);
		else
			mix_put_dup(&g->mix);
	}
	mix_finish(&g->mix);
	if (opt->summary_path)
		summarize(g);

	free(times);
	sb_free(&g->line);
	mix_free(&g->mix);
	free(g->events);
	free(g->windows);
	free(g->alerts);
	alias_free(&g->pick_card);
	alias_free(&g->legit_category);
	alias_free(&g->fraud_category);
	alias_free(&g->legit_hour);
	alias_free(&g->fraud_hour);
	alias_free(&g->pick_bad);
	universe_free(&g->u);
	free(g);
	return 0;
}
