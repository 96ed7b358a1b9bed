-- Catalog and data tables of txpipe.

-- CREATE EXTENSION makes schema txpipe when it is missing.  One that was
-- there before must be the installing role's and empty: objects another
-- role put there could stand in for the ones this script calls.  txpipe_in
-- is made here, and fails if it exists.
DO $$
DECLARE
	v_owner oid;
	v_me oid := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER);
	v_nsp oid;
BEGIN
	SELECT n.oid, n.nspowner INTO v_nsp, v_owner
	  FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'txpipe';
	IF v_owner OPERATOR(pg_catalog.<>) v_me
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) v_nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) v_nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) v_nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_collation l WHERE l.collnamespace OPERATOR(pg_catalog.=) v_nsp)
	   OR EXISTS (SELECT 1 FROM pg_catalog.pg_conversion v WHERE v.connamespace OPERATOR(pg_catalog.=) v_nsp) THEN
		RAISE EXCEPTION 'schema txpipe exists already and belongs to role % or is not empty', v_owner::pg_catalog.regrole
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = 'CREATE EXTENSION txpipe installs only into an empty schema txpipe of the installing role, or makes it.',
				  HINT = 'Check what is in schema txpipe, drop it (DROP SCHEMA txpipe CASCADE) and run CREATE EXTENSION txpipe again.';
	END IF;
END;
$$;

CREATE SCHEMA txpipe_in;
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
-- Routing stores an identical reject (same pipeline, payload bytes, error
-- code and path) once: a repeat adds to count and moves last_received_at.
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
	replayed_at	timestamptz,
	payload_hash bytea,
	count		bigint NOT NULL DEFAULT 1 CHECK (count > 0),
	last_received_at timestamptz NOT NULL DEFAULT now(),
	errors		jsonb,
	replay_outcome text CHECK (replay_outcome IN ('accepted', 'rejected', 'duplicate'))
);
CREATE INDEX rejects_pipeline_received ON txpipe.rejects (pipeline, received_at);
CREATE INDEX rejects_identical ON txpipe.rejects (pipeline, payload_hash, error_code, error_path)
	WHERE payload_hash IS NOT NULL;
CREATE INDEX rejects_last_received ON txpipe.rejects (last_received_at);
COMMENT ON COLUMN txpipe.rejects.payload_raw IS
	'the received bytes, set only when they are not valid text in the database encoding (payload then shows them with U+FFFD)';
COMMENT ON COLUMN txpipe.rejects.payload_hash IS
	'SHA-256 of the received bytes; an identical reject (pipeline, payload_hash, error_code, error_path) adds to the count of the stored one';
COMMENT ON COLUMN txpipe.rejects.count IS
	'times this reject was received; received_at is the first time, last_received_at the last';
COMMENT ON COLUMN txpipe.rejects.errors IS
	'every error of the record (up to 20), an array of {code, path, message}; the first is error_code, error_path, message';
COMMENT ON COLUMN txpipe.rejects.replay_outcome IS
	'what txpipe.replay_rejects() made of it (accepted, rejected, duplicate), at replayed_at';
SELECT pg_catalog.pg_extension_config_dump('txpipe.rejects', '');
SELECT pg_catalog.pg_extension_config_dump('txpipe.rejects_reject_id_seq', '');

-- One row per routed batch, append-only.  txpipe.stats adds the batches
-- not folded yet to txpipe.counters; a fold (the worker, txpipe.prune())
-- adds committed batches to the counters and marks them folded in the same
-- transaction; only folded batches are pruned.
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
	retries		integer NOT NULL DEFAULT 0,
	folded		boolean NOT NULL DEFAULT false
);
COMMENT ON COLUMN txpipe.batches.retries IS
	'attempts rolled back to a savepoint: isolating refused rows, or a concurrent insert of the same key';
COMMENT ON COLUMN txpipe.batches.folded IS
	'whether the batch is added to txpipe.counters already';
CREATE INDEX batches_pipeline_finished ON txpipe.batches (pipeline, finished_at);
CREATE INDEX batches_unfolded ON txpipe.batches (pipeline) WHERE NOT folded;
SELECT pg_catalog.pg_extension_config_dump('txpipe.batches', '');
SELECT pg_catalog.pg_extension_config_dump('txpipe.batches_batch_id_seq', '');

-- Per pipeline: the sums of its folded batches.  Written only by the fold,
-- never by routing, so concurrent batches never wait on it.
CREATE TABLE txpipe.counters (
	pipeline	text PRIMARY KEY,
	received	bigint NOT NULL DEFAULT 0,
	accepted	bigint NOT NULL DEFAULT 0,
	rejected	bigint NOT NULL DEFAULT 0,
	duplicates	bigint NOT NULL DEFAULT 0,
	batches		bigint NOT NULL DEFAULT 0,
	folded_at	timestamptz
);
COMMENT ON TABLE txpipe.counters IS
	'per pipeline: the sums of its folded txpipe.batches rows (txpipe.stats adds the batches not folded yet)';
SELECT pg_catalog.pg_extension_config_dump('txpipe.counters', '');

