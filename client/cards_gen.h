/*
 * The simulated world of the cards generator: cities, customers with one
 * card each, merchants; shared by the universe builder and the traffic
 * writer.
 */
#ifndef TXPIPE_CARDS_GEN_H
#define TXPIPE_CARDS_GEN_H

#include "common.h"
#include "cards_data.h"
#include "rng.h"

#define N_MERCHANTS 693
#define N_JOBS 494

typedef struct city
{
	char		name[48];
	int			state;
	int			zip;
	int			lat_e4;			/* degrees * 10^4 */
	int			long_e4;
	int			pop;
} city;

typedef struct customer
{
	char		first[24];
	char		last[24];
	char		gender;
	char		dob[11];
	char		street[64];
	int			job;
	int			city;
	uint64_t	cc_num;
	double		activity;		/* relative number of transactions */
	int			first_window;	/* index into the universe's fraud windows */
	int			n_windows;
} customer;

typedef struct merchant
{
	char		name[80];
	int			category;
} merchant;

typedef struct universe
{
	city	   *cities;
	int			n_cities;
	customer   *customers;
	int			n_customers;
	merchant	merchants[N_MERCHANTS];
	/* merchants are sorted by category: [cat_first[c], cat_first[c] + cat_count[c]) */
	int			cat_first[N_CATEGORIES];
	int			cat_count[N_CATEGORIES];
	char	   *jobs[N_JOBS];
	int			n_jobs;
} universe;

void		universe_build(universe *u, rng *r, int n_customers);
void		universe_free(universe *u);

#define PERIOD_DAYS 731			/* 2019-01-01 .. 2020-12-31 */
#define DAY0 17897				/* 2019-01-01 in days since 1970-01-01 */

/* what makes a bad record fail the contract */
typedef enum bad_kind
{
	BAD_TRUNCATED,
	BAD_MISSING_FIELD,
	BAD_AMT_STRING,
	BAD_CATEGORY,
	BAD_TRANS_NUM,
	BAD_DOB,
	BAD_TIME_FORMAT,
	BAD_AMT_NAN,
	BAD_TRAILING_COMMA,
	BAD_EXTRA_FIELD,
	BAD_STATE_CASE,
	BAD_GENDER,
	BAD_AMT_NEGATIVE,
	BAD_CONTROL_CHAR,
	BAD_INVALID_UTF8,
	N_BAD_KINDS,
	NOT_BAD = -1
} bad_kind;

extern const char *const bad_kind_names[N_BAD_KINDS];

/* one transaction, before it is written out */
typedef struct txn
{
	int			day;
	int			sod;			/* seconds of the day */
	int			card;
	int			merchant;
	int			category;
	int64_t		amt_cents;
	int			merch_lat_e6;
	int			merch_long_e6;
	uint64_t	tn_hi;
	uint64_t	tn_lo;
	int			is_fraud;
} txn;

typedef struct calendar
{
	char		date[PERIOD_DAYS][11];	/* YYYY-MM-DD */
	int64_t		unix_day[PERIOD_DAYS];	/* epoch of the same date 7 years earlier */
} calendar;

void		calendar_init(calendar *cal);

/*
 * Writes x as one line of compact JSON (no newline) into sb, replacing its
 * contents.  variant and cut pick among the ways of making a bad kind.
 */
void		write_txn(strbuf *sb, const universe *u, const calendar *cal,
					  const txn *x, bad_kind bad, int variant, uint64_t cut);

#endif
