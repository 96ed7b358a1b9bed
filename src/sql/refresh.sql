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
	pid			integer NOT NULL DEFAULT pg_catalog.pg_backend_pid(),
	changes		bigint NOT NULL DEFAULT 0
);
CREATE INDEX refresh_runs_pipeline ON txpipe.refresh_runs (pipeline, run_id);
COMMENT ON COLUMN txpipe.refresh_runs.pid IS
	'the backend that ran the refresh (cron.job_run_details.job_pid for a run by pg_cron)';
COMMENT ON COLUMN txpipe.refresh_runs.changes IS
	'the changed grain rows (txpipe.changes) the run took: corrections, and on a logical replica every row written';
SELECT pg_catalog.pg_extension_config_dump('txpipe.refresh_runs', '');

-- The ids of grain rows changed after they were routed: updated or deleted
-- here, and on a logical replica also inserted by the apply worker.  The
-- row trigger txpipe.track_change() writes them, txpipe.refresh() takes
-- them (src/changes.c).  A row is only a hint: the refresh reads the grain
-- row itself again.
CREATE TABLE txpipe.changes (
	relid		regclass NOT NULL,
	id			bigint NOT NULL
);
CREATE INDEX changes_relid ON txpipe.changes (relid);
SELECT pg_catalog.pg_extension_config_dump('txpipe.changes', '');

-- AFTER ... FOR EACH ROW EXECUTE FUNCTION txpipe.track_change('id column'):
-- logs the id (old and new) of each row the statement changes.
CREATE FUNCTION txpipe.track_change()
RETURNS trigger
AS 'MODULE_PATHNAME', 'txpipe_track_change'
LANGUAGE C;
COMMENT ON FUNCTION txpipe.track_change() IS
	'row trigger for a grain table: logs the ids of changed rows in txpipe.changes for the next txpipe.refresh()';

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

-- For rollups kept per month and per day: the days since::date ..
-- until::date as whole months m0 .. m1 (none when m0 > m1) and the days
-- around them, d0 <= d < head_end and tail_start <= d <= d1 (all of them
-- head days when there is no whole month).  A reporting function sums the
-- monthly rows of the months and the daily rows of the other days.
CREATE FUNCTION txpipe.month_range(since timestamp, until timestamp,
	OUT d0 date, OUT d1 date, OUT m0 date, OUT m1 date, OUT head_end date, OUT tail_start date)
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	d0 := since::pg_catalog.date;
	d1 := until::pg_catalog.date;
	m0 := CASE WHEN pg_catalog.date_trunc('month', d0)::pg_catalog.date OPERATOR(pg_catalog.=) d0 THEN d0
			   ELSE (pg_catalog.date_trunc('month', d0) OPERATOR(pg_catalog.+) '1 month'::pg_catalog.interval)::pg_catalog.date END;
	m1 := (pg_catalog.date_trunc('month', d1 OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.-) '1 month'::pg_catalog.interval)::pg_catalog.date;
	IF m0 OPERATOR(pg_catalog.>) m1 THEN
		head_end := d1 OPERATOR(pg_catalog.+) 1;
		tail_start := d1 OPERATOR(pg_catalog.+) 1;
	ELSE
		head_end := m0;
		tail_start := (m1 OPERATOR(pg_catalog.+) '1 month'::pg_catalog.interval)::pg_catalog.date;
	END IF;
END;
$$;
COMMENT ON FUNCTION txpipe.month_range(timestamp, timestamp) IS
	'the days of a time range as whole months and the days around them, for rollups kept per month and per day';

-- The table of a pipeline's grain route (the first unconditional insert
-- route with a column from the idempotency key), as routing chose it.
CREATE FUNCTION txpipe._grain_table(pipeline text)
RETURNS regclass
AS 'MODULE_PATHNAME', 'txpipe_grain_table'
LANGUAGE C STRICT;

-- What txpipe.refresh() works on: the grain table, the watermark column
-- and the refresh function of a stored (so already checked) spec.  func
-- is NULL when the function has been dropped since.
-- The function's form (lo, hi, changed bigint[]) is preferred to (lo, hi);
-- corrects tells which one it is.  replica: the grain table is written by
-- a logical-replication subscription here, so its ids do not arrive in
-- the order of their commits.
CREATE FUNCTION txpipe._refresh_target(pipeline text, spec jsonb,
	OUT grain regclass, OUT watermark text, OUT func regprocedure,
	OUT corrects boolean, OUT replica boolean)
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
	func := to_regprocedure(format('%I.%I(bigint, bigint, bigint[])', v_name[1], v_name[2]));
	corrects := func IS NOT NULL;
	IF func IS NULL THEN
		func := to_regprocedure(format('%I.%I(bigint, bigint)', v_name[1], v_name[2]));
	END IF;
	watermark := spec->'refresh'->>'watermark';
	replica := EXISTS (SELECT 1 FROM pg_catalog.pg_subscription_rel r
						WHERE r.srrelid OPERATOR(pg_catalog.=) grain);
