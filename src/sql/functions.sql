-- Functions of txpipe.  C functions route; SQL and PL/pgSQL ones manage.

-- Changing the catalog.  The public functions (create_pipeline,
-- drop_pipeline, grant_send, revoke_send, refresh) are C functions that
-- note who called them and run their body, txpipe._<name>(..., caller), as
-- the owner of txpipe's tables (src/manage.c); only that owner may execute
-- the bodies.  A body decides what the caller may do.

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

CREATE FUNCTION txpipe.create_pipeline(name text, spec jsonb, or_replace boolean DEFAULT false)
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

CREATE FUNCTION txpipe.drop_pipeline(name text)
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
CREATE FUNCTION txpipe.install_template(template text, schema text DEFAULT NULL)
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

CREATE FUNCTION txpipe.contract(pipeline text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'txpipe_contract'
LANGUAGE C STRICT STABLE;

CREATE FUNCTION txpipe.ingest(pipeline text, docs text,
	OUT accepted bigint, OUT rejected bigint, OUT duplicates bigint)
AS 'MODULE_PATHNAME', 'txpipe_ingest'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe.ingest_raw(pipeline text, docs bytea,
	OUT accepted bigint, OUT rejected bigint, OUT duplicates bigint)
AS 'MODULE_PATHNAME', 'txpipe_ingest_raw'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe.validate(pipeline text, doc text)
RETURNS TABLE (error_code text, error_path text, message text)
AS 'MODULE_PATHNAME', 'txpipe_validate'
LANGUAGE C STRICT;

-- Re-runs the stored rejects of a pipeline through its current plan
-- (src/replay.c); the pipeline's owner, a member of it or a superuser.
CREATE FUNCTION txpipe.replay_rejects(pipeline text, error_code text DEFAULT NULL,
	since timestamptz DEFAULT NULL, until timestamptz DEFAULT NULL, source text DEFAULT NULL,
	OUT replayed bigint, OUT accepted bigint, OUT rejected bigint, OUT duplicates bigint,
	OUT skipped bigint)
AS 'MODULE_PATHNAME', 'txpipe_replay_rejects'
LANGUAGE C;

CREATE FUNCTION txpipe.plan(pipeline text)
RETURNS TABLE (route text, kind text, target regclass, write_path text, note text)
AS 'MODULE_PATHNAME', 'txpipe_plan_routes'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe._copy_row()
RETURNS trigger
AS 'MODULE_PATHNAME', 'txpipe_copy_row'
LANGUAGE C;

CREATE FUNCTION txpipe._copy_flush()
RETURNS trigger
AS 'MODULE_PATHNAME', 'txpipe_copy_flush'
LANGUAGE C;

-- What this transaction routed so far, per pipeline (a loader reads it
-- after COPY, before COMMIT).
CREATE FUNCTION txpipe.xact_counts(pipeline text,
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
