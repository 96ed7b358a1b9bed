/*
 * txpipe stats: txpipe.stats as an aligned table.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

/* type OIDs of pg_type.h; numbers are right-aligned */
static int
numeric_type(Oid type)
{
	switch (type)
	{
		case 20:				/* int8 */
		case 21:				/* int2 */
		case 23:				/* int4 */
		case 700:				/* float4 */
		case 701:				/* float8 */
		case 1700:				/* numeric */
			return 1;
		default:
			return 0;
	}
}

/* display width: UTF-8 continuation bytes take no column */
static int
text_width(const char *s)
{
	int			w = 0;

	for (; *s; s++)
		if (((unsigned char) *s & 0xC0) != 0x80)
			w++;
	return w;
}

static void
pad(int n)
{
	while (n-- > 0)
		putchar(' ');
}

int
show_stats(const char *conninfo, const char *pipeline)
{
	PGconn	   *conn = db_connect(conninfo);
	PGresult   *res;
	const char *params[1] = {pipeline};
	int			nf,
				nt,
				i,
				j;
	int		   *width;

	/* txpipe.stats is what a reader may read: no other query */
	if (pipeline)
		res = PQexecParams(conn, "SELECT * FROM txpipe.stats WHERE pipeline = $1",
						   1, NULL, params, NULL, NULL, 0);
	else
		res = PQexec(conn, "SELECT * FROM txpipe.stats ORDER BY pipeline");
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

		/* undefined_table, invalid_schema_name */
		if (state && (strcmp(state, "42P01") == 0 || strcmp(state, "3F000") == 0))
			die("the txpipe extension is not installed in database \"%s\"", PQdb(conn));
		db_die(conn, res, NULL);
	}

	nf = PQnfields(res);
	nt = PQntuples(res);
	if (pipeline && nt == 0)
		die("pipeline \"%s\" does not exist", pipeline);
	width = xcalloc(nf, sizeof(int));
	for (j = 0; j < nf; j++)
	{
		width[j] = text_width(PQfname(res, j));
		for (i = 0; i < nt; i++)
		{
			int			w = text_width(PQgetvalue(res, i, j));

			if (w > width[j])
				width[j] = w;
		}
	}

	for (j = 0; j < nf; j++)
	{
		const char *name = PQfname(res, j);
		int			gap = width[j] - text_width(name);

		if (j > 0)
			fputs("  ", stdout);
		if (numeric_type(PQftype(res, j)))
		{
			pad(gap);
			fputs(name, stdout);
		}
		else
		{
			fputs(name, stdout);
			if (j < nf - 1)
				pad(gap);
		}
	}
	putchar('\n');
	for (j = 0; j < nf; j++)
	{
		if (j > 0)
			fputs("  ", stdout);
		for (i = 0; i < width[j]; i++)
			putchar('-');
	}
	putchar('\n');
	for (i = 0; i < nt; i++)
	{
		for (j = 0; j < nf; j++)
		{
			const char *v = PQgetvalue(res, i, j);
			int			gap = width[j] - text_width(v);

			if (j > 0)
				fputs("  ", stdout);
			if (numeric_type(PQftype(res, j)))
			{
				pad(gap);
				fputs(v, stdout);
			}
			else
			{
				fputs(v, stdout);
				if (j < nf - 1)
					pad(gap);
			}
		}
		putchar('\n');
	}
	printf("(%d %s)\n", nt, nt == 1 ? "pipeline" : "pipelines");

	free(width);
	PQclear(res);
	PQfinish(conn);
	return 0;
}
