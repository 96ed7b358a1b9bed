/*
 * Writing one click event as NDJSON, correct or broken on purpose.
 */
#include <stdio.h>

#include "clicks_gen.h"
#include "gen_common.h"

const char *const click_bad_kind_names[N_CLICK_BAD_KINDS] = {
	"truncated", "missing_field", "event_type_enum", "time_format",
	"price_text", "price_negative", "category_id_double", "session_pattern",
	"brand_case", "user_id_zero", "extra_field", "trailing_comma",
	"price_nan", "not_object", "invalid_utf8",
};

/* the event time as in the file: "2019-10-01 00:00:04 UTC" */
static void
put_time(strbuf *sb, int t, click_bad_kind bad, int variant)
{
	int			y,
				m,
				d,
				sod = t % 86400;

	civil_from_days(CLICKS_DAY0 + t / 86400, &y, &m, &d);
	sb_putc(sb, '"');
	if (bad == CBAD_TIME_FORMAT && variant == 0)
	{
		/* day first, with dots */
		sb_put_2d(sb, d);
		sb_putc(sb, '.');
		sb_put_2d(sb, m);
		sb_putc(sb, '.');
		sb_put_i64(sb, y);
	}
	else
	{
		sb_put_i64(sb, y);
		sb_putc(sb, bad == CBAD_TIME_FORMAT && variant == 1 ? '/' : '-');
		sb_put_2d(sb, m);
		sb_putc(sb, bad == CBAD_TIME_FORMAT && variant == 1 ? '/' : '-');
		/* no such day */
		sb_put_2d(sb, bad == CBAD_TIME_FORMAT && variant == 2 ? 32 : d);
	}
	sb_putc(sb, ' ');
	/* no such hour */
	sb_put_2d(sb, bad == CBAD_TIME_FORMAT && variant == 3 ? 24 + sod / 3600 % 6 : sod / 3600);
	sb_putc(sb, ':');
	sb_put_2d(sb, sod / 60 % 60);
	sb_putc(sb, ':');
	sb_put_2d(sb, sod % 60);
	PUT_LIT(sb, " UTC\"");
}

/* a version 4 UUID, as user_session holds them */
static void
put_session(strbuf *sb, uint64_t hi, uint64_t lo, int upper)
{
	size_t		start;

	hi = (hi & ~UINT64_C(0xf000)) | UINT64_C(0x4000);
	lo = (lo & ~(UINT64_C(3) << 62)) | (UINT64_C(2) << 62);
	sb_putc(sb, '"');
	start = sb->len;
	sb_put_hex(sb, hi >> 32, 8);
	sb_putc(sb, '-');
	sb_put_hex(sb, (hi >> 16) & 0xffff, 4);
	sb_putc(sb, '-');
	sb_put_hex(sb, hi & 0xffff, 4);
	sb_putc(sb, '-');
	sb_put_hex(sb, lo >> 48, 4);
	sb_putc(sb, '-');
	sb_put_hex(sb, lo & UINT64_C(0xffffffffffff), 12);
	if (upper)
	{
		size_t		i;

		for (i = start; i < sb->len; i++)
			if (sb->data[i] >= 'a' && sb->data[i] <= 'f')
				sb->data[i] = (char) (sb->data[i] - 'a' + 'A');
	}
	sb_putc(sb, '"');
}

/*
 * One record as a line of compact JSON, exactly the columns of the CSV file
 * in its order.  A missing category_code, brand or user_session is left
 * out, as "txpipe load" leaves out empty cells.  A bad kind changes exactly
 * what makes the record fail the contract.
 */
