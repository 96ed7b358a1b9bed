/*
 * Deterministic pseudo-random numbers for the generators: xoshiro256**
 * seeded through splitmix64.  Output depends only on the seed, never on
 * the platform's rand().
 */
#ifndef TXPIPE_RNG_H
#define TXPIPE_RNG_H

#include <stdint.h>

typedef struct rng
{
	uint64_t	s[4];
} rng;

void		rng_seed(rng *r, uint64_t seed);
uint64_t	rng_next(rng *r);
/* uniform in [0, 1) with 53 random bits */
double		rng_unit(rng *r);
/* uniform integer in [0, n); n > 0, unbiased */
uint64_t	rng_below(rng *r, uint64_t n);
/* uniform integer in [lo, hi] */
int64_t		rng_range(rng *r, int64_t lo, int64_t hi);
double		rng_normal(rng *r);
/* true with probability p */
int			rng_chance(rng *r, double p);
/* a bijection on 64-bit integers: distinct inputs give distinct outputs */
uint64_t	mix64(uint64_t x);

/*
 * Walker alias table: O(1) draws from a fixed discrete distribution.
 */
typedef struct alias_table
{
	int			n;
	double	   *prob;
	int		   *alias;
} alias_table;

void		alias_init(alias_table *t, const double *weights, int n);
int			alias_draw(const alias_table *t, rng *r);
void		alias_free(alias_table *t);

#endif
