/*
 * The clicks generator's store: categories with the codes and shares of
 * the October 2019 file, brands (samsung, apple, xiaomi and huawei on top),
 * products and users.  Products are handed to categories and brands so
 * that the share of events of each matches the profile: 31.8% of events
 * have a category without a code and 14.4% a product without a brand.
 */
#include <math.h>
#include <stdlib.h>

#include "clicks_gen.h"

#define SHARE_NO_CODE 0.318
#define SHARE_NO_BRAND 0.144
#define N_UNCODED 120			/* categories without a code */
#define N_TAIL_BRANDS 240

const char *const event_type_names[N_EVENT_TYPES] = {
	"view", "cart", "remove_from_cart", "purchase",
};

typedef struct coded_category
{
	const char *code;
	double		weight;			/* relative share of events */
	int			median;			/* typical price, whole units */
} coded_category;

static const coded_category coded[] = {
	{"electronics.smartphone", 27.0, 250},
	{"electronics.clocks", 3.0, 160},
	{"computers.notebook", 2.9, 520},
	{"electronics.video.tv", 2.9, 400},
	{"electronics.audio.headphone", 2.6, 60},
	{"appliances.kitchen.washer", 1.9, 300},
	{"appliances.kitchen.refrigerators", 1.9, 480},
	{"appliances.environment.vacuum", 1.8, 140},
	{"apparel.shoes", 1.5, 70},
	{"electronics.tablet", 0.9, 230},
	{"computers.desktop", 0.7, 600},
	{"appliances.environment.water_heater", 0.6, 150},
	{"furniture.living_room.sofa", 0.6, 450},
	{"apparel.shoes.keds", 0.6, 60},
	{"appliances.iron", 0.6, 40},
	{"auto.accessories.player", 0.5, 50},
	{"furniture.bedroom.bed", 0.5, 300},
	{"kids.carriage", 0.5, 260},
	{"appliances.kitchen.microwave", 0.5, 90},
	{"electronics.telephone", 0.4, 30},
	{"computers.peripherals.printer", 0.4, 180},
	{"appliances.environment.air_heater", 0.4, 60},
	{"construction.tools.drill", 0.4, 90},
	{"sport.bicycle", 0.4, 310},
	{"kids.toys", 0.4, 35},
	{"electronics.audio.subwoofer", 0.3, 120},
	{"appliances.kitchen.blender", 0.3, 50},
	{"accessories.bag", 0.3, 45},
	{"computers.components.videocards", 0.3, 420},
	{"appliances.kitchen.hob", 0.3, 280},
	{"auto.accessories.videoregister", 0.3, 80},
	{"apparel.costume", 0.3, 40},
	{"electronics.camera.photo", 0.2, 450},
	{"furniture.kitchen.table", 0.2, 120},
	{"appliances.personal.massager", 0.2, 70},
	{"appliances.kitchen.coffee_machine", 0.2, 260},
	{"electronics.audio.acoustic", 0.2, 150},
	{"sport.trainer", 0.1, 330},
	{"medicine.tools.tonometer", 0.1, 40},
	{"stationery.cartrige", 0.1, 30},
	{"accessories.wallet", 0.1, 25},
	{"country_yard.cultivator", 0.05, 350},
};

#define N_CODED ((int) (sizeof(coded) / sizeof(coded[0])))

typedef struct named_brand
{
	const char *name;
	const char *domains;		/* top levels of its categories' codes */
	double		share;			/* % of all events */
	double		price_factor;
} named_brand;

static const named_brand named[] = {
	{"samsung", "electronics appliances computers", 12.4, 1.1},
	{"apple", "electronics computers", 9.7, 1.9},
	{"xiaomi", "electronics appliances computers", 7.3, 0.7},
	{"huawei", "electronics computers", 2.6, 0.9},
	{"lucente", "apparel accessories", 1.5, 0.6},
	{"lg", "electronics appliances", 1.3, 1.0},
	{"bosch", "appliances construction", 1.3, 1.2},
	{"oppo", "electronics", 1.05, 0.8},
	{"sony", "electronics", 1.0, 1.3},
	{"respect", "apparel", 0.9, 0.8},
	{"artel", "appliances electronics", 0.9, 0.7},
	{"acer", "computers", 0.8, 0.9},
	{"lenovo", "computers electronics", 0.8, 0.9},
	{"hp", "computers", 0.7, 1.0},
	{"asus", "computers", 0.7, 1.0},
	{"cordiant", "auto", 0.6, 0.7},
	{"indesit", "appliances", 0.6, 0.8},
	{"elenberg", "appliances electronics", 0.6, 0.5},
	{"vivo", "electronics", 0.5, 0.7},
	{"redmond", "appliances", 0.5, 0.6},
	{"philips", "appliances electronics", 0.5, 1.0},
	{"casio", "electronics", 0.4, 0.8},
	{"pulser", "sport kids", 0.4, 0.9},
	{"polaris", "appliances", 0.4, 0.6},
	{"beko", "appliances", 0.4, 0.8},
	{"haier", "appliances", 0.3, 0.9},
	{"tefal", "appliances", 0.3, 0.8},
	{"jbl", "electronics", 0.3, 0.9},
	{"lego", "kids", 0.3, 1.1},
	{"karcher", "appliances", 0.3, 1.1},
	{"canon", "electronics computers", 0.2, 1.2},
};

