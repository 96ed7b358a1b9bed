/*-------------------------------------------------------------------------
 *
 * spec.c
 *	  Compiles a pipeline spec (jsonb) into a TxPlan, and keeps one plan per
 *	  pipeline per backend.
 *
 * A plan is rebuilt when the pipeline's version in txpipe.pipelines
 * changes (checked once per batch) or when a routed relation gets a
 * relcache invalidation (ALTER TABLE, DROP, TRUNCATE, index changes).
 * Every spec error names the spec path it concerns, e.g.
 * $.routes[2].key.zip, with SQLSTATE 22023.
 *
 *-------------------------------------------------------------------------
 */
#include "txpipe.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "regex/regex.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

typedef struct PlanEntry
{
	char		name[NAMEDATALEN];
	TxPlan	   *plan;
} PlanEntry;

typedef struct FieldIndexEntry
{
	char		name[NAMEDATALEN * 2];
	int			field;
} FieldIndexEntry;

static HTAB *plans = NULL;

/* ----------------------------------------------------------------
 * spec errors and jsonb access
 * ----------------------------------------------------------------
 */

static void spec_error(const char *path, const char *fmt,...) pg_attribute_printf(2, 3) pg_attribute_noreturn();

static void
spec_error(const char *path, const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;

	initStringInfo(&buf);
	for (;;)
	{
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid pipeline spec at %s: %s", path, buf.data),
			 errhint("The spec format is described in the README, section \"Pipeline specs\".")));
}

static const char *
jbv_type_name(JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "a value";
	}
}

static bool
jbv_is_object(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsObject(v->val.binary.data);
}

static bool
jbv_is_array(JsonbValue *v)
{
	return v->type == jbvBinary && JsonContainerIsArray(v->val.binary.data);
}

static JsonbValue *
obj_get(JsonbValue *obj, const char *key)
{
	return getKeyJsonValueFromContainer(obj->val.binary.data, key, strlen(key), NULL);
}

static char *
jbv_string(JsonbValue *v, const char *path)
{
	if (v->type != jbvString)
		spec_error(path, "expected a string, found %s", jbv_type_name(v));
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* a JSON number as its exact lexeme */
static char *
jbv_number(JsonbValue *v, const char *path)
{
	if (v->type != jbvNumeric)
		spec_error(path, "expected a number, found %s", jbv_type_name(v));
	return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
}

static int
jbv_int(JsonbValue *v, const char *path, int minval)
{
	char	   *s = jbv_number(v, path);
	char	   *end;
	long		n;

	n = strtol(s, &end, 10);
	if (*end != '\0' || n < minval || n > INT_MAX)
		spec_error(path, "expected a whole number of at least %d, found %s", minval, s);
	return (int) n;
}

static bool
jbv_bool(JsonbValue *v, const char *path)
{
	if (v->type != jbvBool)
		spec_error(path, "expected true or false, found %s", jbv_type_name(v));
	return v->val.boolean;
}

/* the keys of an object, in jsonb order, with their values */
typedef struct KeyVal
{
	char	   *key;
	JsonbValue	val;
} KeyVal;

static KeyVal *
obj_items(JsonbValue *obj, int *n)
{
	JsonbIterator *it = JsonbIteratorInit(obj->val.binary.data);
	JsonbValue	v;
	JsonbIteratorToken tok;
	int			count = JsonContainerSize(obj->val.binary.data);
	KeyVal	   *items = palloc0(sizeof(KeyVal) * Max(count, 1));
	int			i = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			items[i].key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			items[i++].val = v;
	}
	*n = i;
	return items;
}

static void
check_keys(JsonbValue *obj, const char *path, const char *const *allowed)
{
	int			n;
	KeyVal	   *items = obj_items(obj, &n);

	for (int i = 0; i < n; i++)
	{
		bool		ok = false;

		for (const char *const *a = allowed; *a; a++)
			if (strcmp(items[i].key, *a) == 0)
				ok = true;
		if (!ok)
		{
			StringInfoData list;

			initStringInfo(&list);
			for (const char *const *a = allowed; *a; a++)
				appendStringInfo(&list, "%s%s", a == allowed ? "" : ", ", *a);
			spec_error(psprintf("%s.%s", path, items[i].key),
					   "unknown key \"%s\"; allowed keys are: %s", items[i].key, list.data);
		}
	}
}

/* ----------------------------------------------------------------
 * fields
 * ----------------------------------------------------------------
 */

int
txpipe_field_lookup(TxPlan *plan, const char *name)
{
	FieldIndexEntry *e;

	if (strlen(name) >= NAMEDATALEN * 2)
		return -1;
	e = hash_search(plan->field_index, name, HASH_FIND, NULL);
	return e ? e->field : -1;
}

static int
field_add(TxPlan *plan, const char *name, const char *path, int *capacity)
{
	FieldIndexEntry *e;
	char		key[NAMEDATALEN * 2];
	bool		found;
	TxField    *f;

	if (strlen(name) >= sizeof(key))
		spec_error(path, "field name \"%s\" is longer than %d bytes", name, (int) sizeof(key) - 1);
	memset(key, 0, sizeof(key));
	strcpy(key, name);
	e = hash_search(plan->field_index, key, HASH_ENTER, &found);
	if (found)
		return e->field;
	if (plan->nfields == *capacity)
	{
		*capacity *= 2;
		plan->fields = repalloc(plan->fields, sizeof(TxField) * *capacity);
	}
	f = &plan->fields[plan->nfields];
	memset(f, 0, sizeof(TxField));
	f->name = pstrdup(name);
	f->min_length = -1;
	f->max_length = -1;
	f->numbers_as_strings = -1;
	f->empty_is_absent = -1;
	e->field = plan->nfields++;
	return e->field;
}

static uint8
type_bit(const char *t, const char *path)
{
	if (strcmp(t, "null") == 0)
		return TXT_NULL;
	if (strcmp(t, "string") == 0)
		return TXT_STRING;
	if (strcmp(t, "number") == 0)
		return TXT_NUMBER;
	if (strcmp(t, "integer") == 0)
		return TXT_INTEGER;
	if (strcmp(t, "boolean") == 0)
		return TXT_BOOLEAN;
	if (strcmp(t, "object") == 0)
		return TXT_OBJECT;
	if (strcmp(t, "array") == 0)
		return TXT_ARRAY;
	spec_error(path, "unknown type \"%s\"; types are null, string, number, integer, boolean, object, array", t);
}

