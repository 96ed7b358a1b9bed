\set SHOW_CONTEXT never
-- Decoding edge cases around the common shape (one flat object of strings,
-- numbers, booleans and nulls): each record decodes to the same values, or
-- the same reject, whatever path the decoder takes.
TRUNCATE txpipe.rejects;
CREATE SCHEMA f;
CREATE TABLE f.rec (
	id		text PRIMARY KEY,
	s		text,
	n		text,
	b		text,
	z		text,
	o		text
);
SELECT txpipe.create_pipeline('flat', $spec$
{
  "schema": "f",
  "contract": {
    "type": "object",
    "required": ["id"],
    "properties": {
      "id": {"type": "string"},
      "s": {"type": ["string", "null"]},
      "n": {"type": ["number", "null"]},
      "b": {"type": ["boolean", "null"]},
      "z": {},
      "o": {}
    }
  },
  "idempotency_key": "id",
  "routes": [
    {"name": "rec", "table": "rec",
     "columns": {"id": "id", "s": "s", "n": "n", "b": "b", "z": "z", "o": "o"}}
  ]
}$spec$);

SELECT * FROM txpipe.ingest('flat', concat_ws(E'\n',
	'{"id":"a1","s":"plain","n":0,"b":true,"z":null}',
	'  {  "id" : "a2" , "s" : "" , "n" : -0 , "b" : false , "z" : "x"  }  ',
	E'{\t"id":"a3",\r"n":1.5e10,"b":null}',
	'{"id":"a4","n":-12.250E-3}',
	'{"id":"a5","n":1E+2}',
	'{"id":"a6","s":"ünïcödé ✓","z":123}',
	'{"id":"a7","s":"with \"escapes\" \\ and \n newline"}',
	'{"id":"a8","s":"\u00e9\u4e2d"}',
	'{"id":"a9","o":{"k":[1,2,{"x":null}]},"z":[]}',
	'{"id":"a10","extra":1,"more":"x"}',
	'{"id":"a11"}',
	'{"i\u0064":"a12"}',
	'{"id":"b1","n":01}',
	'{"id":"b2","n":1.}',
	'{"id":"b3","n":.5}',
	'{"id":"b4","n":-}',
	'{"id":"b5","n":1e}',
	'{"id":"b6","n":12abc}',
	'{"id":"b7","b":tru}',
	'{"id":"b8","b":truex}',
	'{"id":"b9","z":nul}',
	'{"id":"b10","s":"x",}',
	'{"id":"b11","s":"x"} x',
	'{"id":"b12","s":"x"}}',
	'{"id":"b13" "s":"x"}',
	'{"id":"b14","s":"x"',
	'{"id":"b15","s":"x',
	E'{"id":"b16","s":"tab\there"}',
	'{"id":"b17","id":"b17"}',
	'{"id":"b18","extra":1,"extra":2}',
	'{"id":"b19","s":"x"}{"id":"b20"}',
	'{}',
	'[]',
	'"str"',
	'42',
	'{"id":"b21","n":+1}',
	'{"id":"b22","n":NaN}',
	'{"id":"b23","s":''x''}',
	'{id:"b24"}',
	'{"id":"b25",}',
	'{"id":"b26","n":1.5.5}',
	'{"id":"b27","n":--1}',
	'{"id":"b28","b":true"x"}'
));

SELECT id, s, n, b, z, o FROM f.rec ORDER BY id;
SELECT error_code, error_path, message, payload FROM txpipe.rejects
 WHERE pipeline = 'flat' ORDER BY reject_id;

SELECT txpipe.drop_pipeline('flat');
DROP SCHEMA f CASCADE;