#define N_NAMED ((int) (sizeof(named) / sizeof(named[0])))

static const char *const syllables[] = {
	"ka", "ro", "mi", "te", "lu", "na", "vo", "xi", "ber", "tal", "zen", "mar",
	"ko", "sa", "di", "fan", "gro", "li", "pro", "vex", "tor", "el", "an", "us",
};

#define N_SYLLABLES ((int) (sizeof(syllables) / sizeof(syllables[0])))

static uint64_t
draw_unique(rng *r, hashset *seen, uint64_t lo, uint64_t span)
{
	uint64_t	v;

	do
		v = lo + rng_below(r, span);
	while (!hs_add(seen, mix64(v)));
	return v;
}

static void
build_categories(catalog *c, rng *r)
{
	double		coded_sum = 0,
				uncoded_sum = 0;
	hashset		ids;
	int			i;

	c->n_categories = N_CODED + N_UNCODED;
	c->categories = xcalloc(c->n_categories, sizeof(click_category));
	hs_init(&ids, c->n_categories);
	for (i = 0; i < N_CODED; i++)
		coded_sum += coded[i].weight;
	for (i = 0; i < N_UNCODED; i++)
		uncoded_sum += 1.0 / (i + 3);
	for (i = 0; i < c->n_categories; i++)
	{
		click_category *k = &c->categories[i];

		/* the ids of the real file: 2053013552... to 2232732110... */
		k->id = draw_unique(r, &ids, UINT64_C(2053013552000000000), UINT64_C(179718558000000000));
		if (i < N_CODED)
		{
			k->code = coded[i].code;
			k->share = (1.0 - SHARE_NO_CODE) * coded[i].weight / coded_sum;
			k->median_cents = (int64_t) coded[i].median * 100;
			k->tech = strncmp(k->code, "electronics.", 12) == 0 ||
				strncmp(k->code, "computers.", 10) == 0 ||
				strncmp(k->code, "appliances.", 11) == 0 ||
				strncmp(k->code, "auto.", 5) == 0;
		}
		else
		{
			k->code = NULL;
			k->share = SHARE_NO_CODE * (1.0 / (i - N_CODED + 3)) / uncoded_sum;
			k->median_cents = 1000 + (int64_t) rng_below(r, 30000);
			k->tech = 0;
		}
	}
	hs_free(&ids);
}

static void
build_brands(catalog *c, rng *r)
{
	double		named_sum = 0,
				tail_sum = 0,
				tail_share;
	hashset		names;
	int			i;

	c->n_brands = N_NAMED + N_TAIL_BRANDS;
	c->brands = xcalloc(c->n_brands, sizeof(click_brand));
	hs_init(&names, c->n_brands);
	for (i = 0; i < N_NAMED; i++)
	{
		click_brand *b = &c->brands[i];

		snprintf(b->name, sizeof(b->name), "%s", named[i].name);
		b->domains = named[i].domains;
		b->share = named[i].share / 100.0;
		b->price_factor = named[i].price_factor;
		named_sum += b->share;
		hs_add(&names, hash_bytes(b->name, strlen(b->name), 0));
	}
	for (i = 0; i < N_TAIL_BRANDS; i++)
		tail_sum += 1.0 / (i + 8);
	tail_share = 1.0 - SHARE_NO_BRAND - named_sum;
	for (i = 0; i < N_TAIL_BRANDS; i++)
	{
		click_brand *b = &c->brands[N_NAMED + i];

		do
		{
			int			n = 2 + (int) rng_below(r, 2),
						k;
			size_t		len = 0;

			for (k = 0; k < n; k++)
			{
				const char *s = syllables[rng_below(r, N_SYLLABLES)];

				memcpy(b->name + len, s, strlen(s));
				len += strlen(s);
			}
			b->name[len] = '\0';
		} while (!hs_add(&names, hash_bytes(b->name, strlen(b->name), 0)));
		b->tech = i % 4 == 0;
		b->domains = NULL;
		b->share = tail_share * (1.0 / (i + 8)) / tail_sum;
		b->price_factor = exp(0.2 * rng_normal(r));
	}
	hs_free(&names);
}

