/*
 * txpipe gen clicks: NDJSON behaviour events of an online store shaped like
 * the REES46 October 2019 file (see DATA.md), optionally mixed with bad
 * records and re-sent duplicates, with a summary of what a loader must
 * find.
 *
 * Traffic is made of sessions: a user (drawn by activity, so that users
 * come back in several sessions) views products one after another, now and
 * then puts one of them in the cart or buys one.  The file has no event id:
 * an event's identity is its content, so an event logged twice (as the
 * real file has them) is an exact duplicate and counted with the re-sends.
 * Sessions (random UUIDs), users and products are drawn per seed, so two
 * files of different seeds share no event.  An event's time is strictly
 * later than its session's previous one, so only an event without a
 * session could repeat another by chance: those are checked, and a repeat
 * is counted as a duplicate too.
 */
#include <math.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "common.h"
#include "clicks_gen.h"
#include "gen_common.h"

#define EVENTS_PER_SESSION 4.6	/* mean; 42.4M events, ~9.2M sessions */
#define EVENTS_PER_USER 14.0	/* 42.4M events, ~3.0M users */
#define EVENTS_PER_PRODUCT 40.0 /* scaled down from ~255 of the real file */
#define GAP_SECONDS 45.0		/* mean time between a session's events */
#define NO_SESSION 0.0005		/* sessions whose events carry no user_session */
#define TWIN 0.004				/* events logged twice: exact duplicates */
#define REVIEW 0.3				/* a view of a product seen earlier in the session */
#define BOT_EVERY 5000.0		/* one session in so many is a bot's */
#define BOT_EVENTS 40			/* a bot's views, one a second within one minute */
#define BOT_WINDOW 60			/* the template's bot_user rule: more than 30 ... */
#define BOT_THRESHOLD 30		/* ... events of a user within a minute */
#define FLOOD_DAY (CLICKS_DAYS / 2)	/* one flood minute, that day at noon */
#define FLOOD_HOUR 12
#define FLOOD_HISTORY 60		/* the template's flood rule: a minute with ... */
#define FLOOD_FACTOR 3.0		/* ... more than 3 times the mean of the 60 before ... */
#define FLOOD_MIN 100			/* ... and at least 100 events */

/* October 2019: view 96.07%, cart 2.18%, purchase 1.75%; no removals */
static const event_type types[] = {EV_VIEW, EV_CART, EV_PURCHASE};
static const double type_weights[] = {96.07, 2.18, 1.75};

#define N_TYPES ((int) (sizeof(types) / sizeof(types[0])))

/* events by hour of the day, UTC: the store's customers are mostly at UTC+3 */
static const double hour_weights[24] = {
	2.0, 2.5, 3.5, 4.5, 5.0, 5.2, 5.3, 5.4, 5.5, 5.5, 5.5, 5.5,
	5.6, 5.7, 5.9, 6.1, 6.2, 5.9, 5.2, 4.3, 3.3, 2.4, 1.8, 1.7,
};

/* invalid UTF-8 is rare among bad records */
static const double bad_kind_weights[N_CLICK_BAD_KINDS] = {
	2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1,
};

typedef struct generator
{
	const gen_options *opt;
	catalog		c;
	rng			traffic;
	rng			lines;
	rng			bots;			/* which sessions are bots' */
	alias_table pick_type;
	alias_table pick_hour;
	alias_table pick_bad;
	line_mix	mix;
	strbuf		line;
	click_event *day;			/* the events of one day, sorted by time */
	size_t		day_len;
	size_t		day_cap;
	int		   *seen;			/* products viewed in the current session */
	int			n_seen;
	int			seen_cap;
	/* what was written */
	uint64_t	by_type[N_EVENT_TYPES];
	int64_t		purchase_cents;
	int64_t		price_cents;
	uint64_t	no_brand;
	uint64_t	no_category_code;
	uint64_t	no_session;
	uint64_t	twins;			/* events logged twice, as made */
	uint64_t	duplicates;		/* valid lines that repeat an earlier one */
	hashset		no_session_seen;	/* contents of the events without a session */
	uint64_t	sessions;
	uint64_t	bad_counts[N_CLICK_BAD_KINDS];
	/* per user: the minute of its last stored event and its count there */
	int		   *user_minute;
	int		   *user_count;
	uint64_t	n_bots;
	uint64_t	alert_bot_user;
	/* the stored events per minute, for the flood rule */
	int		   *minute_count;
	int			first_minute;
	uint64_t	flood_events;	/* the flood's, when there is one */
} generator;

