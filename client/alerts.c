/*
 * txpipe alerts: the open alerts of txpipe.open_alerts, one line each, and
 * with --follow every new one as NOTIFY txpipe_alerts brings it.
 *
 * The notifications are heard from before the open alerts are read, so an
 * alert committed in between is printed once: by the query, and its
 * notification, whose id is not above the last one printed, is skipped.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/select.h>

#include <json-c/json.h>

#include "common.h"

static volatile sig_atomic_t stop_requested = 0;

static void
on_signal(int sig)
{
	(void) sig;
	stop_requested = 1;
}

/* a JSON value as one line: strings without their quotes */
static const char *
json_text(json_object *o, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(o, field, &v) || v == NULL)
		return NULL;
	if (json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/*
 * One alert, from its JSON form (the NOTIFY payload, or a row of
 * open_alerts made into the same object): returns its id, or -1 when the
 * object is not an alert.
 */
static long long
print_alert(json_object *a, const char *pipeline, long long after)
{
	json_object *idv;
	long long	id;
	const char *p = json_text(a, "pipeline");
	const char *record = json_text(a, "record");
	const char *when = json_text(a, "event_time");

	if (!json_object_object_get_ex(a, "id", &idv) || !json_object_is_type(idv, json_type_int) || p == NULL)
		return -1;
	id = (long long) json_object_get_int64(idv);
	if (id <= after || (pipeline && strcmp(p, pipeline) != 0))
		return id;
	printf("#%lld  %s  %s  %s  %s  key %s",
		   id, when ? when : "-", p,
		   json_text(a, "severity") ? json_text(a, "severity") : "-",
		   json_text(a, "rule") ? json_text(a, "rule") : "-",
		   json_text(a, "key") ? json_text(a, "key") : "-");
	if (record)
		printf("  record %s", record);
	if (json_text(a, "details"))
		printf("  %s", json_text(a, "details"));
	putchar('\n');
	fflush(stdout);
	return id;
}

static long long
print_open(PGconn *conn, const char *pipeline)
{
	const char *params[1] = {pipeline};
	/* the notification's own shape, so both print alike */
	const char *sql =
		"SELECT pg_catalog.json_build_object('id', alert_id, 'pipeline', pipeline, 'rule', rule, "
		"  'severity', severity, 'key', key, 'record', record_key, 'event_time', event_time, "
		"  'window_start', window_start, 'details', details)::pg_catalog.text "
		"  FROM txpipe.open_alerts WHERE $1::pg_catalog.text IS NULL OR pipeline OPERATOR(pg_catalog.=) $1 "
		" ORDER BY alert_id";
	PGresult   *res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
	long long	last = 0;
	int			i;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* undefined_table, invalid_schema_name */
		if (state && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0))
			die("the txpipe extension (with alerts) is not installed in database \"%s\"", PQdb(conn));
		db_die(conn, res, NULL);
	}
	for (i = 0; i < PQntuples(res); i++)
	{
		json_object *a = json_tokener_parse(PQgetvalue(res, i, 0));
		long long	id = a ? print_alert(a, pipeline, 0) : -1;

		if (id > last)
			last = id;
		json_object_put(a);
	}
	if (PQntuples(res) == 0 && pipeline)
	{
		PGresult   *p = PQexecParams(conn, "SELECT 1 FROM txpipe.stats WHERE pipeline OPERATOR(pg_catalog.=) $1",
									 1, NULL, params, NULL, NULL, 0);

		if (PQresultStatus(p) == PGRES_TUPLES_OK && PQntuples(p) == 0)
			die("pipeline \"%s\" does not exist", pipeline);
		PQclear(p);
	}
	PQclear(res);
	return last;
}

int
show_alerts(const char *conninfo, const char *pipeline, int follow)
{
	PGconn	   *conn = db_connect(conninfo);
	long long	last;

	if (follow)
	{
		PGresult   *res = PQexec(conn, "LISTEN txpipe_alerts");

		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			db_die(conn, res, NULL);
		PQclear(res);
	}
	last = print_open(conn, pipeline);
	if (!follow)
	{
		PQfinish(conn);
		return 0;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	fprintf(stderr, "txpipe: listening on txpipe_alerts%s%s (Ctrl-C stops)\n",
			pipeline ? " for " : "", pipeline ? pipeline : "");
	while (!stop_requested)
	{
		int			sock = PQsocket(conn);
		fd_set		in;
		PGnotify   *n;

		if (sock < 0)
			die("lost the connection to the server");
		FD_ZERO(&in);
		FD_SET(sock, &in);
		if (select(sock + 1, &in, NULL, NULL, NULL) < 0)
		{
			if (errno == EINTR)
				continue;
			die("select() failed: %m");
		}
		if (!PQconsumeInput(conn))
			die("lost the connection to the server: %s", one_line(PQerrorMessage(conn)));
		while ((n = PQnotifies(conn)) != NULL)
		{
			json_object *a = json_tokener_parse(n->extra);
			long long	id = a ? print_alert(a, pipeline, last) : -1;

			if (id < 0)
				warn_msg("a txpipe_alerts notification that is not an alert: %.200s", n->extra);
			else if (id > last)
				last = id;
			json_object_put(a);
			PQfreemem(n);
		}
	}
	PQfinish(conn);
	return 0;
}
