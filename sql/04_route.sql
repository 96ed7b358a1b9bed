\set SHOW_CONTEXT never
-- Routing: lookups, idempotency, conditional routes, and rows the
-- database refuses isolated while their batch lands.
TRUNCATE txpipe.rejects, txpipe.batches;
CREATE SCHEMA shop;
CREATE TABLE shop.customer (customer_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	email text NOT NULL UNIQUE, name text);
CREATE TABLE shop.orders (order_id text PRIMARY KEY, customer_id bigint REFERENCES shop.customer,
	qty integer NOT NULL CHECK (qty > 0), code text, placed date);
CREATE TABLE shop.returns (order_id text PRIMARY KEY REFERENCES shop.orders, qty integer);
SELECT txpipe.create_pipeline('shop_orders', '{
  "schema": "shop",
  "idempotency_key": "id",
  "routes": [
    {"table": "customer", "key": {"email": "email"}, "columns": {"name": "name"}, "id": "customer_id"},
    {"table": "orders", "columns": {"order_id": "id", "customer_id": "@customer", "qty": "qty",
                                    "code": {"field": "code", "lpad": 5}, "placed": "day"}},
    {"name": "return", "table": "returns", "columns": {"order_id": "id", "qty": "qty"},
     "when": {"field": "id", "pattern": "^R"}}
  ]}');

-- lookups create each customer once; a guest order (no email) has no customer
SELECT * FROM txpipe.ingest('shop_orders', concat_ws(E'\n',
	'{"id": "o1", "email": "ann@example.com", "name": "Ann", "qty": 1, "code": 42}',
	'{"id": "o2", "email": "bob@example.com", "name": "Bob", "qty": 2, "code": "7"}',
	'{"id": "o3", "email": "ann@example.com", "name": "Ann", "qty": 3}',
	'{"id": "o4", "qty": 4}'));
SELECT order_id, c.email, qty, code FROM shop.orders o LEFT JOIN shop.customer c USING (customer_id) ORDER BY order_id;

-- re-sent records are duplicates, within a batch and across batches
SELECT * FROM txpipe.ingest('shop_orders', concat_ws(E'\n',
	'{"id": "o1", "email": "ann@example.com", "name": "Ann", "qty": 1, "code": 42}',
	'{"id": "o5", "email": "cy@example.com", "qty": 5}',
	'{"id": "o5", "email": "cy@example.com", "qty": 5}'));
SELECT count(*) AS orders, (SELECT count(*) FROM shop.customer) AS customers FROM shop.orders;

-- the database refuses qty 0 (CHECK), an int overflow and a bad date; the
-- rest of the batch lands, even with a small batch split many times
SET txpipe.batch_size = 7;
SELECT * FROM txpipe.ingest('shop_orders', (
	SELECT string_agg(CASE
		WHEN i = 3 THEN format('{"id": "b%s", "qty": 0}', i)
		WHEN i = 11 THEN format('{"id": "b%s", "qty": 99999999999}', i)
		WHEN i = 12 THEN format('{"id": "b%s", "qty": 1, "day": "2019-02-30"}', i)
		ELSE format('{"id": "b%s", "email": "c%s@example.com", "qty": %s}', i, i % 4, i) END, E'\n' ORDER BY i)
	FROM generate_series(1, 20) i));
RESET txpipe.batch_size;
SELECT error_code, sqlstate, error_path, message, payload FROM txpipe.rejects ORDER BY reject_id;
SELECT count(*) AS routed FROM shop.orders WHERE order_id LIKE 'b%';
SELECT count(*) AS customers FROM shop.customer;

-- conditional route: returns only for ids starting with R
SELECT * FROM txpipe.ingest('shop_orders', E'{"id": "R1", "qty": 1}\n{"id": "o9", "qty": 1}');
SELECT * FROM shop.returns;

-- a record is routed whole or not at all: the return refused (qty 0 is
-- fine for returns but the order's CHECK fails), nothing of it is kept
SELECT * FROM txpipe.ingest('shop_orders', '{"id": "R2", "qty": 0, "email": "new@example.com"}');
SELECT count(*) FROM shop.orders WHERE order_id = 'R2';
SELECT count(*) FROM shop.customer WHERE email = 'new@example.com';

-- key caches survive a rolled-back transaction without pointing at lost rows
BEGIN;
SELECT * FROM txpipe.ingest('shop_orders', '{"id": "t1", "email": "rolled@example.com", "qty": 1}');
ROLLBACK;
SELECT * FROM txpipe.ingest('shop_orders', '{"id": "t2", "email": "rolled@example.com", "qty": 1}');
SELECT o.order_id, c.email FROM shop.orders o JOIN shop.customer c USING (customer_id) WHERE order_id IN ('t1', 't2');

-- and after the dimension row is deleted behind the cache's back
DELETE FROM shop.orders WHERE order_id = 't2';
DELETE FROM shop.customer WHERE email = 'rolled@example.com';
SELECT * FROM txpipe.ingest('shop_orders', '{"id": "t3", "email": "rolled@example.com", "qty": 1}');
SELECT o.order_id, c.email FROM shop.orders o JOIN shop.customer c USING (customer_id) WHERE order_id = 't3';

-- counters
SELECT pipeline, received, accepted, rejected, duplicates FROM txpipe.stats WHERE pipeline = 'shop_orders';
SELECT source, count(*) FROM txpipe.rejects GROUP BY source;
