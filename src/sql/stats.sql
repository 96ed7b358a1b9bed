-- txpipe.stats: one row per pipeline.
--
-- The totals are txpipe.counters (folded batches) plus the batches not
-- folded yet, both read in the view's one snapshot: a fold moves batches
-- from one side to the other in a single transaction, so the sum is exact
-- whether nothing, some or everything has been folded.

CREATE VIEW txpipe.stats AS
SELECT p.name AS pipeline,
	   coalesce(c.received, 0) OPERATOR(pg_catalog.+) coalesce(b.received, 0) AS received,
	   coalesce(c.accepted, 0) OPERATOR(pg_catalog.+) coalesce(b.accepted, 0) AS accepted,
	   coalesce(c.rejected, 0) OPERATOR(pg_catalog.+) coalesce(b.rejected, 0) AS rejected,
	   coalesce(c.duplicates, 0) OPERATOR(pg_catalog.+) coalesce(b.duplicates, 0) AS duplicates,
	   l.finished_at AS last_batch_at,
	   l.received AS last_batch_rows,
	   r.rows_per_s,
	   coalesce(q.backlog, 0) AS backlog,
	   now() - q.oldest AS backlog_age,
	   f.watermark AS refresh_watermark,
	   f.refreshed_at,
	   now() - f.refreshed_at AS refresh_lag,
	   coalesce(a.alerts, 0) AS alerts,
	   coalesce(a.open_alerts, 0) AS open_alerts
  FROM txpipe.pipelines p
  LEFT JOIN txpipe.refresh_state f ON f.pipeline = p.name
  LEFT JOIN txpipe.counters c ON c.pipeline = p.name
  LEFT JOIN LATERAL (
		SELECT count(*) AS backlog, min(w.enqueued_at) AS oldest
		  FROM txpipe.queue w WHERE w.pipeline = p.name) q ON true
  LEFT JOIN LATERAL (
		SELECT sum(u.received)::bigint AS received, sum(u.accepted)::bigint AS accepted,
			   sum(u.rejected)::bigint AS rejected, sum(u.duplicates)::bigint AS duplicates
		  FROM txpipe.batches u WHERE u.pipeline = p.name AND NOT u.folded) b ON true
  LEFT JOIN LATERAL (
		SELECT finished_at, received FROM txpipe.batches
		 WHERE pipeline = p.name ORDER BY finished_at DESC LIMIT 1) l ON true
  LEFT JOIN LATERAL (
		SELECT round(sum(received) / nullif(extract(epoch FROM sum(duration)), 0))::bigint AS rows_per_s
		  FROM txpipe.batches
		 WHERE pipeline = p.name AND finished_at > now() - interval '1 minute') r ON true
  LEFT JOIN LATERAL (
		SELECT count(*) AS alerts, count(*) FILTER (WHERE x.acknowledged_at IS NULL) AS open_alerts
		  FROM txpipe.alerts x WHERE x.pipeline = p.name) a ON true;
COMMENT ON VIEW txpipe.stats IS 'per pipeline: records received, accepted, rejected, duplicates; the last batch; routing rate over the last minute; records waiting in the inbox and the age of the oldest; star refresh watermark and lag; alerts raised and not acknowledged yet';

-- Open alerts for dashboards (txpipe_reader): keys masked as their rules
-- say, so a card number shows only its last four digits.
CREATE VIEW txpipe.open_alerts AS
SELECT a.alert_id, a.pipeline, a.rule, a.severity, a.key_masked AS key, a.record_key,
	   a.event_time, a.window_start, a.raised_at, a.details
  FROM txpipe.alerts a
 WHERE a.acknowledged_at IS NULL;
COMMENT ON VIEW txpipe.open_alerts IS 'alerts not acknowledged yet, keys masked as their rules say (mask_key)';

-- Adds up to max_batches committed, unfolded batches to txpipe.counters and
-- marks them folded, in one statement.  A batch still being written is not
-- visible yet and waits for a later fold, whatever its batch_id; rows
-- another fold holds are skipped, never waited for or counted twice.
-- Returns the batches folded.
CREATE FUNCTION txpipe._fold(max_batches integer)
RETURNS bigint
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
	WITH f AS (
		UPDATE ONLY txpipe.batches b SET folded = true
		 WHERE b.batch_id OPERATOR(pg_catalog.=) ANY (ARRAY(
				SELECT x.batch_id FROM ONLY txpipe.batches x
				 WHERE NOT x.folded
				 LIMIT max_batches
				   FOR UPDATE SKIP LOCKED))
		   AND NOT b.folded
		RETURNING b.pipeline, b.received, b.accepted, b.rejected, b.duplicates),
	s AS (
		INSERT INTO txpipe.counters AS c (pipeline, received, accepted, rejected, duplicates, batches, folded_at)
		SELECT f.pipeline, pg_catalog.sum(f.received), pg_catalog.sum(f.accepted), pg_catalog.sum(f.rejected),
			   pg_catalog.sum(f.duplicates), pg_catalog.count(*), pg_catalog.now()
		  FROM f GROUP BY f.pipeline ORDER BY f.pipeline
		ON CONFLICT (pipeline) DO UPDATE
		   SET received = c.received OPERATOR(pg_catalog.+) excluded.received,
			   accepted = c.accepted OPERATOR(pg_catalog.+) excluded.accepted,
			   rejected = c.rejected OPERATOR(pg_catalog.+) excluded.rejected,
			   duplicates = c.duplicates OPERATOR(pg_catalog.+) excluded.duplicates,
			   batches = c.batches OPERATOR(pg_catalog.+) excluded.batches,
			   folded_at = excluded.folded_at
		RETURNING 1)
	SELECT pg_catalog.count(*) FROM f
