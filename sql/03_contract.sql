\set SHOW_CONTEXT never
-- The contract: one code per rule, all errors from validate(), the first
-- one in txpipe.rejects.
TRUNCATE txpipe.rejects;
CREATE TABLE items (id text PRIMARY KEY, body jsonb);
SELECT txpipe.create_pipeline('items', '{
  "contract": {
    "required": ["id", "kind"],
    "additionalProperties": false,
    "properties": {
      "id": {"type": "string", "pattern": "^[a-z]+-[0-9]+$"},
      "kind": {"type": "string", "enum": ["a", "b"]},
      "n": {"type": "integer", "minimum": -5, "maximum": 18446744073709551616},
      "x": {"type": "number", "minimum": 0.5, "maximum": 1e3},
      "code": {"type": ["integer", "string"], "enum": [1, "one"]},
      "name": {"type": "string", "minLength": 2, "maxLength": 4},
      "day": {"type": "string", "format": "date"},
      "at": {"type": "string", "format": "timestamp"},
      "flag": {"type": "boolean"},
      "tags": {"type": "array"},
      "meta": {"type": ["object", "null"]}
    }
  },
  "idempotency_key": "id",
  "routes": [{"table": "items", "columns": {"id": "id", "body": "meta"}}]
}');

-- every rule broken once, all reported
SELECT * FROM txpipe.validate('items', '{"kind": "c", "n": 1.5, "x": 0.4999, "code": 2,
	"name": "abcde", "day": "2019-02-29", "at": "2019-01-01T25:00:00", "flag": "yes",
	"tags": {}, "extra": 1}');
SELECT * FROM txpipe.validate('items', '{"id": "A-1", "kind": "a", "n": -6, "x": 1000.0001, "name": "é"}');
-- the boundaries are inclusive, exactly, above 2^64 too
SELECT * FROM txpipe.validate('items', '{"id": "a-1", "kind": "a", "n": 18446744073709551616, "x": 1e3}');
SELECT * FROM txpipe.validate('items', '{"id": "a-1", "kind": "a", "n": 18446744073709551617}');
SELECT * FROM txpipe.validate('items', '{"id": "a-1", "kind": "a", "n": -5, "x": 0.50, "code": "one", "name": "éé"}');
SELECT * FROM txpipe.validate('items', '{"id": "a-1", "kind": "a", "code": 1.0, "meta": null, "tags": [1]}');
-- formats
SELECT d, (SELECT count(*) FROM txpipe.validate('items', format('{"id":"a-1","kind":"a","at":%s}', to_json(d)))) AS errors
  FROM unnest(ARRAY['2019-10-01 00:00:04 UTC', '2019-10-01T00:00:04Z', '2019-10-01 00:00',
	'2019-10-01 00:00:04.123456+02:00', '2020-02-29 23:59:59', '2019-02-29 00:00:00',
	'2019-10-01', '01/10/2019 10:00', '2019-10-01 24:00:00']) AS d;

-- routing keeps the first error per record
SELECT * FROM txpipe.ingest('items', concat_ws(E'\n',
	'{"id": "a-1", "kind": "a", "meta": {"k": [1, 2]}}',
	'{"kind": "z"}',
	'{"id": "a-2", "kind": "b", "extra": true}',
	'{"id": "a-3", "kind": "b", "meta": {"nested": {"deep": "ok"}}}'));
SELECT error_code, error_path, message FROM txpipe.rejects ORDER BY reject_id;
SELECT id, body FROM items ORDER BY id;

-- an integer may be written with a zero fraction or an exponent (JSON Schema
-- draft 6 on); it reaches an integer column in integer form, exactly.  With
-- more significant digits than a double holds, the float form is refused:
-- it has likely been through a double (a 19-digit id read as a float)
CREATE TABLE counts (id text PRIMARY KEY, n bigint, big numeric);
SELECT txpipe.create_pipeline('counts', '{
  "contract": {"properties": {"id": {"type": "string"}, "n": {"type": "integer"},
    "big": {"type": "integer"}}},
  "idempotency_key": "id",
  "routes": [{"table": "counts", "columns": {"id": "id", "n": "n", "big": "big"}}]}');
SELECT v, (SELECT string_agg(error_code || ' ' || message, '; ') FROM txpipe.validate('counts', format('{"id": "x", "n": %s}', v))) AS errors
  FROM unnest(ARRAY['17850', '17850.0', '17850.000', '1.785e4', '1785000e-2', '1e2', '-3.0', '-0.0', '0e5',
	'17850.5', '1.7855e3', '1e-2', '1e1000000', '999999999999999.0', '4992346398065154048.0',
	'2.0530135556318828e+18']) AS v;
SELECT * FROM txpipe.ingest('counts', concat_ws(E'\n',
	'{"id": "c1", "n": 17850.0}',
	'{"id": "c2", "n": 1.785e4, "big": 4992346398065154048}',
	'{"id": "c3", "n": -0.0, "big": 123456789012345e8}',
	'{"id": "c5", "big": 4992346398065154048.00}',
	'{"id": "c4", "n": 2.5}'));
SELECT id, n, big FROM counts ORDER BY id;
