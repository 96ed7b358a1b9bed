/*-------------------------------------------------------------------------
 *
 * txpipe.h
 *	  Shared types of txpipe: the compiled plan of a pipeline, the decoded
 *	  record, and the entry points of each subsystem.
 *
 * A pipeline spec (jsonb, txpipe.pipelines) is compiled once per backend
 * into a TxPlan: the contract as per-field rules, the routes with their
 * relation OIDs, column types and prepared statements, and one key cache
 * per lookup route.  Records are decoded straight into per-field slots
 * (TxValue), checked against the contract, then routed in batches.
 *
 *-------------------------------------------------------------------------
 */
#ifndef TXPIPE_H
#define TXPIPE_H

#include "postgres.h"

#include "executor/spi.h"
#include "nodes/pg_list.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"

/* TXPIPE_VERSION comes from txpipe.control, through the Makefile */

/* settings */
extern int	txpipe_batch_size;
extern int	txpipe_max_record_size;
extern int	txpipe_max_depth;
extern int	txpipe_max_keys;
extern int	txpipe_key_cache_size;
extern bool txpipe_direct_write;
extern bool txpipe_flat_decoder;

/*
 * A too_large reject keeps this many bytes of its record (cut on a
 * character boundary), with the full length and a SHA-256 of the bytes.
 */
#define TXPIPE_REJECT_PREFIX 1000

/*
 * A batch is routed once its payloads reach this many bytes, whatever
 * txpipe.batch_size says, so that the arrays a batch builds (rows, rejects,
 * inbox rows) stay far below the 1 GB a single value may have.
 */
#define TXPIPE_BATCH_BYTES (64 * 1024 * 1024)

/* txpipe.c */
extern int	txpipe_plan_by_index(void);

/* JSON kinds of a decoded value; TX_ABSENT means the key was not there */
typedef enum TxKind
{
	TX_ABSENT = 0,
	TX_NULL,
	TX_STRING,
	TX_NUMBER,
	TX_BOOL,
	TX_OBJECT,
	TX_ARRAY
} TxKind;

/* bit per JSON Schema type name */
#define TXT_NULL	0x01
#define TXT_STRING	0x02
#define TXT_NUMBER	0x04
#define TXT_INTEGER 0x08
#define TXT_BOOLEAN 0x10
#define TXT_OBJECT	0x20
#define TXT_ARRAY	0x40

typedef enum TxFormat
{
	TXF_NONE = 0,
	TXF_DATE,
	TXF_TIMESTAMP
} TxFormat;

typedef struct TxValue
{
	uint8		kind;			/* TxKind */
	bool		normalized;		/* text is the ISO form an inputFormat made */
	int			len;
	char	   *text;			/* de-escaped string, number lexeme,
								 * true/false, or raw JSON of a container */
} TxValue;

/*
 * A contract or condition pattern: its text, and when the pattern is a
 * plain sequence of characters and ASCII classes with repeat counts (as
 * ^[0-9a-f]{32}$), a direct matcher that gives the regex engine's answer.
 */
typedef struct TxPatternAtom
{
	uint64		set[2];			/* the ASCII characters it matches */
	int			min;
	int			max;			/* -1 = no bound */
} TxPatternAtom;

typedef struct TxPattern
{
	text	   *source;
	bool		simple;			/* matched by the atoms below */
	bool		anchor_start;
	bool		anchor_end;
	int			natoms;
	TxPatternAtom *atoms;
} TxPattern;

/* one allowed value of an enum */
typedef struct TxEnumValue
{
	uint8		kind;
	char	   *text;
} TxEnumValue;

/* datefmt.c: a compiled inputFormat */
typedef struct TxDateFormat TxDateFormat;
extern TxDateFormat *txpipe_datefmt_compile(const char *fmt, bool timestamp, char **problem);
extern char *txpipe_datefmt_parse(const TxDateFormat *f, const char *s, int len);
extern const char *txpipe_datefmt_source(const TxDateFormat *f);
extern int	txpipe_days_in_month(int y, int m);

