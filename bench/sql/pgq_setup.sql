-- bench/run, the PgQ rows: queue "peers", consumer "bench", and the
-- consumer's work: each batch of events written into cards_pq (the cards
-- template's tables), set-based, as txpipe's worker routes a batch.
--
-- The consumer runs in the server, like txpipe's worker: a procedure that
-- loops over next_batch, the batch's events into the tables, finish_batch,
-- COMMIT (one transaction per batch, so each event is applied exactly
-- once), and sleeps 5 ms when there is no batch.  PgQ's consumer API is
-- SQL, so nothing is lost by not having a client in between.

SELECT pgq.create_queue('peers');
-- a tick as soon as the ticker finds new events (the default waits for
-- 500 events or 3 seconds): the latency row then measures pgqd's
-- ticker_period, not the queue's batching thresholds
SELECT pgq.set_queue_config('peers', 'ticker_max_lag', '0');
SELECT pgq.register_consumer('peers', 'bench');

-- how far the consumer is, and the seconds it spent in pgq_apply
CREATE TABLE bench.pgq_progress (batches bigint NOT NULL, events bigint NOT NULL, apply_s float8 NOT NULL);
INSERT INTO bench.pgq_progress VALUES (0, 0, 0);

-- The events of batch b into cards_pq.  New dimension keys take the
-- attributes of their first event in the batch; a single consumer writes,
-- so nothing races.
CREATE FUNCTION bench.pgq_apply(b bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	-- one parse per event (jsonb_to_record), not one per field
	INSERT INTO pg_temp.pq_batch
	SELECT e.ev_id, r.state, r.city, lpad(r.zip, 5, '0'), r.lat, r.long, r.city_pop, r.first, r.last,
		   r.dob, r.gender, r.job, r.street, r.cc_num, r.category, r.merchant, r.trans_num,
		   r.trans_date_trans_time, r.unix_time, r.amt, r.merch_lat, r.merch_long, r.is_fraud = 1
	  FROM pgq.get_batch_events(b) e,
		   jsonb_to_record(e.ev_data::jsonb) AS r(state text, city text, zip text, lat float8, long float8,
			   city_pop integer, first text, last text, dob date, gender char(1), job text, street text,
			   cc_num bigint, category text, merchant text, trans_num text, trans_date_trans_time timestamp,
			   unix_time bigint, amt numeric(12,2), merch_lat float8, merch_long float8, is_fraud integer);
	GET DIAGNOSTICS n = ROW_COUNT;
	IF n = 0 THEN
		RETURN 0;
	END IF;
	INSERT INTO cards_pq.state (state)
	SELECT DISTINCT e.state FROM pg_temp.pq_batch e ORDER BY 1
	ON CONFLICT (state) DO NOTHING;
	INSERT INTO cards_pq.city (state_id, city, zip, lat, long, city_pop)
	SELECT DISTINCT ON (s.state_id, e.city, e.zip) s.state_id, e.city, e.zip, e.lat, e.long, e.city_pop
	  FROM pg_temp.pq_batch e JOIN ONLY cards_pq.state s ON s.state = e.state
	 ORDER BY s.state_id, e.city, e.zip, e.ev_id
	ON CONFLICT (state_id, city, zip) DO NOTHING;
	UPDATE pg_temp.pq_batch e SET city_id = c.city_id
	  FROM ONLY cards_pq.state s, ONLY cards_pq.city c
	 WHERE s.state = e.state AND c.state_id = s.state_id AND c.city = e.city AND c.zip = e.zip;
	INSERT INTO cards_pq.customer (first, last, dob, gender, job, street, city_id)
	SELECT DISTINCT ON (e.first, e.last, e.dob) e.first, e.last, e.dob, e.gender, e.job, e.street, e.city_id
	  FROM pg_temp.pq_batch e ORDER BY e.first, e.last, e.dob, e.ev_id
	ON CONFLICT (first, last, dob) DO NOTHING;
	UPDATE pg_temp.pq_batch e SET customer_id = c.customer_id
	  FROM ONLY cards_pq.customer c WHERE c.first = e.first AND c.last = e.last AND c.dob = e.dob;
	INSERT INTO cards_pq.customer_version (customer_id, job, street, city_id, valid_from)
	SELECT DISTINCT ON (e.customer_id, e.job, e.street, e.city_id) e.customer_id, e.job, e.street, e.city_id, e.ts
	  FROM pg_temp.pq_batch e ORDER BY e.customer_id, e.job, e.street, e.city_id, e.ev_id
	ON CONFLICT (customer_id, job, street, city_id) DO NOTHING;
	INSERT INTO cards_pq.card (cc_num, customer_id)
	SELECT DISTINCT ON (e.cc_num) e.cc_num, e.customer_id FROM pg_temp.pq_batch e ORDER BY e.cc_num, e.ev_id
	ON CONFLICT (cc_num) DO NOTHING;
	INSERT INTO cards_pq.merchant (merchant)
	SELECT DISTINCT e.merchant FROM pg_temp.pq_batch e ORDER BY 1
	ON CONFLICT (merchant) DO NOTHING;
	INSERT INTO cards_pq.category (category)
	SELECT DISTINCT e.category FROM pg_temp.pq_batch e ORDER BY 1
	ON CONFLICT (category) DO NOTHING;
	INSERT INTO cards_pq.transaction (trans_num, trans_date_trans_time, unix_time, card_id, customer_version_id,
									  merchant_id, category_id, amt, merch_lat, merch_long, is_fraud)
	SELECT e.trans_num, e.ts, e.unix_time, ca.card_id, v.customer_version_id, m.merchant_id, g.category_id,
		   e.amt, e.merch_lat, e.merch_long, e.is_fraud
	  FROM pg_temp.pq_batch e
	  JOIN ONLY cards_pq.card ca ON ca.cc_num = e.cc_num
	  JOIN ONLY cards_pq.customer_version v ON v.customer_id = e.customer_id AND v.job = e.job
		   AND v.street = e.street AND v.city_id = e.city_id
	  JOIN ONLY cards_pq.merchant m ON m.merchant = e.merchant
	  JOIN ONLY cards_pq.category g ON g.category = e.category
	 ORDER BY e.ev_id
	ON CONFLICT (trans_num) DO NOTHING;
	RETURN n;
END;
$$;

-- The consumer: until it has applied `expected` events, or `max_seconds`
-- have passed.  bench.pgq_progress shows how far it is.
-- (No SET search_path: a procedure with SET clauses cannot COMMIT.)
CREATE PROCEDURE bench.pgq_consume(expected bigint, max_seconds float8)
LANGUAGE plpgsql AS $$
DECLARE
	b bigint;
	n bigint := 0;
	t0 timestamptz := clock_timestamp();
	t timestamptz;
BEGIN
	CREATE TEMP TABLE IF NOT EXISTS pq_batch (
		ev_id bigint, state text, city text, zip text, lat float8, long float8, city_pop integer,
		first text, last text, dob date, gender char(1), job text, street text, cc_num bigint,
		category text, merchant text, trans_num text, ts timestamp, unix_time bigint,
		amt numeric(12,2), merch_lat float8, merch_long float8, is_fraud boolean,
		city_id integer, customer_id integer
	) ON COMMIT DELETE ROWS;
	COMMIT;
	WHILE n < expected AND clock_timestamp() - t0 < make_interval(secs => max_seconds) LOOP
		b := pgq.next_batch('peers', 'bench');
		IF b IS NULL THEN
			COMMIT;
			PERFORM pg_sleep(0.005);
			CONTINUE;
		END IF;
		t := clock_timestamp();
		n := n + bench.pgq_apply(b);
		PERFORM pgq.finish_batch(b);
		UPDATE bench.pgq_progress SET batches = batches + 1, events = n,
			apply_s = apply_s + extract(epoch FROM clock_timestamp() - t);
		COMMIT;
	END LOOP;
END;
$$;
