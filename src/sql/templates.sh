#!/bin/sh
# Writes the full install script: the SQL sources given as arguments, then
# one row of txpipe.templates per folder under templates/.  With --update
# VERSION first, an update script instead: the sources, then the shipped
# templates replaced by this version's.
set -e
update=
if [ "$1" = "--update" ]; then
	update=$2
	shift 2
	echo "-- complain if script is sourced in psql, rather than via ALTER EXTENSION"
	printf "%s\n" "\\echo Use \"ALTER EXTENSION txpipe UPDATE TO '$update'\" to load this file. \\quit"
else
	echo "-- complain if script is sourced in psql, rather than via CREATE EXTENSION"
	printf "%s\n" "\\echo Use \"CREATE EXTENSION txpipe\" to load this file. \\quit"
fi
for f in "$@"; do
	echo
	echo "-- $f"
	grep -v '^\\echo' "$f"
done
if [ -n "$update" ]; then
	echo
	echo "-- the templates of $update (install_template() again applies them to an installed schema)"
	echo "DELETE FROM txpipe.templates;"
fi
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
