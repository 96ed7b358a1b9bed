/*
 * bench/listen: LISTEN on a channel and print each notification as it
 * arrives, with the time it was read from the socket.
 *
 *   bench/listen CHANNEL >arrivals.tsv
 *
 * Connects with the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE).
 * Prints "ready" on stderr once LISTEN has been executed, then one line per
 * notification on stdout: the arrival time in seconds since the epoch
 * (CLOCK_REALTIME, microseconds, the clock the server's commit timestamps
 * are taken from on the same machine), a tab, and the payload.  Stops on
 * SIGTERM or SIGINT and prints the number of notifications on stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include <libpq-fe.h>

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void) sig;
	stop = 1;
}

static double
now_epoch(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	PGconn	   *conn;
	PGresult   *res;
	char	   *ident;
	char	   *query;
	long		count = 0;
	struct sigaction sa;

	if (argc != 2)
	{
		fprintf(stderr, "usage: %s CHANNEL\n", argv[0]);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	conn = PQconnectdb("");
	if (PQstatus(conn) != CONNECTION_OK)
	{
		fprintf(stderr, "listen: %s", PQerrorMessage(conn));
		return 1;
	}
	ident = PQescapeIdentifier(conn, argv[1], strlen(argv[1]));
	if (ident == NULL)
	{
		fprintf(stderr, "listen: %s", PQerrorMessage(conn));
		return 1;
	}
	query = malloc(strlen(ident) + 8);
	if (query == NULL)
		return 1;
	sprintf(query, "LISTEN %s", ident);
	res = PQexec(conn, query);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
	{
		fprintf(stderr, "listen: %s", PQerrorMessage(conn));
		return 1;
	}
	PQclear(res);
	PQfreemem(ident);
	free(query);
	fprintf(stderr, "ready\n");

	while (!stop)
	{
		int			sock = PQsocket(conn);
		fd_set		in;
		struct timeval tv = {0, 100000};
		PGnotify   *n;
		double		t;

		FD_ZERO(&in);
		FD_SET(sock, &in);
		if (select(sock + 1, &in, NULL, NULL, &tv) < 0)
		{
			if (errno == EINTR)
				continue;
			perror("listen: select");
			return 1;
		}
		t = now_epoch();
		if (!PQconsumeInput(conn))
		{
			fprintf(stderr, "listen: %s", PQerrorMessage(conn));
			return 1;
		}
		while ((n = PQnotifies(conn)) != NULL)
		{
			printf("%.6f\t%s\n", t, n->extra);
			count++;
			PQfreemem(n);
		}
		fflush(stdout);
	}
	PQfinish(conn);
	fprintf(stderr, "%ld notifications\n", count);
	return 0;
}
