\set SHOW_CONTEXT never
-- Alerts: rules in the spec (refused at their path when wrong), raised
-- while routing for exactly the stored records, once per rule, key and
-- window; a rollback takes them back; txpipe_reader sees keys masked and
-- no role writes txpipe.alerts.
\set VERBOSITY terse
-- this database's workers stay stopped: the test drains the queue itself
SELECT txpipe.stop_worker() >= 0 AS stopped;
TRUNCATE txpipe.rejects;
CREATE ROLE regress_alert_reader IN ROLE txpipe_reader;
CREATE ROLE regress_alert_writer IN ROLE txpipe_writer;
CREATE ROLE regress_alert_admin IN ROLE txpipe_admin;
CREATE SCHEMA alr;
CREATE TABLE alr.tx (
	trans_num	text NOT NULL UNIQUE,
	card		text NOT NULL,
	at			timestamp NOT NULL,
	amt			numeric(12,2) NOT NULL CHECK (amt < 100000),
	fraud		integer NOT NULL
);

-- the spec of the tests, with the rules given
CREATE FUNCTION alr_spec(rules jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object(
		'schema', 'alr',
		'contract', '{"additionalProperties": false,
		              "required": ["id", "card", "at", "amt", "fraud"],
		              "properties": {"id": {"type": "string"}, "card": {"type": "integer"},
		                             "at": {"type": "string", "format": "timestamp"},
		                             "amt": {"type": "number"}, "fraud": {"type": "integer"},
		                             "shop": {"type": "string"}}}'::jsonb,
		'idempotency_key', 'id',
		'event_time', 'at',
		'routes', '[{"table": "tx", "columns": {"trans_num": "id", "card": "card", "at": "at", "amt": "amt", "fraud": "fraud"}}]'::jsonb,
		'alerts', rules)
$$;

-- bad rules are refused at their spec path
SELECT txpipe.create_pipeline('bad', alr_spec('{"name": "x"}'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"kind": "flag", "when": {"field": "fraud", "equals": 1}}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "Fraud!", "kind": "flag", "when": {"field": "fraud", "equals": 1}}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "f", "kind": "flag", "when": {"field": "fraud", "equals": 1}}, {"name": "f", "kind": "flag", "when": {"field": "fraud", "equals": 1}}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "f", "kind": "spike"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "f", "kind": "flag", "when": {"field": "fraud", "equals": 1}, "limit": 3}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "f", "kind": "flag", "when": {"field": "fraud", "equals": 1}, "threshold": 3}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "f", "kind": "flag"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "f", "kind": "flag", "when": {"field": "fraud"}}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "f", "kind": "flag", "severity": "urgent", "when": {"field": "fraud", "equals": 1}}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "o", "kind": "outlier", "field": "amt"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 5, "lateness": "1 month"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 5, "lateness": "-1 minute"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "1 second", "threshold": 5, "lateness": "1 day"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "o", "kind": "outlier", "key": "card", "field": "amt", "lateness": "1 hour"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "b", "kind": "baseline"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "b", "kind": "baseline", "window": "1 minute", "factor": 0.5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "b", "kind": "baseline", "window": "1 minute", "history": 0}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "b", "kind": "baseline", "window": "1 minute", "history": 1001}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "b", "kind": "baseline", "window": "1 minute", "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "b", "kind": "baseline", "window": "1 minute", "min_count": 0}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "1 month", "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "soon", "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "0.5 seconds", "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": 600, "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "10 minutes"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 0}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "cardholder", "window": "10 minutes", "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": [], "window": "10 minutes", "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": ["card", "card"], "window": "10 minutes", "threshold": 5}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 5, "mask_key": "yes"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "o", "kind": "outlier", "key": "card"}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "o", "kind": "outlier", "key": "card", "field": "amt", "min_history": 1}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "o", "kind": "outlier", "key": "card", "field": "amt", "z": 0}]'));
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "o", "kind": "outlier", "key": "card", "field": "amt", "threshold": 3}]'));
-- a window runs on event time: without one in the rule or the spec, refused
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "v", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 5}]') - 'event_time');
-- a flag without a key is per record, by the idempotency key
SELECT txpipe.create_pipeline('bad', alr_spec('[{"name": "f", "kind": "flag", "when": {"field": "fraud", "equals": 1}}]') - 'idempotency_key'
	|| '{"routes": [{"table": "tx", "columns": {"trans_num": "id", "card": "card", "at": "at", "amt": "amt", "fraud": "fraud"}}]}');
