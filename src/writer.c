/*-------------------------------------------------------------------------
 *
 * writer.c
 *	  The direct write of an insert route: a batch's rows go straight into
 *	  the table's heap (table_multi_insert) and indexes, without an INSERT
 *	  statement and without one foreign-key trigger query per row.
 *
 * A route is written directly only when its table has nothing the direct
 * write cannot honour: a plain table (not partitioned, not a partition),
 * no rules, no row security, no triggers on INSERT other than the
 * foreign-key checks (and triggers enabled for replicas only, which do not
 * fire in a routing session), no generated columns, no volatile defaults (nextval
 * excepted), no deferrable or self-referencing foreign keys, and columns
 * whose values convert as the statement's casts would.  Otherwise the
 * route keeps its prepared INSERT (the statement path); txpipe.plan()
 * tells which path each route takes, and why.
 *
 * What the INSERT would do, the direct write does explicitly:
 *	- a value reaches its column through the same conversion as the
 *	  statement's cast: the type's input function, then its length
 *	  coercion when the column has a typmod; ids through the int8 cast;
 *	  columns the route does not write get their defaults, row by row;
 *	- INSERT privilege is checked as the executor checks it;
 *	- NOT NULL and CHECK constraints by ExecConstraints, unique and
 *	  exclusion constraints by the index insertions, so a refused row
 *	  raises the database's own error and its batch is bisected as before;
 *	- foreign keys: instead of one RI trigger query per row, one query per
 *	  foreign key per batch locks each distinct referenced row FOR KEY
 *	  SHARE, as the referenced table's owner, which is what the trigger
 *	  does row by row.  Single integer keys a statement has locked are
 *	  remembered and not locked again by its later batches; a subtransaction
 *	  abort or the end of the transaction forgets them.  When a referenced
 *	  key is missing (or a MATCH FULL key is half null), nothing has been
 *	  written yet and the batch takes the statement path, whose triggers
 *	  report the violation.
 *
 * The grain route's idempotency key is checked once before the write (the
 * router's duplicate check, which probes the key's unique btree index
 * directly when the route is written directly) and once by that index
 * during the write.  A key a concurrent session stored in between raises a unique
 * violation on that index, which the router treats as a retry; its last
 * retry takes the statement path, whose ON CONFLICT counts the record as
 * a duplicate.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/nbtree.h"
#include "catalog/pg_am.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/optimizer.h"
#include "parser/parse_coerce.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteHandler.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/syscache.h"

/* rows per table_multi_insert call */
#define WRITE_CHUNK 1000

typedef enum ConvKind
{
	CONV_INPUT,					/* text through the type's input function */
	CONV_INT8,					/* an id, as it is */
	CONV_INT8_CAST				/* an id through the int8 cast function */
} ConvKind;

typedef struct WriterColumn
{
	AttrNumber	attnum;
	uint8		conv;			/* ConvKind */
	FmgrInfo	fn;				/* input function or cast */
	Oid			ioparam;
	bool		typmod_coerce;	/* apply the length coercion */
	FmgrInfo	typmod_fn;
	int32		typmod;
} WriterColumn;

typedef struct WriterForeignKey
{
	char	   *conname;
	Oid			pkowner;
	bool		match_full;
	int			nkeys;
	AttrNumber	attnums[INDEX_MAX_KEYS];	/* referencing columns */
	Oid			types[INDEX_MAX_KEYS];
	int16		typlen[INDEX_MAX_KEYS];
	bool		typbyval[INDEX_MAX_KEYS];
	char		typalign[INDEX_MAX_KEYS];
	SPIPlanPtr	lock_plan;		/* distinct keys, keys locked */
	/* keys already locked by this statement (single integer keys only) */
	HTAB	   *locked;
	uint64		locked_epoch;
	TimestampTz locked_stmt;
	LocalTransactionId locked_lxid;
} WriterForeignKey;

/*
 * Bumped whenever row locks this backend took may have been released: at
 * the end of a transaction and when a subtransaction aborts.
 */
static uint64 lock_epoch = 1;

/* referenced keys remembered per foreign key before the memory is reset */
#define LOCKED_KEYS_MAX 1000000

