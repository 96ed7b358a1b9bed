-- txpipe 0.2.0 -> 0.3.0: the security model (routing as the owner of what
-- it touches under a restricted, pinned context; per-pipeline send rights;
-- catalog tables closed to direct writes), bounded work per record,
-- retention, dump and restore, masked card numbers.

-- ---------------------------------------------------------------------
-- security: routing and refresh as the owner of what they touch; the
-- catalog changed only through txpipe's functions; sending per pipeline
-- ---------------------------------------------------------------------

DROP FUNCTION txpipe._check_spec(text, jsonb);
-- the 0.2.0 refresh() is PL/pgSQL with the same signature
DROP FUNCTION txpipe.refresh(text, boolean);

CREATE FUNCTION txpipe._check_spec(name text, spec jsonb, owner oid)
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_check_spec'
LANGUAGE C STRICT;

-- The owner of a pipeline that the caller may change: its owner, a member
-- of that role, or a superuser.  Raises otherwise, and for a pipeline that
-- does not exist.
CREATE FUNCTION txpipe._require_owner(pipeline text, caller oid, action text)
RETURNS oid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	owner oid;
BEGIN
	SELECT p.owner::pg_catalog.oid INTO owner
	  FROM ONLY txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) _require_owner.pipeline;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pipeline "%" does not exist', pipeline
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it with txpipe.create_pipeline() or txpipe.install_template().';
	END IF;
	IF NOT pg_catalog.pg_has_role(caller, owner, 'USAGE') THEN
		RAISE EXCEPTION 'permission denied to % pipeline "%"', action, pipeline
			USING ERRCODE = 'insufficient_privilege',
				  DETAIL = pg_catalog.format('The pipeline belongs to role %s; only that role, its members or a superuser may %s it.',
											 owner::pg_catalog.regrole, action);
	END IF;
	RETURN owner;
END;
$$;