/* a scalar spec value as a decoded value (for enum and equals) */
static void
jbv_to_enum(JsonbValue *v, TxEnumValue *e, const char *path)
{
	switch (v->type)
	{
		case jbvNull:
			e->kind = TX_NULL;
			e->text = NULL;
			break;
		case jbvString:
			e->kind = TX_STRING;
			e->text = pnstrdup(v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			e->kind = TX_NUMBER;
			e->text = jbv_number(v, path);
			break;
		case jbvBool:
			e->kind = TX_BOOL;
			e->text = v->val.boolean ? "true" : "false";
			break;
		default:
			spec_error(path, "only strings, numbers, booleans and null are supported here");
	}
}

static TxPattern *
compile_pattern(JsonbValue *v, const char *path)
{
	char	   *p = jbv_string(v, path);
	text	   *t = cstring_to_text(p);
	MemoryContext cxt = CurrentMemoryContext;

	/* compile once now so that a bad pattern is a spec error */
	PG_TRY();
	{
		(void) RE_compile_and_cache(t, REG_ADVANCED, C_COLLATION_OID);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		spec_error(path, "invalid pattern \"%s\": %s", p, edata->message);
	}
	PG_END_TRY();
	return txpipe_pattern_compile(t);
}

static void
compile_property(TxPlan *plan, TxField *f, JsonbValue *rules, const char *path)
{
	static const char *const allowed[] = {"type", "enum", "pattern", "minimum", "maximum",
		"minLength", "maxLength", "format", "inputFormat", "numbersAsStrings", "emptyIsAbsent",
		"description", "title", NULL};
	JsonbValue *v;
	char	   *p;

	if (!jbv_is_object(rules))
		spec_error(path, "a property's rules must be an object, found %s", jbv_type_name(rules));
	check_keys(rules, path, allowed);

	if ((v = obj_get(rules, "type")) != NULL)
	{
		p = psprintf("%s.type", path);
		if (v->type == jbvString)
			f->types = type_bit(jbv_string(v, p), p);
		else if (jbv_is_array(v))
		{
			int			n = JsonContainerSize(v->val.binary.data);

			if (n == 0)
				spec_error(p, "the list of types is empty");
			for (int i = 0; i < n; i++)
			{
				char	   *ip = psprintf("%s[%d]", p, i);

				f->types |= type_bit(jbv_string(getIthJsonbValueFromContainer(v->val.binary.data, i), ip), ip);
			}
		}
		else
			spec_error(p, "expected a type name or a list of them, found %s", jbv_type_name(v));
	}
	if ((v = obj_get(rules, "enum")) != NULL)
	{
		p = psprintf("%s.enum", path);
		if (!jbv_is_array(v) || JsonContainerSize(v->val.binary.data) == 0)
			spec_error(p, "expected a non-empty array of allowed values");
		f->nenum = JsonContainerSize(v->val.binary.data);
		f->enumvals = palloc(sizeof(TxEnumValue) * f->nenum);
		for (int i = 0; i < f->nenum; i++)
			jbv_to_enum(getIthJsonbValueFromContainer(v->val.binary.data, i),
						&f->enumvals[i], psprintf("%s[%d]", p, i));
	}
	if ((v = obj_get(rules, "pattern")) != NULL)
		f->pattern = compile_pattern(v, psprintf("%s.pattern", path));
	if ((v = obj_get(rules, "minimum")) != NULL)
		f->minimum = jbv_number(v, psprintf("%s.minimum", path));
	if ((v = obj_get(rules, "maximum")) != NULL)
		f->maximum = jbv_number(v, psprintf("%s.maximum", path));
	if ((v = obj_get(rules, "minLength")) != NULL)
		f->min_length = jbv_int(v, psprintf("%s.minLength", path), 0);
	if ((v = obj_get(rules, "maxLength")) != NULL)
		f->max_length = jbv_int(v, psprintf("%s.maxLength", path), 0);
	if ((v = obj_get(rules, "format")) != NULL)
	{
		char	   *fmt;

		p = psprintf("%s.format", path);
		fmt = jbv_string(v, p);

		if (strcmp(fmt, "date") == 0)
			f->format = TXF_DATE;
		else if (strcmp(fmt, "timestamp") == 0 || strcmp(fmt, "date-time") == 0)
			f->format = TXF_TIMESTAMP;
		else
			spec_error(p, "unknown format \"%s\"; formats are date and timestamp", fmt);
	}
	if ((v = obj_get(rules, "inputFormat")) != NULL)
	{
		char	   *problem;

		p = psprintf("%s.inputFormat", path);
		if (f->format == TXF_NONE)
			spec_error(p, "inputFormat applies to a field of format date or timestamp; field \"%s\" has no format",
					   f->name);
		if (f->types != 0 && (f->types & TXT_STRING) == 0)
			spec_error(p, "inputFormat reads strings; field \"%s\" may not be a string", f->name);
		f->input_format = txpipe_datefmt_compile(jbv_string(v, p), f->format == TXF_TIMESTAMP, &problem);
		if (f->input_format == NULL)
			spec_error(p, "invalid input format \"%s\": %s", jbv_string(v, p), problem);
	}
	if ((v = obj_get(rules, "numbersAsStrings")) != NULL)
	{
		p = psprintf("%s.numbersAsStrings", path);
		f->numbers_as_strings = jbv_bool(v, p);
		if (f->numbers_as_strings &&
			(f->types & (TXT_NUMBER | TXT_INTEGER)) == 0)
			spec_error(p, "numbersAsStrings applies to a field of type number or integer; field \"%s\" %s",
					   f->name, f->types ? "is neither" : "has no type");
		if (f->numbers_as_strings && (f->types & TXT_STRING) != 0)
			spec_error(p, "numbersAsStrings cannot apply to field \"%s\", which may be a string", f->name);
	}
	if ((v = obj_get(rules, "emptyIsAbsent")) != NULL)
	{
		p = psprintf("%s.emptyIsAbsent", path);
		f->empty_is_absent = jbv_bool(v, p);
	}
}

/* "" among a field's enum values, which emptyIsAbsent makes unreachable */
static bool
enum_has_empty(TxField *f)
{
	for (int e = 0; e < f->nenum; e++)
		if (f->enumvals[e].kind == TX_STRING && f->enumvals[e].text[0] == '\0')
			return true;
	return false;
}

static bool
field_ignored(TxPlan *plan, const char *name)
{
	ListCell   *lc;

	foreach(lc, plan->ignored)
		if (strcmp(lfirst(lc), name) == 0)
			return true;
	return false;
}

static void
compile_contract(TxPlan *plan, JsonbValue *contract, int *capacity)
{
	static const char *const allowed[] = {"type", "required", "properties",
		"additionalProperties", "numbersAsStrings", "emptyIsAbsent", "ignore",
		"description", "title", "$schema", NULL};
	JsonbValue *v;

	if (!jbv_is_object(contract))
		spec_error("$.contract", "expected an object, found %s", jbv_type_name(contract));
	check_keys(contract, "$.contract", allowed);

	if ((v = obj_get(contract, "type")) != NULL &&
		strcmp(jbv_string(v, "$.contract.type"), "object") != 0)
		spec_error("$.contract.type", "a record is always an object: the type must be \"object\"");

	if ((v = obj_get(contract, "properties")) != NULL)
	{
		int			n;
		KeyVal	   *items;

		if (!jbv_is_object(v))
			spec_error("$.contract.properties", "expected an object, found %s", jbv_type_name(v));
		items = obj_items(v, &n);
		for (int i = 0; i < n; i++)
		{
			char	   *path = psprintf("$.contract.properties.%s", items[i].key);
			int			fno = field_add(plan, items[i].key, path, capacity);

			compile_property(plan, &plan->fields[fno], &items[i].val, path);
		}
	}
	if ((v = obj_get(contract, "required")) != NULL)
	{
		int			n;

		if (!jbv_is_array(v))
			spec_error("$.contract.required", "expected an array of field names");
		n = JsonContainerSize(v->val.binary.data);
		for (int i = 0; i < n; i++)
		{
			char	   *path = psprintf("$.contract.required[%d]", i);
			char	   *name = jbv_string(getIthJsonbValueFromContainer(v->val.binary.data, i), path);
			int			fno = txpipe_field_lookup(plan, name);

			if (fno < 0 && !plan->additional_ok)
				spec_error(path, "required field \"%s\" is not in properties, and additionalProperties is false", name);
			fno = field_add(plan, name, path, capacity);
			plan->fields[fno].required = true;
		}
	}
	if ((v = obj_get(contract, "numbersAsStrings")) != NULL)
		plan->numbers_as_strings = jbv_bool(v, "$.contract.numbersAsStrings");
	if ((v = obj_get(contract, "emptyIsAbsent")) != NULL)
		plan->empty_is_absent = jbv_bool(v, "$.contract.emptyIsAbsent");
	for (int i = 0; i < plan->nfields; i++)
	{
		TxField    *f = &plan->fields[i];

		if (f->empty_is_absent == 1 && enum_has_empty(f))
			spec_error(psprintf("$.contract.properties.%s.emptyIsAbsent", f->name),
					   "field \"%s\" lists \"\" in its enum, which emptyIsAbsent makes absent", f->name);
		if (f->empty_is_absent == -1 && plan->empty_is_absent && enum_has_empty(f))
			spec_error("$.contract.emptyIsAbsent",
					   "field \"%s\" lists \"\" in its enum, which emptyIsAbsent makes absent; "
					   "set \"emptyIsAbsent\": false on the field", f->name);
	}
	if ((v = obj_get(contract, "ignore")) != NULL)
	{
		int			n;

		if (!jbv_is_array(v))
			spec_error("$.contract.ignore", "expected an array of field names, found %s", jbv_type_name(v));
		n = JsonContainerSize(v->val.binary.data);
		for (int i = 0; i < n; i++)
		{
			char	   *path = psprintf("$.contract.ignore[%d]", i);
			char	   *name = jbv_string(getIthJsonbValueFromContainer(v->val.binary.data, i), path);

			if (txpipe_field_lookup(plan, name) >= 0)
				spec_error(path, "field \"%s\" is in the contract (properties or required); a field is either checked or ignored",
						   name);
			if (field_ignored(plan, name))
				spec_error(path, "field \"%s\" is listed twice", name);
			plan->ignored = lappend(plan->ignored, name);
		}
	}
}

/* a field's numbersAsStrings and emptyIsAbsent, the contract's unless it says its own */
static void
resolve_optins(TxPlan *plan)
{
	for (int i = 0; i < plan->nfields; i++)
	{
		TxField    *f = &plan->fields[i];

		if (f->numbers_as_strings >= 0)
			f->numstr = f->numbers_as_strings;
		else
			f->numstr = plan->numbers_as_strings &&
				(f->types & (TXT_NUMBER | TXT_INTEGER)) != 0 &&
				(f->types & TXT_STRING) == 0;
		f->empty_absent = f->empty_is_absent >= 0 ? f->empty_is_absent : plan->empty_is_absent;
	}
}

/* ----------------------------------------------------------------
 * routes
 * ----------------------------------------------------------------
 */

static int
route_lookup(TxPlan *plan, int upto, const char *name)
{
	for (int i = 0; i < upto; i++)
		if (strcmp(plan->routes[i].name, name) == 0)
			return i;
	return -1;
}

static int
source_field(TxPlan *plan, const char *name, const char *path, int *capacity)
{
	int			fno;

	if (strcmp(name, "$key") == 0)
	{
		if (plan->nkey_fields == 0)
			spec_error(path, "\"$key\" is the digest of the fields an array idempotency_key lists; "
					   "this spec has %s", plan->idem_field >= 0 ? "a key field" : "no idempotency_key");
		return plan->idem_field;
	}
	fno = txpipe_field_lookup(plan, name);
	if (fno >= 0)
		return fno;
	if (field_ignored(plan, name))
		spec_error(path, "field \"%s\" is ignored by $.contract.ignore", name);
	if (!plan->additional_ok)
		spec_error(path, "field \"%s\" is not in the contract's properties", name);
	return field_add(plan, name, path, capacity);
}

/*
 * "idempotency_key": ["f1", ...]: the key is a digest of those fields
 * (identity.c), kept in a slot of its own that the decoder never fills: it
 * is not in the field index, and no record's key can reach it.
 */
static void
compile_content_key(TxPlan *plan, JsonbValue *list, int *capacity)
{
	int			n = JsonContainerSize(list->val.binary.data);
	TxField    *f;

	if (n == 0)
		spec_error("$.idempotency_key", "expected a field name or a non-empty array of field names");
	plan->key_fields = palloc(sizeof(int) * n);
	for (int i = 0; i < n; i++)
	{
		char	   *path = psprintf("$.idempotency_key[%d]", i);
		char	   *name = jbv_string(getIthJsonbValueFromContainer(list->val.binary.data, i), path);
		int			fno;

		if (strcmp(name, "$key") == 0)
			spec_error(path, "\"$key\" is the key itself");
		fno = source_field(plan, name, path, capacity);
		for (int j = 0; j < plan->nkey_fields; j++)
			if (plan->key_fields[j] == fno)
				spec_error(path, "field \"%s\" is listed twice", name);
		plan->key_fields[plan->nkey_fields++] = fno;
	}
	if (plan->nfields == *capacity)
	{
		*capacity *= 2;
		plan->fields = repalloc(plan->fields, sizeof(TxField) * *capacity);
	}
	f = &plan->fields[plan->nfields];
	memset(f, 0, sizeof(TxField));
	f->name = "$key";
	f->min_length = -1;
	f->max_length = -1;
	f->numbers_as_strings = 0;
	f->empty_is_absent = 0;
	plan->idem_field = plan->nfields++;
}

static void
route_source(TxPlan *plan, int r, TxColumn *col, JsonbValue *src, const char *path, int *capacity)
{
	col->padchar = ' ';
	if (src->type == jbvString)
	{
		char	   *s = jbv_string(src, path);

		if (s[0] == '@')
		{
			int			ref = route_lookup(plan, r, s + 1);

			if (ref < 0)
				spec_error(path, "\"%s\" names no earlier route", s);
			if (!plan->routes[ref].lookup)
				spec_error(path, "route \"%s\" is an insert route; only lookup routes (with a key) give an id", s + 1);
			col->source = TXS_ROUTE;
			col->route = ref;
		}
		else
		{
			col->source = TXS_FIELD;
			col->field = source_field(plan, s, path, capacity);
		}
	}
	else if (jbv_is_object(src))
	{
		static const char *const allowed[] = {"field", "route", "const", "lpad", "pad", NULL};
		JsonbValue *v;

		check_keys(src, path, allowed);
		if ((v = obj_get(src, "field")) != NULL)
		{
			col->source = TXS_FIELD;
			col->field = source_field(plan, jbv_string(v, psprintf("%s.field", path)), path, capacity);
		}
		else if ((v = obj_get(src, "route")) != NULL)
		{
			char	   *rp = psprintf("%s.route", path);
			char	   *name = jbv_string(v, rp);
			int			ref = route_lookup(plan, r, name);

			if (ref < 0 || !plan->routes[ref].lookup)
				spec_error(rp, "\"%s\" names no earlier lookup route", name);
			col->source = TXS_ROUTE;
			col->route = ref;
		}
		else if ((v = obj_get(src, "const")) != NULL)
		{
			TxEnumValue e;

			jbv_to_enum(v, &e, psprintf("%s.const", path));
			col->source = TXS_CONST;
			col->constval = e.text;
		}
		else
			spec_error(path, "a source object needs \"field\", \"route\" or \"const\"");
		if ((v = obj_get(src, "lpad")) != NULL)
		{
			if (col->source != TXS_FIELD)
				spec_error(psprintf("%s.lpad", path), "lpad applies to a field");
			col->lpad = jbv_int(v, psprintf("%s.lpad", path), 1);
			col->padchar = '0';
		}
		if ((v = obj_get(src, "pad")) != NULL)
		{
			char	   *pp = psprintf("%s.pad", path);
			char	   *pad = jbv_string(v, pp);

			if (strlen(pad) != 1)
				spec_error(pp, "pad is one ASCII character");
			col->padchar = pad[0];
		}
	}
	else
		spec_error(path, "a source is a field name, \"@route\", or an object; found %s", jbv_type_name(src));
}

static void
resolve_column(TxRoute *route, TxColumn *col, const char *path)
{
	AttrNumber	attnum = get_attnum(route->relid, col->name);
	Oid			collid;

	if (attnum == InvalidAttrNumber || attnum < 0)
		spec_error(path, "table %s has no column \"%s\"", route->relname, col->name);
	if (get_attgenerated(route->relid, attnum))
		spec_error(path, "column \"%s\" is generated and cannot be written", col->name);
	get_atttypetypmodcoll(route->relid, attnum, &col->typid, &col->typmod, &collid);
	col->typname = format_type_extended(col->typid, col->typmod,
										FORMAT_TYPE_TYPEMOD_GIVEN | FORMAT_TYPE_FORCE_QUALIFY);
}

static void
parse_columns(TxPlan *plan, int r, JsonbValue *obj, const char *path,
			  List **cols, int *capacity)
{
	int			n;
	KeyVal	   *items;

	if (!jbv_is_object(obj))
		spec_error(path, "expected an object of column: source, found %s", jbv_type_name(obj));
	items = obj_items(obj, &n);
	for (int i = 0; i < n; i++)
	{
		TxColumn   *col = palloc0(sizeof(TxColumn));
		char	   *cp = psprintf("%s.%s", path, items[i].key);

		col->name = items[i].key;
		route_source(plan, r, col, &items[i].val, cp, capacity);
		resolve_column(&plan->routes[r], col, cp);
		for (ListCell *lc = list_head(*cols); lc; lc = lnext(*cols, lc))
			if (strcmp(((TxColumn *) lfirst(lc))->name, col->name) == 0)
				spec_error(cp, "column \"%s\" is written twice", col->name);
		*cols = lappend(*cols, col);
	}
}

static Oid
rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

static bool
owner_may_run(TxPlan *plan, Oid role)
{
	return txpipe_owner_may_run(plan->owner, role);
}

static void
owner_error(TxPlan *plan, const char *path, const char *what, Oid role)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("invalid pipeline spec at %s: %s belongs to role %s, not to the pipeline's owner %s",
					path, what, GetUserNameFromId(role, false), GetUserNameFromId(plan->owner, false)),
			 errdetail("Routing and refresh run as the pipeline's owner, so everything a routed table or the refresh function runs would run with that role's rights."),
			 errhint("Have the pipeline created by the role that owns its tables and refresh function (or by a member of that role), or ALTER ... OWNER TO the pipeline's owner.")));
}

