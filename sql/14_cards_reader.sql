\set SHOW_CONTEXT never
-- Card numbers and txpipe_reader (what dashboards log in as): a reader
-- reads no full card number anywhere, nor who a customer is, nor rejects'
-- payloads; it sees the last four digits and a token that joins, and finds
-- one card's holder and transactions only with the number and the date of
-- birth.  The owner and txpipe_admin read the numbers.
\set VERBOSITY terse
CREATE ROLE regress_grafana LOGIN IN ROLE txpipe_reader;
CREATE ROLE regress_cards_admin IN ROLE txpipe_admin;
CREATE ROLE regress_nobody;
SELECT txpipe.install_template('cards', 'pci_t');

CREATE FUNCTION pci_rec(n int, c int, cc bigint) RETURNS text LANGUAGE sql AS $$
	SELECT jsonb_build_object(
		'trans_date_trans_time', to_char('2019-05-01'::timestamp + n * interval '1 hour', 'YYYY-MM-DD HH24:MI:SS'),
		'cc_num', cc, 'merchant', 'fraud_Shop ' || n % 3, 'category', 'grocery_pos',
		'amt', n + 0.5, 'first', (ARRAY['Ann', 'Bob'])[c], 'last', 'Lee',
		'gender', (ARRAY['F', 'M'])[c], 'street', c || ' Main St', 'city', 'Albany',
		'state', 'NY', 'zip', 12201, 'lat', 42.6, 'long', -73.7, 'city_pop', 97000,
		'job', 'Engineer', 'dob', (ARRAY['1971-02-03', '1980-12-31'])[c],
		'trans_num', md5('pci' || n), 'unix_time', 1556668800 + n * 3600,
		'merch_lat', 42.7, 'merch_long', -73.8, 'is_fraud', CASE WHEN n = 4 THEN 1 ELSE 0 END)::text
$$;
-- two cards, and a refused record (an unknown category) that carries a
-- third number into txpipe.rejects
SELECT * FROM txpipe.ingest('pci_t', (
	SELECT string_agg(pci_rec(n, n % 2 + 1, CASE n % 2 WHEN 0 THEN 4111111111111111 ELSE 5500000000000004 END),
					  E'\n' ORDER BY n)
	  FROM generate_series(1, 6) n)
	|| E'\n' || replace(pci_rec(7, 1, 4012888888881881), 'grocery_pos', 'stolen_goods'));
SELECT status, rows FROM txpipe.refresh('pci_t');

-- The star holds no full number: only the masked form and the token.
SELECT card_key, customer_id, cc_last4, cc_masked FROM pci_t.dim_card ORDER BY card_key;
SELECT count(*) AS facts, count(DISTINCT card_key) AS cards FROM pci_t.fact_transaction;
-- every column of every star table (partitions included), whoever may read it
DO $$
DECLARE
	r record;
	found bigint;
	total bigint := 0;
	columns int := 0;
BEGIN
	FOR r IN
		SELECT c.relname, a.attname
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		 WHERE c.relnamespace = 'pci_t'::regnamespace AND c.relkind = 'r'
		   AND (c.relname LIKE 'dim\_%' OR c.relname LIKE 'fact\_%')
		   AND a.attnum > 0 AND NOT a.attisdropped
	LOOP
		EXECUTE format('SELECT count(*) FROM pci_t.%I WHERE %I::text ~ %L', r.relname, r.attname,
					   '4111111111111111|5500000000000004|4012888888881881')
		   INTO found;
		total := total + found;
		columns := columns + 1;
	END LOOP;
	RAISE NOTICE 'star: % columns, % values with a full card number', columns, total;
END;
$$;

-- What txpipe_reader may read, in every schema but the system's: no column
-- that holds a full card number, a rejected payload, a name, a street or
-- a date of birth.
SELECT c.relname, a.attname
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
   AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
   AND has_column_privilege('txpipe_reader', c.oid, a.attnum, 'SELECT')
   AND a.attname IN ('cc_num', 'payload', 'payload_raw', 'doc', 'first', 'last', 'street', 'dob')
 ORDER BY 1, 2;
-- what it may read in the template's schema
SELECT c.relname, c.relkind,
	   has_table_privilege('txpipe_reader', c.oid, 'SELECT') AS whole,
	   (SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) FROM pg_attribute a
		 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT has_table_privilege('txpipe_reader', c.oid, 'SELECT')
		   AND has_column_privilege('txpipe_reader', c.oid, a.attnum, 'SELECT')) AS columns
  FROM pg_class c
 WHERE c.relnamespace = 'pci_t'::regnamespace AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
   AND has_any_column_privilege('txpipe_reader', c.oid, 'SELECT')
 ORDER BY 1;
-- and the functions it may run there
SELECT p.oid::regprocedure AS function, p.prosecdef AS security_definer, p.proconfig
  FROM pg_proc p
 WHERE p.pronamespace = 'pci_t'::regnamespace AND has_function_privilege('txpipe_reader', p.oid, 'EXECUTE')
 ORDER BY 1;

SET ROLE regress_grafana;
-- Every value of every column the reader can read, anywhere: none holds
-- one of the three numbers, in any form.
DO $$
DECLARE
	r record;
	found bigint;
	total bigint := 0;
