/*-------------------------------------------------------------------------
 *
 * manage.c
 *	  The functions that change txpipe's catalog: create_pipeline(),
 *	  drop_pipeline(), grant_send(), revoke_send(), refresh() and
 *	  acknowledge_alert().
 *
 * No role but the owner of txpipe's tables writes them directly.  Each of
 * these functions is a C function that runs with the caller's rights,
 * remembers who the caller is, and runs its PL/pgSQL body
 * (txpipe._<name>, which only that owner may execute) as the owner of
 * txpipe's tables, passing the caller along.  The body decides what the
 * caller may do — a pipeline is changed only by its owner, a member of
 * that role or a superuser — and whatever runs code of a pipeline's owner
 * (the spec check, the refresh function) switches to that owner again.
 * (A SECURITY DEFINER function could not tell who called it.)
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

PG_FUNCTION_INFO_V1(txpipe_create_pipeline);
PG_FUNCTION_INFO_V1(txpipe_drop_pipeline);
PG_FUNCTION_INFO_V1(txpipe_grant_send);
PG_FUNCTION_INFO_V1(txpipe_revoke_send);
PG_FUNCTION_INFO_V1(txpipe_refresh);
PG_FUNCTION_INFO_V1(txpipe_call_refresh);
PG_FUNCTION_INFO_V1(txpipe_acknowledge_alert);

/*
 * Runs txpipe.<body>(the arguments..., the caller's oid) as the owner of
 * txpipe's tables and returns its result.
 */
static Datum
call_body(FunctionCallInfo fcinfo, const char *body, bool with_schema)
{
	Oid		   *argtypes;
	int			nargs;
	Oid			rettype = get_func_signature(fcinfo->flinfo->fn_oid, &argtypes, &nargs);
	Oid		   *types = palloc(sizeof(Oid) * (nargs + 2));
	Datum	   *values = palloc(sizeof(Datum) * (nargs + 2));
	char	   *nulls = palloc(nargs + 3);
	int			n = nargs;
	StringInfoData sql;
	TxIdentity	id;
	Datum		result = (Datum) 0;
	bool		isnull = true;
	MemoryContext cxt = CurrentMemoryContext;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT txpipe.%s(", quote_identifier(body));
	for (int i = 0; i < nargs; i++)
	{
		types[i] = argtypes[i];
		values[i] = fcinfo->args[i].value;
		nulls[i] = fcinfo->args[i].isnull ? 'n' : ' ';
		appendStringInfo(&sql, "$%d, ", i + 1);
	}
	if (with_schema)
	{
		/* the caller's current schema, as current_schema() tells it */
		List	   *path = fetch_search_path(false);
		char	   *nsp = path ? get_namespace_name(linitial_oid(path)) : NULL;

		types[n] = TEXTOID;
		values[n] = nsp ? CStringGetTextDatum(nsp) : (Datum) 0;
		nulls[n] = nsp ? ' ' : 'n';
		n++;
		appendStringInfo(&sql, "$%d, ", n);
	}
	types[n] = OIDOID;
	values[n] = ObjectIdGetDatum(GetUserId());
	nulls[n] = ' ';
	n++;
	nulls[n] = '\0';
	appendStringInfo(&sql, "$%d)", n);

	txpipe_spi_connect();
	txpipe_enter_catalog(&id);
	if (SPI_execute_with_args(sql.data, n, types, values, nulls, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run txpipe.%s", body);
	MemoryContextSwitchTo(cxt);
	txpipe_leave(&id);
	if (SPI_processed == 1 && rettype != VOIDOID)
	{
		result = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
		{
			int16		typlen;
			bool		typbyval;

			get_typlenbyval(rettype, &typlen, &typbyval);
			result = datumCopy(result, typbyval, typlen);
		}
	}
	SPI_finish();
	if (rettype == VOIDOID)
		PG_RETURN_VOID();
	if (isnull)
		PG_RETURN_NULL();
	return result;
}

Datum
txpipe_create_pipeline(PG_FUNCTION_ARGS)
{
	/* a worker for the new pipeline (it may take NOTIFY), if none runs */
	(void) txpipe_launch_want();
	return call_body(fcinfo, "_create_pipeline", true);
}

Datum
txpipe_drop_pipeline(PG_FUNCTION_ARGS)
{
	/* the outlier histories this transaction keeps, written before they go */
	txpipe_alerts_flush();
	return call_body(fcinfo, "_drop_pipeline", false);
}

Datum
txpipe_grant_send(PG_FUNCTION_ARGS)
{
	return call_body(fcinfo, "_grant_send", false);
}

Datum
txpipe_revoke_send(PG_FUNCTION_ARGS)
{
	return call_body(fcinfo, "_revoke_send", false);
}

Datum
txpipe_refresh(PG_FUNCTION_ARGS)
{
	return call_body(fcinfo, "_refresh", false);
}

Datum
txpipe_acknowledge_alert(PG_FUNCTION_ARGS)
{
	return call_body(fcinfo, "_acknowledge_alert", false);
}

/*
 * txpipe._call_refresh(func regprocedure, lo bigint, hi bigint,
 * changed bigint[], owner oid): runs a pipeline's refresh function as the
 * pipeline's owner, under SECURITY_RESTRICTED_OPERATION with the pinned
 * search_path: func(lo, hi, changed) when it takes the changed ids,
 * func(lo, hi) otherwise.  Only the owner of txpipe's tables may execute
 * it; the function must belong to the pipeline's owner (or to a role it is
 * a member of).
 */
Datum
txpipe_call_refresh(PG_FUNCTION_ARGS)
{
	Oid			func = PG_GETARG_OID(0);
	int64		lo = PG_GETARG_INT64(1);
	int64		hi = PG_GETARG_INT64(2);
	Datum		changed = PG_GETARG_DATUM(3);
	Oid			owner = PG_GETARG_OID(4);
	Oid			funcowner = txpipe_func_owner(func);
	TxIdentity	id;
	Datum		rows;

	if (!OidIsValid(funcowner))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("the refresh function %u does not exist", func)));
	if (!txpipe_owner_may_run(owner, funcowner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("refresh function %s belongs to role %s, not to the pipeline's owner %s",
						format_procedure_qualified(func), GetUserNameFromId(funcowner, false),
						GetUserNameFromId(owner, false)),
				 errdetail("The refresh runs as the pipeline's owner, so the function would run with that role's rights."),
				 errhint("ALTER FUNCTION ... OWNER TO the pipeline's owner.")));
	txpipe_enter(owner, &id);
	if (get_func_nargs(func) == 3)
		rows = OidFunctionCall3(func, Int64GetDatum(lo), Int64GetDatum(hi), changed);
	else
		rows = OidFunctionCall2(func, Int64GetDatum(lo), Int64GetDatum(hi));
	txpipe_leave(&id);
	PG_RETURN_DATUM(rows);
}
