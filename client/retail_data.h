/*
 * Fixed vocabularies of the retail generator: the 38 countries of the
 * Online Retail file with their shares of its rows, its non-product stock
 * codes, the monthly volume of the period, and the words product
 * descriptions are built from.
 */
#ifndef TXPIPE_RETAIL_DATA_H
#define TXPIPE_RETAIL_DATA_H

#include <stdint.h>

typedef struct retail_country
{
	const char *name;
	double		rows;			/* rows of the real file */
} retail_country;

/*
 * A stock code that is not merchandise: postage, fees, discounts, manual
 * entries, gift vouchers.  Shares are of all sale lines and of all
 * cancellation lines; a price is lo + k * step up to hi, in thousandths.
 */
typedef struct special_code
{
	const char *code;
	const char *description;
	double		sale_share;
	double		cancel_share;
	int64_t		price_lo;
	int64_t		price_hi;
	int64_t		price_step;
} special_code;

#define N_RETAIL_COUNTRIES 38
#define N_SPECIAL_CODES 20
#define N_PRICE_POINTS 30

extern const retail_country retail_countries[N_RETAIL_COUNTRIES];
extern const special_code special_codes[N_SPECIAL_CODES];
/* rows per month, December 2010 to December 2011 (to the 9th) */
extern const double retail_month_rows[13];
/* merchandise prices in thousandths, with their weights */
extern const int64_t price_points[N_PRICE_POINTS];
extern const double price_weights[N_PRICE_POINTS];

extern const char *const desc_colours[];
extern const int n_desc_colours;
extern const char *const desc_motifs[];
extern const int n_desc_motifs;
extern const char *const desc_items[];
extern const int n_desc_items;

#endif
