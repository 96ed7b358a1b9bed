# shellcheck shell=bash
# The rules_instructions row of bench/run (sourced by it): what the cards
# template's alert rules cost txpipe COPY, counted in instructions, which
# do not drift with the machine's speed as seconds do.  A single-user
# backend (postgres --single) on a data directory of its own runs under
# valgrind --tool=callgrind, twice per case: the extension, a fresh cards
# template (its rules taken out for the second case), a one-record COPY
# (the plan compiled, the caches filled) and a count of the stored rows;
# then the same with a COPY of RULES_RECORDS records before the count.  The
# difference of the two totals is that COPY, its commit included (the
# rules' state is written back at commit).

RULES_RECORDS=${RULES_RECORDS:-100000}

# instructions of callgrind output FILE
callgrind_total() {
	awk '$1 == "totals:" || $1 == "summary:" { v = $2 } END { printf "%.0f\n", v }' "$1"
}

# rules_callgrind DIR MODE PART: one single-user backend under callgrind;
# prints its instructions
rules_callgrind() {
	local dir=$1 mode=$2 part=$3
	rm -rf "$dir/run"
	as_pg cp -a "$dir/data" "$dir/run"
	{
		echo "CREATE EXTENSION txpipe"
		echo "SELECT txpipe.install_template('cards', 'cards')"
		[ "$mode" = norules ] &&
			echo "SELECT txpipe.create_pipeline('cards', spec - 'alerts', or_replace => true) FROM txpipe.pipelines WHERE name = 'cards'"
		echo "COPY txpipe_in.cards FROM '$dir/one.ndjson' $COPY_OPTS"
		[ "$part" = full ] && echo "COPY txpipe_in.cards FROM '$dir/records.ndjson' $COPY_OPTS"
		echo "SELECT 'stored', count(*) FROM cards.transaction"
	} >"$dir/$mode.$part.sql"
	as_pg valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$mode.$part" \
		"$PG_BINDIR/postgres" --single -D "$dir/run" -c fsync=off -c max_wal_size=4GB postgres \
		<"$dir/$mode.$part.sql" >"$OUT/rules_instructions.$mode.$part.log" 2>&1 ||
		die "the single-user backend under callgrind failed (log: $OUT/rules_instructions.$mode.$part.log)"
	grep -q ERROR "$OUT/rules_instructions.$mode.$part.log" &&
		die "a statement failed in the single-user backend (log: $OUT/rules_instructions.$mode.$part.log)"
	callgrind_total "$dir/cg.$mode.$part"
}

# the stored rows the count of log FILE printed
rules_stored() {
	sed -n 's/^[[:space:]]*2: count = "\([0-9]*\)".*/\1/p' "$1" | tail -n 1
}

row_rules_instructions() {
	local dir=$WORK/rules_instr mode n base full t0
	local -A instr=() stored=()
	if ! command -v valgrind >/dev/null; then
		log "rules instructions: valgrind is not installed (apt-get install valgrind): row left out"
		return 0
	fi
	mkdir -p "$dir"
	chown "$PG_OSUSER:" "$dir"
	head -n "$RULES_RECORDS" "$DATA" >"$dir/records.ndjson"
	# a record the file does not have: the data's last line
	tail -n 1 "$DATA" >"$dir/one.ndjson"
	chmod 0644 "$dir/records.ndjson" "$dir/one.ndjson"
	n=$(wc -l <"$dir/records.ndjson")
	log "rules instructions: txpipe COPY of $n records with the cards template's rules and without, single-user backends under callgrind"
	as_pg "$PG_BINDIR/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
		>"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb for rules_instructions failed"; }
	RUN_TIMES=()
	for mode in rules norules; do
		t0=$(date +%s.%N)
		base=$(rules_callgrind "$dir" "$mode" base)
		full=$(rules_callgrind "$dir" "$mode" full)
		RUN_TIMES+=("$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }')")
		instr[$mode]=$((full - base))
		stored[$mode]=$(( $(rules_stored "$OUT/rules_instructions.$mode.full.log") - $(rules_stored "$OUT/rules_instructions.$mode.base.log") ))
		log "  $mode: $(thousands "${instr[$mode]}") instructions for the COPY of $n records ($((instr[$mode] / n)) per record), ${stored[$mode]} stored"
	done
	local cost
	cost=$(awk -v a="${instr[rules]}" -v b="${instr[norules]}" 'BEGIN { printf "%.4f", a / b }')
	log "  the rules cost $(awk -v c="$cost" 'BEGIN { printf "%+.2f%%", 100 * (c - 1) }') in instructions"
	add_row rules_instructions "txpipe COPY with the cards template's rules against without, in instructions (callgrind, single-user backends; the seconds are those under callgrind)" "$n" median \
		"the rules cost $(awk -v c="$cost" 'BEGIN { printf "%+.2f%%", 100 * (c - 1) }') in instructions (target: at most +10%): $(thousands "${instr[rules]}") with them, $(thousands "${instr[norules]}") without ($((instr[rules] / n)) and $((instr[norules] / n)) per record); rows stored: ${stored[rules]} and ${stored[norules]}" \
		"$(printf '{"instructions_with_rules": %s, "instructions_without_rules": %s, "ratio": %s, "stored": [%s, %s]}' \
			"${instr[rules]}" "${instr[norules]}" "$cost" "${stored[rules]}" "${stored[norules]}")"
	rm -rf "$dir"
}
