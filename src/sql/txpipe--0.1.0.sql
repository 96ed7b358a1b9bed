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
	   f.watermark AS refresh_watermark,
	   f.refreshed_at,
	   now() - f.refreshed_at AS refresh_lag
  FROM txpipe.pipelines p
  LEFT JOIN txpipe.refresh_state f ON f.pipeline = p.name
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
COMMENT ON VIEW txpipe.stats IS 'per pipeline: records received, accepted, rejected, duplicates; the last batch; routing rate over the last minute; star refresh watermark and lag';

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
GRANT EXECUTE ON FUNCTION txpipe.ingest(text, text), txpipe.ingest_raw(text, bytea),
	txpipe.validate(text, text), txpipe.contract(text), txpipe.xact_counts(text),
	txpipe._copy_row(), txpipe._copy_flush()
	TO txpipe_writer, txpipe_admin;
GRANT SELECT ON txpipe.batches, txpipe.pipelines TO txpipe_writer;
GRANT SELECT ON txpipe.stats, txpipe.batches, txpipe.pipelines, txpipe.reject_codes,
	txpipe.refresh_state, txpipe.refresh_runs TO txpipe_reader;
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

CREATE TABLE IF NOT EXISTS @schema@.transaction (
	transaction_id	bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
	trans_num		text NOT NULL UNIQUE,
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
	mon timestamp;
	part text;
	n bigint;
BEGIN
	IF lo = 0 THEN
		TRUNCATE @schema@.fact_transaction, @schema@.dim_customer, @schema@.dim_location,
			@schema@.dim_merchant, @schema@.dim_category, @schema@.dim_date;
	END IF;

	-- The month of every new event, and the month after it.  A partition
	-- is made as a table and then attached, which locks fact_transaction
	-- against other DDL only: queries on the star do not wait (CREATE TABLE
	-- ... PARTITION OF would lock them out until the refresh commits).
	FOR mon IN
		SELECT DISTINCT date_trunc('month', t.trans_date_trans_time) + k * interval '1 month'
		  FROM @schema@.transaction t, (VALUES (0), (1)) AS ahead(k)
		 WHERE t.transaction_id > lo AND t.transaction_id <= hi
	LOOP
		part := 'fact_transaction_' || to_char(mon, 'YYYY_MM');
		IF to_regclass('@schema@.' || quote_ident(part)) IS NULL THEN
			EXECUTE format('CREATE TABLE @schema@.%I (LIKE @schema@.fact_transaction)', part);
			EXECUTE format('ALTER TABLE @schema@.fact_transaction ATTACH PARTITION @schema@.%I FOR VALUES FROM (%L) TO (%L)',
						   part, mon, mon + interval '1 month');
		END IF;
	END LOOP;

	INSERT INTO @schema@.dim_date (date_key, date, day_of_week, day_name, day_of_month,
								   month, month_name, quarter, year, is_weekend)
	SELECT to_char(d, 'YYYYMMDD')::integer, d, extract(isodow FROM d), to_char(d, 'FMDay'),
		   extract(day FROM d), extract(month FROM d), to_char(d, 'FMMonth'),
		   extract(quarter FROM d), extract(year FROM d), extract(isodow FROM d) >= 6
	  FROM (SELECT DISTINCT t.trans_date_trans_time::date
			  FROM @schema@.transaction t
			 WHERE t.transaction_id > lo AND t.transaction_id <= hi) AS seen(d)
	ON CONFLICT (date_key) DO NOTHING;

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

	-- a fact's date comes from its own event time: a late event lands in its
	-- own day, and points to the customer version it was made with
	INSERT INTO @schema@.fact_transaction
		(transaction_id, trans_num, trans_date_trans_time, date_key, hour, customer_key,
		 location_key, merchant_key, category_key, amt, is_fraud)
	SELECT t.transaction_id, t.trans_num, t.trans_date_trans_time,
		   to_char(t.trans_date_trans_time, 'YYYYMMDD')::integer,
		   extract(hour FROM t.trans_date_trans_time),
		   t.customer_version_id, v.city_id, t.merchant_id, t.category_id, t.amt, t.is_fraud
	  FROM @schema@.transaction t
	  JOIN @schema@.customer_version v USING (customer_version_id)
	 WHERE t.transaction_id > lo AND t.transaction_id <= hi
	ON CONFLICT (transaction_id, trans_date_trans_time) DO NOTHING;
	GET DIAGNOSTICS n = ROW_COUNT;
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
