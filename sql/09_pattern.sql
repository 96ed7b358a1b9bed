\set SHOW_CONTEXT never
-- Patterns: plain ones (characters and ASCII classes with repeat counts)
-- are matched without the regex engine; every pattern must give the
-- engine's answer (PostgreSQL's ~ with the C collation, whatever the
-- database's: contracts match with C semantics in every database).
CREATE TABLE pat (k int PRIMARY KEY, p text);
INSERT INTO pat VALUES
	(1, '^[0-9a-f]{32}$'), (2, '^[A-Z]{2}$'), (3, '^[0-9]{5}$'), (4, '^R'), (5, 'x$'),
	(6, 'ab'), (7, '^a*b+c?$'), (8, '^[a-c]{2,}d{0,2}$'), (9, '^\d{3}-\d{4}$'),
	(10, '^[a-]{1,3}[-z]?$'), (11, '^\.\\\$'), (12, '^$'), (13, ''), (14, '^[ab]{1,3}a$'),
	(15, 'a{2}?b'), (16, '^[0-9]+[.][0-9]{2}$'), (17, '^(a|b)$'), (18, '^.{2}$'),
	(19, '^[^a]$'), (20, '^[[:digit:]]+$'), (21, '(?i)^abc$'), (22, '^é+$'), (23, '^\w+$'),
	(24, '^[a-z]*x[a-z]*$'), (25, 'q{0}r'), (26, '^ {2}$');
CREATE TABLE str (s text);
INSERT INTO str VALUES ('0123456789abcdef0123456789abcdef'), ('0123456789ABCDEF0123456789abcdef'),
	('NY'), ('N'), ('NYC'), ('ny'), ('01257'), ('1257'), ('012578'), ('R1'), ('xR'), ('abx'),
	('xa'), ('ab'), ('cab'), ('b'), ('abbc'), ('aabcc'), ('ac'), ('abcdd'), ('cc'), ('ccddd'),
	('555-1234'), ('5551234'), ('-'), ('--z'), ('a-z'), ('.\$'), ('.\'), (''), ('aba'), ('aaaa'),
	('abba'), ('aab'), ('ab'), ('12.50'), ('1.5'), ('a'), ('é'), ('éé'), ('aé'), ('ABC'), ('abc'),
	('abxcd'), ('r'), ('qr'), ('  '), (' '), (E'NY\n'), (E'\nNY'), ('ßx'), ('xß'),
	(repeat('0123456789abcdef', 40)), (repeat('a', 300) || 'x'), (repeat('é', 300));
SELECT txpipe.create_pipeline('pat', jsonb_build_object(
	'contract', jsonb_build_object('properties',
		(SELECT jsonb_object_agg('p' || k, jsonb_build_object('type', 'string', 'pattern', p)) FROM pat)),
	'routes', jsonb_build_array(jsonb_build_object('table', 'pat', 'columns', jsonb_build_object('p', 'p1')))));
WITH checked AS (
	SELECT s, k, p, s COLLATE "C" ~ p AS engine,
		   NOT EXISTS (SELECT 1 FROM txpipe.validate('pat',
				(SELECT jsonb_object_agg('p' || k, s) FROM pat)::text) v
				WHERE v.error_path = '$.p' || k) AS txpipe
	  FROM str, pat)
SELECT count(*) AS cases, count(*) FILTER (WHERE engine) AS matches,
	   count(*) FILTER (WHERE engine IS DISTINCT FROM txpipe) AS differing
  FROM checked;
SELECT k, p, s FROM (SELECT s, k, p, s COLLATE "C" ~ p AS engine,
		   NOT EXISTS (SELECT 1 FROM txpipe.validate('pat',
				(SELECT jsonb_object_agg('p' || k, s) FROM pat)::text) v
				WHERE v.error_path = '$.p' || k) AS txpipe
	  FROM str, pat) c WHERE engine IS DISTINCT FROM txpipe ORDER BY k, s;
SELECT txpipe.drop_pipeline('pat');
DROP TABLE pat, str;
