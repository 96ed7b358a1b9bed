/*
 * Writing one card transaction as NDJSON, correct or broken on purpose,
 * and the calendar of the simulated period.
 */
#include <stdio.h>

#include "cards_gen.h"
#include "gen_common.h"

const char *const bad_kind_names[N_BAD_KINDS] = {
	"truncated", "missing_field", "amt_string", "category_enum",
	"trans_num_pattern", "dob_invalid", "time_format", "amt_nan",
	"trailing_comma", "extra_field", "state_lowercase", "gender_invalid",
	"amt_negative", "control_char", "invalid_utf8",
};

void
calendar_init(calendar *cal)
{
	int			day;

	for (day = 0; day < PERIOD_DAYS; day++)
	{
		int			y,
					m,
					d;

		char	   *o = cal->date[day];

		civil_from_days(DAY0 + day, &y, &m, &d);
		o[0] = (char) ('0' + y / 1000);
		o[1] = (char) ('0' + y / 100 % 10);
		o[2] = (char) ('0' + y / 10 % 10);
		o[3] = (char) ('0' + y % 10);
		o[4] = '-';
		o[5] = (char) ('0' + m / 10);
		o[6] = (char) ('0' + m % 10);
		o[7] = '-';
		o[8] = (char) ('0' + d / 10);
		o[9] = (char) ('0' + d % 10);
		o[10] = '\0';
		/* 2020-02-29 has no twin seven years earlier; it lands on March 1st */
		cal->unix_day[day] = days_from_civil(y - 7, m, d) * 86400;
	}
}

/* a string value with one raw byte planted in the middle */
static void
put_planted(strbuf *sb, const char *s, char planted)
{
	size_t		n = strlen(s);
	size_t		half = n / 2;

	sb_putc(sb, '"');
	sb_put(sb, s, half);
	sb_putc(sb, planted);
	sb_put(sb, s + half, n - half);
	sb_putc(sb, '"');
}

/*
 * One record as a line of compact JSON, keys in the order of the CSV file.
 * A bad kind changes exactly what makes the record fail the contract; the
 * rest stays realistic.
 */
