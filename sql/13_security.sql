\set SHOW_CONTEXT never
-- Each path tried as the least privileged role that reaches it: writers,
-- admins and table owners never act with rights they do not hold.
\set VERBOSITY terse
CREATE SCHEMA sec;
CREATE TABLE sec.item (id text PRIMARY KEY, n integer);
SELECT txpipe.create_pipeline('sec_items', '{
  "contract": {"required": ["id"], "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}},
  "idempotency_key": "id",
  "routes": [{"table": "sec.item", "columns": {"id": "id", "n": "n"}}]}');
CREATE TABLE public.pwned (who name, sess name);
GRANT INSERT ON public.pwned TO PUBLIC;
CREATE ROLE sec_writer LOGIN IN ROLE txpipe_writer;
CREATE ROLE sec_admin LOGIN IN ROLE txpipe_admin;
CREATE ROLE sec_other LOGIN;
GRANT USAGE ON SCHEMA sec TO sec_writer, sec_admin;
SELECT txpipe.grant_send('sec_items', 'sec_writer');

-- a writer with only TEMP shadows types and functions in pg_temp, and one
-- with a schema of its own puts it first in search_path: routing resolves
-- no name through either
SET ROLE sec_writer;
CREATE FUNCTION pg_temp.evil(text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.pwned VALUES (current_user, session_user); RETURN true; END $$;
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
CREATE FUNCTION pg_temp.unnest(text[]) RETURNS SETOF text LANGUAGE sql AS $$ SELECT 'x' WHERE pg_temp.evil('x') $$;
SET search_path = pg_temp, public;
SELECT * FROM txpipe.ingest('sec_items', '{"id": "t1", "n": 1}');
COPY txpipe_in.sec_items FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"id": "t2", "n": 2}
\.
SELECT txpipe.enqueue('sec_items', '{"id": "t3", "n": 3}');
RESET search_path;
-- a writer reads nothing routed and writes no catalog
SELECT count(*) FROM sec.item;
SELECT count(*) FROM txpipe.rejects;
INSERT INTO txpipe.inbox (pipeline, class, source, doc) VALUES ('sec_items', 0, 'queue', '{}');
SELECT txpipe.drain('sec_items');
RESET ROLE;
SELECT txpipe.drain('sec_items');
SELECT id, n FROM sec.item ORDER BY id;
SELECT who, sess FROM public.pwned;
-- (plain SQL of this session would now use them: gone)
SET client_min_messages = warning;
DROP DOMAIN pg_temp.text CASCADE;
DROP FUNCTION pg_temp.evil(pg_catalog.text);
RESET client_min_messages;

-- a role without the grant sends nothing
SET ROLE sec_other;
SELECT * FROM txpipe.ingest('sec_items', '{"id": "o1"}');
SELECT txpipe.enqueue('sec_items', '{"id": "o1"}');
RESET ROLE;

-- txpipe_admin: no direct writes to the catalog, no COPY target of its own
SET ROLE sec_admin;
UPDATE txpipe.pipelines SET owner = 'postgres' WHERE name = 'sec_items';
UPDATE txpipe.templates SET ddl = 'SELECT 1';
INSERT INTO txpipe.pipelines (name, spec) VALUES ('forged', '{}');
CREATE TABLE txpipe_in.forged (doc text);
RESET ROLE;
-- nor does create_pipeline adopt a COPY target it did not make, even a superuser's
CREATE TABLE txpipe_in.sec_forged (doc text);
SELECT txpipe.create_pipeline('sec_forged', '{"routes": [{"table": "sec.item", "columns": {"id": "id"}}]}');
DROP TABLE txpipe_in.sec_forged;
SET ROLE sec_admin;
-- nor changes another role's pipeline
SELECT txpipe.create_pipeline('sec_items', '{"routes": [{"table": "sec.item", "columns": {"id": "id"}}]}', or_replace => true);
SELECT txpipe.drop_pipeline('sec_items');
SELECT txpipe.grant_send('sec_items', 'sec_admin');
SELECT * FROM txpipe.refresh('sec_items');
SELECT txpipe.drain('sec_items');
-- the operations functions write txpipe's table as its owner
SELECT txpipe.stop_worker() >= 0 AS stopped;
SELECT enabled FROM txpipe.worker_state;
UPDATE txpipe.worker_state SET enabled = true;
RESET ROLE;

-- a superuser's pipeline never routes into an ordinary role's table (its
-- triggers, defaults and checks would run as superuser), nor calls an
-- ordinary role's refresh function
CREATE SCHEMA sec_o AUTHORIZATION sec_other;
SET ROLE sec_other;
CREATE FUNCTION sec_o.evil() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO public.pwned VALUES (current_user, session_user); RETURN NEW; END $$;
CREATE TABLE sec_o.t (id text PRIMARY KEY, tid bigint GENERATED ALWAYS AS IDENTITY);
CREATE TRIGGER evil BEFORE INSERT ON sec_o.t FOR EACH ROW EXECUTE FUNCTION sec_o.evil();
GRANT ALL ON SCHEMA sec_o TO PUBLIC;
GRANT ALL ON sec_o.t TO PUBLIC;
CREATE FUNCTION sec_o.refresh_star(lo bigint, hi bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
RESET ROLE;
SELECT txpipe.create_pipeline('sec_foreign', '{"idempotency_key": "id",
  "routes": [{"table": "sec_o.t", "columns": {"id": "id"}}]}');
CREATE TABLE sec.mine (id text PRIMARY KEY, tid bigint GENERATED ALWAYS AS IDENTITY);
SELECT txpipe.create_pipeline('sec_foreign', '{"idempotency_key": "id",
  "routes": [{"table": "sec.mine", "columns": {"id": "id"}}],
  "refresh": {"function": "sec_o.refresh_star", "watermark": "tid"}}');
-- a table given away after the pipeline was made stops its routing
SELECT txpipe.create_pipeline('sec_moved', '{"idempotency_key": "id",
  "routes": [{"table": "sec.mine", "columns": {"id": "id"}}]}');
ALTER TABLE sec.mine OWNER TO sec_other;
SELECT * FROM txpipe.ingest('sec_moved', '{"id": "m1"}');
ALTER TABLE sec.mine OWNER TO CURRENT_USER;
SELECT * FROM txpipe.ingest('sec_moved', '{"id": "m1"}');
SELECT who, sess FROM public.pwned;

-- install_template adopts no schema another role made, nor its objects
CREATE SCHEMA sec_squat AUTHORIZATION sec_other;
SELECT txpipe.install_template('cards', 'sec_squat');
CREATE SCHEMA sec_mixed;
CREATE FUNCTION sec_mixed.refresh_star(bigint, bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;
ALTER FUNCTION sec_mixed.refresh_star(bigint, bigint) OWNER TO sec_other;
SELECT txpipe.install_template('cards', 'sec_mixed');
SELECT count(*) FROM txpipe.pipelines WHERE name IN ('sec_squat', 'sec_mixed');

-- an admin's own pipeline is its own: it routes and refreshes as the admin
DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO sec_admin', current_database()); END $$;
SET ROLE sec_admin;
SELECT txpipe.install_template('cards', 'sec_admins');
SELECT owner FROM txpipe.pipelines WHERE name = 'sec_admins';
SELECT txpipe.grant_send('sec_admins', 'sec_writer');
SELECT status FROM txpipe.refresh('sec_admins');
RESET ROLE;
SELECT status FROM txpipe.refresh('sec_admins');
DO $$ BEGIN EXECUTE format('REVOKE CREATE ON DATABASE %I FROM sec_admin', current_database()); END $$;

DROP SCHEMA sec_admins CASCADE;
SELECT txpipe.drop_pipeline(name) FROM txpipe.pipelines WHERE name LIKE 'sec\_%' ORDER BY name;
DROP SCHEMA sec, sec_o, sec_squat, sec_mixed CASCADE;
DROP TABLE public.pwned;
DROP OWNED BY sec_writer, sec_admin, sec_other;
DROP ROLE sec_writer, sec_admin, sec_other;