SELECT count(*) AS pipelines FROM txpipe.pipelines WHERE name = 'bad';

-- the rules of these tests
SELECT txpipe.create_pipeline('alr', alr_spec('[
	{"name": "fraud", "kind": "flag", "severity": "critical", "when": {"field": "fraud", "equals": 1},
	 "key": "card", "window": "1 day", "mask_key": true},
	{"name": "velocity", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 5, "mask_key": true},
	{"name": "amount", "kind": "outlier", "field": "amt", "key": "card", "min_history": 20, "z": 4, "mask_key": true},
	{"name": "shop_sale", "kind": "flag", "severity": "info",
	 "when": {"field": "shop", "pattern": "^north"}}]'));

CREATE FUNCTION alr_rec(id text, card bigint, at text, amt numeric, fraud int DEFAULT 0) RETURNS text
LANGUAGE sql AS $$
	SELECT jsonb_build_object('id', id, 'card', card, 'at', at, 'amt', amt, 'fraud', fraud)::text
$$;
-- n records on a card, one every 10 seconds from a time
CREATE FUNCTION alr_burst(prefix text, card bigint, start timestamp, n int, fraud_at int DEFAULT 0) RETURNS text
LANGUAGE sql AS $$
	SELECT string_agg(alr_rec(prefix || i, card, to_char(start + i * interval '10 seconds', 'YYYY-MM-DD HH24:MI:SS'),
							  10 + i % 3, (i = fraud_at)::int), E'\n' ORDER BY i)
	  FROM generate_series(1, n) i
$$;
CREATE VIEW alr_alerts AS
SELECT rule, severity, key, key_masked, record_key, routed_table,
	   event_time AT TIME ZONE 'UTC' AS event_time_utc, window_start AT TIME ZONE 'UTC' AS window_utc, details
  FROM txpipe.alerts WHERE pipeline = 'alr';

-- a burst of 30 transactions on one card within 5 minutes, one of them
-- flagged as fraud: one velocity alert (raised by the 6th record) and one
-- fraud alert, not 30
SELECT * FROM txpipe.ingest('alr', alr_burst('a', 4111111111111111, '2019-05-01 10:00', 30, 7));
SELECT * FROM alr_alerts ORDER BY rule;

-- the same records again: duplicates, nothing new; the window still holds 30
SELECT * FROM txpipe.ingest('alr', alr_burst('a', 4111111111111111, '2019-05-01 10:00', 30, 7));
SELECT count(*) AS alerts FROM txpipe.alerts WHERE pipeline = 'alr';
SELECT key, window_start AT TIME ZONE 'UTC' AS window_utc, count FROM txpipe.alert_windows WHERE pipeline = 'alr' ORDER BY 2;

-- more fraud on the card the same day, and more records in the same
-- window: nothing new
SELECT * FROM txpipe.ingest('alr', alr_burst('b', 4111111111111111, '2019-05-01 10:05', 3, 2));
SELECT count(*) AS alerts FROM txpipe.alerts WHERE pipeline = 'alr';

-- the queue path: a burst enqueued and drained raises its alert the same way
SELECT txpipe.enqueue('alr', array_agg(d::jsonb ORDER BY o))
  FROM unnest(string_to_array(alr_burst('q', 5500000000000004, '2019-05-01 11:00', 8), E'\n')) WITH ORDINALITY AS u(d, o);
SELECT txpipe.drain('alr');
SELECT rule, key_masked, record_key, event_time_utc, details FROM alr_alerts WHERE key = '5500000000000004';

-- COPY: a burst split over two windows (10:08:00 to 10:12:00) raises no
-- velocity alert: 4 in one window, 2 in the next ...
COPY txpipe_in.alr FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"id": "c1", "card": 6011000990139424, "at": "2019-05-01 10:08:00", "amt": 20, "fraud": 0}
{"id": "c2", "card": 6011000990139424, "at": "2019-05-01 10:08:30", "amt": 20, "fraud": 0}
{"id": "c3", "card": 6011000990139424, "at": "2019-05-01 10:09:00", "amt": 20, "fraud": 0}
{"id": "c4", "card": 6011000990139424, "at": "2019-05-01 10:09:59", "amt": 20, "fraud": 0}
{"id": "c5", "card": 6011000990139424, "at": "2019-05-01 10:10:00", "amt": 20, "fraud": 0}
{"id": "c6", "card": 6011000990139424, "at": "2019-05-01 10:12:00", "amt": 20, "fraud": 0}
\.
SELECT count(*) AS alerts FROM txpipe.alerts WHERE key = '6011000990139424';
-- ... and two late records of the first window, sent later, complete it:
-- they count in the window of their own event time
COPY txpipe_in.alr FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"id": "c7", "card": 6011000990139424, "at": "2019-05-01 10:15:00", "amt": 20, "fraud": 0}
{"id": "c8", "card": 6011000990139424, "at": "2019-05-01 10:01:00", "amt": 20, "fraud": 0}
{"id": "c9", "card": 6011000990139424, "at": "2019-05-01 10:02:00", "amt": 20, "fraud": 0}
\.
SELECT rule, record_key, event_time_utc, window_utc, details FROM alr_alerts WHERE key = '6011000990139424';