typedef struct TxWriter
{
	int			natts;
	WriterColumn *cols;			/* per route column */
	Bitmapset  *inserted_cols;	/* for the privilege check */
	int			ndefaults;
	AttrNumber *default_attnums;
	Expr	  **default_exprs;
	int			nfkeys;
	WriterForeignKey *fkeys;
	List	   *key_indexes;	/* grain: names of the unique indexes on the
								 * idempotency key */
	Oid			probe_index;	/* grain: a btree unique index on the key
								 * alone, for the duplicate check */
	RegProcedure probe_eqproc;	/* its equality function */
	Oid			probe_collation;
	TupleDesc	slot_desc;		/* unpinned copy: the slots outlive the
								 * transaction */
	TupleTableSlot **slots;		/* WRITE_CHUNK slots kept across batches */
} TxWriter;

/* ----------------------------------------------------------------
 * compile: can the route be written directly, and how
 * ----------------------------------------------------------------
 */

static const char *
column_conversion(TxColumn *col, Form_pg_attribute att, WriterColumn *wc)
{
	Oid			typid = att->atttypid;
	Oid			funcid;
	CoercionPathType path;

	if (att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS)
		return psprintf("column \"%s\" is GENERATED ALWAYS", col->name);
	if (get_typtype(typid) == TYPTYPE_DOMAIN)
	{
		if (col->source == TXS_ROUTE)
			return psprintf("column \"%s\" has a domain type", col->name);
		if (get_typtype(getBaseType(typid)) != TYPTYPE_BASE)
			return psprintf("column \"%s\" has a domain over a non-base type", col->name);
		{
			int32		basetypmod = -1;

			(void) getBaseTypeAndTypmod(typid, &basetypmod);
			if (basetypmod >= 0)
				return psprintf("column \"%s\" has a domain with a type modifier", col->name);
		}
	}

	if (col->source == TXS_ROUTE)
	{
		path = find_coercion_pathway(typid, INT8OID, COERCION_EXPLICIT, &funcid);
		if (path == COERCION_PATH_RELABELTYPE && typid == INT8OID)
			wc->conv = CONV_INT8;
		else if (path == COERCION_PATH_FUNC && get_func_nargs(funcid) == 1)
		{
			wc->conv = CONV_INT8_CAST;
			fmgr_info(funcid, &wc->fn);
		}
		else
			return psprintf("column \"%s\" is %s, which an id does not convert to directly",
							col->name, format_type_be(typid));
	}
	else
	{
		Oid			infunc;

		path = find_coercion_pathway(typid, TEXTOID, COERCION_EXPLICIT, &funcid);
		if (path != COERCION_PATH_COERCEVIAIO && path != COERCION_PATH_RELABELTYPE)
			return psprintf("column \"%s\" is %s, whose cast from text is a function",
							col->name, format_type_be(typid));
		wc->conv = CONV_INPUT;
		getTypeInputInfo(typid, &infunc, &wc->ioparam);
		fmgr_info(infunc, &wc->fn);
	}

	wc->typmod = att->atttypmod;
	wc->typmod_coerce = false;
	if (att->atttypmod >= 0)
	{
		path = find_typmod_coercion_function(typid, &funcid);
		if (path == COERCION_PATH_FUNC)
		{
			wc->typmod_coerce = true;
			fmgr_info(funcid, &wc->typmod_fn);
		}
		else if (path != COERCION_PATH_NONE)
			return psprintf("column \"%s\" is %s, whose type modifier needs an array coercion",
							col->name, format_type_with_typemod(typid, att->atttypmod));
	}
	wc->attnum = att->attnum;
	return NULL;
}

/*
 * The statement that locks, as FOR KEY SHARE, the referenced rows of the
 * distinct keys passed as arrays, and counts both.
 */