/* a top-level field: its contract rules */
typedef struct TxField
{
	char	   *name;
	bool		required;
	uint8		types;			/* TXT_* bits; 0 = any */
	int			nenum;
	TxEnumValue *enumvals;
	TxPattern  *pattern;		/* NULL = none */
	char	   *minimum;		/* number lexemes; NULL = none */
	char	   *maximum;
	int			min_length;		/* -1 = none */
	int			max_length;
	uint8		format;			/* TxFormat */
	TxDateFormat *input_format; /* NULL = ISO, as format says */
	int8		numbers_as_strings; /* property's numbersAsStrings: -1 = unset,
									 * 0, 1 */
	int8		empty_is_absent;	/* property's emptyIsAbsent: -1 = unset,
									 * 0, 1 */
	bool		numstr;			/* resolved: a number lexeme in a string is
								 * taken as that number */
	bool		empty_absent;	/* resolved: "" is taken as absent */
} TxField;

typedef enum TxSourceKind
{
	TXS_FIELD,
	TXS_ROUTE,
	TXS_CONST
} TxSourceKind;

/* where a column's value comes from */
typedef struct TxColumn
{
	char	   *name;
	Oid			typid;
	int32		typmod;
	char	   *typname;		/* format_type_with_typemod */
	uint8		source;			/* TxSourceKind */
	int			field;			/* TXS_FIELD */
	int			route;			/* TXS_ROUTE */
	char	   *constval;		/* TXS_CONST; NULL = SQL NULL */
	int			lpad;			/* pad a field's text to this many chars */
	char		padchar;
} TxColumn;

typedef enum TxWhenOp
{
	TXW_EXISTS,
	TXW_PATTERN,
	TXW_EQUALS
} TxWhenOp;

typedef struct TxWhen
{
	int			field;
	uint8		op;				/* TxWhenOp */
	bool		negate;
	TxPattern  *pattern;
	TxEnumValue equals;
} TxWhen;

/*
 * An alert rule of the spec ("alerts"): raised while routing, for records
 * that were stored, once per rule, key and window (alerts.c).
 */
typedef enum TxAlertKind
{
	TXA_FLAG,					/* a record matching a condition */
	TXA_RATE,					/* more than threshold records per key in a
								 * window */
	TXA_OUTLIER,				/* a number far from its key's history */
	TXA_BASELINE				/* a window's count far above the key's
								 * recent windows */
} TxAlertKind;

/* keys longer than this do not raise (they could not be indexed) */
#define TXPIPE_ALERT_KEY_MAX 256

typedef struct TxAlertRule
{
	char	   *name;
	uint8		kind;			/* TxAlertKind */
	char	   *severity;
	int			nkeys;			/* the key: these fields */
	int		   *key_fields;
	int64		window;			/* width in microseconds; 0 = one window */
	char	   *window_text;	/* as the spec writes it */
	int			time_field;		/* event time; -1 = none */
	struct TxWhen *when;		/* NULL = every record */
	int64		threshold;		/* rate */
	int64		lateness;		/* rate, baseline: how long after its window
								 * closed a record still counts, in
								 * microseconds */
	int			history;		/* baseline: windows averaged */
	double		factor;			/* baseline: raises above factor x average */
	int64		min_count;		/* baseline: and at least this many */
	int			value_field;	/* outlier */
	int			min_history;
	double		z;
	bool		mask_key;		/* readers and NOTIFY see the last four */
	int64		definition;		/* digest of the rule as written: state
								 * kept for another definition is not used */
} TxAlertRule;

typedef struct TxRoute
{
	char	   *name;
	bool		lookup;			/* get-or-create by key, else insert */
	bool		grain;			/* holds the idempotency key */
	Oid			relid;
	char	   *relname;		/* quoted, schema-qualified */
	int			ncols;
	int			nkeys;			/* lookup: cols[0..nkeys-1] are the key */
	TxColumn   *cols;
	int			idem_col;		/* grain: column holding the key */
	char	   *idcol;			/* lookup: surrogate key column */
	TxWhen	   *when;
	SPIPlanPtr	select_plan;	/* lookup: ordinal, id of existing keys */
	SPIPlanPtr	insert_plan;	/* lookup: insert missing keys; insert:
								 * the rows */
	SPIPlanPtr	dup_plan;		/* grain: ordinals of keys already present */
	HTAB	   *cache;			/* lookup: key text -> id */
	long		cache_entries;
	struct TxWriter *writer;	/* insert: the direct write; NULL = the
								 * statement path */
	char	   *write_note;		/* insert: why not written directly */
} TxRoute;

