/*
 * Internals of txpipe load: the CSV-to-JSON converter and the progress bar.
 */
#ifndef TXPIPE_LOAD_H
#define TXPIPE_LOAD_H

#include <stdint.h>
#include <stddef.h>

/* receives one record as a line of JSON, without its newline */
typedef void (*record_fn) (const char *line, size_t len, void *arg);

typedef struct csv_converter csv_converter;

/*
 * contract is the pipeline's contract as JSON text; it decides which cells
 * become numbers or booleans.
 */
csv_converter *csv_new(const char *contract, const char *file);
void		csv_feed(csv_converter *c, const char *buf, size_t n, record_fn emit, void *arg);
/* the last record may lack its newline */
void		csv_finish(csv_converter *c, record_fn emit, void *arg);
uint64_t	csv_rows(const csv_converter *c);
void		csv_free(csv_converter *c);

/* ISO-8859-1 to UTF-8; out must hold 2 * n bytes; returns the output length */
size_t		latin1_to_utf8(const char *in, size_t n, char *out);

typedef struct progress
{
	int			enabled;
	const char *label;
	int64_t		total;			/* bytes, or -1 when unknown */
	double		started;
	double		last_draw;
	int			drawn;
} progress;

void		progress_start(progress *p, int enabled, const char *label, int64_t total);
void		progress_update(progress *p, int64_t done, uint64_t records);
void		progress_clear(progress *p);

#endif
