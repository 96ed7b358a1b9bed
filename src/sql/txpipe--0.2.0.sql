-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION txpipe" to load this file. \quit

-- src/sql/schema.sql
-- Catalog and data tables of txpipe.

CREATE SCHEMA IF NOT EXISTS txpipe_in;
COMMENT ON SCHEMA txpipe_in IS 'COPY targets: one view per pipeline, COPY txpipe_in.<pipeline> FROM STDIN';

-- Pipeline definitions.  version changes on every redefinition so that
-- backends recompile their cached plans.
CREATE TABLE txpipe.pipelines (
	name		text PRIMARY KEY
				CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
	spec		jsonb NOT NULL,
	owner		regrole NOT NULL DEFAULT current_user::regrole,
	version		bigint NOT NULL DEFAULT 1,
	created_at	timestamptz NOT NULL DEFAULT now(),
	updated_at	timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('txpipe.pipelines', '');

-- Shipped templates: DDL with @schema@ placeholders and a pipeline spec.
CREATE TABLE txpipe.templates (
	name		text PRIMARY KEY,
	ddl			text NOT NULL,
	spec		jsonb NOT NULL
);

-- Dead letters: every record that was not routed, exactly as received.
CREATE TABLE txpipe.rejects (
	reject_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	pipeline	text NOT NULL,
	received_at	timestamptz NOT NULL DEFAULT now(),
	source		text NOT NULL
				CHECK (source IN ('copy', 'ingest', 'queue', 'notify', 'replay')),
	payload		text NOT NULL,
	payload_raw	bytea,
	error_code	text NOT NULL,
	error_path	text NOT NULL,
	message		text NOT NULL,
	sqlstate	text,
	replayed_at	timestamptz
);
CREATE INDEX rejects_pipeline_received ON txpipe.rejects (pipeline, received_at);
COMMENT ON COLUMN txpipe.rejects.payload_raw IS
	'the received bytes, set only when they are not valid text in the database encoding (payload then shows them with U+FFFD)';
SELECT pg_catalog.pg_extension_config_dump('txpipe.rejects', '');

-- One row per routed batch; txpipe.stats sums it.
CREATE TABLE txpipe.batches (
	batch_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	pipeline	text NOT NULL,
	source		text NOT NULL,
	xact		xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	finished_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	received	bigint NOT NULL,
	accepted	bigint NOT NULL,
	rejected	bigint NOT NULL,
	duplicates	bigint NOT NULL,
	duration	interval NOT NULL,
	retries		integer NOT NULL DEFAULT 0
);
COMMENT ON COLUMN txpipe.batches.retries IS
	'attempts rolled back to a savepoint: isolating refused rows, or a concurrent insert of the same key';
CREATE INDEX batches_pipeline_finished ON txpipe.batches (pipeline, finished_at);
SELECT pg_catalog.pg_extension_config_dump('txpipe.batches', '');

-- Reject codes, documented in the database itself.
CREATE TABLE txpipe.reject_codes (
	error_code	text PRIMARY KEY,
	stage		text NOT NULL,
	description	text NOT NULL
);
INSERT INTO txpipe.reject_codes VALUES
	('invalid_utf8', 'decode', 'the bytes are not valid in the database encoding'),
	('too_large', 'decode', 'the record is longer than txpipe.max_record_size'),
	('too_deep', 'decode', 'arrays and objects nest deeper than txpipe.max_depth'),
	('json_syntax', 'decode', 'not JSON: a missing or unexpected token'),
	('json_trailing_comma', 'decode', 'a comma before a closing brace or bracket'),
	('json_trailing_garbage', 'decode', 'text after the end of the JSON value'),
	('json_nan', 'decode', 'NaN or Infinity, which JSON does not have'),
	('json_single_quote', 'decode', 'a string in single quotes'),
	('json_control_char', 'decode', 'a raw control character that must be escaped'),
	('json_escape', 'decode', 'an invalid backslash or \u escape'),
	('json_nul', 'decode', 'the escape \u0000, which text cannot hold'),
	('json_surrogate', 'decode', 'a lone UTF-16 surrogate in a \u escape'),
	('json_duplicate_key', 'decode', 'the same key twice in one object'),
	('not_object', 'decode', 'the record is JSON but not an object'),
	('required', 'contract', 'a required field is missing'),
	('type', 'contract', 'a field has the wrong JSON type'),
	('enum', 'contract', 'a field is not one of the allowed values'),
	('pattern', 'contract', 'a string does not match the pattern'),
	('minimum', 'contract', 'a number is below the minimum'),
	('maximum', 'contract', 'a number is above the maximum'),
	('min_length', 'contract', 'a string is shorter than minLength'),
	('max_length', 'contract', 'a string is longer than maxLength'),
	('format', 'contract', 'a string is not a valid date or timestamp'),
	('additional_property', 'contract', 'a field the contract does not allow'),
	('poison', 'route', 'a queued record failed alone txpipe.worker_max_attempts times with an error that is not a refused row; message has the last error'),
	('unknown_pipeline', 'decode', 'a NOTIFY txpipe_ingest payload names a pipeline that does not exist'),
	('db_refused', 'route', 'the database refused a row (constraint, type); sqlstate and message are the database''s');

-- src/sql/functions.sql
-- Functions of txpipe.  C functions route; SQL and PL/pgSQL ones manage.

CREATE FUNCTION txpipe._check_spec(name text, spec jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_check_spec'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe.create_pipeline(name text, spec jsonb, or_replace boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
DECLARE
	v_target text;
	v_exists boolean;
BEGIN
	IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid pipeline name "%"', name
			USING ERRCODE = 'invalid_name',
				  HINT = 'A pipeline name is a lower-case identifier: letters, digits and underscores, at most 63 bytes.';
	END IF;
	IF spec IS NULL OR jsonb_typeof(spec) <> 'object' THEN
		RAISE EXCEPTION 'invalid pipeline spec: the spec must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- unqualified table names are in the creator's current schema, whoever routes
	IF NOT spec ? 'schema' THEN
		spec := spec || pg_catalog.jsonb_build_object('schema', pg_catalog.current_schema());
	END IF;
	PERFORM txpipe._check_spec(name, spec);

	SELECT true INTO v_exists FROM txpipe.pipelines p WHERE p.name = create_pipeline.name FOR UPDATE;
	IF v_exists AND NOT or_replace THEN
		RAISE EXCEPTION 'pipeline "%" already exists', name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Use txpipe.create_pipeline(name, spec, or_replace => true) to redefine it, or txpipe.drop_pipeline(name) first.';
	ELSIF v_exists THEN
		UPDATE txpipe.pipelines p
		   SET spec = create_pipeline.spec, version = p.version + 1, updated_at = now()
		 WHERE p.name = create_pipeline.name;
	ELSE
		INSERT INTO txpipe.pipelines (name, spec) VALUES (name, spec);
		INSERT INTO txpipe.queue_positions (pipeline, class)
		SELECT create_pipeline.name, c FROM generate_series(0, 15) c
		ON CONFLICT DO NOTHING;
	END IF;

	-- The COPY target is an empty table: its BEFORE ROW trigger takes each
	-- line and skips the row, its statement trigger routes what is left.
	-- (COPY into a view with an INSTEAD OF trigger keeps memory per row
	-- until the statement ends.)  CHECK (false) refuses rows should the
	-- triggers ever be disabled, so nothing can pile up there unrouted.
	v_target := format('txpipe_in.%I', name);
	IF pg_catalog.to_regclass(v_target) IS NULL THEN
		EXECUTE format('CREATE TABLE %s (doc text, CONSTRAINT routed_not_stored CHECK (false))', v_target);
	END IF;
	EXECUTE format('COMMENT ON TABLE %s IS %L', v_target,
		format('COPY %s FROM STDIN WITH (FORMAT csv, QUOTE e''\x01'', DELIMITER e''\x02''): one JSON record per line into pipeline %s; lines are routed, never stored here', v_target, name));
	EXECUTE format('DROP TRIGGER IF EXISTS route_row ON %s', v_target);
	EXECUTE format('DROP TRIGGER IF EXISTS route_flush ON %s', v_target);
	EXECUTE format('CREATE TRIGGER route_row BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION txpipe._copy_row(%L)', v_target, name);
	EXECUTE format('CREATE TRIGGER route_flush AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION txpipe._copy_flush(%L)', v_target, name);
	EXECUTE format('GRANT INSERT ON %s TO txpipe_writer, txpipe_admin', v_target);
END;
$$;

CREATE FUNCTION txpipe.drop_pipeline(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM txpipe.pipelines p WHERE p.name = drop_pipeline.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pipeline "%" does not exist', name
			USING ERRCODE = 'undefined_object';
	END IF;
	DELETE FROM txpipe.inbox i WHERE i.pipeline = drop_pipeline.name;
	EXECUTE format('DROP TABLE IF EXISTS txpipe_in.%I', name);
END;
$$;

CREATE FUNCTION txpipe.install_template(template text, schema text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
	t txpipe.templates;
	v_schema text := coalesce(schema, template);
	v_spec jsonb;
BEGIN
	SELECT * INTO t FROM txpipe.templates WHERE name = template;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'template "%" does not exist', template
			USING ERRCODE = 'undefined_object',
				  HINT = format('The templates are: %s.', (SELECT string_agg(name, ', ' ORDER BY name) FROM txpipe.templates));
	END IF;
	IF v_schema !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid schema name "%"', v_schema
			USING ERRCODE = 'invalid_name',
				  HINT = 'The schema name is also the pipeline name: a lower-case identifier.';
	END IF;
	EXECUTE replace(t.ddl, '@schema@', quote_ident(v_schema));
	v_spec := jsonb_set(t.spec, '{schema}', to_jsonb(v_schema));
	IF NOT EXISTS (SELECT 1 FROM txpipe.pipelines p WHERE p.name = v_schema) THEN
		PERFORM txpipe.create_pipeline(v_schema, v_spec);
	END IF;
	RETURN v_schema;
END;
$$;

CREATE FUNCTION txpipe.contract(pipeline text)
RETURNS jsonb
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT spec->'contract' FROM txpipe.pipelines WHERE name = pipeline $$;

CREATE FUNCTION txpipe.ingest(pipeline text, docs text,
	OUT accepted bigint, OUT rejected bigint, OUT duplicates bigint)
AS 'MODULE_PATHNAME', 'txpipe_ingest'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe.ingest_raw(pipeline text, docs bytea,
	OUT accepted bigint, OUT rejected bigint, OUT duplicates bigint)
AS 'MODULE_PATHNAME', 'txpipe_ingest_raw'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe.validate(pipeline text, doc text)
RETURNS TABLE (error_code text, error_path text, message text)
AS 'MODULE_PATHNAME', 'txpipe_validate'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe.plan(pipeline text)
RETURNS TABLE (route text, kind text, target regclass, write_path text, note text)
AS 'MODULE_PATHNAME', 'txpipe_plan_routes'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe._copy_row()
RETURNS trigger
AS 'MODULE_PATHNAME', 'txpipe_copy_row'
LANGUAGE C;

CREATE FUNCTION txpipe._copy_flush()
RETURNS trigger
AS 'MODULE_PATHNAME', 'txpipe_copy_flush'
LANGUAGE C;

-- What this transaction routed so far, per pipeline (a loader reads it
-- after COPY, before COMMIT).
CREATE FUNCTION txpipe.xact_counts(pipeline text,
	OUT received bigint, OUT accepted bigint, OUT rejected bigint, OUT duplicates bigint)
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(sum(b.received), 0)::bigint, coalesce(sum(b.accepted), 0)::bigint,
		   coalesce(sum(b.rejected), 0)::bigint, coalesce(sum(b.duplicates), 0)::bigint
	  FROM txpipe.batches b
	 WHERE b.pipeline = xact_counts.pipeline AND b.xact = pg_current_xact_id_if_assigned()
$$;

-- src/sql/refresh.sql
-- Star refresh: txpipe.refresh() runs a pipeline's refresh function over the
-- grain rows added since its watermark; schedule_refresh() has pg_cron run
-- it.

-- How far each pipeline's star is refreshed: every grain row with an id up
-- to watermark is in it.
CREATE TABLE txpipe.refresh_state (
	pipeline	text PRIMARY KEY REFERENCES txpipe.pipelines (name) ON DELETE CASCADE,
	watermark	bigint NOT NULL DEFAULT 0,
	refreshed_at timestamptz
);
SELECT pg_catalog.pg_extension_config_dump('txpipe.refresh_state', '');

-- One row per refresh run.  txpipe.refresh() keeps the newest 10000 runs of
-- each pipeline (a week at one run a minute).
CREATE TABLE txpipe.refresh_runs (
	run_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	pipeline	text NOT NULL,
	started_at	timestamptz NOT NULL,
	finished_at	timestamptz NOT NULL,
	rows		bigint NOT NULL,
	status		text NOT NULL CHECK (status IN ('ok', 'error', 'skipped')),
	error		text,
	sqlstate	text,
	watermark_from bigint NOT NULL,
	watermark_to bigint NOT NULL,
	"full"		boolean NOT NULL,
	pid			integer NOT NULL DEFAULT pg_catalog.pg_backend_pid()
);
CREATE INDEX refresh_runs_pipeline ON txpipe.refresh_runs (pipeline, run_id);
COMMENT ON COLUMN txpipe.refresh_runs.pid IS
	'the backend that ran the refresh (cron.job_run_details.job_pid for a run by pg_cron)';
SELECT pg_catalog.pg_extension_config_dump('txpipe.refresh_runs', '');

-- Helpers for refresh functions.  Both run with the caller's rights and do
-- only what the caller could do itself.

-- Makes the monthly partitions <fact>_YYYY_MM of a fact table partitioned
-- by range of a timestamp for every month in months and the month after
-- it, each as a table that is then attached: that locks the fact table
-- against other DDL only, so queries on the star do not wait for the
-- refresh to commit (CREATE TABLE ... PARTITION OF would lock them out).
-- time_zone: the partition key is a timestamptz and months are local
-- times of that zone.  Returns the partitions made.
CREATE FUNCTION txpipe.month_partitions(fact regclass, months timestamp[],
	time_zone text DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_schema name;
	v_table name;
	v_month timestamp;
	v_part text;
	v_made integer := 0;
BEGIN
	SELECT n.nspname, c.relname INTO v_schema, v_table
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	 WHERE c.oid = fact;
	FOR v_month IN
		SELECT DISTINCT date_trunc('month', m) + k * interval '1 month'
		  FROM unnest(months) AS m, (VALUES (0), (1)) AS ahead(k)
		 WHERE m IS NOT NULL
	LOOP
		v_part := v_table || '_' || to_char(v_month, 'YYYY_MM');
		IF to_regclass(format('%I.%I', v_schema, v_part)) IS NULL THEN
			EXECUTE format('CREATE TABLE %I.%I (LIKE %s)', v_schema, v_part, fact);
			IF time_zone IS NULL THEN
				EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
							   fact, v_schema, v_part, v_month, v_month + interval '1 month');
			ELSE
				EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
							   fact, v_schema, v_part, v_month AT TIME ZONE time_zone,
							   (v_month + interval '1 month') AT TIME ZONE time_zone);
			END IF;
			v_made := v_made + 1;
		END IF;
	END LOOP;
	RETURN v_made;
END;
$$;
COMMENT ON FUNCTION txpipe.month_partitions(regclass, timestamp[], text) IS
	'makes the monthly partitions <fact>_YYYY_MM of a fact table for these months and the month after each; returns how many it made';

-- Adds the days of dates missing from a date dimension with the columns
-- of the templates' dim_date (date_key yyyymmdd, date, day_of_week ISO,
-- day_name, day_of_month, month, month_name, quarter, year, is_weekend).
-- Returns the rows added.
CREATE FUNCTION txpipe.fill_dim_date(dim regclass, dates date[])
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_added bigint;
BEGIN
	EXECUTE format('INSERT INTO %s (date_key, date, day_of_week, day_name, day_of_month,
						month, month_name, quarter, year, is_weekend)
		SELECT to_char(d, ''YYYYMMDD'')::integer, d, extract(isodow FROM d), to_char(d, ''FMDay''),
			   extract(day FROM d), extract(month FROM d), to_char(d, ''FMMonth''),
			   extract(quarter FROM d), extract(year FROM d), extract(isodow FROM d) >= 6
		  FROM (SELECT DISTINCT d FROM unnest($1) AS d WHERE d IS NOT NULL) AS days
		ON CONFLICT (date_key) DO NOTHING', dim) USING dates;
	GET DIAGNOSTICS v_added = ROW_COUNT;
	RETURN v_added;
END;
$$;
COMMENT ON FUNCTION txpipe.fill_dim_date(regclass, date[]) IS
	'adds the missing days of dates to a date dimension shaped like the templates'' dim_date; returns the rows added';

-- The table of a pipeline's grain route (the first unconditional insert
-- route with a column from the idempotency key), as routing chose it.
CREATE FUNCTION txpipe._grain_table(pipeline text)
RETURNS regclass
AS 'MODULE_PATHNAME', 'txpipe_grain_table'
LANGUAGE C STRICT;

-- What txpipe.refresh() works on: the grain table, the watermark column
-- and the refresh function of a stored (so already checked) spec.  func
-- is NULL when the function has been dropped since.
CREATE FUNCTION txpipe._refresh_target(pipeline text, spec jsonb,
	OUT grain regclass, OUT watermark text, OUT func regprocedure)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name text[] := parse_ident(spec->'refresh'->>'function');
BEGIN
	grain := txpipe._grain_table(pipeline);
	IF cardinality(v_name) = 1 THEN
		v_name := ARRAY[spec->>'schema'] || v_name;
	END IF;
	func := to_regprocedure(format('%I.%I(bigint, bigint)', v_name[1], v_name[2]));
	watermark := spec->'refresh'->>'watermark';
END;
$$;

CREATE FUNCTION txpipe.refresh(pipeline text, full boolean DEFAULT false,
	OUT status text, OUT rows bigint, OUT watermark_from bigint, OUT watermark_to bigint,
	OUT duration interval)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_full boolean := coalesce(refresh.full, false);
	v_started timestamptz := clock_timestamp();
	v_spec jsonb;
	v_target record;
	v_stored bigint;
	v_lo bigint;
	v_hi bigint;
	v_rows bigint := 0;
	v_status text := 'ok';
	v_error text;
	v_sqlstate text;
BEGIN
	SELECT p.spec INTO v_spec FROM txpipe.pipelines p WHERE p.name = refresh.pipeline;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pipeline "%" does not exist', refresh.pipeline
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it with txpipe.create_pipeline() or txpipe.install_template().';
	END IF;
	IF NOT v_spec ? 'refresh' THEN
		RAISE EXCEPTION 'pipeline "%" has no refresh', refresh.pipeline
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Give its spec a "refresh": {"function": ..., "watermark": ...}; see the README, section "Star schema and refresh".';
	END IF;
	IF current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'txpipe.refresh() needs the read committed isolation level'
			USING ERRCODE = 'invalid_transaction_state',
				  DETAIL = 'It reads the rows committed by the writers it waits for; an older snapshot would not see them.';
	END IF;
	v_target := txpipe._refresh_target(refresh.pipeline, v_spec);
	IF v_target.grain IS NULL OR v_target.func IS NULL THEN
		RAISE EXCEPTION 'the grain table or the refresh function of pipeline "%" does not exist', refresh.pipeline
			USING ERRCODE = 'undefined_object',
				  DETAIL = format('The spec names function %s and watermark column %s of its grain route''s table.',
								  v_spec->'refresh'->>'function', v_spec->'refresh'->>'watermark');
	END IF;

	-- One refresh per pipeline at a time: a second caller waits here (at
	-- most lock_timeout), then starts from the watermark the first one
	-- stored.  The lock outlives this block: a block that ends without an
	-- error hands its locks to the transaction.
	BEGIN
		PERFORM pg_advisory_xact_lock('txpipe.refresh_state'::regclass::oid::integer,
									  hashtext(refresh.pipeline));
	EXCEPTION
		WHEN lock_not_available THEN
			v_status := 'skipped';
			v_error := format('another refresh of pipeline %s was still running when lock_timeout (%s) expired',
							  refresh.pipeline, current_setting('lock_timeout'));
	END;

	IF v_status = 'ok' THEN
		INSERT INTO txpipe.refresh_state AS s (pipeline) VALUES (refresh.pipeline)
		ON CONFLICT DO NOTHING;
	END IF;
	v_stored := coalesce((SELECT s.watermark FROM txpipe.refresh_state s
						   WHERE s.pipeline = refresh.pipeline), 0);
	v_lo := CASE WHEN v_full THEN 0 ELSE v_stored END;
	v_hi := v_stored;

	IF v_status = 'ok' THEN
		BEGIN
			-- The upper bound.  Ids come from a sequence when a row is inserted,
			-- so a transaction still open may hold a lower id than one that has
			-- committed: max(id) alone could move the watermark past rows that
			-- commit later.  A SHARE lock waits for every transaction writing
			-- the grain table (all hold ROW EXCLUSIVE from before they draw an
			-- id) and keeps new ones out while max(id) is read; from then on
			-- every id up to max(id) is committed or rolled back, and any id
			-- drawn later is higher.  The lock is taken in a subtransaction that
			-- is rolled back at once, which releases it: writers are held up
			-- only while refresh waits for the ones already running, not while
			-- the star is written.  Tracking rows by transaction id instead would
			-- never wait, but needs an indexed xid column in every grain table.
			BEGIN
				EXECUTE format('LOCK TABLE %s IN SHARE MODE', v_target.grain);
				EXECUTE format('SELECT max(%I) FROM %s', v_target.watermark, v_target.grain) INTO v_hi;
				RAISE SQLSTATE 'TXR01';
			EXCEPTION
				WHEN SQLSTATE 'TXR01' THEN
					NULL;
				WHEN lock_not_available THEN
					v_status := 'skipped';
					v_error := format('transactions writing %s were still open when lock_timeout (%s) expired',
									  v_target.grain, current_setting('lock_timeout'));
			END;

			IF v_status = 'ok' THEN
				v_hi := greatest(coalesce(v_hi, 0), v_lo);
				-- lo = 0 asks the function for a rebuild, even of an empty star
				IF v_hi > v_lo OR v_lo = 0 THEN
					EXECUTE format('SELECT %s($1, $2)', v_target.func::oid::regproc)
						INTO v_rows USING v_lo, v_hi;
				END IF;
				UPDATE txpipe.refresh_state s SET watermark = v_hi, refreshed_at = now()
				 WHERE s.pipeline = refresh.pipeline;
			ELSE
				v_hi := v_stored;
			END IF;
		EXCEPTION
			WHEN OTHERS THEN
				-- Recorded, not raised: raising would roll the record back too.
				-- Nothing of the run is kept and the watermark stays.
				GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
				v_status := 'error';
				v_rows := 0;
				v_hi := v_stored;
				RAISE WARNING 'refresh of pipeline "%" failed: %', refresh.pipeline, v_error
					USING DETAIL = format('SQLSTATE %s.  The run is recorded in txpipe.refresh_runs; the watermark stays at %s.',
										  v_sqlstate, v_stored);
		END;
	END IF;

	duration := clock_timestamp() - v_started;
	INSERT INTO txpipe.refresh_runs (pipeline, started_at, finished_at, rows, status, error, sqlstate,
									 watermark_from, watermark_to, "full")
	VALUES (refresh.pipeline, v_started, v_started + duration, v_rows, v_status, v_error, v_sqlstate,
			v_lo, v_hi, v_full);
	DELETE FROM txpipe.refresh_runs r
	 WHERE r.pipeline = refresh.pipeline
	   AND r.run_id <= (SELECT x.run_id FROM txpipe.refresh_runs x
						 WHERE x.pipeline = refresh.pipeline
						 ORDER BY x.run_id DESC OFFSET 10000 LIMIT 1);

	status := v_status;
	rows := v_rows;
	watermark_from := v_lo;
	watermark_to := v_hi;
END;
$$;

-- Scheduling through pg_cron (1.4 or later).  pg_cron keeps its jobs in one
-- database (cron.database_name) and runs each in the database it names, so
-- the jobs are made there; txpipe calls pg_cron only when its extension
-- is in the current database, and needs it nowhere else.

CREATE FUNCTION txpipe._refresh_job_name(pipeline text, database text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT 'txpipe_refresh_' || pipeline
		   || CASE WHEN database = current_database() THEN '' ELSE '@' || database END
$$;

-- Raises, with a hint naming the call to make and where, unless pg_cron can
-- be called from this database.
CREATE FUNCTION txpipe._require_cron(call text, database text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_loaded boolean := 'pg_cron' = ANY (regexp_split_to_array(current_setting('shared_preload_libraries'), '\s*,\s*'));
	v_cron_db text := coalesce(current_setting('cron.database_name', true), 'postgres');
BEGIN
	IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
		IF to_regprocedure('cron.schedule_in_database(text, text, text, text, text, boolean)') IS NULL THEN
			RAISE EXCEPTION 'txpipe needs pg_cron 1.4 or later'
				USING ERRCODE = 'object_not_in_prerequisite_state',
					  HINT = 'Update it with ALTER EXTENSION pg_cron UPDATE.';
		END IF;
		RETURN;
	END IF;
	IF NOT v_loaded THEN
		RAISE EXCEPTION 'pg_cron is not installed'
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = 'txpipe schedules refreshes with pg_cron 1.4 or later, and this server does not load it.',
				  HINT = format('Add pg_cron to shared_preload_libraries, set cron.database_name to the database that should keep the jobs, restart the server, and run CREATE EXTENSION pg_cron there; then, in that database: CREATE EXTENSION IF NOT EXISTS txpipe; %s', call);
	ELSIF v_cron_db = current_database() THEN
		RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = format('Run CREATE EXTENSION pg_cron in this database, then %s', call);
	ELSE
		RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  DETAIL = format('pg_cron keeps its jobs in database "%s" (cron.database_name); refreshes are scheduled from there, naming the database they run in.', v_cron_db),
				  HINT = format('In database "%s", run: CREATE EXTENSION IF NOT EXISTS pg_cron; CREATE EXTENSION IF NOT EXISTS txpipe; %s', v_cron_db, call);
	END IF;
END;
$$;

-- The job that keeps pg_cron's run history of txpipe's jobs short: the
-- newest 1000 runs of each job stay in cron.job_run_details.
CREATE FUNCTION txpipe._cron_prune_command()
RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
	SELECT $prune$DELETE FROM cron.job_run_details d
 USING (SELECT r.runid, row_number() OVER (PARTITION BY r.jobid ORDER BY r.runid DESC) AS n
          FROM cron.job_run_details r JOIN cron.job j ON j.jobid = r.jobid
         WHERE j.jobname LIKE 'txpipe\_%') o
 WHERE d.runid = o.runid AND o.n > 1000$prune$
$$;

CREATE FUNCTION txpipe.schedule_refresh(pipeline text, cron text DEFAULT '* * * * *',
	database text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_db text := coalesce(database, current_database());
	v_job text;
	v_command text;
	v_jobid bigint;
BEGIN
	IF pipeline IS NULL OR pipeline !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid pipeline name "%"', pipeline
			USING ERRCODE = 'invalid_name';
	END IF;
	PERFORM txpipe._require_cron(
		format('SELECT txpipe.schedule_refresh(%L, %L, database => %L);', pipeline, cron, v_db), v_db);
	IF v_db = current_database() THEN
		IF NOT EXISTS (SELECT 1 FROM txpipe.pipelines p WHERE p.name = schedule_refresh.pipeline) THEN
			RAISE EXCEPTION 'pipeline "%" does not exist', pipeline
				USING ERRCODE = 'undefined_object';
		END IF;
		IF NOT EXISTS (SELECT 1 FROM txpipe.pipelines p
						WHERE p.name = schedule_refresh.pipeline AND p.spec ? 'refresh') THEN
			RAISE EXCEPTION 'pipeline "%" has no refresh', pipeline
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
	ELSIF NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = v_db) THEN
		RAISE EXCEPTION 'database "%" does not exist', v_db
			USING ERRCODE = 'invalid_catalog_name';
	END IF;

	v_job := txpipe._refresh_job_name(pipeline, v_db);
	-- A run waits at most 5 s for open transactions of the grain table
	-- (and holds up their new writers meanwhile), then is recorded as
	-- skipped; the next minute's run catches up.
	v_command := format('SET lock_timeout = %L; SELECT status, rows FROM txpipe.refresh(%L)', '5s', pipeline);
	-- scheduling under an existing job name replaces that job
	IF v_db = current_database() THEN
		v_jobid := cron.schedule(v_job, cron, v_command);
	ELSE
		v_jobid := cron.schedule_in_database(v_job, cron, v_command, v_db);
	END IF;
	PERFORM cron.schedule('txpipe_prune_history', '17 * * * *', txpipe._cron_prune_command());
	RETURN v_jobid;
END;
$$;

CREATE FUNCTION txpipe.unschedule_refresh(pipeline text, database text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_db text := coalesce(database, current_database());
	v_jobid bigint;
BEGIN
	PERFORM txpipe._require_cron(
		format('SELECT txpipe.unschedule_refresh(%L, database => %L);', pipeline, v_db), v_db);
	SELECT j.jobid INTO v_jobid FROM cron.job j
	 WHERE j.jobname = txpipe._refresh_job_name(pipeline, v_db);
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM cron.unschedule(v_jobid);
	DELETE FROM cron.job_run_details d WHERE d.jobid = v_jobid;
	IF NOT EXISTS (SELECT 1 FROM cron.job j WHERE j.jobname LIKE 'txpipe\_refresh\_%') THEN
		SELECT j.jobid INTO v_jobid FROM cron.job j WHERE j.jobname = 'txpipe_prune_history';
		IF FOUND THEN
			PERFORM cron.unschedule(v_jobid);
			DELETE FROM cron.job_run_details d WHERE d.jobid = v_jobid;
		END IF;
	END IF;
	RETURN true;
END;
$$;

-- src/sql/queue.sql
-- The queue path: txpipe.enqueue() and COPY of async pipelines write the
-- inbox; background workers (or txpipe.drain()) route what is in it.
--
-- Inbox rows carry the top-level transaction id that wrote them.  Each
-- pipeline has 16 classes (hash of its order_key field); a class's
-- position says which rows are consumed: every row whose transaction is
-- visible in done_upto, plus, during a pass, the rows visible in pass_upto
-- up to (last_xid, last_id) in (xid, id) order.  A batch moves the position
-- in the same transaction as the rows it routed, so a crash at any point
-- repeats or loses nothing.  Rows of a transaction still running when a
-- pass starts wait for the next pass; nothing waits for long writers.
--
-- The inbox is a set of 8 slots (LIST partitions); writers fill the slot of
-- the current time (txpipe.inbox_slot_seconds each), and a slot that is
-- not current and holds only consumed rows is truncated, never deleted row
-- by row.

CREATE FUNCTION txpipe._inbox_slot()
RETURNS smallint
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ((extract(epoch FROM clock_timestamp())::bigint
			/ greatest(coalesce(nullif(current_setting('txpipe.inbox_slot_seconds', true), '')::int, 10), 1))
			% 8)::smallint
$$;

-- The class of a record: its order key's hash, or any class without one.
CREATE FUNCTION txpipe._queue_class(key text)
RETURNS smallint
LANGUAGE sql VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN key IS NULL THEN (random() * 16)::int % 16
				ELSE (hashtext(key) & 2147483647) % 16 END::smallint
$$;

CREATE SEQUENCE txpipe.inbox_id_seq;

CREATE TABLE txpipe.inbox (
	slot		smallint NOT NULL DEFAULT txpipe._inbox_slot(),
	id			bigint NOT NULL DEFAULT pg_catalog.nextval('txpipe.inbox_id_seq'),
	xid			xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
	pipeline	text NOT NULL,
	class		smallint NOT NULL CHECK (class BETWEEN 0 AND 15),
	source		text NOT NULL CHECK (source IN ('queue', 'copy', 'notify')),
	enqueued_at	timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
	doc			text NOT NULL
) PARTITION BY LIST (slot);
ALTER SEQUENCE txpipe.inbox_id_seq OWNED BY txpipe.inbox.id;
DO $$
BEGIN
	FOR s IN 0..7 LOOP
		EXECUTE format('CREATE TABLE txpipe.inbox_%s PARTITION OF txpipe.inbox FOR VALUES IN (%s)', s, s);
	END LOOP;
END;
$$;
CREATE INDEX inbox_order ON txpipe.inbox (pipeline, class, xid, id);
COMMENT ON TABLE txpipe.inbox IS
	'records waiting for a worker: written by txpipe.enqueue(), NOTIFY txpipe_ingest and COPY of async pipelines; consumed rows go when their slot is truncated';

CREATE TABLE txpipe.queue_positions (
	pipeline	text NOT NULL REFERENCES txpipe.pipelines (name) ON DELETE CASCADE,
	class		smallint NOT NULL CHECK (class BETWEEN 0 AND 15),
	done_upto	pg_snapshot NOT NULL DEFAULT '1:1:',
	pass_upto	pg_snapshot,
	last_xid	xid8,
	last_id		bigint,
	consumed	bigint NOT NULL DEFAULT 0,
	updated_at	timestamptz,
	PRIMARY KEY (pipeline, class)
);
COMMENT ON TABLE txpipe.queue_positions IS
	'how far the inbox of each pipeline and class is routed; moved in the same transaction as the routed rows';
-- Positions are transaction ids of this cluster and the inbox is not
-- dumped: neither is carried over by pg_dump.  A missing row means done_upto
-- '1:1:' (nothing routed yet); create_pipeline() and txpipe.drain() add
-- them.

-- Whether this database's workers should run: txpipe.stop_worker() turns
-- it off, txpipe.start_worker() on.
CREATE TABLE txpipe.worker_state (
	onerow		boolean PRIMARY KEY DEFAULT true CHECK (onerow),
	enabled		boolean NOT NULL DEFAULT true,
	changed_at	timestamptz NOT NULL DEFAULT now()
);
INSERT INTO txpipe.worker_state DEFAULT VALUES;

CREATE FUNCTION txpipe.enqueue(pipeline text, docs jsonb[])
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_key text;
	v_n bigint;
BEGIN
	IF pipeline IS NULL THEN
		RAISE EXCEPTION 'pipeline must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT p.spec->>'order_key' INTO v_key FROM txpipe.pipelines p WHERE p.name = enqueue.pipeline;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pipeline "%" does not exist', pipeline
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it with txpipe.create_pipeline() or txpipe.install_template().';
	END IF;
	INSERT INTO txpipe.inbox (pipeline, class, source, doc)
	SELECT enqueue.pipeline, txpipe._queue_class(d->>v_key), 'queue', coalesce(d::text, 'null')
	  FROM unnest(docs) d;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	IF v_n > 0 THEN
		PERFORM pg_notify('txpipe_wakeup', enqueue.pipeline);
	END IF;
	RETURN v_n;
END;
$$;
COMMENT ON FUNCTION txpipe.enqueue(text, jsonb[]) IS
	'queues records for the background worker, in the caller''s transaction; returns how many';

CREATE FUNCTION txpipe.enqueue(pipeline text, doc jsonb)
RETURNS bigint
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT txpipe.enqueue(pipeline, ARRAY[doc]) $$;
COMMENT ON FUNCTION txpipe.enqueue(text, jsonb) IS
	'queues one record for the background worker, in the caller''s transaction';

CREATE FUNCTION txpipe.enqueue(pipeline text, doc text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txpipe_enqueue_text'
LANGUAGE C STRICT;
COMMENT ON FUNCTION txpipe.enqueue(text, text) IS
	'queues one record exactly as received (JSON text, checked by the worker like a COPY line), in the caller''s transaction';

CREATE FUNCTION txpipe.enqueue(pipeline text, docs text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'txpipe_enqueue_texts'
LANGUAGE C STRICT;
COMMENT ON FUNCTION txpipe.enqueue(text, text[]) IS
	'queues records exactly as received, in the caller''s transaction; returns how many';

-- A NOTIFY txpipe_ingest payload, as the worker received it: its records go
-- to the inbox; a payload that cannot be read becomes a reject.
CREATE FUNCTION txpipe._notify_in(payload text)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v jsonb;
	v_pipeline text;
	v_key text;
	v_n bigint;
	v_code text;
	v_path text := '$';
	v_msg text;
BEGIN
	BEGIN
		v := payload::jsonb;
	EXCEPTION WHEN invalid_text_representation THEN
		v_code := 'json_syntax';
		v_msg := 'the NOTIFY payload is not JSON: ' || SQLERRM;
	END;
	IF v_code IS NULL AND jsonb_typeof(v) <> 'object' THEN
		v_code := 'not_object';
		v_msg := 'the NOTIFY payload is not a JSON object';
	END IF;
	IF v_code IS NULL THEN
		v_pipeline := v->>'pipeline';
		IF jsonb_typeof(v->'pipeline') IS DISTINCT FROM 'string' THEN
			v_code := 'required'; v_path := '$.pipeline';
			v_msg := 'the NOTIFY payload needs "pipeline", a string';
		ELSIF jsonb_typeof(v->'records') IS DISTINCT FROM 'array' THEN
			v_code := 'required'; v_path := '$.records';
			v_msg := 'the NOTIFY payload needs "records", an array of records';
		ELSE
			SELECT p.spec->>'order_key' INTO v_key FROM txpipe.pipelines p WHERE p.name = v_pipeline;
			IF NOT FOUND THEN
				v_code := 'unknown_pipeline'; v_path := '$.pipeline';
				v_msg := format('pipeline "%s" does not exist', v_pipeline);
			END IF;
		END IF;
	END IF;
	IF v_code IS NOT NULL THEN
		INSERT INTO txpipe.rejects (pipeline, source, payload, error_code, error_path, message)
		VALUES (coalesce(v_pipeline, ''), 'notify', payload, v_code, v_path, v_msg);
		RETURN 0;
	END IF;
	INSERT INTO txpipe.inbox (pipeline, class, source, doc)
	SELECT v_pipeline, txpipe._queue_class(d->>v_key), 'notify', d::text
	  FROM jsonb_array_elements(v->'records') d;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END;
$$;

-- Which inbox rows are not routed yet.
CREATE VIEW txpipe.queue AS
SELECT i.pipeline, i.class, i.id, i.xid, i.source, i.enqueued_at, i.doc
  FROM txpipe.inbox i
  LEFT JOIN txpipe.queue_positions q ON q.pipeline = i.pipeline AND q.class = i.class
 WHERE NOT coalesce(pg_catalog.pg_visible_in_snapshot(i.xid, q.done_upto), false)
   AND NOT coalesce(pg_catalog.pg_visible_in_snapshot(i.xid, q.pass_upto)
					AND (i.xid, i.id) <= (q.last_xid, q.last_id), false);
COMMENT ON VIEW txpipe.queue IS 'records waiting in the inbox, not yet routed';

-- Truncates every slot but the current one whose rows are all routed.  A
-- slot still being written to, or read by a worker's batch, is left for
-- the next call (lock_timeout 100 ms).  Returns the slots truncated.
CREATE FUNCTION txpipe._rotate_inbox()
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_current smallint := txpipe._inbox_slot();
	v_part text;
	v_n integer := 0;
	v_waiting boolean;
BEGIN
	FOR s IN 0..7 LOOP
		CONTINUE WHEN s = v_current;
		v_part := format('txpipe.inbox_%s', s);
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', v_part) INTO v_waiting;
		CONTINUE WHEN NOT v_waiting;
		BEGIN
			PERFORM set_config('lock_timeout', '100ms', true);
			EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', v_part);
			EXECUTE format($q$
				SELECT EXISTS (SELECT 1 FROM %s i
								 LEFT JOIN txpipe.queue_positions q ON q.pipeline = i.pipeline AND q.class = i.class
								WHERE NOT coalesce(pg_visible_in_snapshot(i.xid, q.done_upto), false))$q$, v_part)
			   INTO v_waiting;
			IF NOT v_waiting THEN
				EXECUTE format('TRUNCATE %s', v_part);
				v_n := v_n + 1;
			END IF;
		EXCEPTION WHEN lock_not_available THEN
			NULL;
		END;
	END LOOP;
	RETURN v_n;
END;
$$;

CREATE FUNCTION txpipe.drain(pipeline text DEFAULT NULL, max_records integer DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txpipe_drain'
LANGUAGE C;
COMMENT ON FUNCTION txpipe.drain(text, integer) IS
	'routes records waiting in the inbox now, in the caller''s transaction (what a worker does); returns how many';

CREATE FUNCTION txpipe.start_worker()
RETURNS integer
AS 'MODULE_PATHNAME', 'txpipe_start_worker'
LANGUAGE C;
COMMENT ON FUNCTION txpipe.start_worker() IS
	'starts this database''s background workers (txpipe.workers of them); returns the first one''s process id';

CREATE FUNCTION txpipe.stop_worker()
RETURNS integer
AS 'MODULE_PATHNAME', 'txpipe_stop_worker'
LANGUAGE C;
COMMENT ON FUNCTION txpipe.stop_worker() IS
	'stops this database''s background workers until txpipe.start_worker(); returns how many were signalled';

-- src/sql/stats.sql
-- txpipe.stats: one row per pipeline.

CREATE VIEW txpipe.stats AS
SELECT p.name AS pipeline,
	   coalesce(b.received, 0) AS received,
	   coalesce(b.accepted, 0) AS accepted,
	   coalesce(b.rejected, 0) AS rejected,
	   coalesce(b.duplicates, 0) AS duplicates,
	   l.finished_at AS last_batch_at,
	   l.received AS last_batch_rows,
	   r.rows_per_s,
	   coalesce(q.backlog, 0) AS backlog,
	   now() - q.oldest AS backlog_age,
	   f.watermark AS refresh_watermark,
	   f.refreshed_at,
	   now() - f.refreshed_at AS refresh_lag
  FROM txpipe.pipelines p
  LEFT JOIN txpipe.refresh_state f ON f.pipeline = p.name
  LEFT JOIN LATERAL (
		SELECT count(*) AS backlog, min(w.enqueued_at) AS oldest
		  FROM txpipe.queue w WHERE w.pipeline = p.name) q ON true
  LEFT JOIN LATERAL (
		SELECT sum(received)::bigint AS received, sum(accepted)::bigint AS accepted,
			   sum(rejected)::bigint AS rejected, sum(duplicates)::bigint AS duplicates
		  FROM txpipe.batches WHERE pipeline = p.name) b ON true
  LEFT JOIN LATERAL (
		SELECT finished_at, received FROM txpipe.batches
		 WHERE pipeline = p.name ORDER BY finished_at DESC LIMIT 1) l ON true
  LEFT JOIN LATERAL (
		SELECT round(sum(received) / nullif(extract(epoch FROM sum(duration)), 0))::bigint AS rows_per_s
		  FROM txpipe.batches
		 WHERE pipeline = p.name AND finished_at > now() - interval '1 minute') r ON true;
COMMENT ON VIEW txpipe.stats IS 'per pipeline: records received, accepted, rejected, duplicates; the last batch; routing rate over the last minute; records waiting in the inbox and the age of the oldest; star refresh watermark and lag';

-- src/sql/roles.sql
-- Roles are cluster-wide: created once, kept when the extension is dropped.
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['txpipe_writer', 'txpipe_reader', 'txpipe_admin'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END;
$$;

GRANT USAGE ON SCHEMA txpipe, txpipe_in TO txpipe_writer, txpipe_reader, txpipe_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA txpipe FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.month_partitions(regclass, timestamp[], text),
	txpipe.fill_dim_date(regclass, date[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.ingest(text, text), txpipe.ingest_raw(text, bytea),
	txpipe.validate(text, text), txpipe.contract(text), txpipe.xact_counts(text),
	txpipe._copy_row(), txpipe._copy_flush(),
	txpipe.enqueue(text, jsonb), txpipe.enqueue(text, jsonb[]),
	txpipe.enqueue(text, text), txpipe.enqueue(text, text[]), txpipe._inbox_slot()
	TO txpipe_writer, txpipe_admin;
GRANT SELECT ON txpipe.batches, txpipe.pipelines TO txpipe_writer;
-- COPY into an async pipeline's txpipe_in table writes the inbox as the caller
GRANT INSERT ON txpipe.inbox TO txpipe_writer;
GRANT USAGE ON SEQUENCE txpipe.inbox_id_seq TO txpipe_writer;
GRANT SELECT ON txpipe.stats, txpipe.batches, txpipe.pipelines, txpipe.reject_codes,
	txpipe.refresh_state, txpipe.refresh_runs, txpipe.queue_positions TO txpipe_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA txpipe TO txpipe_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA txpipe TO txpipe_admin;
GRANT CREATE ON SCHEMA txpipe_in TO txpipe_admin;

-- template cards
INSERT INTO txpipe.templates (name, ddl, spec) VALUES ('cards', $txpipe_template$-- cards: credit-card transactions, normalized (3NF).
-- @schema@ is replaced by the quoted target schema.
CREATE SCHEMA IF NOT EXISTS @schema@;

CREATE TABLE IF NOT EXISTS @schema@.state (
	state_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	state		text NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS @schema@.city (
	city_id		integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	state_id	integer NOT NULL REFERENCES @schema@.state,
	city		text NOT NULL,
	zip			text NOT NULL CHECK (zip ~ '^[0-9]{5}$'),
	lat			double precision,
	long		double precision,
	city_pop	integer,
	UNIQUE (state_id, city, zip)
);

CREATE TABLE IF NOT EXISTS @schema@.customer (
	customer_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	first		text NOT NULL,
	last		text NOT NULL,
	dob			date NOT NULL,
	gender		char(1) NOT NULL CHECK (gender IN ('F', 'M')),
	job			text,
	street		text,
	city_id		integer NOT NULL REFERENCES @schema@.city,
	UNIQUE (first, last, dob)
);

-- A customer's job and address as seen in the records: each new
-- combination is a version, first seen at valid_from (the event time of
-- the record that brought it).  The source of dim_customer's SCD type 2.
CREATE TABLE IF NOT EXISTS @schema@.customer_version (
	customer_version_id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	customer_id	integer NOT NULL REFERENCES @schema@.customer,
	job			text NOT NULL,
	street		text NOT NULL,
	city_id		integer NOT NULL REFERENCES @schema@.city,
	valid_from	timestamp NOT NULL,
	UNIQUE (customer_id, job, street, city_id)
);

CREATE TABLE IF NOT EXISTS @schema@.card (
	card_id		integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	cc_num		bigint NOT NULL UNIQUE,
	customer_id	integer NOT NULL REFERENCES @schema@.customer
);

CREATE TABLE IF NOT EXISTS @schema@.category (
	category_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	category	text NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS @schema@.merchant (
	merchant_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	merchant	text NOT NULL UNIQUE
);

-- trans_num is an identifier: it compares byte by byte (COLLATE "C"), so
-- its unique index, probed and written for every record, never goes
-- through the database's linguistic collation
CREATE TABLE IF NOT EXISTS @schema@.transaction (
	transaction_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	trans_num		text COLLATE "C" NOT NULL UNIQUE,
	trans_date_trans_time timestamp NOT NULL,
	unix_time		bigint NOT NULL,
	card_id			integer NOT NULL REFERENCES @schema@.card,
	customer_version_id integer NOT NULL REFERENCES @schema@.customer_version,
	merchant_id		integer NOT NULL REFERENCES @schema@.merchant,
	category_id		integer NOT NULL REFERENCES @schema@.category,
	amt				numeric(12,2) NOT NULL CHECK (amt >= 0),
	merch_lat		double precision,
	merch_long		double precision,
	is_fraud		boolean NOT NULL
);

-- a card's recent transactions
CREATE INDEX IF NOT EXISTS transaction_card_time
	ON @schema@.transaction (card_id, trans_date_trans_time DESC);
-- transactions by time
CREATE INDEX IF NOT EXISTS transaction_time
	ON @schema@.transaction (trans_date_trans_time);
CREATE INDEX IF NOT EXISTS customer_city ON @schema@.customer (city_id);
CREATE INDEX IF NOT EXISTS card_customer ON @schema@.card (customer_id);

-- Star schema, filled by refresh_star() through txpipe.refresh().  Keys are
-- the surrogate ids of the normalized tables, so a dimension row is written
-- once and facts need no lookups.

CREATE TABLE IF NOT EXISTS @schema@.dim_date (
	date_key	integer PRIMARY KEY,	-- yyyymmdd
	date		date NOT NULL UNIQUE,
	day_of_week	smallint NOT NULL,		-- ISO: 1 = Monday ... 7 = Sunday
	day_name	text NOT NULL,
	day_of_month smallint NOT NULL,
	month		smallint NOT NULL,
	month_name	text NOT NULL,
	quarter		smallint NOT NULL,
	year		integer NOT NULL,
	is_weekend	boolean NOT NULL
);

CREATE TABLE IF NOT EXISTS @schema@.dim_location (
	location_key integer PRIMARY KEY,	-- city.city_id
	city		text NOT NULL,
	state		text NOT NULL,
	zip			text NOT NULL,
	lat			double precision,
	long		double precision,
	city_pop	integer
);

CREATE TABLE IF NOT EXISTS @schema@.dim_merchant (
	merchant_key integer PRIMARY KEY,	-- merchant.merchant_id
	merchant	text NOT NULL
);

CREATE TABLE IF NOT EXISTS @schema@.dim_category (
	category_key integer PRIMARY KEY,	-- category.category_id
	category	text NOT NULL
);

-- SCD type 2: one row per customer_version.  valid_to is the valid_from of
-- the customer's next version (NULL for the current one).
CREATE TABLE IF NOT EXISTS @schema@.dim_customer (
	customer_key integer PRIMARY KEY,	-- customer_version.customer_version_id
	customer_id	integer NOT NULL,
	first		text NOT NULL,
	last		text NOT NULL,
	gender		char(1) NOT NULL,
	dob			date NOT NULL,
	job			text NOT NULL,
	street		text NOT NULL,
	city		text NOT NULL,
	state		text NOT NULL,
	zip			text NOT NULL,
	valid_from	timestamp NOT NULL,
	valid_to	timestamp,
	is_current	boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS dim_customer_customer
	ON @schema@.dim_customer (customer_id, valid_from);

-- One row per transaction, partitioned by month of the event time;
-- refresh_star() makes each month's partition (and the next month's)
-- before it writes there.  A unique key of a partitioned table must hold
-- the partition key, hence (transaction_id, trans_date_trans_time); the
-- event time of a transaction never changes, so transaction_id is unique.
CREATE TABLE IF NOT EXISTS @schema@.fact_transaction (
	transaction_id	bigint NOT NULL,
	trans_num		text NOT NULL,
	trans_date_trans_time timestamp NOT NULL,
	date_key		integer NOT NULL REFERENCES @schema@.dim_date,
	hour			smallint NOT NULL,
	customer_key	integer NOT NULL REFERENCES @schema@.dim_customer,
	location_key	integer NOT NULL REFERENCES @schema@.dim_location,
	merchant_key	integer NOT NULL REFERENCES @schema@.dim_merchant,
	category_key	integer NOT NULL REFERENCES @schema@.dim_category,
	amt				numeric(12,2) NOT NULL,
	is_fraud		boolean NOT NULL,
	PRIMARY KEY (transaction_id, trans_date_trans_time)
) PARTITION BY RANGE (trans_date_trans_time);
CREATE INDEX IF NOT EXISTS fact_transaction_date
	ON @schema@.fact_transaction (date_key);
CREATE INDEX IF NOT EXISTS fact_transaction_time
	ON @schema@.fact_transaction (trans_date_trans_time);

-- Writes the star rows of transactions lo < transaction_id <= hi and
-- returns the number of facts written; txpipe.refresh() calls it with its
-- watermark and a bound no open transaction can still fall under.  lo = 0
-- means a rebuild: the star starts empty.  Every statement reads only the
-- new transactions (a range of the primary key) and the dimension rows
-- they name, so the cost follows the new rows, not the tables' size.  A
-- rerun over the same range writes nothing twice.
CREATE OR REPLACE FUNCTION @schema@.refresh_star(lo bigint, hi bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $refresh$
DECLARE
	n bigint;
	fk_drop text;
	fk_add text;
BEGIN
	IF lo = 0 THEN
		TRUNCATE @schema@.fact_transaction, @schema@.dim_customer, @schema@.dim_location,
			@schema@.dim_merchant, @schema@.dim_category, @schema@.dim_date;
		-- A rebuild writes every fact in one statement.  Its foreign keys,
		-- checked row by row (one query per key per fact), took three
		-- quarters of a rebuild's time; they are dropped here and added
		-- back once the facts are in, which checks each with one join.
		-- Taken from the catalog, so that keys added to the table since
		-- come back as they were.
		SELECT string_agg(format('DROP CONSTRAINT %I', c.conname), ', ' ORDER BY c.conname),
			   string_agg(format('ADD CONSTRAINT %I %s', c.conname, pg_get_constraintdef(c.oid)), ', ' ORDER BY c.conname)
		  INTO fk_drop, fk_add
		  FROM pg_constraint c
		 WHERE c.conrelid = '@schema@.fact_transaction'::regclass AND c.contype = 'f';
		IF fk_drop IS NOT NULL THEN
			EXECUTE 'ALTER TABLE @schema@.fact_transaction ' || fk_drop;
		END IF;
	END IF;

	-- The month of every new event, and the month after it, then its days.
	PERFORM txpipe.month_partitions('@schema@.fact_transaction',
		(SELECT array_agg(DISTINCT date_trunc('month', t.trans_date_trans_time))
		   FROM @schema@.transaction t
		  WHERE t.transaction_id > lo AND t.transaction_id <= hi));
	PERFORM txpipe.fill_dim_date('@schema@.dim_date',
		(SELECT array_agg(DISTINCT t.trans_date_trans_time::date)
		   FROM @schema@.transaction t
		  WHERE t.transaction_id > lo AND t.transaction_id <= hi));

	INSERT INTO @schema@.dim_merchant (merchant_key, merchant)
	SELECT m.merchant_id, m.merchant FROM @schema@.merchant m
	 WHERE m.merchant_id IN (SELECT t.merchant_id FROM @schema@.transaction t
							  WHERE t.transaction_id > lo AND t.transaction_id <= hi)
	ON CONFLICT (merchant_key) DO NOTHING;

	INSERT INTO @schema@.dim_category (category_key, category)
	SELECT c.category_id, c.category FROM @schema@.category c
	 WHERE c.category_id IN (SELECT t.category_id FROM @schema@.transaction t
							  WHERE t.transaction_id > lo AND t.transaction_id <= hi)
	ON CONFLICT (category_key) DO NOTHING;

	INSERT INTO @schema@.dim_location (location_key, city, state, zip, lat, long, city_pop)
	SELECT c.city_id, c.city, s.state, c.zip, c.lat, c.long, c.city_pop
	  FROM @schema@.city c JOIN @schema@.state s USING (state_id)
	 WHERE c.city_id IN (SELECT v.city_id
						   FROM @schema@.transaction t
						   JOIN @schema@.customer_version v USING (customer_version_id)
						  WHERE t.transaction_id > lo AND t.transaction_id <= hi)
	ON CONFLICT (location_key) DO NOTHING;

	-- A version is valid from the earliest event seen with it: a late event
	-- can move valid_from back.
	INSERT INTO @schema@.dim_customer AS d
		(customer_key, customer_id, first, last, gender, dob, job, street, city, state, zip,
		 valid_from, valid_to, is_current)
	SELECT v.customer_version_id, v.customer_id, c.first, c.last, c.gender, c.dob,
		   v.job, v.street, ci.city, s.state, ci.zip,
		   least(v.valid_from, seen.first_seen), NULL, true
	  FROM (SELECT t.customer_version_id, min(t.trans_date_trans_time) AS first_seen
			  FROM @schema@.transaction t
			 WHERE t.transaction_id > lo AND t.transaction_id <= hi
			 GROUP BY t.customer_version_id) AS seen
	  JOIN @schema@.customer_version v USING (customer_version_id)
	  JOIN @schema@.customer c ON c.customer_id = v.customer_id
	  JOIN @schema@.city ci ON ci.city_id = v.city_id
	  JOIN @schema@.state s ON s.state_id = ci.state_id
	ON CONFLICT (customer_key) DO UPDATE SET valid_from = excluded.valid_from
	 WHERE excluded.valid_from < d.valid_from;

	-- each version of the customers touched ends where the next one starts
	UPDATE @schema@.dim_customer d
	   SET valid_to = nxt.valid_to, is_current = nxt.valid_to IS NULL
	  FROM (SELECT x.customer_key,
				   lead(x.valid_from) OVER (PARTITION BY x.customer_id
											ORDER BY x.valid_from, x.customer_key) AS valid_to
			  FROM @schema@.dim_customer x
			 WHERE x.customer_id IN (SELECT v.customer_id
									   FROM @schema@.transaction t
									   JOIN @schema@.customer_version v USING (customer_version_id)
									  WHERE t.transaction_id > lo AND t.transaction_id <= hi)) AS nxt
	 WHERE d.customer_key = nxt.customer_key
	   AND (d.valid_to IS DISTINCT FROM nxt.valid_to OR d.is_current <> (nxt.valid_to IS NULL));

	-- A fact's date comes from its own event time: a late event lands in its
	-- own day, and points to the customer version it was made with.  A
	-- rebuild writes into an empty table, where nothing can conflict:
	-- without ON CONFLICT's speculative insertion it writes the same rows
	-- in 60% of the time.
	EXECUTE 'INSERT INTO @schema@.fact_transaction
			(transaction_id, trans_num, trans_date_trans_time, date_key, hour, customer_key,
			 location_key, merchant_key, category_key, amt, is_fraud)
		SELECT t.transaction_id, t.trans_num, t.trans_date_trans_time,
			   to_char(t.trans_date_trans_time, ''YYYYMMDD'')::integer,
			   extract(hour FROM t.trans_date_trans_time),
			   t.customer_version_id, v.city_id, t.merchant_id, t.category_id, t.amt, t.is_fraud
		  FROM @schema@.transaction t
		  JOIN @schema@.customer_version v USING (customer_version_id)
		 WHERE t.transaction_id > $1 AND t.transaction_id <= $2'
		|| CASE WHEN lo = 0 THEN '' ELSE ' ON CONFLICT (transaction_id, trans_date_trans_time) DO NOTHING' END
		USING lo, hi;
	GET DIAGNOSTICS n = ROW_COUNT;
	IF fk_add IS NOT NULL THEN
		EXECUTE 'ALTER TABLE @schema@.fact_transaction ' || fk_add;
	END IF;
	RETURN n;
END;
$refresh$;

-- Reporting views (what Grafana reads).

-- fraud per city and day; filter on date for a time range
CREATE OR REPLACE VIEW @schema@.fraud_by_city AS
SELECT l.state, l.city, d.date,
	   count(*) AS transactions,
	   count(*) FILTER (WHERE f.is_fraud) AS fraud,
	   round(count(*) FILTER (WHERE f.is_fraud)::numeric / count(*), 4) AS fraud_rate,
	   sum(f.amt) AS amt
  FROM @schema@.fact_transaction f
  JOIN @schema@.dim_location l USING (location_key)
  JOIN @schema@.dim_date d USING (date_key)
 GROUP BY l.state, l.city, d.date;

-- totals per day and location (the card holder's city)
CREATE OR REPLACE VIEW @schema@.daily_totals AS
SELECT d.date, f.location_key, l.state, l.city, l.zip,
	   count(*) AS transactions,
	   sum(f.amt) AS amt,
	   count(*) FILTER (WHERE f.is_fraud) AS fraud
  FROM @schema@.fact_transaction f
  JOIN @schema@.dim_location l USING (location_key)
  JOIN @schema@.dim_date d USING (date_key)
 GROUP BY d.date, f.location_key, l.state, l.city, l.zip;

CREATE OR REPLACE VIEW @schema@.transactions_per_minute AS
SELECT date_trunc('minute', f.trans_date_trans_time) AS minute, l.state,
	   count(*) AS transactions,
	   sum(f.amt) AS amt
  FROM @schema@.fact_transaction f
  JOIN @schema@.dim_location l USING (location_key)
 GROUP BY 1, 2;

-- A card's holder and its 100 most recent transactions, from the
-- normalized tables so that a live dashboard sees records as they are
-- routed.  Look up by cc_num and dob: card's unique index on cc_num finds
-- the card, transaction_card_time reads its transactions newest first and
-- stops after 100.
CREATE OR REPLACE VIEW @schema@.card_activity AS
SELECT ca.cc_num, cu.first, cu.last, cu.dob,
	   r.trans_date_trans_time, r.trans_num, r.amt, m.merchant, g.category, r.is_fraud
  FROM @schema@.card ca
  JOIN @schema@.customer cu USING (customer_id)
 CROSS JOIN LATERAL (
		SELECT t.trans_date_trans_time, t.trans_num, t.amt, t.merchant_id, t.category_id, t.is_fraud
		  FROM @schema@.transaction t
		 WHERE t.card_id = ca.card_id
		 ORDER BY t.trans_date_trans_time DESC
		 LIMIT 100) AS r
  JOIN @schema@.merchant m ON m.merchant_id = r.merchant_id
  JOIN @schema@.category g ON g.category_id = r.category_id;

GRANT USAGE ON SCHEMA @schema@ TO txpipe_reader;
GRANT SELECT ON @schema@.fact_transaction, @schema@.dim_date, @schema@.dim_location,
	@schema@.dim_merchant, @schema@.dim_category, @schema@.dim_customer,
	@schema@.fraud_by_city, @schema@.daily_totals, @schema@.transactions_per_minute,
	@schema@.card_activity
	TO txpipe_reader;
$txpipe_template$, $txpipe_template${
  "contract": {
    "type": "object",
    "required": ["trans_date_trans_time", "cc_num", "merchant", "category", "amt",
                 "first", "last", "gender", "street", "city", "state", "zip",
                 "lat", "long", "city_pop", "job", "dob", "trans_num",
                 "unix_time", "merch_lat", "merch_long", "is_fraud"],
    "additionalProperties": false,
    "properties": {
      "trans_date_trans_time": {"type": "string", "format": "timestamp"},
      "cc_num": {"type": "integer", "minimum": 10000000000, "maximum": 9223372036854775807},
      "merchant": {"type": "string", "minLength": 1, "maxLength": 200},
      "category": {"type": "string", "enum": ["gas_transport", "grocery_pos", "home",
                   "shopping_pos", "kids_pets", "shopping_net", "entertainment",
                   "food_dining", "personal_care", "health_fitness", "misc_pos",
                   "misc_net", "grocery_net", "travel"]},
      "amt": {"type": "number", "minimum": 0, "maximum": 9999999999.99},
      "first": {"type": "string", "minLength": 1, "maxLength": 100},
      "last": {"type": "string", "minLength": 1, "maxLength": 100},
      "gender": {"type": "string", "enum": ["F", "M"]},
      "street": {"type": "string", "maxLength": 200},
      "city": {"type": "string", "minLength": 1, "maxLength": 100},
      "state": {"type": "string", "pattern": "^[A-Z]{2}$"},
      "zip": {"type": ["integer", "string"], "minimum": 0, "maximum": 99999, "pattern": "^[0-9]{5}$"},
      "lat": {"type": "number", "minimum": -90, "maximum": 90},
      "long": {"type": "number", "minimum": -180, "maximum": 180},
      "city_pop": {"type": "integer", "minimum": 0, "maximum": 2147483647},
      "job": {"type": "string", "maxLength": 200},
      "dob": {"type": "string", "format": "date"},
      "trans_num": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
      "unix_time": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807},
      "merch_lat": {"type": "number", "minimum": -90, "maximum": 90},
      "merch_long": {"type": "number", "minimum": -180, "maximum": 180},
      "is_fraud": {"type": "integer", "enum": [0, 1]}
    }
  },
  "idempotency_key": "trans_num",
  "event_time": "trans_date_trans_time",
  "routes": [
    {"name": "state", "table": "state", "id": "state_id",
     "key": {"state": "state"}},
    {"name": "city", "table": "city", "id": "city_id",
     "key": {"state_id": "@state", "city": "city", "zip": {"field": "zip", "lpad": 5}},
     "columns": {"lat": "lat", "long": "long", "city_pop": "city_pop"}},
    {"name": "customer", "table": "customer", "id": "customer_id",
     "key": {"first": "first", "last": "last", "dob": "dob"},
     "columns": {"gender": "gender", "job": "job", "street": "street", "city_id": "@city"}},
    {"name": "customer_version", "table": "customer_version", "id": "customer_version_id",
     "key": {"customer_id": "@customer", "job": "job", "street": "street", "city_id": "@city"},
     "columns": {"valid_from": "trans_date_trans_time"}},
    {"name": "card", "table": "card", "id": "card_id",
     "key": {"cc_num": "cc_num"},
     "columns": {"customer_id": "@customer"}},
    {"name": "category", "table": "category", "id": "category_id",
     "key": {"category": "category"}},
    {"name": "merchant", "table": "merchant", "id": "merchant_id",
     "key": {"merchant": "merchant"}},
    {"name": "transaction", "table": "transaction",
     "columns": {"trans_num": "trans_num",
                 "trans_date_trans_time": "trans_date_trans_time",
                 "unix_time": "unix_time", "card_id": "@card",
                 "customer_version_id": "@customer_version",
                 "merchant_id": "@merchant", "category_id": "@category",
                 "amt": "amt", "merch_lat": "merch_lat", "merch_long": "merch_long",
                 "is_fraud": "is_fraud"}}
  ],
  "refresh": {"function": "refresh_star", "watermark": "transaction_id"}
}
$txpipe_template$::jsonb);

-- template clicks
INSERT INTO txpipe.templates (name, ddl, spec) VALUES ('clicks', $txpipe_template$-- clicks: behaviour events of an online store (view, cart,
-- remove_from_cart, purchase), normalized (3NF).
-- @schema@ is replaced by the quoted target schema.
CREATE SCHEMA IF NOT EXISTS @schema@;

-- An enum sorts in funnel order and takes 4 bytes a row.
DO $do$
BEGIN
	IF to_regtype('@schema@.event_type') IS NULL THEN
		CREATE TYPE @schema@.event_type AS ENUM ('view', 'cart', 'remove_from_cart', 'purchase');
	END IF;
END;
$do$;

-- "user" is a reserved word in SQL, hence users.  The source's ids are
-- integers already, so users, category and product keep them as their
-- primary keys.
CREATE TABLE IF NOT EXISTS @schema@.users (
	user_id		bigint PRIMARY KEY
);

CREATE TABLE IF NOT EXISTS @schema@.session (
	session_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	user_session uuid NOT NULL UNIQUE,
	user_id		bigint NOT NULL REFERENCES @schema@.users
);

-- category_id has 19 digits, above 2^53: bigint keeps it exactly.
-- category_code is missing for about a third of the events' categories.
CREATE TABLE IF NOT EXISTS @schema@.category (
	category_id	bigint PRIMARY KEY,
	category_code text CHECK (category_code ~ '^[a-z0-9_]+(\.[a-z0-9_]+)*$')
);

CREATE TABLE IF NOT EXISTS @schema@.brand (
	brand_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	brand		text NOT NULL UNIQUE
);

-- A product's category and brand are those of the first event routed
-- for it; brand_id is NULL for a product without a brand.
CREATE TABLE IF NOT EXISTS @schema@.product (
	product_id	bigint PRIMARY KEY,
	category_id	bigint NOT NULL REFERENCES @schema@.category,
	brand_id	integer REFERENCES @schema@.brand
);

-- The grain: one row per event.  event_id is the event's id in the source
-- (e.g. its offset in the file): the source has exact duplicate rows, so
-- the row's content cannot identify it.  event_seq numbers the rows as
-- they are routed (the star refresh's watermark).  price is the product's
-- price at event_time; session_id is NULL when the event had no session.
CREATE TABLE IF NOT EXISTS @schema@.event (
	event_seq	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	event_id	bigint NOT NULL UNIQUE,
	event_time	timestamptz NOT NULL,
	event_type	@schema@.event_type NOT NULL,
	product_id	bigint NOT NULL REFERENCES @schema@.product,
	price		numeric(12,2) NOT NULL CHECK (price >= 0),
	user_id		bigint NOT NULL REFERENCES @schema@.users,
	session_id	bigint REFERENCES @schema@.session
);

-- a user's and a session's recent events (flood checks), events by time
CREATE INDEX IF NOT EXISTS event_user_time ON @schema@.event (user_id, event_time DESC);
CREATE INDEX IF NOT EXISTS event_session_time ON @schema@.event (session_id, event_time DESC);
CREATE INDEX IF NOT EXISTS event_time ON @schema@.event (event_time);
CREATE INDEX IF NOT EXISTS session_by_user ON @schema@.session (user_id);

-- Star schema, filled by refresh_star() through txpipe.refresh().  Keys are
-- the ids of the normalized tables.  Dates and hours are those of UTC (the
-- source's times are UTC), whatever the session's TimeZone.

CREATE TABLE IF NOT EXISTS @schema@.dim_date (
	date_key	integer PRIMARY KEY,	-- yyyymmdd
	date		date NOT NULL UNIQUE,
	day_of_week	smallint NOT NULL,		-- ISO: 1 = Monday ... 7 = Sunday
	day_name	text NOT NULL,
	day_of_month smallint NOT NULL,
	month		smallint NOT NULL,
	month_name	text NOT NULL,
	quarter		smallint NOT NULL,
	year		integer NOT NULL,
	is_weekend	boolean NOT NULL
);

CREATE TABLE IF NOT EXISTS @schema@.dim_category (
	category_key bigint PRIMARY KEY,	-- category.category_id
	category_code text,					-- NULL: the source has none
	top_level	text					-- first part of category_code
);

-- brand_key 0 stands for "no brand", so that every fact has a brand.
CREATE TABLE IF NOT EXISTS @schema@.dim_brand (
	brand_key	integer PRIMARY KEY,	-- brand.brand_id; 0: no brand
	brand		text NOT NULL
);

CREATE TABLE IF NOT EXISTS @schema@.dim_product (
	product_key	bigint PRIMARY KEY,		-- product.product_id
	category_key bigint NOT NULL REFERENCES @schema@.dim_category,
	brand_key	integer NOT NULL REFERENCES @schema@.dim_brand
);

CREATE TABLE IF NOT EXISTS @schema@.dim_user (
	user_key	bigint PRIMARY KEY,		-- users.user_id
	first_seen	timestamptz NOT NULL	-- the user's earliest event
);

-- One row per event, partitioned by month (UTC) of the event time;
-- refresh_star() makes each month's partition (and the next month's)
-- before it writes there.  The primary key holds the partition key;
-- event_seq alone is unique.
CREATE TABLE IF NOT EXISTS @schema@.fact_event (
	event_seq	bigint NOT NULL,
	event_id	bigint NOT NULL,
	event_time	timestamptz NOT NULL,
	date_key	integer NOT NULL REFERENCES @schema@.dim_date,
	hour		smallint NOT NULL,
	event_type	@schema@.event_type NOT NULL,
	user_key	bigint NOT NULL REFERENCES @schema@.dim_user,
	session_id	bigint,					-- session.session_id; NULL: none
	product_key	bigint NOT NULL REFERENCES @schema@.dim_product,
	category_key bigint NOT NULL REFERENCES @schema@.dim_category,
	brand_key	integer NOT NULL REFERENCES @schema@.dim_brand,
	price		numeric(12,2) NOT NULL,
	PRIMARY KEY (event_seq, event_time)
) PARTITION BY RANGE (event_time);
CREATE INDEX IF NOT EXISTS fact_event_date ON @schema@.fact_event (date_key, event_type);
CREATE INDEX IF NOT EXISTS fact_event_time ON @schema@.fact_event (event_time);

-- Writes the star rows of events lo < event_seq <= hi and returns the
-- number of facts written; txpipe.refresh() calls it with its watermark
-- and a bound no open transaction can still fall under.  lo = 0 means a
-- rebuild: the star starts empty.  Every statement reads only the new
-- events (a range of the primary key) and the rows they name, so the cost
-- follows the new rows, not the tables' size.  A rerun over the same
-- range writes nothing twice.
CREATE OR REPLACE FUNCTION @schema@.refresh_star(lo bigint, hi bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $refresh$
DECLARE
	n bigint;
BEGIN
	IF lo = 0 THEN
		TRUNCATE @schema@.fact_event, @schema@.dim_product, @schema@.dim_category,
			@schema@.dim_brand, @schema@.dim_user, @schema@.dim_date;
	END IF;

	-- The UTC month of every new event, and the month after it, then its
	-- UTC days.
	PERFORM txpipe.month_partitions('@schema@.fact_event',
		(SELECT array_agg(DISTINCT date_trunc('month', e.event_time AT TIME ZONE 'UTC'))
		   FROM @schema@.event e
		  WHERE e.event_seq > lo AND e.event_seq <= hi),
		'UTC');
	PERFORM txpipe.fill_dim_date('@schema@.dim_date',
		(SELECT array_agg(DISTINCT (e.event_time AT TIME ZONE 'UTC')::date)
		   FROM @schema@.event e
		  WHERE e.event_seq > lo AND e.event_seq <= hi));

	INSERT INTO @schema@.dim_brand (brand_key, brand) VALUES (0, '(no brand)')
	ON CONFLICT (brand_key) DO NOTHING;
	INSERT INTO @schema@.dim_brand (brand_key, brand)
	SELECT b.brand_id, b.brand FROM @schema@.brand b
	 WHERE b.brand_id IN (SELECT p.brand_id
							FROM @schema@.event e JOIN @schema@.product p USING (product_id)
						   WHERE e.event_seq > lo AND e.event_seq <= hi)
	ON CONFLICT (brand_key) DO NOTHING;

	INSERT INTO @schema@.dim_category (category_key, category_code, top_level)
	SELECT c.category_id, c.category_code, split_part(c.category_code, '.', 1)
	  FROM @schema@.category c
	 WHERE c.category_id IN (SELECT p.category_id
							   FROM @schema@.event e JOIN @schema@.product p USING (product_id)
							  WHERE e.event_seq > lo AND e.event_seq <= hi)
	ON CONFLICT (category_key) DO NOTHING;

	INSERT INTO @schema@.dim_product (product_key, category_key, brand_key)
	SELECT p.product_id, p.category_id, coalesce(p.brand_id, 0)
	  FROM @schema@.product p
	 WHERE p.product_id IN (SELECT e.product_id FROM @schema@.event e
							 WHERE e.event_seq > lo AND e.event_seq <= hi)
	ON CONFLICT (product_key) DO NOTHING;

	-- a late event can move first_seen back
	INSERT INTO @schema@.dim_user AS d (user_key, first_seen)
	SELECT e.user_id, min(e.event_time)
	  FROM @schema@.event e
	 WHERE e.event_seq > lo AND e.event_seq <= hi
	 GROUP BY e.user_id
	ON CONFLICT (user_key) DO UPDATE SET first_seen = excluded.first_seen
	 WHERE excluded.first_seen < d.first_seen;

	-- a fact's date and hour come from its own event time: a late event
	-- lands in its own day
	INSERT INTO @schema@.fact_event
		(event_seq, event_id, event_time, date_key, hour, event_type, user_key, session_id,
		 product_key, category_key, brand_key, price)
	SELECT e.event_seq, e.event_id, e.event_time,
		   to_char(e.event_time AT TIME ZONE 'UTC', 'YYYYMMDD')::integer,
		   extract(hour FROM e.event_time AT TIME ZONE 'UTC'),
		   e.event_type, e.user_id, e.session_id,
		   e.product_id, p.category_id, coalesce(p.brand_id, 0), e.price
	  FROM @schema@.event e
	  JOIN @schema@.product p USING (product_id)
	 WHERE e.event_seq > lo AND e.event_seq <= hi
	ON CONFLICT (event_seq, event_time) DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$refresh$;

-- Reporting views (what Grafana reads).

-- The funnel per day (UTC): events of each type, and the sessions that
-- reached each step; revenue is the sum of purchase prices.
CREATE OR REPLACE VIEW @schema@.funnel_daily AS
SELECT d.date,
	   count(*) FILTER (WHERE f.event_type = 'view') AS views,
	   count(*) FILTER (WHERE f.event_type = 'cart') AS carts,
	   count(*) FILTER (WHERE f.event_type = 'remove_from_cart') AS removals,
	   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
	   coalesce(sum(f.price) FILTER (WHERE f.event_type = 'purchase'), 0) AS revenue,
	   count(DISTINCT f.session_id) FILTER (WHERE f.event_type = 'view') AS viewing_sessions,
	   count(DISTINCT f.session_id) FILTER (WHERE f.event_type = 'cart') AS carting_sessions,
	   count(DISTINCT f.session_id) FILTER (WHERE f.event_type = 'purchase') AS purchasing_sessions,
	   round(count(*) FILTER (WHERE f.event_type = 'cart')::numeric
			 / nullif(count(*) FILTER (WHERE f.event_type = 'view'), 0), 4) AS cart_rate,
	   round(count(*) FILTER (WHERE f.event_type = 'purchase')::numeric
			 / nullif(count(*) FILTER (WHERE f.event_type = 'view'), 0), 4) AS purchase_rate
  FROM @schema@.fact_event f
  JOIN @schema@.dim_date d USING (date_key)
 GROUP BY d.date;

-- Events per user and minute, and per session and minute: the basis of
-- bot and flood detection (e.g. WHERE events > 60).
CREATE OR REPLACE VIEW @schema@.user_events_per_minute AS
SELECT date_trunc('minute', f.event_time) AS minute, f.user_key,
	   count(*) AS events,
	   count(*) FILTER (WHERE f.event_type = 'view') AS views,
	   count(*) FILTER (WHERE f.event_type = 'cart') AS carts,
	   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
	   count(DISTINCT f.product_key) AS products
  FROM @schema@.fact_event f
 GROUP BY 1, 2;

CREATE OR REPLACE VIEW @schema@.session_events_per_minute AS
SELECT date_trunc('minute', f.event_time) AS minute, f.session_id, min(f.user_key) AS user_key,
	   count(*) AS events,
	   count(*) FILTER (WHERE f.event_type = 'view') AS views,
	   count(*) FILTER (WHERE f.event_type = 'cart') AS carts,
	   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
	   count(DISTINCT f.product_key) AS products
  FROM @schema@.fact_event f
 WHERE f.session_id IS NOT NULL
 GROUP BY 1, 2;

-- Purchases per brand and day; filter on date for a time range.
CREATE OR REPLACE VIEW @schema@.brand_daily AS
SELECT d.date, b.brand_key, b.brand,
	   count(*) FILTER (WHERE f.event_type = 'view') AS views,
	   count(*) FILTER (WHERE f.event_type = 'cart') AS carts,
	   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
	   coalesce(sum(f.price) FILTER (WHERE f.event_type = 'purchase'), 0) AS revenue
  FROM @schema@.fact_event f
  JOIN @schema@.dim_brand b USING (brand_key)
  JOIN @schema@.dim_date d USING (date_key)
 GROUP BY d.date, b.brand_key, b.brand;

-- Brands ranked by purchases over the whole star (events without a brand
-- are in brand_daily, not here).
CREATE OR REPLACE VIEW @schema@.top_brands AS
SELECT rank() OVER (ORDER BY s.purchases DESC) AS rank, s.*,
	   round(s.purchases::numeric / nullif(s.views, 0), 4) AS purchases_per_view
  FROM (SELECT b.brand_key, b.brand,
			   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
			   coalesce(sum(f.price) FILTER (WHERE f.event_type = 'purchase'), 0) AS revenue,
			   count(*) FILTER (WHERE f.event_type = 'view') AS views,
			   count(*) FILTER (WHERE f.event_type = 'cart') AS carts
		  FROM @schema@.fact_event f
		  JOIN @schema@.dim_brand b USING (brand_key)
		 WHERE f.brand_key <> 0
		 GROUP BY b.brand_key, b.brand) AS s;

GRANT USAGE ON SCHEMA @schema@ TO txpipe_reader;
GRANT USAGE ON TYPE @schema@.event_type TO txpipe_reader;
GRANT SELECT ON @schema@.fact_event, @schema@.dim_date, @schema@.dim_category,
	@schema@.dim_brand, @schema@.dim_product, @schema@.dim_user,
	@schema@.funnel_daily, @schema@.user_events_per_minute, @schema@.session_events_per_minute,
	@schema@.brand_daily, @schema@.top_brands
	TO txpipe_reader;
$txpipe_template$, $txpipe_template${
  "description": "behaviour events of an online store (REES46 eCommerce behavior data columns) with an event id",
  "contract": {
    "type": "object",
    "required": ["event_id", "event_time", "event_type", "product_id", "category_id",
                 "price", "user_id"],
    "additionalProperties": false,
    "properties": {
      "event_id": {"type": "integer", "minimum": 0, "maximum": 9223372036854775807},
      "event_time": {"type": "string", "format": "timestamp"},
      "event_type": {"type": "string", "enum": ["view", "cart", "remove_from_cart", "purchase"]},
      "product_id": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807},
      "category_id": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807},
      "category_code": {"type": ["string", "null"], "maxLength": 200,
                        "pattern": "^[a-z0-9_]+(\\.[a-z0-9_]+)*$"},
      "brand": {"type": ["string", "null"], "maxLength": 100, "pattern": "^[^A-Z]+$"},
      "price": {"type": "number", "minimum": 0, "maximum": 9999999999.99},
      "user_id": {"type": "integer", "minimum": 1, "maximum": 9223372036854775807},
      "user_session": {"type": ["string", "null"],
                       "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"}
    }
  },
  "idempotency_key": "event_id",
  "event_time": "event_time",
  "order_key": "user_id",
  "routes": [
    {"name": "users", "table": "users", "id": "user_id",
     "key": {"user_id": "user_id"}},
    {"name": "session", "table": "session", "id": "session_id",
     "key": {"user_session": "user_session"},
     "columns": {"user_id": "@users"}},
    {"name": "category", "table": "category", "id": "category_id",
     "key": {"category_id": "category_id"},
     "columns": {"category_code": "category_code"}},
    {"name": "brand", "table": "brand", "id": "brand_id",
     "key": {"brand": "brand"}},
    {"name": "product", "table": "product", "id": "product_id",
     "key": {"product_id": "product_id"},
     "columns": {"category_id": "@category", "brand_id": "@brand"}},
    {"name": "event", "table": "event",
     "columns": {"event_id": "event_id", "event_time": "event_time",
                 "event_type": "event_type", "product_id": "@product",
                 "price": "price", "user_id": "@users",
                 "session_id": "@session"}}
  ],
  "refresh": {"function": "refresh_star", "watermark": "event_seq"}
}
$txpipe_template$::jsonb);

-- template retail
INSERT INTO txpipe.templates (name, ddl, spec) VALUES ('retail', $txpipe_template$-- retail: invoice lines of an online shop (the UCI Online Retail columns),
-- normalized (3NF).  Cancellations are kept: a cancellation is an invoice
-- whose number starts with C, and its lines have negative quantities.
-- @schema@ is replaced by the quoted target schema.
CREATE SCHEMA IF NOT EXISTS @schema@;

CREATE TABLE IF NOT EXISTS @schema@.country (
	country_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	country		text NOT NULL UNIQUE
);

-- A record without a CustomerID is a guest sale: it makes no customer, and
-- its invoice has none.
CREATE TABLE IF NOT EXISTS @schema@.customer (
	customer_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	customer_no	integer NOT NULL UNIQUE,	-- CustomerID
	country_id	integer NOT NULL REFERENCES @schema@.country	-- as first seen
);

-- Every StockCode is a product row, the non-product codes too (POST,
-- BANK CHARGES, AMAZONFEE, ...); dim_product tells them apart.
--
-- Stock codes, invoice numbers and line keys are identifiers: they compare
-- byte by byte (COLLATE "C"), so their unique indexes never go through the
-- database's linguistic collation
CREATE TABLE IF NOT EXISTS @schema@.product (
	product_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	stock_code	text COLLATE "C" NOT NULL UNIQUE,
	description	text			-- as first seen; NULL when that record had none
);

-- is_cancellation follows from the invoice number, so the table derives it:
-- a route's sources are fields, route ids and constants, not expressions.
CREATE TABLE IF NOT EXISTS @schema@.invoice (
	invoice_id	integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	invoice_no	text COLLATE "C" NOT NULL UNIQUE CHECK (invoice_no ~ '^[CA]?[0-9]{6}$'),
	is_cancellation boolean NOT NULL GENERATED ALWAYS AS (invoice_no LIKE 'C%') STORED,
	invoice_date timestamp NOT NULL,
	country_id	integer NOT NULL REFERENCES @schema@.country,
	customer_id	integer REFERENCES @schema@.customer	-- NULL: a guest sale
);

-- The grain: one row per invoice line.  A line's identity is its invoice
-- and its number within it (the real file has exact duplicate rows, so the
-- content is no identity); line_key is the record's id, "<InvoiceNo>/<LineNo>",
-- the pipeline's idempotency key.  Quantities are negative on cancellations
-- and stock adjustments; a price may be 0 (samples) or negative (bad debt).
CREATE TABLE IF NOT EXISTS @schema@.invoice_line (
	line_id		bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	line_key	text COLLATE "C" NOT NULL UNIQUE,
	invoice_id	integer NOT NULL REFERENCES @schema@.invoice,
	line_no		integer NOT NULL CHECK (line_no > 0),
	product_id	integer NOT NULL REFERENCES @schema@.product,
	quantity	integer NOT NULL,
	unit_price	numeric(12,3) NOT NULL,
	UNIQUE (invoice_id, line_no),
	-- the contract cannot compare two fields: the line number of the id
	-- must be LineNo
	CHECK (line_key LIKE '%/' || line_no)
);

-- a customer's invoices, newest first; invoices by time
CREATE INDEX IF NOT EXISTS invoice_customer_date
	ON @schema@.invoice (customer_id, invoice_date DESC);
CREATE INDEX IF NOT EXISTS invoice_date ON @schema@.invoice (invoice_date);

-- Star schema, filled by refresh_star() through txpipe.refresh().  Keys are
-- the surrogate ids of the normalized tables, so a dimension row is written
-- once and facts need no lookups.

CREATE TABLE IF NOT EXISTS @schema@.dim_date (
	date_key	integer PRIMARY KEY,	-- yyyymmdd
	date		date NOT NULL UNIQUE,
	day_of_week	smallint NOT NULL,		-- ISO: 1 = Monday ... 7 = Sunday
	day_name	text NOT NULL,
	day_of_month smallint NOT NULL,
	month		smallint NOT NULL,
	month_name	text NOT NULL,
	quarter		smallint NOT NULL,
	year		integer NOT NULL,
	is_weekend	boolean NOT NULL
);

CREATE TABLE IF NOT EXISTS @schema@.dim_country (
	country_key	integer PRIMARY KEY,	-- country.country_id
	country		text NOT NULL
);

-- customer_key 0 is the guest: the facts of guest sales point to it.
CREATE TABLE IF NOT EXISTS @schema@.dim_customer (
	customer_key integer PRIMARY KEY,	-- customer.customer_id; 0: guest
	customer_no	integer,				-- CustomerID; NULL for the guest
	country		text,
	is_guest	boolean NOT NULL
);

-- is_product: a merchandise code (five digits, maybe a letter), not
-- postage, fees, discounts, manual entries or gift vouchers.
CREATE TABLE IF NOT EXISTS @schema@.dim_product (
	product_key	integer PRIMARY KEY,	-- product.product_id
	stock_code	text NOT NULL,
	description	text,
	is_product	boolean NOT NULL
);

-- One row per invoice line, partitioned by month of the invoice date;
-- refresh_star() makes each month's partition (and the next month's)
-- before it writes there.  revenue = quantity * unit_price: negative for
-- cancellations, so sum(revenue) is the net revenue.
CREATE TABLE IF NOT EXISTS @schema@.fact_sales (
	line_id		bigint NOT NULL,
	invoice_no	text NOT NULL,
	line_no		integer NOT NULL,
	invoice_date timestamp NOT NULL,
	date_key	integer NOT NULL REFERENCES @schema@.dim_date,
	hour		smallint NOT NULL,
	customer_key integer NOT NULL REFERENCES @schema@.dim_customer,
	product_key	integer NOT NULL REFERENCES @schema@.dim_product,
	country_key	integer NOT NULL REFERENCES @schema@.dim_country,
	quantity	integer NOT NULL,
	unit_price	numeric(12,3) NOT NULL,
	revenue		numeric(14,3) NOT NULL,
	is_cancellation boolean NOT NULL,
	PRIMARY KEY (line_id, invoice_date)
) PARTITION BY RANGE (invoice_date);
CREATE INDEX IF NOT EXISTS fact_sales_date ON @schema@.fact_sales (date_key);
CREATE INDEX IF NOT EXISTS fact_sales_customer ON @schema@.fact_sales (customer_key);

-- Writes the star rows of invoice lines lo < line_id <= hi and returns the
-- number of facts written; txpipe.refresh() calls it with its watermark
-- and a bound no open transaction can still fall under.  lo = 0 means a
-- rebuild: the star starts empty.  Every statement reads only the new lines
-- (a range of the primary key) and the rows they name, so the cost follows
-- the new rows, not the tables' size.  A rerun over the same range writes
-- nothing twice.
CREATE OR REPLACE FUNCTION @schema@.refresh_star(lo bigint, hi bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $refresh$
DECLARE
	n bigint;
BEGIN
	IF lo = 0 THEN
		TRUNCATE @schema@.fact_sales, @schema@.dim_customer, @schema@.dim_product,
			@schema@.dim_country, @schema@.dim_date;
	END IF;

	-- The month of every new line, and the month after it, then its days.
	PERFORM txpipe.month_partitions('@schema@.fact_sales',
		(SELECT array_agg(DISTINCT date_trunc('month', i.invoice_date))
		   FROM @schema@.invoice_line l
		   JOIN @schema@.invoice i USING (invoice_id)
		  WHERE l.line_id > lo AND l.line_id <= hi));
	PERFORM txpipe.fill_dim_date('@schema@.dim_date',
		(SELECT array_agg(DISTINCT i.invoice_date::date)
		   FROM @schema@.invoice_line l
		   JOIN @schema@.invoice i USING (invoice_id)
		  WHERE l.line_id > lo AND l.line_id <= hi));

	INSERT INTO @schema@.dim_country (country_key, country)
	SELECT c.country_id, c.country FROM @schema@.country c
	 WHERE c.country_id IN (SELECT i.country_id
							  FROM @schema@.invoice_line l
							  JOIN @schema@.invoice i USING (invoice_id)
							 WHERE l.line_id > lo AND l.line_id <= hi)
	ON CONFLICT (country_key) DO NOTHING;

	INSERT INTO @schema@.dim_product (product_key, stock_code, description, is_product)
	SELECT p.product_id, p.stock_code, p.description, p.stock_code ~ '^[0-9]{5}'
	  FROM @schema@.product p
	 WHERE p.product_id IN (SELECT l.product_id FROM @schema@.invoice_line l
							 WHERE l.line_id > lo AND l.line_id <= hi)
	ON CONFLICT (product_key) DO NOTHING;

	INSERT INTO @schema@.dim_customer (customer_key, customer_no, country, is_guest)
	VALUES (0, NULL, NULL, true)
	ON CONFLICT (customer_key) DO NOTHING;
	INSERT INTO @schema@.dim_customer (customer_key, customer_no, country, is_guest)
	SELECT cu.customer_id, cu.customer_no, co.country, false
	  FROM @schema@.customer cu
	  JOIN @schema@.country co USING (country_id)
	 WHERE cu.customer_id IN (SELECT i.customer_id
								FROM @schema@.invoice_line l
								JOIN @schema@.invoice i USING (invoice_id)
							   WHERE l.line_id > lo AND l.line_id <= hi)
	ON CONFLICT (customer_key) DO NOTHING;

	INSERT INTO @schema@.fact_sales
		(line_id, invoice_no, line_no, invoice_date, date_key, hour, customer_key,
		 product_key, country_key, quantity, unit_price, revenue, is_cancellation)
	SELECT l.line_id, i.invoice_no, l.line_no, i.invoice_date,
		   to_char(i.invoice_date, 'YYYYMMDD')::integer, extract(hour FROM i.invoice_date),
		   coalesce(i.customer_id, 0), l.product_id, i.country_id,
		   l.quantity, l.unit_price, l.quantity * l.unit_price, i.is_cancellation
	  FROM @schema@.invoice_line l
	  JOIN @schema@.invoice i USING (invoice_id)
	 WHERE l.line_id > lo AND l.line_id <= hi
	ON CONFLICT (line_id, invoice_date) DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END;
$refresh$;

-- Reporting views (what Grafana reads).

-- revenue per country and month: sales, cancellations (negative) and net
CREATE OR REPLACE VIEW @schema@.revenue_by_country_month AS
SELECT date_trunc('month', f.invoice_date)::date AS month, c.country,
	   count(DISTINCT f.invoice_no) AS invoices,
	   count(*) AS lines,
	   sum(f.quantity) AS quantity,
	   coalesce(sum(f.revenue) FILTER (WHERE NOT f.is_cancellation), 0) AS sales,
	   coalesce(sum(f.revenue) FILTER (WHERE f.is_cancellation), 0) AS cancellations,
	   sum(f.revenue) AS revenue
  FROM @schema@.fact_sales f
  JOIN @schema@.dim_country c USING (country_key)
 GROUP BY 1, 2;

-- cancellations per day: share of lines and invoices cancelled
CREATE OR REPLACE VIEW @schema@.cancellations_per_day AS
SELECT d.date,
	   count(*) AS lines,
	   count(*) FILTER (WHERE f.is_cancellation) AS cancelled_lines,
	   round(count(*) FILTER (WHERE f.is_cancellation)::numeric / count(*), 4) AS cancellation_rate,
	   count(DISTINCT f.invoice_no) AS invoices,
	   count(DISTINCT f.invoice_no) FILTER (WHERE f.is_cancellation) AS cancelled_invoices,
	   coalesce(sum(f.revenue) FILTER (WHERE f.is_cancellation), 0) AS cancelled_revenue
  FROM @schema@.fact_sales f
  JOIN @schema@.dim_date d USING (date_key)
 GROUP BY d.date;

GRANT USAGE ON SCHEMA @schema@ TO txpipe_reader;
GRANT SELECT ON @schema@.fact_sales, @schema@.dim_date, @schema@.dim_country,
	@schema@.dim_customer, @schema@.dim_product,
	@schema@.revenue_by_country_month, @schema@.cancellations_per_day
	TO txpipe_reader;
$txpipe_template$, $txpipe_template${
  "description": "Invoice lines of an online shop, with the columns of the UCI Online Retail file plus each line's identity: id (\"<InvoiceNo>/<LineNo>\") and LineNo.",
  "contract": {
    "type": "object",
    "required": ["id", "InvoiceNo", "LineNo", "StockCode", "Quantity", "InvoiceDate",
                 "UnitPrice", "Country"],
    "additionalProperties": false,
    "properties": {
      "id": {"type": "string", "pattern": "^[CA]?[0-9]{6}/[1-9][0-9]{0,4}$"},
      "InvoiceNo": {"type": "string", "pattern": "^[CA]?[0-9]{6}$"},
      "LineNo": {"type": "integer", "minimum": 1, "maximum": 99999},
      "StockCode": {"type": "string", "minLength": 1, "maxLength": 20,
                    "pattern": "^[0-9A-Za-z][0-9A-Za-z_ ]*$"},
      "Description": {"type": ["string", "null"], "maxLength": 200},
      "Quantity": {"type": "integer", "minimum": -1000000, "maximum": 1000000},
      "InvoiceDate": {"type": "string", "format": "timestamp"},
      "UnitPrice": {"type": "number", "minimum": -1000000, "maximum": 1000000},
      "CustomerID": {"type": ["integer", "null"], "minimum": 1, "maximum": 2147483647},
      "Country": {"type": "string", "minLength": 1, "maxLength": 60}
    }
  },
  "idempotency_key": "id",
  "event_time": "InvoiceDate",
  "order_key": "InvoiceNo",
  "routes": [
    {"name": "country", "table": "country", "id": "country_id",
     "key": {"country": "Country"}},
    {"name": "customer", "table": "customer", "id": "customer_id",
     "key": {"customer_no": "CustomerID"},
     "columns": {"country_id": "@country"}},
    {"name": "product", "table": "product", "id": "product_id",
     "key": {"stock_code": "StockCode"},
     "columns": {"description": "Description"}},
    {"name": "invoice", "table": "invoice", "id": "invoice_id",
     "key": {"invoice_no": "InvoiceNo"},
     "columns": {"invoice_date": "InvoiceDate", "country_id": "@country",
                 "customer_id": "@customer"}},
    {"name": "invoice_line", "table": "invoice_line",
     "columns": {"line_key": "id", "invoice_id": "@invoice", "line_no": "LineNo",
                 "product_id": "@product", "quantity": "Quantity",
                 "unit_price": "UnitPrice"}}
  ],
  "refresh": {"function": "refresh_star", "watermark": "line_id"}
}
$txpipe_template$::jsonb);
