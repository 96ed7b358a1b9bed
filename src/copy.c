/*-------------------------------------------------------------------------
 *
 * copy.c
 *	  The COPY path: COPY txpipe_in.<pipeline> FROM STDIN.
 *
 * txpipe_in.<pipeline> is an empty table with one text column, doc.  Its
 * BEFORE INSERT row trigger buffers each line, skips the row, and routes a
 * batch whenever txpipe.batch_size lines are waiting; its AFTER INSERT
 * statement trigger routes the rest, so everything is routed before COPY
 * returns, in the COPY's own transaction.  For a pipeline in async mode
 * the batches go to the inbox instead, and the workers route them once
 * the COPY has committed.  (A view with an INSTEAD OF
 * trigger would do the same, but COPY into a view keeps memory for every
 * row until the statement ends.)
 *
 * Buffers live in TopTransactionContext.  A buffer started inside a
 * subtransaction that aborts is dropped with it; a transaction that tries
 * to commit with records still buffered (its statement trigger was
 * removed) fails instead of losing them.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/copy.h"
#include "commands/copyfrom_internal.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

typedef struct CopyBuffer
{
	char		pipeline[NAMEDATALEN];
	MemoryContext cxt;			/* payloads of the waiting records */
	TxRecord   *recs;
	int			n;
	int			capacity;
	Size		bytes;			/* payload bytes waiting */
	SubTransactionId subid;
	struct CopyBuffer *next;
} CopyBuffer;

static CopyBuffer *buffers = NULL;

PG_FUNCTION_INFO_V1(txpipe_copy_row);
PG_FUNCTION_INFO_V1(txpipe_copy_flush);

static const char *
trigger_pipeline(FunctionCallInfo fcinfo, const char *fname)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_INSERT(td->tg_event) ||
		td->tg_trigger->tgnargs != 1)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("%s() must be an INSERT trigger with the pipeline name as its argument", fname)));
	return td->tg_trigger->tgargs[0];
}

static CopyBuffer *
get_buffer(const char *pipeline)
{
	CopyBuffer *b;

	for (b = buffers; b; b = b->next)
		if (strcmp(b->pipeline, pipeline) == 0)
			return b;
	b = MemoryContextAllocZero(TopTransactionContext, sizeof(CopyBuffer));
	strlcpy(b->pipeline, pipeline, NAMEDATALEN);
	b->cxt = AllocSetContextCreate(TopTransactionContext, "txpipe copy buffer", ALLOCSET_DEFAULT_SIZES);
	b->capacity = Max(txpipe_batch_size, 1);
	b->recs = MemoryContextAllocZero(TopTransactionContext, sizeof(TxRecord) * b->capacity);
	b->subid = GetCurrentSubTransactionId();
	b->next = buffers;
	buffers = b;
	return b;
}

static void
flush(CopyBuffer *b)
{
	MemoryContext work;
	MemoryContext old;
	TxPlan	   *plan;
	TxCounts	counts = {0};

	if (b->n == 0)
		return;
	work = AllocSetContextCreate(CurrentMemoryContext, "txpipe batch", ALLOCSET_DEFAULT_SIZES);
	txpipe_spi_connect();
	old = MemoryContextSwitchTo(work);
	plan = txpipe_get_plan(b->pipeline);
	if (plan->async)
		txpipe_queue_put(plan, b->recs, b->n, "copy");
	else
		txpipe_route(plan, b->recs, b->n, "copy", &counts);
	MemoryContextSwitchTo(old);
	SPI_finish();
	MemoryContextDelete(work);

	MemoryContextReset(b->cxt);
	memset(b->recs, 0, sizeof(TxRecord) * b->n);
	b->n = 0;
	b->bytes = 0;
}

/*
 * COPY's error context shows the line it is processing (its first 100
 * bytes) with any error raised before it reads the next one: an error of
 * the routing this trigger starts, a lock or statement timeout, a cancel.
 * That goes to the server log, and the line holds what the record holds (a
 * card number).  Once the row trigger has the line, the context gives the
 * line number only, as COPY's own does for rows it has buffered: the line
 * is marked as no longer in COPY's buffer.  Lines COPY cannot split into
 * the one column (its own errors) are shown as before.
 */
