\set SHOW_CONTEXT never
-- The contract's opt-ins: numbers written as strings (numbersAsStrings), ""
-- as an absent field (emptyIsAbsent), and top-level fields dropped by name
-- (ignore), per pipeline or per field; off unless the spec says so.
TRUNCATE txpipe.rejects;
CREATE SCHEMA o;
CREATE TABLE o.ev (
	event_id	text PRIMARY KEY,
	event_type	text,
	price		numeric,
	product_id	bigint,
	category_id bigint,
	category_num numeric,
	category_code text,
	brand		text,
	user_session text
);
CREATE TABLE o.ev_parser (LIKE o.ev INCLUDING ALL);

-- the clickstream simulator's record: every field a string, "" for a
-- missing brand, category_code or session, and its txn_timestamp
CREATE TEMP TABLE sim (i int, rec text);
INSERT INTO sim VALUES
 (1, '{"event_id": "e1", "event_type": "view", "price": "35.79", "product_id": "44600062", "category_id": "2103807459595387724", "category_num": "2103807459595387724", "category_code": "", "brand": "shiseido", "user_session": "4d3b30da-a5e4-49df-b1a8-ba5943f1dd33", "txn_timestamp": "2023-03-05T10:11:12.123456"}'),
 (2, '{"event_id": "e2", "event_type": "view", "price": "0", "product_id": "3900821.0", "category_id": "2053013552326770905", "category_num": "2.0530135e18", "category_code": "appliances.environment.water_heater", "brand": "", "user_session": "", "txn_timestamp": "2023-03-05T10:11:13.000001"}'),
 (3, '{"event_id": "e3", "event_type": "cart", "price": 130.76, "product_id": 1004856, "category_id": 2053013555631882655, "category_num": "\u0032\u0030\u0035", "brand": "samsung", "Unnamed: 0": "3"}'),
 (4, '{"event_id": "e4", "event_type": "view", "price": "35,79", "product_id": " 44600062", "category_id": "4.5", "brand": "x"}'),
 (5, '{"event_id": "e5", "event_type": "view", "price": "-0.01", "product_id": "+1", "category_id": "0x10", "category_num": "", "brand": "a b"}'),
 (6, '{"event_id": "", "event_type": "", "price": "1e2", "product_id": "1e2", "category_id": "12", "brand": "", "extra": ""}'),
 (7, '{"event_id": "e7", "event_type": "view", "price": "NaN", "product_id": "", "category_id": "01", "brand": null}');

-- without opt-ins (as every pipeline so far) these records are refused
SELECT txpipe.create_pipeline('strict', $spec$
{
  "schema": "o",
  "contract": {
    "required": ["event_id", "event_type"],
    "additionalProperties": false,
    "properties": {
      "event_id": {"type": "string", "minLength": 1},
      "event_type": {"type": "string", "enum": ["view", "cart"]},
      "price": {"type": "number", "minimum": 0},
      "product_id": {"type": "integer"},
      "category_id": {"type": "integer"},
      "category_num": {"type": "integer"},
      "category_code": {"type": ["string", "null"], "pattern": "^[a-z_]+(\\.[a-z_]+)*$"},
      "brand": {"type": ["string", "null"], "pattern": "^[a-z0-9]+$"},
      "user_session": {"type": ["string", "null"], "pattern": "^[0-9a-f-]{36}$"}
    }
  },
  "idempotency_key": "event_id",
  "routes": [{"table": "ev", "columns": {"event_id": "event_id", "event_type": "event_type",
    "price": "price", "product_id": "product_id", "category_id": "category_id",
    "category_num": "category_num", "category_code": "category_code", "brand": "brand",
    "user_session": "user_session"}}]
}
$spec$::jsonb);
SELECT i, v.* FROM sim, txpipe.validate('strict', rec) v WHERE i <= 2 ORDER BY i, v.error_path;

-- the same contract with the opt-ins for the whole pipeline
SELECT txpipe.create_pipeline('sim', $spec$
{
  "schema": "o",
  "contract": {
    "required": ["event_id", "event_type"],
    "additionalProperties": false,
    "numbersAsStrings": true,
    "emptyIsAbsent": true,
    "ignore": ["txn_timestamp", "Unnamed: 0"],
    "properties": {
      "event_id": {"type": "string", "minLength": 1},
      "event_type": {"type": "string", "enum": ["view", "cart"]},
      "price": {"type": "number", "minimum": 0},
      "product_id": {"type": "integer"},
      "category_id": {"type": "integer"},
      "category_num": {"type": "integer"},
      "category_code": {"type": ["string", "null"], "pattern": "^[a-z_]+(\\.[a-z_]+)*$"},
      "brand": {"type": ["string", "null"], "pattern": "^[a-z0-9]+$"},
      "user_session": {"type": ["string", "null"], "pattern": "^[0-9a-f-]{36}$"}
    }
  },
  "idempotency_key": "event_id",
  "routes": [{"table": "ev", "columns": {"event_id": "event_id", "event_type": "event_type",
    "price": "price", "product_id": "product_id", "category_id": "category_id",
    "category_num": "category_num", "category_code": "category_code", "brand": "brand",
    "user_session": "user_session"}}]
}
$spec$::jsonb);
SELECT i, v.* FROM sim, txpipe.validate('sim', rec) v ORDER BY i, v.error_path;
CREATE TEMP TABLE flat_errors AS SELECT i, v.* FROM sim, txpipe.validate('sim', rec) v;