static const char *
foreign_key_compile(TxPlan *plan, Relation rel, ForeignKeyCacheInfo *fk, WriterForeignKey *wfk)
{
	HeapTuple	tup;
	Form_pg_constraint con;
	Relation	pkrel;
	StringInfoData sql;
	Oid			argtypes[INDEX_MAX_KEYS];
	const char *why = NULL;
	bool		partitioned;

	tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(fk->conoid));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for constraint %u", fk->conoid);
	con = (Form_pg_constraint) GETSTRUCT(tup);
	wfk->conname = pstrdup(NameStr(con->conname));
	wfk->match_full = (con->confmatchtype == FKCONSTR_MATCH_FULL);
	if (con->condeferrable)
		why = psprintf("foreign key \"%s\" is deferrable", NameStr(con->conname));
	ReleaseSysCache(tup);
	if (why)
		return why;
	if (fk->confrelid == RelationGetRelid(rel))
		return psprintf("foreign key \"%s\" references its own table", wfk->conname);

	pkrel = table_open(fk->confrelid, AccessShareLock);
	wfk->pkowner = pkrel->rd_rel->relowner;
	partitioned = (pkrel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE);

	wfk->nkeys = fk->nkeys;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "WITH k AS MATERIALIZED (SELECT DISTINCT * FROM ROWS FROM (");
	for (int i = 0; i < fk->nkeys; i++)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), fk->conkey[i] - 1);
		Oid			pktype = get_atttype(fk->confrelid, fk->confkey[i]);
		Oid			left,
					right;

		op_input_types(fk->conpfeqop[i], &left, &right);
		if (left != pktype || right != att->atttypid)
		{
			why = psprintf("foreign key \"%s\" compares %s with %s through a cast",
						   wfk->conname, format_type_be(pktype), format_type_be(att->atttypid));
			break;
		}
		argtypes[i] = get_array_type(att->atttypid);
		if (!OidIsValid(argtypes[i]))
		{
			why = psprintf("foreign key \"%s\": type %s has no array type",
						   wfk->conname, format_type_be(att->atttypid));
			break;
		}
		wfk->attnums[i] = fk->conkey[i];
		wfk->types[i] = att->atttypid;
		get_typlenbyvalalign(att->atttypid, &wfk->typlen[i], &wfk->typbyval[i], &wfk->typalign[i]);
		appendStringInfo(&sql, "%spg_catalog.unnest($%d::%s)", i ? ", " : "", i + 1,
						 format_type_be_qualified(argtypes[i]));
	}
	if (why == NULL)
	{
		appendStringInfoString(&sql, ") AS u(");
		for (int i = 0; i < fk->nkeys; i++)
			appendStringInfo(&sql, "%sk%d", i ? ", " : "", i + 1);
		appendStringInfo(&sql, ")) SELECT (SELECT pg_catalog.count(*) FROM k)::pg_catalog.int8, "
						 "(SELECT pg_catalog.count(*) FROM (SELECT 1 FROM k JOIN %s%s x ON ",
						 partitioned ? "" : "ONLY ",
						 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(pkrel)),
													RelationGetRelationName(pkrel)));
		for (int i = 0; i < fk->nkeys; i++)
		{
			HeapTuple	optup = SearchSysCache1(OPEROID, ObjectIdGetDatum(fk->conpfeqop[i]));
			Form_pg_operator op;

			if (!HeapTupleIsValid(optup))
				elog(ERROR, "cache lookup failed for operator %u", fk->conpfeqop[i]);
			op = (Form_pg_operator) GETSTRUCT(optup);
			appendStringInfo(&sql, "%sx.%s OPERATOR(%s.%s) k.k%d", i ? " AND " : "",
							 quote_identifier(get_attname(fk->confrelid, fk->confkey[i], false)),
							 quote_identifier(get_namespace_name(op->oprnamespace)),
							 NameStr(op->oprname), i + 1);
			ReleaseSysCache(optup);
		}
		appendStringInfoString(&sql, " FOR KEY SHARE OF x) l)::pg_catalog.int8");
		wfk->lock_plan = txpipe_spi_keep_generic(sql.data, fk->nkeys, argtypes);
		/* the plan is rebuilt when the referenced table changes */
		plan->relids = list_append_unique_oid(plan->relids, fk->confrelid);
	}
	table_close(pkrel, AccessShareLock);
	return why;
}

