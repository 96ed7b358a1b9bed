/*
 * Shared declarations of the txpipe command-line client.
 */
#ifndef TXPIPE_COMMON_H
#define TXPIPE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <libpq-fe.h>

/* TXPIPE_VERSION comes from ../txpipe.control, through the Makefile */

#if defined(__GNUC__)
#define pg_noreturn __attribute__((noreturn))
#define printf_like(f, a) __attribute__((format(printf, f, a)))
#else
#define pg_noreturn
#define printf_like(f, a)
#endif

/* util.c */
pg_noreturn void die(const char *fmt,...) printf_like(1, 2);
void		warn_msg(const char *fmt,...) printf_like(1, 2);
void	   *xmalloc(size_t n);
void	   *xcalloc(size_t n, size_t size);
void	   *xrealloc(void *p, size_t n);
char	   *xstrdup(const char *s);
uint64_t	parse_count(const char *value, const char *option);
double		parse_fraction(const char *value, const char *option);
double		now_seconds(void);
/* collapses a multi-line libpq message into one line, in place */
char	   *one_line(char *msg);

/*
 * A growable byte buffer; the generators and the loader build every output
 * line in one so that a line costs no allocation once the buffer is warm.
 */
typedef struct strbuf
{
	char	   *data;
	size_t		len;
	size_t		cap;
} strbuf;

void		sb_init(strbuf *sb, size_t cap);
void		sb_grow(strbuf *sb, size_t need);
void		sb_free(strbuf *sb);
void		sb_put_u64(strbuf *sb, uint64_t v);
void		sb_put_i64(strbuf *sb, int64_t v);
/* v / 10^decimals written exactly, e.g. (-1234, 2) -> "-12.34" */
void		sb_put_fixed(strbuf *sb, int64_t v, int decimals);
/* a JSON string literal with the escapes JSON requires */
void		sb_put_json_string(strbuf *sb, const char *s, size_t len);

static inline void
sb_reserve(strbuf *sb, size_t n)
{
	if (sb->len + n > sb->cap)
		sb_grow(sb, sb->len + n);
}

static inline void
sb_putc(strbuf *sb, char c)
{
	sb_reserve(sb, 1);
	sb->data[sb->len++] = c;
}

static inline void
sb_put(strbuf *sb, const char *s, size_t n)
{
	sb_reserve(sb, n);
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
}

static inline void
sb_puts(strbuf *sb, const char *s)
{
	sb_put(sb, s, strlen(s));
}

/* a string literal, its length known at compile time */
#define PUT_LIT(sb, s) sb_put((sb), (s), sizeof(s) - 1)

/* v (0..99) as two digits */
static inline void
sb_put_2d(strbuf *sb, int v)
{
	sb_putc(sb, (char) ('0' + v / 10));
	sb_putc(sb, (char) ('0' + v % 10));
}

/* the low ndigits hex digits of v, lower case */
void		sb_put_hex(strbuf *sb, uint64_t v, int ndigits);

/*
 * A set of 64-bit hashes: the generators use it to keep names, numbers and
 * keys unique.  Two different keys with the same 64-bit hash count as equal;
 * the only effect is one more redraw.
 */
typedef struct hashset
{
	uint64_t   *slots;
	size_t		cap;
	size_t		n;
} hashset;

void		hs_init(hashset *hs, size_t expected);
/* returns 1 if h was added, 0 if it was already there */
int			hs_add(hashset *hs, uint64_t h);
void		hs_free(hashset *hs);
uint64_t	hash_bytes(const char *s, size_t n, uint64_t seed);

/* db.c */
PGconn	   *db_connect(const char *conninfo);
/*
 * Fails with a clear message when the pipeline or the extension is missing;
 * returns the pipeline's contract as JSON text (caller frees).
 */
char	   *db_pipeline_contract(PGconn *conn, const char *pipeline);
pg_noreturn void db_die(PGconn *conn, PGresult *res, const char *context);

/* load.c */
typedef enum input_format
{
	INPUT_AUTO,					/* CSV when the name ends in .csv */
	INPUT_NDJSON,
	INPUT_CSV
} input_format;

typedef enum file_encoding
{
	ENCODING_AUTO,				/* UTF-8 unless the file is not: then ISO-8859-1 */
	ENCODING_UTF8,
	ENCODING_LATIN1
} file_encoding;

typedef struct load_options
{
	const char *conninfo;
	const char *pipeline;
	char	  **files;
	int			n_files;
	uint64_t	batch_lines;	/* lines per COPY statement; 0: one per file */
	input_format format;
	file_encoding encoding;
	int			progress;		/* -1: on a terminal only */
} load_options;

int			load_files(const load_options *opt);

/* stats.c */
int			show_stats(const char *conninfo, const char *pipeline);

/* alerts.c */
int			show_alerts(const char *conninfo, const char *pipeline, int follow);

/* gen_cards.c, gen_clicks.c, gen_retail.c */
typedef struct gen_options
{
	uint64_t	rows;
	uint64_t	seed;
	double		bad;
	double		dups;
	uint64_t	cards;			/* cards only */
	const char *summary_path;
	const char *output_path;
} gen_options;

int			gen_cards(const gen_options *opt);
int			gen_clicks(const gen_options *opt);
int			gen_retail(const gen_options *opt);

#endif