CREATE OR REPLACE FUNCTION txpipe.create_pipeline(name text, spec jsonb, or_replace boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_create_pipeline'
LANGUAGE C;

CREATE FUNCTION txpipe._create_pipeline(name text, spec jsonb, or_replace boolean,
	caller_schema text, caller oid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
	v_target text;
	v_owner oid;
	v_exists boolean := false;
BEGIN
	IF name IS NULL OR name OPERATOR(pg_catalog.!~) '^[a-z_][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid pipeline name "%"', name
			USING ERRCODE = 'invalid_name',
				  HINT = 'A pipeline name is a lower-case identifier: letters, digits and underscores, at most 63 bytes.';
	END IF;
	IF spec IS NULL OR pg_catalog.jsonb_typeof(spec) OPERATOR(pg_catalog.<>) 'object' THEN
		RAISE EXCEPTION 'invalid pipeline spec: the spec must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- unqualified table names are in the creator's current schema, whoever routes
	IF NOT spec OPERATOR(pg_catalog.?) 'schema' AND caller_schema IS NOT NULL THEN
		spec := spec OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('schema', caller_schema);
	END IF;

	SELECT p.owner::pg_catalog.oid INTO v_owner
	  FROM ONLY txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) _create_pipeline.name FOR UPDATE;
	v_exists := FOUND;
	IF v_exists AND NOT or_replace THEN
		RAISE EXCEPTION 'pipeline "%" already exists', name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Use txpipe.create_pipeline(name, spec, or_replace => true) to redefine it, or txpipe.drop_pipeline(name) first.';
	END IF;
	IF v_exists THEN
		PERFORM txpipe._require_owner(name, caller, 'redefine');
	ELSE
		v_owner := caller;
	END IF;
	-- checked as the pipeline's owner: the rights it routes and refreshes with
	PERFORM txpipe._check_spec(name, spec, v_owner);

	IF v_exists THEN
		UPDATE ONLY txpipe.pipelines p
		   SET spec = _create_pipeline.spec, version = p.version OPERATOR(pg_catalog.+) 1,
			   updated_at = pg_catalog.now()
		 WHERE p.name OPERATOR(pg_catalog.=) _create_pipeline.name;
	ELSE
		INSERT INTO txpipe.pipelines (name, spec, owner)
		VALUES (name, spec, v_owner::pg_catalog.regrole);
		INSERT INTO txpipe.queue_positions (pipeline, class)
		SELECT _create_pipeline.name, c FROM pg_catalog.generate_series(0, 15) c
		ON CONFLICT DO NOTHING;
	END IF;

	-- The COPY target is an empty table of txpipe's: its BEFORE ROW trigger
	-- takes each line and skips the row, its statement trigger routes what
	-- is left.  (COPY into a view with an INSTEAD OF trigger keeps memory
	-- per row until the statement ends.)  CHECK (false) refuses rows should
	-- the triggers ever be disabled, so nothing can pile up there unrouted.
	-- Only txpipe's owner creates tables in txpipe_in; one that is there
	-- without its pipeline was not made by txpipe and is not adopted.
	v_target := pg_catalog.format('txpipe_in.%I', name);
	IF pg_catalog.to_regclass(v_target) IS NULL THEN
		EXECUTE pg_catalog.format('CREATE TABLE %s (doc pg_catalog.text, CONSTRAINT routed_not_stored CHECK (false))', v_target);
	ELSIF NOT v_exists OR (SELECT c.relowner FROM pg_catalog.pg_class c
							WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(v_target))
						  OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r
												   WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
		RAISE EXCEPTION 'table % exists and was not made for this pipeline', v_target
			USING ERRCODE = 'duplicate_table',
				  DETAIL = 'txpipe never adopts a COPY target it did not create.',
				  HINT = pg_catalog.format('A superuser can drop it (DROP TABLE %s) after checking what it is.', v_target);
	END IF;
	EXECUTE pg_catalog.format('COMMENT ON TABLE %s IS %L', v_target,
		pg_catalog.format('COPY %s FROM STDIN WITH (FORMAT csv, QUOTE e''\x01'', DELIMITER e''\x02''): one JSON record per line into pipeline %s; lines are routed, never stored here; sending needs INSERT on it (txpipe.grant_send)', v_target, name));
	EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS route_row ON %s', v_target);
	EXECUTE pg_catalog.format('DROP TRIGGER IF EXISTS route_flush ON %s', v_target);
	EXECUTE pg_catalog.format('CREATE TRIGGER route_row BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION txpipe._copy_row(%L)', v_target, name);
	EXECUTE pg_catalog.format('CREATE TRIGGER route_flush AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION txpipe._copy_flush(%L)', v_target, name);
	-- the owner may send; others when the owner grants it
	EXECUTE pg_catalog.format('GRANT INSERT ON %s TO %I', v_target, v_owner::pg_catalog.regrole::pg_catalog.text);
END;
$$;

CREATE OR REPLACE FUNCTION txpipe.drop_pipeline(name text)
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_drop_pipeline'
LANGUAGE C;

CREATE FUNCTION txpipe._drop_pipeline(name text, caller oid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM txpipe._require_owner(name, caller, 'drop');
	-- the change log of its grain table (none to find when its tables are gone)
	BEGIN
		DELETE FROM ONLY txpipe.changes c WHERE c.relid OPERATOR(pg_catalog.=) txpipe._grain_table(name);
	EXCEPTION
		WHEN OTHERS THEN
			NULL;
	END;
	DELETE FROM ONLY txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) _drop_pipeline.name;
	DELETE FROM txpipe.inbox i WHERE i.pipeline OPERATOR(pg_catalog.=) _drop_pipeline.name;
	-- its alerts and their state: a pipeline made again under the name starts afresh
	DELETE FROM ONLY txpipe.alerts a WHERE a.pipeline OPERATOR(pg_catalog.=) _drop_pipeline.name;
	DELETE FROM ONLY txpipe.alert_counts w WHERE w.pipeline OPERATOR(pg_catalog.=) _drop_pipeline.name;
	DELETE FROM ONLY txpipe.alert_history h WHERE h.pipeline OPERATOR(pg_catalog.=) _drop_pipeline.name;
	EXECUTE pg_catalog.format('DROP TABLE IF EXISTS txpipe_in.%I', name);
END;
$$;

-- Sending to a pipeline is INSERT on its COPY target; its owner grants it.
CREATE FUNCTION txpipe.grant_send(pipeline text, role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_grant_send'
LANGUAGE C;

CREATE FUNCTION txpipe.revoke_send(pipeline text, role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_revoke_send'
LANGUAGE C;

CREATE FUNCTION txpipe._send_right(pipeline text, role regrole, caller oid, on_off boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pipeline IS NULL OR role IS NULL THEN
		RAISE EXCEPTION 'pipeline and role must not be null' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM txpipe._require_owner(pipeline, caller,
								  CASE WHEN on_off THEN 'grant sending to' ELSE 'revoke sending to' END);
	IF on_off THEN
		EXECUTE pg_catalog.format('GRANT INSERT ON txpipe_in.%I TO %I', pipeline, role::pg_catalog.text);
	ELSE
		EXECUTE pg_catalog.format('REVOKE INSERT ON txpipe_in.%I FROM %I', pipeline, role::pg_catalog.text);
	END IF;
END;
$$;

CREATE FUNCTION txpipe._grant_send(pipeline text, role regrole, caller oid)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT txpipe._send_right(pipeline, role, caller, true) $$;

CREATE FUNCTION txpipe._revoke_send(pipeline text, role regrole, caller oid)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$ SELECT txpipe._send_right(pipeline, role, caller, false) $$;

-- Runs a template's DDL with the caller's rights: the schema and its
-- objects are the caller's.  A schema that is already there is used only
-- when it and everything in it belong to the caller, so nothing another
-- role put there (a function the refresh would call, say) is adopted.
CREATE OR REPLACE FUNCTION txpipe.install_template(template text, schema text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET client_min_messages = warning
AS $$
DECLARE
	t txpipe.templates;
	v_schema text := coalesce(schema, template);
	v_spec jsonb;
	v_me oid := (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER);
	v_nsp oid;
	v_nspowner oid;
	v_foreign text;
BEGIN
	SELECT * INTO t FROM ONLY txpipe.templates tt WHERE tt.name OPERATOR(pg_catalog.=) template;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'template "%" does not exist', template
			USING ERRCODE = 'undefined_object',
				  HINT = pg_catalog.format('The templates are: %s.',
					(SELECT pg_catalog.string_agg(tt.name, ', ' ORDER BY tt.name) FROM ONLY txpipe.templates tt));
	END IF;
	IF v_schema OPERATOR(pg_catalog.!~) '^[a-z_][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid schema name "%"', v_schema
			USING ERRCODE = 'invalid_name',
				  HINT = 'The schema name is also the pipeline name: a lower-case identifier.';
	END IF;
	SELECT n.oid, n.nspowner INTO v_nsp, v_nspowner
	  FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) v_schema;
	IF FOUND THEN
		IF v_nspowner OPERATOR(pg_catalog.<>) v_me THEN
			RAISE EXCEPTION 'schema "%" exists and belongs to role %', v_schema, v_nspowner::pg_catalog.regrole
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = 'install_template() uses an existing schema only when it and everything in it belong to the role installing the template.',
					  HINT = 'Install into another schema: txpipe.install_template(template, schema => ''...''), or have the schema''s owner install it.';
		END IF;
		SELECT o.what INTO v_foreign FROM (
			SELECT pg_catalog.format('table %I', c.relname) AS what FROM pg_catalog.pg_class c
			 WHERE c.relnamespace OPERATOR(pg_catalog.=) v_nsp AND c.relowner OPERATOR(pg_catalog.<>) v_me
			UNION ALL
			SELECT pg_catalog.format('function %s', p.oid::pg_catalog.regprocedure) FROM pg_catalog.pg_proc p
			 WHERE p.pronamespace OPERATOR(pg_catalog.=) v_nsp AND p.proowner OPERATOR(pg_catalog.<>) v_me
			UNION ALL
			SELECT pg_catalog.format('type %s', y.oid::pg_catalog.regtype) FROM pg_catalog.pg_type y
			 WHERE y.typnamespace OPERATOR(pg_catalog.=) v_nsp AND y.typowner OPERATOR(pg_catalog.<>) v_me
			UNION ALL
			SELECT pg_catalog.format('operator %s', o.oid::pg_catalog.regoperator) FROM pg_catalog.pg_operator o
			 WHERE o.oprnamespace OPERATOR(pg_catalog.=) v_nsp AND o.oprowner OPERATOR(pg_catalog.<>) v_me
			UNION ALL
			SELECT pg_catalog.format('collation %I', l.collname) FROM pg_catalog.pg_collation l
			 WHERE l.collnamespace OPERATOR(pg_catalog.=) v_nsp AND l.collowner OPERATOR(pg_catalog.<>) v_me
			UNION ALL
			SELECT pg_catalog.format('conversion %I', v.conname) FROM pg_catalog.pg_conversion v
			 WHERE v.connamespace OPERATOR(pg_catalog.=) v_nsp AND v.conowner OPERATOR(pg_catalog.<>) v_me) o
		 LIMIT 1;
		IF v_foreign IS NOT NULL THEN
			RAISE EXCEPTION 'schema "%" holds % of another role', v_schema, v_foreign
				USING ERRCODE = 'insufficient_privilege',
					  DETAIL = 'install_template() never adopts objects it did not create.',
					  HINT = 'Drop that object, or install into another schema: txpipe.install_template(template, schema => ''...'').';
		END IF;
	END IF;
	EXECUTE pg_catalog.replace(t.ddl, '@schema@', pg_catalog.quote_ident(v_schema));
	v_spec := pg_catalog.jsonb_set(t.spec, '{schema}', pg_catalog.to_jsonb(v_schema));
	IF NOT EXISTS (SELECT 1 FROM ONLY txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) v_schema) THEN
		PERFORM txpipe.create_pipeline(v_schema, v_spec);
		-- writers send to the shipped templates without a grant of their own
		PERFORM txpipe.grant_send(v_schema, 'txpipe_writer');
	END IF;
	RETURN v_schema;
END;
$$;

CREATE OR REPLACE FUNCTION txpipe.contract(pipeline text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'txpipe_contract'
LANGUAGE C STRICT STABLE;

CREATE OR REPLACE FUNCTION txpipe.xact_counts(pipeline text,
	OUT received bigint, OUT accepted bigint, OUT rejected bigint, OUT duplicates bigint)
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(pg_catalog.sum(b.received), 0)::pg_catalog.int8,
		   coalesce(pg_catalog.sum(b.accepted), 0)::pg_catalog.int8,
		   coalesce(pg_catalog.sum(b.rejected), 0)::pg_catalog.int8,
		   coalesce(pg_catalog.sum(b.duplicates), 0)::pg_catalog.int8
	  FROM ONLY txpipe.batches b
	 WHERE b.pipeline OPERATOR(pg_catalog.=) xact_counts.pipeline
	   AND b.xact OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id_if_assigned()
$$;

-- corrections: the change log of grain tables, consumed by refresh()
ALTER TABLE txpipe.refresh_runs ADD COLUMN changes bigint NOT NULL DEFAULT 0;
COMMENT ON COLUMN txpipe.refresh_runs.changes IS
	'the changed grain rows (txpipe.changes) the run took: corrections, and on a logical replica every row written';
-- The ids of grain rows changed after they were routed: updated or deleted
-- here, and on a logical replica also inserted by the apply worker.  The
-- row trigger txpipe.track_change() writes them, txpipe.refresh() takes
-- them (src/changes.c).  A row is only a hint: the refresh reads the grain
-- row itself again.
CREATE TABLE txpipe.changes (
	relid		regclass NOT NULL,
	id			bigint NOT NULL
);
CREATE INDEX changes_relid ON txpipe.changes (relid);
SELECT pg_catalog.pg_extension_config_dump('txpipe.changes', '');

-- AFTER ... FOR EACH ROW EXECUTE FUNCTION txpipe.track_change('id column'):
-- logs the id (old and new) of each row the statement changes.
CREATE FUNCTION txpipe.track_change()
RETURNS trigger
AS 'MODULE_PATHNAME', 'txpipe_track_change'
LANGUAGE C;
COMMENT ON FUNCTION txpipe.track_change() IS
	'row trigger for a grain table: logs the ids of changed rows in txpipe.changes for the next txpipe.refresh()';

DROP FUNCTION txpipe._refresh_target(text, jsonb);
-- The function's form (lo, hi, changed bigint[]) is preferred to (lo, hi);
-- corrects tells which one it is.  replica: the grain table is written by
-- a logical-replication subscription here, so its ids do not arrive in
-- the order of their commits.
CREATE FUNCTION txpipe._refresh_target(pipeline text, spec jsonb,
	OUT grain regclass, OUT watermark text, OUT func regprocedure,
	OUT corrects boolean, OUT replica boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_name text[] := parse_ident(spec->'refresh'->>'function');
BEGIN
	grain := txpipe._grain_table(pipeline);
	IF cardinality(v_name) = 1 THEN
		v_name := ARRAY[spec->>'schema'] || v_name;
	END IF;
	func := to_regprocedure(format('%I.%I(bigint, bigint, bigint[])', v_name[1], v_name[2]));
	corrects := func IS NOT NULL;
	IF func IS NULL THEN
		func := to_regprocedure(format('%I.%I(bigint, bigint)', v_name[1], v_name[2]));
	END IF;
	watermark := spec->'refresh'->>'watermark';
	replica := EXISTS (SELECT 1 FROM pg_catalog.pg_subscription_rel r
						WHERE r.srrelid OPERATOR(pg_catalog.=) grain);
END;
$$;

-- Runs a refresh function as the pipeline's owner (src/manage.c).
CREATE FUNCTION txpipe._call_refresh(func regprocedure, lo bigint, hi bigint, changed bigint[],
	owner oid)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txpipe_call_refresh'
LANGUAGE C STRICT;

-- txpipe.refresh() runs txpipe._refresh() as the owner of txpipe's tables
-- (src/manage.c); the refresh function itself runs as the pipeline's owner.
CREATE FUNCTION txpipe.refresh(pipeline text, full boolean DEFAULT false,
	OUT status text, OUT rows bigint, OUT watermark_from bigint, OUT watermark_to bigint,
	OUT duration interval)
AS 'MODULE_PATHNAME', 'txpipe_refresh'
LANGUAGE C;

CREATE FUNCTION txpipe._refresh(pipeline text, full boolean, caller oid,
	OUT status text, OUT rows bigint, OUT watermark_from bigint, OUT watermark_to bigint,
	OUT duration interval)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_owner oid;
	v_full boolean := coalesce(_refresh.full, false);
	v_started timestamptz := clock_timestamp();
	v_spec jsonb;
	v_target record;
	v_stored bigint;
	v_lo bigint;
	v_hi bigint;
	v_rows bigint := 0;
	v_changed bigint[] := '{}';
	v_status text := 'ok';
	v_error text;
	v_sqlstate text;
BEGIN
	SELECT p.spec, p.owner::pg_catalog.oid INTO v_spec, v_owner
	  FROM ONLY txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) _refresh.pipeline;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pipeline "%" does not exist', _refresh.pipeline
			USING ERRCODE = 'undefined_object',
				  HINT = 'Create it with txpipe.create_pipeline() or txpipe.install_template().';
	END IF;
	PERFORM txpipe._require_owner(_refresh.pipeline, caller, 'refresh');
	IF NOT v_spec ? 'refresh' THEN
		RAISE EXCEPTION 'pipeline "%" has no refresh', _refresh.pipeline
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Give its spec a "refresh": {"function": ..., "watermark": ...}; see the README, section "Star schema and refresh".';
	END IF;
	IF current_setting('transaction_isolation') <> 'read committed' THEN
		RAISE EXCEPTION 'txpipe.refresh() needs the read committed isolation level'
			USING ERRCODE = 'invalid_transaction_state',
				  DETAIL = 'It reads the rows committed by the writers it waits for; an older snapshot would not see them.';
	END IF;
	v_target := txpipe._refresh_target(_refresh.pipeline, v_spec);
	IF v_target.grain IS NULL OR v_target.func IS NULL THEN
		RAISE EXCEPTION 'the grain table or the refresh function of pipeline "%" does not exist', _refresh.pipeline
			USING ERRCODE = 'undefined_object',
				  DETAIL = format('The spec names function %s and watermark column %s of its grain route''s table.',
								  v_spec->'refresh'->>'function', v_spec->'refresh'->>'watermark');
	END IF;

	-- One refresh per pipeline at a time: a second caller waits here (at
	-- most lock_timeout), then starts from the watermark the first one
	-- stored.  The lock outlives this block: a block that ends without an
	-- error hands its locks to the transaction.
	BEGIN
		PERFORM pg_advisory_xact_lock('txpipe.refresh_state'::regclass::oid::integer,
									  hashtext(_refresh.pipeline));
	EXCEPTION
		WHEN lock_not_available THEN
			v_status := 'skipped';
			v_error := format('another refresh of pipeline %s was still running when lock_timeout (%s) expired',
							  _refresh.pipeline, current_setting('lock_timeout'));
	END;

	IF v_status = 'ok' THEN
		INSERT INTO txpipe.refresh_state AS s (pipeline) VALUES (_refresh.pipeline)
		ON CONFLICT DO NOTHING;
	END IF;
	v_stored := coalesce((SELECT s.watermark FROM txpipe.refresh_state s
						   WHERE s.pipeline = _refresh.pipeline), 0);
	v_lo := CASE WHEN v_full THEN 0 ELSE v_stored END;
	v_hi := v_stored;

	IF v_status = 'ok' THEN
		BEGIN
			-- The grain rows changed since the last run (txpipe.track_change),
			-- taken before any grain row is read: a change that commits in
			-- between is read now and taken again by the next run, which reads
			-- the row again.  A run that fails gives them back.
			WITH c AS (
				DELETE FROM ONLY txpipe.changes c WHERE c.relid OPERATOR(pg_catalog.=) v_target.grain
				RETURNING c.id)
			SELECT coalesce(pg_catalog.array_agg(DISTINCT c.id ORDER BY c.id), '{}') INTO v_changed FROM c;

			IF v_target.replica THEN
				-- On a subscriber every row written arrives through the change
				-- log (the insert trigger enabled for replicas): the first run,
				-- or a full one, rebuilds from the table, then each run takes
				-- the ids logged.  A row the rebuild misses was logged, and is
				-- taken by the next run.
				IF NOT v_target.corrects THEN
					RAISE EXCEPTION 'the refresh function of pipeline "%" cannot refresh on a logical replica', _refresh.pipeline
						USING ERRCODE = 'object_not_in_prerequisite_state',
							  DETAIL = format('Table %s is written by a subscription, so its ids do not arrive in commit order; there the refresh follows txpipe.changes.', v_target.grain),
							  HINT = 'Give the refresh function a third argument, changed bigint[] (see the README, section "The warehouse on a logical replica").';
				END IF;
				IF v_lo = 0 THEN
					EXECUTE format('SELECT pg_catalog.max(%I) FROM %s', v_target.watermark, v_target.grain) INTO v_hi;
					v_hi := coalesce(v_hi, 0);
					v_rows := txpipe._call_refresh(v_target.func, 0, v_hi, '{}', v_owner);
				ELSE
					v_hi := v_lo;
					IF cardinality(v_changed) > 0 THEN
						v_rows := txpipe._call_refresh(v_target.func, v_lo, v_lo, v_changed, v_owner);
					END IF;
				END IF;
			ELSE
				-- The upper bound.  Ids come from a sequence when a row is
				-- inserted, so a transaction still open may hold a lower id than
				-- one that has committed: max(id) alone could move the watermark
				-- past rows that commit later.  A SHARE lock waits for every
				-- transaction writing the grain table (all hold ROW EXCLUSIVE
				-- from before they draw an id) and keeps new ones out while
				-- max(id) is read; from then on every id up to max(id) is
				-- committed or rolled back, and any id drawn later is higher.
				-- The lock is taken in a subtransaction that is rolled back at
				-- once, which releases it: writers are held up only while
				-- refresh waits for the ones already running, not while the
				-- star is written.
				BEGIN
					EXECUTE format('LOCK TABLE %s IN SHARE MODE', v_target.grain);
					EXECUTE format('SELECT pg_catalog.max(%I) FROM %s', v_target.watermark, v_target.grain) INTO v_hi;
					RAISE SQLSTATE 'TXR01';
				EXCEPTION
					WHEN SQLSTATE 'TXR01' THEN
						NULL;
					WHEN lock_not_available THEN
						v_status := 'skipped';
						v_error := format('transactions writing %s were still open when lock_timeout (%s) expired',
										  v_target.grain, current_setting('lock_timeout'));
						-- the changes stay logged for the next run
						RAISE SQLSTATE 'TXR02';
				END;
				v_hi := greatest(coalesce(v_hi, 0), v_lo);
				-- lo = 0 asks the function for a rebuild, even of an empty star
				IF v_hi > v_lo OR v_lo = 0 OR cardinality(v_changed) > 0 THEN
					v_rows := txpipe._call_refresh(v_target.func, v_lo, v_hi, v_changed, v_owner);
				END IF;
			END IF;
			UPDATE txpipe.refresh_state s SET watermark = v_hi, refreshed_at = now()
			 WHERE s.pipeline = _refresh.pipeline;
		EXCEPTION
			WHEN SQLSTATE 'TXR02' THEN
				v_hi := v_stored;
				v_changed := '{}';
			WHEN OTHERS THEN
				-- Recorded, not raised: raising would roll the record back too.
				-- Nothing of the run is kept: the watermark and the change log
				-- stay.
				GET STACKED DIAGNOSTICS v_error = MESSAGE_TEXT, v_sqlstate = RETURNED_SQLSTATE;
				v_status := 'error';
				v_rows := 0;
				v_hi := v_stored;
				v_changed := '{}';
				RAISE WARNING 'refresh of pipeline "%" failed: %', _refresh.pipeline, v_error
					USING DETAIL = format('SQLSTATE %s.  The run is recorded in txpipe.refresh_runs; the watermark stays at %s.',
										  v_sqlstate, v_stored);
		END;
	END IF;

	duration := clock_timestamp() - v_started;
	INSERT INTO txpipe.refresh_runs (pipeline, started_at, finished_at, rows, status, error, sqlstate,
									 watermark_from, watermark_to, "full", changes)
	VALUES (_refresh.pipeline, v_started, v_started + duration, v_rows, v_status, v_error, v_sqlstate,
			v_lo, v_hi, v_full, cardinality(v_changed));
	DELETE FROM txpipe.refresh_runs r
	 WHERE r.pipeline = _refresh.pipeline
	   AND r.run_id <= (SELECT x.run_id FROM txpipe.refresh_runs x
						 WHERE x.pipeline = _refresh.pipeline
						 ORDER BY x.run_id DESC OFFSET 10000 LIMIT 1);

	status := v_status;
	rows := v_rows;
	watermark_from := v_lo;
	watermark_to := v_hi;
END;
$$;

CREATE OR REPLACE FUNCTION txpipe.schedule_refresh(pipeline text, cron text DEFAULT '* * * * *',
	database text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_db text := coalesce(database, current_database());
	v_job text;
	v_command text;
	v_jobid bigint;
BEGIN
	IF pipeline IS NULL OR pipeline !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid pipeline name "%"', pipeline
			USING ERRCODE = 'invalid_name';
	END IF;
	PERFORM txpipe._require_cron(
		format('SELECT txpipe.schedule_refresh(%L, %L, database => %L);', pipeline, cron, v_db), v_db);
	IF v_db = current_database() THEN
		IF NOT EXISTS (SELECT 1 FROM ONLY txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) schedule_refresh.pipeline) THEN
			RAISE EXCEPTION 'pipeline "%" does not exist', pipeline
				USING ERRCODE = 'undefined_object';
		END IF;
		-- the job runs as its scheduler: only who may refresh may schedule
		PERFORM txpipe._require_owner(pipeline,
			(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER),
			'schedule the refresh of');
		IF NOT EXISTS (SELECT 1 FROM txpipe.pipelines p
						WHERE p.name = schedule_refresh.pipeline AND p.spec ? 'refresh') THEN
			RAISE EXCEPTION 'pipeline "%" has no refresh', pipeline
				USING ERRCODE = 'object_not_in_prerequisite_state';
		END IF;
	ELSIF NOT EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = v_db) THEN
		RAISE EXCEPTION 'database "%" does not exist', v_db
			USING ERRCODE = 'invalid_catalog_name';
	END IF;

	v_job := txpipe._refresh_job_name(pipeline, v_db);
	-- A run waits at most 5 s for open transactions of the grain table
	-- (and holds up their new writers meanwhile), then is recorded as
	-- skipped; the next minute's run catches up.
	v_command := format('SET lock_timeout = %L; SELECT status, rows FROM txpipe.refresh(%L)', '5s', pipeline);
	-- scheduling under an existing job name replaces that job
	IF v_db = current_database() THEN
		v_jobid := cron.schedule(v_job, cron, v_command);
	ELSE
		v_jobid := cron.schedule_in_database(v_job, cron, v_command, v_db);
	END IF;
	PERFORM cron.schedule('txpipe_prune_history', '17 * * * *', txpipe._cron_prune_command());
	RETURN v_jobid;
END;
$$;

CREATE OR REPLACE FUNCTION txpipe.enqueue(pipeline text, docs jsonb[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'txpipe_enqueue_jsonbs'
LANGUAGE C;
COMMENT ON FUNCTION txpipe.enqueue(text, jsonb[]) IS
	'queues records for the background worker, in the caller''s transaction; returns how many';

CREATE OR REPLACE FUNCTION txpipe.enqueue(pipeline text, doc jsonb)
RETURNS bigint
AS 'MODULE_PATHNAME', 'txpipe_enqueue_jsonb'
LANGUAGE C;
COMMENT ON FUNCTION txpipe.enqueue(text, jsonb) IS
	'queues one record for the background worker, in the caller''s transaction';


-- COPY targets belong to txpipe; their pipeline's owner may send, and the
-- roles that could send before still may
DO $$
DECLARE
	r record;
BEGIN
	FOR r IN SELECT p.name, p.owner FROM ONLY txpipe.pipelines p
			  WHERE pg_catalog.to_regclass(pg_catalog.format('txpipe_in.%I', p.name)) IS NOT NULL LOOP
		EXECUTE pg_catalog.format('ALTER TABLE txpipe_in.%I OWNER TO %I', r.name,
			(SELECT n.nspowner::pg_catalog.regrole::pg_catalog.text FROM pg_catalog.pg_namespace n
			  WHERE n.nspname OPERATOR(pg_catalog.=) 'txpipe'));
		EXECUTE pg_catalog.format('REVOKE INSERT ON txpipe_in.%I FROM txpipe_admin', r.name);
		EXECUTE pg_catalog.format('GRANT INSERT ON txpipe_in.%I TO %I', r.name, r.owner::pg_catalog.text);
		EXECUTE pg_catalog.format('COMMENT ON TABLE txpipe_in.%I IS %L', r.name,
			pg_catalog.format('COPY %s FROM STDIN WITH (FORMAT csv, QUOTE e''\x01'', DELIMITER e''\x02''): one JSON record per line into pipeline %s; lines are routed, never stored here; sending needs INSERT on it (txpipe.grant_send)',
				pg_catalog.format('txpipe_in.%I', r.name), r.name));
	END LOOP;
END;
$$;

-- privileges: no direct writes to txpipe's tables for anyone
REVOKE SELECT ON txpipe.batches, txpipe.pipelines FROM txpipe_writer;
REVOKE INSERT ON txpipe.inbox FROM txpipe_writer;
REVOKE USAGE ON SEQUENCE txpipe.inbox_id_seq FROM txpipe_writer;
REVOKE SELECT ON txpipe.pipelines FROM txpipe_reader;
REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA txpipe FROM txpipe_admin;
REVOKE CREATE ON SCHEMA txpipe_in FROM txpipe_admin;
REVOKE USAGE ON SCHEMA txpipe_in FROM txpipe_reader;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA txpipe FROM txpipe_writer, txpipe_reader, txpipe_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA txpipe FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.month_partitions(regclass, timestamp[], text),
	txpipe.fill_dim_date(regclass, date[]) TO PUBLIC;
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
-- managing one's own pipelines
GRANT EXECUTE ON FUNCTION txpipe.create_pipeline(text, jsonb, boolean), txpipe.drop_pipeline(text),
	txpipe.grant_send(text, regrole), txpipe.revoke_send(text, regrole),
	txpipe.install_template(text, text), txpipe.plan(text), txpipe.drain(text, integer),
	txpipe.refresh(text, boolean), txpipe.schedule_refresh(text, text, text),
	txpipe.unschedule_refresh(text, text), txpipe.start_worker(), txpipe.stop_worker()
	TO txpipe_admin;
GRANT SELECT ON ALL TABLES IN SCHEMA txpipe TO txpipe_admin;
REVOKE ALL ON SEQUENCE txpipe.inbox_id_seq FROM PUBLIC;

-- retention: counters, reject dedup, pruning, dump and restore of the
-- catalog sequences
ALTER TABLE txpipe.rejects
	ADD COLUMN payload_hash bytea,
	ADD COLUMN count bigint NOT NULL DEFAULT 1 CHECK (count > 0),
	ADD COLUMN last_received_at timestamptz NOT NULL DEFAULT now();
-- rejects stored before keep their own time (and no hash: they are not
-- matched by later identical ones)
UPDATE txpipe.rejects SET last_received_at = received_at;
CREATE INDEX rejects_identical ON txpipe.rejects (pipeline, payload_hash, error_code, error_path)
	WHERE payload_hash IS NOT NULL;
CREATE INDEX rejects_last_received ON txpipe.rejects (last_received_at);
COMMENT ON COLUMN txpipe.rejects.payload_hash IS
	'SHA-256 of the received bytes; an identical reject (pipeline, payload_hash, error_code, error_path) adds to the count of the stored one';
COMMENT ON COLUMN txpipe.rejects.count IS
	'times this reject was received; received_at is the first time, last_received_at the last';
SELECT pg_catalog.pg_extension_config_dump('txpipe.rejects_reject_id_seq', '');

ALTER TABLE txpipe.batches ADD COLUMN folded boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN txpipe.batches.folded IS
	'whether the batch is added to txpipe.counters already';
CREATE INDEX batches_unfolded ON txpipe.batches (pipeline) WHERE NOT folded;
SELECT pg_catalog.pg_extension_config_dump('txpipe.batches_batch_id_seq', '');

CREATE TABLE txpipe.counters (
	pipeline	text PRIMARY KEY,
	received	bigint NOT NULL DEFAULT 0,
	accepted	bigint NOT NULL DEFAULT 0,
	rejected	bigint NOT NULL DEFAULT 0,
	duplicates	bigint NOT NULL DEFAULT 0,
	batches		bigint NOT NULL DEFAULT 0,
	folded_at	timestamptz
);
COMMENT ON TABLE txpipe.counters IS
	'per pipeline: the sums of its folded txpipe.batches rows (txpipe.stats adds the batches not folded yet)';
SELECT pg_catalog.pg_extension_config_dump('txpipe.counters', '');
GRANT SELECT ON txpipe.counters TO txpipe_admin;

SELECT pg_catalog.pg_extension_config_dump('txpipe.refresh_runs_run_id_seq', '');

CREATE OR REPLACE VIEW txpipe.stats AS
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
	   now() - f.refreshed_at AS refresh_lag
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
		 WHERE pipeline = p.name AND finished_at > now() - interval '1 minute') r ON true;
COMMENT ON VIEW txpipe.stats IS 'per pipeline: records received, accepted, rejected, duplicates; the last batch; routing rate over the last minute; records waiting in the inbox and the age of the oldest; star refresh watermark and lag';

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

REVOKE ALL ON FUNCTION txpipe._fold(integer), txpipe._prune(interval, interval, interval, bigint), txpipe.prune()
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.prune() TO txpipe_admin;

-- ---------------------------------------------------------------------
-- limits: bounded work per record, NOTIFY ingest off unless a pipeline's
-- spec turns it on, bounded in records per payload
INSERT INTO txpipe.reject_codes VALUES
	('too_many_keys', 'decode', 'an object has more keys than txpipe.max_keys');
UPDATE txpipe.reject_codes
   SET description = 'the record is longer than txpipe.max_record_size (or a NOTIFY payload has more than txpipe.notify_max_records records); the reject keeps a prefix, and the message the length and a SHA-256'
 WHERE error_code = 'too_large';
DROP FUNCTION txpipe._notify_in(text);
CREATE FUNCTION txpipe._notify_in(payload text, max_records integer DEFAULT 100)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v jsonb;
	v_pipeline text;
	v_key text;
	v_on boolean;
	v_n bigint;
	v_code text;
	v_path text := '$';
	v_msg text;
BEGIN
	-- Any role that can connect may NOTIFY: where no pipeline takes NOTIFY
	-- ingest, nothing it sends is stored, not even as a reject.
	IF NOT EXISTS (SELECT 1 FROM ONLY txpipe.pipelines p
					WHERE p.spec OPERATOR(pg_catalog.->) 'notify' OPERATOR(pg_catalog.=) 'true'::pg_catalog.jsonb) THEN
		RETURN -1;
	END IF;
	BEGIN
		v := payload::jsonb;
	EXCEPTION WHEN data_exception THEN
		-- not JSON, or JSON that jsonb cannot hold (\u0000, 1e1000000)
		v_code := 'json_syntax';
		v_msg := 'the NOTIFY payload is not JSON: ' || SQLERRM;
	END;
	IF v_code IS NULL AND jsonb_typeof(v) <> 'object' THEN
		v_code := 'not_object';
		v_msg := 'the NOTIFY payload is not a JSON object';
	END IF;
	IF v_code IS NULL THEN
		v_pipeline := v->>'pipeline';
		IF jsonb_typeof(v->'pipeline') IS DISTINCT FROM 'string' THEN
			v_code := 'required'; v_path := '$.pipeline';
			v_msg := 'the NOTIFY payload needs "pipeline", a string';
		ELSE
			SELECT p.spec->>'order_key', p.spec->'notify' = 'true'::jsonb INTO v_key, v_on
			  FROM txpipe.pipelines p WHERE p.name OPERATOR(pg_catalog.=) v_pipeline;
			IF NOT FOUND THEN
				v_code := 'unknown_pipeline'; v_path := '$.pipeline';
				v_msg := format('pipeline "%s" does not exist', v_pipeline);
			ELSIF v_on IS NOT TRUE THEN
				RETURN -1;
			ELSIF jsonb_typeof(v->'records') IS DISTINCT FROM 'array' THEN
				v_code := 'required'; v_path := '$.records';
				v_msg := 'the NOTIFY payload needs "records", an array of records';
			ELSIF jsonb_array_length(v->'records') > max_records THEN
				v_code := 'too_large'; v_path := '$.records';
				v_msg := format('the NOTIFY payload has %s records, more than txpipe.notify_max_records (%s)',
								jsonb_array_length(v->'records'), max_records);
			END IF;
		END IF;
	END IF;
	IF v_code IS NOT NULL THEN
		INSERT INTO txpipe.rejects (pipeline, source, payload, error_code, error_path, message)
		VALUES (coalesce(v_pipeline, ''), 'notify', payload, v_code, v_path, v_msg);
		RETURN 0;
	END IF;
	INSERT INTO txpipe.inbox (pipeline, class, source, doc)
	SELECT v_pipeline, txpipe._queue_class(d->>v_key), 'notify', d::text
	  FROM jsonb_array_elements(v->'records') d;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	RETURN v_n;
END;
$$;
REVOKE ALL ON FUNCTION txpipe._notify_in(text, integer) FROM PUBLIC;

-- replay
ALTER TABLE txpipe.rejects ADD COLUMN errors jsonb,
	ADD COLUMN replay_outcome text CHECK (replay_outcome IN ('accepted', 'rejected', 'duplicate'));
COMMENT ON COLUMN txpipe.rejects.errors IS
	'every error of the record (up to 20), an array of {code, path, message}; the first is error_code, error_path, message';
COMMENT ON COLUMN txpipe.rejects.replay_outcome IS
	'what txpipe.replay_rejects() made of it (accepted, rejected, duplicate), at replayed_at';

-- Re-runs the stored rejects of a pipeline through its current plan
-- (src/replay.c); the pipeline's owner, a member of it or a superuser.
CREATE FUNCTION txpipe.replay_rejects(pipeline text, error_code text DEFAULT NULL,
	since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL, source text DEFAULT NULL,
	OUT replayed bigint, OUT accepted bigint, OUT rejected bigint, OUT duplicates bigint,
	OUT skipped bigint)
AS 'MODULE_PATHNAME', 'txpipe_replay_rejects'
LANGUAGE C;
REVOKE ALL ON FUNCTION txpipe.replay_rejects(text, text, timestamptz, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.replay_rejects(text, text, timestamptz, timestamptz, text) TO txpipe_admin;

-- ---------------------------------------------------------------------
-- real data: declared input formats, content keys, key conflicts
UPDATE txpipe.reject_codes
   SET description = 'a string is not a valid date or timestamp, or does not match the field''s inputFormat'
 WHERE error_code = 'format';
INSERT INTO txpipe.reject_codes VALUES
	('key_conflict', 'route', 'the idempotency key is stored already (or came earlier in the batch) with other content; message names the first value that differs');

-- ---------------------------------------------------------------------
-- dashboards
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

-- alerts: rules in the spec, raised while routing, NOTIFY txpipe_alerts
-- Alerts raised while routing (src/alerts.c): one per pipeline, rule, key
-- and window (window_start is NULL for a rule without a window: one alert
-- per key), written in the transaction that stored the record that raised
-- it, and sent as NOTIFY txpipe_alerts at its commit.
CREATE TABLE txpipe.alerts (
	alert_id	bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	pipeline	text NOT NULL,
	rule		text NOT NULL,
	severity	text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
	key			text NOT NULL,
	key_masked	text NOT NULL,
	window_start timestamptz,
	record_key	text,
	routed_table text,
	event_time	timestamptz,
	raised_at	timestamptz NOT NULL DEFAULT now(),
	details		jsonb NOT NULL,
	acknowledged_at timestamptz,
	acknowledged_by text,
	CONSTRAINT alerts_once UNIQUE NULLS NOT DISTINCT (pipeline, rule, key, window_start)
);
CREATE INDEX alerts_open ON txpipe.alerts (pipeline, raised_at) WHERE acknowledged_at IS NULL;
CREATE INDEX alerts_acknowledged ON txpipe.alerts (acknowledged_at) WHERE acknowledged_at IS NOT NULL;
COMMENT ON TABLE txpipe.alerts IS
	'alerts raised while routing: one per pipeline, rule, key and window; each also sent as NOTIFY txpipe_alerts';
COMMENT ON COLUMN txpipe.alerts.key_masked IS
	'the key as txpipe_reader and NOTIFY see it: only its last four characters when the rule says mask_key';
COMMENT ON COLUMN txpipe.alerts.record_key IS
	'the idempotency key of the record that raised it; its row is the one of routed_table with that key';
COMMENT ON COLUMN txpipe.alerts.details IS
	'the figures that raised it: the count in the window and the threshold, or the value, mean, stddev and deviation';
SELECT pg_catalog.pg_extension_config_dump('txpipe.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('txpipe.alerts_alert_id_seq', '');

-- What rate and baseline rules count: per key, the records of its recent
-- windows (those a record may still count in), oldest first.
CREATE TABLE txpipe.alert_counts (
	pipeline	text NOT NULL,
	rule		text NOT NULL,
	definition	bigint NOT NULL,
	key			text NOT NULL,
	latest		timestamptz,
	since		timestamptz,
	window_starts timestamptz[] NOT NULL DEFAULT '{}',
	counts		bigint[] NOT NULL DEFAULT '{}',
	PRIMARY KEY (pipeline, rule, definition, key)
);
COMMENT ON TABLE txpipe.alert_counts IS
	'rate and baseline rules: per key, the stored records of its recent windows; definition is a digest of the rule, so a changed rule counts afresh';
COMMENT ON COLUMN txpipe.alert_counts.latest IS 'the newest event time counted: a record whose window closed longer than the rule''s lateness before it does not count';
COMMENT ON COLUMN txpipe.alert_counts.since IS 'the start of the oldest window ever counted: a baseline rule judges a window once the key has its whole history';
SELECT pg_catalog.pg_extension_config_dump('txpipe.alert_counts', '');

-- The same, a row per key and window.
CREATE VIEW txpipe.alert_windows AS
SELECT c.pipeline, c.rule, c.definition, c.key, w.window_start, w.count
  FROM ONLY txpipe.alert_counts c,
	   ROWS FROM (pg_catalog.unnest(c.window_starts), pg_catalog.unnest(c.counts)) AS w(window_start, count);
COMMENT ON VIEW txpipe.alert_windows IS
	'rate and baseline rules: stored records per key and recent window (txpipe.alert_counts, a row per window)';

-- What outlier rules compare with: per key, the count, mean and sum of
-- squared deviations of the values stored so far (Welford's method).
CREATE TABLE txpipe.alert_history (
	pipeline	text NOT NULL,
	rule		text NOT NULL,
	definition	bigint NOT NULL,
	key			text NOT NULL,
	n			bigint NOT NULL DEFAULT 0,
	mean		double precision NOT NULL DEFAULT 0,
	m2			double precision NOT NULL DEFAULT 0,
	PRIMARY KEY (pipeline, rule, definition, key)
);
COMMENT ON TABLE txpipe.alert_history IS
	'outlier rules: per key, the values stored so far as count, mean and sum of squared deviations (m2)';
SELECT pg_catalog.pg_extension_config_dump('txpipe.alert_history', '');

CREATE OR REPLACE VIEW txpipe.stats AS
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

-- Marks an alert acknowledged (src/manage.c runs the body as the owner of
-- txpipe's tables); the owner of its pipeline, a member of that role or a
-- superuser.  Returns false when it was acknowledged already.
CREATE FUNCTION txpipe.acknowledge_alert(id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'txpipe_acknowledge_alert'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe._acknowledge_alert(id bigint, caller oid)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	v_pipeline text;
BEGIN
	SELECT a.pipeline INTO v_pipeline
	  FROM ONLY txpipe.alerts a WHERE a.alert_id OPERATOR(pg_catalog.=) _acknowledge_alert.id FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'alert % does not exist', id
			USING ERRCODE = 'undefined_object',
				  HINT = 'txpipe.open_alerts lists the alerts not acknowledged yet.';
	END IF;
	PERFORM txpipe._require_owner(v_pipeline, caller, 'acknowledge alerts of');
	UPDATE ONLY txpipe.alerts a
	   SET acknowledged_at = pg_catalog.now(), acknowledged_by = caller::pg_catalog.regrole::pg_catalog.text
	 WHERE a.alert_id OPERATOR(pg_catalog.=) _acknowledge_alert.id AND a.acknowledged_at IS NULL;
	RETURN FOUND;
END;
$$;
REVOKE ALL ON FUNCTION txpipe.acknowledge_alert(bigint), txpipe._acknowledge_alert(bigint, oid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.acknowledge_alert(bigint) TO txpipe_admin;
GRANT SELECT ON txpipe.open_alerts TO txpipe_reader;
GRANT SELECT ON txpipe.alerts, txpipe.alert_counts, txpipe.alert_windows, txpipe.alert_history, txpipe.open_alerts TO txpipe_admin;

-- rollups kept per month and per day
-- For rollups kept per month and per day: the days since::date ..
-- until::date as whole months m0 .. m1 (none when m0 > m1) and the days
-- around them, d0 <= d < head_end and tail_start <= d <= d1 (all of them
-- head days when there is no whole month).  A reporting function sums the
-- monthly rows of the months and the daily rows of the other days.
CREATE FUNCTION txpipe.month_range(since timestamp, until timestamp,
	OUT d0 date, OUT d1 date, OUT m0 date, OUT m1 date, OUT head_end date, OUT tail_start date)
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	d0 := since::pg_catalog.date;
	d1 := until::pg_catalog.date;
	m0 := CASE WHEN pg_catalog.date_trunc('month', d0)::pg_catalog.date OPERATOR(pg_catalog.=) d0 THEN d0
			   ELSE (pg_catalog.date_trunc('month', d0) OPERATOR(pg_catalog.+) '1 month'::pg_catalog.interval)::pg_catalog.date END;
	m1 := (pg_catalog.date_trunc('month', d1 OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.-) '1 month'::pg_catalog.interval)::pg_catalog.date;
	IF m0 OPERATOR(pg_catalog.>) m1 THEN
		head_end := d1 OPERATOR(pg_catalog.+) 1;
		tail_start := d1 OPERATOR(pg_catalog.+) 1;
	ELSE
		head_end := m0;
		tail_start := (m1 OPERATOR(pg_catalog.+) '1 month'::pg_catalog.interval)::pg_catalog.date;
	END IF;
END;
$$;
COMMENT ON FUNCTION txpipe.month_range(timestamp, timestamp) IS
	'the days of a time range as whole months and the days around them, for rollups kept per month and per day';
REVOKE ALL ON FUNCTION txpipe.month_range(timestamp, timestamp) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.month_range(timestamp, timestamp) TO PUBLIC;
REVOKE ALL ON FUNCTION txpipe.track_change() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION txpipe.track_change() TO txpipe_admin;
REVOKE ALL ON FUNCTION txpipe._refresh_target(text, jsonb) FROM PUBLIC;

-- A worker 0 that found no extension here parked this database; the
-- commit of CREATE EXTENSION has the launcher start it again (src/launcher.c).
CREATE FUNCTION txpipe._wake_launcher()
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_wake_launcher'
LANGUAGE C;
SELECT txpipe._wake_launcher();
REVOKE ALL ON FUNCTION txpipe._wake_launcher() FROM PUBLIC;
