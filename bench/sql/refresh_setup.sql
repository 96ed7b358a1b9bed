-- The refresh rows: transactions of cards_refresh made set-based from a
-- routed sample, so that millions of them take seconds, not the minutes
-- routing them would.  bench/run routes a generated file (txpipe gen cards,
-- no bad records, no re-sends) into cards_refresh first: its cities,
-- customers, versions, cards, merchants and categories are the
-- generator's, made by txpipe.  This file keeps those transactions, in
-- routing order (which is event time order), as bench.refresh_seed and
-- empties cards_refresh.transaction; bench.refresh_add() then writes rows
-- that copy them.

CREATE SCHEMA IF NOT EXISTS bench;

DROP TABLE IF EXISTS bench.refresh_seed;
CREATE TABLE bench.refresh_seed AS
SELECT row_number() OVER (ORDER BY transaction_id) AS k,
	   trans_date_trans_time, unix_time, card_id, customer_version_id, merchant_id,
	   category_id, amt, merch_lat, merch_long, is_fraud
  FROM cards_refresh.transaction;
ALTER TABLE bench.refresh_seed ADD PRIMARY KEY (k);
ANALYZE bench.refresh_seed;
TRUNCATE cards_refresh.transaction RESTART IDENTITY;
-- bench.refresh_add() writes as a replica would (below); the change-log
-- trigger for rows a subscription writes must not take its rows for
-- replicated ones
ALTER TABLE cards_refresh.transaction DISABLE TRIGGER txpipe_changes_replica;

-- Appends n transactions to cards_refresh.transaction, with ids from its
-- sequence as routing draws them, and returns how many.  When n is at
-- least the seed's size, every seed row in turn, each n / seeds times
-- (rounded to whole rows); below it, every (seeds / n)-th seed row from
-- the shift-th on, so that successive batches differ.  Either way the rows
-- keep the seed's order, so ids follow event time as in a routed stream,
-- and customers, cards, merchants, categories, amounts, fraud and times
-- have the generator's distribution.  trans_num is md5(tag:number), 32
-- hex digits like the generator's; tag keeps batches apart.  Foreign keys
-- are not checked row by row (every id is copied from a routed row), which
-- needs a superuser; in a batch of seed size or more, the indexes other
-- than the primary key are dropped and built again after the rows, by
-- sort (half the time of inserting into them).
CREATE OR REPLACE FUNCTION bench.refresh_add(n bigint, tag text, shift bigint DEFAULT 0)
RETURNS bigint
LANGUAGE plpgsql
SET session_replication_role = replica
AS $$
DECLARE
	seeds bigint := (SELECT count(*) FROM bench.refresh_seed);
	step bigint;
	added bigint;
	drops text[];
	builds text[];
	ddl text;
BEGIN
	IF n >= seeds THEN
		SELECT array_agg(format('ALTER TABLE cards_refresh.transaction DROP CONSTRAINT %I', c.conname)),
			   array_agg(format('ALTER TABLE cards_refresh.transaction ADD CONSTRAINT %I %s',
								c.conname, pg_get_constraintdef(c.oid)))
		  INTO drops, builds
		  FROM pg_constraint c
		 WHERE c.conrelid = 'cards_refresh.transaction'::regclass AND c.contype = 'u';
		SELECT coalesce(drops, '{}') || array_agg(format('DROP INDEX %s', i.indexrelid::regclass)),
			   coalesce(builds, '{}') || array_agg(pg_get_indexdef(i.indexrelid))
		  INTO drops, builds
		  FROM pg_index i
		 WHERE i.indrelid = 'cards_refresh.transaction'::regclass
		   AND NOT EXISTS (SELECT 1 FROM pg_constraint c
							WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid);
		FOREACH ddl IN ARRAY drops LOOP
			EXECUTE ddl;
		END LOOP;
		INSERT INTO cards_refresh.transaction (trans_num, trans_date_trans_time, unix_time, card_id,
			customer_version_id, merchant_id, category_id, amt, merch_lat, merch_long, is_fraud)
		SELECT md5(tag || ':' || i), s.trans_date_trans_time, s.unix_time, s.card_id,
			   s.customer_version_id, s.merchant_id, s.category_id, s.amt, s.merch_lat, s.merch_long,
			   s.is_fraud
		  FROM bench.refresh_seed s
		 CROSS JOIN LATERAL generate_series((s.k - 1) * n / seeds + 1, s.k * n / seeds) i
		 ORDER BY s.k;
		GET DIAGNOSTICS added = ROW_COUNT;
		FOREACH ddl IN ARRAY builds LOOP
			EXECUTE ddl;
		END LOOP;
	ELSE
		step := seeds / n;
		INSERT INTO cards_refresh.transaction (trans_num, trans_date_trans_time, unix_time, card_id,
			customer_version_id, merchant_id, category_id, amt, merch_lat, merch_long, is_fraud)
		SELECT md5(tag || ':' || s.k), s.trans_date_trans_time, s.unix_time, s.card_id,
			   s.customer_version_id, s.merchant_id, s.category_id, s.amt, s.merch_lat, s.merch_long,
			   s.is_fraud
		  FROM bench.refresh_seed s
		 WHERE (s.k - 1) % step = shift % step
		 ORDER BY s.k
		 LIMIT n;
		GET DIAGNOSTICS added = ROW_COUNT;
	END IF;
	RETURN added;
END;
$$;