-- Reject codes, documented in the database itself.
CREATE TABLE txpipe.reject_codes (
	error_code	text PRIMARY KEY,
	stage		text NOT NULL,
	description	text NOT NULL
);
INSERT INTO txpipe.reject_codes VALUES
	('invalid_utf8', 'decode', 'the bytes are not valid in the database encoding'),
	('too_large', 'decode', 'the record is longer than txpipe.max_record_size (or a NOTIFY payload has more than txpipe.notify_max_records records); the reject keeps a prefix, and the message the length and a SHA-256'),
	('too_deep', 'decode', 'arrays and objects nest deeper than txpipe.max_depth'),
	('too_many_keys', 'decode', 'an object has more keys than txpipe.max_keys'),
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
	('format', 'contract', 'a string is not a valid date or timestamp, or does not match the field''s inputFormat'),
	('additional_property', 'contract', 'a field the contract does not allow'),
	('poison', 'route', 'a queued record failed alone txpipe.worker_max_attempts times with an error that is not a refused row; message has the last error'),
	('unknown_pipeline', 'decode', 'a NOTIFY txpipe_ingest payload names a pipeline that does not exist'),
	('db_refused', 'route', 'the database refused a row (constraint, type); sqlstate and message are the database''s'),
	('key_conflict', 'route', 'the idempotency key is stored already (or came earlier in the batch) with other content; message names the first value that differs');

-- Alerts raised while routing (src/alerts.c): one per pipeline, rule, key
-- and window (window_start is NULL for a rule without a window: one alert
-- per key), written in the transaction that stored the record that raised
-- it, and sent as NOTIFY txpipe_alerts at its commit.
CREATE TABLE txpipe.alerts (
	alert_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	pipeline	text NOT NULL,
	rule		text NOT NULL,
	severity	text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
	key			text NOT NULL,
	key_masked	text NOT NULL,
	window_start timestamptz,
	record_key	text,
	routed_table text,
	event_time	timestamptz,
	raised_at	timestamptz NOT NULL DEFAULT now(),
	details		jsonb NOT NULL,
	acknowledged_at timestamptz,
	acknowledged_by text,
	CONSTRAINT alerts_once UNIQUE NULLS NOT DISTINCT (pipeline, rule, key, window_start)
);
CREATE INDEX alerts_open ON txpipe.alerts (pipeline, raised_at) WHERE acknowledged_at IS NULL;
CREATE INDEX alerts_acknowledged ON txpipe.alerts (acknowledged_at) WHERE acknowledged_at IS NOT NULL;
COMMENT ON TABLE txpipe.alerts IS
	'alerts raised while routing: one per pipeline, rule, key and window; each also sent as NOTIFY txpipe_alerts';
COMMENT ON COLUMN txpipe.alerts.key_masked IS
	'the key as txpipe_reader and NOTIFY see it: only its last four characters when the rule says mask_key';
COMMENT ON COLUMN txpipe.alerts.record_key IS
	'the idempotency key of the record that raised it; its row is the one of routed_table with that key';
COMMENT ON COLUMN txpipe.alerts.details IS
	'the figures that raised it: the count in the window and the threshold, or the value, mean, stddev and deviation';
SELECT pg_catalog.pg_extension_config_dump('txpipe.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('txpipe.alerts_alert_id_seq', '');

-- What rate and baseline rules count: per key, the records of its recent
-- windows (those a record may still count in), oldest first.
CREATE TABLE txpipe.alert_counts (
	pipeline	text NOT NULL,
	rule		text NOT NULL,
	definition	bigint NOT NULL,
	key			text NOT NULL,
	latest		timestamptz,
	since		timestamptz,
	window_starts timestamptz[] NOT NULL DEFAULT '{}',
	counts		bigint[] NOT NULL DEFAULT '{}',
	PRIMARY KEY (pipeline, rule, definition, key)
);
COMMENT ON TABLE txpipe.alert_counts IS
	'rate and baseline rules: per key, the stored records of its recent windows; definition is a digest of the rule, so a changed rule counts afresh';
COMMENT ON COLUMN txpipe.alert_counts.latest IS 'the newest event time counted: a record whose window closed longer than the rule''s lateness before it does not count';
COMMENT ON COLUMN txpipe.alert_counts.since IS 'the start of the oldest window ever counted: a baseline rule judges a window once the key has its whole history';
SELECT pg_catalog.pg_extension_config_dump('txpipe.alert_counts', '');

-- The same, a row per key and window.
CREATE VIEW txpipe.alert_windows AS
SELECT c.pipeline, c.rule, c.definition, c.key, w.window_start, w.count
  FROM ONLY txpipe.alert_counts c,
	   ROWS FROM (pg_catalog.unnest(c.window_starts), pg_catalog.unnest(c.counts)) AS w(window_start, count);
COMMENT ON VIEW txpipe.alert_windows IS
	'rate and baseline rules: stored records per key and recent window (txpipe.alert_counts, a row per window)';

-- What outlier rules compare with: per key, the count, mean and sum of
-- squared deviations of the values stored so far (Welford's method).
CREATE TABLE txpipe.alert_history (
	pipeline	text NOT NULL,
	rule		text NOT NULL,
	definition	bigint NOT NULL,
	key			text NOT NULL,
	n			bigint NOT NULL DEFAULT 0,
	mean		double precision NOT NULL DEFAULT 0,
	m2			double precision NOT NULL DEFAULT 0,
	PRIMARY KEY (pipeline, rule, definition, key)
);
COMMENT ON TABLE txpipe.alert_history IS
	'outlier rules: per key, the values stored so far as count, mean and sum of squared deviations (m2)';
SELECT pg_catalog.pg_extension_config_dump('txpipe.alert_history', '');
