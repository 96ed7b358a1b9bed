\set SHOW_CONTEXT never
-- Strict decoding: each malformed record gets its own code, path and
-- message, and its good neighbours land.
TRUNCATE txpipe.rejects;
SELECT txpipe.install_template('cards');
CREATE FUNCTION good(n int) RETURNS text LANGUAGE sql AS $$
	SELECT format('{"trans_date_trans_time":"2019-01-01 00:00:%s","cc_num":4992346398065154048,"merchant":"fraud_Kirlin and Sons","category":"personal_care","amt":2.86,"first":"Jeff","last":"Elliott","gender":"M","street":"351 Darlene Green","city":"Columbia","state":"SC","zip":29209,"lat":33.9659,"long":-80.9355,"city_pop":333497,"job":"Mechanical engineer","dob":"1968-03-19","trans_num":"%s","unix_time":1371816865,"merch_lat":33.986391,"merch_long":-81.200714,"is_fraud":0}',
		lpad(n::text, 2, '0'), md5(n::text))
$$;

-- one batch: a good record between every bad one
SELECT * FROM txpipe.ingest('cards', concat_ws(E'\n',
	good(1),
	'{"amt": NaN}',
	good(2),
	'{"amt": -Infinity}',
	good(3),
	$j${'amt': 1}$j$,
	good(4),
	'{"amt": 1,}',
	good(5),
	'{"amt": [1, 2,]}',
	good(6),
	'{"amt": 1} trailing',
	good(7),
	'{"amt": 1}}',
	good(8),
	E'{"first": "a\tb"}',
	good(9),
	'{"first": "a\u0000b"}',
	good(10),
	'{"first": "\ud800x"}',
	good(11),
	'{"first": "\udc00"}',
	good(12),
	'{"first": "\x41"}',
	good(13),
	'{"amt": 1, "amt": 2}',
	good(14),
	'{"a": {"b": 1, "b": 2}}',
	good(15),
	'[1, 2]',
	good(16),
	'"just a string"',
	good(17),
	'{"amt": 1',
	good(18),
	'{"amt": 01}',
	good(19)));

SELECT error_code, error_path, message, payload FROM txpipe.rejects ORDER BY reject_id;
SELECT count(*) AS transactions FROM cards.transaction;

-- nesting deeper than txpipe.max_depth, records longer than txpipe.max_record_size
TRUNCATE txpipe.rejects;
SET txpipe.max_depth = 4;
SELECT * FROM txpipe.ingest('cards', concat_ws(E'\n', good(20),
	'{"a": [[[[1]]]]}', '{"a": "[[[[[[[["}', good(21)));
RESET txpipe.max_depth;
SELECT * FROM txpipe.ingest('cards', repeat('[', 100000));
SET txpipe.max_record_size = 100;
SELECT * FROM txpipe.ingest('cards', concat_ws(E'\n', good(22), '{"x": "short"}'));
RESET txpipe.max_record_size;
SELECT error_code, error_path, message FROM txpipe.rejects ORDER BY reject_id;

-- a too_large reject keeps a prefix of at most 1,000 bytes cut on a
-- character boundary; its message gives the full length and a SHA-256
TRUNCATE txpipe.rejects;
SET txpipe.max_record_size = 1000;
CREATE TEMP TABLE big AS SELECT '{"x": "' || repeat('é', 3000) || '"}' AS doc;
SELECT * FROM txpipe.ingest('cards', concat_ws(E'\n', good(125), (SELECT doc FROM big), good(126)));
SELECT * FROM txpipe.validate('cards', (SELECT doc FROM big));
RESET txpipe.max_record_size;
SELECT r.error_code, octet_length(r.payload) AS kept, r.payload = left(b.doc, 503) AS is_prefix,
	   r.message LIKE '%has 6009 bytes%' || encode(sha256(convert_to(b.doc, 'UTF8')), 'hex') AS has_hash
  FROM txpipe.rejects r, big b;

-- keys per object: txpipe.max_keys, and a repeated key found among many
SET txpipe.max_keys = 5;
SELECT * FROM txpipe.validate('cards', '{"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}');
SELECT * FROM txpipe.validate('cards', '{"a": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}}');
RESET txpipe.max_keys;
-- a repeated unknown key after the contract's fields, listed or hashed
SELECT * FROM txpipe.validate('cards', '{"u1": 0, ' || substr(good(127), 2, length(good(127)) - 2) || ', "u1": 1}');
SELECT * FROM txpipe.validate('cards', (SELECT '{' || string_agg(format('"u%s": %s', i, i), ', ') || ', '
										   || substr(good(128), 2, length(good(128)) - 2) || ', "u3": 0}'
										  FROM generate_series(1, 20) i)) WHERE error_code <> 'additional_property';
SELECT * FROM txpipe.validate('cards', (SELECT '{' || string_agg(format('"k%s": %s', i, i), ', ') || ', "k7": 0}'
										   FROM generate_series(1, 100) i));
SELECT * FROM txpipe.validate('cards', (SELECT '{"o": {' || string_agg(format('"k%s": %s', i, i), ', ') || ', "k70": 0}}'
										   FROM generate_series(1, 100) i));

-- the limits are a superuser's: a writer cannot raise them
SET ROLE txpipe_writer;
SET txpipe.max_record_size = '1GB';
SET txpipe.max_keys = 1000000;
SET txpipe.batch_size = 100000;
RESET ROLE;

-- bytes that are not valid UTF-8 arrive through ingest_raw and keep their bytes
TRUNCATE txpipe.rejects;
SELECT * FROM txpipe.ingest_raw('cards', convert_to(good(23), 'UTF8') || '\x0a'::bytea ||
	'\x7b226669727374223a2241ff42227d'::bytea || '\x0a'::bytea || convert_to(good(24), 'UTF8'));
SELECT error_code, error_path, message, payload, payload_raw FROM txpipe.rejects;

-- blank lines are skipped; CRLF line ends are accepted
SELECT * FROM txpipe.ingest('cards', E'\n\n' || good(25) || E'\r\n\n');

-- validate() stores nothing
SELECT * FROM txpipe.validate('cards', '{"amt": NaN}');
SELECT * FROM txpipe.validate('cards', good(99));
SELECT count(*) FROM cards.transaction WHERE trans_num = md5('99');