/* a named brand makes things of its domains; a made-up one of its kind */
static int
brand_fits(const click_brand *b, const click_category *k)
{
	const char *d = b->domains;
	size_t		top;

	if (d == NULL)
		return b->tech == k->tech;
	if (k->code == NULL)
		return 0;
	top = strcspn(k->code, ".");
	while (*d)
	{
		size_t		n = strcspn(d, " ");

		if (n == top && strncmp(d, k->code, n) == 0)
			return 1;
		d += n;
		d += strspn(d, " ");
	}
	return 0;
}

static int
cmp_weight_desc(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return (x < y) - (x > y);
}

/*
 * Products in order of popularity each take the category, then the brand
 * (of the category's kind, tech or not, or none) furthest below its share
 * of events so far.
 */
static void
build_products(catalog *c, rng *r, int n_products)
{
	double	   *w = xmalloc(sizeof(double) * n_products);
	double	   *cat_got = xcalloc(c->n_categories, sizeof(double));
	double	   *brand_got = xcalloc(c->n_brands, sizeof(double));
	double		no_brand_got = 0,
				total = 0,
				so_far = 0;
	hashset		ids;
	int			i;

	c->n_products = n_products;
	c->products = xcalloc(n_products, sizeof(click_product));
	for (i = 0; i < n_products; i++)
		w[i] = exp(1.6 * rng_normal(r));
	qsort(w, n_products, sizeof(double), cmp_weight_desc);
	for (i = 0; i < n_products; i++)
		total += w[i];

	hs_init(&ids, n_products);
	for (i = 0; i < n_products; i++)
	{
		click_product *p = &c->products[i];
		double		best = -INFINITY,
					base;
		int			k,
					j;

		p->id = draw_unique(r, &ids, 1000000, 99000000);
		so_far += w[i];
		for (k = 0; k < c->n_categories; k++)
		{
			double		deficit = c->categories[k].share * so_far - cat_got[k];

			if (deficit > best)
			{
				best = deficit;
				p->category = k;
			}
		}
		cat_got[p->category] += w[i];

		/* phones, notebooks and washers all have a brand */
		best = c->categories[p->category].tech ? -INFINITY : SHARE_NO_BRAND * so_far - no_brand_got;
		p->brand = -1;
		for (k = 0; k < c->n_brands; k++)
		{
			double		deficit;

			if (!brand_fits(&c->brands[k], &c->categories[p->category]))
				continue;
			deficit = c->brands[k].share * so_far - brand_got[k];
			if (deficit > best)
			{
				best = deficit;
				p->brand = k;
			}
		}
		if (p->brand < 0)
			no_brand_got += w[i];
		else
			brand_got[p->brand] += w[i];

		/* a price around the category's, changed up to 3 times in the month */
		base = (double) c->categories[p->category].median_cents * exp(0.5 * rng_normal(r)) *
			(p->brand < 0 ? 0.8 : c->brands[p->brand].price_factor);
		p->price_cents[0] = base < 79 ? 79 : llround(base);
		p->n_changes = (int) rng_below(r, CLICKS_PRICE_CHANGES + 1);
		for (j = 0; j < p->n_changes; j++)
		{
			int64_t		cents = llround((double) p->price_cents[j] * (0.85 + 0.27 * rng_unit(r)));

			p->change_at[j] = (j == 0 ? 0 : p->change_at[j - 1]) +
				1 + (int) rng_below(r, (uint64_t) (CLICKS_DAYS * 86400 / CLICKS_PRICE_CHANGES));
			p->price_cents[j + 1] = cents < 79 ? 79 : cents;
		}
	}
	hs_free(&ids);
	alias_init(&c->pick_product, w, n_products);
	free(w);
	free(cat_got);
	free(brand_got);
}

static void
build_users(catalog *c, rng *r, int n_users)
{
	double	   *w = xmalloc(sizeof(double) * n_users);
	hashset		ids;
	int			i;

	c->n_users = n_users;
	c->users = xcalloc(n_users, sizeof(click_user));
	hs_init(&ids, n_users);
	for (i = 0; i < n_users; i++)
	{
		/* the ids of the real file: 9 digits from 512 million up */
		c->users[i].id = draw_unique(r, &ids, 512000000, 68000000);
		w[i] = exp(1.2 * rng_normal(r));
	}
	hs_free(&ids);
	alias_init(&c->pick_user, w, n_users);
	free(w);
}

void
catalog_build(catalog *c, rng *r, int n_products, int n_users)
{
	memset(c, 0, sizeof(*c));
	build_categories(c, r);
	build_brands(c, r);
	build_products(c, r, n_products);
	build_users(c, r, n_users);
}

void
catalog_free(catalog *c)
{
	alias_free(&c->pick_product);
	alias_free(&c->pick_user);
	free(c->categories);
	free(c->brands);
	free(c->products);
	free(c->users);
}

int64_t
product_price(const click_product *p, int t)
{
	int			j = 0;

	while (j < p->n_changes && t >= p->change_at[j])
		j++;
	return p->price_cents[j];
}
