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
AS 'MODULE_PATHNAME', 'txpipe_enqueue_jsonbs'
LANGUAGE C;
COMMENT ON FUNCTION txpipe.enqueue(text, jsonb[]) IS
	'queues records for the background worker, in the caller''s transaction; returns how many';

CREATE FUNCTION txpipe.enqueue(pipeline text, doc jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txpipe_enqueue_jsonb'
LANGUAGE C;
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
-- to the inbox; a payload that cannot be read, or that has more than
-- max_records records, becomes a reject.  Any role that can connect may
-- send one, so it is taken only for a pipeline whose spec says
-- "notify": true; for any other the payload is dropped (returns -1, the
-- worker counts it).  Returns the records queued.
CREATE FUNCTION txpipe._notify_in(payload text, max_records integer DEFAULT 100)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v jsonb;
	v_pipeline text;
	v_key text;
	v_on boolean;
	v_n bigint;
	v_code text;
	v_path text := '$';
	v_msg text;
BEGIN
	-- Any role that can connect may NOTIFY: where no pipeline takes NOTIFY
	-- ingest, nothing it sends is stored, not even as a reject.
	IF NOT EXISTS (SELECT 1 FROM ONLY txpipe.pipelines p
					WHERE p.spec OPERATOR(pg_catalog.->) 'notify' OPERATOR(pg_catalog.=) 'true'::pg_catalog.jsonb) THEN
		RETURN -1;
	END IF;
	BEGIN
		v := payload::jsonb;
	EXCEPTION WHEN data_exception THEN
		-- not JSON, or JSON that jsonb cannot hold (\u0000, 1e1000000)
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
		ELSE
			SELECT p.spec->>'order_key', p.spec->'notify' = 'true'::jsonb INTO v_key, v_on
			  FROM txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) v_pipeline;
			IF NOT FOUND THEN
				v_code := 'unknown_pipeline'; v_path := '$.pipeline';
				v_msg := format('pipeline "%s" does not exist', v_pipeline);
			ELSIF v_on IS NOT TRUE THEN
				RETURN -1;
			ELSIF jsonb_typeof(v->'records') IS DISTINCT FROM 'array' THEN
				v_code := 'required'; v_path := '$.records';
				v_msg := 'the NOTIFY payload needs "records", an array of records';
			ELSIF jsonb_array_length(v->'records') > max_records THEN
				v_code := 'too_large'; v_path := '$.records';
				v_msg := format('the NOTIFY payload has %s records, more than txpipe.notify_max_records (%s)',
								jsonb_array_length(v->'records'), max_records);
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

-- A worker 0 that found no extension here parked this database; the
-- commit of CREATE EXTENSION has the launcher start it again (src/launcher.c).
CREATE FUNCTION txpipe._wake_launcher()
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_wake_launcher'
LANGUAGE C;
SELECT txpipe._wake_launcher();
