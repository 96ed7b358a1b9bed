-- txpipe 0.2.0 -> 0.3.0: the security model (routing as the owner of what
-- it touches under a restricted, pinned context; per-pipeline send rights;
-- catalog tables closed to direct writes), bounded work per record,
-- retention, dump and restore, masked card numbers.

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
GRANT EXECUTE ON FUNCTION txpipe._notify_in(text, integer) TO txpipe_admin;
