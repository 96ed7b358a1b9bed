\set SHOW_CONTEXT never
-- The queue path: enqueue, the inbox, txpipe.drain() (what a worker does),
-- async COPY, NOTIFY payloads, poison-free rejects, slot truncation.
-- This database's workers are stopped so that the test drains by itself.
SELECT txpipe.stop_worker() >= 0 AS stopped;
TRUNCATE txpipe.rejects, txpipe.batches;
CREATE SCHEMA q;
CREATE TABLE q.event (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	id text NOT NULL UNIQUE, k text NOT NULL, n integer NOT NULL CHECK (n >= 0));
SELECT txpipe.create_pipeline('q_events', '{
  "schema": "q",
  "contract": {"type": "object", "required": ["id", "k", "n"],
               "properties": {"id": {"type": "string"}, "k": {"type": "string"}, "n": {"type": "integer"}}},
  "idempotency_key": "id",
  "order_key": "k",
  "routes": [{"table": "event", "columns": {"id": "id", "k": "k", "n": "n"}}]}');
SELECT count(*) AS positions FROM txpipe.queue_positions WHERE pipeline = 'q_events';

-- spec errors of the queue keys
SELECT txpipe.create_pipeline('q_bad', '{"mode": "later", "routes": [{"table": "q.event", "columns": {"id": "id"}}]}');
SELECT txpipe.create_pipeline('q_bad', '{"order_key": 7, "routes": [{"table": "q.event", "columns": {"id": "id"}}]}');
SELECT txpipe.create_pipeline('q_bad', '{"contract": {"additionalProperties": false, "properties": {"id": {}}},
  "order_key": "card", "routes": [{"table": "q.event", "columns": {"id": "id"}}]}');

-- enqueue: one record, an array; a rolled-back enqueue leaves nothing
SELECT txpipe.enqueue('q_events', '{"id": "e1", "k": "a", "n": 1}'::jsonb);
SELECT txpipe.enqueue('q_events', ARRAY['{"id": "e2", "k": "a", "n": 2}', '{"id": "e3", "k": "b", "n": 3}']::jsonb[]);
BEGIN;
SELECT txpipe.enqueue('q_events', '{"id": "rolled_back", "k": "a", "n": 9}'::jsonb);
ROLLBACK;
SELECT source, doc FROM txpipe.queue WHERE pipeline = 'q_events' ORDER BY id;
SELECT backlog, backlog_age IS NOT NULL AS has_age FROM txpipe.stats WHERE pipeline = 'q_events';
SELECT count(*) AS routed_before_drain FROM q.event;

-- records as received (text): a malformed one is queued and becomes a
-- reject when routed; an untyped literal takes this form
SELECT txpipe.enqueue('q_events', '{"id": "t1", "k": "a", "n": 1}');
SELECT txpipe.enqueue('q_events', ARRAY['{"id": "t2", "k": "b", "n": 2}', '{"id": "t3", "k": "b", "n": NaN}', NULL]::text[]);
SELECT source, doc FROM txpipe.queue WHERE pipeline = 'q_events' AND doc LIKE '%"t%' ORDER BY id;
SELECT txpipe.drain('q_events');
SELECT id FROM q.event WHERE id LIKE 't%' ORDER BY id;
SELECT error_code, error_path, payload FROM txpipe.rejects ORDER BY payload;
TRUNCATE q.event, txpipe.rejects, txpipe.batches;
SELECT txpipe.enqueue('q_events', '{"id": "e1", "k": "a", "n": 1}'::jsonb);
SELECT txpipe.enqueue('q_events', ARRAY['{"id": "e2", "k": "a", "n": 2}', '{"id": "e3", "k": "b", "n": 3}']::jsonb[]);

-- errors
SELECT txpipe.enqueue('nope', '{}'::jsonb);
SELECT txpipe.enqueue('nope', '{}');
SELECT txpipe.enqueue(NULL, '{}'::jsonb);
SELECT txpipe.drain('nope');
SELECT txpipe.drain('q_events', -1);

-- drain routes them once; a second drain finds nothing
SELECT txpipe.drain('q_events');
SELECT id, k, n FROM q.event ORDER BY seq;
SELECT txpipe.drain('q_events');
SELECT backlog FROM txpipe.stats WHERE pipeline = 'q_events';
SELECT sum(consumed) AS consumed, count(*) FILTER (WHERE pass_upto IS NOT NULL) AS passes_open
  FROM txpipe.queue_positions WHERE pipeline = 'q_events';

-- bad records, a refused row and a re-sent one become rejects and
-- duplicates with source queue; their neighbours land
SELECT txpipe.enqueue('q_events', ARRAY['{"id": "e4", "k": "a", "n": 4}', '{"id": "e5", "k": "a"}',
	'{"id": "e6", "k": "b", "n": -6}', '[1, 2]', 'null', NULL, '{"id": "e1", "k": "a", "n": 1}',
	'{"id": "e7", "k": "c", "n": 7}']::jsonb[]);
SELECT txpipe.drain('q_events');
SELECT id, n FROM q.event WHERE id IN ('e4', 'e7') ORDER BY id;
SELECT source, error_code, error_path, payload, sqlstate, count FROM txpipe.rejects ORDER BY payload, error_code;
SELECT source, sum(received) AS received, sum(accepted) AS accepted, sum(rejected) AS rejected,
	   sum(duplicates) AS duplicates
  FROM txpipe.batches WHERE pipeline = 'q_events' GROUP BY source;