static void
hide_copy_line(Relation rel)
{
	for (ErrorContextCallback *e = error_context_stack; e; e = e->previous)
	{
		if (e->callback == CopyFromErrorCallback)
		{
			CopyFromState cstate = (CopyFromState) e->arg;

			if (cstate->rel && RelationGetRelid(cstate->rel) == RelationGetRelid(rel))
				cstate->line_buf_valid = false;
			return;
		}
	}
}

Datum
txpipe_copy_row(PG_FUNCTION_ARGS)
{
	const char *pipeline = trigger_pipeline(fcinfo, "txpipe._copy_row");
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	tuple = td->tg_trigtuple;
	bool		isnull;
	Datum		d;
	CopyBuffer *b;
	text	   *t;
	int			len;
	char	   *copy;

	if (!TRIGGER_FIRED_BEFORE(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("txpipe._copy_row() must be a BEFORE INSERT row trigger")));
	hide_copy_line(td->tg_relation);

	d = heap_getattr(tuple, 1, td->tg_relation->rd_att, &isnull);
	if (isnull)
		return PointerGetDatum(NULL);	/* an empty line */

	b = get_buffer(pipeline);
	t = DatumGetTextPP(d);
	len = VARSIZE_ANY_EXHDR(t);
	if (len > txpipe_max_record_size)
	{
		/* only the reject's prefix is kept, never the line */
		MemoryContext old = MemoryContextSwitchTo(b->cxt);

		txpipe_too_large(&b->recs[b->n], VARDATA_ANY(t), len, false);
		MemoryContextSwitchTo(old);
		len = b->recs[b->n].len;
	}
	else
	{
		copy = MemoryContextAlloc(b->cxt, len + 1);
		memcpy(copy, VARDATA_ANY(t), len);
		copy[len] = '\0';
		b->recs[b->n].payload = copy;
		b->recs[b->n].len = len;
	}
	b->n++;
	b->bytes += len;
	if (b->n >= b->capacity || b->bytes >= TXPIPE_BATCH_BYTES)
		flush(b);
	return PointerGetDatum(NULL);	/* routed, not stored */
}

Datum
txpipe_copy_flush(PG_FUNCTION_ARGS)
{
	const char *pipeline = trigger_pipeline(fcinfo, "txpipe._copy_flush");
	CopyBuffer *b;

	for (b = buffers; b; b = b->next)
		if (strcmp(b->pipeline, pipeline) == 0)
			flush(b);
	return PointerGetDatum(NULL);
}

static void
xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_PRE_COMMIT && event != XACT_EVENT_PARALLEL_PRE_COMMIT &&
		event != XACT_EVENT_PRE_PREPARE)
		txpipe_writer_forget_locks();
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
		case XACT_EVENT_PRE_PREPARE:
			for (CopyBuffer *b = buffers; b; b = b->next)
				if (b->n > 0)
					ereport(ERROR,
							(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
							 errmsg("%d records sent to txpipe_in.%s were not routed", b->n, b->pipeline),
							 errhint("The view's route_flush trigger is missing; recreate the pipeline with txpipe.create_pipeline(name, spec, or_replace => true).")));
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			txpipe_reset_key_caches();
			buffers = NULL;
			break;
		default:
			buffers = NULL;
			break;
	}
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid,
				 SubTransactionId parentSubid, void *arg)
{
	CopyBuffer **prev = &buffers;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	/* the row locks it took are released */
	txpipe_writer_forget_locks();
	while (*prev)
	{
		CopyBuffer *b = *prev;

		if (b->subid >= mySubid)
		{
			*prev = b->next;
			MemoryContextDelete(b->cxt);
		}
		else
			prev = &b->next;
	}
}

void
txpipe_copy_init(void)
{
	RegisterXactCallback(xact_callback, NULL);
	RegisterSubXactCallback(subxact_callback, NULL);
}