static const char *
writer_obstacle(TxPlan *plan, TxRoute *route, Relation rel, TxWriter *w)
{
	TupleDesc	desc = RelationGetDescr(rel);
	bool	   *written;
	List	   *fkeys;
	ListCell   *lc;
	int			nfk = 0;

	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return "the table is partitioned or not a plain table";
	if (rel->rd_rel->relispartition)
		return "the table is a partition";
	if (rel->rd_rules != NULL)
		return "the table has rules";
	if (rel->rd_rel->relrowsecurity)
		return "the table has row level security";
	if (desc->constr && desc->constr->has_generated_stored)
		return "the table has generated columns";
	if (rel->trigdesc)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *tg = &rel->trigdesc->triggers[i];

			if (!TRIGGER_FOR_INSERT(tg->tgtype))
				continue;
			/* fires only in replication apply workers (txpipe_changes_replica) */
			if (tg->tgenabled == TRIGGER_FIRES_ON_REPLICA &&
				SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA)
				continue;
			if (RI_FKey_trigger_type(tg->tgfoid) != RI_TRIGGER_FK)
				return psprintf("the table has trigger \"%s\"", tg->tgname);
			if (tg->tgenabled != TRIGGER_FIRES_ON_ORIGIN)
				return "the table's foreign key triggers are disabled or fire on replicas only";
		}
	}

	w->natts = desc->natts;
	w->cols = palloc0(sizeof(WriterColumn) * Max(route->ncols, 1));
	written = palloc0(sizeof(bool) * (desc->natts + 1));
	for (int c = 0; c < route->ncols; c++)
	{
		AttrNumber	attnum = get_attnum(route->relid, route->cols[c].name);
		const char *why;

		if (attnum <= 0)
			return psprintf("column \"%s\" is not a user column", route->cols[c].name);
		why = column_conversion(&route->cols[c], TupleDescAttr(desc, attnum - 1), &w->cols[c]);
		if (why)
			return why;
		written[attnum] = true;
		w->inserted_cols = bms_add_member(w->inserted_cols,
										  attnum - FirstLowInvalidHeapAttributeNumber);
	}

	w->default_attnums = palloc(sizeof(AttrNumber) * Max(desc->natts, 1));
	w->default_exprs = palloc(sizeof(Expr *) * Max(desc->natts, 1));
	for (AttrNumber a = 1; a <= desc->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, a - 1);
		Node	   *def;

		if (written[a] || att->attisdropped)
			continue;
		def = build_column_default(rel, a);
		if (def == NULL)
			continue;
		if (contain_volatile_functions_not_nextval(def))
			return psprintf("column \"%s\" has a volatile default", NameStr(att->attname));
		w->default_attnums[w->ndefaults] = a;
		w->default_exprs[w->ndefaults] = expression_planner((Expr *) def);
		w->ndefaults++;
	}

	/* a copy: compiling prepares statements, which may rebuild the relcache entry and its list */
	fkeys = copyObject(RelationGetFKeyList(rel));
	w->fkeys = palloc0(sizeof(WriterForeignKey) * Max(list_length(fkeys), 1));
	foreach(lc, fkeys)
	{
		const char *why = foreign_key_compile(plan, rel, lfirst(lc), &w->fkeys[nfk]);

		if (w->fkeys[nfk].lock_plan)
			w->nfkeys = ++nfk;
		if (why)
			return why;
	}

	if (route->grain)
	{
		AttrNumber	keyatt = w->cols[route->idem_col].attnum;
		List	   *indexes = RelationGetIndexList(rel);

		foreach(lc, indexes)
		{
			Relation	ind = index_open(lfirst_oid(lc), AccessShareLock);

			if (ind->rd_index->indisunique && ind->rd_index->indnkeyatts == 1 &&
				ind->rd_index->indkey.values[0] == keyatt)
			{
				w->key_indexes = lappend(w->key_indexes, pstrdup(RelationGetRelationName(ind)));
				if (!OidIsValid(w->probe_index) && ind->rd_rel->relam == BTREE_AM_OID &&
					ind->rd_index->indisvalid && ind->rd_index->indisready &&
					RelationGetIndexPredicate(ind) == NIL &&
					ind->rd_opcintype[0] == TupleDescAttr(desc, keyatt - 1)->atttypid)
				{
					Oid			eqop = get_opfamily_member(ind->rd_opfamily[0], ind->rd_opcintype[0],
														   ind->rd_opcintype[0], BTEqualStrategyNumber);

					if (OidIsValid(eqop))
					{
						w->probe_index = RelationGetRelid(ind);
						w->probe_eqproc = get_opcode(eqop);
						w->probe_collation = ind->rd_indcollation[0];
					}
				}
			}
			index_close(ind, AccessShareLock);
		}
	}
	return NULL;
}

