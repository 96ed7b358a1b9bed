/*
 * txpipe stream: replays NDJSON files as a live stream through the queue,
 * txpipe.enqueue(), at a given rate, from one or more connections.
 *
 * Each call sends --batch lines, exactly as they are, as one text[] in its
 * own transaction; the workers decode them, so a malformed line becomes a
 * reject like on any other path.  A call the server refuses because a line
 * is not valid text (bytes that are not UTF-8) is split in halves and sent
 * again until the refused lines are alone; each such line goes through
 * txpipe.ingest_raw() instead, where it becomes a reject like on any other
 * path: nothing is dropped.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "stream.h"

typedef struct counts
{
	uint64_t	sent;
	uint64_t	queued;
	uint64_t	refused;		/* not valid text: sent to ingest_raw */
} counts;

/* a PostgreSQL array literal of the lines, as text */
static void
array_literal(strbuf *sb, char **lines, size_t *lens, int n)
{
	sb->len = 0;
	sb_putc(sb, '{');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			sb_putc(sb, ',');
		sb_putc(sb, '"');
		for (size_t k = 0; k < lens[i]; k++)
		{
			char		c = lines[i][k];

			if (c == '"' || c == '\\')
				sb_putc(sb, '\\');
			sb_putc(sb, c);
		}
		sb_putc(sb, '"');
	}
	sb_putc(sb, '}');
	sb_putc(sb, '\0');
}

static int
is_refusal(PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	/* bytes that are not valid in the server encoding (22021) */
	return state && strncmp(state, "22", 2) == 0;
}

static void
send_raw(PGconn *conn, const char *pipeline, const char *line, size_t len, counts *c)
{
	const char *params[2] = {pipeline, line};
	int			lengths[2] = {0, (int) len};
	int			formats[2] = {0, 1};
	PGresult   *res;

	res = PQexecParams(conn, "SELECT 1 FROM txpipe.ingest_raw($1, $2::bytea)", 2, NULL, params,
					   lengths, formats, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		db_die(conn, res, "txpipe.ingest_raw");
	PQclear(res);
	c->refused++;
}

static void
send_batch(PGconn *conn, const char *pipeline, char **lines, size_t *lens, int n,
		   strbuf *sb, counts *c)
{
	const char *params[2];
	PGresult   *res;

	array_literal(sb, lines, lens, n);
	params[0] = pipeline;
	params[1] = sb->data;
	res = PQexecParams(conn, "SELECT txpipe.enqueue($1, $2::text[])", 2, NULL, params,
					   NULL, NULL, 0);
	c->sent += n;
	if (PQresultStatus(res) == PGRES_TUPLES_OK)
	{
		c->queued += n;
		PQclear(res);
		return;
	}
	if (!is_refusal(res))
		db_die(conn, res, "txpipe.enqueue");
	PQclear(res);
	c->sent -= n;
	if (n == 1)
	{
		c->sent++;
		send_raw(conn, pipeline, lines[0], lens[0], c);
		return;
	}
	/* halves, until the lines the cast refuses are alone */
	send_batch(conn, pipeline, lines, lens, n / 2, sb, c);
	send_batch(conn, pipeline, lines + n / 2, lens + n / 2, n - n / 2, sb, c);
}

static void
sleep_until(double t)
{
	double		now = now_seconds();
	struct timespec ts;

	if (t <= now)
		return;
	ts.tv_sec = (time_t) (t - now);
	ts.tv_nsec = (long) ((t - now - (double) ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* one connection: every n-th batch of every file, starting with batch k */
static counts
stream_part(const stream_options *opt, int k, int n, double start)
{
	PGconn	   *conn = db_connect(opt->conninfo);
	counts		c = {0};
	strbuf		sb;
	int			batch = opt->batch > 0 ? opt->batch : 1;
	char	  **lines = xcalloc(batch, sizeof(char *));
	size_t	   *lens = xcalloc(batch, sizeof(size_t));
	uint64_t	record = 0;		/* records of all connections so far */
	uint64_t	batchno = 0;

	sb_init(&sb, 4096);
	for (int f = 0; f < opt->n_files; f++)
	{
		FILE	   *in = fopen(opt->files[f], "r");
		char	   *line = NULL;
		size_t		cap = 0;
		ssize_t		len;
		int			m = 0;

		if (in == NULL)
			die("%s: %s", opt->files[f], strerror(errno));
		for (;;)
		{
			len = getline(&line, &cap, in);
			if (len > 0 && line[len - 1] == '\n')
				len--;
			if (len > 0 && line[len - 1] == '\r')
				len--;
			if (len > 0)
			{
				if (batchno % n == (uint64_t) k)
				{
					lines[m] = xmalloc(len + 1);
					memcpy(lines[m], line, len);
					lines[m][len] = '\0';
					lens[m] = len;
				}
				m++;
				record++;
			}
			if (m == batch || (len < 0 && m > 0))
			{
				if (batchno % n == (uint64_t) k)
				{
					/* open loop: this batch is due when its first record is */
					if (opt->rate > 0)
						sleep_until(start + (double) (record - m) / opt->rate);
					send_batch(conn, opt->pipeline, lines, lens, m, &sb, &c);
					for (int i = 0; i < m; i++)
						free(lines[i]);
				}
				batchno++;
				m = 0;
			}
			if (len < 0)
				break;
		}
		free(line);
		fclose(in);
	}
	sb_free(&sb);
	free(lines);
	free(lens);
	PQfinish(conn);
	return c;
}

int
stream_files(const stream_options *opt)
{
	int			clients = opt->clients > 0 ? opt->clients : 1;
	double		start = now_seconds() + 0.05;
	double		seconds;
	counts		total = {0};
	int			pipes[64][2];

	if (clients > 64)
		die("--clients: at most 64");
	/* fail early, in one place, on a missing pipeline or extension */
	PQfinish(db_connect(opt->conninfo));
	fflush(NULL);
	for (int k = 0; k < clients; k++)
	{
		pid_t		pid;

		if (pipe(pipes[k]) != 0)
			die("pipe: %s", strerror(errno));
		pid = fork();
		if (pid < 0)
			die("fork: %s", strerror(errno));
		if (pid == 0)
		{
			counts		c;

			close(pipes[k][0]);
			c = stream_part(opt, k, clients, start);
			if (write(pipes[k][1], &c, sizeof(c)) != (ssize_t) sizeof(c))
				_exit(1);
			_exit(0);
		}
		close(pipes[k][1]);
	}
	for (int k = 0; k < clients; k++)
	{
		counts		c;
		int			status;

		if (read(pipes[k][0], &c, sizeof(c)) != (ssize_t) sizeof(c))
			c = (counts) {0};
		close(pipes[k][0]);
		total.sent += c.sent;
		total.queued += c.queued;
		total.refused += c.refused;
		if (wait(&status) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			die("a streaming connection failed (see above)");
	}
	seconds = now_seconds() - start;
	printf("%s: %llu records streamed, %llu queued, %llu not valid text (sent to ingest_raw) in %.1f s (%.0f records/s)\n",
		   opt->pipeline, (unsigned long long) total.sent, (unsigned long long) total.queued,
		   (unsigned long long) total.refused, seconds,
		   seconds > 0 ? (double) total.sent / seconds : 0.0);
	return 0;
}
