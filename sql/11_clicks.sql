\set SHOW_CONTEXT never
-- The clicks template: behaviour events (the REES46 columns, no event id)
-- into users, session, category, brand, product and event; what the
-- contract accepts and rejects; the star and its refresh.
\set VERBOSITY default
SET TimeZone = 'UTC';
TRUNCATE txpipe.rejects, txpipe.batches, txpipe.refresh_runs, txpipe.refresh_state;

SELECT txpipe.install_template('clicks', 'clicks_t');
-- idempotent
SELECT txpipe.install_template('clicks', 'clicks_t');
SELECT route, kind, target, write_path FROM txpipe.plan('clicks_t');

-- The file's own shapes: times like "2019-10-01 00:00:04 UTC", a 19-digit
-- category id above 2^53, category_code and brand missing (absent or
-- null), an event without a session, prices that change.  An event's
-- identity is its content: an exact copy of a row (the source has such
-- rows; null and absent are the same), a re-sent record, and the same
-- event as the clickstream simulator sends it (every field a string, ""
-- for a missing one, plus txn_timestamp) are duplicates.
SELECT * FROM txpipe.ingest('clicks_t', concat_ws(E'\n',
	'{"event_time": "2019-10-01 00:00:04 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "category_code": "electronics.smartphone", "brand": "samsung", "price": 130.76, "user_id": 543272936, "user_session": "8187d148-3c41-46d4-b0c0-9c08cd9dc564"}',
	'{"event_time": "2019-10-01 00:01:10 UTC", "event_type": "cart", "product_id": 1004856, "category_id": 2053013555631882655, "category_code": "electronics.smartphone", "brand": "samsung", "price": 130.76, "user_id": 543272936, "user_session": "8187d148-3c41-46d4-b0c0-9c08cd9dc564"}',
	'{"event_time": "2019-10-01 00:02:31 UTC", "event_type": "purchase", "product_id": 1004856, "category_id": 2053013555631882655, "category_code": "electronics.smartphone", "brand": "samsung", "price": 129.99, "user_id": 543272936, "user_session": "8187d148-3c41-46d4-b0c0-9c08cd9dc564"}',
	'{"event_time": "2019-10-01 00:02:31 UTC", "event_type": "view", "product_id": 3900821, "category_id": 2053013552326770905, "category_code": "appliances.environment.water_heater", "price": 33.20, "user_id": 554748717, "user_session": "9333dfbd-b87a-4708-9857-6336556b0fcc"}',
	'{"event_time": "2019-10-01 00:03:00 UTC", "event_type": "view", "product_id": 17200506, "category_id": 2053013559792632471, "category_code": null, "brand": null, "price": 543.10, "user_id": 519107250, "user_session": null}',
	'{"event_time": "2019-10-01 00:03:00 UTC", "event_type": "view", "product_id": 17200506, "category_id": 2053013559792632471, "price": 543.10, "user_id": 519107250}',
	'{"event_time": "2019-10-01 00:04:00 UTC", "event_type": "remove_from_cart", "product_id": 1004856, "category_id": 2053013555631882655, "brand": "samsung", "price": 130.76, "user_id": 543272936, "user_session": "8187d148-3c41-46d4-b0c0-9c08cd9dc564"}',
	'{"event_time": "2019-10-31 23:59:59 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "category_code": "electronics.smartphone", "brand": "samsung", "price": 127.50, "user_id": 554748717, "user_session": "4e3c6a8e-5d0f-4e4a-9a0c-3b6e1c2f7d11"}',
	'{"event_time": "2019-10-01 00:00:04 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "category_code": "electronics.smartphone", "brand": "samsung", "price": 130.76, "user_id": 543272936, "user_session": "8187d148-3c41-46d4-b0c0-9c08cd9dc564"}',
	'{"event_time": "2019-10-01 00:03:00 UTC", "event_type": "view", "product_id": "17200506", "category_id": "2053013559792632471", "category_code": "", "brand": "", "price": "543.10", "user_id": "519107250", "user_session": "", "txn_timestamp": "2024-05-01T10:00:00.123456"}'));

