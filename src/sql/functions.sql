-- Functions of txpipe.  C functions route; SQL and PL/pgSQL ones manage.

CREATE FUNCTION txpipe._check_spec(name text, spec jsonb)
RETURNS void
AS 'MODULE_PATHNAME', 'txpipe_check_spec'
LANGUAGE C STRICT;

CREATE FUNCTION txpipe.create_pipeline(name text, spec jsonb, or_replace boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql
SET client_min_messages = warning
AS $$
DECLARE
	v_target text;
	v_exists boolean;
BEGIN
	IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid pipeline name "%"', name
			USING ERRCODE = 'invalid_name',
				  HINT = 'A pipeline name is a lower-case identifier: letters, digits and underscores, at most 63 bytes.';
	END IF;
	IF spec IS NULL OR jsonb_typeof(spec) <> 'object' THEN
		RAISE EXCEPTION 'invalid pipeline spec: the spec must be a JSON object'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	-- unqualified table names are in the creator's current schema, whoever routes
	IF NOT spec ? 'schema' THEN
		spec := spec || pg_catalog.jsonb_build_object('schema', pg_catalog.current_schema());
	END IF;
	PERFORM txpipe._check_spec(name, spec);

	SELECT true INTO v_exists FROM txpipe.pipelines p WHERE p.name = create_pipeline.name FOR UPDATE;
	IF v_exists AND NOT or_replace THEN
		RAISE EXCEPTION 'pipeline "%" already exists', name
			USING ERRCODE = 'duplicate_object',
				  HINT = 'Use txpipe.create_pipeline(name, spec, or_replace => true) to redefine it, or txpipe.drop_pipeline(name) first.';
	ELSIF v_exists THEN
		UPDATE txpipe.pipelines p
		   SET spec = create_pipeline.spec, version = p.version + 1, updated_at = now()
		 WHERE p.name = create_pipeline.name;
	ELSE
		INSERT INTO txpipe.pipelines (name, spec) VALUES (name, spec);
		INSERT INTO txpipe.queue_positions (pipeline, class)
		SELECT create_pipeline.name, c FROM generate_series(0, 15) c
		ON CONFLICT DO NOTHING;
	END IF;

	-- The COPY target is an empty table: its BEFORE ROW trigger takes each
	-- line and skips the row, its statement trigger routes what is left.
	-- (COPY into a view with an INSTEAD OF trigger keeps memory per row
	-- until the statement ends.)  CHECK (false) refuses rows should the
	-- triggers ever be disabled, so nothing can pile up there unrouted.
	v_target := format('txpipe_in.%I', name);
	IF pg_catalog.to_regclass(v_target) IS NULL THEN
		EXECUTE format('CREATE TABLE %s (doc text, CONSTRAINT routed_not_stored CHECK (false))', v_target);
	END IF;
	EXECUTE format('COMMENT ON TABLE %s IS %L', v_target,
		format('COPY %s FROM STDIN WITH (FORMAT csv, QUOTE e''\x01'', DELIMITER e''\x02''): one JSON record per line into pipeline %s; lines are routed, never stored here', v_target, name));
	EXECUTE format('DROP TRIGGER IF EXISTS route_row ON %s', v_target);
	EXECUTE format('DROP TRIGGER IF EXISTS route_flush ON %s', v_target);
	EXECUTE format('CREATE TRIGGER route_row BEFORE INSERT ON %s FOR EACH ROW EXECUTE FUNCTION txpipe._copy_row(%L)', v_target, name);
	EXECUTE format('CREATE TRIGGER route_flush AFTER INSERT ON %s FOR EACH STATEMENT EXECUTE FUNCTION txpipe._copy_flush(%L)', v_target, name);
	EXECUTE format('GRANT INSERT ON %s TO txpipe_writer, txpipe_admin', v_target);
END;
$$;

CREATE FUNCTION txpipe.drop_pipeline(name text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	DELETE FROM txpipe.pipelines p WHERE p.name = drop_pipeline.name;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'pipeline "%" does not exist', name
			USING ERRCODE = 'undefined_object';
	END IF;
	DELETE FROM txpipe.inbox i WHERE i.pipeline = drop_pipeline.name;
	EXECUTE format('DROP TABLE IF EXISTS txpipe_in.%I', name);
END;
$$;

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
BEGIN
	SELECT * INTO t FROM txpipe.templates WHERE name = template;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'template "%" does not exist', template
			USING ERRCODE = 'undefined_object',
				  HINT = format('The templates are: %s.', (SELECT string_agg(name, ', ' ORDER BY name) FROM txpipe.templates));
	END IF;
	IF v_schema !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
		RAISE EXCEPTION 'invalid schema name "%"', v_schema
			USING ERRCODE = 'invalid_name',
				  HINT = 'The schema name is also the pipeline name: a lower-case identifier.';
	END IF;
	EXECUTE replace(t.ddl, '@schema@', quote_ident(v_schema));
	v_spec := jsonb_set(t.spec, '{schema}', to_jsonb(v_schema));
	IF NOT EXISTS (SELECT 1 FROM txpipe.pipelines p WHERE p.name = v_schema) THEN
		PERFORM txpipe.create_pipeline(v_schema, v_spec);
	END IF;
	RETURN v_schema;
END;
$$;

CREATE FUNCTION txpipe.contract(pipeline text)
RETURNS jsonb
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT spec->'contract' FROM txpipe.pipelines WHERE name = pipeline $$;

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
LANGUAGE sql STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(sum(b.received), 0)::bigint, coalesce(sum(b.accepted), 0)::bigint,
		   coalesce(sum(b.rejected), 0)::bigint, coalesce(sum(b.duplicates), 0)::bigint
	  FROM txpipe.batches b
	 WHERE b.pipeline = xact_counts.pipeline AND b.xact = pg_current_xact_id_if_assigned()
$$;