/* a routed table and each of its partitions belong to the owner */
static void
check_table_owner(TxPlan *plan, TxRoute *route, const char *path)
{
	List	   *rels = find_all_inheritors(route->relid, NoLock, NULL);
	ListCell   *lc;

	foreach(lc, rels)
	{
		Oid			relid = lfirst_oid(lc);
		Oid			owner = rel_owner(relid);

		if (!owner_may_run(plan, owner))
			owner_error(plan, path, psprintf("table %s", relid == route->relid ? route->relname :
											 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
																		get_rel_name(relid))),
						owner);
	}
}

/* is there a valid, non-partial unique index on exactly these columns? */
static bool
has_unique_index(Oid relid, TxColumn *cols, int ncols)
{
	Relation	rel = table_open(relid, AccessShareLock);
	List	   *indexes = RelationGetIndexList(rel);
	bool		found = false;
	ListCell   *lc;

	foreach(lc, indexes)
	{
		Relation	idx = index_open(lfirst_oid(lc), AccessShareLock);
		Form_pg_index ind = idx->rd_index;

		if (ind->indisunique && ind->indisvalid && ind->indnkeyatts == ncols &&
			RelationGetIndexPredicate(idx) == NIL &&
			RelationGetIndexExpressions(idx) == NIL)
		{
			bool		all = true;

			for (int i = 0; i < ncols && all; i++)
			{
				AttrNumber	a = get_attnum(relid, cols[i].name);
				bool		in = false;

				for (int k = 0; k < ind->indnkeyatts; k++)
					if (ind->indkey.values[k] == a)
						in = true;
				all = in;
			}
			found = all;
		}
		index_close(idx, AccessShareLock);
		if (found)
			break;
	}
	table_close(rel, AccessShareLock);
	return found;
}

