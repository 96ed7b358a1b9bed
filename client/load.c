/*
 * txpipe load: streams NDJSON or CSV files into a pipeline through
 * COPY txpipe_in.<pipeline>, one transaction per file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "load.h"

#define READ_SIZE (256 * 1024)
#define COPY_CHUNK (256 * 1024)	/* bytes per PQputCopyData call */
#define RAW_CHUNK (4 * 1024 * 1024) /* bytes per txpipe.ingest_raw call */

typedef struct counts
{
	int64_t		received;
	int64_t		accepted;
	int64_t		rejected;
	int64_t		duplicates;
} counts;

typedef struct loader
{
	const load_options *opt;
	PGconn	   *conn;
	char	   *copy_sql;
	const char *contract;
	const char *file;
	strbuf		copy;			/* lines waiting for PQputCopyData */
	strbuf		raw;			/* lines COPY cannot carry, joined by \n */
	strbuf		pending;		/* a line split across two reads */
	int			in_copy;
	int			first_line;
	uint64_t	segment_lines;
	uint64_t	lines;
	counts		base;			/* xact_counts when the current COPY began */
	counts		file_counts;
} loader;

static void
counts_add(counts *to, const counts *a, int sign)
{
	to->received += sign * a->received;
	to->accepted += sign * a->accepted;
	to->rejected += sign * a->rejected;
	to->duplicates += sign * a->duplicates;
}

static pg_noreturn void
fail(loader *L, PGresult *res)
{
	/* exiting closes the connection: the server rolls the file back */
	db_die(L->conn, res, L->file);
}

static counts
xact_counts(loader *L)
{
	const char *params[1] = {L->opt->pipeline};
	PGresult   *res;
	counts		c;

	res = PQexecParams(L->conn,
					   "SELECT received, accepted, rejected, duplicates FROM txpipe.xact_counts($1)",
					   1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail(L, res);
	c.received = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	c.accepted = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	c.rejected = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	c.duplicates = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
	PQclear(res);
	return c;
}

static void
exec_command(loader *L, const char *sql, const char *expect_status)
{
	PGresult   *res = PQexec(L->conn, sql);

	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fail(L, res);
	/* COMMIT of an aborted transaction reports ROLLBACK without an error */
	if (expect_status && strcmp(PQcmdStatus(res), expect_status) != 0)
		die("%s: %s ended in %s", L->file, sql, PQcmdStatus(res));
	PQclear(res);
}

static void
start_copy(loader *L)
{
	PGresult   *res = PQexec(L->conn, L->copy_sql);

	if (PQresultStatus(res) != PGRES_COPY_IN)
		fail(L, res);
	PQclear(res);
	L->in_copy = 1;
	L->segment_lines = 0;
}

static void
send_copy(loader *L)
{
	if (L->copy.len == 0)
		return;
	if (PQputCopyData(L->conn, L->copy.data, (int) L->copy.len) != 1)
		fail(L, NULL);
	L->copy.len = 0;
}

/*
 * Ends the COPY statement: everything it carried is routed once it returns,
 * and the transaction's counts grow by exactly what it routed.
 */
static void
end_copy(loader *L)
{
	PGresult   *res;
	counts		now;
	int			ok = 1;

	if (!L->in_copy)
		return;
	send_copy(L);
	if (PQputCopyEnd(L->conn, NULL) != 1)
		fail(L, NULL);
	L->in_copy = 0;
	while ((res = PQgetResult(L->conn)) != NULL)
	{
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
		{
			if (ok)
				db_die(L->conn, res, L->file);
			ok = 0;
		}
		PQclear(res);
	}
	now = xact_counts(L);
	counts_add(&L->file_counts, &now, 1);
	counts_add(&L->file_counts, &L->base, -1);
	L->base = now;
}

/*
 * Lines COPY cannot carry go through txpipe.ingest_raw() as bytea, in the
 * same transaction, so the server sees their exact bytes and rejects them
 * with a reason instead of COPY failing the whole file.
 */
static void
flush_raw(loader *L)
{
	const char *params[2] = {L->opt->pipeline, L->raw.data};
	int			lengths[2] = {0, (int) L->raw.len};
	int			formats[2] = {0, 1};
	PGresult   *res;
	counts		c;

	if (L->raw.len == 0)
		return;
	end_copy(L);
	res = PQexecParams(L->conn,
					   "SELECT accepted, rejected, duplicates FROM txpipe.ingest_raw($1, $2::bytea)",
					   2, NULL, params, lengths, formats, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
		fail(L, res);
	c.accepted = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	c.rejected = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	c.duplicates = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
	c.received = c.accepted + c.rejected + c.duplicates;
	PQclear(res);
	counts_add(&L->file_counts, &c, 1);
	/* whether or not xact_counts sees these rows, count them once */
	L->base = xact_counts(L);
	L->raw.len = 0;
}

/*
 * Length of the UTF-8 sequence at p[i]: 1 to 4, 0 when it is not valid
 * UTF-8 (overlong forms, surrogates and code points above U+10FFFF are
 * not), -1 when the n bytes end inside a sequence that may be valid.
 */
static int
utf8_sequence(const unsigned char *p, size_t i, size_t n)
{
	unsigned char c = p[i];
	int			len,
				k;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	for (k = 1; k < len; k++)
	{
		if (i + k >= n)
			return -1;
		if ((p[i + k] & 0xC0) != 0x80)
			return 0;
	}
	if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xF0 && p[i + 1] < 0x90))
		return 0;				/* overlong */
	if (c == 0xED && p[i + 1] >= 0xA0)
		return 0;				/* surrogate */
	if (c == 0xF4 && p[i + 1] >= 0x90)
		return 0;				/* above U+10FFFF */
	return len;
}