static click_event *
day_push(generator *g)
{
	if (g->day_len == g->day_cap)
	{
		g->day_cap = g->day_cap ? 2 * g->day_cap : 1024;
		g->day = xrealloc(g->day, sizeof(click_event) * g->day_cap);
	}
	return &g->day[g->day_len++];
}

static void
seen_push(generator *g, int product)
{
	if (g->n_seen == g->seen_cap)
	{
		g->seen_cap = g->seen_cap ? 2 * g->seen_cap : 64;
		g->seen = xrealloc(g->seen, sizeof(int) * g->seen_cap);
	}
	g->seen[g->n_seen++] = product;
}

/* a view goes to a new product or back to one seen; a cart or a purchase to one seen */
static int
pick_product(generator *g, rng *r, event_type type)
{
	if (g->n_seen > 0 && (type != EV_VIEW || rng_chance(r, REVIEW)))
	{
		/* mostly the last one seen */
		if (type != EV_VIEW && rng_chance(r, 0.6))
			return g->seen[g->n_seen - 1];
		return g->seen[rng_below(r, (uint64_t) g->n_seen)];
	}
	return alias_draw(&g->c.pick_product, r);
}

/*
 * Appends one session of up to budget events, starting on day d, to the
 * day's events; returns how many it made.  A session ends at midnight.
 */
static size_t
make_session(generator *g, int d, size_t budget)
{
	rng		   *r = &g->traffic;
	int			user = alias_draw(&g->c.pick_user, r);
	int			has_session = !rng_chance(r, NO_SESSION);
	uint64_t	hi = rng_next(r),
				lo = rng_next(r);
	int			t = d * 86400 + alias_draw(&g->pick_hour, r) * 3600 + (int) rng_below(r, 3600);
	int			day_end = (d + 1) * 86400;
	size_t		made = 0;

	g->n_seen = 0;
	/* a bot: views of one product after another, a second apart, within one minute */
	if (budget >= BOT_EVENTS && rng_chance(&g->bots, 1.0 / BOT_EVERY))
	{
		t = t / 60 * 60;
		if (t + BOT_EVENTS > day_end)
			t = day_end - 60;
		for (; made < BOT_EVENTS; made++, t++)
		{
			click_event *x = day_push(g);

			x->t = t;
			x->seq = (int) g->day_len;
			x->type = EV_VIEW;
			x->product = pick_product(g, &g->bots, EV_VIEW);
			x->user = user;
			x->has_session = 1;
			x->session_hi = hi;
			x->session_lo = lo;
			x->price_cents = product_price(&g->c.products[x->product], t);
			x->twin = 0;
		}
		g->c.users[user].used = 1;
		g->sessions++;
		g->n_bots++;
		return made;
	}
	while (made < budget && t < day_end)
	{
		click_event *x = day_push(g);

		x->t = t;
		x->seq = (int) g->day_len;
		x->type = types[alias_draw(&g->pick_type, r)];
		x->product = pick_product(g, r, x->type);
		x->user = user;
		x->has_session = has_session;
		x->session_hi = hi;
		x->session_lo = lo;
		x->price_cents = product_price(&g->c.products[x->product], t);
		x->twin = 0;
		if (x->type == EV_VIEW)
			seen_push(g, x->product);
		made++;
		if (made < budget && rng_chance(r, TWIN))
		{
			click_event *twin = day_push(g);

			*twin = g->day[g->day_len - 2];
			twin->seq = (int) g->day_len;
			twin->twin = 1;
			g->twins++;
			made++;
		}
		/* geometric session length */
		if (rng_chance(r, 1.0 / EVENTS_PER_SESSION))
			break;
		t += 1 + (int) (-GAP_SECONDS * log(1.0 - rng_unit(r)));
	}
	if (made > 0)
	{
		g->c.users[user].used = 1;
		if (has_session)
			g->sessions++;
	}
	return made;
}