-- a rolled-back load raises nothing, and leaves no count behind
BEGIN;
SELECT * FROM txpipe.ingest('alr', alr_burst('r', 3530111333300000, '2019-05-02 09:00', 10, 3));
SELECT count(*) AS alerts_inside FROM txpipe.alerts WHERE key = '3530111333300000';
ROLLBACK;
SELECT count(*) AS alerts FROM txpipe.alerts WHERE key = '3530111333300000';
SELECT count(*) AS windows FROM txpipe.alert_windows WHERE key = '3530111333300000';
-- loaded for good afterwards, the same records raise their alerts once
SELECT * FROM txpipe.ingest('alr', alr_burst('r', 3530111333300000, '2019-05-02 09:00', 10, 3));
SELECT rule, record_key FROM alr_alerts WHERE key = '3530111333300000' ORDER BY rule;

-- rejected and refused records raise nothing: a contract reject, and a row
-- the table's CHECK refuses (db_refused), both flagged as fraud
SELECT * FROM txpipe.ingest('alr', alr_rec('x1', 4000056655665556, 'yesterday-ish', 10, 1) || E'\n' ||
								  alr_rec('x2', 4000056655665556, '2019-05-03 09:00:00', 100000, 1));
SELECT error_code, error_path FROM txpipe.rejects ORDER BY error_code;
SELECT count(*) AS alerts FROM txpipe.alerts WHERE key = '4000056655665556';