void
write_txn(strbuf *sb, const universe *u, const calendar *cal, const txn *x,
		  bad_kind bad, int variant, uint64_t cut)
{
	const customer *cu = &u->customers[x->card];
	const city *ci = &u->cities[cu->city];
	const merchant *me = &u->merchants[x->merchant];
	int			hh = x->sod / 3600,
				mi = x->sod / 60 % 60,
				ss = x->sod % 60;
	int			i;

	sb->len = 0;
	PUT_LIT(sb, "{\"trans_date_trans_time\":\"");
	if (bad == BAD_TIME_FORMAT)
	{
		const char *d = cal->date[x->day];

		/* MM/DD/YYYY HH:MM */
		sb_put(sb, d + 5, 2);
		sb_putc(sb, '/');
		sb_put(sb, d + 8, 2);
		sb_putc(sb, '/');
		sb_put(sb, d, 4);
		sb_putc(sb, ' ');
		sb_put_2d(sb, hh);
		sb_putc(sb, ':');
		sb_put_2d(sb, mi);
	}
	else
	{
		sb_put(sb, cal->date[x->day], 10);
		sb_putc(sb, ' ');
		sb_put_2d(sb, hh);
		sb_putc(sb, ':');
		sb_put_2d(sb, mi);
		sb_putc(sb, ':');
		sb_put_2d(sb, ss);
	}
	PUT_LIT(sb, "\",\"cc_num\":");
	sb_put_u64(sb, cu->cc_num);

	PUT_LIT(sb, ",\"merchant\":");
	if (bad == BAD_CONTROL_CHAR && variant % 2 == 0)
		put_planted(sb, me->name, variant < 2 ? '\t' : '\a');
	else
		sb_put_json_string(sb, me->name, strlen(me->name));

	PUT_LIT(sb, ",\"category\":");
	if (bad == BAD_CATEGORY)
	{
		static const char *const wrong[] = {
			"\"crypto\"", "\"Grocery_pos\"", "\"gas-transport\"", "\"\"",
			"\"shopping\"", "\"travel \"",
		};

		sb_puts(sb, wrong[variant % 6]);
	}
	else
		sb_put_json_string(sb, card_categories[x->category].name,
						   strlen(card_categories[x->category].name));

	if (!(bad == BAD_MISSING_FIELD && variant % 2 == 0))
	{
		PUT_LIT(sb, ",\"amt\":");
		if (bad == BAD_AMT_STRING)
		{
			sb_putc(sb, '"');
			sb_put_fixed(sb, x->amt_cents, 2);
			sb_putc(sb, '"');
		}
		else if (bad == BAD_AMT_NAN)
			PUT_LIT(sb, "NaN");
		else if (bad == BAD_AMT_NEGATIVE)
			sb_put_fixed(sb, -x->amt_cents, 2);
		else
			sb_put_fixed(sb, x->amt_cents, 2);
	}

	PUT_LIT(sb, ",\"first\":");
	if (bad == BAD_INVALID_UTF8)
		put_planted(sb, cu->first, (char) 0xFF);
	else
		sb_put_json_string(sb, cu->first, strlen(cu->first));
	PUT_LIT(sb, ",\"last\":");
	sb_put_json_string(sb, cu->last, strlen(cu->last));
	PUT_LIT(sb, ",\"gender\":\"");
	sb_putc(sb, bad == BAD_GENDER ? 'X' : cu->gender);
	PUT_LIT(sb, "\",\"street\":");
	if (bad == BAD_CONTROL_CHAR && variant % 2 == 1)
		put_planted(sb, cu->street, variant < 2 ? '\t' : '\a');
	else
		sb_put_json_string(sb, cu->street, strlen(cu->street));
	PUT_LIT(sb, ",\"city\":");
	sb_put_json_string(sb, ci->name, strlen(ci->name));
	PUT_LIT(sb, ",\"state\":\"");
	for (i = 0; i < 2; i++)
	{
		char		c = us_states[ci->state].code[i];

		sb_putc(sb, bad == BAD_STATE_CASE ? (char) (c - 'A' + 'a') : c);
	}
	PUT_LIT(sb, "\",\"zip\":");
	sb_put_i64(sb, ci->zip);
	PUT_LIT(sb, ",\"lat\":");
	sb_put_fixed(sb, ci->lat_e4, 4);
	PUT_LIT(sb, ",\"long\":");
	sb_put_fixed(sb, ci->long_e4, 4);
	PUT_LIT(sb, ",\"city_pop\":");
	sb_put_i64(sb, ci->pop);
	PUT_LIT(sb, ",\"job\":");
	sb_put_json_string(sb, u->jobs[cu->job], strlen(u->jobs[cu->job]));
	PUT_LIT(sb, ",\"dob\":\"");
	if (bad == BAD_DOB)
	{
		sb_put(sb, cu->dob, 5);
		sb_puts(sb, variant % 2 ? "02-30" : "13-45");
	}
	else
		sb_put(sb, cu->dob, 10);
	sb_putc(sb, '"');

	if (!(bad == BAD_MISSING_FIELD && variant % 2 == 1))
	{
		PUT_LIT(sb, ",\"trans_num\":\"");
		if (bad == BAD_TRANS_NUM)
		{
			switch (variant % 4)
			{
				case 0:			/* 31 digits */
					sb_put_hex(sb, x->tn_hi, 16);
					sb_put_hex(sb, x->tn_lo, 15);
					break;
				case 1:			/* upper case */
					{
						size_t		from = sb->len;
						size_t		k;

						sb_put_hex(sb, x->tn_hi, 16);
						sb_put_hex(sb, x->tn_lo, 16);
						for (k = from; k < sb->len; k++)
							if (sb->data[k] >= 'a')
								sb->data[k] = (char) (sb->data[k] - 'a' + 'A');
						/* all-digit hex stays valid; force one letter */
						sb->data[from] = 'F';
					}
					break;
				case 2:			/* 33 digits */
					sb_put_hex(sb, x->tn_hi, 16);
					sb_put_hex(sb, x->tn_lo, 16);
					sb_putc(sb, '0');
					break;
				default:		/* not hex */
					sb_put_hex(sb, x->tn_hi, 16);
					sb_put_hex(sb, x->tn_lo, 15);
					sb_putc(sb, 'z');
			}
		}
		else
		{
			sb_put_hex(sb, x->tn_hi, 16);
			sb_put_hex(sb, x->tn_lo, 16);
		}
		sb_putc(sb, '"');
	}

	PUT_LIT(sb, ",\"unix_time\":");
	sb_put_i64(sb, cal->unix_day[x->day] + x->sod);
	PUT_LIT(sb, ",\"merch_lat\":");
	sb_put_fixed(sb, x->merch_lat_e6, 6);
	PUT_LIT(sb, ",\"merch_long\":");
	sb_put_fixed(sb, x->merch_long_e6, 6);
	PUT_LIT(sb, ",\"is_fraud\":");
	sb_putc(sb, x->is_fraud ? '1' : '0');
	if (bad == BAD_EXTRA_FIELD)
		PUT_LIT(sb, ",\"note\":\"manual entry\"");
	if (bad == BAD_TRAILING_COMMA)
		sb_putc(sb, ',');
	sb_putc(sb, '}');

	/* any proper prefix of an object is invalid JSON */
	if (bad == BAD_TRUNCATED)
		sb->len = 1 + (size_t) (cut % (sb->len - 2));
}