typedef struct TxPlan
{
	char		name[NAMEDATALEN];
	int64		version;
	Oid			owner;
	MemoryContext cxt;
	bool		valid;
	int			nfields;
	TxField    *fields;
	HTAB	   *field_index;	/* name -> field number */
	int		   *field_after;	/* decoder: [f + 1] = the field that followed
								 * field f (or came first, f = -1) last time */
	bool		additional_ok;
	bool		numbers_as_strings; /* contract's numbersAsStrings */
	bool		empty_is_absent;	/* contract's emptyIsAbsent */
	List	   *ignored;		/* contract's ignore: top-level field names
								 * dropped before the contract */
	int			idem_field;		/* -1 = none */
	int			nkey_fields;	/* > 0: the key is a digest of these fields
								 * (idem_field is then a slot of its own,
								 * "$key", that no record can fill) */
	int		   *key_fields;
	int			event_field;	/* -1 = none */
	int			order_field;	/* queue order key; -1 = none */
	bool		async;			/* COPY goes to the inbox */
	int			nroutes;
	TxRoute    *routes;
	int			grain_route;	/* -1 = none */
	int			nconflict;		/* grain columns a key conflict compares */
	struct TxConflictCol *conflict;
	List	   *relids;			/* every routed relation */
	int			nalerts;
	TxAlertRule *alerts;
} TxPlan;

/* the first (or every) problem found in a record */
typedef struct TxError
{
	const char *code;			/* NULL = no error */
	char	   *path;
	char	   *message;
	char	   *sqlstate;		/* db_refused only */
} TxError;

typedef struct TxRecord
{
	const char *payload;		/* exactly as received */
	int			len;
	bytea	   *raw;			/* set when payload is not valid text */
	TxValue    *values;			/* plan->nfields slots */
	List	   *unknown_keys;	/* top-level keys outside the contract */
	TxError		err;
	char	   *errors;			/* contract rejects: every error, a JSON array */
	bool		duplicate;
	bool		conflict;		/* key stored (or earlier) with other content */
	char	   *conflict_message;
	bool		routed;
	int64	   *ids;			/* per route: surrogate id */
	bool	   *idnull;
} TxRecord;

typedef struct TxCounts
{
	int64		received;
	int64		accepted;
	int64		rejected;
	int64		duplicates;
} TxCounts;

