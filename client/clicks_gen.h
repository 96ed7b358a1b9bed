/*
 * The simulated store of the clicks generator (REES46 "eCommerce behavior
 * data from multi category store", October 2019): categories, brands,
 * products with prices that change over the month, users; shared by the
 * catalog builder, the record writer and the traffic generator.
 */
#ifndef TXPIPE_CLICKS_GEN_H
#define TXPIPE_CLICKS_GEN_H

#include "common.h"
#include "rng.h"

#define CLICKS_DAYS 31			/* 2019-10-01 .. 2019-10-31 */
#define CLICKS_DAY0 18170		/* 2019-10-01 in days since 1970-01-01 */
#define CLICKS_PRICE_CHANGES 3	/* at most, per product over the month */

typedef enum event_type
{
	EV_VIEW,
	EV_CART,
	EV_REMOVE,
	EV_PURCHASE,
	N_EVENT_TYPES
} event_type;

extern const char *const event_type_names[N_EVENT_TYPES];

typedef struct click_category
{
	uint64_t	id;				/* 19 digits, above 2^53 */
	const char *code;			/* NULL: the source has none */
	int			tech;			/* electronics, computers, appliances, auto */
	double		share;			/* of all events */
	int64_t		median_cents;	/* typical price */
} click_category;

typedef struct click_brand
{
	char		name[24];		/* lower case */
	const char *domains;		/* named brands: top levels of their codes */
	int			tech;			/* made-up brands: of tech categories or not */
	double		share;			/* of all events */
	double		price_factor;
} click_brand;

typedef struct click_product
{
	uint64_t	id;
	int			category;
	int			brand;			/* -1: no brand */
	int			n_changes;
	int			change_at[CLICKS_PRICE_CHANGES];	/* seconds into the month */
	int64_t		price_cents[CLICKS_PRICE_CHANGES + 1];
	int			used;			/* a valid event names it */
} click_product;

typedef struct click_user
{
	uint64_t	id;
	int			used;
} click_user;

typedef struct catalog
{
	click_category *categories;
	int			n_categories;
	click_brand *brands;
	int			n_brands;
	click_product *products;
	int			n_products;
	click_user *users;
	int			n_users;
	alias_table pick_product;	/* by popularity */
	alias_table pick_user;		/* by activity */
} catalog;

/* a catalog of n_products products and n_users users */
void		catalog_build(catalog *c, rng *r, int n_products, int n_users);
void		catalog_free(catalog *c);
int64_t		product_price(const click_product *p, int t);

/* one event, before it is written out */
typedef struct click_event
{
	int			t;				/* seconds since 2019-10-01 00:00:00 UTC */
	int			seq;			/* order of making, to keep the sort stable */
	event_type	type;
	int			product;
	int			user;
	int			has_session;
	uint64_t	session_hi;
	uint64_t	session_lo;
	int64_t		price_cents;
	int			twin;			/* logged twice: a copy of the event before it */
} click_event;

/* what makes a bad record fail the contract */
typedef enum click_bad_kind
{
	CBAD_TRUNCATED,
	CBAD_MISSING_FIELD,
	CBAD_EVENT_TYPE,
	CBAD_TIME_FORMAT,
	CBAD_PRICE_TEXT,
	CBAD_PRICE_NEGATIVE,
	CBAD_CATEGORY_DOUBLE,
	CBAD_SESSION_PATTERN,
	CBAD_BRAND_CASE,
	CBAD_USER_ID,
	CBAD_EXTRA_FIELD,
	CBAD_TRAILING_COMMA,
	CBAD_PRICE_NAN,
	CBAD_NOT_OBJECT,
	CBAD_INVALID_UTF8,
	N_CLICK_BAD_KINDS,
	CLICK_NOT_BAD = -1
} click_bad_kind;

extern const char *const click_bad_kind_names[N_CLICK_BAD_KINDS];

/*
 * Writes x as one line of compact JSON (no newline) into sb, replacing its
 * contents.  variant picks among the ways of making a bad kind.
 */
void		write_click(strbuf *sb, const catalog *c, const click_event *x,
						click_bad_kind bad, int variant);

#endif