static TxWhen *
compile_when(TxPlan *plan, JsonbValue *w, const char *path, int *capacity)
{
	static const char *const allowed[] = {"field", "exists", "pattern", "equals", "not", NULL};
	JsonbValue *v;
	TxWhen	   *when = palloc0(sizeof(TxWhen));
	int			ops = 0;

	if (!jbv_is_object(w))
		spec_error(path, "expected an object, found %s", jbv_type_name(w));
	check_keys(w, path, allowed);
	if ((v = obj_get(w, "field")) == NULL)
		spec_error(path, "a condition needs \"field\"");
	when->field = source_field(plan, jbv_string(v, psprintf("%s.field", path)), path, capacity);
	if ((v = obj_get(w, "exists")) != NULL)
	{
		when->op = TXW_EXISTS;
		when->negate = !jbv_bool(v, psprintf("%s.exists", path));
		ops++;
	}
	if ((v = obj_get(w, "pattern")) != NULL)
	{
		when->op = TXW_PATTERN;
		when->pattern = compile_pattern(v, psprintf("%s.pattern", path));
		ops++;
	}
	if ((v = obj_get(w, "equals")) != NULL)
	{
		when->op = TXW_EQUALS;
		jbv_to_enum(v, &when->equals, psprintf("%s.equals", path));
		ops++;
	}
	if (ops != 1)
		spec_error(path, "a condition has exactly one of \"exists\", \"pattern\", \"equals\"");
	if ((v = obj_get(w, "not")) != NULL && jbv_bool(v, psprintf("%s.not", path)))
		when->negate = !when->negate;
	return when;
}

static void
compile_route(TxPlan *plan, int r, JsonbValue *spec_route, const char *schema, int *capacity)
{
	static const char *const allowed[] = {"name", "table", "key", "columns", "id", "when", NULL};
	TxRoute    *route = &plan->routes[r];
	char	   *path = psprintf("$.routes[%d]", r);
	JsonbValue *v;
	List	   *names;
	RangeVar   *rv;
	List	   *keycols = NIL;
	List	   *cols = NIL;
	char		relkind;
	AclMode		need;
	int			i;
	ListCell   *lc;

	if (!jbv_is_object(spec_route))
		spec_error(path, "a route must be an object, found %s", jbv_type_name(spec_route));
	check_keys(spec_route, path, allowed);

	if ((v = obj_get(spec_route, "table")) == NULL)
		spec_error(path, "a route needs \"table\"");
	names = stringToQualifiedNameList(jbv_string(v, psprintf("%s.table", path)));
	rv = makeRangeVarFromNameList(names);
	if (rv->schemaname == NULL && schema != NULL)
		rv->schemaname = pstrdup(schema);
	route->relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(route->relid))
		spec_error(psprintf("%s.table", path), "table \"%s\" does not exist",
				   rv->schemaname ? psprintf("%s.%s", rv->schemaname, rv->relname) : rv->relname);
	relkind = get_rel_relkind(route->relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		spec_error(psprintf("%s.table", path), "\"%s\" is not a table", rv->relname);
	route->relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(route->relid)),
												get_rel_name(route->relid));
	check_table_owner(plan, route, psprintf("%s.table", path));

	if ((v = obj_get(spec_route, "name")) != NULL)
		route->name = jbv_string(v, psprintf("%s.name", path));
	else
		route->name = get_rel_name(route->relid);
	if (route_lookup(plan, r, route->name) >= 0)
		spec_error(path, "route name \"%s\" is used twice; give one a \"name\"", route->name);

	route->lookup = (obj_get(spec_route, "key") != NULL);
	if (route->lookup)
	{
		parse_columns(plan, r, obj_get(spec_route, "key"), psprintf("%s.key", path), &keycols, capacity);
		if (keycols == NIL)
			spec_error(psprintf("%s.key", path), "a key needs at least one column");
		if ((v = obj_get(spec_route, "id")) == NULL)
			spec_error(path, "a lookup route (with a key) needs \"id\", the surrogate key column it returns");
		route->idcol = jbv_string(v, psprintf("%s.id", path));
		if (get_attnum(route->relid, route->idcol) == InvalidAttrNumber)
			spec_error(psprintf("%s.id", path), "table %s has no column \"%s\"", route->relname, route->idcol);
	}
	else if (obj_get(spec_route, "id") != NULL)
		spec_error(psprintf("%s.id", path), "\"id\" belongs to lookup routes, which have a \"key\"");
	if ((v = obj_get(spec_route, "columns")) != NULL)
		parse_columns(plan, r, v, psprintf("%s.columns", path), &cols, capacity);
	if (!route->lookup && cols == NIL)
		spec_error(path, "an insert route needs \"columns\"");

	route->nkeys = list_length(keycols);
	route->ncols = route->nkeys + list_length(cols);
	route->cols = palloc(sizeof(TxColumn) * route->ncols);
	i = 0;
	foreach(lc, keycols)
		route->cols[i++] = *(TxColumn *) lfirst(lc);
	foreach(lc, cols)
	{
		TxColumn   *c = lfirst(lc);

		for (int k = 0; k < route->nkeys; k++)
			if (strcmp(route->cols[k].name, c->name) == 0)
				spec_error(psprintf("%s.columns.%s", path, c->name), "column \"%s\" is already in the key", c->name);
		route->cols[i++] = *c;
	}
	if (route->lookup && !has_unique_index(route->relid, route->cols, route->nkeys))
		spec_error(psprintf("%s.key", path),
				   "table %s needs a unique index on exactly the key columns", route->relname);

	if ((v = obj_get(spec_route, "when")) != NULL)
		route->when = compile_when(plan, v, psprintf("%s.when", path), capacity);

	need = route->lookup ? (ACL_INSERT | ACL_SELECT) : ACL_INSERT;
	if (pg_class_aclcheck(route->relid, plan->owner, need) != ACLCHECK_OK)
		spec_error(psprintf("%s.table", path), "role %s may not %s table %s",
				   GetUserNameFromId(plan->owner, false),
				   route->lookup ? "select from and insert into" : "insert into", route->relname);
	plan->relids = lappend_oid(plan->relids, route->relid);
}

/*
 * "refresh": a function (lo bigint, hi bigint) RETURNS bigint that writes
 * the star rows of grain rows lo < id <= hi, and the grain table's column
 * holding those ids.  txpipe.refresh() runs it; it is only checked here.
 * The ids must come from a sequence at insert time: refresh relies on an id
 * never being handed out below one that is already committed, once the
 * writers active at its start have finished.
 */
