-- The SQL baseline: what a user writes to load the cards NDJSON into the
-- normalized tables without txpipe.  This file creates its helpers once per
-- server; baseline_load.sql is the timed load.
--
-- The contract is the one of templates/cards/pipeline.json, as SQL
-- predicates on jsonb: required keys, types (jsonb_typeof; "integer" is a
-- number whose text has no decimal point), enums, patterns (~), ranges,
-- lengths in characters, calendar-checked dates and timestamps, and no
-- fields outside the contract.  Known differences from txpipe, none of
-- which the generated data exercises: jsonb keeps the last of duplicate
-- keys where txpipe rejects the record, and jsonb prints a number such as
-- 1e2 as 100, so the integer check accepts it where txpipe does not.

CREATE SCHEMA IF NOT EXISTS baseline;

-- doc::jsonb without aborting the statement on a malformed line (PG 15 has
-- no pg_input_is_valid).  The EXCEPTION block makes every call a
-- subtransaction, which also keeps the function out of parallel plans.
CREATE OR REPLACE FUNCTION baseline.try_jsonb(doc text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL UNSAFE AS $$
BEGIN
	RETURN doc::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character
			   OR statement_too_complex THEN
	RETURN NULL;
END;
$$;

-- YYYY-MM-DD naming a real day.  Inlined by the planner into its caller.
CREATE OR REPLACE FUNCTION baseline.is_date(s text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
	WHEN s !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' OR s LIKE '0000%' THEN false
	WHEN substr(s, 9, 2) <= '28' THEN true
	ELSE substr(s, 9, 2)::int <= CASE substr(s, 6, 2)
		WHEN '02' THEN CASE WHEN (left(s, 4)::int % 4 = 0 AND left(s, 4)::int % 100 <> 0)
								  OR left(s, 4)::int % 400 = 0 THEN 29 ELSE 28 END
		WHEN '04' THEN 30 WHEN '06' THEN 30 WHEN '09' THEN 30 WHEN '11' THEN 30
		ELSE 31 END
END
$$;

-- YYYY-MM-DD[T ]HH:MM[:SS[.frac]] with an optional Z, " UTC" or +HH[[:]MM].
CREATE OR REPLACE FUNCTION baseline.is_timestamp(s text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT s ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9](:([0-5][0-9]|60)(\.[0-9]+)?)?(Z| UTC|[+-](0[0-9]|1[0-4])(:?[0-5][0-9])?)?$'
	   AND baseline.is_date(left(s, 10))
$$;

-- Only called for a record that has fields outside the contract.
CREATE OR REPLACE FUNCTION baseline.first_key(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT min(k) FROM jsonb_object_keys(j) AS k
$$;

-- The first contract violation of a record as 'code $.path', or NULL when
-- the record satisfies the contract.  A single CASE, so the planner inlines
-- it into the query that calls it; fields in the contract's order.
CREATE OR REPLACE FUNCTION baseline.contract_error(j jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
	WHEN jsonb_typeof(j) <> 'object' THEN 'not_object $'

	WHEN NOT j ? 'trans_date_trans_time' THEN 'required $.trans_date_trans_time'
	WHEN jsonb_typeof(j->'trans_date_trans_time') <> 'string' THEN 'type $.trans_date_trans_time'
	WHEN NOT baseline.is_timestamp(j->>'trans_date_trans_time') THEN 'format $.trans_date_trans_time'

	WHEN NOT j ? 'cc_num' THEN 'required $.cc_num'
	WHEN jsonb_typeof(j->'cc_num') <> 'number' OR strpos(j->>'cc_num', '.') > 0 THEN 'type $.cc_num'
	WHEN (j->'cc_num')::numeric < 10000000000 THEN 'minimum $.cc_num'
	WHEN (j->'cc_num')::numeric > 9223372036854775807 THEN 'maximum $.cc_num'

	WHEN NOT j ? 'merchant' THEN 'required $.merchant'
	WHEN jsonb_typeof(j->'merchant') <> 'string' THEN 'type $.merchant'
	WHEN char_length(j->>'merchant') < 1 THEN 'min_length $.merchant'
	WHEN char_length(j->>'merchant') > 200 THEN 'max_length $.merchant'

	WHEN NOT j ? 'category' THEN 'required $.category'
	WHEN jsonb_typeof(j->'category') <> 'string' THEN 'type $.category'
	WHEN j->>'category' NOT IN ('gas_transport', 'grocery_pos', 'home', 'shopping_pos',
		'kids_pets', 'shopping_net', 'entertainment', 'food_dining', 'personal_care',
		'health_fitness', 'misc_pos', 'misc_net', 'grocery_net', 'travel') THEN 'enum $.category'

	WHEN NOT j ? 'amt' THEN 'required $.amt'
	WHEN jsonb_typeof(j->'amt') <> 'number' THEN 'type $.amt'
	WHEN (j->'amt')::numeric < 0 THEN 'minimum $.amt'
	WHEN (j->'amt')::numeric > 9999999999.99 THEN 'maximum $.amt'

	WHEN NOT j ? 'first' THEN 'required $.first'
	WHEN jsonb_typeof(j->'first') <> 'string' THEN 'type $.first'
	WHEN char_length(j->>'first') < 1 THEN 'min_length $.first'
	WHEN char_length(j->>'first') > 100 THEN 'max_length $.first'

	WHEN NOT j ? 'last' THEN 'required $.last'
	WHEN jsonb_typeof(j->'last') <> 'string' THEN 'type $.last'
	WHEN char_length(j->>'last') < 1 THEN 'min_length $.last'
	WHEN char_length(j->>'last') > 100 THEN 'max_length $.last'

	WHEN NOT j ? 'gender' THEN 'required $.gender'
	WHEN jsonb_typeof(j->'gender') <> 'string' THEN 'type $.gender'
	WHEN j->>'gender' NOT IN ('F', 'M') THEN 'enum $.gender'

	WHEN NOT j ? 'street' THEN 'required $.street'
	WHEN jsonb_typeof(j->'street') <> 'string' THEN 'type $.street'
	WHEN char_length(j->>'street') > 200 THEN 'max_length $.street'

	WHEN NOT j ? 'city' THEN 'required $.city'
	WHEN jsonb_typeof(j->'city') <> 'string' THEN 'type $.city'
	WHEN char_length(j->>'city') < 1 THEN 'min_length $.city'
	WHEN char_length(j->>'city') > 100 THEN 'max_length $.city'

	WHEN NOT j ? 'state' THEN 'required $.state'
	WHEN jsonb_typeof(j->'state') <> 'string' THEN 'type $.state'
	WHEN j->>'state' !~ '^[A-Z]{2}$' THEN 'pattern $.state'

	WHEN NOT j ? 'zip' THEN 'required $.zip'
	WHEN jsonb_typeof(j->'zip') NOT IN ('number', 'string')
		 OR (jsonb_typeof(j->'zip') = 'number' AND strpos(j->>'zip', '.') > 0) THEN 'type $.zip'
	WHEN jsonb_typeof(j->'zip') = 'number' AND (j->'zip')::numeric < 0 THEN 'minimum $.zip'
	WHEN jsonb_typeof(j->'zip') = 'number' AND (j->'zip')::numeric > 99999 THEN 'maximum $.zip'
	WHEN jsonb_typeof(j->'zip') = 'string' AND j->>'zip' !~ '^[0-9]{5}$' THEN 'pattern $.zip'

	WHEN NOT j ? 'lat' THEN 'required $.lat'
	WHEN jsonb_typeof(j->'lat') <> 'number' THEN 'type $.lat'
	WHEN (j->'lat')::numeric < -90 THEN 'minimum $.lat'
	WHEN (j->'lat')::numeric > 90 THEN 'maximum $.lat'

	WHEN NOT j ? 'long' THEN 'required $.long'
	WHEN jsonb_typeof(j->'long') <> 'number' THEN 'type $.long'
	WHEN (j->'long')::numeric < -180 THEN 'minimum $.long'
	WHEN (j->'long')::numeric > 180 THEN 'maximum $.long'

	WHEN NOT j ? 'city_pop' THEN 'required $.city_pop'
	WHEN jsonb_typeof(j->'city_pop') <> 'number' OR strpos(j->>'city_pop', '.') > 0 THEN 'type $.city_pop'
	WHEN (j->'city_pop')::numeric < 0 THEN 'minimum $.city_pop'
	WHEN (j->'city_pop')::numeric > 2147483647 THEN 'maximum $.city_pop'

	WHEN NOT j ? 'job' THEN 'required $.job'
	WHEN jsonb_typeof(j->'job') <> 'string' THEN 'type $.job'
	WHEN char_length(j->>'job') > 200 THEN 'max_length $.job'

	WHEN NOT j ? 'dob' THEN 'required $.dob'
	WHEN jsonb_typeof(j->'dob') <> 'string' THEN 'type $.dob'
	WHEN NOT baseline.is_date(j->>'dob') THEN 'format $.dob'

	WHEN NOT j ? 'trans_num' THEN 'required $.trans_num'
	WHEN jsonb_typeof(j->'trans_num') <> 'string' THEN 'type $.trans_num'
	WHEN j->>'trans_num' !~ '^[0-9a-f]{32}$' THEN 'pattern $.trans_num'

	WHEN NOT j ? 'unix_time' THEN 'required $.unix_time'
	WHEN jsonb_typeof(j->'unix_time') <> 'number' OR strpos(j->>'unix_time', '.') > 0 THEN 'type $.unix_time'
	WHEN (j->'unix_time')::numeric < 0 THEN 'minimum $.unix_time'
	WHEN (j->'unix_time')::numeric > 9223372036854775807 THEN 'maximum $.unix_time'

	WHEN NOT j ? 'merch_lat' THEN 'required $.merch_lat'
	WHEN jsonb_typeof(j->'merch_lat') <> 'number' THEN 'type $.merch_lat'
	WHEN (j->'merch_lat')::numeric < -90 THEN 'minimum $.merch_lat'
	WHEN (j->'merch_lat')::numeric > 90 THEN 'maximum $.merch_lat'

	WHEN NOT j ? 'merch_long' THEN 'required $.merch_long'
	WHEN jsonb_typeof(j->'merch_long') <> 'number' THEN 'type $.merch_long'
	WHEN (j->'merch_long')::numeric < -180 THEN 'minimum $.merch_long'
	WHEN (j->'merch_long')::numeric > 180 THEN 'maximum $.merch_long'

	WHEN NOT j ? 'is_fraud' THEN 'required $.is_fraud'
	WHEN jsonb_typeof(j->'is_fraud') <> 'number' OR strpos(j->>'is_fraud', '.') > 0 THEN 'type $.is_fraud'
	WHEN (j->'is_fraud')::numeric NOT IN (0, 1) THEN 'enum $.is_fraud'

	WHEN j - '{trans_date_trans_time,cc_num,merchant,category,amt,first,last,gender,street,city,state,zip,lat,long,city_pop,job,dob,trans_num,unix_time,merch_lat,merch_long,is_fraud}'::text[] <> '{}'::jsonb
		THEN 'additional_property $.' || baseline.first_key(j - '{trans_date_trans_time,cc_num,merchant,category,amt,first,last,gender,street,city,state,zip,lat,long,city_pop,job,dob,trans_num,unix_time,merch_lat,merch_long,is_fraud}'::text[])
END
$$;

-- Lines as received.  Unlogged: a staging table is rebuilt from the file
-- after a crash, so its WAL would buy nothing.
CREATE UNLOGGED TABLE IF NOT EXISTS baseline.staging (
	line_no		bigint GENERATED ALWAYS AS IDENTITY,
	doc			text
);

CREATE TABLE IF NOT EXISTS baseline.rejects (
	line_no		bigint NOT NULL,
	payload		text NOT NULL,
	error_code	text NOT NULL,
	error_path	text NOT NULL
);
