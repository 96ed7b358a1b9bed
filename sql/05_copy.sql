\set SHOW_CONTEXT never
-- The COPY path: routed before COPY returns, in the COPY's transaction.
TRUNCATE txpipe.rejects;
CREATE TABLE events (id text PRIMARY KEY, n integer CHECK (n >= 0));
SELECT txpipe.create_pipeline('events', '{
  "contract": {"required": ["id"], "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}},
  "idempotency_key": "id",
  "routes": [{"table": "events", "columns": {"id": "id", "n": "n"}}]}');

COPY txpipe_in.events FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"id": "e1", "n": 1}
{"id": "e2", "n": "two"}
{"id": "e3", "n": 3, "note": "a \"quoted\" string, with commas \\ and \u00e9"}

{"id": "e1", "n": 1}
{"id": "e4", "n": -1}
{"id": "e5"
\.
SELECT * FROM events ORDER BY id;
SELECT error_code, error_path, source, payload FROM txpipe.rejects ORDER BY reject_id;

-- counts of the current transaction, for loaders
BEGIN;
COPY txpipe_in.events FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"id": "e6", "n": 6}
{"id": "e6", "n": 6}
{"id": "e7", "n": "x"}
\.
SELECT * FROM txpipe.xact_counts('events');
COMMIT;
SELECT * FROM txpipe.xact_counts('events');

-- more lines than one batch: every batch routed, the last by the statement trigger
SET txpipe.batch_size = 3;
INSERT INTO txpipe_in.events SELECT format('{"id": "m%s", "n": %s}', i, i) FROM generate_series(1, 10) i;
RESET txpipe.batch_size;
SELECT count(*) FROM events WHERE id LIKE 'm%';

-- re-sent records in later batches of the same COPY are found by the
-- duplicate check, without rolling anything back
SET txpipe.batch_size = 2;
INSERT INTO txpipe_in.events SELECT format('{"id": "d%s", "n": 1}', i % 3) FROM generate_series(1, 9) i;
RESET txpipe.batch_size;
SELECT sum(accepted) AS accepted, sum(duplicates) AS duplicates, sum(retries) AS retries
  FROM txpipe.batches WHERE xact = (SELECT max(xact) FROM txpipe.batches WHERE pipeline = 'events');

-- a COPY that fails part-way (a line with the delimiter byte) leaves nothing behind
SELECT count(*) AS before FROM events;
COPY txpipe_in.events FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"id": "f1", "n": 1}
{"id": "f2"}a second column
\.
SELECT count(*) AS after FROM events;

-- a writer may send records but not read or write the tables
CREATE ROLE loader LOGIN IN ROLE txpipe_writer;
-- sending is granted per pipeline: nothing until the owner grants it
SET ROLE loader;
SELECT * FROM txpipe.ingest('events', '{"id": "w0", "n": 0}');
SELECT txpipe.enqueue('events', '{"id": "w0", "n": 0}'::jsonb);
SELECT * FROM txpipe.validate('events', '{"id": "w0"}');
RESET ROLE;
SELECT txpipe.grant_send('events', 'txpipe_writer');
SET ROLE loader;
SELECT * FROM txpipe.ingest('events', '{"id": "w1", "n": 1}');
COPY txpipe_in.events FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"id": "w2", "n": 2}
\.
-- and reads nothing routed, nor the catalog
SELECT * FROM events;
SELECT count(*) FROM txpipe.batches;
SELECT count(*) FROM txpipe.pipelines;
INSERT INTO txpipe.inbox (pipeline, class, source, doc) VALUES ('events', 0, 'queue', '{}');
RESET ROLE;
SELECT id FROM events WHERE id LIKE 'w%' ORDER BY id;
SELECT txpipe.revoke_send('events', 'txpipe_writer');
DROP ROLE loader;
