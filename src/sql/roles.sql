-- Roles are cluster-wide: created once, kept when the extension is dropped.
DO $$
DECLARE
	r text;
BEGIN
	FOREACH r IN ARRAY ARRAY['txpipe_writer', 'txpipe_reader', 'txpipe_admin'] LOOP
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
			EXECUTE format('CREATE ROLE %I NOLOGIN', r);
		END IF;
	END LOOP;
END;
$$;

-- Who may do what (README, section "Security").  txpipe's own tables are
-- written only by their owner, through txpipe's functions; no role gets
-- INSERT, UPDATE or DELETE on them.  Sending to a pipeline is INSERT on
-- its COPY target txpipe_in.<pipeline>, granted per pipeline
-- (txpipe.grant_send).
GRANT USAGE ON SCHEMA txpipe TO txpipe_writer, txpipe_reader, txpipe_admin;
GRANT USAGE ON SCHEMA txpipe_in TO txpipe_writer, txpipe_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA txpipe FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.month_partitions(regclass, timestamp[], text),
	txpipe.fill_dim_date(regclass, date[]), txpipe.month_range(timestamp, timestamp) TO PUBLIC;
-- sending, to the pipelines one may send to
GRANT EXECUTE ON FUNCTION txpipe.ingest(text, text), txpipe.ingest_raw(text, bytea),
	txpipe.validate(text, text), txpipe.contract(text), txpipe.xact_counts(text),
	txpipe._copy_row(), txpipe._copy_flush(),
	txpipe.enqueue(text, jsonb), txpipe.enqueue(text, jsonb[]),
	txpipe.enqueue(text, text), txpipe.enqueue(text, text[])
	TO txpipe_writer, txpipe_admin;
-- reading what dashboards show
GRANT SELECT ON txpipe.stats, txpipe.batches, txpipe.reject_codes,
	txpipe.refresh_state, txpipe.refresh_runs, txpipe.queue_positions TO txpipe_reader;
-- alerts, with keys masked as their rules say
GRANT SELECT ON txpipe.open_alerts TO txpipe_reader;
-- managing one's own pipelines
GRANT EXECUTE ON FUNCTION txpipe.create_pipeline(text, jsonb, boolean), txpipe.drop_pipeline(text),
	txpipe.grant_send(text, regrole), txpipe.revoke_send(text, regrole),
	txpipe.install_template(text, text), txpipe.plan(text), txpipe.drain(text, integer),
	txpipe.refresh(text, boolean), txpipe.schedule_refresh(text, text, text),
	txpipe.unschedule_refresh(text, text), txpipe.start_worker(), txpipe.stop_worker(),
	txpipe.prune(), txpipe.replay_rejects(text, text, timestamptz, timestamptz, text),
	txpipe.acknowledge_alert(bigint)
	TO txpipe_admin;
-- the change-log trigger, for the grain tables of one's pipelines
GRANT EXECUTE ON FUNCTION txpipe.track_change() TO txpipe_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA txpipe TO txpipe_admin;
-- the inbox's ids: nobody but txpipe (stated, as in databases updated
-- from 0.2.0, whose writers used it)
REVOKE ALL ON SEQUENCE txpipe.inbox_id_seq FROM PUBLIC;

-- Rejects counted by pipeline, code and path, without their payloads:
-- what a dashboard of txpipe_reader shows of them.
CREATE VIEW txpipe.reject_summary AS
SELECT r.pipeline, r.error_code, r.error_path,
	   pg_catalog.sum(r.count) AS rejects,
	   pg_catalog.count(*) FILTER (WHERE r.replayed_at IS NULL) AS not_replayed,
	   pg_catalog.max(r.last_received_at) AS last_received_at
  FROM txpipe.rejects r
 GROUP BY r.pipeline, r.error_code, r.error_path;
COMMENT ON VIEW txpipe.reject_summary IS 'rejects per pipeline, code and path (counts, not payloads): what txpipe_reader sees of them';
GRANT SELECT ON txpipe.reject_summary TO txpipe_reader;

-- The txpipe background processes of this server (pid, database, since
-- when, state): what a dashboard of txpipe_reader shows of them, which
-- pg_stat_activity hides from a role that is not a superuser.  No query
-- text: the workers' statements can carry records.
CREATE FUNCTION txpipe.workers()
RETURNS TABLE (pid integer, backend_type text, database name, backend_start timestamptz,
	state text, wait_event text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $f$
	SELECT a.pid, a.backend_type, a.datname, a.backend_start, a.state, a.wait_event
	  FROM pg_catalog.pg_stat_activity a
	 WHERE a.backend_type OPERATOR(pg_catalog.=) ANY (ARRAY['txpipe worker', 'txpipe launcher'])
	 ORDER BY a.pid
$f$;
REVOKE ALL ON FUNCTION txpipe.workers() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.workers() TO txpipe_reader, txpipe_admin;