$$;

-- Retention: folds every committed batch, then deletes folded batches that
-- finished before now() - batches_keep, rejects last received before
-- now() - rejects_keep and alerts acknowledged before now() - alerts_keep
-- (NULL: keep), in statements of 1000 rows; at most max_rows (NULL: no
-- limit) of each kind per call.  Unfolded batches and open alerts are
-- never deleted.  Returns what it did.
CREATE FUNCTION txpipe._prune(rejects_keep interval, batches_keep interval, alerts_keep interval,
	max_rows bigint, OUT folded bigint, OUT batches bigint, OUT rejects bigint, OUT alerts bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	c_chunk constant integer := 1000;
	v_limit bigint := coalesce(max_rows, 9223372036854775807);
	v_cut timestamptz;
	v_n bigint;
	v_want bigint;
	v_pipeline text;
BEGIN
	folded := 0;
	batches := 0;
	rejects := 0;
	alerts := 0;
	LOOP
		v_n := txpipe._fold(least(10 * c_chunk, v_limit - folded)::integer);
		folded := folded + v_n;
		EXIT WHEN v_n < 10 * c_chunk OR folded >= v_limit;
	END LOOP;

	IF batches_keep IS NOT NULL THEN
		v_cut := pg_catalog.now() - batches_keep;
		-- every folded batch's pipeline has a counters row: walk the
		-- (pipeline, finished_at) index pipeline by pipeline
		FOR v_pipeline IN SELECT c.pipeline FROM txpipe.counters c ORDER BY c.pipeline LOOP
			LOOP
				v_want := least(c_chunk, v_limit - batches);
				EXIT WHEN v_want <= 0;
				DELETE FROM ONLY txpipe.batches b
				 WHERE b.batch_id OPERATOR(pg_catalog.=) ANY (ARRAY(
						SELECT x.batch_id FROM ONLY txpipe.batches x
						 WHERE x.pipeline OPERATOR(pg_catalog.=) v_pipeline
						   AND x.finished_at OPERATOR(pg_catalog.<) v_cut AND x.folded
						 LIMIT v_want))
				   AND b.finished_at OPERATOR(pg_catalog.<) v_cut AND b.folded;
				GET DIAGNOSTICS v_n = ROW_COUNT;
				batches := batches + v_n;
				EXIT WHEN v_n < v_want;
			END LOOP;
		END LOOP;
	END IF;

	IF rejects_keep IS NOT NULL THEN
		v_cut := pg_catalog.now() - rejects_keep;
		LOOP
			v_want := least(c_chunk, v_limit - rejects);
			EXIT WHEN v_want <= 0;
			-- the condition again on the row itself: a repeat of the reject
			-- received meanwhile keeps it
			DELETE FROM ONLY txpipe.rejects r
			 WHERE r.reject_id OPERATOR(pg_catalog.=) ANY (ARRAY(
					SELECT x.reject_id FROM ONLY txpipe.rejects x
					 WHERE x.last_received_at OPERATOR(pg_catalog.<) v_cut
					 LIMIT v_want))
			   AND r.last_received_at OPERATOR(pg_catalog.<) v_cut;
			GET DIAGNOSTICS v_n = ROW_COUNT;
			rejects := rejects + v_n;
			EXIT WHEN v_n < v_want;
		END LOOP;
	END IF;

	IF alerts_keep IS NOT NULL THEN
		v_cut := pg_catalog.now() - alerts_keep;
		LOOP
			v_want := least(c_chunk, v_limit - alerts);
			EXIT WHEN v_want <= 0;
			DELETE FROM ONLY txpipe.alerts a
			 WHERE a.alert_id OPERATOR(pg_catalog.=) ANY (ARRAY(
					SELECT x.alert_id FROM ONLY txpipe.alerts x
					 WHERE x.acknowledged_at OPERATOR(pg_catalog.<) v_cut
					 LIMIT v_want))
			   AND a.acknowledged_at OPERATOR(pg_catalog.<) v_cut;
			GET DIAGNOSTICS v_n = ROW_COUNT;
			alerts := alerts + v_n;
			EXIT WHEN v_n < v_want;
		END LOOP;
	END IF;
END;
$$;

-- What an administrator or a pg_cron job calls: the same as the worker's
-- pass with the txpipe.rejects_retention and txpipe.batches_retention
-- settings, without its per-pass bound.
CREATE FUNCTION txpipe.prune(OUT folded bigint, OUT batches bigint, OUT rejects bigint, OUT alerts bigint)
AS 'MODULE_PATHNAME', 'txpipe_prune'
LANGUAGE C VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp;

-- refresh_runs is created in refresh.sql; its ids go on after a restore too.
SELECT pg_catalog.pg_extension_config_dump('txpipe.refresh_runs_run_id_seq', '');
