/*
 * Fixed vocabularies of the cards generator: categories with the shares
 * and fraud rates of the Sparkov data, states with their zip prefixes and
 * coordinates, and the word lists names are built from.
 */
#ifndef TXPIPE_CARDS_DATA_H
#define TXPIPE_CARDS_DATA_H

typedef struct card_category
{
	const char *name;
	double		share;			/* percent of all rows */
	double		fraud_rate;		/* percent of the category's rows */
	double		legit_scale;	/* multiplier of the legit median amount */
	int			fraud_lo_cents; /* fraud amounts are uniform in [lo, hi] */
	int			fraud_hi_cents;
} card_category;

typedef struct us_state
{
	const char *code;
	double		lat_lo,
				lat_hi,
				long_lo,
				long_hi;
	int			zip3_lo,		/* first three zip digits */
				zip3_hi;
	double		weight;			/* share of customers */
} us_state;

#define N_CATEGORIES 14
#define N_STATES 51

extern const card_category card_categories[N_CATEGORIES];
extern const us_state us_states[N_STATES];

extern const char *const female_names[];
extern const int n_female_names;
extern const char *const male_names[];
extern const int n_male_names;
extern const char *const last_names[];
extern const int n_last_names;
extern const char *const company_names[];
extern const int n_company_names;
extern const char *const street_suffixes[];
extern const int n_street_suffixes;
extern const char *const city_roots[];
extern const int n_city_roots;
extern const char *const city_endings[];
extern const int n_city_endings;
extern const char *const city_prefixes[];
extern const int n_city_prefixes;
extern const char *const city_suffixes[];
extern const int n_city_suffixes;

/* job titles: "Role, speciality" groups and plain titles */
typedef struct job_group
{
	const char *role;
	const char *const *specialities;
} job_group;

extern const job_group job_groups[];
extern const int n_job_groups;
extern const char *const plain_jobs[];
extern const int n_plain_jobs;

#endif
