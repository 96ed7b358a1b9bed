-- txpipe.stats: one row per pipeline.

CREATE VIEW txpipe.stats AS
SELECT p.name AS pipeline,
	   coalesce(b.received, 0) AS received,
	   coalesce(b.accepted, 0) AS accepted,
	   coalesce(b.rejected, 0) AS rejected,
	   coalesce(b.duplicates, 0) AS duplicates,
	   l.finished_at AS last_batch_at,
	   l.received AS last_batch_rows,
	   r.rows_per_s,
	   coalesce(q.backlog, 0) AS backlog,
	   now() - q.oldest AS backlog_age,
	   f.watermark AS refresh_watermark,
	   f.refreshed_at,
	   now() - f.refreshed_at AS refresh_lag
  FROM txpipe.pipelines p
  LEFT JOIN txpipe.refresh_state f ON f.pipeline = p.name
  LEFT JOIN LATERAL (
		SELECT count(*) AS backlog, min(w.enqueued_at) AS oldest
		  FROM txpipe.queue w WHERE w.pipeline = p.name) q ON true
  LEFT JOIN LATERAL (
		SELECT sum(received)::bigint AS received, sum(accepted)::bigint AS accepted,
			   sum(rejected)::bigint AS rejected, sum(duplicates)::bigint AS duplicates
		  FROM txpipe.batches WHERE pipeline = p.name) b ON true
  LEFT JOIN LATERAL (
		SELECT finished_at, received FROM txpipe.batches
		 WHERE pipeline = p.name ORDER BY finished_at DESC LIMIT 1) l ON true
  LEFT JOIN LATERAL (
		SELECT round(sum(received) / nullif(extract(epoch FROM sum(duration)), 0))::bigint AS rows_per_s
		  FROM txpipe.batches
		 WHERE pipeline = p.name AND finished_at > now() - interval '1 minute') r ON true;
COMMENT ON VIEW txpipe.stats IS 'per pipeline: records received, accepted, rejected, duplicates; the last batch; routing rate over the last minute; records waiting in the inbox and the age of the oldest; star refresh watermark and lag';