/* spi.c: identity, search_path and memory of txpipe's statements */
typedef struct TxIdentity
{
	Oid			userid;
	int			sec;
	int			nest;
} TxIdentity;
extern void txpipe_enter(Oid role, TxIdentity *save);
extern void txpipe_enter_catalog(TxIdentity *save);
extern void txpipe_leave(TxIdentity *save);
extern Oid	txpipe_catalog_owner(void);
extern bool txpipe_owner_may_run(Oid owner, Oid role);
extern Oid	txpipe_func_owner(Oid fn);
extern SPIPlanPtr txpipe_spi_keep(const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr txpipe_spi_keep_generic(const char *sql, int nargs, Oid *argtypes);
extern uint64 txpipe_spi_run(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only,
							 long count, int expect, const char *what);
extern int	txpipe_spi_exec(SPIPlanPtr plan, Datum *args, const char *nulls, bool read_only,
							long count);
extern void txpipe_spi_connect(void);

/* spec.c */
extern TxPlan *txpipe_get_plan(const char *pipeline);
extern void txpipe_check_send(const char *pipeline);
extern void txpipe_check_owner(TxPlan *plan, const char *action);
extern void txpipe_compile_check(const char *name, Jsonb *spec, Oid owner);
extern void txpipe_invalidate_plans(void);
extern void txpipe_reset_key_caches(void);
extern void txpipe_spec_init(void);
extern int	txpipe_field_lookup(TxPlan *plan, const char *name);

/* decoder.c */
extern bool txpipe_decode(TxPlan *plan, TxRecord *rec);
extern bool txpipe_check_encoding(TxRecord *rec);
extern void txpipe_too_large(TxRecord *rec, const char *payload, int64 len, bool check_encoding);

/* contract.c */
extern int	txpipe_contract_check(TxPlan *plan, TxRecord *rec, TxError *errors,
								  int maxerrors);
extern bool txpipe_value_matches(TxValue *v, TxPattern *pattern);
extern TxPattern *txpipe_pattern_compile(text *source);
extern bool txpipe_value_equals(TxValue *v, TxEnumValue *e);
extern char *txpipe_number_canonical(const char *lexeme);

/* identity.c */
extern void txpipe_content_key(TxPlan *plan, TxRecord *rec);
extern void txpipe_conflict_compile(TxPlan *plan);
extern int	txpipe_conflict_column(TxPlan *plan, int i);
extern const char *txpipe_conflict_column_name(TxPlan *plan, int i);
extern bool txpipe_batch_conflict(TxPlan *plan, TxRecord *first, TxRecord *rec);
extern bool txpipe_stored_conflict(TxPlan *plan, TxRecord *rec, Datum *stored, bool *isnull);

/* router.c */
extern void txpipe_route(TxPlan *plan, TxRecord *recs, int nrecs,
						 const char *source, TxCounts *counts);

/* the errors of a contract reject kept in txpipe.rejects.errors */
#define TXPIPE_REJECT_MAX_ERRORS 20
extern void txpipe_set_error(TxError *err, const char *code, const char *path,
							 const char *fmt,...) pg_attribute_printf(4, 5);
extern bool txpipe_column_value(TxRecord *rec, TxColumn *col, const char **txt,
								int *len, int64 *id);

/* alerts.c */
extern void txpipe_raise_alerts(TxPlan *plan, TxRecord *recs, int *idx, int n);
extern void txpipe_alerts_init(void);
extern void txpipe_alerts_flush(void);
extern bool txpipe_when_holds(struct TxWhen *when, TxRecord *rec);

/* writer.c */
extern void txpipe_writer_compile(TxPlan *plan, TxRoute *route);
extern void txpipe_writer_free(TxRoute *route);
extern bool txpipe_writer_insert(TxPlan *plan, TxRoute *route, TxRecord **rows, int n);
extern bool txpipe_writer_key_conflict(TxPlan *plan, ErrorData *edata);
extern void txpipe_writer_forget_locks(void);
extern Oid	txpipe_writer_probe_index(TxRoute *route);
extern bool txpipe_writer_find_stored(TxPlan *plan, TxRoute *route, TxRecord *recs, int *idx, int n);

/* copy.c */
extern void txpipe_copy_init(void);

/* queue.c */
#define TXPIPE_QUEUE_CLASSES 16
extern int64 txpipe_queue_drain(const char *pipeline, uint32 mask, int max, int start,
								const char *poison, TxCounts *counts);
extern int	txpipe_queue_class(const char *key, int len);
extern void txpipe_queue_put(TxPlan *plan, TxRecord *recs, int n, const char *source);

/* worker.c */
extern int	txpipe_workers;
extern int	txpipe_worker_poll_interval;
extern int	txpipe_worker_max_attempts;
extern char *txpipe_databases;
extern char *txpipe_worker_conninfo;
extern int	txpipe_inbox_slot_seconds;
extern int	txpipe_worker_idle_timeout;
extern void txpipe_worker_init(void);
extern void txpipe_register_launcher(void);

#define TX_WORKER_EXPLICIT 0x01	/* started by start_worker() or worker 0 */
#define TX_WORKER_PROBE 0x02	/* leaves at once if nothing is queued */
struct BackgroundWorkerHandle;
extern bool txpipe_register_worker(Oid dboid, int index, struct BackgroundWorkerHandle **handle,
								   bool notify_me, int flags);

/* launcher.c: why a database's worker 0 left */
typedef enum TxPark
{
	TX_PARK_NONE = 0,
	TX_PARK_IDLE,				/* nothing to do: started again by work */
	TX_PARK_DISABLED,			/* txpipe.stop_worker() */
	TX_PARK_NO_EXTENSION
} TxPark;
extern void txpipe_launch_init(void);
extern bool txpipe_launch_enabled(void);
extern bool txpipe_launch_want(void);
extern bool txpipe_launch_attach(int index);
extern bool txpipe_launch_begin(void);
extern void txpipe_launch_worked(void);
extern void txpipe_launch_ask(void);
extern bool txpipe_launch_asked(void);
extern int64 txpipe_launch_last_work(void);
extern void txpipe_launch_running(bool running);
extern bool txpipe_launch_routing(void);
extern void txpipe_launch_park(TxPark why);
extern bool txpipe_database_listed(const char *name);

/* retention.c */
extern int	txpipe_rejects_retention;
extern int	txpipe_batches_retention;
extern int	txpipe_alerts_retention;
extern void txpipe_retention_init(void);
extern void txpipe_retention_pass(List *unused);

#endif							/* TXPIPE_H */