BEGIN
	FOR r IN
		SELECT n.nspname, c.relname, a.attname
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		   AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
		   AND has_column_privilege(c.oid, a.attnum, 'SELECT')
	LOOP
		EXECUTE format('SELECT count(*) FROM %I.%I WHERE %I::text ~ %L', r.nspname, r.relname, r.attname,
					   '4111111111111111|5500000000000004|4012888888881881')
		   INTO found;
		total := total + found;
	END LOOP;
	RAISE NOTICE 'values with a full card number readable by txpipe_reader: %', total;
END;
$$;

-- the star and the masked cards join by the token
SELECT d.cc_masked, count(*) AS transactions, sum(f.amt) AS amt, count(*) FILTER (WHERE f.is_fraud) AS fraud
  FROM pci_t.fact_transaction f JOIN pci_t.dim_card d USING (card_key)
 GROUP BY 1 ORDER BY 1;
SELECT customer_key, gender, job, city, state, zip, is_current FROM pci_t.dim_customer ORDER BY 1;
-- what it may not read
SELECT first, last FROM pci_t.dim_customer;
SELECT dob FROM pci_t.dim_customer;
SELECT * FROM pci_t.dim_customer;
SELECT count(*) FROM pci_t.card;
SELECT count(*) FROM pci_t.customer;
SELECT count(*) FROM pci_t.card_activity;
SELECT count(*) FROM txpipe.rejects;
SELECT count(*) FROM txpipe.inbox;
SELECT count(*) FROM txpipe.queue;
SELECT * FROM txpipe.validate('pci_t', '{}');

-- The lookup: the holder and the card's transactions, newest first, when
-- the number and the date of birth match; the number masked.
SELECT * FROM pci_t.card_lookup('4111111111111111', '1971-02-03');
SELECT card_key, cc_masked, count(*) FROM pci_t.card_lookup('4111 1111 1111 1111', '1971-02-03') GROUP BY 1, 2;
SELECT card_key, cc_masked, count(*) FROM pci_t.card_lookup('5500-0000-0000-0004', '1980-12-31') GROUP BY 1, 2;
-- anything else finds nothing, without an error
SELECT count(*) AS other_dob FROM pci_t.card_lookup('4111111111111111', '1980-12-31');
SELECT count(*) AS other_card FROM pci_t.card_lookup('5500000000000004', '1971-02-03');
SELECT count(*) AS rejected_card FROM pci_t.card_lookup('4012888888881881', '1971-02-03');
SELECT count(*) AS last_four FROM pci_t.card_lookup('1111', '1971-02-03');
SELECT count(*) AS not_a_number FROM pci_t.card_lookup('4111x11111111111', '1971-02-03');
SELECT count(*) AS too_big FROM pci_t.card_lookup('9999999999999999999', '1971-02-03');
SELECT count(*) AS too_long FROM pci_t.card_lookup('41111111111111111111', '1971-02-03');
SELECT count(*) AS empty FROM pci_t.card_lookup('', '1971-02-03');
SELECT count(*) AS no_dob FROM pci_t.card_lookup('4111111111111111', NULL);
-- one card per call: a pattern or a list is not a number
SELECT count(*) AS pattern FROM pci_t.card_lookup('4111%', '1971-02-03');
SELECT count(*) AS list FROM pci_t.card_lookup('4111111111111111,5500000000000004', '1971-02-03');
-- objects of the caller's own (a temporary table and function named like
-- the lookup's) change nothing: every name in it is qualified
CREATE TEMP TABLE card (card_id integer, cc_num bigint, customer_id integer);
CREATE FUNCTION pg_temp.translate(text, text, text) RETURNS text LANGUAGE sql AS $f$ SELECT '0' $f$;
SET search_path = pg_temp, public;
SELECT count(*) AS hostile_path FROM pci_t.card_lookup('4111111111111111', '1971-02-03');
RESET search_path;
DROP TABLE pg_temp.card;
DROP FUNCTION pg_temp.translate(text, text, text);
RESET ROLE;

-- a role without txpipe_reader may not call it
SET ROLE regress_nobody;
SELECT count(*) FROM pci_t.card_lookup('4111111111111111', '1971-02-03');
RESET ROLE;

-- txpipe_admin reads the full numbers (and may not change them)
SET ROLE regress_cards_admin;
SELECT cc_num FROM pci_t.card ORDER BY cc_num;
SELECT cc_num, first, dob, amt FROM pci_t.card_activity WHERE cc_num = 4111111111111111 AND dob = '1971-02-03'
 ORDER BY trans_date_trans_time DESC LIMIT 1;
UPDATE pci_t.card SET cc_num = 1;
RESET ROLE;

-- installing the template again changes nothing of this
SELECT txpipe.install_template('cards', 'pci_t');
SELECT has_table_privilege('txpipe_reader', 'pci_t.card_activity', 'SELECT') AS reader_activity,
	   has_column_privilege('txpipe_reader', 'pci_t.dim_customer', 'dob', 'SELECT') AS reader_dob,
	   has_column_privilege('txpipe_reader', 'pci_t.dim_customer', 'zip', 'SELECT') AS reader_zip;
SELECT count(*) AS facts FROM pci_t.fact_transaction;

SELECT txpipe.drop_pipeline('pci_t');
DROP SCHEMA pci_t CASCADE;
DROP FUNCTION pci_rec(int, int, bigint);
DROP ROLE regress_grafana, regress_cards_admin, regress_nobody;
