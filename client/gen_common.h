/*
 * What the generators share: the split of the lines into valid records,
 * bad records and re-sends, the output, the summary file, civil dates.
 */
#ifndef TXPIPE_GEN_COMMON_H
#define TXPIPE_GEN_COMMON_H

#include <stdio.h>

#include <json-c/json.h>

#include "common.h"
#include "rng.h"

#define GEN_RING_SIZE 256		/* how far back a re-sent record may come from */

typedef enum line_kind
{
	LINE_VALID,
	LINE_BAD,
	LINE_DUP
} line_kind;

/*
 * The lines of a generated file.  Valid records are written into the ring
 * (mix_valid_slot, then mix_put_valid) so that a later line can re-send
 * one of them byte for byte.
 */
typedef struct line_mix
{
	rng		   *lines;			/* draws line kinds and re-sent records */
	FILE	   *out;
	const char *output_path;
	strbuf		ring[GEN_RING_SIZE];
	int			ring_len;
	int			ring_next;
	/* lines still to write, by kind */
	uint64_t	left_valid;
	uint64_t	left_bad;
	uint64_t	left_dups;
	/* what was written */
	uint64_t	n_valid;
	uint64_t	n_bad;
	uint64_t	n_dups;
} line_mix;

/*
 * Splits opt->rows into valid records, bad records and re-sends (a re-send
 * needs an original, so with no valid record there is none) and opens the
 * output.  left_valid is then the number of valid records to make.
 */
void		mix_init(line_mix *m, const gen_options *opt, rng *lines);

/*
 * The kind of the next line, drawn in proportion to the lines left of each
 * kind, which spreads bad records and re-sends evenly through the file.
 * LINE_VALID only while valid records are left; LINE_DUP only once there
 * is a valid record to re-send.
 */
line_kind	mix_draw(line_mix *m);

/* the 1-based number of the line written next */
static inline uint64_t
mix_line_number(const line_mix *m)
{
	return m->n_valid + m->n_bad + m->n_dups + 1;
}

void		mix_put_bad(line_mix *m, const strbuf *sb);
/* re-sends one of the last GEN_RING_SIZE valid records */
void		mix_put_dup(line_mix *m);

static inline strbuf *
mix_valid_slot(line_mix *m)
{
	return &m->ring[m->ring_next];
}

/* writes the record built in mix_valid_slot() */
void		mix_put_valid(line_mix *m);

/* flushes and closes the output */
void		mix_finish(line_mix *m);
void		mix_free(line_mix *m);

/*
 * A summary object with rows, valid, bad, dups and resent; the generator
 * adds its own.  Records are identified by their content (or by a key
 * unique to each), so the figures are those a loader counts: valid, the
 * distinct valid records it stores; dups, every line that repeats one, the
 * re-sends (resent) and the own_dups valid lines the generator made as
 * exact copies of earlier ones.  rows = valid + bad + dups.
 */
json_object *mix_summary(const line_mix *m, uint64_t rows, uint64_t own_dups);

/* adds the counts of the bad kinds, writes the summary to path, frees it */
void		write_summary(json_object *summary, const char *path,
						  const char *const *kind_names, const uint64_t *kind_counts,
						  int n_kinds);

/* days since 1970-01-01 of a proleptic Gregorian date, and back */
int64_t		days_from_civil(int y, int m, int d);
void		civil_from_days(int64_t z, int *y, int *m, int *d);

/*
 * The alerts a baseline rule raises over counts[0..n-1] (records per
 * window, in order, first the first window with any): windows with at
 * least min_count records and more than factor times the mean of the
 * history windows before them, once a whole history is there.
 */
uint64_t	baseline_alerts(const int *counts, int n, int first, int history,
							double factor, int min_count);

#endif
