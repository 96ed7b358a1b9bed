/*-------------------------------------------------------------------------
 *
 * txpipe.c
 *	  Module entry: settings, and the init of each subsystem.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/memutils.h"

PG_MODULE_MAGIC;

int			txpipe_batch_size = 2000;
int			txpipe_max_record_size = 1024 * 1024;
int			txpipe_max_depth = 64;
int			txpipe_max_keys = 10000;
int			txpipe_key_cache_size = 1000000;
bool		txpipe_direct_write = true;
bool		txpipe_flat_decoder = true;

void		_PG_init(void);

/*
 * Planner settings for the statements that look rows up by key in tables
 * that grow while their plans are kept: the inbox, and the grain table's
 * duplicate check.  Their statistics are always behind (a table created at
 * install, never analyzed yet; an inbox slot analyzed while empty, or
 * truncated since), and a plan made while such a table looked empty reads
 * all of it, a sequential scan or a hash of every row, for the few keys a
 * batch brings, every batch, until autovacuum happens to analyze it.
 * Under these settings the only plans left look the keys up in their
 * index, which costs about the same at any size.  A plan that cannot avoid
 * a disabled node costs more than jit_above_cost, and compiling it would
 * take far longer than the query: no JIT.  Kept plans are made again under
 * whatever settings are current, so every execution of such a statement
 * must run under these.  Returns the GUC nest level to give
 * AtEOXact_GUC(true, level) afterwards; an error unwinds it with the
 * (sub)transaction.
 */
int
txpipe_plan_by_index(void)
{
	static const char *const off[] = {"enable_seqscan", "enable_bitmapscan", "enable_hashjoin",
	"enable_mergejoin", "enable_sort", "jit"};
	int			nest = NewGUCNestLevel();

	for (int i = 0; i < lengthof(off); i++)
		(void) set_config_option(off[i], "off", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nest;
}

void
_PG_init(void)
{
	DefineCustomIntVariable("txpipe.batch_size",
							"Records routed together in one batch.",
							"Larger batches amortize statement overhead; a refused row costs a bisection of its batch.",
							&txpipe_batch_size, 2000, 1, 100000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.max_record_size",
							"Longest record accepted, in bytes; longer ones are rejected as too_large.",
							NULL,
							&txpipe_max_record_size, 1024 * 1024, 64, MaxAllocSize / 2,
							PGC_SUSET, GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.max_depth",
							"Deepest nesting of arrays and objects accepted in a record; deeper ones are rejected as too_deep.",
							NULL,
							&txpipe_max_depth, 64, 1, 1000,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.max_keys",
							"Most keys accepted in one object of a record; an object with more is rejected as too_many_keys.",
							NULL,
							&txpipe_max_keys, 10000, 1, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("txpipe.key_cache_size",
							"Keys each lookup route keeps in its per-backend cache before it starts afresh.",
							NULL,
							&txpipe_key_cache_size, 1000000, 0, INT_MAX,
							PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("txpipe.direct_write",
							 "Insert routes write their rows straight into their tables when the tables allow it.",
							 "Off, every insert route runs a prepared INSERT per batch, with a foreign-key trigger query per row.",
							 &txpipe_direct_write, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("txpipe.flat_decoder",
							 "Flat records of scalars are read by a direct scanner before the JSON parser.",
							 "Off, every record goes through the JSON parser; the values and rejects are the same either way.",
							 &txpipe_flat_decoder, true,
							 PGC_USERSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	txpipe_worker_init();
	txpipe_retention_init();
	MarkGUCPrefixReserved("txpipe");

	txpipe_spec_init();
	txpipe_copy_init();
	txpipe_alerts_init();
	if (process_shared_preload_libraries_in_progress)
	{
		txpipe_launch_init();
		txpipe_register_launcher();
	}
}
