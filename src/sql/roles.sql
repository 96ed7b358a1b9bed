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

GRANT USAGE ON SCHEMA txpipe, txpipe_in TO txpipe_writer, txpipe_reader, txpipe_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA txpipe FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.month_partitions(regclass, timestamp[], text),
	txpipe.fill_dim_date(regclass, date[]) TO PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.ingest(text, text), txpipe.ingest_raw(text, bytea),
	txpipe.validate(text, text), txpipe.contract(text), txpipe.xact_counts(text),
	txpipe._copy_row(), txpipe._copy_flush(),
	txpipe.enqueue(text, jsonb), txpipe.enqueue(text, jsonb[]),
	txpipe.enqueue(text, text), txpipe.enqueue(text, text[]), txpipe._inbox_slot()
	TO txpipe_writer, txpipe_admin;
GRANT SELECT ON txpipe.batches, txpipe.pipelines TO txpipe_writer;
-- COPY into an async pipeline's txpipe_in table writes the inbox as the caller
GRANT INSERT ON txpipe.inbox TO txpipe_writer;
GRANT USAGE ON SEQUENCE txpipe.inbox_id_seq TO txpipe_writer;
GRANT SELECT ON txpipe.stats, txpipe.batches, txpipe.pipelines, txpipe.reject_codes,
	txpipe.refresh_state, txpipe.refresh_runs, txpipe.queue_positions TO txpipe_reader;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA txpipe TO txpipe_admin;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA txpipe TO txpipe_admin;
GRANT CREATE ON SCHEMA txpipe_in TO txpipe_admin;