/*
 * Decides whether route is written directly; sets route->writer, or
 * route->write_note to the reason it is not.  Runs in the plan's memory
 * context, inside an SPI connection.
 */
void
txpipe_writer_compile(TxPlan *plan, TxRoute *route)
{
	Relation	rel;
	TxWriter   *w;
	const char *why;

	route->writer = NULL;
	route->write_note = NULL;
	if (route->lookup)
		return;
	w = palloc0(sizeof(TxWriter));
	rel = table_open(route->relid, AccessShareLock);
	why = writer_obstacle(plan, route, rel, w);
	table_close(rel, AccessShareLock);
	if (why)
	{
		for (int i = 0; i < w->nfkeys; i++)
			SPI_freeplan(w->fkeys[i].lock_plan);
		route->write_note = pstrdup(why);
		return;
	}
	route->writer = w;
}

void
txpipe_writer_free(TxRoute *route)
{
	if (route->writer == NULL)
		return;
	for (int i = 0; i < route->writer->nfkeys; i++)
	{
		SPI_freeplan(route->writer->fkeys[i].lock_plan);
		if (route->writer->fkeys[i].locked)
			hash_destroy(route->writer->fkeys[i].locked);
	}
	route->writer = NULL;
}

/* the index the duplicate check of a grain route probes, or InvalidOid */
Oid
txpipe_writer_probe_index(TxRoute *route)
{
	return route->writer ? route->writer->probe_index : InvalidOid;
}

/* the row locks taken so far may be gone: forget which keys were locked */
void
txpipe_writer_forget_locks(void)
{
	lock_epoch++;
}

/*
 * Whether an error is the unique index of the grain route's idempotency
 * key refusing a key: a concurrent session stored it since the duplicate
 * check.
 */
bool
txpipe_writer_key_conflict(TxPlan *plan, ErrorData *edata)
{
	TxRoute    *g;
	ListCell   *lc;

	if (edata->sqlerrcode != ERRCODE_UNIQUE_VIOLATION || edata->constraint_name == NULL ||
		plan->grain_route < 0)
		return false;
	g = &plan->routes[plan->grain_route];
	if (g->writer == NULL)
		return false;
	foreach(lc, g->writer->key_indexes)
		if (strcmp(lfirst(lc), edata->constraint_name) == 0 &&
			edata->table_name && strcmp(edata->table_name, get_rel_name(g->relid)) == 0)
			return true;
	return false;
}

/* ----------------------------------------------------------------
 * write
 * ----------------------------------------------------------------
 */

static Datum
convert_value(TxRecord *rec, TxColumn *col, WriterColumn *wc, bool *isnull)
{
	const char *txt;
	int			len;
	int64		id;
	Datum		d;

	if (!txpipe_column_value(rec, col, &txt, &len, &id))
	{
		*isnull = true;
		/* a non-strict input function (a domain's) sees the null */
		if (wc->conv == CONV_INPUT && !wc->fn.fn_strict)
			return InputFunctionCall(&wc->fn, NULL, wc->ioparam, -1);
		return (Datum) 0;
	}
	*isnull = false;
	switch (wc->conv)
	{
		case CONV_INT8:
			return Int64GetDatum(id);
		case CONV_INT8_CAST:
			d = FunctionCall1(&wc->fn, Int64GetDatum(id));
			break;
		default:
			{
				/* containers point into the payload; other texts end in NUL */
				if (col->source == TXS_FIELD && col->lpad <= len &&
					(rec->values[col->field].kind == TX_OBJECT ||
					 rec->values[col->field].kind == TX_ARRAY))
					txt = pnstrdup(txt, len);
				d = InputFunctionCall(&wc->fn, unconstify(char *, txt), wc->ioparam, -1);
			}
			break;
	}
	if (wc->typmod_coerce)
		d = FunctionCall3(&wc->typmod_fn, d, Int32GetDatum(wc->typmod), BoolGetDatum(true));
	return d;
}

