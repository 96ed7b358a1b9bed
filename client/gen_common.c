/*
 * What the generators share: the line mix, the output, the summary file,
 * civil dates.
 */
#include <math.h>
#include <stdlib.h>

#include "gen_common.h"

void
mix_init(line_mix *m, const gen_options *opt, rng *lines)
{
	static char outbuf[1 << 20];
	uint64_t	n_bad = (uint64_t) llround(opt->bad * (double) opt->rows);
	uint64_t	n_dups = (uint64_t) llround(opt->dups * (double) opt->rows);
	int			i;

	memset(m, 0, sizeof(*m));
	m->lines = lines;
	if (n_bad > opt->rows)
		n_bad = opt->rows;
	if (n_dups > opt->rows - n_bad)
		n_dups = opt->rows - n_bad;
	m->left_valid = opt->rows - n_bad - n_dups;
	/* a re-send needs an original */
	if (m->left_valid == 0)
	{
		m->left_valid = n_dups;
		n_dups = 0;
	}
	m->left_bad = n_bad;
	m->left_dups = n_dups;

	m->output_path = opt->output_path;
	if (opt->output_path && strcmp(opt->output_path, "-") != 0)
	{
		m->out = fopen(opt->output_path, "w");
		if (m->out == NULL)
			die("could not open \"%s\": %m", opt->output_path);
	}
	else
		m->out = stdout;
	setvbuf(m->out, outbuf, _IOFBF, sizeof(outbuf));
	for (i = 0; i < GEN_RING_SIZE; i++)
		sb_init(&m->ring[i], 1024);
}

line_kind
mix_draw(line_mix *m)
{
	uint64_t	dups = m->ring_len > 0 ? m->left_dups : 0;
	uint64_t	k = rng_below(m->lines, m->left_valid + m->left_bad + dups);

	if (k < m->left_valid)
		return LINE_VALID;
	if (k < m->left_valid + m->left_bad)
		return LINE_BAD;
	return LINE_DUP;
}

static void
put_line(line_mix *m, const strbuf *sb)
{
	if (fwrite(sb->data, 1, sb->len, m->out) != sb->len || putc('\n', m->out) == EOF)
		die("could not write output: %m");
}

void
mix_put_bad(line_mix *m, const strbuf *sb)
{
	put_line(m, sb);
	m->n_bad++;
	m->left_bad--;
}

void
mix_put_dup(line_mix *m)
{
	int			back = (int) rng_below(m->lines, (uint64_t) m->ring_len);
	int			slot = (m->ring_next - 1 - back + GEN_RING_SIZE) % GEN_RING_SIZE;

	put_line(m, &m->ring[slot]);
	m->n_dups++;
	m->left_dups--;
}

void
mix_put_valid(line_mix *m)
{
	put_line(m, &m->ring[m->ring_next]);
	m->ring_next = (m->ring_next + 1) % GEN_RING_SIZE;
	if (m->ring_len < GEN_RING_SIZE)
		m->ring_len++;
	m->left_valid--;
	m->n_valid++;
}

void
mix_finish(line_mix *m)
{
	if (fflush(m->out) != 0 || ferror(m->out))
		die("could not write output: %m");
	if (m->out != stdout && fclose(m->out) != 0)
		die("could not write \"%s\": %m", m->output_path);
	m->out = NULL;
}

void
mix_free(line_mix *m)
{
	int			i;

	for (i = 0; i < GEN_RING_SIZE; i++)
		sb_free(&m->ring[i]);
}

json_object *
mix_summary(const line_mix *m, uint64_t rows, uint64_t own_dups)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "rows", json_object_new_int64((int64_t) rows));
	json_object_object_add(o, "valid", json_object_new_int64((int64_t) (m->n_valid - own_dups)));
	json_object_object_add(o, "bad", json_object_new_int64((int64_t) m->n_bad));
	json_object_object_add(o, "dups", json_object_new_int64((int64_t) (m->n_dups + own_dups)));
	json_object_object_add(o, "resent", json_object_new_int64((int64_t) m->n_dups));
	return o;
}

void
write_summary(json_object *summary, const char *path,
			  const char *const *kind_names, const uint64_t *kind_counts, int n_kinds)
{
	json_object *kinds = json_object_new_object();
	FILE	   *f;
	int			k;

	for (k = 0; k < n_kinds; k++)
		json_object_object_add(kinds, kind_names[k],
							   json_object_new_int64((int64_t) kind_counts[k]));
	json_object_object_add(summary, "bad_kinds", kinds);

	f = fopen(path, "w");
	if (f == NULL)
		die("could not open \"%s\": %m", path);
	fprintf(f, "%s\n", json_object_to_json_string_ext(summary, JSON_C_TO_STRING_PRETTY |
													  JSON_C_TO_STRING_NOSLASHESCAPE));
	if (fclose(f) != 0)
		die("could not write \"%s\": %m", path);
	json_object_put(summary);
}

int64_t
days_from_civil(int y, int m, int d)
{
	int			era,
				yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int64_t) era * 146097 + doe - 719468;
}

void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
	int64_t		era,
				doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yoe + era * 400 + (*m <= 2));
}

uint64_t
baseline_alerts(const int *counts, int n, int first, int history, double factor, int min_count)
{
	uint64_t	alerts = 0;

	if (first < 0)
		return 0;
	for (int w = first + history; w < n; w++)
	{
		int64_t		sum = 0;

		if (counts[w] < min_count)
			continue;
		for (int h = w - history; h < w; h++)
			sum += counts[h];
		if ((double) counts[w] > factor * (double) sum / history)
			alerts++;
	}
	return alerts;
}
