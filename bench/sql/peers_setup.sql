-- bench/run, the peer rows: the events every peer row sends, prepared once
-- and read by a primary-key lookup per event (or per batch of events), so
-- that reading them costs the peers little and the same.
--
-- bench.peer_docs (i, doc): the generated lines as they are, numbered in
-- file order (filled by bench/run with \copy before this script runs).
-- bench.pe_events: the same events with their fields already typed, what
-- the originals' per-event function had in hand once it had parsed the
-- event, so the per-event row pays for its statements, not for parsing.

DROP TABLE IF EXISTS bench.pe_events;
CREATE TABLE bench.pe_events AS
SELECT d.i,
	   j->>'state' AS state,
	   j->>'city' AS city,
	   lpad(j->>'zip', 5, '0') AS zip,
	   (j->>'lat')::float8 AS lat,
	   (j->>'long')::float8 AS long,
	   (j->>'city_pop')::integer AS city_pop,
	   j->>'first' AS first,
	   j->>'last' AS last,
	   (j->>'dob')::date AS dob,
	   j->>'gender' AS gender,
	   j->>'job' AS job,
	   j->>'street' AS street,
	   (j->>'cc_num')::bigint AS cc_num,
	   j->>'category' AS category,
	   j->>'merchant' AS merchant,
	   j->>'trans_num' AS trans_num,
	   (j->>'trans_date_trans_time')::timestamp AS ts,
	   (j->>'unix_time')::bigint AS unix_time,
	   (j->>'amt')::numeric(12,2) AS amt,
	   (j->>'merch_lat')::float8 AS merch_lat,
	   (j->>'merch_long')::float8 AS merch_long,
	   (j->>'is_fraud')::integer = 1 AS is_fraud
  FROM bench.peer_docs d, LATERAL (SELECT d.doc::jsonb AS j OFFSET 0) x;  -- OFFSET 0: parsed once, not once per field
ALTER TABLE bench.pe_events ADD PRIMARY KEY (i);
VACUUM ANALYZE bench.peer_docs;
VACUUM ANALYZE bench.pe_events;