/*
 * The set of keys of fk that this statement has locked, or NULL when fk's
 * keys are not remembered.  A key locked by an earlier batch of the same
 * statement stays locked until the transaction ends, unless a
 * subtransaction that took it aborts; both make the set start over.
 */
static HTAB *
locked_keys(TxPlan *plan, WriterForeignKey *fk)
{
	HASHCTL		ctl;
	TimestampTz stmt = GetCurrentStatementStartTimestamp();

	if (fk->nkeys != 1 || !fk->typbyval[0] || (fk->typlen[0] != 4 && fk->typlen[0] != 8))
		return NULL;
	if (fk->locked && fk->locked_epoch == lock_epoch && fk->locked_stmt == stmt &&
		fk->locked_lxid == MyProc->lxid &&
		hash_get_num_entries(fk->locked) < LOCKED_KEYS_MAX)
		return fk->locked;
	if (fk->locked)
		hash_destroy(fk->locked);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int64);
	ctl.entrysize = sizeof(int64);
	ctl.hcxt = plan->cxt;
	fk->locked = hash_create("txpipe locked keys", 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	fk->locked_epoch = lock_epoch;
	fk->locked_stmt = stmt;
	fk->locked_lxid = MyProc->lxid;
	return fk->locked;
}

static int64
key_int64(WriterForeignKey *fk, Datum d)
{
	return fk->typlen[0] == 8 ? DatumGetInt64(d) : (int64) DatumGetInt32(d);
}

/*
 * Locks the referenced rows of every foreign key; false when one is
 * missing (or a MATCH FULL key is half null).  Keys this statement has
 * already locked are not locked again.
 */
static bool
lock_referenced(TxPlan *plan, TxWriter *w, Datum *values, bool *nulls, int n)
{
	int			natts = w->natts;

	for (int f = 0; f < w->nfkeys; f++)
	{
		WriterForeignKey *fk = &w->fkeys[f];
		HTAB	   *memo = locked_keys(plan, fk);
		Datum	   *elems[INDEX_MAX_KEYS];
		Datum		args[INDEX_MAX_KEYS];
		int			m = 0;
		int64		keys,
					locked;
		bool		isnull;
		Oid			save_userid;
		int			save_sec;

		for (int k = 0; k < fk->nkeys; k++)
			elems[k] = palloc(sizeof(Datum) * n);
		for (int i = 0; i < n; i++)
		{
			int			nnull = 0;

			for (int k = 0; k < fk->nkeys; k++)
				if (nulls[i * natts + fk->attnums[k] - 1])
					nnull++;
			if (nnull > 0)
			{
				/* MATCH SIMPLE: not checked; MATCH FULL: all or none */
				if (fk->match_full && nnull < fk->nkeys)
					return false;
				continue;
			}
			if (memo)
			{
				int64		key = key_int64(fk, values[i * natts + fk->attnums[0] - 1]);

				if (hash_search(memo, &key, HASH_FIND, NULL))
					continue;
			}
			for (int k = 0; k < fk->nkeys; k++)
				elems[k][m] = values[i * natts + fk->attnums[k] - 1];
			m++;
		}
		if (m == 0)
			continue;
		for (int k = 0; k < fk->nkeys; k++)
			args[k] = PointerGetDatum(construct_array(elems[k], m, fk->types[k], fk->typlen[k],
													  fk->typbyval[k], fk->typalign[k]));

		/* as the RI trigger: the referenced table's owner, its RLS not forced */
		GetUserIdAndSecContext(&save_userid, &save_sec);
		SetUserIdAndSecContext(fk->pkowner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_NOFORCE_RLS | SECURITY_RESTRICTED_OPERATION);
		if (txpipe_spi_run(fk->lock_plan, args, NULL, false, 1, SPI_OK_SELECT, "lock referenced rows") != 1)
			elog(ERROR, "txpipe foreign key lock returned no row");
		SetUserIdAndSecContext(save_userid, save_sec);
		keys = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		locked = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		SPI_freetuptable(SPI_tuptable);
		if (keys != locked)
			return false;
		if (memo)
			for (int i = 0; i < m; i++)
			{
				int64		key = key_int64(fk, elems[0][i]);

				(void) hash_search(memo, &key, HASH_ENTER, NULL);
			}
	}
	return true;
}

