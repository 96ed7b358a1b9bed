-- The timed SQL baseline: COPY of the NDJSON lines (psql's standard input)
-- into the text staging table, then one transaction of set-based SQL into
-- the normalized tables of schema cards_sql.  bench/run creates the helpers
-- (baseline_setup.sql), empties the staging table and reinstalls cards_sql
-- before each run.  Prints the seconds of each step, and of the whole.
\set ON_ERROR_STOP 1
SET work_mem = '256MB';
SELECT extract(epoch FROM clock_timestamp()) AS t_start \gset
BEGIN;

\copy baseline.staging (doc) FROM pstdin WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')
SELECT extract(epoch FROM clock_timestamp()) AS t_copy \gset

-- parse each line once (NULL when it is not JSON) and find its first
-- contract violation; keep the text only of the lines that are rejected
CREATE UNLOGGED TABLE baseline.checked AS
SELECT line_no, j, reason, CASE WHEN reason IS NOT NULL THEN doc END AS doc
  FROM (SELECT line_no, doc, j,
			   CASE WHEN j IS NULL THEN 'json_syntax $' ELSE baseline.contract_error(j) END AS reason
		  FROM (SELECT line_no, doc, baseline.try_jsonb(doc) AS j
				  FROM baseline.staging WHERE doc IS NOT NULL
				OFFSET 0) AS parsed
		OFFSET 0) AS c;
SELECT extract(epoch FROM clock_timestamp()) AS t_parse \gset

INSERT INTO baseline.rejects (line_no, payload, error_code, error_path)
SELECT line_no, doc, split_part(reason, ' ', 1), split_part(reason, ' ', 2)
  FROM baseline.checked WHERE reason IS NOT NULL;

-- valid records, typed; the first of each trans_num in the file, and none
-- whose trans_num is already stored
CREATE UNLOGGED TABLE baseline.ok AS
SELECT DISTINCT ON (j->>'trans_num')
	   line_no,
	   j->>'trans_num' AS trans_num,
	   (j->>'trans_date_trans_time')::timestamp AS trans_date_trans_time,
	   (j->>'unix_time')::bigint AS unix_time,
	   (j->>'cc_num')::bigint AS cc_num,
	   j->>'merchant' AS merchant,
	   j->>'category' AS category,
	   (j->>'amt')::numeric(12,2) AS amt,
	   (j->>'merch_lat')::double precision AS merch_lat,
	   (j->>'merch_long')::double precision AS merch_long,
	   (j->>'is_fraud')::int::boolean AS is_fraud,
	   j->>'first' AS first,
	   j->>'last' AS last,
	   (j->>'dob')::date AS dob,
	   j->>'gender' AS gender,
	   j->>'job' AS job,
	   j->>'street' AS street,
	   j->>'city' AS city,
	   j->>'state' AS state,
	   lpad(j->>'zip', 5, '0') AS zip,
	   (j->>'lat')::double precision AS lat,
	   (j->>'long')::double precision AS long,
	   (j->>'city_pop')::integer AS city_pop
  FROM baseline.checked c
 WHERE reason IS NULL
   AND NOT EXISTS (SELECT 1 FROM cards_sql.transaction t WHERE t.trans_num = c.j->>'trans_num')
 ORDER BY j->>'trans_num', line_no;
SELECT extract(epoch FROM clock_timestamp()) AS t_dedupe \gset

-- dimensions: get-or-create by natural key.  A new key takes the
-- attributes of its first record in the file: the records that are first
-- for their key (min(line_no), a hash aggregate) are picked before any join,
-- so the joins to the dimensions only see those few.  Each table is
-- analyzed once filled, for the statements that join it next.
ANALYZE baseline.ok;

INSERT INTO cards_sql.state (state)
SELECT DISTINCT state FROM baseline.ok
ON CONFLICT (state) DO NOTHING;
ANALYZE cards_sql.state;

WITH first_seen AS MATERIALIZED (
	SELECT * FROM baseline.ok
	 WHERE line_no IN (SELECT min(line_no) FROM baseline.ok GROUP BY state, city, zip))
INSERT INTO cards_sql.city (state_id, city, zip, lat, long, city_pop)
SELECT s.state_id, o.city, o.zip, o.lat, o.long, o.city_pop
  FROM first_seen o
  JOIN cards_sql.state s ON s.state = o.state
ON CONFLICT (state_id, city, zip) DO NOTHING;
ANALYZE cards_sql.city;

WITH first_seen AS MATERIALIZED (
	SELECT * FROM baseline.ok
	 WHERE line_no IN (SELECT min(line_no) FROM baseline.ok GROUP BY first, last, dob))
INSERT INTO cards_sql.customer (first, last, dob, gender, job, street, city_id)
SELECT o.first, o.last, o.dob, o.gender, o.job, o.street, ci.city_id
  FROM first_seen o
  JOIN cards_sql.state s ON s.state = o.state
  JOIN cards_sql.city ci ON ci.state_id = s.state_id AND ci.city = o.city AND ci.zip = o.zip
ON CONFLICT (first, last, dob) DO NOTHING;
ANALYZE cards_sql.customer;

-- a customer's job and address as of the first record that shows them
WITH first_seen AS MATERIALIZED (
	SELECT * FROM baseline.ok
	 WHERE line_no IN (SELECT min(line_no) FROM baseline.ok
						GROUP BY first, last, dob, job, street, state, city, zip))
INSERT INTO cards_sql.customer_version (customer_id, job, street, city_id, valid_from)
SELECT cu.customer_id, o.job, o.street, ci.city_id, o.trans_date_trans_time
  FROM first_seen o
  JOIN cards_sql.customer cu ON cu.first = o.first AND cu.last = o.last AND cu.dob = o.dob
  JOIN cards_sql.state s ON s.state = o.state
  JOIN cards_sql.city ci ON ci.state_id = s.state_id AND ci.city = o.city AND ci.zip = o.zip
ON CONFLICT (customer_id, job, street, city_id) DO NOTHING;
ANALYZE cards_sql.customer_version;

WITH first_seen AS MATERIALIZED (
	SELECT * FROM baseline.ok
	 WHERE line_no IN (SELECT min(line_no) FROM baseline.ok GROUP BY cc_num))
INSERT INTO cards_sql.card (cc_num, customer_id)
SELECT o.cc_num, cu.customer_id
  FROM first_seen o
  JOIN cards_sql.customer cu ON cu.first = o.first AND cu.last = o.last AND cu.dob = o.dob
ON CONFLICT (cc_num) DO NOTHING;
ANALYZE cards_sql.card;

INSERT INTO cards_sql.category (category)
SELECT DISTINCT category FROM baseline.ok
ON CONFLICT (category) DO NOTHING;
ANALYZE cards_sql.category;

INSERT INTO cards_sql.merchant (merchant)
SELECT DISTINCT merchant FROM baseline.ok
ON CONFLICT (merchant) DO NOTHING;
ANALYZE cards_sql.merchant;
SELECT extract(epoch FROM clock_timestamp()) AS t_dims \gset

-- the fact-grain rows, in file order, joined to their dimension ids
INSERT INTO cards_sql.transaction (trans_num, trans_date_trans_time, unix_time, card_id,
								   customer_version_id, merchant_id, category_id, amt,
								   merch_lat, merch_long, is_fraud)
SELECT o.trans_num, o.trans_date_trans_time, o.unix_time, ca.card_id,
	   cv.customer_version_id, m.merchant_id, k.category_id, o.amt,
	   o.merch_lat, o.merch_long, o.is_fraud
  FROM baseline.ok o
  JOIN cards_sql.card ca ON ca.cc_num = o.cc_num
  JOIN cards_sql.merchant m ON m.merchant = o.merchant
  JOIN cards_sql.category k ON k.category = o.category
  JOIN cards_sql.state s ON s.state = o.state
  JOIN cards_sql.city ci ON ci.state_id = s.state_id AND ci.city = o.city AND ci.zip = o.zip
  JOIN cards_sql.customer cu ON cu.first = o.first AND cu.last = o.last AND cu.dob = o.dob
  JOIN cards_sql.customer_version cv ON cv.customer_id = cu.customer_id AND cv.job = o.job
									AND cv.street = o.street AND cv.city_id = ci.city_id
 ORDER BY o.line_no
ON CONFLICT (trans_num) DO NOTHING;
SELECT extract(epoch FROM clock_timestamp()) AS t_facts \gset

DROP TABLE baseline.checked, baseline.ok;
COMMIT;
SELECT CASE WHEN step = 'elapsed' THEN 'elapsed' ELSE 'step ' || step END,
	   round(seconds::numeric, 3)
  FROM (VALUES ('copy', :t_copy - :t_start),
			   ('parse+contract', :t_parse - :t_copy),
			   ('rejects+dedupe', :t_dedupe - :t_parse),
			   ('dimensions', :t_dims - :t_dedupe),
			   ('transaction', :t_facts - :t_dims),
			   ('commit', extract(epoch FROM clock_timestamp()) - :t_facts),
			   ('elapsed', extract(epoch FROM clock_timestamp()) - :t_start)) AS s (step, seconds);
