#include <stdio.h>
#include <stdlib.h>

#include "common.h"

PGconn *
db_connect(const char *conninfo)
{
	const char *keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {conninfo, "txpipe", NULL};
	PGconn	   *conn;

	/* expand_dbname: -d takes a name, key=value pairs or a URI */
	conn = PQconnectdbParams(keywords, values, 1);
	if (conn == NULL)
		die("could not connect: out of memory");
	if (PQstatus(conn) != CONNECTION_OK)
	{
		char	   *msg = xstrdup(PQerrorMessage(conn));

		PQfinish(conn);
		die("could not connect: %s", one_line(msg));
	}
	/* records are UTF-8 JSON whatever the server's encoding */
	if (PQsetClientEncoding(conn, "UTF8") != 0)
	{
		char	   *msg = xstrdup(PQerrorMessage(conn));

		die("could not set client encoding to UTF8: %s", one_line(msg));
	}
	return conn;
}

void
db_die(PGconn *conn, PGresult *res, const char *context)
{
	char	   *msg = xstrdup(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
	const char *text;

	if (msg[0] == '\0')
	{
		free(msg);
		msg = xstrdup(PQerrorMessage(conn));
	}
	one_line(msg);
	text = msg;
	/* libpq's messages start with "ERROR:  "; keep the server's words only */
	if (strncmp(text, "ERROR: ", 7) == 0)
		text += 7;
	if (context)
		die("%s: %s", context, text);
	die("%s", text);
}

static int
missing_extension(PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	/* undefined_function, invalid_schema_name */
	return state && (strcmp(state, "42883") == 0 || strcmp(state, "3F000") == 0);
}

char *
db_pipeline_contract(PGconn *conn, const char *pipeline)
{
	const char *params[1] = {pipeline};
	PGresult   *res;
	char	   *contract;

	res = PQexecParams(conn, "SELECT txpipe.contract($1)", 1, NULL, params,
					   NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		if (missing_extension(res))
			die("the txpipe extension is not installed in database \"%s\"", PQdb(conn));
		db_die(conn, res, NULL);
	}
	if (PQntuples(res) != 1)
		die("pipeline \"%s\" does not exist", pipeline);
	/* a pipeline without a contract: nothing to type CSV cells by */
	contract = xstrdup(PQgetisnull(res, 0, 0) ? "{}" : PQgetvalue(res, 0, 0));
	PQclear(res);
	return contract;
}