/*
 * Checks the privilege a statement reading (ACL_SELECT: cols selected) or
 * inserting (ACL_INSERT: cols inserted) the table would need, as the
 * executor does; returns the range table entry.
 */
static RangeTblEntry *
check_privilege(Relation rel, LOCKMODE lockmode, AclMode perms, Bitmapset *cols)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);

	rte->rtekind = RTE_RELATION;
	rte->relid = RelationGetRelid(rel);
	rte->relkind = rel->rd_rel->relkind;
	rte->rellockmode = lockmode;
	rte->requiredPerms = perms;
	if (perms == ACL_SELECT)
		rte->selectedCols = cols;
	else
		rte->insertedCols = cols;
	ExecCheckRTPerms(list_make1(rte), true);
	return rte;
}

/*
 * The duplicate check of the grain route through its key's unique index:
 * marks the records idx[0..n-1] whose idempotency key is stored already,
 * as the transaction sees it after the previous batches (what the
 * statement "unnest(keys) JOIN table ON key" sees, without depending on
 * the plan the planner would choose for it).  Returns false, having
 * marked nothing, when the route has no such index.
 */
bool
txpipe_writer_find_stored(TxPlan *plan, TxRoute *route, TxRecord *recs, int *idx, int n)
{
	TxWriter   *w = route->writer;
	WriterColumn *wc;
	TxColumn   *kc;
	Relation	rel;
	Relation	ind;
	Snapshot	snap;
	IndexScanDesc scan;
	TupleTableSlot *slot;
	ScanKeyData sk;
	Datum	   *stored;
	bool	   *storednull;

	if (w == NULL || !OidIsValid(w->probe_index) || !txpipe_direct_write)
		return false;
	stored = palloc(sizeof(Datum) * Max(plan->nconflict, 1));
	storednull = palloc(sizeof(bool) * Max(plan->nconflict, 1));
	kc = &route->cols[route->idem_col];
	wc = &w->cols[route->idem_col];
	rel = table_open(route->relid, AccessShareLock);
	if (!plan->valid || RelationGetDescr(rel)->natts != w->natts)
	{
		table_close(rel, NoLock);
		return false;
	}

	/* the statement would need SELECT on the key column */
	check_privilege(rel, AccessShareLock, ACL_SELECT,
					bms_make_singleton(wc->attnum - FirstLowInvalidHeapAttributeNumber));

	/* as a statement would: see what this transaction wrote so far */
	CommandCounterIncrement();
	snap = RegisterSnapshot(GetTransactionSnapshot());
	ind = index_open(w->probe_index, AccessShareLock);
	scan = index_beginscan(rel, ind, snap, 1, 0);
	slot = table_slot_create(rel, NULL);
	for (int i = 0; i < n; i++)
	{
		TxRecord   *rec = &recs[idx[i]];
		bool		isnull;
		Datum		key;

		CHECK_FOR_INTERRUPTS();
		key = convert_value(rec, kc, wc, &isnull);
		if (isnull)
			continue;
		ScanKeyEntryInitialize(&sk, 0, 1, BTEqualStrategyNumber, InvalidOid,
							   w->probe_collation, w->probe_eqproc, key);
		index_rescan(scan, &sk, 1, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			rec->duplicate = true;
			if (plan->nconflict > 0)
			{
				for (int c = 0; c < plan->nconflict; c++)
					stored[c] = slot_getattr(slot, w->cols[txpipe_conflict_column(plan, c)].attnum,
											 &storednull[c]);
				(void) txpipe_stored_conflict(plan, rec, stored, storednull);
			}
		}
		ExecClearTuple(slot);
	}
	ExecDropSingleTupleTableSlot(slot);
	index_endscan(scan);
	index_close(ind, NoLock);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);
	return true;
}

/*
 * Writes rows[0..n-1] into the route's table.  Returns false, having
 * written nothing, when the batch must take the statement path.
 */