void
write_click(strbuf *sb, const catalog *c, const click_event *x, click_bad_kind bad, int variant)
{
	const click_product *p = &c->products[x->product];
	const click_category *k = &c->categories[p->category];
	const char *brand = p->brand >= 0 ? c->brands[p->brand].name : NULL;
	/* which required field a missing_field record lacks */
	int			missing = bad == CBAD_MISSING_FIELD ? variant : -1;

	sb->len = 0;
	if (bad == CBAD_NOT_OBJECT)
		sb_putc(sb, '[');
	sb_putc(sb, '{');
	if (missing != 0)
	{
		PUT_LIT(sb, "\"event_time\":");
		put_time(sb, x->t, bad, variant);
		sb_putc(sb, ',');
	}
	if (missing != 1)
	{
		PUT_LIT(sb, "\"event_type\":\"");
		if (bad == CBAD_EVENT_TYPE)
		{
			static const char *const wrong[] = {"wishlist", "View", "add_to_cart", ""};

			sb_puts(sb, wrong[variant]);
		}
		else
			sb_puts(sb, event_type_names[x->type]);
		PUT_LIT(sb, "\",");
	}
	PUT_LIT(sb, "\"product_id\":");
	sb_put_u64(sb, p->id);
	PUT_LIT(sb, ",\"category_id\":");
	if (bad == CBAD_CATEGORY_DOUBLE)
	{
		/*
		 * What a producer that read the ids as doubles writes (a column
		 * with gaps, read as floating point).  Not the exponent form
		 * 2.0530135556318828e+18: jsonb, and so the queue path, turns that
		 * into an integer the contract cannot tell from a real id.
		 */
		char		buf[32];

		snprintf(buf, sizeof(buf), "%.1f", (double) k->id);
		sb_puts(sb, buf);
	}
	else
		sb_put_u64(sb, k->id);
	if (k->code)
	{
		PUT_LIT(sb, ",\"category_code\":\"");
		sb_puts(sb, k->code);
		sb_putc(sb, '"');
	}
	if (bad == CBAD_BRAND_CASE)
	{
		PUT_LIT(sb, ",\"brand\":\"");
		if (brand)
		{
			sb_putc(sb, (char) (brand[0] - 'a' + 'A'));
			sb_puts(sb, brand + 1);
		}
		else
			PUT_LIT(sb, "NoName");
		sb_putc(sb, '"');
	}
	else if (bad == CBAD_INVALID_UTF8)
	{
		PUT_LIT(sb, ",\"brand\":\"");
		sb_puts(sb, brand ? brand : "noname");
		/* a Latin-1 e-acute, not UTF-8 */
		sb_putc(sb, (char) 0xe9);
		sb_putc(sb, '"');
	}
	else if (brand)
	{
		PUT_LIT(sb, ",\"brand\":\"");
		sb_puts(sb, brand);
		sb_putc(sb, '"');
	}
	if (missing != 2)
	{
		PUT_LIT(sb, ",\"price\":");
		if (bad == CBAD_PRICE_TEXT)
		{
			/*
			 * A string that is no number (the contract takes "35.79"): a
			 * decimal comma, or a currency sign.
			 */
			sb_putc(sb, '"');
			if (variant % 2)
				sb_putc(sb, '$');
			sb_put_fixed(sb, x->price_cents, 2);
			if (variant % 2 == 0)
				sb->data[sb->len - 3] = ',';
			sb_putc(sb, '"');
		}
		else if (bad == CBAD_PRICE_NAN)
			PUT_LIT(sb, "NaN");
		else
		{
			if (bad == CBAD_PRICE_NEGATIVE)
				sb_putc(sb, '-');
			sb_put_fixed(sb, x->price_cents, 2);
		}
	}
	if (missing != 3)
	{
		PUT_LIT(sb, ",\"user_id\":");
		if (bad == CBAD_USER_ID)
			sb_putc(sb, '0');
		else
			sb_put_u64(sb, c->users[x->user].id);
	}
	if (bad == CBAD_SESSION_PATTERN)
	{
		PUT_LIT(sb, ",\"user_session\":");
		if (variant % 2)
			put_session(sb, x->session_hi, x->session_lo, 1);
		else
		{
			/* cut short */
			put_session(sb, x->session_hi, x->session_lo, 0);
			sb->len -= 5;
			sb_putc(sb, '"');
		}
	}
	else if (x->has_session)
	{
		PUT_LIT(sb, ",\"user_session\":");
		put_session(sb, x->session_hi, x->session_lo, 0);
	}
	if (bad == CBAD_EXTRA_FIELD)
		PUT_LIT(sb, ",\"event_source\":\"web\"");
	if (bad == CBAD_TRAILING_COMMA)
		sb_putc(sb, ',');
	sb_putc(sb, '}');
	if (bad == CBAD_NOT_OBJECT)
		sb_putc(sb, ']');
	if (bad == CBAD_TRUNCATED)
		sb->len = sb->len * (3 + (size_t) variant) / 8;
}