/*
 * True when COPY in CSV mode with QUOTE 0x01 and DELIMITER 0x02 hands the
 * line to the server byte for byte: valid UTF-8, no control byte but TAB
 * (this also excludes the quote and delimiter bytes), and not the end
 * marker \. on its own.
 */
static int
copy_safe(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *) s;
	size_t		i = 0;

	if (n == 2 && s[0] == '\\' && s[1] == '.')
		return 0;
	while (i < n)
	{
		unsigned char c = p[i];
		int			len;

		if (c >= 0x20 && c < 0x80)
		{
			i++;
			continue;
		}
		if (c < 0x20)
		{
			if (c != '\t')
				return 0;
			i++;
			continue;
		}
		len = utf8_sequence(p, i, n);
		if (len <= 0)
			return 0;
		i += len;
	}
	return 1;
}

static int
blank(const char *s, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

static void
take_line(const char *line, size_t len, void *arg)
{
	loader	   *L = arg;

	if (L->first_line)
	{
		L->first_line = 0;
		if (len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0)
		{
			line += 3;
			len -= 3;
		}
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (blank(line, len))
		return;
	L->lines++;
	if (!copy_safe(line, len))
	{
		if (L->raw.len > 0)
			sb_putc(&L->raw, '\n');
		sb_put(&L->raw, line, len);
		if (L->raw.len >= RAW_CHUNK)
			flush_raw(L);
		return;
	}
	if (!L->in_copy)
		start_copy(L);
	sb_put(&L->copy, line, len);
	sb_putc(&L->copy, '\n');
	if (L->copy.len >= COPY_CHUNK)
		send_copy(L);
	if (++L->segment_lines == L->opt->batch_lines)
		end_copy(L);
}

static void
split_lines(loader *L, const char *buf, size_t n)
{
	const char *p = buf;
	const char *end = buf + n;
	const char *nl;

	while ((nl = memchr(p, '\n', end - p)) != NULL)
	{
		if (L->pending.len > 0)
		{
			sb_put(&L->pending, p, nl - p);
			take_line(L->pending.data, L->pending.len, L);
			L->pending.len = 0;
		}
		else
			take_line(p, nl - p, L);
		p = nl + 1;
	}
	sb_put(&L->pending, p, end - p);
}

static int
is_csv(const load_options *opt, const char *file)
{
	size_t		n = strlen(file);

	if (opt->format != INPUT_AUTO)
		return opt->format == INPUT_CSV;
	return n > 4 && strcasecmp(file + n - 4, ".csv") == 0;
}

static void
print_counts(const char *label, const counts *c, double seconds)
{
	printf("%s: %lld received, %lld accepted, %lld rejected, %lld duplicates in %.1f s (%.0f records/s)\n",
		   label, (long long) c->received, (long long) c->accepted,
		   (long long) c->rejected, (long long) c->duplicates, seconds,
		   seconds > 0 ? c->received / seconds : 0.0);
	fflush(stdout);
}

/*
 * The decoding of one file.  Under --encoding auto a CSV file is UTF-8
 * until a byte that is not UTF-8 comes before any non-ASCII UTF-8: what
 * came before it was ASCII, the same in ISO-8859-1, and the file is read as
 * ISO-8859-1 from that byte on.  Once a non-ASCII UTF-8 sequence has been
 * read the file stays UTF-8, and a line that is not valid UTF-8 becomes an
 * invalid_utf8 reject.
 */
typedef enum sniff_state
{
	SNIFF_ASCII,				/* auto, and only ASCII so far */
	SNIFF_UTF8,
	SNIFF_LATIN1
} sniff_state;

#define CARRY_MAX 4				/* a UTF-8 sequence split between reads */

typedef struct decoder
{
	sniff_state state;
	int			ncarry;
	int64_t		offset;			/* of the first byte not yet decoded */
	char		carry[CARRY_MAX];
	char	   *conv;			/* 2 * (READ_SIZE + CARRY_MAX) bytes */
} decoder;

static void
decoder_switch(loader *L, decoder *d, int64_t at, unsigned char byte)
{
	d->state = SNIFF_LATIN1;
	fprintf(stderr, "txpipe: %s: byte 0x%02X at offset %lld is not UTF-8: reading the file as ISO-8859-1 (--encoding utf8 or latin1 says which)\n",
			L->file, byte, (long long) at);
}

/*
 * Decodes the n bytes at in, which has CARRY_MAX bytes of room before it
 * for what the last call carried, into UTF-8: *out and the returned length
 * are what to parse.  At the end of the file (eof) an incomplete sequence
 * is not UTF-8.
 */
static size_t
decoder_run(loader *L, decoder *d, char *in, size_t n, int eof, const char **out)
{
	const unsigned char *p;
	size_t		i = 0,
				len;

	if (d->state == SNIFF_LATIN1)
	{
		len = latin1_to_utf8(in, n, d->conv);
		d->offset += n;
		*out = d->conv;
		return len;
	}
	if (d->state == SNIFF_UTF8)
	{
		d->offset += n;
		*out = in;
		return n;
	}
	/* the carried bytes go just before in */
	memcpy(in - d->ncarry, d->carry, d->ncarry);
	in -= d->ncarry;
	n += d->ncarry;
	d->ncarry = 0;
	p = (const unsigned char *) in;
	while (i < n)
	{
		uint64_t	word;
		int			seq;

		if (i + 8 <= n)
		{
			memcpy(&word, p + i, 8);
			if ((word & UINT64_C(0x8080808080808080)) == 0)
			{
				i += 8;
				continue;
			}
		}
		if (p[i] < 0x80)
		{
			i++;
			continue;
		}
		seq = utf8_sequence(p, i, n);
		if (seq > 0)
		{
			d->state = SNIFF_UTF8;
			break;
		}
		if (seq < 0 && !eof)
		{
			/* carry the start of the sequence into the next read */
			d->ncarry = (int) (n - i);
			memcpy(d->carry, in + i, d->ncarry);
			d->offset += i;
			*out = in;
			return i;
		}
		decoder_switch(L, d, d->offset + (int64_t) i, p[i]);
		memcpy(d->conv, in, i);
		len = i + latin1_to_utf8(in + i, n - i, d->conv + i);
		d->offset += n;
		*out = d->conv;
		return len;
	}
	d->offset += n;
	*out = in;
	return n;
}

static void
load_file(loader *L, const char *path, counts *total)
{
	int			fd;
	struct stat st;
	int64_t		size = -1;
	int64_t		done = 0;
	char	   *buf = xmalloc(CARRY_MAX + READ_SIZE);
	decoder		dec;
	csv_converter *csv = NULL;
	progress	prog;
	double		started;
	int			show;

	if (strcmp(path, "-") == 0)
	{
		fd = STDIN_FILENO;
		L->file = "stdin";
	}
	else
	{
		fd = open(path, O_RDONLY);
		if (fd < 0)
			die("could not open \"%s\": %m", path);
		L->file = path;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
		size = st.st_size;
	if (is_csv(L->opt, path))
		csv = csv_new(L->contract, L->file);
	/*
	 * JSON is UTF-8 by definition (RFC 8259), so under auto an NDJSON file
	 * is read as UTF-8 and a line that is not becomes an invalid_utf8
	 * reject; a file that went through other tools may be ISO-8859-1, and
	 * --encoding latin1 says so.  A CSV file under auto is sniffed.
	 */
	memset(&dec, 0, sizeof(dec));
	dec.state = L->opt->encoding == ENCODING_LATIN1 ? SNIFF_LATIN1 :
		L->opt->encoding == ENCODING_UTF8 || !csv ? SNIFF_UTF8 : SNIFF_ASCII;
	if (dec.state != SNIFF_UTF8)
		dec.conv = xmalloc(2 * (CARRY_MAX + READ_SIZE));

	L->first_line = 1;
	L->lines = 0;
	L->pending.len = 0;
	memset(&L->base, 0, sizeof(L->base));
	memset(&L->file_counts, 0, sizeof(L->file_counts));
	show = L->opt->progress < 0 ? isatty(STDERR_FILENO) : L->opt->progress;
	started = now_seconds();
	progress_start(&prog, show, L->file, size);

	exec_command(L, "BEGIN", NULL);
	for (;;)
	{
		ssize_t		got = read(fd, buf + CARRY_MAX, READ_SIZE);
		const char *data;
		size_t		len;

		if (got < 0)
		{
			if (errno == EINTR)
				continue;
			die("could not read \"%s\": %m", L->file);
		}
		len = decoder_run(L, &dec, buf + CARRY_MAX, (size_t) got, got == 0, &data);
		if (csv)
			csv_feed(csv, data, len, take_line, L);
		else
			split_lines(L, data, len);
		if (got == 0)
			break;
		done += got;
		progress_update(&prog, done, L->lines);
	}
	if (csv)
		csv_finish(csv, take_line, L);
	else if (L->pending.len > 0)
		take_line(L->pending.data, L->pending.len, L);
	end_copy(L);
	flush_raw(L);
	exec_command(L, "COMMIT", "COMMIT");
	progress_clear(&prog);

	print_counts(L->file, &L->file_counts, now_seconds() - started);
	counts_add(total, &L->file_counts, 1);
	if (csv)
		csv_free(csv);
	if (fd != STDIN_FILENO)
		close(fd);
	free(buf);
	free(dec.conv);
}

int
load_files(const load_options *opt)
{
	loader		L;
	char	   *ident;
	counts		total = {0};
	double		started = now_seconds();
	int			i;

	/* a missing file should not be found after the files before it committed */
	for (i = 0; i < opt->n_files; i++)
		if (strcmp(opt->files[i], "-") != 0 && access(opt->files[i], R_OK) != 0)
			die("could not open \"%s\": %m", opt->files[i]);

	memset(&L, 0, sizeof(L));
	L.opt = opt;
	L.conn = db_connect(opt->conninfo);
	L.contract = db_pipeline_contract(L.conn, opt->pipeline);

	ident = PQescapeIdentifier(L.conn, opt->pipeline, strlen(opt->pipeline));
	if (ident == NULL)
		db_die(L.conn, NULL, NULL);
	L.copy_sql = xmalloc(strlen(ident) + 128);
	sprintf(L.copy_sql,
			"COPY txpipe_in.%s (doc) FROM STDIN WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')",
			ident);
	PQfreemem(ident);

	sb_init(&L.copy, COPY_CHUNK + 64 * 1024);
	sb_init(&L.raw, 4096);
	sb_init(&L.pending, 4096);
	for (i = 0; i < opt->n_files; i++)
		load_file(&L, opt->files[i], &total);
	print_counts(opt->pipeline, &total, now_seconds() - started);

	sb_free(&L.copy);
	sb_free(&L.raw);
	sb_free(&L.pending);
	free(L.copy_sql);
	free((char *) L.contract);
	PQfinish(L.conn);
	return 0;
}