-- a flag without a key raises per record (the key is the record's id),
-- here on a condition with a pattern
SELECT * FROM txpipe.ingest('alr', (alr_rec('s1', 4000056655665556, '2019-05-03 10:00:00', 25)::jsonb || '{"shop": "northgate"}')::text || E'\n' ||
								  (alr_rec('s2', 4000056655665556, '2019-05-03 10:01:00', 35)::jsonb || '{"shop": "south"}')::text || E'\n' ||
								  (alr_rec('s3', 4000056655665556, '2019-05-03 10:02:00', 45)::jsonb || '{"shop": "north"}')::text);
SELECT rule, severity, key, key_masked, record_key, window_utc, details FROM alr_alerts WHERE rule = 'shop_sale' ORDER BY key;

-- outliers: 20 amounts of history on a card, then one far from them, then
-- one close to them; the history keeps growing
SELECT * FROM txpipe.ingest('alr', (
	SELECT string_agg(alr_rec('h' || i, 4242424242424242, to_char('2019-06-01'::timestamp + i * interval '1 hour', 'YYYY-MM-DD HH24:MI:SS'),
							  40 + i % 5), E'\n' ORDER BY i)
	  FROM generate_series(1, 20) i));
SELECT count(*) AS alerts FROM txpipe.alerts WHERE key = '4242424242424242';
SELECT * FROM txpipe.ingest('alr', alr_rec('h21', 4242424242424242, '2019-06-02 10:00:00', 900) || E'\n' ||
								  alr_rec('h22', 4242424242424242, '2019-06-02 11:00:00', 42));
SELECT rule, record_key, event_time_utc, window_utc, details FROM alr_alerts WHERE key = '4242424242424242';
SELECT key, n, round(mean::numeric, 4) AS mean FROM txpipe.alert_history WHERE key = '4242424242424242';
-- within the first 20 values, nothing is judged: a card with only a few
-- amounts raises nothing however far apart they are
SELECT count(*) AS alerts FROM txpipe.alerts WHERE rule = 'amount' AND key = '4111111111111111';

-- txpipe.stats counts them
SELECT pipeline, alerts, open_alerts FROM txpipe.stats WHERE pipeline = 'alr';

-- txpipe_reader: the open alerts, card numbers masked; not txpipe.alerts
SET ROLE regress_alert_reader;
SELECT pipeline, rule, severity, key, record_key FROM txpipe.open_alerts WHERE pipeline = 'alr' ORDER BY rule, key, record_key;
SELECT count(*) FROM txpipe.open_alerts WHERE key ~ '4111111111111111|5500000000000004|6011000990139424|3530111333300000|4242424242424242';
SELECT count(*) FROM txpipe.alerts;
SELECT count(*) FROM txpipe.alert_windows;
SELECT txpipe.acknowledge_alert(1);
RESET ROLE;

-- no role writes txpipe.alerts or the rules' state directly
SET ROLE regress_alert_writer;
INSERT INTO txpipe.alerts (pipeline, rule, severity, key, key_masked, details) VALUES ('alr', 'fake', 'info', 'k', 'k', '{}');
UPDATE txpipe.alert_counts SET counts = '{}';
RESET ROLE;
SET ROLE regress_alert_admin;
INSERT INTO txpipe.alerts (pipeline, rule, severity, key, key_masked, details) VALUES ('alr', 'fake', 'info', 'k', 'k', '{}');
DELETE FROM txpipe.alert_history;
-- nor acknowledges another role's alerts
SELECT txpipe.acknowledge_alert((SELECT min(alert_id) FROM txpipe.alerts WHERE pipeline = 'alr'));
RESET ROLE;

-- the pipeline's owner acknowledges; again, it was already
SELECT txpipe.acknowledge_alert(a.alert_id) AS acknowledged
  FROM txpipe.alerts a WHERE pipeline = 'alr' AND rule = 'fraud' AND key = '4111111111111111';
SELECT txpipe.acknowledge_alert(a.alert_id) AS acknowledged
  FROM txpipe.alerts a WHERE pipeline = 'alr' AND rule = 'fraud' AND key = '4111111111111111';
SELECT acknowledged_at IS NOT NULL AS acknowledged, acknowledged_by = current_user AS by_owner
  FROM txpipe.alerts WHERE pipeline = 'alr' AND rule = 'fraud' AND key = '4111111111111111';
SELECT txpipe.acknowledge_alert(-1);
SELECT pipeline, alerts, open_alerts FROM txpipe.stats WHERE pipeline = 'alr';

-- a changed rule counts afresh (the old counts stay under the old
-- definition); a window that raised already raises no more, and the
-- alerts stay
SELECT txpipe.create_pipeline('alr', alr_spec('[
	{"name": "velocity", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 2}]'), or_replace => true);
SELECT * FROM txpipe.ingest('alr', alr_burst('n', 4111111111111111, '2019-05-01 10:00', 3));
SELECT count(*) AS windows, sum(count) AS counted FROM txpipe.alert_windows w
 WHERE pipeline = 'alr' AND key = '4111111111111111' AND window_start = '2019-05-01 10:00:00+00';
SELECT rule, count(*) FROM txpipe.alerts WHERE pipeline = 'alr' GROUP BY rule ORDER BY rule;

-- replay: records the contract rejected raise their alert when replayed
-- after the contract is fixed
SELECT * FROM txpipe.ingest('alr', (SELECT string_agg(replace(alr_rec('p' || i, 6200000000000005, '2019-07-01 08:0' || i || ':00', 12.5),
															'"amt": 12.5', '"amt": "12.5"'), E'\n' ORDER BY i)
									  FROM generate_series(1, 3) i));
SELECT count(*) AS alerts FROM txpipe.alerts WHERE key = '6200000000000005';
SELECT txpipe.create_pipeline('alr', jsonb_set(alr_spec('[
	{"name": "velocity", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 2}]'),
	'{contract,numbersAsStrings}', 'true'), or_replace => true);
SELECT replayed, accepted FROM txpipe.replay_rejects('alr', 'type');
SELECT rule, record_key, details FROM alr_alerts WHERE key = '6200000000000005';

-- the cards template ships its rules
SELECT r->>'name' AS rule, r->>'kind' AS kind, r->>'severity' AS severity, r->>'window' AS window,
	   r->>'threshold' AS threshold, r->>'z' AS z, r->>'min_history' AS min_history, r->'mask_key' AS mask_key
  FROM txpipe.templates t, jsonb_array_elements(t.spec->'alerts') r WHERE t.name = 'cards';

-- one transaction of several batches over a card's values: each batch
-- takes the history as the one before left it, a savepoint rolled back
-- takes its values back out (and the lock on a key it read first), and the
-- histories are written when the transaction commits
SELECT txpipe.create_pipeline('alr', alr_spec('[
	{"name": "amount2", "kind": "outlier", "field": "amt", "key": "card", "min_history": 3, "z": 3}]'), or_replace => true);
BEGIN;
SELECT accepted FROM txpipe.ingest('alr', alr_rec('w1', 4343434343434343, '2019-08-01 10:00:00', 10) || E'\n' ||
										  alr_rec('w2', 4343434343434343, '2019-08-01 11:00:00', 12));
SAVEPOINT s;
SELECT accepted FROM txpipe.ingest('alr', alr_rec('w3', 4343434343434343, '2019-08-01 12:00:00', 500) || E'\n' ||
										  alr_rec('w4', 4444444444444448, '2019-08-01 12:00:00', 7));
ROLLBACK TO SAVEPOINT s;
SELECT accepted FROM txpipe.ingest('alr', alr_rec('w5', 4343434343434343, '2019-08-01 13:00:00', 11) || E'\n' ||
										  alr_rec('w6', 4444444444444448, '2019-08-01 13:00:00', 9));
SELECT accepted FROM txpipe.ingest('alr', alr_rec('w7', 4343434343434343, '2019-08-01 14:00:00', 60));
COMMIT;
SELECT key, n, mean, m2 FROM txpipe.alert_history WHERE pipeline = 'alr' AND rule = 'amount2' ORDER BY key;
SELECT rule, record_key, details FROM alr_alerts WHERE rule = 'amount2';

-- lateness: a record counts in its window until the window closed longer
-- than the rule's lateness (here 5 minutes) before the newest record of its
-- key; a later one does not count, and the windows no record can count in
-- any more are not kept
SELECT txpipe.create_pipeline('alr', alr_spec('[
	{"name": "late", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 2, "lateness": "5 minutes"}]'), or_replace => true);
SELECT accepted FROM txpipe.ingest('alr', alr_rec('l1', 4929000000000006, '2019-09-01 10:01:00', 5) || E'\n' ||
										  alr_rec('l2', 4929000000000006, '2019-09-01 10:02:00', 5) || E'\n' ||
										  alr_rec('l3', 4929000000000006, '2019-09-01 10:14:00', 5));
-- 10:14 is 4 minutes after 10:00-10:10 closed: a record of it still counts
SELECT accepted FROM txpipe.ingest('alr', alr_rec('l4', 4929000000000006, '2019-09-01 10:03:00', 5));
SELECT rule, record_key, window_utc, details FROM alr_alerts WHERE rule = 'late';
SELECT accepted FROM txpipe.ingest('alr', alr_rec('l5', 4929000000000006, '2019-09-01 10:16:00', 5) || E'\n' ||
										  alr_rec('l6', 4929000000000006, '2019-09-01 10:25:00', 5) || E'\n' ||
										  alr_rec('l7', 4929000000000006, '2019-09-01 10:26:00', 5));
-- 10:10-10:20 closed 6 minutes before 10:26: its records no longer count
SELECT accepted FROM txpipe.ingest('alr', alr_rec('l8', 4929000000000006, '2019-09-01 10:17:00', 5));
SELECT rule, record_key, window_utc, details FROM alr_alerts WHERE rule = 'late' ORDER BY window_utc;
SELECT key, window_start AT TIME ZONE 'UTC' AS window_utc, count FROM txpipe.alert_windows WHERE pipeline = 'alr' AND rule = 'late';
SELECT latest AT TIME ZONE 'UTC' AS latest_utc, since AT TIME ZONE 'UTC' AS since_utc FROM txpipe.alert_counts WHERE pipeline = 'alr' AND rule = 'late';
-- an event time far ahead of the clock counts for nothing (it would close
-- every window of its key)
SELECT accepted FROM txpipe.ingest('alr', alr_rec('l9', 4929000000000006, '2999-01-01 00:00:00', 5));
SELECT latest AT TIME ZONE 'UTC' AS latest_utc FROM txpipe.alert_counts WHERE pipeline = 'alr' AND rule = 'late';

-- baseline: all the pipeline's records per minute against the mean of the
-- 5 minutes before (empty minutes count 0), judged once there is a whole
-- history; raises above 3 times the mean and at least 4 records
SELECT txpipe.create_pipeline('alr', alr_spec('[
	{"name": "flood", "kind": "baseline", "window": "1 minute", "history": 5, "factor": 3, "min_count": 4}]'), or_replace => true);
-- 10:00 to 10:04, 2 a minute (not judged: their history starts before
-- 10:00, the first minute); 10:05 has 5, not above 3 x 2
SELECT accepted FROM txpipe.ingest('alr', (
	SELECT string_agg(alr_rec('fa' || m || '_' || i, 5105105105105100 + m, to_char('2019-10-01 10:00'::timestamp + m * interval '1 minute' + i * interval '5 seconds', 'YYYY-MM-DD HH24:MI:SS'), 5), E'\n' ORDER BY m, i)
	  FROM generate_series(0, 4) m, generate_series(1, 2) i));
SELECT accepted FROM txpipe.ingest('alr', (
	SELECT string_agg(alr_rec('fb' || i, 5105105105105199, to_char('2019-10-01 10:05'::timestamp + i * interval '5 seconds', 'YYYY-MM-DD HH24:MI:SS'), 5), E'\n' ORDER BY i)
	  FROM generate_series(1, 5) i));
SELECT count(*) AS alerts FROM txpipe.alerts WHERE pipeline = 'alr' AND rule = 'flood';
-- 10:06: the mean of 10:01-10:05 is 2.6; 7 records are not above 7.8, the 8th is
SELECT accepted FROM txpipe.ingest('alr', (
	SELECT string_agg(alr_rec('fc' || i, 5105105105105199, to_char('2019-10-01 10:06'::timestamp + i * interval '5 seconds', 'YYYY-MM-DD HH24:MI:SS'), 5), E'\n' ORDER BY i)
	  FROM generate_series(1, 7) i));
SELECT count(*) AS alerts FROM txpipe.alerts WHERE pipeline = 'alr' AND rule = 'flood';
SELECT accepted FROM txpipe.ingest('alr', (
	SELECT string_agg(alr_rec('fd' || i, 5105105105105199, to_char('2019-10-01 10:06:40'::timestamp + i * interval '1 second', 'YYYY-MM-DD HH24:MI:SS'), 5), E'\n' ORDER BY i)
	  FROM generate_series(1, 3) i));
SELECT rule, key, record_key, event_time_utc, window_utc, details FROM alr_alerts WHERE rule = 'flood';
-- 10:20 after a quiet 10:15-10:19: 4 records are above 3 x 0 and at least 4
SELECT accepted FROM txpipe.ingest('alr', (
	SELECT string_agg(alr_rec('fe' || i, 5105105105105199, to_char('2019-10-01 10:20'::timestamp + i * interval '5 seconds', 'YYYY-MM-DD HH24:MI:SS'), 5), E'\n' ORDER BY i)
	  FROM generate_series(1, 4) i));
SELECT rule, record_key, window_utc, details FROM alr_alerts WHERE rule = 'flood' ORDER BY window_utc;
-- the windows kept: the last 5 minutes' history and the lateness (1 hour by default)
SELECT key, count(*) AS windows, min(window_start) AT TIME ZONE 'UTC' AS oldest_utc FROM txpipe.alert_windows WHERE pipeline = 'alr' AND rule = 'flood' GROUP BY key;

-- a savepoint rolled back takes its counts back out of a rate rule's state
SELECT txpipe.create_pipeline('alr', alr_spec('[
	{"name": "vel3", "kind": "rate", "key": "card", "window": "10 minutes", "threshold": 3}]'), or_replace => true);
BEGIN;
SELECT accepted FROM txpipe.ingest('alr', alr_burst('sv', 6011111111111117, '2019-11-01 10:00', 2));
SAVEPOINT s;
SELECT accepted FROM txpipe.ingest('alr', alr_burst('tv', 6011111111111117, '2019-11-01 10:01', 2));
ROLLBACK TO SAVEPOINT s;
SELECT accepted FROM txpipe.ingest('alr', alr_burst('uv', 6011111111111117, '2019-11-01 10:02', 1));
COMMIT;
SELECT key, count FROM txpipe.alert_windows WHERE pipeline = 'alr' AND rule = 'vel3';
SELECT count(*) AS alerts FROM txpipe.alerts WHERE pipeline = 'alr' AND rule = 'vel3';

-- a flag rule's alert raised in a savepoint rolled back is raised again by
-- the next matching record of the transaction; one kept is not offered
-- again (the records sent by a writer that may only send to the pipeline)
SELECT txpipe.create_pipeline('alr', alr_spec('[
	{"name": "fr1", "kind": "flag", "when": {"field": "fraud", "equals": 1}, "key": "card", "window": "1 day"}]'), or_replace => true);
SELECT txpipe.grant_send('alr', 'regress_alert_writer');
BEGIN;
SET LOCAL ROLE regress_alert_writer;
SAVEPOINT s;
SELECT accepted FROM txpipe.ingest('alr', alr_rec('k1', 6222222222222228, '2019-12-01 10:00:00', 5, 1));
RESET ROLE;
SELECT count(*) AS alerts FROM txpipe.alerts WHERE pipeline = 'alr' AND rule = 'fr1';
ROLLBACK TO SAVEPOINT s;
SELECT current_user;
SELECT accepted FROM txpipe.ingest('alr', alr_rec('k2', 6222222222222228, '2019-12-01 11:00:00', 5, 1));
SELECT accepted FROM txpipe.ingest('alr', alr_rec('k3', 6222222222222228, '2019-12-01 12:00:00', 5, 1));
COMMIT;
SELECT rule, record_key FROM alr_alerts WHERE rule = 'fr1';

-- dropping the pipeline drops its alerts and their state, also in the
-- transaction that routed records
BEGIN;
SELECT accepted FROM txpipe.ingest('alr', alr_rec('w8', 4343434343434343, '2019-08-01 15:00:00', 12));
SELECT txpipe.drop_pipeline('alr');
COMMIT;
SELECT (SELECT count(*) FROM txpipe.alerts WHERE pipeline = 'alr') AS alerts,
	   (SELECT count(*) FROM txpipe.alert_counts WHERE pipeline = 'alr') AS counts,
	   (SELECT count(*) FROM txpipe.alert_history WHERE pipeline = 'alr') AS history;

DROP SCHEMA alr CASCADE;
DROP FUNCTION alr_spec(jsonb), alr_rec(text, bigint, text, numeric, int), alr_burst(text, bigint, timestamp, int, int);
TRUNCATE txpipe.rejects;
DROP ROLE regress_alert_reader, regress_alert_writer, regress_alert_admin;