/*
 * The flood: k views in one minute of day d, each from its own session of
 * a user drawn at random, so that no user or session has many of them.
 */
static void
make_flood(generator *g, int d, size_t k)
{
	int			t0 = d * 86400 + FLOOD_HOUR * 3600;

	for (size_t j = 0; j < k; j++)
	{
		click_event *x = day_push(g);

		x->t = t0 + (int) (j * 60 / k);
		x->seq = (int) g->day_len;
		x->type = EV_VIEW;
		x->product = alias_draw(&g->c.pick_product, &g->bots);
		x->user = alias_draw(&g->c.pick_user, &g->bots);
		x->has_session = 1;
		x->session_hi = rng_next(&g->bots);
		x->session_lo = rng_next(&g->bots);
		x->price_cents = product_price(&g->c.products[x->product], x->t);
		x->twin = 0;
		g->c.users[x->user].used = 1;
		g->sessions++;
	}
}

/* the template's flood rule over the stored events, as txpipe counts them */
static uint64_t
flood_alerts(const generator *g)
{
	return baseline_alerts(g->minute_count, CLICKS_DAYS * 1440, g->first_minute, FLOOD_HISTORY,
						   FLOOD_FACTOR, FLOOD_MIN);
}

static int
cmp_event(const void *a, const void *b)
{
	const click_event *x = a,
			   *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static void
write_bad(generator *g, int t)
{
	rng		   *r = &g->lines;
	click_event x = {0};
	click_bad_kind kind = (click_bad_kind) alias_draw(&g->pick_bad, r);
	int			variant = (int) rng_below(r, 4);

	x.t = t;
	x.type = types[alias_draw(&g->pick_type, r)];
	x.product = alias_draw(&g->c.pick_product, r);
	x.user = alias_draw(&g->c.pick_user, r);
	x.has_session = 1;
	x.session_hi = rng_next(r);
	x.session_lo = rng_next(r);
	x.price_cents = product_price(&g->c.products[x.product], t);
	write_click(&g->line, &g->c, &x, kind, variant);
	mix_put_bad(&g->mix, &g->line);
	g->bad_counts[kind]++;
}

/* an event without a session that repeats an earlier one to the second */
static int
repeats_by_chance(generator *g, const click_event *x)
{
	uint64_t	h;

	if (x->has_session)
		return 0;
	h = mix64((uint64_t) x->t ^ ((uint64_t) x->type << 32));
	h = mix64(h ^ g->c.products[x->product].id);
	h = mix64(h ^ g->c.users[x->user].id);
	h = mix64(h ^ (uint64_t) x->price_cents);
	return !hs_add(&g->no_session_seen, h);
}

/*
 * Writes the next valid event, preceded by the bad records and re-sends
 * that fall before it.  A twin, or a repeat by chance, is written but adds
 * nothing to the figures of the stored events.
 */
static void
write_valid(generator *g, const click_event *x)
{
	click_product *p = &g->c.products[x->product];
	line_kind	k;

	while ((k = mix_draw(&g->mix)) != LINE_VALID)
	{
		if (k == LINE_BAD)
			write_bad(g, x->t);
		else
			mix_put_dup(&g->mix);
	}
	write_click(mix_valid_slot(&g->mix), &g->c, x, CLICK_NOT_BAD, 0);
	mix_put_valid(&g->mix);
	if (x->twin || repeats_by_chance(g, x))
	{
		g->duplicates++;
		return;
	}

	p->used = 1;
	/* the template's bot_user rule, on the stored events in the file's order */
	if (g->user_minute[x->user] != x->t / BOT_WINDOW)
	{
		g->user_minute[x->user] = x->t / BOT_WINDOW;
		g->user_count[x->user] = 0;
	}
	if (++g->user_count[x->user] == BOT_THRESHOLD + 1)
		g->alert_bot_user++;
	g->minute_count[x->t / 60]++;
	if (g->first_minute < 0 || x->t / 60 < g->first_minute)
		g->first_minute = x->t / 60;
	g->by_type[x->type]++;
	g->price_cents += x->price_cents;
	if (x->type == EV_PURCHASE)
		g->purchase_cents += x->price_cents;
	g->no_brand += p->brand < 0;
	g->no_category_code += g->c.categories[p->category].code == NULL;
	g->no_session += !x->has_session;
}

static json_object *
cents_string(int64_t cents)
{
	strbuf		sb;
	json_object *o;

	sb_init(&sb, 32);
	sb_put_fixed(&sb, cents, 2);
	sb_putc(&sb, '\0');
	o = json_object_new_string(sb.data);
	sb_free(&sb);
	return o;
}

static void
summarize(generator *g)
{
	json_object *o = mix_summary(&g->mix, g->opt->rows, g->duplicates);
	uint64_t	users = 0,
				products = 0,
				categories = 0,
				brands = 0;
	char	   *cat_used = xcalloc(g->c.n_categories, 1);
	char	   *brand_used = xcalloc(g->c.n_brands, 1);
	int			i;

	for (i = 0; i < g->c.n_users; i++)
		users += g->c.users[i].used;
	for (i = 0; i < g->c.n_products; i++)
	{
		const click_product *p = &g->c.products[i];

		if (!p->used)
			continue;
		products++;
		cat_used[p->category] = 1;
		if (p->brand >= 0)
			brand_used[p->brand] = 1;
	}
	for (i = 0; i < g->c.n_categories; i++)
		categories += cat_used[i];
	for (i = 0; i < g->c.n_brands; i++)
		brands += brand_used[i];

	json_object_object_add(o, "views", json_object_new_int64((int64_t) g->by_type[EV_VIEW]));
	json_object_object_add(o, "carts", json_object_new_int64((int64_t) g->by_type[EV_CART]));
	json_object_object_add(o, "removals", json_object_new_int64((int64_t) g->by_type[EV_REMOVE]));
	json_object_object_add(o, "purchases", json_object_new_int64((int64_t) g->by_type[EV_PURCHASE]));
	json_object_object_add(o, "purchase_amount", cents_string(g->purchase_cents));
	json_object_object_add(o, "sum_price", cents_string(g->price_cents));
	json_object_object_add(o, "twins", json_object_new_int64((int64_t) g->twins));
	json_object_object_add(o, "no_brand", json_object_new_int64((int64_t) g->no_brand));
	json_object_object_add(o, "no_category_code", json_object_new_int64((int64_t) g->no_category_code));
	json_object_object_add(o, "no_session", json_object_new_int64((int64_t) g->no_session));
	json_object_object_add(o, "users", json_object_new_int64((int64_t) users));
	json_object_object_add(o, "sessions", json_object_new_int64((int64_t) g->sessions));
	json_object_object_add(o, "products", json_object_new_int64((int64_t) products));
	json_object_object_add(o, "categories", json_object_new_int64((int64_t) categories));
	json_object_object_add(o, "brands", json_object_new_int64((int64_t) brands));
	json_object_object_add(o, "bots", json_object_new_int64((int64_t) g->n_bots));
	json_object_object_add(o, "flood_events", json_object_new_int64((int64_t) g->flood_events));
	{
		json_object *a = json_object_new_object();

		json_object_object_add(a, "bot_user", json_object_new_int64((int64_t) g->alert_bot_user));
		/* a bot's 40 views are in one session; no session of the quiet traffic has more than 8 in a minute */
		json_object_object_add(a, "bot_session", json_object_new_int64((int64_t) g->n_bots));
		json_object_object_add(a, "flood", json_object_new_int64((int64_t) flood_alerts(g)));
		json_object_object_add(o, "alerts", a);
	}
	free(cat_used);
	free(brand_used);
	write_summary(o, g->opt->summary_path, click_bad_kind_names, g->bad_counts,
				  N_CLICK_BAD_KINDS);
}

int
gen_clicks(const gen_options *opt)
{
	generator  *g = xcalloc(1, sizeof(generator));
	rng			world;
	uint64_t	n_valid;
	int			n_products,
				n_users,
				d;

	g->opt = opt;
	mix_init(&g->mix, opt, &g->lines);
	n_valid = g->mix.left_valid;

	rng_seed(&world, opt->seed ^ UINT64_C(0xc11c000000000001));
	rng_seed(&g->traffic, opt->seed ^ UINT64_C(0xc11c000000000002));
	rng_seed(&g->lines, opt->seed ^ UINT64_C(0xc11c000000000003));
	rng_seed(&g->bots, opt->seed ^ UINT64_C(0xc11c000000000004));
	n_products = (int) fmin(fmax((double) n_valid / EVENTS_PER_PRODUCT, 200), 200000);
	n_users = (int) fmin(fmax((double) n_valid / EVENTS_PER_USER, 20), 5000000);
	catalog_build(&g->c, &world, n_products, n_users);
	g->user_minute = xmalloc(sizeof(int) * (size_t) g->c.n_users);
	g->user_count = xcalloc((size_t) g->c.n_users, sizeof(int));
	for (int i = 0; i < g->c.n_users; i++)
		g->user_minute[i] = -1;
	g->minute_count = xcalloc((size_t) CLICKS_DAYS * 1440, sizeof(int));
	g->first_minute = -1;
	/* a flood well above the busiest minutes, where the file is large enough to hold one */
	g->flood_events = 3 * FLOOD_MIN + (uint64_t) (6.0 * (double) n_valid / (CLICKS_DAYS * 1440.0));
	if (n_valid / CLICKS_DAYS < 2 * g->flood_events)
		g->flood_events = 0;
	alias_init(&g->pick_type, type_weights, N_TYPES);
	alias_init(&g->pick_hour, hour_weights, 24);
	alias_init(&g->pick_bad, bad_kind_weights, N_CLICK_BAD_KINDS);
	sb_init(&g->line, 1024);
	hs_init(&g->no_session_seen, (size_t) (n_valid * NO_SESSION * 2) + 16);

	for (d = 0; d < CLICKS_DAYS; d++)
	{
		/* events spread evenly over the days */
		size_t		n = (size_t) ((__uint128_t) n_valid * (d + 1) / CLICKS_DAYS -
								  (__uint128_t) n_valid * d / CLICKS_DAYS);
		size_t		made = 0,
					i;

		g->day_len = 0;
		if (d == FLOOD_DAY && g->flood_events > 0)
		{
			make_flood(g, d, (size_t) g->flood_events);
			made += (size_t) g->flood_events;
		}
		while (made < n)
			made += make_session(g, d, n - made);
		qsort(g->day, g->day_len, sizeof(click_event), cmp_event);
		for (i = 0; i < g->day_len; i++)
			write_valid(g, &g->day[i]);
	}
	/* whatever bad records and re-sends fall after the last valid one */
	while (g->mix.left_bad + g->mix.left_dups > 0)
	{
		if (mix_draw(&g->mix) == LINE_BAD)
			write_bad(g, CLICKS_DAYS * 86400 - 1);
		else
			mix_put_dup(&g->mix);
	}
	mix_finish(&g->mix);
	if (opt->summary_path)
		summarize(g);

	sb_free(&g->line);
	hs_free(&g->no_session_seen);
	mix_free(&g->mix);
	free(g->day);
	free(g->seen);
	free(g->user_minute);
	free(g->user_count);
	free(g->minute_count);
	alias_free(&g->pick_type);
	alias_free(&g->pick_hour);
	alias_free(&g->pick_bad);
	catalog_free(&g->c);
	free(g);
	return 0;
}