-- the records of one key are routed in the order they were enqueued, in
-- batches of any size
SET txpipe.batch_size = 3;
SELECT sum(txpipe.enqueue('q_events', jsonb_build_object('id', 'o' || i, 'k', 'k' || (i % 3), 'n', i)))
  FROM generate_series(1, 30) i;
SELECT txpipe.drain('q_events', 10);
SELECT count(*) AS waiting FROM txpipe.queue WHERE pipeline = 'q_events';
SELECT txpipe.drain('q_events');
RESET txpipe.batch_size;
SELECT k, array_agg(n ORDER BY seq) = array_agg(n ORDER BY n) AS in_order, count(*)
  FROM q.event WHERE id LIKE 'o%' GROUP BY k ORDER BY k;

-- a transaction still open does not hold up the records committed after it
-- started (its own records wait for it): see the isolation spec queue.spec

-- NOTIFY txpipe_ingest payloads, as the worker stores them: dropped (-1)
-- unless the pipeline's spec says "notify": true
SELECT txpipe._notify_in('{"pipeline": "q_events", "records": [{"id": "nt0", "k": "a", "n": 1}]}');
-- and while no pipeline takes NOTIFY, not even an unreadable payload is stored
SELECT txpipe._notify_in('not json'), txpipe._notify_in('{"pipeline": "nope", "records": []}');
SELECT count(*) AS notify_rejects FROM txpipe.rejects WHERE source = 'notify';
UPDATE txpipe.pipelines SET spec = spec || '{"notify": true}' WHERE name = 'q_events';
SELECT txpipe._notify_in('{"pipeline": "q_events", "records": [{"id": "nt3", "k": "a", "n": 1}, {"id": "nt4", "k": "a", "n": 1}]}', 1);
SELECT txpipe._notify_in('{"pipeline": "q_events", "records": [{"id": "nt5", "k": "a\u0000", "n": 1}]}');
SELECT txpipe._notify_in('{"pipeline": "q_events", "records": [{"id": "nt6", "k": "a", "n": 1e1000000}]}');
SELECT txpipe._notify_in('{"pipeline": "q_events", "records": [{"id": "nt1", "k": "a", "n": 1}, {"id": "nt2"}]}');
SELECT txpipe._notify_in('{"pipeline": "q_events", "records": 5}');
SELECT txpipe._notify_in('{"pipeline": "nope", "records": []}');
SELECT txpipe._notify_in('not json');
SELECT txpipe._notify_in('[]');
SELECT txpipe.drain('q_events');
SELECT id FROM q.event WHERE id LIKE 'nt%';
SELECT pipeline, source, error_code, error_path, message FROM txpipe.rejects
 WHERE source = 'notify' OR payload LIKE '%nt2%' ORDER BY reject_id;

-- async mode: COPY fills the inbox; routing happens at drain
SELECT txpipe.create_pipeline('q_events', (SELECT spec || '{"mode": "async"}' FROM txpipe.pipelines WHERE name = 'q_events'), or_replace => true);
COPY txpipe_in.q_events FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"id": "c1", "k": "a", "n": 1}
{"id": "c2", "k": "b", "n": 2}
{"id": "c3", "k": "b"
{"id": "c1", "k": "a", "n": 1}
\.
SELECT count(*) AS queued FROM txpipe.queue WHERE pipeline = 'q_events' AND source = 'copy';
SELECT count(*) AS routed_before_drain FROM q.event WHERE id LIKE 'c%';
SELECT txpipe.drain('q_events');
SELECT id FROM q.event WHERE id LIKE 'c%' ORDER BY id;
SELECT error_code, payload FROM txpipe.rejects WHERE source = 'copy';
SELECT txpipe.create_pipeline('q_events', (SELECT spec - 'mode' FROM txpipe.pipelines WHERE name = 'q_events'), or_replace => true);

-- a slot that is not the current one and holds only routed records is
-- truncated; one with a waiting record is kept
INSERT INTO txpipe.inbox (slot, pipeline, class, source, doc)
VALUES ((txpipe._inbox_slot() + 4) % 8, 'q_events', 0, 'queue', '{"id": "s1", "k": "x", "n": 1}');
SELECT txpipe._rotate_inbox() >= 0 AS rotated;
SELECT count(*) AS kept FROM txpipe.inbox WHERE doc LIKE '%"s1"%';
SELECT txpipe.drain('q_events');
SELECT txpipe._rotate_inbox() >= 1 AS rotated;
SELECT count(*) AS after_truncate FROM txpipe.inbox WHERE slot = (txpipe._inbox_slot() + 4) % 8;

-- enqueue puts a record in the slot the column's default would: the one
-- of its enqueue time
SELECT txpipe.enqueue('q_events', '{"id": "slot", "k": "a", "n": 1}'::jsonb);
SELECT slot = (extract(epoch FROM enqueued_at)::bigint
			   / current_setting('txpipe.inbox_slot_seconds')::int % 8) AS default_slot
  FROM txpipe.inbox WHERE doc LIKE '%"slot"%';

-- drop_pipeline takes its waiting records with it
SELECT txpipe.enqueue('q_events', '{"id": "gone", "k": "a", "n": 1}'::jsonb);
SELECT txpipe.drop_pipeline('q_events');
SELECT count(*) AS left_behind FROM txpipe.inbox WHERE pipeline = 'q_events';
SELECT count(*) AS positions FROM txpipe.queue_positions WHERE pipeline = 'q_events';

-- a writer may enqueue but not drain
SET ROLE txpipe_writer;
SELECT txpipe.enqueue('cards_missing', '{}'::jsonb);
SELECT txpipe.drain();
RESET ROLE;
DROP SCHEMA q CASCADE;
TRUNCATE txpipe.rejects, txpipe.batches;