static void
compile_refresh(TxPlan *plan, JsonbValue *refresh, const char *schema)
{
	static const char *const allowed[] = {"function", "watermark", "description", NULL};
	JsonbValue *v;
	List	   *names;
	Oid			argtypes[2] = {INT8OID, INT8OID};
	Oid			fn;
	TxRoute    *g;
	char	   *col;
	AttrNumber	attnum;
	Oid			typid;

	if (!jbv_is_object(refresh))
		spec_error("$.refresh", "expected an object, found %s", jbv_type_name(refresh));
	check_keys(refresh, "$.refresh", allowed);

	if ((v = obj_get(refresh, "function")) == NULL)
		spec_error("$.refresh", "a refresh needs \"function\", a function (lo bigint, hi bigint) returning bigint");
	names = stringToQualifiedNameList(jbv_string(v, "$.refresh.function"));
	if (list_length(names) == 1 && schema != NULL)
		names = lcons(makeString(pstrdup(schema)), names);
	fn = LookupFuncName(names, 2, argtypes, true);
	if (!OidIsValid(fn))
		spec_error("$.refresh.function", "function %s(bigint, bigint) does not exist",
				   NameListToString(names));
	if (!owner_may_run(plan, txpipe_func_owner(fn)))
		owner_error(plan, "$.refresh.function", psprintf("function %s(bigint, bigint)", NameListToString(names)),
					txpipe_func_owner(fn));
	if (get_func_rettype(fn) != INT8OID || get_func_retset(fn))
		spec_error("$.refresh.function", "function %s(bigint, bigint) must return bigint, the number of rows it wrote",
				   NameListToString(names));

	if ((v = obj_get(refresh, "watermark")) == NULL)
		spec_error("$.refresh", "a refresh needs \"watermark\", the identity column of the grain table");
	col = jbv_string(v, "$.refresh.watermark");
	if (plan->grain_route < 0)
		spec_error("$.refresh", "a refresh reads the grain route's table, and only a spec with \"idempotency_key\" has one");
	g = &plan->routes[plan->grain_route];
	attnum = get_attnum(g->relid, col);
	if (attnum == InvalidAttrNumber || attnum < 0)
		spec_error("$.refresh.watermark", "table %s has no column \"%s\"", g->relname, col);
	typid = get_atttype(g->relid, attnum);
	if (typid != INT2OID && typid != INT4OID && typid != INT8OID)
		spec_error("$.refresh.watermark", "column \"%s\" of table %s is %s; the watermark is an integer column",
				   col, g->relname, format_type_be(typid));
	if (!OidIsValid(getIdentitySequence(g->relid, attnum, true)))
		spec_error("$.refresh.watermark", "column \"%s\" of table %s is not an identity column; the watermark needs ids given by a sequence at insert time",
				   col, g->relname);
}

/* ----------------------------------------------------------------
 * alert rules
 * ----------------------------------------------------------------
 */

/*
 * An interval of fixed width ("10 minutes"), in microseconds, at least
 * min_width.
 */
