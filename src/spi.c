/*-------------------------------------------------------------------------
 *
 * spi.c
 *	  How txpipe runs its statements: as whom, with which search_path, and
 *	  in which memory context.
 *
 * Routing, the workers and refresh act for roles other than the caller.
 * Each such stretch runs as the role that owns what it touches — the
 * pipeline's owner for its routed tables, the owner of txpipe's schema for
 * txpipe's own tables (rejects, batches, the inbox, queue positions) — under
 * SECURITY_RESTRICTED_OPERATION and with search_path = pg_catalog, pg_temp,
 * the way PostgreSQL runs VACUUM, ANALYZE, REINDEX and REFRESH MATERIALIZED
 * VIEW as a table's owner.  The restriction keeps code that the owner's
 * tables run (triggers, defaults, checks, index expressions) from changing
 * the session (SET ROLE, temporary objects, cursors left open); the pinned
 * path keeps the caller's objects (a pg_temp domain, a schema of its own
 * early in search_path) out of every name the statements resolve.  Every
 * statement is also schema-qualified: the pin is the second line of
 * defence, not the only one.
 *
 * Statements are prepared and run only inside such a stretch, so a kept
 * plan always finds the search_path it was made under and is not planned
 * again.  SPI leaves its own procedure context current after each call;
 * the helpers return to the caller's context, so a per-batch context really
 * holds the batch.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/syscache.h"

#define PINNED_SEARCH_PATH "pg_catalog, pg_temp"

/*
 * Switches to role under SECURITY_RESTRICTED_OPERATION with the pinned
 * search_path, saving what txpipe_leave() restores.  An error in between
 * needs no leave: transaction and subtransaction abort restore both the
 * user and the settings.
 */
void
txpipe_enter(Oid role, TxIdentity *save)
{
	GetUserIdAndSecContext(&save->userid, &save->sec);
	SetUserIdAndSecContext(role, save->sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", PINNED_SEARCH_PATH, PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
}

void
txpipe_leave(TxIdentity *save)
{
	AtEOXact_GUC(false, save->nest);
	SetUserIdAndSecContext(save->userid, save->sec);
}

/*
 * The role that owns txpipe's own tables: the owner of schema txpipe,
 * which CREATE EXTENSION made (the install script refuses a schema that
 * was there before it).
 */
Oid
txpipe_catalog_owner(void)
{
	Oid			nsp = get_namespace_oid("txpipe", false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * May code owned by role run while txpipe acts for owner?  Routing and
 * refresh run as a pipeline's owner, so whatever a routed table runs
 * (triggers, defaults, checks, index expressions) and the refresh function
 * run as that role: they must be the owner's own, or belong to a role the
 * owner is a member of.  Superuser rights do not count: a superuser's
 * pipeline never runs an ordinary role's code.
 */
bool
txpipe_owner_may_run(Oid owner, Oid role)
{
	return role == owner || is_member_of_role_nosuper(owner, role);
}

/* the owner of a function; InvalidOid when it does not exist */
Oid
txpipe_func_owner(Oid fn)
{
	HeapTuple	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		return InvalidOid;
	owner = ((Form_pg_proc) GETSTRUCT(tup))->proowner;
	ReleaseSysCache(tup);
	return owner;
}

/* enters as the owner of txpipe's own tables */
void
txpipe_enter_catalog(TxIdentity *save)
{
	txpipe_enter(txpipe_catalog_owner(), save);
}

/* prepares and keeps sql with the plan cache's cursorOptions */
static SPIPlanPtr
keep_plan(const char *sql, int nargs, Oid *argtypes, int cursorOptions)
{
	MemoryContext cxt = CurrentMemoryContext;
	SPIPlanPtr	p = SPI_prepare_cursor(sql, nargs, argtypes, cursorOptions);

	if (p == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(p) != 0)
		elog(ERROR, "SPI_keepplan failed for \"%s\"", sql);
	MemoryContextSwitchTo(cxt);
	return p;
}

/*
 * Prepares and keeps a statement.  Call inside txpipe_enter(); the
 * statement names every object with its schema.
 */
SPIPlanPtr
txpipe_spi_keep(const char *sql, int nargs, Oid *argtypes)
{
	return keep_plan(sql, nargs, argtypes, 0);
}

/*
 * The same for a statement whose plan does not depend on its parameters'
 * values: one lookup or lock per key of the arrays it is given, through
 * the index that the keys name.  It is planned once, for any values
 * (CURSOR_OPT_GENERIC_PLAN), not again at every execution: with the
 * default plan cache mode PostgreSQL plans such a statement anew for each
 * call while the custom plans look cheaper than the generic one, which
 * for a queue batch of a few records was a third of the batch's work.
 */
SPIPlanPtr
txpipe_spi_keep_generic(const char *sql, int nargs, Oid *argtypes)
{
	return keep_plan(sql, nargs, argtypes, CURSOR_OPT_GENERIC_PLAN);
}

/*
 * Runs a kept statement; fails unless it returns expect (an SPI_OK_*
 * code).  Returns with the caller's memory context current; the result,
 * if any, is in SPI_tuptable until the next call or SPI_freetuptable().
 */
uint64
txpipe_spi_run(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only,
			   long count, int expect, const char *what)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = SPI_execute_plan(plan, args, nulls, read_only, count);

	MemoryContextSwitchTo(cxt);
	if (rc != expect)
		elog(ERROR, "could not %s: %s", what, SPI_result_code_string(rc));
	return SPI_processed;
}

/* SPI_execute_plan, returning to the caller's memory context */
int
txpipe_spi_exec(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only, long count)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			rc = SPI_execute_plan(plan, args, nulls, read_only, count);

	MemoryContextSwitchTo(cxt);
	return rc;
}

/* SPI_connect, staying in the caller's memory context */
void
txpipe_spi_connect(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(cxt);
}