-- sent by a role that may only send
SELECT string_agg(rec, E'\n' ORDER BY i) AS records FROM sim \gset
CREATE ROLE optin_sender;
GRANT txpipe_writer TO optin_sender;
SELECT txpipe.grant_send('sim', 'optin_sender');
SET ROLE optin_sender;
SELECT * FROM txpipe.ingest('sim', :'records');
-- a second send adds nothing
SELECT * FROM txpipe.ingest('sim', :'records');
RESET ROLE;
SELECT error_code, error_path, message FROM txpipe.rejects WHERE pipeline = 'sim' ORDER BY reject_id;
-- exactly as written: a 19-digit id into bigint and numeric, 3900821.0 as
-- 3900821, 2.0530135e18 in integer form, "" as NULL
\pset null '(null)'
SELECT * FROM o.ev ORDER BY event_id;
SELECT category_id = 2103807459595387724 AS bigint_exact,
	category_num = 2103807459595387724::numeric AS numeric_exact
  FROM o.ev WHERE event_id = 'e1';

-- PostgreSQL's parser gives the same answers as the flat scanner
SELECT txpipe.create_pipeline('sim_parser',
	jsonb_set((SELECT spec FROM txpipe.pipelines WHERE name = 'sim'),
			  '{routes,0,table}', '"ev_parser"'));
SET txpipe.flat_decoder = off;
CREATE TEMP TABLE parser_errors AS SELECT i, v.* FROM sim, txpipe.validate('sim', rec) v;
SELECT * FROM txpipe.ingest('sim_parser', :'records');
RESET txpipe.flat_decoder;
SELECT (SELECT count(*) FROM (TABLE flat_errors EXCEPT ALL TABLE parser_errors) a) AS only_flat,
	(SELECT count(*) FROM (TABLE parser_errors EXCEPT ALL TABLE flat_errors) b) AS only_parser,
	(SELECT count(*) FROM flat_errors) AS errors;
SELECT (SELECT count(*) FROM (TABLE o.ev EXCEPT ALL TABLE o.ev_parser) a) AS only_flat,
	(SELECT count(*) FROM (TABLE o.ev_parser EXCEPT ALL TABLE o.ev) b) AS only_parser,
	(SELECT count(*) FROM o.ev_parser) AS rows;
SELECT (SELECT array_agg(error_code || ' ' || error_path ORDER BY reject_id) FROM txpipe.rejects WHERE pipeline = 'sim')
	IS NOT DISTINCT FROM
	(SELECT array_agg(error_code || ' ' || error_path ORDER BY reject_id) FROM txpipe.rejects WHERE pipeline = 'sim_parser')
	AS same_rejects;

-- per field: numbers as strings for price only (product_id "5" stays a type
-- error); "" as absent for the whole pipeline (required still applies)
-- except user_session, which opts out
TRUNCATE o.ev;
SELECT txpipe.create_pipeline('fields', $spec$
{
  "schema": "o",
  "contract": {
    "required": ["event_id", "brand"],
    "emptyIsAbsent": true,
    "properties": {
      "event_id": {"type": "string"},
      "price": {"type": "number", "numbersAsStrings": true, "maximum": 1000},
      "product_id": {"type": "integer"},
      "brand": {"type": "string"},
      "user_session": {"type": "string", "pattern": "^.+$", "emptyIsAbsent": false}
    }
  },
  "idempotency_key": "event_id",
  "routes": [{"table": "ev", "columns": {"event_id": "event_id", "price": "price",
    "product_id": "product_id", "brand": "brand", "user_session": "user_session"}}]
}
$spec$::jsonb);
SELECT * FROM txpipe.validate('fields', '{"event_id": "f1", "price": "999.99", "product_id": 5, "brand": "b"}');
SELECT * FROM txpipe.validate('fields', '{"event_id": "f2", "price": "1000.01", "product_id": "5", "brand": "", "user_session": ""}');
-- additionalProperties is true here: an unknown field still passes
SELECT * FROM txpipe.validate('fields', '{"event_id": "f3", "price": "1", "brand": "b", "txn_timestamp": "x"}');
SELECT txpipe.grant_send('fields', 'optin_sender');
SET ROLE optin_sender;
SELECT * FROM txpipe.ingest('fields', concat_ws(E'\n',
	'{"event_id": "f1", "price": "999.99", "product_id": 5, "brand": "b", "user_session": "s"}',
	'{"event_id": "f2", "price": "12", "brand": ""}',
	'{"event_id": "f3", "price": "12", "brand": "b", "user_session": ""}'));