END;
$$;

-- Runs a refresh function as the pipeline's owner (src/manage.c).
CREATE FUNCTION txpipe._call_refresh(func regprocedure, lo bigint, hi bigint, changed bigint[],
	owner oid)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txpipe_call_refresh'
LANGUAGE C STRICT;

-- txpipe.refresh() runs txpipe._refresh() as the owner of txpipe's tables
-- (src/manage.c); the refresh function itself runs as the pipeline's owner.
CREATE FUNCTION txpipe.refresh(pipeline text, full boolean DEFAULT false,
	OUT status text, OUT rows bigint, OUT watermark_from bigint, OUT watermark_to bigint,
	OUT duration interval)
AS 'MODULE_PATHNAME', 'txpipe_refresh'
LANGUAGE C;

CREATE FUNCTION txpipe._refresh(pipeline text, full boolean, caller oid,
	OUT status text, OUT rows bigint, OUT watermark_from bigint, OUT watermark_to bigint,
	OUT duration interval)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_owner oid;
	v_full boolean := coalesce(_refresh.full, false);
	v_started timestamptz := clock_timestamp();
	v_spec jsonb;
	v_target record;
	v_stored bigint;
	v_lo bigint;
	v_hi bigint;
	v_rows bigint := 0;
	v_changed bigint[] := '{}';
	v_status text := 'ok';
	v_error text;
	v_sqlstate text;
