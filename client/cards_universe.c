#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"
#include "cards_gen.h"

static const char *
pick(rng *r, const char *const *list, int n)
{
	return list[rng_below(r, (uint64_t) n)];
}

static void
shuffle_ints(rng *r, int *a, int n)
{
	int			i;

	for (i = n - 1; i > 0; i--)
	{
		int			j = (int) rng_below(r, (uint64_t) i + 1);
		int			t = a[i];

		a[i] = a[j];
		a[j] = t;
	}
}

static void
build_jobs(universe *u, rng *r)
{
	char	  **pool = NULL;
	int			n = 0,
				cap = 0;
	hashset		seen;
	char		buf[160];
	int			g,
				i;
	int		   *order;

	hs_init(&seen, 1024);
	for (g = -1; g < n_job_groups; g++)
	{
		int			count = 0;

		if (g < 0)
			count = n_plain_jobs;
		else
			while (job_groups[g].specialities[count])
				count++;
		for (i = 0; i < count; i++)
		{
			if (g < 0)
				snprintf(buf, sizeof(buf), "%s", plain_jobs[i]);
			else
				snprintf(buf, sizeof(buf), "%s, %s", job_groups[g].role,
						 job_groups[g].specialities[i]);
			if (!hs_add(&seen, hash_bytes(buf, strlen(buf), 0)))
				continue;
			if (n == cap)
			{
				cap = cap ? cap * 2 : 256;
				pool = xrealloc(pool, sizeof(char *) * cap);
			}
			pool[n++] = xstrdup(buf);
		}
	}
	if (n < N_JOBS)
		die("internal error: only %d job titles", n);
	order = xmalloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
		order[i] = i;
	shuffle_ints(r, order, n);
	for (i = 0; i < N_JOBS; i++)
	{
		u->jobs[i] = pool[order[i]];
		pool[order[i]] = NULL;
	}
	u->n_jobs = N_JOBS;
	for (i = 0; i < n; i++)
		free(pool[i]);
	free(pool);
	free(order);
	hs_free(&seen);
}

static void
build_merchants(universe *u, rng *r)
{
	int			counts[N_CATEGORIES];
	double		rema[N_CATEGORIES];
	double		total = 0;
	int			assigned = 0;
	int			c,
				m = 0;
	hashset		seen;
	static const char *const suffixes[] = {"Inc", "LLC", "Ltd", "Group", "PLC", "and Sons"};

	/* largest remainder: merchants per category follow the row shares */
	for (c = 0; c < N_CATEGORIES; c++)
		total += card_categories[c].share;
	for (c = 0; c < N_CATEGORIES; c++)
	{
		double		exact = N_MERCHANTS * card_categories[c].share / total;

		counts[c] = (int) exact;
		rema[c] = exact - counts[c];
		assigned += counts[c];
	}
	while (assigned < N_MERCHANTS)
	{
		int			best = 0;

		for (c = 1; c < N_CATEGORIES; c++)
			if (rema[c] > rema[best])
				best = c;
		counts[best]++;
		rema[best] = -1;
		assigned++;
	}

	hs_init(&seen, N_MERCHANTS);
	for (c = 0; c < N_CATEGORIES; c++)
	{
		int			i;

		u->cat_first[c] = m;
		u->cat_count[c] = counts[c];
		for (i = 0; i < counts[c]; i++, m++)
		{
			merchant   *me = &u->merchants[m];
			double		x;

			do
			{
				x = rng_unit(r);
				if (x < 0.35)
					snprintf(me->name, sizeof(me->name), "fraud_%s %s",
							 pick(r, company_names, n_company_names),
							 pick(r, suffixes, 6));
				else if (x < 0.7)
					snprintf(me->name, sizeof(me->name), "fraud_%s-%s",
							 pick(r, company_names, n_company_names),
							 pick(r, company_names, n_company_names));
				else
					snprintf(me->name, sizeof(me->name), "fraud_%s, %s and %s",
							 pick(r, company_names, n_company_names),
							 pick(r, company_names, n_company_names),
							 pick(r, company_names, n_company_names));
			} while (!hs_add(&seen, hash_bytes(me->name, strlen(me->name), 0)));
			me->category = c;
		}
	}
	hs_free(&seen);
}