RESET ROLE;
SELECT error_code, error_path, message FROM txpipe.rejects WHERE pipeline = 'fields' ORDER BY reject_id;
SELECT event_id, price, product_id, brand, user_session FROM o.ev ORDER BY event_id;

-- COPY into txpipe_in takes the simulator's lines the same way
TRUNCATE o.ev;
SET ROLE optin_sender;
COPY txpipe_in.sim FROM STDIN WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');
{"event_id": "c1", "event_type": "view", "price": "35.79", "product_id": "44600062", "category_id": "2103807459595387724", "category_code": "", "brand": "", "user_session": "", "txn_timestamp": "2023-03-05T10:11:12.123456"}
{"event_id": "c2", "event_type": "view", "price": "35.79", "product_id": "446OOO62", "txn_timestamp": "2023-03-05T10:11:12.123456"}
\.
RESET ROLE;
SELECT * FROM o.ev ORDER BY event_id;
SELECT error_code, error_path, message FROM txpipe.rejects WHERE payload LIKE '%"c2"%';

-- the contract's numbersAsStrings skips a field that may be a string, and a
-- field may opt out of it
SELECT txpipe.create_pipeline('optout', $spec$
{
  "schema": "o",
  "contract": {
    "numbersAsStrings": true,
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer", "numbersAsStrings": false},
      "c": {"type": ["integer", "string"], "maxLength": 1}}
  },
  "routes": [{"table": "ev", "columns": {"event_id": "c"}}]
}
$spec$::jsonb);
SELECT * FROM txpipe.validate('optout', '{"a": "1", "b": "2", "c": "30"}');
SELECT * FROM txpipe.validate('optout', '{"a": 1, "b": 2, "c": 30}');

-- ignore alone: the named fields pass additionalProperties false, others do not
SELECT txpipe.create_pipeline('ign', $spec$
{
  "schema": "o",
  "contract": {
    "additionalProperties": false,
    "ignore": ["Unnamed: 0"],
    "properties": {"event_id": {"type": "string"}, "price": {"type": "number"}}
  },
  "idempotency_key": "event_id",
  "routes": [{"table": "ev", "columns": {"event_id": "event_id", "price": "price"}}]
}
$spec$::jsonb);
SELECT * FROM txpipe.validate('ign', '{"Unnamed: 0": 0, "event_id": "g1", "price": 1.5}');
SELECT * FROM txpipe.validate('ign', '{"Unnamed: 0": 0, "event_id": "g1", "price": "1.5", "Unnamed: 1": 1}');

-- bad uses, each at its path
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"properties": {"event_id": {"type": "string", "numbersAsStrings": true}}},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"properties": {"event_id": {"type": ["number", "string"], "numbersAsStrings": true}}},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"properties": {"event_id": {"numbersAsStrings": true}}},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"numbersAsStrings": "yes"},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"properties": {"brand": {"type": "string", "emptyIsAbsent": 1}}},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"properties": {"brand": {"enum": ["", "a"], "emptyIsAbsent": true}}},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"emptyIsAbsent": true, "properties": {"brand": {"enum": ["", "a"]}}},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"ignore": ["brand"], "properties": {"brand": {"type": "string"}}},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"ignore": ["event_id"], "required": ["event_id"]},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"ignore": ["a", "b", "a"]},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"ignore": "a"},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"ignore": [1]},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id"}}]}');
-- an ignored field is never routed
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"ignore": ["txn_timestamp"]},
  "routes": [{"table": "ev", "columns": {"event_id": "event_id", "brand": "txn_timestamp"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "o", "contract": {"ignore": ["event_id"]}, "idempotency_key": "event_id",
  "routes": [{"table": "ev", "columns": {"brand": "brand"}}]}');

SELECT txpipe.drop_pipeline(name) FROM unnest(ARRAY['strict', 'sim', 'sim_parser', 'fields', 'ign', 'optout']) AS name;
DROP SCHEMA o CASCADE;
DROP ROLE optin_sender;