SELECT e.event_seq, e.event_time, e.event_type, e.product_id, e.price, e.user_id, s.user_session,
	   c.category_id, c.category_code, b.brand
  FROM clicks_t.event e
  LEFT JOIN clicks_t.session s USING (session_id)
  JOIN clicks_t.product p ON p.product_id = e.product_id
  JOIN clicks_t.category c ON c.category_id = p.category_id
  LEFT JOIN clicks_t.brand b ON b.brand_id = p.brand_id
 ORDER BY e.event_seq;
-- the category ids are kept exactly: a double would make ...655 into ...752
SELECT category_id, category_id = 2053013555631882655 AS exact FROM clicks_t.category ORDER BY 1;
SELECT (SELECT count(*) FROM clicks_t.users) AS users, (SELECT count(*) FROM clicks_t.session) AS sessions,
	   (SELECT count(*) FROM clicks_t.brand) AS brands, (SELECT count(*) FROM clicks_t.product) AS products;

-- Bad records are dead-lettered with a code and a path.
SELECT * FROM txpipe.ingest('clicks_t', concat_ws(E'\n',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "wishlist", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76, "user_id": 543272936}',
	'{"event_time": "2019-10-32 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76, "user_id": 543272936}',
	'{"event_time": "1569924000", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76, "user_id": 543272936}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2.0530135556318828e+18, "price": 130.76, "user_id": 543272936}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "brand": "Samsung", "price": 130.76, "user_id": 543272936}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76, "user_id": 543272936, "user_session": "8187d148-3c41-46d4"}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": -1, "user_id": 543272936}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": "130,76", "user_id": 543272936}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76, "user_id": 543272936, "referrer": "x"}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "category_code": "Electronics Smartphone", "price": 130.76, "user_id": 543272936}',
	'{"event_time": "2019-10-01T02:04:00+02", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76, "user_id": 543272936}',
	'{"event_time": "2019-10-31 23:59:59Z", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76, "user_id": 543272936}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856, "category_id": 2053013555631882655, "price": 130.76, "user_id": 0}',
	'{"event_time": "2019-10-02 10:00:00 UTC", "event_type": "view", "product_id": 1004856'));
SELECT row_number() OVER (ORDER BY reject_id) AS n, error_code, error_path, message
  FROM txpipe.rejects WHERE pipeline = 'clicks_t' ORDER BY reject_id;
SELECT * FROM txpipe.validate('clicks_t', '{"event_time": "2019-10-01 24:00:00 UTC", "event_type": "view", "product_id": 1, "category_id": 1, "price": 1}');
SELECT count(*) AS events FROM clicks_t.event;

-- The star.  Dates and hours are UTC whatever the session's time zone.
SET TimeZone = 'Asia/Tokyo';
SELECT status, rows, watermark_from, watermark_to FROM txpipe.refresh('clicks_t');
RESET TimeZone;
SET TimeZone = 'UTC';
SELECT event_seq, event_time, date_key, hour, event_type, user_key, session_id IS NOT NULL AS has_session,
	   product_key, category_key, brand_key, price
  FROM clicks_t.fact_event ORDER BY event_seq;
SELECT * FROM clicks_t.dim_category ORDER BY category_key;
SELECT * FROM clicks_t.dim_brand ORDER BY brand_key;
SELECT * FROM clicks_t.dim_product ORDER BY product_key;
SELECT * FROM clicks_t.dim_user ORDER BY user_key;
SELECT date_key, date, day_name, is_weekend FROM clicks_t.dim_date ORDER BY 1;
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'clicks_t.fact_event'::regclass ORDER BY 1;

-- reporting views
SELECT * FROM clicks_t.funnel_daily ORDER BY date;
SELECT rank, brand, purchases, revenue, views, carts, purchases_per_view FROM clicks_t.top_brands ORDER BY rank, brand;
SELECT * FROM clicks_t.brand_daily ORDER BY date, brand;
SELECT * FROM clicks_t.user_events_per_minute ORDER BY minute, user_key;
SELECT minute, user_key, events, views, carts, purchases, products
  FROM clicks_t.session_events_per_minute ORDER BY minute, user_key;

