\set SHOW_CONTEXT never
-- Star refresh: the spec's "refresh", the cards star (totals, SCD type 2,
-- late events, partitions), full rebuild = incremental, recorded runs,
-- reporting views, and scheduling without pg_cron in this database.
\set VERBOSITY default
TRUNCATE txpipe.rejects, txpipe.batches, txpipe.refresh_runs, txpipe.refresh_state;

-- a pipeline of our own, with a refresh function written like the template's
CREATE SCHEMA refresh_t;
CREATE TABLE refresh_t.events (event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	k text NOT NULL UNIQUE, n integer NOT NULL, label text, plain_id bigint);
CREATE TABLE refresh_t.event_facts (event_id bigint PRIMARY KEY, n integer NOT NULL);
CREATE FUNCTION refresh_t.refresh_events(lo bigint, hi bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	written bigint;
BEGIN
	IF lo = 0 THEN
		TRUNCATE refresh_t.event_facts;
	END IF;
	IF EXISTS (SELECT 1 FROM refresh_t.events WHERE event_id > lo AND event_id <= hi AND n < 0) THEN
		RAISE EXCEPTION 'negative n in events % to %', lo + 1, hi;
	END IF;
	INSERT INTO refresh_t.event_facts
	SELECT event_id, n FROM refresh_t.events WHERE event_id > lo AND event_id <= hi
	ON CONFLICT DO NOTHING;
	GET DIAGNOSTICS written = ROW_COUNT;
	RETURN written;
END;
$$;
CREATE FUNCTION refresh_t.returns_int(lo bigint, hi bigint) RETURNS integer LANGUAGE sql AS 'SELECT 0';
CREATE FUNCTION events_spec(refresh jsonb, idempotency boolean DEFAULT true) RETURNS jsonb LANGUAGE sql AS $$
	SELECT jsonb_build_object('schema', 'refresh_t',
		'routes', jsonb_build_array(jsonb_build_object('table', 'events',
			'columns', jsonb_build_object('k', 'k', 'n', 'n', 'label', 'label'))))
		|| CASE WHEN idempotency THEN '{"idempotency_key": "k"}'::jsonb ELSE '{}' END
		|| CASE WHEN refresh IS NULL THEN '{}' ELSE jsonb_build_object('refresh', refresh) END
$$;

-- spec errors point at $.refresh
SELECT txpipe.create_pipeline('x', events_spec('"refresh_events"'));
SELECT txpipe.create_pipeline('x', events_spec('{"function": "refresh_events", "watermark": "event_id", "every": 1}'));
SELECT txpipe.create_pipeline('x', events_spec('{"watermark": "event_id"}'));
SELECT txpipe.create_pipeline('x', events_spec('{"function": "nope", "watermark": "event_id"}'));
SELECT txpipe.create_pipeline('x', events_spec('{"function": "returns_int", "watermark": "event_id"}'));
SELECT txpipe.create_pipeline('x', events_spec('{"function": "refresh_events"}'));
SELECT txpipe.create_pipeline('x', events_spec('{"function": "refresh_events", "watermark": "nope"}'));
SELECT txpipe.create_pipeline('x', events_spec('{"function": "refresh_events", "watermark": "label"}'));
SELECT txpipe.create_pipeline('x', events_spec('{"function": "refresh_events", "watermark": "plain_id"}'));
SELECT txpipe.create_pipeline('x', events_spec('{"function": "refresh_events", "watermark": "event_id"}', false));
SELECT txpipe.create_pipeline('events_r', events_spec('{"function": "refresh_t.refresh_events", "watermark": "event_id"}'));

-- refresh needs a pipeline with a refresh, and read committed
SELECT * FROM txpipe.refresh('nope');
SELECT txpipe.create_pipeline('events_plain', events_spec(NULL));
SELECT * FROM txpipe.refresh('events_plain');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM txpipe.refresh('events_r');
ROLLBACK;

-- a user's refresh function: incremental, and a failing run is recorded,
-- changes nothing and keeps the watermark
SELECT * FROM txpipe.ingest('events_r', E'{"k": "a", "n": 1}\n{"k": "b", "n": 2}');
SELECT status, rows, watermark_from, watermark_to FROM txpipe.refresh('events_r');
SELECT * FROM txpipe.ingest('events_r', E'{"k": "c", "n": -3}\n{"k": "d", "n": 4}');
SELECT status, rows, watermark_from, watermark_to FROM txpipe.refresh('events_r');
SELECT count(*) AS event_facts FROM refresh_t.event_facts;
UPDATE refresh_t.events SET n = 3 WHERE k = 'c';
SELECT status, rows, watermark_from, watermark_to FROM txpipe.refresh('events_r');
SELECT sum(n) AS facts_n, (SELECT sum(n) FROM refresh_t.events) AS events_n FROM refresh_t.event_facts;
SELECT pipeline, rows, status, error, sqlstate, watermark_from, watermark_to, "full"
  FROM txpipe.refresh_runs ORDER BY run_id;

-- the cards star
SELECT txpipe.install_template('cards', 'star_t');
SELECT count(*) AS tables FROM pg_tables WHERE schemaname = 'star_t';
CREATE FUNCTION star_rec(n int, ts timestamp, cust int DEFAULT NULL, street text DEFAULT NULL)
RETURNS text LANGUAGE sql AS $$
	SELECT jsonb_build_object(
		'trans_date_trans_time', to_char(ts, 'YYYY-MM-DD HH24:MI:SS'),
		'cc_num', 4000000000000000 + c,
		'merchant', 'fraud_Merchant ' || n % 5,
		'category', (ARRAY['grocery_pos', 'gas_transport', 'shopping_net', 'travel'])[n % 4 + 1],
		'amt', round((n * 7.31) % 500, 2),
		'first', (ARRAY['Ann', 'Bob', 'Cy', 'Di'])[c + 1],
		'last', 'Lee',
		'gender', (ARRAY['F', 'M', 'M', 'F'])[c + 1],
		'street', coalesce(street, c || ' Main St'),
		'city', (ARRAY['Albany', 'Albany', 'Austin', 'Fresno'])[c + 1],
		'state', (ARRAY['NY', 'NY', 'TX', 'CA'])[c + 1],
		'zip', (ARRAY[12201, 12201, 73301, 93650])[c + 1],
		'lat', 40.1, 'long', -75.2, 'city_pop', 1000 * (c + 1),
		'job', 'Engineer',
		'dob', '1970-01-0' || (c + 1),
		'trans_num', md5('star' || n),
		'unix_time', extract(epoch FROM ts)::bigint,
		'merch_lat', 40.2, 'merch_long', -75.3,
		'is_fraud', CASE WHEN n % 9 = 0 THEN 1 ELSE 0 END)::text
	  FROM (SELECT coalesce(cust, n % 4) AS c) AS x
$$;
SELECT * FROM txpipe.ingest('star_t', (
	SELECT string_agg(star_rec(n, '2019-03-01'::timestamp + n * interval '307 minutes'), E'\n' ORDER BY n)
	  FROM generate_series(1, 300) n));

-- the first refresh writes every transaction; the second finds nothing new
SELECT status, rows, watermark_from, watermark_to = (SELECT max(transaction_id) FROM star_t.transaction) AS to_max
  FROM txpipe.refresh('star_t');
SELECT status, rows, watermark_from = watermark_to AS unchanged FROM txpipe.refresh('star_t');

-- the star's totals equal the normalized tables', overall and per state
CREATE VIEW star_check AS
SELECT (SELECT (count(*), sum(amt), count(*) FILTER (WHERE is_fraud))::text FROM star_t.fact_transaction)
	 = (SELECT (count(*), sum(amt), count(*) FILTER (WHERE is_fraud))::text FROM star_t.transaction) AS totals_equal,
	   NOT EXISTS (
		(SELECT l.state, count(*), sum(f.amt), count(*) FILTER (WHERE f.is_fraud)
		   FROM star_t.fact_transaction f JOIN star_t.dim_location l USING (location_key) GROUP BY 1
		 EXCEPT
		 SELECT s.state, count(*), sum(t.amt), count(*) FILTER (WHERE t.is_fraud)
		   FROM star_t.transaction t
		   JOIN star_t.customer_version v USING (customer_version_id)
		   JOIN star_t.city c ON c.city_id = v.city_id JOIN star_t.state s USING (state_id) GROUP BY 1)
		UNION ALL
		(SELECT s.state, count(*), sum(t.amt), count(*) FILTER (WHERE t.is_fraud)
		   FROM star_t.transaction t
		   JOIN star_t.customer_version v USING (customer_version_id)
		   JOIN star_t.city c ON c.city_id = v.city_id JOIN star_t.state s USING (state_id) GROUP BY 1
		 EXCEPT
		 SELECT l.state, count(*), sum(f.amt), count(*) FILTER (WHERE f.is_fraud)
		   FROM star_t.fact_transaction f JOIN star_t.dim_location l USING (location_key) GROUP BY 1)) AS per_state_equal;
SELECT * FROM star_check;
SELECT l.state, count(*) AS transactions, sum(f.amt) AS amt, count(*) FILTER (WHERE f.is_fraud) AS fraud
  FROM star_t.fact_transaction f JOIN star_t.dim_location l USING (location_key) GROUP BY 1 ORDER BY 1;

-- partitions: each month with events, and the next one
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'star_t.fact_transaction'::regclass ORDER BY 1;
SELECT * FROM star_t.dim_date ORDER BY date_key LIMIT 3;
SELECT count(*) AS dates, count(*) = (SELECT count(DISTINCT trans_date_trans_time::date) FROM star_t.transaction) AS one_per_date
  FROM star_t.dim_date;

-- SCD type 2: Ann moves; her new transactions get a new version, the old
-- version is closed where the new one starts, old facts keep the old one
SELECT * FROM txpipe.ingest('star_t', (
	SELECT string_agg(star_rec(n, '2019-06-01'::timestamp + n * interval '1 hour', 0, '9 Elm St'), E'\n' ORDER BY n)
	  FROM generate_series(301, 304) n));
SELECT status, rows FROM txpipe.refresh('star_t');
SELECT customer_key, first, street, city, valid_from, valid_to, is_current
  FROM star_t.dim_customer WHERE first = 'Ann' ORDER BY valid_from;
SELECT d.street, count(*) AS facts, min(f.trans_date_trans_time) AS first, max(f.trans_date_trans_time) AS last
  FROM star_t.fact_transaction f JOIN star_t.dim_customer d USING (customer_key)
 WHERE d.first = 'Ann' GROUP BY 1 ORDER BY 2 DESC;
SELECT count(*) AS facts_on_wrong_version
  FROM star_t.fact_transaction f JOIN star_t.transaction t USING (transaction_id)
 WHERE f.customer_key <> t.customer_version_id;
SELECT first, count(*) AS versions, count(*) FILTER (WHERE is_current) AS current
  FROM star_t.dim_customer GROUP BY 1 ORDER BY 1;

-- a late event lands in its own date (and month partition); its version's
-- valid_from moves back to it
SELECT * FROM txpipe.ingest('star_t', star_rec(305, '2018-12-25 10:00', 1));
SELECT status, rows FROM txpipe.refresh('star_t');
SELECT f.date_key, d.day_name, d.is_weekend, f.hour, c.first, c.valid_from, c.is_current
  FROM star_t.fact_transaction f JOIN star_t.dim_date d USING (date_key) JOIN star_t.dim_customer c USING (customer_key)
 WHERE f.trans_num = md5('star305');
SELECT tableoid::regclass AS partition FROM star_t.fact_transaction WHERE trans_num = md5('star305');
SELECT * FROM star_check;

-- a rerun over refreshed rows writes nothing
SELECT star_t.refresh_star(100, 200) AS rewritten;

-- a full rebuild gives exactly the incremental result
CREATE TEMP TABLE inc_fact AS SELECT * FROM star_t.fact_transaction;
CREATE TEMP TABLE inc_customer AS SELECT * FROM star_t.dim_customer;
CREATE TEMP TABLE inc_location AS SELECT * FROM star_t.dim_location;
CREATE TEMP TABLE inc_merchant AS SELECT * FROM star_t.dim_merchant;
CREATE TEMP TABLE inc_category AS SELECT * FROM star_t.dim_category;
CREATE TEMP TABLE inc_date AS SELECT * FROM star_t.dim_date;
SELECT status, rows, watermark_from, watermark_to = (SELECT max(transaction_id) FROM star_t.transaction) AS to_max
  FROM txpipe.refresh('star_t', full => true);
SELECT
	(SELECT count(*) FROM ((TABLE inc_fact EXCEPT TABLE star_t.fact_transaction) UNION ALL (TABLE star_t.fact_transaction EXCEPT TABLE inc_fact)) x) AS fact_diff,
	(SELECT count(*) FROM ((TABLE inc_customer EXCEPT TABLE star_t.dim_customer) UNION ALL (TABLE star_t.dim_customer EXCEPT TABLE inc_customer)) x) AS customer_diff,
	(SELECT count(*) FROM ((TABLE inc_location EXCEPT TABLE star_t.dim_location) UNION ALL (TABLE star_t.dim_location EXCEPT TABLE inc_location)) x) AS location_diff,
	(SELECT count(*) FROM ((TABLE inc_merchant EXCEPT TABLE star_t.dim_merchant) UNION ALL (TABLE star_t.dim_merchant EXCEPT TABLE inc_merchant)) x) AS merchant_diff,
	(SELECT count(*) FROM ((TABLE inc_category EXCEPT TABLE star_t.dim_category) UNION ALL (TABLE star_t.dim_category EXCEPT TABLE inc_category)) x) AS category_diff,
	(SELECT count(*) FROM ((TABLE inc_date EXCEPT TABLE star_t.dim_date) UNION ALL (TABLE star_t.dim_date EXCEPT TABLE inc_date)) x) AS date_diff,
	(SELECT count(*) FROM inc_fact) AS facts;
SELECT * FROM star_check;
-- the rebuild dropped the facts' foreign keys and added them back, checked,
-- on the table and on every partition
SELECT count(*) FILTER (WHERE c.conrelid = 'star_t.fact_transaction'::regclass) AS on_table,
	   count(*) FILTER (WHERE c.conrelid <> 'star_t.fact_transaction'::regclass) AS on_partitions,
	   (SELECT count(*) FROM pg_inherits i WHERE i.inhparent = 'star_t.fact_transaction'::regclass) AS partitions,
	   bool_and(c.convalidated) AS validated
  FROM pg_constraint c
 WHERE c.contype = 'f'
   AND c.conrelid IN (SELECT 'star_t.fact_transaction'::regclass
					  UNION ALL
					  SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = 'star_t.fact_transaction'::regclass);

-- every run is recorded
SELECT rows, status, watermark_from, watermark_to > watermark_from AS advanced, "full",
	   finished_at >= started_at AS timed, pid = pg_backend_pid() AS this_backend
  FROM txpipe.refresh_runs WHERE pipeline = 'star_t' ORDER BY run_id;
SELECT watermark = (SELECT max(transaction_id) FROM star_t.transaction) AS at_max, refreshed_at IS NOT NULL AS refreshed
  FROM txpipe.refresh_state WHERE pipeline = 'star_t';

-- reporting views
SELECT sum(transactions) = (SELECT count(*) FROM star_t.fact_transaction) AS all_counted,
	   sum(fraud) AS fraud, sum(amt) = (SELECT sum(amt) FROM star_t.fact_transaction) AS amt_equal
  FROM star_t.fraud_by_city;
SELECT * FROM star_t.fraud_by_city WHERE date BETWEEN '2019-03-01' AND '2019-03-03' ORDER BY state, city, date;
SELECT * FROM star_t.daily_totals WHERE date = '2019-03-02' ORDER BY location_key;
SELECT * FROM star_t.transactions_per_minute WHERE minute < '2019-03-01 20:00' ORDER BY minute;
SELECT cc_num, first, last, dob, trans_date_trans_time, amt, merchant, category, is_fraud
  FROM star_t.card_activity WHERE cc_num = 4000000000000000 AND dob = '1970-01-01'
 ORDER BY trans_date_trans_time DESC LIMIT 3;
SELECT count(*) AS wrong_dob FROM star_t.card_activity WHERE cc_num = 4000000000000000 AND dob = '1970-01-02';

-- txpipe_reader reads the star and the views, not the normalized tables
SET ROLE txpipe_reader;
SELECT count(*) AS facts FROM star_t.fact_transaction;
SELECT count(*) > 0 AS rows FROM star_t.card_activity;
SELECT card_key, cc_masked, first, last, trans_date_trans_time, amt, merchant, category, is_fraud
  FROM star_t.card_lookup('4000000000000000', '1970-01-01') LIMIT 3;
SELECT count(*) AS wrong_dob FROM star_t.card_lookup('4000000000000000', '1970-01-02');
SELECT count(*) FROM star_t.transaction;
SELECT count(*) > 0 AS runs FROM txpipe.refresh_runs;
RESET ROLE;

-- scheduling: pg_cron keeps its jobs in another database (cron.database_name)
\set SHOW_CONTEXT never
SELECT txpipe.schedule_refresh('star_t');
SELECT txpipe.unschedule_refresh('star_t');
\set SHOW_CONTEXT never

-- txpipe.stats shows the watermark and how long ago it moved
SELECT pipeline, refresh_watermark = (SELECT max(transaction_id) FROM star_t.transaction) AS at_max,
	   refresh_lag < interval '1 hour' AS recent
  FROM txpipe.stats WHERE pipeline = 'star_t';

-- dropping a pipeline drops its watermark
SELECT txpipe.drop_pipeline('events_r');
SELECT pipeline FROM txpipe.refresh_state ORDER BY 1;