bool
txpipe_writer_insert(TxPlan *plan, TxRoute *route, TxRecord **rows, int n)
{
	TxWriter   *w = route->writer;
	Relation	rel;
	int			natts;
	Datum	   *values;
	bool	   *nulls;
	EState	   *estate;
	ExprContext *defcxt;
	ExprState **defstates;
	RangeTblEntry *rte;
	ResultRelInfo *rri;
	TupleTableSlot **slots;
	BulkInsertState bistate;
	CommandId	cid;

	if (n == 0)
		return true;
	rel = table_open(route->relid, RowExclusiveLock);
	/* taking the lock may have processed an invalidation of the table */
	if (!plan->valid || RelationGetDescr(rel)->natts != w->natts)
	{
		table_close(rel, NoLock);
		return false;
	}
	natts = w->natts;

	rte = check_privilege(rel, RowExclusiveLock, ACL_INSERT, bms_copy(w->inserted_cols));

	estate = CreateExecutorState();
	ExecInitRangeTable(estate, list_make1(rte));
	defcxt = CreateExprContext(estate);
	defstates = palloc(sizeof(ExprState *) * Max(w->ndefaults, 1));
	for (int d = 0; d < w->ndefaults; d++)
		defstates[d] = ExecInitExpr(w->default_exprs[d], NULL);

	values = palloc(sizeof(Datum) * natts * n);
	nulls = palloc(sizeof(bool) * natts * n);
	for (int i = 0; i < n; i++)
	{
		Datum	   *v = values + i * natts;
		bool	   *nl = nulls + i * natts;

		CHECK_FOR_INTERRUPTS();
		memset(v, 0, sizeof(Datum) * natts);
		memset(nl, true, sizeof(bool) * natts);
		for (int c = 0; c < route->ncols; c++)
		{
			int			a = w->cols[c].attnum - 1;

			v[a] = convert_value(rows[i], &route->cols[c], &w->cols[c], &nl[a]);
		}
		for (int d = 0; d < w->ndefaults; d++)
		{
			int			a = w->default_attnums[d] - 1;

			v[a] = ExecEvalExpr(defstates[d], defcxt, &nl[a]);
		}
	}

	if (!lock_referenced(plan, w, values, nulls, n))
	{
		FreeExecutorState(estate);
		table_close(rel, NoLock);
		return false;
	}

	cid = GetCurrentCommandId(true);
	estate->es_output_cid = cid;
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	CheckValidResultRel(rri, CMD_INSERT);
	ExecOpenIndices(rri, false);
	bistate = GetBulkInsertState();
	if (w->slots == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(plan->cxt);

		w->slot_desc = CreateTupleDescCopy(RelationGetDescr(rel));
		w->slots = palloc0(sizeof(TupleTableSlot *) * WRITE_CHUNK);
		MemoryContextSwitchTo(old);
	}
	slots = w->slots;

	for (int start = 0; start < n; start += WRITE_CHUNK)
	{
		int			k = Min(WRITE_CHUNK, n - start);

		for (int j = 0; j < k; j++)
		{
			TupleTableSlot *slot;

			if (slots[j] == NULL)
			{
				MemoryContext old = MemoryContextSwitchTo(plan->cxt);

				slots[j] = MakeSingleTupleTableSlot(w->slot_desc, &TTSOpsHeapTuple);
				MemoryContextSwitchTo(old);
			}
			slot = slots[j];
			ExecClearTuple(slot);
			memcpy(slot->tts_values, values + (start + j) * natts, sizeof(Datum) * natts);
			memcpy(slot->tts_isnull, nulls + (start + j) * natts, sizeof(bool) * natts);
			ExecStoreVirtualTuple(slot);
			if (rel->rd_att->constr)
				ExecConstraints(rri, slot, estate);
			ResetPerTupleExprContext(estate);
		}
		table_multi_insert(rel, slots, k, cid, 0, bistate);
		for (int j = 0; j < k; j++)
		{
			if (rri->ri_NumIndices > 0)
				list_free(ExecInsertIndexTuples(rri, slots[j], estate, false, false, NULL, NIL));
			ResetPerTupleExprContext(estate);
			ExecClearTuple(slots[j]);
		}
	}

	FreeBulkInsertState(bistate);
	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	return true;
}