static int
new_city(universe *u, rng *r, int state, hashset *names)
{
	const us_state *st = &us_states[state];
	city	   *ci = &u->cities[u->n_cities];
	char		key[64];
	double		x;
	int			zip3;

	do
	{
		const char *root = pick(r, city_roots, n_city_roots);
		const char *ending = pick(r, city_endings, n_city_endings);

		x = rng_unit(r);
		if (x < 0.55)
			snprintf(ci->name, sizeof(ci->name), "%s%s", root, ending);
		else if (x < 0.72)
			snprintf(ci->name, sizeof(ci->name), "%s%s%s",
					 pick(r, city_prefixes, n_city_prefixes), root, ending);
		else if (x < 0.87)
			snprintf(ci->name, sizeof(ci->name), "%s%s%s", root, ending,
					 pick(r, city_suffixes, n_city_suffixes));
		else
			snprintf(ci->name, sizeof(ci->name), "%s", pick(r, last_names, n_last_names));
		snprintf(key, sizeof(key), "%s|%s", st->code, ci->name);
	} while (!hs_add(names, hash_bytes(key, strlen(key), 0)));

	ci->state = state;
	zip3 = (int) rng_range(r, st->zip3_lo, st->zip3_hi);
	ci->zip = zip3 * 100 + (int) rng_below(r, 100);
	ci->lat_e4 = (int) lround((st->lat_lo + (st->lat_hi - st->lat_lo) * rng_unit(r)) * 1e4);
	ci->long_e4 = (int) lround((st->long_lo + (st->long_hi - st->long_lo) * rng_unit(r)) * 1e4);
	/* small towns dominate; a few metro areas reach the millions */
	x = exp(log(2500.0) + 2.0 * rng_normal(r));
	if (x < 23)
		x = 23;
	if (x > 2906700)
		x = 2906700;
	ci->pop = (int) x;
	return u->n_cities++;
}

