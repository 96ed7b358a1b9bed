#include <math.h>
#include <stdlib.h>

#include "common.h"
#include "rng.h"

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	x ^= x >> 31;
	return x;
}

void
rng_seed(rng *r, uint64_t seed)
{
	uint64_t	x = seed;
	int			i;

	for (i = 0; i < 4; i++)
	{
		x += UINT64_C(0x9e3779b97f4a7c15);
		r->s[i] = mix64(x);
	}
	/* xoshiro must not start from the all-zero state */
	if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0)
		r->s[0] = 1;
}

uint64_t
rng_next(rng *r)
{
	uint64_t   *s = r->s;
	uint64_t	result = rotl(s[1] * 5, 7) * 9;
	uint64_t	t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
rng_unit(rng *r)
{
	return (double) (rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t
rng_below(rng *r, uint64_t n)
{
	/* Lemire's multiply-shift with rejection of the biased low zone */
	uint64_t	x = rng_next(r);
	__uint128_t m = (__uint128_t) x * n;
	uint64_t	l = (uint64_t) m;

	if (l < n)
	{
		uint64_t	t = -n % n;

		while (l < t)
		{
			x = rng_next(r);
			m = (__uint128_t) x * n;
			l = (uint64_t) m;
		}
	}
	return (uint64_t) (m >> 64);
}

int64_t
rng_range(rng *r, int64_t lo, int64_t hi)
{
	return lo + (int64_t) rng_below(r, (uint64_t) (hi - lo) + 1);
}

double
rng_normal(rng *r)
{
	/* Box-Muller; one value per call keeps the stream position simple */
	double		u1 = 1.0 - rng_unit(r);
	double		u2 = rng_unit(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

int
rng_chance(rng *r, double p)
{
	return rng_unit(r) < p;
}

void
alias_init(alias_table *t, const double *weights, int n)
{
	double	   *scaled = xmalloc(sizeof(double) * n);
	int		   *small = xmalloc(sizeof(int) * n);
	int		   *large = xmalloc(sizeof(int) * n);
	int			ns = 0,
				nl = 0;
	double		total = 0;
	int			i;

	t->n = n;
	t->prob = xmalloc(sizeof(double) * n);
	t->alias = xmalloc(sizeof(int) * n);
	for (i = 0; i < n; i++)
		total += weights[i];
	for (i = 0; i < n; i++)
	{
		scaled[i] = weights[i] * n / total;
		if (scaled[i] < 1.0)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns > 0 && nl > 0)
	{
		int			s = small[--ns];
		int			l = large[--nl];

		t->prob[s] = scaled[s];
		t->alias[s] = l;
		scaled[l] = (scaled[l] + scaled[s]) - 1.0;
		if (scaled[l] < 1.0)
			small[ns++] = l;
		else
			large[nl++] = l;
	}
	while (nl > 0)
	{
		int			l = large[--nl];

		t->prob[l] = 1.0;
		t->alias[l] = l;
	}
	/* leftovers of floating-point rounding */
	while (ns > 0)
	{
		int			s = small[--ns];

		t->prob[s] = 1.0;
		t->alias[s] = s;
	}
	free(scaled);
	free(small);
	free(large);
}

int
alias_draw(const alias_table *t, rng *r)
{
	int			i = (int) rng_below(r, (uint64_t) t->n);

	return rng_unit(r) < t->prob[i] ? i : t->alias[i];
}

void
alias_free(alias_table *t)
{
	free(t->prob);
	free(t->alias);
	t->prob = NULL;
	t->alias = NULL;
}