BEGIN
	SELECT p.spec, p.owner::pg_catalog.oid INTO v_spec, v_owner
	  FROM ONLY txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) _refresh.pipeline;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pipeline "%" does not exist', _refresh.pipeline
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it with txpipe.create_pipeline() or txpipe.install_template().';
	END IF;
	PERFORM txpipe._require_owner(_refresh.pipeline, caller, 'refresh');
	IF NOT v_spec ? 'refresh' THEN
		RAISE EXCEPTION 'pipeline "%" has no refresh', _refresh.pipeline
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Give its spec a "refresh": {"function": ..., "watermark": ...}; see the README, section "Star schema and refresh".';
	END IF;
	IF current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'txpipe.refresh() needs the read committed isolation level'
			USING ERRCODE = 'invalid_transaction_state',
				  DETAIL = 'It reads the rows committed by the writers it waits for; an older snapshot would not see them.';
	END IF;
	v_target := txpipe._refresh_target(_refresh.pipeline, v_spec);
	IF v_target.grain IS NULL OR v_target.func IS NULL THEN
		RAISE EXCEPTION 'the grain table or the refresh function of pipeline "%" does not exist', _refresh.pipeline
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
									  hashtext(_refresh.pipeline));
	EXCEPTION
		WHEN lock_not_available THEN
			v_status := 'skipped';
			v_error := format('another refresh of pipeline %s was still running when lock_timeout (%s) expired',
							  _refresh.pipeline, current_setting('lock_timeout'));
	END;

	IF v_status = 'ok' THEN
		INSERT INTO txpipe.refresh_state AS s (pipeline) VALUES (_refresh.pipeline)
		ON CONFLICT DO NOTHING;
	END IF;
	v_stored := coalesce((SELECT s.watermark FROM txpipe.refresh_state s
						   WHERE s.pipeline = _refresh.pipeline), 0);
	v_lo := CASE WHEN v_full THEN 0 ELSE v_stored END;
	v_hi := v_stored;

	IF v_status = 'ok' THEN
		BEGIN
			-- The grain rows changed since the last run (txpipe.track_change),
			-- taken before any grain row is read: a change that commits in
			-- between is read now and taken again by the next run, which reads
			-- the row again.  A run that fails gives them back.
			WITH c AS (
				DELETE FROM ONLY txpipe.changes c WHERE c.relid OPERATOR(pg_catalog.=) v_target.grain
				RETURNING c.id)
			SELECT coalesce(pg_catalog.array_agg(DISTINCT c.id ORDER BY c.id), '{}') INTO v_changed FROM c;

			IF v_target.replica THEN
				-- On a subscriber every row written arrives through the change
				-- log (the insert trigger enabled for replicas): the first run,
				-- or a full one, rebuilds from the table, then each run takes
				-- the ids logged.  A row the rebuild misses was logged, and is
				-- taken by the next run.
				IF NOT v_target.corrects THEN
					RAISE EXCEPTION 'the refresh function of pipeline "%" cannot refresh on a logical replica', _refresh.pipeline
						USING ERRCODE = 'object_not_in_prerequisite_state',
							  DETAIL = format('Table %s is written by a subscription, so its ids do not arrive in commit order; there the refresh follows txpipe.changes.', v_target.grain),
							  HINT = 'Give the refresh function a third argument, changed bigint[] (see the README, section "The warehouse on a logical replica").';
				END IF;
				IF v_lo = 0 THEN
					EXECUTE format('SELECT pg_catalog.max(%I) FROM %s', v_target.watermark, v_target.grain) INTO v_hi;
					v_hi := coalesce(v_hi, 0);
					v_rows := txpipe._call_refresh(v_target.func, 0, v_hi, '{}', v_owner);
				ELSE
					v_hi := v_lo;
					IF cardinality(v_changed) > 0 THEN
						v_rows := txpipe._call_refresh(v_target.func, v_lo, v_lo, v_changed, v_owner);
					END IF;
				END IF;
			ELSE
				-- The upper bound.  Ids come from a sequence when a row is
				-- inserted, so a transaction still open may hold a lower id than
				-- one that has committed: max(id) alone could move the watermark
				-- past rows that commit later.  A SHARE lock waits for every
				-- transaction writing the grain table (all hold ROW EXCLUSIVE
				-- from before they draw an id) and keeps new ones out while
				-- max(id) is read; from then on every id up to max(id) is
				-- committed or rolled back, and any id drawn later is higher.
				-- The lock is taken in a subtransaction that is rolled back at
				-- once, which releases it: writers are held up only while
				-- refresh waits for the ones already running, not while the
				-- star is written.
				BEGIN
					EXECUTE format('LOCK TABLE %s IN SHARE MODE', v_target.grain);
					EXECUTE format('SELECT pg_catalog.max(%I) FROM %s', v_target.watermark, v_target.grain) INTO v_hi;
					RAISE SQLSTATE 'TXR01';
				EXCEPTION
					WHEN SQLSTATE 'TXR01' THEN
						NULL;
					WHEN lock_not_available THEN
						v_status := 'skipped';
						v_error := format('transactions writing %s were still open when lock_timeout (%s) expired',
										  v_target.grain, current_setting('lock_timeout'));
						-- the changes stay logged for the next run
						RAISE SQLSTATE 'TXR02';
				END;
				v_hi := greatest(coalesce(v_hi, 0), v_lo);
				-- lo = 0 asks the function for a rebuild, even of an empty star
				IF v_hi > v_lo OR v_lo = 0 OR cardinality(v_changed) > 0 THEN
					v_rows := txpipe._call_refresh(v_target.func, v_lo, v_hi, v_changed, v_owner);
				END IF;
			END IF;
			UPDATE txpipe.refresh_state s SET watermark = v_hi, refreshed_at = now()
			 WHERE s.pipeline = _refresh.pipeline;
		EXCEPTION
			WHEN SQLSTATE 'TXR02' THEN
				v_hi := v_stored;
				v_changed := '{}';
			WHEN OTHERS THEN
				-- Recorded, not raised: raising would roll the record back too.
				-- Nothing of the run is kept: the watermark and the change log
				-- stay.
				GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
				v_status := 'error';
				v_rows := 0;
				v_hi := v_stored;
				v_changed := '{}';
				RAISE WARNING 'refresh of pipeline "%" failed: %', _refresh.pipeline, v_error
					USING DETAIL = format('SQLSTATE %s.  The run is recorded in txpipe.refresh_runs; the watermark stays at %s.',
										  v_sqlstate, v_stored);
		END;
	END IF;

	duration := clock_timestamp() - v_started;
	INSERT INTO txpipe.refresh_runs (pipeline, started_at, finished_at, rows, status, error, sqlstate,
									 watermark_from, watermark_to, "full", changes)
	VALUES (_refresh.pipeline, v_started, v_started + duration, v_rows, v_status, v_error, v_sqlstate,
			v_lo, v_hi, v_full, cardinality(v_changed));
	DELETE FROM txpipe.refresh_runs r
	 WHERE r.pipeline = _refresh.pipeline
	   AND r.run_id <= (SELECT x.run_id FROM txpipe.refresh_runs x
						 WHERE x.pipeline = _refresh.pipeline
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
		IF NOT EXISTS (SELECT 1 FROM ONLY txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) schedule_refresh.pipeline) THEN
			RAISE EXCEPTION 'pipeline "%" does not exist', pipeline
				USING ERRCODE = 'undefined_object';
		END IF;
		-- the job runs as its scheduler: only who may refresh may schedule
		PERFORM txpipe._require_owner(pipeline,
			(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER),
			'schedule the refresh of');
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
