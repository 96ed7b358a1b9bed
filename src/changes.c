/*-------------------------------------------------------------------------
 *
 * changes.c
 *	  txpipe.track_change(): the row trigger that writes the ids of changed
 *	  grain rows to txpipe.changes, the log txpipe.refresh() consumes.
 *
 * A template attaches it to its grain table twice: AFTER UPDATE OR DELETE,
 * enabled ALWAYS (corrections made on this server or replicated to it),
 * and AFTER INSERT, enabled REPLICA (rows a logical-replication apply
 * worker writes, whose ids do not arrive in commit order).  Inserts on the
 * server that routes them fire nothing: the refresh finds them by its
 * watermark, and the direct write of the grain route stays possible (a
 * trigger enabled for replicas only does not fire in a session whose
 * session_replication_role is origin).
 *
 * The trigger's one argument names the table's id column.  The row written
 * is (the table, the id), as the owner of txpipe's tables: whoever may
 * change a grain row may have its id recomputed, nothing more; the refresh
 * reads the row itself again, so a log row never stands for data.  An
 * update that changes the id logs the old and the new one.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(txpipe_track_change);

static SPIPlanPtr change_plan = NULL;

static bool
row_id(HeapTuple tuple, TupleDesc desc, AttrNumber attnum, Oid type, int64 *id)
{
	bool		isnull;
	Datum		d = heap_getattr(tuple, attnum, desc, &isnull);

	if (isnull)
		return false;
	switch (type)
	{
		case INT8OID:
			*id = DatumGetInt64(d);
			break;
		case INT4OID:
			*id = DatumGetInt32(d);
			break;
		case INT2OID:
			*id = DatumGetInt16(d);
			break;
		default:
			return false;
	}
	return true;
}

Datum
txpipe_track_change(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	Relation	rel;
	TupleDesc	desc;
	const char *column;
	AttrNumber	attnum;
	Oid			type;
	int64		ids[2];
	int			n = 0;
	TxIdentity	who;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("txpipe.track_change() must be called as a trigger")));
	if (!TRIGGER_FIRED_AFTER(trig->tg_event) || !TRIGGER_FIRED_FOR_ROW(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("txpipe.track_change() must be an AFTER ... FOR EACH ROW trigger")));
	rel = trig->tg_relation;
	desc = RelationGetDescr(rel);
	if (trig->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("trigger \"%s\" on table \"%s\" must name the table's id column",
						trig->tg_trigger->tgname, RelationGetRelationName(rel)),
				 errhint("EXECUTE FUNCTION txpipe.track_change('id column'), the column the pipeline's refresh watermark names.")));
	column = trig->tg_trigger->tgargs[0];
	attnum = get_attnum(RelationGetRelid(rel), column);
	type = attnum > 0 ? TupleDescAttr(desc, attnum - 1)->atttypid : InvalidOid;
	if (type != INT8OID && type != INT4OID && type != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("table \"%s\" has no integer column \"%s\" for trigger \"%s\"",
						RelationGetRelationName(rel), column, trig->tg_trigger->tgname)));

	if (TRIGGER_FIRED_BY_INSERT(trig->tg_event))
		n += row_id(trig->tg_trigtuple, desc, attnum, type, &ids[n]);
	else if (TRIGGER_FIRED_BY_DELETE(trig->tg_event))
		n += row_id(trig->tg_trigtuple, desc, attnum, type, &ids[n]);
	else if (TRIGGER_FIRED_BY_UPDATE(trig->tg_event))
	{
		n += row_id(trig->tg_trigtuple, desc, attnum, type, &ids[n]);
		n += row_id(trig->tg_newtuple, desc, attnum, type, &ids[n]);
		if (n == 2 && ids[0] == ids[1])
			n = 1;
	}
	if (n == 0)
		return PointerGetDatum(NULL);

	txpipe_spi_connect();
	txpipe_enter_catalog(&who);
	if (change_plan == NULL)
	{
		Oid			types[2] = {OIDOID, INT8OID};

		change_plan = txpipe_spi_keep("INSERT INTO txpipe.changes (relid, id) VALUES ($1, $2)",
									  2, types);
	}
	for (int i = 0; i < n; i++)
	{
		Datum		args[2] = {ObjectIdGetDatum(RelationGetRelid(rel)), Int64GetDatum(ids[i])};

		txpipe_spi_run(change_plan, args, NULL, false, 0, SPI_OK_INSERT, "the change log");
	}
	txpipe_leave(&who);
	SPI_finish();
	return PointerGetDatum(NULL);
}
