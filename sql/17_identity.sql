\set SHOW_CONTEXT never
-- Declared input formats for dates and timestamps, identity by content
-- (an array idempotency_key and the "$key" source), and key conflicts.
TRUNCATE txpipe.rejects;
CREATE SCHEMA idn;
CREATE TABLE idn.line (
	line_key	uuid NOT NULL UNIQUE,
	invoice_no	text,
	qty			integer,
	price		numeric(12,3),
	customer	integer,
	at			timestamp,
	day			date
);
CREATE TABLE idn.ev (
	ev_key		uuid NOT NULL UNIQUE,
	at			timestamptz
);
CREATE TABLE idn.tx (
	trans_num	text NOT NULL UNIQUE,
	amt			numeric(12,2),
	note		text,
	flag		boolean
);

-- inputFormat: spec errors point at the offending path
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"d": {"type": "string", "inputFormat": "M/D/YYYY"}}}, "routes": [{"table": "line", "columns": {"invoice_no": "d"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"d": {"type": "integer", "format": "date", "inputFormat": "M/D/YYYY"}}}, "routes": [{"table": "line", "columns": {"invoice_no": "d"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"d": {"type": "string", "format": "date", "inputFormat": "M/D/YY"}}}, "routes": [{"table": "line", "columns": {"invoice_no": "d"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"d": {"type": "string", "format": "date", "inputFormat": "MD/YYYY"}}}, "routes": [{"table": "line", "columns": {"invoice_no": "d"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"d": {"type": "string", "format": "date", "inputFormat": "D/M/YYYY H:MM"}}}, "routes": [{"table": "line", "columns": {"invoice_no": "d"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"d": {"type": "string", "format": "timestamp", "inputFormat": "D/M/YYYY"}}}, "routes": [{"table": "line", "columns": {"invoice_no": "d"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"d": {"type": "string", "format": "timestamp", "inputFormat": "D/M/YYYY H:MM M"}}}, "routes": [{"table": "line", "columns": {"invoice_no": "d"}}]}');
-- "$key" and array keys
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"a": {"type": "string"}}}, "routes": [{"table": "line", "columns": {"line_key": "$key"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"a": {"type": "string"}}}, "idempotency_key": [], "routes": [{"table": "line", "columns": {"line_key": "$key"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"a": {"type": "string"}}}, "idempotency_key": ["a", "a"], "routes": [{"table": "line", "columns": {"line_key": "$key"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"additionalProperties": false, "properties": {"a": {"type": "string"}}}, "idempotency_key": ["a", "b"], "routes": [{"table": "line", "columns": {"line_key": "$key"}}]}');
SELECT txpipe.create_pipeline('bad', '{"schema": "idn", "contract": {"properties": {"a": {"type": "string"}}}, "idempotency_key": ["a"], "routes": [{"table": "line", "columns": {"invoice_no": "a"}}]}');

-- a line identified by its content, its date as the source writes it
SELECT txpipe.create_pipeline('lines', $spec$
{
  "schema": "idn",
  "contract": {
    "required": ["InvoiceNo", "Quantity", "At"],
    "additionalProperties": false,
    "emptyIsAbsent": true,
    "properties": {
      "InvoiceNo": {"type": ["string", "integer"], "pattern": "^C?[0-9]{6}$"},
      "Quantity": {"type": "integer"},
      "Price": {"type": "number"},
      "CustomerID": {"type": ["integer", "null"]},
      "At": {"type": "string", "format": "timestamp", "inputFormat": "M/D/YYYY H:MM"},
      "Day": {"type": "string", "format": "date", "inputFormat": "DD.MM.YYYY"}
    }
  },
  "idempotency_key": ["InvoiceNo", "Quantity", "Price", "CustomerID", "At", "Day"],
  "routes": [{"table": "line", "columns": {"line_key": "$key", "invoice_no": "InvoiceNo",
              "qty": "Quantity", "price": "Price", "customer": "CustomerID", "at": "At",
              "day": "Day"}}]
}
$spec$);

-- dates: parsed as written, never guessed
SELECT error_code, error_path, message FROM txpipe.validate('lines', '{"InvoiceNo": "536365", "Quantity": 1, "At": "12/1/2010 8:26"}');
SELECT error_code, error_path, message FROM txpipe.validate('lines', '{"InvoiceNo": "536365", "Quantity": 1, "At": "2010-12-01 08:26"}');
SELECT error_code, error_path, message FROM txpipe.validate('lines', '{"InvoiceNo": "536365", "Quantity": 1, "At": "2/30/2011 8:00"}');
SELECT error_code, error_path, message FROM txpipe.validate('lines', '{"InvoiceNo": "536365", "Quantity": 1, "At": "13/1/2011 8:00"}');
SELECT error_code, error_path, message FROM txpipe.validate('lines', '{"InvoiceNo": "536365", "Quantity": 1, "At": "12/1/2010 24:00"}');
SELECT error_code, error_path, message FROM txpipe.validate('lines', '{"InvoiceNo": "536365", "Quantity": 1, "At": "12/1/2010 8:6"}');
SELECT error_code, error_path, message FROM txpipe.validate('lines', '{"InvoiceNo": "536365", "Quantity": 1, "At": "12/1/2010 8:26 "}');
SELECT error_code, error_path, message FROM txpipe.validate('lines', '{"InvoiceNo": "536365", "Quantity": 1, "At": "12/1/2010 8:26", "Day": "1.12.2010"}');
-- every error of a record, the date's among them
SELECT error_code, error_path FROM txpipe.validate('lines', '{"InvoiceNo": "x", "Quantity": 1.5, "At": "2010-12-01"}');

SET DateStyle = 'ISO, DMY';
-- the same line in four shapes (CSV-like, pandas with numbers, a float
-- customer, escaped slashes, "" for an absent value), then a re-send
SELECT * FROM txpipe.ingest('lines', $$
{"InvoiceNo": "536365", "Quantity": 6, "Price": 2.55, "CustomerID": 17850, "At": "12/1/2010 8:26", "Day": "01.12.2010"}
{"InvoiceNo": 536365, "Quantity": 6, "Price": 2.550, "CustomerID": 17850.0, "At": "12\/1\/2010 8:26", "Day": "01.12.2010"}
{"InvoiceNo": "536365", "Quantity": 6.0, "Price": 255e-2, "CustomerID": 1.785e4, "At": "12/1/2010 08:26", "Day": "01.12.2010"}
{"InvoiceNo": "536366", "Quantity": 1, "Price": 1, "CustomerID": "", "At": "12/1/2010 8:28"}
{"InvoiceNo": "536366", "Quantity": 1, "Price": 1.0, "CustomerID": null, "At": "12/1/2010 8:28"}
{"InvoiceNo": "536366", "Quantity": 1, "Price": 1, "At": "12/1/2010 8:28"}
{"InvoiceNo": "C536367", "Quantity": -1, "Price": 1, "At": "12/1/2010 8:28"}
$$);
SELECT * FROM txpipe.ingest('lines', $$
{"InvoiceNo": 536365, "Quantity": 6, "Price": 2.55, "CustomerID": 17850.0, "At": "12/1/2010 8:26", "Day": "01.12.2010"}
{"InvoiceNo": "536366", "Quantity": 1, "Price": 1, "At": "12/1/2010 8:28"}
{"InvoiceNo": "536366", "Quantity": 2, "Price": 1, "At": "12/1/2010 8:28"}
$$);
-- December 1 in every case, whatever DateStyle says; keys are UUIDs of version 8
SELECT invoice_no, qty, price, customer, at, day,
       pg_catalog.substr(line_key::text, 15, 1) AS version
  FROM idn.line ORDER BY invoice_no, qty;
RESET DateStyle;
SELECT count(DISTINCT line_key) FROM idn.line;

-- "UTC" in the format: the time is UTC
SELECT txpipe.create_pipeline('evs', $spec$
{"schema": "idn",
 "contract": {"properties": {"t": {"type": "string", "format": "timestamp",
                                   "inputFormat": "YYYY-MM-DD HH:MM:SS UTC"}}},
 "idempotency_key": ["t"],
 "routes": [{"table": "ev", "columns": {"ev_key": "$key", "at": "t"}}]}
$spec$);
SET TimeZone = 'America/New_York';
SELECT * FROM txpipe.ingest('evs', E'{"t": "2019-10-01 00:00:04 UTC"}\n{"t": "2019-10-01 00:00:04"}\n{"t": "2019-10-01T00:00:04 UTC"}');
SELECT at AT TIME ZONE 'UTC' AS utc FROM idn.ev;
RESET TimeZone;

-- key conflicts: the key is stored with other content
SELECT txpipe.create_pipeline('txs', $spec$
{"schema": "idn",
 "contract": {"properties": {"trans_num": {"type": "string"}, "amt": {"type": "number"},
                             "note": {"type": ["string", "null"]}, "flag": {"type": "boolean"},
                             "other": {"type": "string"}}},
 "idempotency_key": "trans_num",
 "routes": [{"table": "tx", "columns": {"trans_num": "trans_num", "amt": "amt", "note": "note", "flag": "flag"}}]}
$spec$);
SELECT * FROM txpipe.ingest('txs', E'{"trans_num": "t1", "amt": 10.5, "note": "a", "flag": true, "other": "x"}\n{"trans_num": "t2", "amt": 1, "flag": false}');
-- the same content (10.50 is 10.5, "other" is kept nowhere): duplicates
SELECT * FROM txpipe.ingest('txs', E'{"trans_num": "t1", "amt": 10.50, "note": "a", "flag": true, "other": "y"}\n{"trans_num": "t2", "amt": 1.0, "note": null, "flag": false}');
-- other content: key_conflict rejects, each naming the first difference
SELECT * FROM txpipe.ingest('txs', E'{"trans_num": "t1", "amt": 11, "note": "a", "flag": true}\n{"trans_num": "t2", "amt": 1, "note": "b", "flag": false}\n{"trans_num": "t2", "amt": 1, "flag": true}');
-- within one batch: the first is stored, the second conflicts
SELECT * FROM txpipe.ingest('txs', E'{"trans_num": "t3", "amt": 3, "flag": true}\n{"trans_num": "t3", "amt": 3}\n{"trans_num": "t3", "amt": 3, "flag": true}');
-- the statement path reads the same
SET txpipe.direct_write = off;
SELECT * FROM txpipe.ingest('txs', E'{"trans_num": "t1", "amt": 12, "note": "a", "flag": true}\n{"trans_num": "t1", "amt": 10.5, "note": "a", "flag": true}');
RESET txpipe.direct_write;
SELECT trans_num, amt, note, flag FROM idn.tx ORDER BY 1;
SELECT error_code, error_path, message FROM txpipe.rejects WHERE pipeline = 'txs' ORDER BY reject_id;
SELECT received, accepted, rejected, duplicates FROM txpipe.stats WHERE pipeline IN ('lines', 'evs', 'txs') ORDER BY pipeline;
SELECT description FROM txpipe.reject_codes WHERE error_code = 'key_conflict';

SELECT txpipe.drop_pipeline(p) FROM unnest(ARRAY['lines', 'evs', 'txs']) p;
DROP SCHEMA idn CASCADE;
TRUNCATE txpipe.rejects;
