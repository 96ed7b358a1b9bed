\set SHOW_CONTEXT never
-- Retention: an identical reject is stored once and counted every time;
-- txpipe.stats stays exact while batches are folded into txpipe.counters
-- and pruned; txpipe.prune() removes only what is past retention.
CREATE SCHEMA ret;
CREATE TABLE ret.item (id text PRIMARY KEY, qty integer NOT NULL);
SELECT txpipe.create_pipeline('ret', '{
  "schema": "ret",
  "idempotency_key": "id",
  "contract": {"type": "object", "required": ["id", "qty"],
               "properties": {"id": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}},
  "routes": [{"table": "item", "columns": {"id": "id", "qty": "qty"}}]}');
GRANT USAGE ON SCHEMA ret TO txpipe_writer;
GRANT INSERT, SELECT ON ret.item TO txpipe_writer;

-- a file with the same bad record twice, another bad one and good ones
CREATE TEMP TABLE f AS SELECT concat_ws(E'\n',
	'{"id": "a", "qty": 1}',
	'{"id": "b", "qty": 0}',
	'{"id": "b", "qty": 0}',
	'{"id": "c"}',
	'{"id": "d", "qty": 2}') AS docs;
SELECT * FROM txpipe.ingest('ret', (SELECT docs FROM f));
SELECT payload, error_code, error_path, count, received_at = last_received_at AS once
  FROM txpipe.rejects WHERE pipeline = 'ret' ORDER BY payload;

-- the same file again: every record counted, no reject stored twice
SELECT pg_sleep(0.01);
SELECT * FROM txpipe.ingest('ret', (SELECT docs FROM f));
SELECT payload, error_code, count, last_received_at > received_at AS moved
  FROM txpipe.rejects WHERE pipeline = 'ret' ORDER BY payload;
SELECT received, accepted, rejected, duplicates FROM txpipe.stats WHERE pipeline = 'ret';

-- the same bytes with another error are another reject; bytes that are not
-- text are matched by their bytes
SELECT * FROM txpipe.ingest_raw('ret', '\x7b226964223a2278ff227d'::bytea);
SELECT * FROM txpipe.ingest_raw('ret', '\x7b226964223a2278ff227d'::bytea);
SELECT error_code, count, payload_raw FROM txpipe.rejects WHERE pipeline = 'ret' AND payload_raw IS NOT NULL;

-- a batch of 2500 rejects, 2200 of them different, is written in bounded
-- statements and merges across them
SELECT * FROM txpipe.ingest('ret', (SELECT string_agg(format('{"id": "z%s", "qty": -1}', i % 2200), E'\n')
									   FROM generate_series(1, 2500) i));
SELECT count(*) AS stored, sum(count) AS received FROM txpipe.rejects WHERE pipeline = 'ret' AND payload LIKE '%"z%';

-- stats: the same whether batches are folded or not, and after old folded
-- batches are pruned
CREATE TEMP TABLE before AS SELECT received, accepted, rejected, duplicates FROM txpipe.stats WHERE pipeline = 'ret';
SELECT count(*) AS unfolded FROM txpipe.batches WHERE pipeline = 'ret' AND NOT folded;
SELECT txpipe._fold(2) AS folded;
SELECT (SELECT (received, accepted, rejected, duplicates) FROM txpipe.stats WHERE pipeline = 'ret')
	   = (SELECT (received, accepted, rejected, duplicates) FROM before) AS same_after_part_fold;
UPDATE txpipe.batches SET finished_at = finished_at - interval '8 days' WHERE pipeline = 'ret';
-- (the fold takes the batches of every pipeline)
SELECT folded >= 4 AS folded, batches, rejects FROM txpipe._prune(NULL, interval '7 days', NULL, NULL);
SELECT count(*) AS batches_left FROM txpipe.batches WHERE pipeline = 'ret';
SELECT received, accepted, rejected, duplicates, batches FROM txpipe.counters WHERE pipeline = 'ret';
SELECT (SELECT (received, accepted, rejected, duplicates) FROM txpipe.stats WHERE pipeline = 'ret')
	   = (SELECT (received, accepted, rejected, duplicates) FROM before) AS same_after_prune;
-- new batches add to the counters
SELECT * FROM txpipe.ingest('ret', '{"id": "e", "qty": 3}');
SELECT received, accepted, rejected, duplicates FROM txpipe.stats WHERE pipeline = 'ret';

-- rejects: only those last received before the retention go
UPDATE txpipe.rejects SET last_received_at = now() - interval '31 days'
 WHERE pipeline = 'ret' AND payload LIKE '%"z1%';
SELECT count(*) AS old FROM txpipe.rejects WHERE pipeline = 'ret' AND last_received_at < now() - interval '30 days';
SELECT folded, batches, rejects FROM txpipe._prune(interval '30 days', interval '7 days', NULL, NULL);
SELECT count(*) AS left, count(*) FILTER (WHERE payload LIKE '%"z1%') AS old_left
  FROM txpipe.rejects WHERE pipeline = 'ret';

-- alerts: only those acknowledged before the retention go; open alerts
-- stay, however old
INSERT INTO txpipe.alerts (pipeline, rule, severity, key, key_masked, details, raised_at, acknowledged_at, acknowledged_by)
VALUES ('ret', 'r', 'info', 'k1', 'k1', '{}', now() - interval '200 days', now() - interval '91 days', 'x'),
	   ('ret', 'r', 'info', 'k2', 'k2', '{}', now() - interval '200 days', now() - interval '89 days', 'x'),
	   ('ret', 'r', 'info', 'k3', 'k3', '{}', now() - interval '200 days', NULL, NULL);
SELECT folded, batches, rejects, alerts FROM txpipe._prune(NULL, NULL, interval '90 days', NULL);
SELECT string_agg(key, ',' ORDER BY key) AS alerts_left FROM txpipe.alerts WHERE pipeline = 'ret';

-- txpipe.prune(): an admin may run it (with the settings: 30 days, 7
-- days), a writer may not
SHOW txpipe.rejects_retention;
SHOW txpipe.batches_retention;
SHOW txpipe.alerts_retention;
SET ROLE txpipe_admin;
SELECT folded, batches, rejects, alerts FROM txpipe.prune();
RESET ROLE;
SET ROLE txpipe_writer;
SELECT folded FROM txpipe.prune();
SET txpipe.rejects_retention = '1d';
RESET ROLE;

SELECT txpipe.drop_pipeline('ret');
DROP SCHEMA ret CASCADE;
DELETE FROM txpipe.rejects WHERE pipeline = 'ret';
DELETE FROM txpipe.alerts WHERE pipeline = 'ret';
DELETE FROM txpipe.batches WHERE pipeline = 'ret';
DELETE FROM txpipe.counters WHERE pipeline = 'ret';
