-- One line per object of the extension (schemas txpipe and txpipe_in):
-- functions, tables, columns, constraints, indexes, triggers, views,
-- sequences, privileges and comments, plus the shipped rows.  A database
-- updated from an earlier version must give the same lines as a fresh one.
WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname IN ('txpipe', 'txpipe_in'))
SELECT line FROM (
	SELECT format('function %s.%s(%s) -> %s vol=%s secdef=%s config=%s acl=%s src=%s comment=%s',
				  ns.nspname, p.proname, pg_get_function_identity_arguments(p.oid),
				  pg_get_function_result(p.oid), p.provolatile, p.prosecdef, p.proconfig,
				  p.proacl, md5(p.prosrc), obj_description(p.oid, 'pg_proc')) AS line
	  FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
	UNION ALL
	SELECT format('relation %s.%s kind=%s acl=%s comment=%s', ns.nspname, c.relname, c.relkind,
				  c.relacl, obj_description(c.oid, 'pg_class'))
	  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
	UNION ALL
	SELECT format('column %s.%s.%s %s notnull=%s default=%s comment=%s', ns.nspname, c.relname, a.attname,
				  format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
				  col_description(c.oid, a.attnum))
	  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ns ON ns.oid = c.relnamespace
	  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
	 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v')
	UNION ALL
	SELECT format('constraint %s.%s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
	  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN ns ON ns.oid = c.relnamespace
	UNION ALL
	SELECT format('index %s', pg_get_indexdef(i.indexrelid))
	  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN ns ON ns.oid = c.relnamespace
	UNION ALL
	SELECT format('trigger %s', pg_get_triggerdef(t.oid))
	  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON ns.oid = c.relnamespace
	 WHERE NOT t.tgisinternal
	UNION ALL
	SELECT format('view %s.%s %s', ns.nspname, c.relname, md5(pg_get_viewdef(c.oid)))
	  FROM pg_class c JOIN ns ON ns.oid = c.relnamespace WHERE c.relkind = 'v'
	UNION ALL
	SELECT format('partition %s of %s: %s', c.relname, i.inhparent::regclass, pg_get_expr(c.relpartbound, c.oid))
	  FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid JOIN ns ON ns.oid = c.relnamespace
	UNION ALL
	SELECT format('member %s', pg_describe_object(d.classid, d.objid, d.objsubid))
	  FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
	 WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'txpipe' AND d.deptype = 'e'
	UNION ALL
	SELECT format('config %s %s', c::regclass, cond)
	  FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS u(c, cond) WHERE e.extname = 'txpipe'
	UNION ALL
	SELECT format('reject_code %s %s %s', error_code, stage, description) FROM txpipe.reject_codes
	UNION ALL
	SELECT format('template %s %s %s', name, md5(ddl), md5(spec::text)) FROM txpipe.templates
) AS t
ORDER BY line;