static int
luhn_digit(const int *d, int n)
{
	int			sum = 0;
	int			i;

	/* d holds the n digits before the check digit */
	for (i = 0; i < n; i++)
	{
		int			v = d[n - 1 - i];

		if (i % 2 == 0)
		{
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return (10 - sum % 10) % 10;
}

/*
 * Card numbers of the networks seen in the data: 11 to 19 digits, with a
 * valid Luhn digit.  The 19-digit ones start with 4, which keeps them
 * below 2^63 but far above 2^53.
 */
static uint64_t
card_number(rng *r)
{
	static const struct
	{
		const char *prefix;
		int			len;
		int			weight;
	}			kinds[] = {
		{"4", 16, 22}, {"51", 16, 4}, {"53", 16, 4}, {"55", 16, 5},
		{"4", 19, 12}, {"34", 15, 5}, {"37", 15, 5}, {"30", 14, 3},
		{"36", 14, 3}, {"38", 14, 2}, {"4", 13, 6}, {"6011", 16, 7},
		{"35", 16, 6}, {"2131", 15, 2}, {"1800", 15, 2}, {"50", 12, 5},
		{"6", 11, 7},
	};
	int			nk = (int) (sizeof(kinds) / sizeof(kinds[0]));
	int			total = 0,
				k,
				x;
	int			d[19];
	int			i,
				plen;
	uint64_t	v = 0;

	for (k = 0; k < nk; k++)
		total += kinds[k].weight;
	x = (int) rng_below(r, (uint64_t) total);
	for (k = 0; k < nk - 1 && x >= kinds[k].weight; k++)
		x -= kinds[k].weight;
	plen = (int) strlen(kinds[k].prefix);
	for (i = 0; i < plen; i++)
		d[i] = kinds[k].prefix[i] - '0';
	for (; i < kinds[k].len - 1; i++)
		d[i] = (int) rng_below(r, 10);
	d[kinds[k].len - 1] = luhn_digit(d, kinds[k].len - 1);
	for (i = 0; i < kinds[k].len; i++)
		v = v * 10 + (uint64_t) d[i];
	return v;
}

static void
make_dob(rng *r, char *out)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int			year,
				month,
				day,
				dim;

	/* adults of all ages, more of them born in the 1960s-1980s */
	if (rng_chance(r, 0.7))
	{
		year = (int) lround(1972 + 16 * rng_normal(r));
		if (year < 1924)
			year = 1924;
		if (year > 2005)
			year = 2005;
	}
	else
		year = (int) rng_range(r, 1924, 2005);
	month = (int) rng_range(r, 1, 12);
	dim = mdays[month - 1];
	if (month == 2 && year % 4 == 0 && (year % 100 != 0 || year % 400 == 0))
		dim = 29;
	day = (int) rng_range(r, 1, dim);
	snprintf(out, 11, "%04d-%02d-%02d", year, month, day);
}

static void
make_street(rng *r, char *out, size_t size)
{
	int			digits = (int) rng_range(r, 1, 5);
	int			lo = 1,
				hi = 9,
				i;
	int			number;
	const char *name;
	int			n;

	for (i = 1; i < digits; i++)
	{
		lo *= 10;
		hi = hi * 10 + 9;
	}
	number = (int) rng_range(r, lo, hi);
	if (rng_chance(r, 0.5))
		name = pick(r, last_names, n_last_names);
	else
		name = pick(r, female_names, n_female_names);
	n = snprintf(out, size, "%d %s %s", number, name,
				 pick(r, street_suffixes, n_street_suffixes));
	if (n > 0 && (size_t) n < size && rng_chance(r, 0.25))
		snprintf(out + n, size - n, "%s %d", rng_chance(r, 0.5) ? " Apt." : " Suite",
				 (int) rng_range(r, 1, 999));
}

void
universe_build(universe *u, rng *r, int n_customers)
{
	double		state_w[N_STATES];
	alias_table states;
	int			state_order[N_STATES];
	int			job_order[N_JOBS];
	int		  **state_cities;
	int		   *state_ncities;
	hashset		city_names,
				people,
				numbers;
	int			i;

	memset(u, 0, sizeof(*u));
	build_jobs(u, r);
	build_merchants(u, r);

	for (i = 0; i < N_STATES; i++)
	{
		state_w[i] = us_states[i].weight;
		state_order[i] = i;
	}
	alias_init(&states, state_w, N_STATES);
	shuffle_ints(r, state_order, N_STATES);
	for (i = 0; i < N_JOBS; i++)
		job_order[i] = i;
	shuffle_ints(r, job_order, N_JOBS);

	u->cities = xmalloc(sizeof(city) * n_customers);
	u->customers = xcalloc(n_customers, sizeof(customer));
	u->n_customers = n_customers;
	state_cities = xcalloc(N_STATES, sizeof(int *));
	state_ncities = xcalloc(N_STATES, sizeof(int));
	hs_init(&city_names, n_customers);
	hs_init(&people, n_customers);
	hs_init(&numbers, n_customers);

	for (i = 0; i < n_customers; i++)
	{
		customer   *cu = &u->customers[i];
		/* every state is present once there are enough customers */
		int			st = (i < N_STATES && n_customers >= N_STATES) ?
			state_order[i] : alias_draw(&states, r);
		char		key[80];

		if (state_ncities[st] > 0 && rng_chance(r, 0.1))
			cu->city = state_cities[st][rng_below(r, (uint64_t) state_ncities[st])];
		else
		{
			cu->city = new_city(u, r, st, &city_names);
			state_cities[st] = xrealloc(state_cities[st], sizeof(int) * (state_ncities[st] + 1));
			state_cities[st][state_ncities[st]++] = cu->city;
		}

		cu->gender = rng_chance(r, 0.547) ? 'F' : 'M';
		/* a customer is identified by (first, last, dob) */
		do
		{
			if (cu->gender == 'F')
				snprintf(cu->first, sizeof(cu->first), "%s", pick(r, female_names, n_female_names));
			else
				snprintf(cu->first, sizeof(cu->first), "%s", pick(r, male_names, n_male_names));
			snprintf(cu->last, sizeof(cu->last), "%s", pick(r, last_names, n_last_names));
			make_dob(r, cu->dob);
			snprintf(key, sizeof(key), "%s|%s|%s", cu->first, cu->last, cu->dob);
		} while (!hs_add(&people, hash_bytes(key, strlen(key), 0)));

		/* the first customers take every job once, so all titles appear */
		cu->job = i < N_JOBS ? job_order[i] : (int) rng_below(r, N_JOBS);
		make_street(r, cu->street, sizeof(cu->street));
		do
			cu->cc_num = card_number(r);
		while (!hs_add(&numbers, mix64(cu->cc_num)));

		/* a few cards are barely used, most are used every few days */
		cu->activity = exp(0.6 * rng_normal(r));
		if (rng_chance(r, 0.04))
			cu->activity *= 0.03;
	}

	for (i = 0; i < N_STATES; i++)
		free(state_cities[i]);
	free(state_cities);
	free(state_ncities);
	hs_free(&city_names);
	hs_free(&people);
	hs_free(&numbers);
	alias_free(&states);
}

void
universe_free(universe *u)
{
	int			i;

	for (i = 0; i < u->n_jobs; i++)
		free(u->jobs[i]);
	free(u->cities);
	free(u->customers);
}
