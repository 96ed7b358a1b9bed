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
	('format', 'contract', 'a string is not a valid date or timestamp'),
	('additional_property', 'contract', 'a field the contract does not allow'),
	('poison', 'route', 'a queued record failed alone txpipe.worker_max_attempts times with an error that is not a refused row; message has the last error'),
	('unknown_pipeline', 'decode', 'a NOTIFY txpipe_ingest payload names a pipeline that does not exist'),
	('db_refused', 'route', 'the database refused a row (constraint, type); sqlstate and message are the database''s');