static int64
compile_interval(JsonbValue *v, const char *path, char **text_out, const char *what, int64 min_width)
{
	char	   *s = jbv_string(v, path);
	MemoryContext cxt = CurrentMemoryContext;
	Interval   *iv = NULL;
	int64		width;

	PG_TRY();
	{
		iv = DatumGetIntervalP(DirectFunctionCall3(interval_in, CStringGetDatum(s),
												   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		spec_error(path, "invalid interval \"%s\": %s", s, edata->message);
	}
	PG_END_TRY();
	if (iv->month != 0)
		spec_error(path, "%s has a fixed width in days, hours, minutes or seconds; \"%s\" has months", what, s);
	if (iv->day > 3660 || iv->day < 0)
		spec_error(path, "%s is at most 3660 days; \"%s\" is not", what, s);
	width = iv->day * USECS_PER_DAY + iv->time;
	if (width < min_width)
		spec_error(path, min_width > 0 ? "%s is at least 1 second; \"%s\" is not" :
				   "%s is not negative; \"%s\" is", what, s);
	*text_out = s;
	return width;
}

static bool
valid_rule_name(const char *s)
{
	int			n = strlen(s);

	if (n == 0 || n > 63 || !(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z')))
		return false;
	for (int i = 1; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return false;
	return true;
}

static void
compile_alert(TxPlan *plan, int a, JsonbValue *spec_rule, int *capacity)
{
	static const char *const allowed[] = {"name", "kind", "severity", "when", "key", "window", "time",
		"threshold", "field", "min_history", "z", "mask_key", "description", "lateness", "history",
	"factor", "min_count", NULL};
	static const char *const not_for[][9] = {
		/* flag */ {"threshold", "field", "min_history", "z", "lateness", "history", "factor", "min_count", NULL},
		/* rate */ {"field", "min_history", "z", "history", "factor", "min_count", NULL},
		/* outlier */ {"threshold", "lateness", "history", "factor", "min_count", NULL},
	/* baseline */ {"threshold", "field", "min_history", "z", NULL}};
	static const char *const kind_names[] = {"flag", "rate", "outlier", "baseline"};
	TxAlertRule *rule = &plan->alerts[a];
	char	   *path = psprintf("$.alerts[%d]", a);
	JsonbValue *v;
	char	   *kind;
	char	   *text;

	if (!jbv_is_object(spec_rule))
		spec_error(path, "an alert rule must be an object, found %s", jbv_type_name(spec_rule));
	check_keys(spec_rule, path, allowed);
	memset(rule, 0, sizeof(TxAlertRule));
	rule->time_field = -1;
	rule->value_field = -1;

	if ((v = obj_get(spec_rule, "name")) == NULL)
		spec_error(path, "an alert rule needs \"name\"");
	rule->name = jbv_string(v, psprintf("%s.name", path));
	if (!valid_rule_name(rule->name))
		spec_error(psprintf("%s.name", path),
				   "invalid rule name \"%s\": a lower-case identifier of letters, digits and underscores, at most 63 bytes",
				   rule->name);
	for (int i = 0; i < a; i++)
		if (strcmp(plan->alerts[i].name, rule->name) == 0)
			spec_error(psprintf("%s.name", path), "rule name \"%s\" is used twice", rule->name);

	if ((v = obj_get(spec_rule, "kind")) == NULL)
		spec_error(path, "an alert rule needs \"kind\": \"flag\", \"rate\", \"outlier\" or \"baseline\"");
	kind = jbv_string(v, psprintf("%s.kind", path));
	if (strcmp(kind, "flag") == 0)
		rule->kind = TXA_FLAG;
	else if (strcmp(kind, "rate") == 0)
		rule->kind = TXA_RATE;
	else if (strcmp(kind, "outlier") == 0)
		rule->kind = TXA_OUTLIER;
	else if (strcmp(kind, "baseline") == 0)
		rule->kind = TXA_BASELINE;
	else
		spec_error(psprintf("%s.kind", path), "unknown kind \"%s\"; kinds are flag, rate, outlier and baseline", kind);
	for (const char *const *k = not_for[rule->kind]; *k; k++)
		if (obj_get(spec_rule, *k) != NULL)
			spec_error(psprintf("%s.%s", path, *k), "\"%s\" does not apply to %s rules", *k, kind_names[rule->kind]);

	rule->severity = "warning";
	if ((v = obj_get(spec_rule, "severity")) != NULL)
	{
		char	   *sp = psprintf("%s.severity", path);

		rule->severity = jbv_string(v, sp);
		if (strcmp(rule->severity, "info") != 0 && strcmp(rule->severity, "warning") != 0 &&
			strcmp(rule->severity, "critical") != 0)
			spec_error(sp, "unknown severity \"%s\"; severities are info, warning and critical", rule->severity);
	}

	if ((v = obj_get(spec_rule, "when")) != NULL)
		rule->when = compile_when(plan, v, psprintf("%s.when", path), capacity);
	else if (rule->kind == TXA_FLAG)
		spec_error(path, "a flag rule needs \"when\", the condition a record matches, e.g. {\"field\": \"is_fraud\", \"equals\": 1}");

	if ((v = obj_get(spec_rule, "key")) != NULL)
	{
		char	   *kp = psprintf("%s.key", path);

		if (v->type == jbvString)
		{
			rule->nkeys = 1;
			rule->key_fields = palloc(sizeof(int));
			rule->key_fields[0] = source_field(plan, jbv_string(v, kp), kp, capacity);
		}
		else if (jbv_is_array(v) && JsonContainerSize(v->val.binary.data) > 0)
		{
			int			n = JsonContainerSize(v->val.binary.data);

			rule->key_fields = palloc(sizeof(int) * n);
			for (int i = 0; i < n; i++)
			{
				char	   *ip = psprintf("%s[%d]", kp, i);
				int			f = source_field(plan,
											 jbv_string(getIthJsonbValueFromContainer(v->val.binary.data, i), ip),
											 ip, capacity);

				for (int j = 0; j < rule->nkeys; j++)
					if (rule->key_fields[j] == f)
						spec_error(ip, "field \"%s\" is listed twice", plan->fields[f].name);
				rule->key_fields[rule->nkeys++] = f;
			}
		}
		else
			spec_error(kp, "expected a field name or a non-empty array of field names, found %s", jbv_type_name(v));
	}
	else if (rule->kind == TXA_OUTLIER)
		spec_error(path, "an outlier rule needs \"key\", the field (or fields) whose history a value is judged against");
	else if (rule->kind != TXA_FLAG)
	{
		/* rate and baseline: all the pipeline's records count together */
		rule->nkeys = 0;
	}
	else if (plan->idem_field < 0)
		spec_error(path, "a flag rule without \"key\" raises per record, by the spec's idempotency_key, and this spec has none");
	else
	{
		rule->nkeys = 1;
		rule->key_fields = palloc(sizeof(int));
		rule->key_fields[0] = plan->idem_field;
	}

	if ((v = obj_get(spec_rule, "window")) != NULL)
		rule->window = compile_interval(v, psprintf("%s.window", path), &rule->window_text, "a window", USECS_PER_SEC);
	else if (rule->kind == TXA_RATE || rule->kind == TXA_BASELINE)
		spec_error(path, "a %s rule needs \"window\", e.g. \"10 minutes\"", kind_names[rule->kind]);
	if ((v = obj_get(spec_rule, "time")) != NULL)
		rule->time_field = source_field(plan, jbv_string(v, psprintf("%s.time", path)),
										psprintf("%s.time", path), capacity);
	else
		rule->time_field = plan->event_field;
	if (rule->window > 0 && rule->time_field < 0)
		spec_error(psprintf("%s.window", path),
				   "windows run on event time: name the record's time field in \"time\" or in the spec's \"event_time\"");

	if (rule->kind == TXA_RATE)
	{
		char	   *tp = psprintf("%s.threshold", path);

		if ((v = obj_get(spec_rule, "threshold")) == NULL)
			spec_error(path, "a rate rule needs \"threshold\": it raises when a key has more records than that in a window");
		rule->threshold = jbv_int(v, tp, 1);
	}
	if (rule->kind == TXA_BASELINE)
	{
		rule->history = 60;
		if ((v = obj_get(spec_rule, "history")) != NULL)
			rule->history = jbv_int(v, psprintf("%s.history", path), 1);
		if (rule->history > 1000)
			spec_error(psprintf("%s.history", path), "history is at most 1000 windows; found %d", rule->history);
		rule->factor = 3;
		if ((v = obj_get(spec_rule, "factor")) != NULL)
		{
			char	   *fp = psprintf("%s.factor", path);
			char	   *fs = jbv_number(v, fp);

			rule->factor = strtod(fs, NULL);
			if (!(rule->factor >= 1) || rule->factor > 1e6)
				spec_error(fp, "factor is a number of times the baseline, at least 1; found %s", fs);
		}
		rule->min_count = 10;
		if ((v = obj_get(spec_rule, "min_count")) != NULL)
			rule->min_count = jbv_int(v, psprintf("%s.min_count", path), 1);
	}
	if (rule->kind == TXA_RATE || rule->kind == TXA_BASELINE)
	{
		char	   *lp = psprintf("%s.lateness", path);
		char	   *ltext;

		rule->lateness = USECS_PER_HOUR;
		if ((v = obj_get(spec_rule, "lateness")) != NULL)
			rule->lateness = compile_interval(v, lp, &ltext, "lateness", 0);
		if (rule->lateness / rule->window + rule->history > 10000)
			spec_error(rule->lateness / rule->window > 10000 ? lp : psprintf("%s.window", path),
					   "a rule keeps at most 10000 windows per key: lateness / window + history; here %lld",
					   (long long) (rule->lateness / rule->window + rule->history));
	}
	if (rule->kind == TXA_OUTLIER)
	{
		if ((v = obj_get(spec_rule, "field")) == NULL)
			spec_error(path, "an outlier rule needs \"field\", the number it watches");
		rule->value_field = source_field(plan, jbv_string(v, psprintf("%s.field", path)),
										 psprintf("%s.field", path), capacity);
		rule->min_history = 20;
		if ((v = obj_get(spec_rule, "min_history")) != NULL)
			rule->min_history = jbv_int(v, psprintf("%s.min_history", path), 2);
		rule->z = 4;
		if ((v = obj_get(spec_rule, "z")) != NULL)
		{
			char	   *zp = psprintf("%s.z", path);
			char	   *zs = jbv_number(v, zp);

			rule->z = strtod(zs, NULL);
			if (!(rule->z > 0) || rule->z > 1e6)
				spec_error(zp, "z is a number of standard deviations above 0; found %s", zs);
		}
	}
	if ((v = obj_get(spec_rule, "mask_key")) != NULL)
		rule->mask_key = jbv_bool(v, psprintf("%s.mask_key", path));

	text = JsonbToCString(NULL, spec_rule->val.binary.data, spec_rule->val.binary.len);
	rule->definition = (int64) hash_bytes_extended((const unsigned char *) text, strlen(text), 0);
}

static void
compile_alerts(TxPlan *plan, JsonbValue *alerts, int *capacity)
{
	Oid			nsp = get_namespace_oid("txpipe", false);

	if (!jbv_is_array(alerts))
		spec_error("$.alerts", "expected an array of alert rules, found %s", jbv_type_name(alerts));
	if (!OidIsValid(get_relname_relid("alerts", nsp)))
		spec_error("$.alerts", "txpipe's tables in this database are of a version without alerts; "
				   "update them with ALTER EXTENSION txpipe UPDATE");
	plan->nalerts = JsonContainerSize(alerts->val.binary.data);
	plan->alerts = palloc0(sizeof(TxAlertRule) * Max(plan->nalerts, 1));
	for (int a = 0; a < plan->nalerts; a++)
		compile_alert(plan, a, getIthJsonbValueFromContainer(alerts->val.binary.data, a), capacity);
}

/* ----------------------------------------------------------------
 * prepared statements
 * ----------------------------------------------------------------
 */

static Oid
param_type(TxColumn *col)
{
	return col->source == TXS_ROUTE ? INT8ARRAYOID : TEXTARRAYOID;
}

static void
append_unnest(StringInfo sql, TxColumn *cols, int from, int n, bool ordinality, const char *prefix)
{
	/* ROWS FROM: unnest of several arrays only exists unqualified */
	appendStringInfoString(sql, "ROWS FROM (");
	for (int i = 0; i < n; i++)
		appendStringInfo(sql, "%spg_catalog.unnest($%d::%s)", i ? ", " : "", from + i + 1,
						 param_type(&cols[i]) == INT8ARRAYOID ? "pg_catalog.int8[]" : "pg_catalog.text[]");
	appendStringInfoString(sql, ")");
	if (ordinality)
		appendStringInfoString(sql, " WITH ORDINALITY");
	appendStringInfoString(sql, " AS u(");
	for (int i = 0; i < n; i++)
		appendStringInfo(sql, "%s%s%d", i ? ", " : "", prefix, i + 1);
	if (ordinality)
		appendStringInfoString(sql, ", o");
	appendStringInfoString(sql, ")");
}

static void
append_key_join(StringInfo sql, TxRoute *route, const char *alias)
{
	for (int i = 0; i < route->nkeys; i++)
		appendStringInfo(sql, "%s%s.%s OPERATOR(pg_catalog.=) u.c%d::%s", i ? " AND " : "", alias,
						 quote_identifier(route->cols[i].name), i + 1, route->cols[i].typname);
}

#define prepare txpipe_spi_keep

static void
prepare_route(TxPlan *plan, TxRoute *route)
{
	StringInfoData sql;
	Oid		   *argtypes = palloc(sizeof(Oid) * route->ncols);

	for (int i = 0; i < route->ncols; i++)
		argtypes[i] = param_type(&route->cols[i]);

	initStringInfo(&sql);
	if (route->lookup)
	{
		appendStringInfo(&sql, "SELECT u.o, t.%s::pg_catalog.int8 FROM ", quote_identifier(route->idcol));
		append_unnest(&sql, route->cols, 0, route->nkeys, true, "c");
		appendStringInfo(&sql, " JOIN %s t ON ", route->relname);
		append_key_join(&sql, route, "t");
		route->select_plan = prepare(sql.data, route->nkeys, argtypes);

		resetStringInfo(&sql);
		appendStringInfo(&sql, "WITH ins AS (INSERT INTO %s AS t (", route->relname);
		for (int i = 0; i < route->ncols; i++)
			appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(route->cols[i].name));
		appendStringInfoString(&sql, ") SELECT ");
		for (int i = 0; i < route->ncols; i++)
			appendStringInfo(&sql, "%su.c%d::%s", i ? ", " : "", i + 1, route->cols[i].typname);
		appendStringInfoString(&sql, " FROM ");
		append_unnest(&sql, route->cols, 0, route->ncols, false, "c");

		/*
		 * New keys in key order: every transaction takes a dimension's keys
		 * in one order, and the routes run in the spec's, so two that create
		 * the same new keys wait for each other instead of deadlocking on
		 * the unique index.
		 */
		appendStringInfoString(&sql, " ORDER BY ");
		for (int i = 0; i < route->nkeys; i++)
			appendStringInfo(&sql, "%s%d", i ? ", " : "", i + 1);
		appendStringInfoString(&sql, " ON CONFLICT (");
		for (int i = 0; i < route->nkeys; i++)
			appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(route->cols[i].name));
		appendStringInfo(&sql, ") DO NOTHING RETURNING t.%s::pg_catalog.int8 AS txpipe_id", quote_identifier(route->idcol));
		for (int i = 0; i < route->nkeys; i++)
			appendStringInfo(&sql, ", t.%s", quote_identifier(route->cols[i].name));
		appendStringInfoString(&sql, ") SELECT u.o, ins.txpipe_id FROM ");
		append_unnest(&sql, route->cols, 0, route->nkeys, true, "c");
		appendStringInfoString(&sql, " JOIN ins ON ");
		append_key_join(&sql, route, "ins");
		route->insert_plan = prepare(sql.data, route->ncols, argtypes);
	}
	else
	{
		/*
		 * The grain route's statement returns the ordinals of the rows it
		 * stored: a key another session stored meanwhile is skipped by ON
		 * CONFLICT, and its record is then a duplicate.  Of records whose
		 * keys differ as text but are equal as the column's type, the first
		 * is the one stored.
		 */
		if (route->grain)
			appendStringInfoString(&sql, "WITH ins AS (");
		appendStringInfo(&sql, "INSERT INTO %s AS t (", route->relname);
		for (int i = 0; i < route->ncols; i++)
			appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(route->cols[i].name));
		appendStringInfoString(&sql, ") SELECT ");
		for (int i = 0; i < route->ncols; i++)
			appendStringInfo(&sql, "%su.c%d::%s", i ? ", " : "", i + 1, route->cols[i].typname);
		appendStringInfoString(&sql, " FROM ");
		append_unnest(&sql, route->cols, 0, route->ncols, false, "c");
		if (route->grain)
		{
			const char *k = quote_identifier(route->cols[route->idem_col].name);

			appendStringInfo(&sql, " ON CONFLICT (%s) DO NOTHING RETURNING t.%s) "
							 "SELECT pg_catalog.min(u.o) FROM pg_catalog.unnest($%d::pg_catalog.text[]) "
							 "WITH ORDINALITY AS u(k, o) JOIN ins ON ins.%s OPERATOR(pg_catalog.=) u.k::%s "
							 "GROUP BY ins.%s",
							 k, k, route->idem_col + 1, k, route->cols[route->idem_col].typname, k);
		}
		route->insert_plan = prepare(sql.data, route->ncols, argtypes);

		if (route->grain)
		{
			TxColumn   *kc = &route->cols[route->idem_col];
			Oid			t = TEXTARRAYOID;

			resetStringInfo(&sql);
			appendStringInfoString(&sql, "SELECT u.o");
			/* with the values a key conflict compares */
			for (int i = 0; i < plan->nconflict; i++)
				appendStringInfo(&sql, ", t.%s", quote_identifier(txpipe_conflict_column_name(plan, i)));
			appendStringInfo(&sql, " FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS u(k, o) "
							 "JOIN %s t ON t.%s OPERATOR(pg_catalog.=) u.k::%s",
							 route->relname, quote_identifier(kc->name), kc->typname);
			route->dup_plan = prepare(sql.data, 1, &t);
		}
	}
}

/* ----------------------------------------------------------------
 * compile
 * ----------------------------------------------------------------
 */

static TxPlan *
compile(const char *name, Jsonb *spec, Oid owner, bool prepare_statements)
{
	static const char *const allowed[] = {"contract", "idempotency_key", "event_time",
		"order_key", "mode", "routes", "refresh", "schema", "description", "notify", "alerts", NULL};
	JsonbValue	root;
	JsonbValue *v;
	JsonbValue *routes;
	TxPlan	   *plan = palloc0(sizeof(TxPlan));
	HASHCTL		ctl;
	int			capacity = 16;
	char	   *schema = NULL;
	int			nroutes;

	strlcpy(plan->name, name, NAMEDATALEN);
	plan->owner = owner;
	plan->idem_field = -1;
	plan->event_field = -1;
	plan->order_field = -1;
	plan->grain_route = -1;
	plan->additional_ok = true;
	plan->fields = palloc(sizeof(TxField) * capacity);

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN * 2;
	ctl.entrysize = sizeof(FieldIndexEntry);
	ctl.hcxt = CurrentMemoryContext;
	plan->field_index = hash_create("txpipe fields", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);

	if (!JB_ROOT_IS_OBJECT(spec))
		spec_error("$", "the spec must be a JSON object");
	root.type = jbvBinary;
	root.val.binary.data = &spec->root;
	root.val.binary.len = VARSIZE(spec) - VARHDRSZ;
	check_keys(&root, "$", allowed);

	if ((v = obj_get(&root, "schema")) != NULL)
	{
		schema = jbv_string(v, "$.schema");
		if (!OidIsValid(get_namespace_oid(schema, true)))
			spec_error("$.schema", "schema \"%s\" does not exist", schema);
	}
	if ((v = obj_get(&root, "contract")) != NULL)
	{
		JsonbValue *ap;

		if (jbv_is_object(v) && (ap = obj_get(v, "additionalProperties")) != NULL)
			plan->additional_ok = jbv_bool(ap, "$.contract.additionalProperties");
		compile_contract(plan, v, &capacity);
	}
	if ((v = obj_get(&root, "idempotency_key")) != NULL)
	{
		if (jbv_is_array(v))
			compile_content_key(plan, v, &capacity);
		else
			plan->idem_field = source_field(plan, jbv_string(v, "$.idempotency_key"), "$.idempotency_key", &capacity);
	}
	if ((v = obj_get(&root, "event_time")) != NULL)
		plan->event_field = source_field(plan, jbv_string(v, "$.event_time"), "$.event_time", &capacity);
	if ((v = obj_get(&root, "order_key")) != NULL)
		plan->order_field = source_field(plan, jbv_string(v, "$.order_key"), "$.order_key", &capacity);
	if ((v = obj_get(&root, "mode")) != NULL)
	{
		char	   *mode = jbv_string(v, "$.mode");

		if (strcmp(mode, "async") == 0)
			plan->async = true;
		else if (strcmp(mode, "sync") != 0)
			spec_error("$.mode", "expected \"sync\" or \"async\", found \"%s\"", mode);
	}

	/* read by txpipe._notify_in; only its type is checked here */
	if ((v = obj_get(&root, "notify")) != NULL)
		(void) jbv_bool(v, "$.notify");

	routes = obj_get(&root, "routes");
	if (routes == NULL)
		spec_error("$", "a spec needs \"routes\"");
	if (!jbv_is_array(routes) || JsonContainerSize(routes->val.binary.data) == 0)
		spec_error("$.routes", "expected a non-empty array of routes");
	nroutes = JsonContainerSize(routes->val.binary.data);
	plan->routes = palloc0(sizeof(TxRoute) * nroutes);
	for (int r = 0; r < nroutes; r++)
	{
		compile_route(plan, r, getIthJsonbValueFromContainer(routes->val.binary.data, r), schema, &capacity);
		plan->nroutes = r + 1;
	}
	if ((v = obj_get(&root, "alerts")) != NULL)
		compile_alerts(plan, v, &capacity);
	resolve_optins(plan);

	if (plan->idem_field >= 0)
	{
		/* the grain route: the first unconditional insert route with the key */
		for (int r = 0; r < plan->nroutes && plan->grain_route < 0; r++)
		{
			TxRoute    *route = &plan->routes[r];

			if (route->lookup || route->when)
				continue;
			for (int c = 0; c < route->ncols; c++)
				if (route->cols[c].source == TXS_FIELD && route->cols[c].field == plan->idem_field &&
					route->cols[c].lpad == 0)
				{
					plan->grain_route = r;
					route->grain = true;
					route->idem_col = c;
					break;
				}
		}
		if (plan->grain_route < 0 && plan->nkey_fields > 0)
			spec_error("$.idempotency_key", "no unconditional insert route has a column from \"$key\", "
					   "the key the array idempotency_key makes");
		else if (plan->grain_route < 0)
			spec_error("$.idempotency_key", "no unconditional insert route has a column from field \"%s\"",
					   plan->fields[plan->idem_field].name);
		else
		{
			TxRoute    *g = &plan->routes[plan->grain_route];

			if (!has_unique_index(g->relid, &g->cols[g->idem_col], 1))
				spec_error(psprintf("$.routes[%d].columns.%s", plan->grain_route, g->cols[g->idem_col].name),
						   "table %s needs a unique index on the idempotency key column \"%s\"",
						   g->relname, g->cols[g->idem_col].name);
			if (pg_class_aclcheck(g->relid, plan->owner, ACL_SELECT) != ACLCHECK_OK)
				spec_error(psprintf("$.routes[%d].table", plan->grain_route),
						   "role %s may not select from table %s", GetUserNameFromId(plan->owner, false), g->relname);
		}
	}

	/* checked when the spec is stored; routing does not depend on it */
	if (!prepare_statements && (v = obj_get(&root, "refresh")) != NULL)
		compile_refresh(plan, v, schema);

	txpipe_conflict_compile(plan);
	if (prepare_statements)
	{
		MemoryContext cxt = CurrentMemoryContext;

		for (int r = 0; r < plan->nroutes; r++)
		{
			prepare_route(plan, &plan->routes[r]);
			/* SPI_prepare leaves SPI's procedure context current */
			MemoryContextSwitchTo(cxt);
			txpipe_writer_compile(plan, &plan->routes[r]);
			MemoryContextSwitchTo(cxt);
		}
	}
	plan->valid = true;
	return plan;
}

void
txpipe_compile_check(const char *name, Jsonb *spec, Oid owner)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "txpipe spec check",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	TxIdentity	id;

	/* as the pipeline's owner, and names resolve as they will when routing */
	txpipe_enter(owner, &id);
	(void) compile(name, spec, owner, false);
	txpipe_leave(&id);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
}

static void
free_plan(TxPlan *plan)
{
	for (int r = 0; r < plan->nroutes; r++)
	{
		TxRoute    *route = &plan->routes[r];

		if (route->select_plan)
			SPI_freeplan(route->select_plan);
		if (route->insert_plan)
			SPI_freeplan(route->insert_plan);
		if (route->dup_plan)
			SPI_freeplan(route->dup_plan);
		txpipe_writer_free(route);
	}
	MemoryContextDelete(plan->cxt);
}

/*
 * The row of txpipe.pipelines named pipeline, read in the active snapshot
 * through its primary key (txpipe's own table: no statement needed for
 * the check every batch and enqueue makes); with spec, its spec too, a
 * copy in the current memory context.  False when there is none.
 */
static bool
pipeline_row(const char *pipeline, int64 *version, Oid *owner, Jsonb **spec)
{
	Oid			nsp = get_namespace_oid("txpipe", false);
	Oid			relid = get_relname_relid("pipelines", nsp);
	Oid			indexid = get_relname_relid("pipelines_pkey", nsp);
	Relation	rel;
	Relation	index;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	bool		found = false;
	Snapshot	snap = ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		elog(ERROR, "txpipe.pipelines or its primary key is missing");
	rel = table_open(relid, AccessShareLock);
	index = index_open(indexid, AccessShareLock);
	/* the key compares in the index's collation, as its order is */
	ScanKeyEntryInitialize(&key, 0, get_attnum(relid, "name"), BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_TEXTEQ, CStringGetTextDatum(pipeline));
	scan = systable_beginscan(rel, indexid, true, snap, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;

		*version = DatumGetInt64(heap_getattr(tup, get_attnum(relid, "version"), desc, &isnull));
		*owner = DatumGetObjectId(heap_getattr(tup, get_attnum(relid, "owner"), desc, &isnull));
		if (spec)
			*spec = DatumGetJsonbPCopy(heap_getattr(tup, get_attnum(relid, "spec"), desc, &isnull));
		found = true;
	}
	systable_endscan(scan);
	index_close(index, AccessShareLock);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * The plan of a pipeline, compiled if missing or stale.  Called inside an
 * SPI connection.
 */
TxPlan *
txpipe_get_plan(const char *pipeline)
{
	PlanEntry  *entry;
	bool		found;
	int64		version;
	Oid			owner;
	Jsonb	   *spec;
	MemoryContext cxt;
	MemoryContext old;
	TxPlan	   *plan;
	TxIdentity	id;

	if (strlen(pipeline) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", pipeline)));

	if (!pipeline_row(pipeline, &version, &owner, NULL))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" does not exist", pipeline),
				 errhint("Create it with txpipe.create_pipeline() or txpipe.install_template().")));

	entry = hash_search(plans, pipeline, HASH_ENTER, &found);
	if (!found)
		entry->plan = NULL;
	if (entry->plan && entry->plan->valid && entry->plan->version == version &&
		entry->plan->owner == owner)
		return entry->plan;

	if (entry->plan)
	{
		free_plan(entry->plan);
		entry->plan = NULL;
	}
	/* the row read again, for its spec, in the same snapshot */
	if (!pipeline_row(pipeline, &version, &owner, &spec))
		elog(ERROR, "pipeline \"%s\" vanished", pipeline);

	cxt = AllocSetContextCreate(CacheMemoryContext, "txpipe plan", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSetIdentifier(cxt, entry->name);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		txpipe_enter(owner, &id);
		plan = compile(pipeline, spec, owner, true);
		txpipe_leave(&id);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	plan->cxt = cxt;
	plan->version = version;
	MemoryContextSwitchTo(old);
	entry->plan = plan;
	return plan;
}

void
txpipe_reset_key_caches(void)
{
	HASH_SEQ_STATUS status;
	PlanEntry  *entry;

	if (plans == NULL)
		return;
	hash_seq_init(&status, plans);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->plan == NULL)
			continue;
		for (int r = 0; r < entry->plan->nroutes; r++)
		{
			TxRoute    *route = &entry->plan->routes[r];

			if (route->cache)
			{
				hash_destroy(route->cache);
				route->cache = NULL;
				route->cache_entries = 0;
			}
		}
	}
}

