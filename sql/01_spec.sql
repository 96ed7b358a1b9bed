\set SHOW_CONTEXT never
-- Pipeline specs: creation, errors that name the spec path, templates.
\set VERBOSITY default
CREATE SCHEMA spec_t;
CREATE TABLE spec_t.customer (customer_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email text NOT NULL UNIQUE, name text);
CREATE TABLE spec_t.orders (order_id text PRIMARY KEY, customer_id bigint REFERENCES spec_t.customer,
	qty integer NOT NULL CHECK (qty > 0), note text);

-- a valid spec
SELECT txpipe.create_pipeline('orders', '{
  "schema": "spec_t",
  "contract": {"type": "object", "required": ["id", "qty"],
               "properties": {"id": {"type": "string"}, "qty": {"type": "integer"},
                              "email": {"type": "string"}, "name": {"type": "string"},
                              "note": {"type": ["string", "null"]}},
               "additionalProperties": false},
  "idempotency_key": "id",
  "routes": [
    {"table": "customer", "key": {"email": "email"}, "columns": {"name": "name"}, "id": "customer_id"},
    {"table": "orders", "columns": {"order_id": "id", "customer_id": "@customer", "qty": "qty", "note": "note"}}
  ]}');
SELECT name, version FROM txpipe.pipelines;
SELECT relname FROM pg_class WHERE relnamespace = 'txpipe_in'::regnamespace;

-- redefining needs or_replace
SELECT txpipe.create_pipeline('orders', (SELECT spec FROM txpipe.pipelines WHERE name = 'orders'));
SELECT txpipe.create_pipeline('orders', (SELECT spec FROM txpipe.pipelines WHERE name = 'orders'), or_replace => true);
SELECT name, version FROM txpipe.pipelines;

-- names
SELECT txpipe.create_pipeline('Bad Name', '{"routes": []}');
SELECT txpipe.create_pipeline('x', '[]');

-- spec errors point at the spec path
SELECT txpipe.create_pipeline('x', '{"routes": []}');
SELECT txpipe.create_pipeline('x', '{"routes": [{"table": "spec_t.nope", "columns": {"a": "a"}}]}');
SELECT txpipe.create_pipeline('x', '{"routes": [{"table": "spec_t.orders", "columns": {"nope": "a"}}]}');
SELECT txpipe.create_pipeline('x', '{"routes": [{"table": "spec_t.orders", "colums": {"qty": "a"}}]}');
SELECT txpipe.create_pipeline('x', '{"routes": [{"table": "spec_t.customer", "key": {"name": "n"}, "id": "customer_id"}]}');
SELECT txpipe.create_pipeline('x', '{"routes": [{"table": "spec_t.customer", "key": {"email": "e"}}]}');
SELECT txpipe.create_pipeline('x', '{"routes": [{"table": "spec_t.orders", "columns": {"order_id": "@customer"}}]}');
SELECT txpipe.create_pipeline('x', '{"contract": {"properties": {"a": {"type": "text"}}}, "routes": [{"table": "spec_t.orders", "columns": {"order_id": "a"}}]}');
SELECT txpipe.create_pipeline('x', '{"contract": {"properties": {"a": {"pattern": "(("}}}, "routes": [{"table": "spec_t.orders", "columns": {"order_id": "a"}}]}');
SELECT txpipe.create_pipeline('x', '{"contract": {"properties": {"a": {"format": "email"}}}, "routes": [{"table": "spec_t.orders", "columns": {"order_id": "a"}}]}');
SELECT txpipe.create_pipeline('x', '{"contract": {"properties": {"a": {"maxLength": -1}}}, "routes": [{"table": "spec_t.orders", "columns": {"order_id": "a"}}]}');
SELECT txpipe.create_pipeline('x', '{"contract": {"additionalProperties": false, "properties": {"a": {}}}, "routes": [{"table": "spec_t.orders", "columns": {"order_id": "b"}}]}');
SELECT txpipe.create_pipeline('x', '{"idempotency_key": "k", "routes": [{"table": "spec_t.orders", "columns": {"qty": "k"}}]}');
SELECT txpipe.create_pipeline('x', '{"idempotency_key": "k", "routes": [{"table": "spec_t.orders", "columns": {"order_id": "k"}, "when": {"field": "k", "exists": true}}]}');
SELECT txpipe.create_pipeline('x', '{"routes": [{"table": "spec_t.orders", "columns": {"order_id": "a"}, "when": {"field": "k"}}]}');
SELECT txpipe.create_pipeline('x', '{"routes": [{"table": "spec_t.orders", "columns": {"order_id": {"lpad": 3}}}]}');
SELECT txpipe.create_pipeline('x', '{"routs": []}');

-- drop
SELECT txpipe.drop_pipeline('nope');
SELECT txpipe.create_pipeline('tmp', '{"routes": [{"table": "spec_t.orders", "columns": {"order_id": "a"}}]}');
SELECT txpipe.drop_pipeline('tmp');
SELECT count(*) FROM pg_class WHERE relnamespace = 'txpipe_in'::regnamespace AND relname = 'tmp';

-- templates: idempotent, unknown ones listed
SELECT txpipe.install_template('cards');
SELECT txpipe.install_template('cards');
SELECT count(*) FROM pg_tables WHERE schemaname = 'cards';
SELECT txpipe.install_template('nope');
SELECT txpipe.install_template('cards', 'cards2');
SELECT name, spec->>'schema' AS schema FROM txpipe.pipelines ORDER BY name;

-- an unknown pipeline
SELECT * FROM txpipe.ingest('nope', '{}');
