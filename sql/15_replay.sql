\set SHOW_CONTEXT never
-- Rejects re-run through a fixed contract: each lands once, is marked, and
-- is never replayed again; one still failing gets its new reason.
\set VERBOSITY terse
-- the pipeline's owner: an admin like another, owning its tables
CREATE ROLE rp_owner LOGIN IN ROLE txpipe_admin;
CREATE ROLE rp_admin LOGIN IN ROLE txpipe_admin;
CREATE SCHEMA rp AUTHORIZATION rp_owner;
SET ROLE rp_owner;
CREATE TABLE rp.item (id text PRIMARY KEY, n integer, note text);
SELECT txpipe.create_pipeline('rp_items', '{
  "contract": {"required": ["id"], "additionalProperties": false,
               "properties": {"id": {"type": "string"}, "n": {"type": "integer", "maximum": 100}}},
  "idempotency_key": "id",
  "routes": [{"table": "rp.item", "columns": {"id": "id", "n": "n"}}]}');
SELECT * FROM txpipe.ingest('rp_items', '{"id": "a", "n": 1, "note": "x"}
{"id": "b", "n": 2, "note": "y"}
{"id": "c", "n": 500, "note": "z"}
{"id": "d", "n": "x", "extra": 1}
{"n": 1, "note": "q"}
{"id": "a", "n": 1, "note": "x"}
{"id": "e", "n": 5}
{"id": "e", "n": 5, "note": "w"}
{"id": "g", "n": 7, "note": 12}');
SELECT * FROM txpipe.ingest_raw('rp_items', '\x7b226964223a2266ff227d'::bytea);
RESET ROLE;
SET txpipe.max_record_size = 64;
SET ROLE rp_owner;
SELECT * FROM txpipe.ingest('rp_items', '{"id": "long", "note": "a record that is longer than the sixty-four bytes allowed here"}');
RESET ROLE;
RESET txpipe.max_record_size;

-- every error of a record, the first as error_code, error_path, message
SELECT payload, count, error_code, error_path, errors
  FROM txpipe.rejects WHERE pipeline = 'rp_items' ORDER BY reject_id;

-- the contract now takes the note; replays in batches of two
SET txpipe.batch_size = 2;
SET ROLE rp_owner;
SELECT txpipe.create_pipeline('rp_items', '{
  "contract": {"required": ["id"], "additionalProperties": false,
               "properties": {"id": {"type": "string"}, "n": {"type": "integer", "maximum": 100},
                              "note": {"type": "string"}}},
  "idempotency_key": "id",
  "routes": [{"table": "rp.item", "columns": {"id": "id", "n": "n", "note": "note"}}]}', or_replace => true);

-- only the pipeline's owner (a member of it, a superuser) replays
SET ROLE rp_admin;
SELECT * FROM txpipe.replay_rejects('rp_items');
SET ROLE rp_owner;
SELECT * FROM txpipe.replay_rejects('nope');

-- filters that match nothing replay nothing
SELECT * FROM txpipe.replay_rejects('rp_items', source => 'copy');
SELECT * FROM txpipe.replay_rejects('rp_items', since => now() + interval '1 day');
SELECT * FROM txpipe.replay_rejects('rp_items', until => now() - interval '1 day');
-- one code: the record without an id fails again, with its new reason
SELECT * FROM txpipe.replay_rejects('rp_items', error_code => 'required');
SELECT payload, source, error_code, error_path, replayed_at IS NOT NULL AS replayed, replay_outcome
  FROM txpipe.rejects WHERE pipeline = 'rp_items' AND payload LIKE '{"n": 1%' ORDER BY reject_id;
-- the rest (the too_large one is skipped, not replayed)
SELECT * FROM txpipe.replay_rejects('rp_items');
SELECT * FROM rp.item ORDER BY id;
SELECT payload, source, error_code, error_path, message, replay_outcome
  FROM txpipe.rejects WHERE pipeline = 'rp_items' ORDER BY reject_id;
-- the one rejected for the note before is now rejected for its type
SELECT source, error_code, error_path, errors FROM txpipe.rejects
 WHERE pipeline = 'rp_items' AND payload LIKE '{"id": "g"%' ORDER BY reject_id;
-- nothing is replayed twice: only the rejects the replays stored are left
SELECT * FROM txpipe.replay_rejects('rp_items', source => 'ingest');
-- (a reject a replay stored is a reject of its own, replayed once too)
SELECT * FROM txpipe.replay_rejects('rp_items', source => 'replay');
SELECT count(*) FROM rp.item;
-- a replay's batches are logged with source replay, in batches of txpipe.batch_size
SELECT count(*) AS batches, max(received) AS largest, sum(received) AS received, sum(accepted) AS accepted,
       sum(rejected) AS rejected, sum(duplicates) AS duplicates
  FROM txpipe.batches WHERE pipeline = 'rp_items' AND source = 'replay';

SELECT txpipe.drop_pipeline('rp_items');
RESET ROLE;
RESET txpipe.batch_size;
DROP SCHEMA rp CASCADE;
DELETE FROM txpipe.rejects WHERE pipeline = 'rp_items';
DELETE FROM txpipe.batches WHERE pipeline = 'rp_items';
DROP ROLE rp_admin, rp_owner;