void
txpipe_invalidate_plans(void)
{
	HASH_SEQ_STATUS status;
	PlanEntry  *entry;

	if (plans == NULL)
		return;
	hash_seq_init(&status, plans);
	while ((entry = hash_seq_search(&status)) != NULL)
		if (entry->plan)
			entry->plan->valid = false;
}

static void
relcache_callback(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS status;
	PlanEntry  *entry;

	if (plans == NULL)
		return;
	hash_seq_init(&status, plans);
	while ((entry = hash_seq_search(&status)) != NULL)
	{
		if (entry->plan == NULL)
			continue;
		if (!OidIsValid(relid) || list_member_oid(entry->plan->relids, relid))
			entry->plan->valid = false;
	}
}

void
txpipe_spec_init(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = NAMEDATALEN;
	ctl.entrysize = sizeof(PlanEntry);
	plans = hash_create("txpipe plans", 16, &ctl, HASH_ELEM | HASH_STRINGS);
	CacheRegisterRelcacheCallback(relcache_callback, (Datum) 0);
}

/*
 * Sending records to a pipeline (COPY, ingest, enqueue, validate) is the
 * INSERT privilege on its COPY target txpipe_in.<pipeline>: COPY checks it
 * itself, the functions here.  The target belongs to txpipe; its
 * pipeline's owner grants and revokes the privilege with txpipe.grant_send()
 * and txpipe.revoke_send().
 */
void
txpipe_check_send(const char *pipeline)
{
	Oid			nsp = get_namespace_oid("txpipe_in", false);
	Oid			target = get_relname_relid(pipeline, nsp);

	if (!OidIsValid(target))
	{
		(void) txpipe_get_plan(pipeline);	/* says so if it does not exist */
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("pipeline \"%s\" has no COPY target txpipe_in.%s", pipeline,
						quote_identifier(pipeline)),
				 errhint("Create the pipeline again with txpipe.create_pipeline(name, spec, or_replace => true).")));
	}
	if (pg_class_aclcheck(target, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to send records to pipeline \"%s\"", pipeline),
				 errdetail("Sending needs the INSERT privilege on txpipe_in.%s.", quote_identifier(pipeline)),
				 errhint("The pipeline's owner grants it with txpipe.grant_send('%s', role).", pipeline)));
}

/* actions reserved to the pipeline's owner (or a member of it) */
void
txpipe_check_owner(TxPlan *plan, const char *action)
{
	if (!has_privs_of_role(GetUserId(), plan->owner))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s pipeline \"%s\"", action, plan->name),
				 errdetail("Only the pipeline's owner %s, a member of that role or a superuser may.",
						   GetUserNameFromId(plan->owner, false))));
}