-- More events, one of them late (before the user's first), then an
-- incremental refresh; a full rebuild gives the same star.
SELECT * FROM txpipe.ingest('clicks_t', concat_ws(E'\n',
	'{"event_time": "2019-11-02 08:00:00 UTC", "event_type": "view", "product_id": 5100816, "category_id": 2053013553375346967, "category_code": "computers.notebook", "brand": "apple", "price": 1029.01, "user_id": 543272936, "user_session": "0b1f3c0e-8a8e-4d7c-9f6b-2f4e5d6c7b8a"}',
	'{"event_time": "2019-11-02 08:00:30 UTC", "event_type": "purchase", "product_id": 5100816, "category_id": 2053013553375346967, "category_code": "computers.notebook", "brand": "apple", "price": 1029.01, "user_id": 543272936, "user_session": "0b1f3c0e-8a8e-4d7c-9f6b-2f4e5d6c7b8a"}',
	'{"event_time": "2019-09-30 23:59:00 UTC", "event_type": "view", "product_id": 3900821, "category_id": 2053013552326770905, "price": 35.00, "user_id": 554748717, "user_session": "9333dfbd-b87a-4708-9857-6336556b0fcc"}'));
SELECT status, rows, watermark_from, watermark_to FROM txpipe.refresh('clicks_t');
SELECT * FROM clicks_t.dim_user ORDER BY user_key;
CREATE TEMP TABLE star_incremental AS
SELECT 'fact' AS t, to_jsonb(f) - 'event_seq' AS r FROM clicks_t.fact_event f
UNION ALL SELECT 'product', to_jsonb(d) FROM clicks_t.dim_product d
UNION ALL SELECT 'category', to_jsonb(d) FROM clicks_t.dim_category d
UNION ALL SELECT 'brand', to_jsonb(d) FROM clicks_t.dim_brand d
UNION ALL SELECT 'user', to_jsonb(d) FROM clicks_t.dim_user d
UNION ALL SELECT 'date', to_jsonb(d) FROM clicks_t.dim_date d;
SELECT status, rows, watermark_from, watermark_to FROM txpipe.refresh('clicks_t', full => true);
CREATE TEMP TABLE star_full AS
SELECT 'fact' AS t, to_jsonb(f) - 'event_seq' AS r FROM clicks_t.fact_event f
UNION ALL SELECT 'product', to_jsonb(d) FROM clicks_t.dim_product d
UNION ALL SELECT 'category', to_jsonb(d) FROM clicks_t.dim_category d
UNION ALL SELECT 'brand', to_jsonb(d) FROM clicks_t.dim_brand d
UNION ALL SELECT 'user', to_jsonb(d) FROM clicks_t.dim_user d
UNION ALL SELECT 'date', to_jsonb(d) FROM clicks_t.dim_date d;
SELECT (SELECT count(*) FROM star_full) AS star_rows,
	   NOT EXISTS (SELECT * FROM star_incremental EXCEPT ALL SELECT * FROM star_full)
	   AND NOT EXISTS (SELECT * FROM star_full EXCEPT ALL SELECT * FROM star_incremental) AS full_equals_incremental;
-- the star's totals equal the normalized tables'
SELECT (SELECT (count(*), sum(price) FILTER (WHERE event_type = 'purchase'))::text FROM clicks_t.fact_event)
	 = (SELECT (count(*), sum(price) FILTER (WHERE event_type = 'purchase'))::text FROM clicks_t.event) AS totals_equal;

-- txpipe_reader reads the star and the views, not the normalized tables
SELECT has_table_privilege('txpipe_reader', 'clicks_t.fact_event', 'SELECT') AS fact,
	   has_table_privilege('txpipe_reader', 'clicks_t.funnel_daily', 'SELECT') AS funnel,
	   has_table_privilege('txpipe_reader', 'clicks_t.top_brands', 'SELECT') AS top_brands,
	   has_table_privilege('txpipe_reader', 'clicks_t.event', 'SELECT') AS event;

SELECT txpipe.drop_pipeline('clicks_t');
SET client_min_messages = warning;
DROP SCHEMA clicks_t CASCADE;
RESET client_min_messages;
