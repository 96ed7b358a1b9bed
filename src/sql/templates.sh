#!/bin/sh
# Writes the full install script: the SQL sources given as arguments, then
# one row of txpipe.templates per folder under templates/.
set -e
echo "-- complain if script is sourced in psql, rather than via CREATE EXTENSION"
printf "%s\n" "\\echo Use \"CREATE EXTENSION txpipe\" to load this file. \\quit"
for f in "$@"; do
	echo
	echo "-- $f"
	grep -v '^\\echo' "$f"
done
for d in templates/*/; do
	name=$(basename "$d")
	for f in "$d/schema.sql" "$d/pipeline.json"; do
		if grep -q '\$txpipe_template\$' "$f"; then
			echo "templates.sh: $f contains the quoting tag" >&2
			exit 1
		fi
	done
	echo
	echo "-- template $name"
	printf "INSERT INTO txpipe.templates (name, ddl, spec) VALUES ('%s', \$txpipe_template\$" "$name"
	cat "$d/schema.sql"
	printf "\$txpipe_template\$, \$txpipe_template\$"
	cat "$d/pipeline.json"
	printf "\$txpipe_template\$::jsonb);\n"
done
