-- txpipe 0.1.0 -> 0.2.0: the queue path (enqueue, the inbox, background
-- workers, async COPY, NOTIFY payloads), backlog columns in txpipe.stats,
-- and txpipe.plan().

INSERT INTO txpipe.reject_codes VALUES
	('poison', 'route', 'a queued record failed alone txpipe.worker_max_attempts times with an error that is not a refused row; message has the last error'),
	('unknown_pipeline', 'decode', 'a NOTIFY txpipe_ingest payload names a pipeline that does not exist');

-- create_pipeline() makes a pipeline's queue positions; drop_pipeline()
-- takes its waiting records.
CREATE OR REPLACE FUNCTION txpipe.create_pipeline(name text, spec jsonb, or_replace boolean DEFAULT false)
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

CREATE OR REPLACE FUNCTION txpipe.drop_pipeline(name text)
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

INSERT INTO txpipe.queue_positions (pipeline, class)
SELECT p.name, c FROM txpipe.pipelines p, generate_series(0, 15) c;

-- txpipe.stats gains backlog and backlog_age
DROP VIEW txpipe.stats;

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

-- which path each route writes by
CREATE FUNCTION txpipe.plan(pipeline text)
RETURNS TABLE (route text, kind text, target regclass, write_path text, note text)
AS 'MODULE_PATHNAME', 'txpipe_plan_routes'
LANGUAGE C STRICT;

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

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA txpipe FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.month_partitions(regclass, timestamp[], text),
	txpipe.fill_dim_date(regclass, date[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.enqueue(text, jsonb), txpipe.enqueue(text, jsonb[]),
	txpipe.enqueue(text, text), txpipe.enqueue(text, text[]), txpipe._inbox_slot()
	TO txpipe_writer, txpipe_admin;
GRANT INSERT ON txpipe.inbox TO txpipe_writer;
GRANT USAGE ON SEQUENCE txpipe.inbox_id_seq TO txpipe_writer;
GRANT SELECT ON txpipe.stats, txpipe.queue_positions TO txpipe_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA txpipe TO txpipe_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA txpipe TO txpipe_admin;
