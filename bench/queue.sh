# shellcheck shell=bash
# The queue rows of bench/run (sourced by it): async COPY drained by the
# workers, enqueue throughput from 16 clients, and enqueue-to-visible
# latency at a fixed rate.
#
# Latency is measured in the database, per record: the commit time of the
# worker transaction that routed it minus the commit time of the
# transaction that enqueued it (track_commit_timestamp), so nothing on the
# client side is timed.  The inbox keeps its rows during the queue rows
# (txpipe.inbox_slot_seconds raised) so that both commits can be read.

QUEUE_CLIENTS=${QUEUE_CLIENTS:-16}
QUEUE_RATE=${QUEUE_RATE:-2000}
QUEUE_SECONDS=${QUEUE_SECONDS:-30}
QUEUE_RECORDS=${QUEUE_RECORDS:-200000}
# records per enqueue transaction in the latency row: each enqueue waits for
# its commit to reach disk, and one record per transaction from 16 clients
# does not reach 2,000 records/s when a WAL flush takes tens of ms
QUEUE_LATENCY_BATCH=${QUEUE_LATENCY_BATCH:-5}
# workers in the latency row: one keeps up with 2,000 records/s
QUEUE_LATENCY_WORKERS=${QUEUE_LATENCY_WORKERS:-1}
# seconds streamed at the same rate before the measured QUEUE_SECONDS of
# every latency row: a worker's first batches after it starts load its
# pipeline's plan and caches, and the backlog they leave takes a while to
# clear; those records are routed and counted, not timed
QUEUE_WARMUP=${QUEUE_WARMUP:-2}

# warmup_end T0: the epoch second the measured part of a stream started at
# T0 begins
warmup_end() {
	awk -v t="$1" -v w="$QUEUE_WARMUP" 'BEGIN { printf "%.6f", t + w }'
}

# queue_pipeline PIPELINE MODE WORKERS: a fresh cards pipeline, an empty
# inbox that keeps its rows, txpipe.workers = WORKERS
queue_pipeline() {
	local p=$1 mode=$2 workers=$3
	txpipe_prepare "$p"
	sql -q -c "SET client_min_messages = warning" \
		-c "SELECT txpipe.create_pipeline('$p', spec || '{\"mode\": \"$mode\"}', or_replace => true)
			  FROM txpipe.pipelines WHERE name = '$p'" \
		-c "TRUNCATE txpipe.inbox" \
		-c "ALTER SYSTEM SET txpipe.inbox_slot_seconds = 3600" \
		-c "ALTER SYSTEM SET txpipe.workers = $workers" \
		-c "SELECT pg_reload_conf()" >/dev/null
}

# queue_prepare PIPELINE [MODE [WORKERS]]: the same, its workers running
queue_prepare() {
	queue_pipeline "$1" "${2:-sync}" "${3:-${QUEUE_WORKERS:-2}}"
	sql -q -c "SELECT txpipe.start_worker()" >/dev/null
	sleep 1
}

queue_finish() {
	sql -q -c "ALTER SYSTEM RESET txpipe.inbox_slot_seconds" -c "ALTER SYSTEM RESET txpipe.workers" \
		-c "SELECT pg_reload_conf()" -c "TRUNCATE txpipe.inbox" >/dev/null
}

# waits until the workers have consumed $2 inbox rows of pipeline $1;
# prints the time it was seen
queue_wait_consumed() {
	local p=$1 n=$2
	until [ "$(sql_value "SELECT coalesce(sum(consumed), 0) >= $n FROM txpipe.queue_positions WHERE pipeline = '$p'")" = t ]; do
		sleep 0.05
	done
	date +%s.%N
}

# inbox rows "txpipe stream" queued, from its summary line in log $1
stream_queued() {
	sed -n 's/.* records streamed, \([0-9]*\) queued.*/\1/p' "$1"
}

# samples the private memory of the workers until $1 exists (a stop file)
sample_workers() {
	local stop=$1 out=$2 peak=0 v pid
	while [ ! -e "$stop" ]; do
		for pid in $(sql_value "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'txpipe worker'"); do
			v=$(awk '/^RssAnon:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
			[ -n "$v" ] && [ "$v" -gt "$peak" ] && peak=$v && echo "$peak" >"$out"
		done
		sleep 0.2
	done
}

# p50/p99/max enqueue-to-visible latency in ms of pipeline $1's records
# (with $2, epoch seconds: of those whose enqueue committed then or later;
# with $3 too, and not after $3)
queue_latency() {
	local p=$1 between=''
	[ -n "${2:-}" ] && between="AND pg_xact_commit_timestamp(i.xmin) >= to_timestamp($2)"
	[ -n "${3:-}" ] && between="$between AND pg_xact_commit_timestamp(i.xmin) <= to_timestamp($3)"
	sql_value "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
					  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
					  round(max(ms)::numeric, 1) || ' ' || count(*)
		FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(t.xmin)
									  - pg_xact_commit_timestamp(i.xmin)) * 1000 AS ms
				FROM txpipe.inbox i
				JOIN $p.transaction t ON t.trans_num = substring(i.doc FROM '\"trans_num\"\\s*:\\s*\"([^\"]*)\"')
			   WHERE i.pipeline = '$p' $between) s"
}

# per_second PIPELINE OUT: enqueue-to-visible latency of pipeline's records
# by the second of the run their enqueue committed in (p50, p99, max in
# ms), into OUT: where in the run the slow records are
per_second() {
	local p=$1 out=$2
	sql -At -F $'\t' -c "SELECT s, count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
					  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1)
		FROM (SELECT floor(extract(epoch FROM e - min(e) OVER ()))::int AS s,
					 extract(epoch FROM v - e) * 1000 AS ms
				FROM (SELECT pg_xact_commit_timestamp(i.xmin) AS e, pg_xact_commit_timestamp(t.xmin) AS v
						FROM txpipe.inbox i
						JOIN $p.transaction t ON t.trans_num = substring(i.doc FROM '\"trans_num\"\\s*:\\s*\"([^\"]*)\"')
					   WHERE i.pipeline = '$p') x) y
		GROUP BY s ORDER BY s" >"$out"
}

# batch_timeline PIPELINE OUT: the workers' batches of pipeline's records,
# one line each, into OUT: when the batch began, finished its work and
# committed, and when the oldest of its records was enqueued (committed),
# in ms from the first enqueue's commit, then its records; with
# per_second, whether a slow record waited for a busy worker, a long batch
# or its commit
batch_timeline() {
	local p=$1 out=$2
	sql -At -c "SELECT '# 0 ms is ' || min(pg_xact_commit_timestamp(xmin)) FROM txpipe.inbox WHERE pipeline = '$p'" >"$out"
	sql -At -F $'\t' -c "WITH t0 AS (SELECT min(pg_xact_commit_timestamp(xmin)) AS t FROM txpipe.inbox WHERE pipeline = '$p'),
		oldest AS (SELECT pg_xact_commit_timestamp(t.xmin) AS c, min(pg_xact_commit_timestamp(i.xmin)) AS e
					 FROM txpipe.inbox i
					 JOIN $p.transaction t ON t.trans_num = substring(i.doc FROM '\"trans_num\"\\s*:\\s*\"([^\"]*)\"')
					WHERE i.pipeline = '$p'
					GROUP BY 1)
		SELECT round((extract(epoch FROM b.finished_at - b.duration - t0.t) * 1000)::numeric, 1),
			   round((extract(epoch FROM b.finished_at - t0.t) * 1000)::numeric, 1),
			   round((extract(epoch FROM pg_xact_commit_timestamp(b.xact::text::xid) - t0.t) * 1000)::numeric, 1),
			   round((extract(epoch FROM o.e - t0.t) * 1000)::numeric, 1),
			   b.received
		  FROM txpipe.batches b CROSS JOIN t0 LEFT JOIN oldest o ON o.c = pg_xact_commit_timestamp(b.xact::text::xid)
		 WHERE b.pipeline = '$p'
		 ORDER BY b.batch_id" >>"$out"
}

# row: txpipe async — COPY into the inbox, the workers route; the time is
# from the start of COPY until the last record is routed
row_txpipe_async() {
	local p=cards_async t0 t1 stop=$WORK/async.stop
	log "txpipe async: COPY into the inbox, ${QUEUE_WORKERS:-2} workers drain it (one run)"
	settle
	queue_prepare "$p" async
	checkpoint
	rm -f "$stop" "$WORK/async_mem"
	sample_workers "$stop" "$WORK/async_mem" &
	local sampler=$!
	t0=$(date +%s.%N)
	sql -q -c "\\copy txpipe_in.$p FROM pstdin $COPY_OPTS" <"$DATA" >"$OUT/txpipe_async.log" 2>&1 ||
		{ touch "$stop"; die "async COPY failed (log: $OUT/txpipe_async.log)"; }
	local copied
	copied=$(date +%s.%N)
	t1=$(queue_wait_consumed "$p" "$DATA_LINES")
	touch "$stop"
	wait "$sampler" 2>/dev/null || true
	RUN_TIMES=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
	log "  run 1/1: ${RUN_TIMES[0]} s (COPY into the inbox $(awk -v a="$t0" -v b="$copied" 'BEGIN { printf "%.1f", b - a }') s)"
	local mem
	mem=$(cat "$WORK/async_mem" 2>/dev/null || echo '')
	add_row txpipe_async "txpipe async: COPY into the inbox, ${QUEUE_WORKERS:-2} workers route (one run)" "$DATA_LINES" median \
		"COPY returned after $(awk -v a="$t0" -v b="$copied" 'BEGIN { printf "%.1f", b - a }') s; worker private RSS peak $(awk -v k="${mem:-0}" 'BEGIN { printf "%.0f", k / 1024 }') MB" \
		"$(printf '{"copy_seconds": %s, "worker_private_rss_peak_kb": %s, "counts": %s}' \
			"$(awk -v a="$t0" -v b="$copied" 'BEGIN { printf "%.3f", b - a }')" "${mem:-null}" "$(txpipe_counts_json "$p")")"
	queue_finish
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $p CASCADE" \
		-c "SELECT txpipe.drop_pipeline('$p')" >/dev/null
}

# row: queue throughput — QUEUE_CLIENTS connections enqueue batches of 100
# records as fast as they can; the time is until the last one is routed
row_queue_throughput() {
	local p=cards_queue t0 t1 file=$WORK/queue_tp.ndjson n
	head -n "$QUEUE_RECORDS" "$DATA" >"$file"
	n=$(wc -l <"$file")
	log "queue throughput: $n records, $QUEUE_CLIENTS clients, enqueue(text[]) of 100 (one run)"
	settle
	queue_prepare "$p"
	checkpoint
	t0=$(date +%s.%N)
	"$CLIENT" stream "$p" "$file" --clients "$QUEUE_CLIENTS" --batch 100 >"$OUT/queue_throughput.log" 2>&1 ||
		die "txpipe stream failed (log: $OUT/queue_throughput.log)"
	local sent
	sent=$(date +%s.%N)
	t1=$(queue_wait_consumed "$p" "$(stream_queued "$OUT/queue_throughput.log")")
	RUN_TIMES=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
	log "  run 1/1: ${RUN_TIMES[0]} s ($(cat "$OUT/queue_throughput.log"))"
	local enq
	enq=$(awk -v a="$t0" -v b="$sent" -v n="$n" 'BEGIN { printf "%.0f", n / (b - a) }')
	add_row queue_throughput "queue: $QUEUE_CLIENTS clients, enqueue of 100 records per call, until routed (one run)" "$n" median \
		"enqueue alone: $enq records/s" \
		"$(printf '{"enqueue_records_per_s": %s, "counts": %s}' "$enq" "$(txpipe_counts_json "$p")")"
	queue_finish
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $p CASCADE" \
		-c "SELECT txpipe.drop_pipeline('$p')" >/dev/null
	rm -f "$file"
}

# row: queue latency — QUEUE_CLIENTS connections enqueue one record per
# transaction at QUEUE_RATE records/s in all for QUEUE_SECONDS
row_queue_latency() {
	local p=cards_latency t0 t1 file=$WORK/queue_lat.ndjson n stop=$WORK/lat.stop lat all
	head -n "$((QUEUE_RATE * (QUEUE_SECONDS + QUEUE_WARMUP)))" "$DATA" >"$file"
	n=$(wc -l <"$file")
	log "queue latency: $n records at $QUEUE_RATE records/s from $QUEUE_CLIENTS clients, the first $QUEUE_WARMUP s not timed (one run)"
	settle
	queue_prepare "$p" sync "$QUEUE_LATENCY_WORKERS"
	checkpoint
	rm -f "$stop" "$WORK/lat_mem"
	sample_workers "$stop" "$WORK/lat_mem" &
	local sampler=$!
	t0=$(date +%s.%N)
	"$CLIENT" stream "$p" "$file" --clients "$QUEUE_CLIENTS" --rate "$QUEUE_RATE" --batch "$QUEUE_LATENCY_BATCH" \
		>"$OUT/queue_latency.log" 2>&1 ||
		{ touch "$stop"; die "txpipe stream failed (log: $OUT/queue_latency.log)"; }
	t1=$(queue_wait_consumed "$p" "$(stream_queued "$OUT/queue_latency.log")")
	touch "$stop"
	wait "$sampler" 2>/dev/null || true
	RUN_TIMES=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
	lat=$(queue_latency "$p" "$(warmup_end "$t0")")
	all=$(queue_latency "$p")
	QUEUE_LATENCY_RUNS=$(( ${QUEUE_LATENCY_RUNS:-0} + 1 ))
	per_second "$p" "$OUT/queue_latency.$QUEUE_LATENCY_RUNS.per_second.tsv"
	batch_timeline "$p" "$OUT/queue_latency.$QUEUE_LATENCY_RUNS.batches.tsv"
	local p50 p99 max cnt mem a50 a99 amax acnt
	read -r p50 p99 max cnt <<<"$lat"
	read -r a50 a99 amax acnt <<<"$all"
	mem=$(cat "$WORK/lat_mem" 2>/dev/null || echo '')
	log "  run 1/1: ${RUN_TIMES[0]} s; latency p50 $p50 ms, p99 $p99 ms, max $max ms over $cnt records after the warm-up; with it p50 $a50, p99 $a99, max $amax ms over $acnt"
	add_row queue_latency "queue: $QUEUE_RATE records/s from $QUEUE_CLIENTS clients, $QUEUE_LATENCY_BATCH per enqueue (one run)" "$n" median \
		"enqueue rate reached $(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' "$OUT/queue_latency.log")/s; enqueue→visible p50 $p50 ms, p99 $p99 ms, max $max ms ($cnt records after a $QUEUE_WARMUP s warm-up; with it p99 $a99 ms, max $amax ms); worker private RSS peak $(awk -v k="${mem:-0}" 'BEGIN { printf "%.0f", k / 1024 }') MB" \
		"$(printf '{"latency_ms": {"p50": %s, "p99": %s, "max": %s, "records": %s}, "latency_with_warmup_ms": {"p50": %s, "p99": %s, "max": %s, "records": %s}, "warmup_s": %s, "worker_private_rss_peak_kb": %s, "counts": %s}' \
			"${p50:-null}" "${p99:-null}" "${max:-null}" "${cnt:-0}" "${a50:-null}" "${a99:-null}" "${amax:-null}" "${acnt:-0}" "$QUEUE_WARMUP" "${mem:-null}" "$(txpipe_counts_json "$p")")"
	queue_finish
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $p CASCADE" \
		-c "SELECT txpipe.drop_pipeline('$p')" >/dev/null
	rm -f "$file"
}

# row: queue latency under a mixed load — the queue_latency row's stream
# into one pipeline while a COPY of the whole bench file (ROWS records)
# routes into another pipeline of the same server, started 2 s before the
# stream.  The p99 that counts is over the records whose enqueue committed
# while the COPY ran (its start and end by the same clock as the commit
# timestamps); the note says whether the COPY outlasted the stream.
row_queue_mixed() {
	local p=cards_mixed c=cards_mixed_copy file=$WORK/queue_mixed.ndjson n span=$WORK/mixed.copy cpid lat all t0
	head -n "$((QUEUE_RATE * (QUEUE_SECONDS + QUEUE_WARMUP)))" "$DATA" >"$file"
	n=$(wc -l <"$file")
	log "queue latency, mixed: $n records at $QUEUE_RATE records/s from $QUEUE_CLIENTS clients while COPY routes $(thousands "$DATA_LINES") records into another pipeline (one run)"
	settle
	txpipe_prepare "$c"
	queue_prepare "$p" sync "$QUEUE_LATENCY_WORKERS"
	checkpoint
	rm -f "$span"
	(
		a=$(date +%s.%N)
		sql -q -c "\\copy txpipe_in.$c FROM pstdin $COPY_OPTS" <"$DATA" >"$OUT/queue_mixed_copy.log" 2>&1 || exit 1
		echo "$a $(date +%s.%N)" >"$span"
	) &
	cpid=$!
	sleep 2
	t0=$(date +%s.%N)
	"$CLIENT" stream "$p" "$file" --clients "$QUEUE_CLIENTS" --rate "$QUEUE_RATE" --batch "$QUEUE_LATENCY_BATCH" \
		>"$OUT/queue_mixed.log" 2>&1 ||
		{ kill "$cpid" 2>/dev/null; die "txpipe stream failed (log: $OUT/queue_mixed.log)"; }
	local t1
	t1=$(queue_wait_consumed "$p" "$(stream_queued "$OUT/queue_mixed.log")")
	wait "$cpid" || die "the mixed row's COPY failed (log: $OUT/queue_mixed_copy.log)"
	local cs ce
	read -r cs ce <"$span"
	RUN_TIMES=("$(awk -v a="$cs" -v b="$ce" 'BEGIN { printf "%.3f", b - a }')")
	lat=$(queue_latency "$p" "$(awk -v a="$cs" -v b="$(warmup_end "$t0")" 'BEGIN { print (a > b) ? a : b }')" "$ce")
	all=$(queue_latency "$p" "$(warmup_end "$t0")")
	per_second "$p" "$OUT/queue_mixed.per_second.tsv"
	batch_timeline "$p" "$OUT/queue_mixed.batches.tsv"
	local p50 p99 max cnt a50 a99 amax acnt outlasted
	read -r p50 p99 max cnt <<<"$lat"
	read -r a50 a99 amax acnt <<<"$all"
	outlasted=$(awk -v e="$ce" -v t="$t1" 'BEGIN { print (e >= t) ? "yes" : "no" }')
	log "  run 1/1: COPY ${RUN_TIMES[0]} s; while it ran: latency p50 $p50 ms, p99 $p99 ms, max $max ms over $cnt records; the stream after its warm-up: p50 $a50, p99 $a99, max $amax ms over $acnt; COPY outlasted the stream: $outlasted"
	add_row queue_mixed "queue: $QUEUE_RATE records/s, $QUEUE_LATENCY_BATCH per enqueue, while COPY routes $(thousands "$DATA_LINES") records into another pipeline (one run; the time is the COPY's)" "$DATA_LINES" median \
		"enqueue rate reached $(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' "$OUT/queue_mixed.log")/s; enqueue→visible while the COPY ran: p50 $p50 ms, p99 $p99 ms, max $max ms ($cnt records); over the stream after its $QUEUE_WARMUP s warm-up p50 $a50, p99 $a99, max $amax ms ($acnt records); the COPY outlasted the stream: $outlasted" \
		"$(printf '{"latency_ms": {"p50": %s, "p99": %s, "max": %s, "records": %s}, "latency_all_ms": {"p50": %s, "p99": %s, "max": %s, "records": %s}, "copy_outlasted_stream": %s, "counts": %s, "copy_counts": %s}' \
			"${p50:-null}" "${p99:-null}" "${max:-null}" "${cnt:-0}" "${a50:-null}" "${a99:-null}" "${amax:-null}" "${acnt:-0}" \
			"$([ "$outlasted" = yes ] && echo true || echo false)" "$(txpipe_counts_json "$p")" "$(txpipe_counts_json "$c")")"
	queue_finish
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $p CASCADE" -c "SELECT txpipe.drop_pipeline('$p')" \
		-c "DROP SCHEMA $c CASCADE" -c "SELECT txpipe.drop_pipeline('$c')" >/dev/null
	rm -f "$file" "$span"
}

# ------------------------------------------------------------------
# rows: drain_1, drain_2, drain_4 — a backlog of QUEUE_DRAIN_RECORDS
# records queued while the workers are stopped, then drained by 1, 2 or 4
# workers.  The runs of the selected drain rows alternate (1, 2, 4, 1, 2,
# 4, ...), so that a busy spell of the shared machine falls on all of them
# alike and their ratios stay comparable.
# ------------------------------------------------------------------
QUEUE_DRAIN_RECORDS=${QUEUE_DRAIN_RECORDS:-600000}
DRAIN_DONE=0 DRAIN_FILE='' DRAIN_SUMMARY='' DRAIN_LINES=0 DRAIN_ASIDE=0 DRAIN_DIMS=''
declare -gA DRAIN_DEADLOCKS=() DRAIN_LOCKTIMEOUTS=() DRAIN_STAT_DEADLOCKS=() DRAIN_RETRIES=() DRAIN_CPU=()

row_drain_1() { drain_rows; }
row_drain_2() { drain_rows; }
row_drain_4() { drain_rows; }

# lines of the server log that say $1
log_count() {
	grep -c -- "$1" "$WORK/server.log" || true
}

# deadlocks the server detected in this database: a batch retries one
# within itself (a savepoint), so the log does not show them all
stat_deadlocks() {
	sql_value "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
}

# CPU seconds the running txpipe workers have used since they started
# (user + system, from /proc)
workers_cpu() {
	local pid ticks=0 t hz
	hz=$(getconf CLK_TCK)
	for pid in $(sql_value "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'txpipe worker'"); do
		t=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)
		ticks=$((ticks + t))
	done
	awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'
}

# the dimension tables' row counts of pipeline $1, "table=n ..."
drain_dims() {
	local p=$1
	sql_value "SELECT string_agg(t || '=' || n, ' ' ORDER BY t) FROM (
		SELECT 'state' AS t, count(*) AS n FROM $p.state UNION ALL
		SELECT 'city', count(*) FROM $p.city UNION ALL
		SELECT 'customer', count(*) FROM $p.customer UNION ALL
		SELECT 'customer_version', count(*) FROM $p.customer_version UNION ALL
		SELECT 'card', count(*) FROM $p.card UNION ALL
		SELECT 'category', count(*) FROM $p.category UNION ALL
		SELECT 'merchant', count(*) FROM $p.merchant) s"
}

# drain_once WORKERS RUN: one timed drain; sets RUN_SECONDS and
# DRAIN_NOTE_<WORKERS>, dies when the result is not exact
drain_once() {
	local w=$1 run=$2 p=cards_drain t0 t1 dl0 dl1 lt0 lt1 ds0 ds1 retries cpu got expected_rejected
	settle
	sql -q -c "SELECT txpipe.stop_worker()" >/dev/null
	queue_pipeline "$p" async "$w"
	# the backlog: COPY into the async pipeline fills the inbox, nothing routes it
	sql -q -c "\\copy txpipe_in.$p FROM '$DRAIN_FILE' $COPY_OPTS" >/dev/null
	if [ "$(sql_value "SELECT count(*) FROM txpipe.queue WHERE pipeline = '$p'")" != "$DRAIN_LINES" ]; then
		die "drain: the backlog is not $DRAIN_LINES records"
	fi
	checkpoint
	dl0=$(log_count 'deadlock detected')
	lt0=$(log_count 'lock timeout')
	ds0=$(stat_deadlocks)
	t0=$(date +%s.%N)
	sql -q -c "SELECT txpipe.start_worker()" >/dev/null
	t1=$(queue_wait_consumed "$p" "$DRAIN_LINES")
	RUN_SECONDS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	cpu=$(workers_cpu)
	DRAIN_CPU[$w]="${DRAIN_CPU[$w]:-} $cpu"
	# the workers write their log lines before they commit
	dl1=$(log_count 'deadlock detected')
	lt1=$(log_count 'lock timeout')
	# the workers exit, which sends their statistics
	sql -q -c "SELECT txpipe.stop_worker()" >/dev/null
	ds1=$(stat_deadlocks)
	retries=$(sql_value "SELECT coalesce(sum(retries), 0) FROM txpipe.batches WHERE pipeline = '$p'")
	DRAIN_DEADLOCKS[$w]=$(( ${DRAIN_DEADLOCKS[$w]:-0} + dl1 - dl0 ))
	DRAIN_LOCKTIMEOUTS[$w]=$(( ${DRAIN_LOCKTIMEOUTS[$w]:-0} + lt1 - lt0 ))
	DRAIN_STAT_DEADLOCKS[$w]=$(( ${DRAIN_STAT_DEADLOCKS[$w]:-0} + ds1 - ds0 ))
	DRAIN_RETRIES[$w]=$(( ${DRAIN_RETRIES[$w]:-0} + retries ))

	# exact: the generator's counts, every transaction once, the same
	# dimension rows as every other run, and each card's transactions
	# stored in the order of their inbox rows (the inbox keeps its rows:
	# txpipe.inbox_slot_seconds raised)
	expected_rejected=$(( DRAIN_LINES - $(summary_get "$DRAIN_SUMMARY" valid) - $(summary_get "$DRAIN_SUMMARY" dups) ))
	got=$(sql_value "SELECT s.accepted || ' ' || s.duplicates || ' ' || s.rejected || ' ' || s.backlog || ' ' ||
			(SELECT count(*) FROM $p.transaction) || ' ' || (SELECT sum(amt) FROM $p.transaction) || ' ' ||
			(SELECT count(*) FILTER (WHERE back) || ' ' || count(*) FROM (SELECT q.id < lag(q.id) OVER (PARTITION BY t.card_id ORDER BY t.transaction_id) AS back
									 FROM $p.transaction t
									 JOIN (SELECT substring(i.doc FROM '\"trans_num\"\\s*:\\s*\"([^\"]*)\"') AS trans_num, min(i.id) AS id
											 FROM txpipe.inbox i WHERE i.pipeline = '$p' GROUP BY 1) q USING (trans_num)) o
			)
		FROM txpipe.stats s WHERE s.pipeline = '$p'")
	local accepted dups rejected backlog rows sum back joined
	read -r accepted dups rejected backlog rows sum back joined <<<"$got"
	if ! { [ "$accepted" = "$(summary_get "$DRAIN_SUMMARY" valid)" ] && [ "$rows" = "$accepted" ] &&
		[ "$dups" = "$(summary_get "$DRAIN_SUMMARY" dups)" ] && [ "$rejected" = "$expected_rejected" ] &&
		[ "$backlog" = 0 ] && [ "$(awk -v a="$sum" -v b="$(summary_get "$DRAIN_SUMMARY" sum_amt)" 'BEGIN { print (a == b) }')" = 1 ]; }; then
		die "drain, $w workers: accepted/duplicates/rejected/backlog/rows/sum $got; expected $(summary_get "$DRAIN_SUMMARY" valid)/$(summary_get "$DRAIN_SUMMARY" dups)/$expected_rejected/0/$(summary_get "$DRAIN_SUMMARY" valid)/$(summary_get "$DRAIN_SUMMARY" sum_amt)"
	fi
	if [ "$back" != 0 ] || [ "$joined" != "$accepted" ]; then
		die "drain, $w workers: $back of $joined transactions stored before one queued earlier on their card"
	fi
	local dims
	dims=$(drain_dims "$p")
	if [ -z "$DRAIN_DIMS" ]; then
		DRAIN_DIMS=$dims
	elif [ "$dims" != "$DRAIN_DIMS" ]; then
		die "drain, $w workers: dimension rows $dims, another run made $DRAIN_DIMS"
	fi
	log "  drain, $w worker(s), run $run: $RUN_SECONDS s, the workers used $cpu CPU s; deadlocks: $((ds1 - ds0)) detected, $((dl1 - dl0)) in the log; $((lt1 - lt0)) lock timeouts in the log; $retries batch retries"
}

drain_rows() {
	[ "$DRAIN_DONE" = 1 ] && return 0
	DRAIN_DONE=1
	local ws=() r w i counts prefix=$WORK/drain
	for r in "${SELECTED[@]}"; do
		case "$r" in drain_*) ws+=("${r#drain_}") ;; esac
	done
	log "drain: generating $QUEUE_DRAIN_RECORDS records (txpipe gen cards --seed 42 --bad 0.01 --dups 0.01)"
	"$CLIENT" gen cards --rows "$QUEUE_DRAIN_RECORDS" --seed 42 --bad 0.01 --dups 0.01 \
		--summary "$prefix.summary.json" >"$prefix.ndjson"
	counts=$(split_copyable "$prefix.ndjson" "$prefix.copy.ndjson" "$prefix.aside.ndjson")
	DRAIN_FILE=$prefix.copy.ndjson DRAIN_SUMMARY=$prefix.summary.json
	DRAIN_LINES=${counts% *} DRAIN_ASIDE=${counts#* }
	chmod a+r "$prefix".*
	log "drain: $DRAIN_LINES lines COPY can carry, $DRAIN_ASIDE set aside"
	log "drain: a backlog of $DRAIN_LINES records drained by ${ws[*]} worker(s), $REPEAT runs each, alternating"
	declare -A times=()
	for ((i = 1; i <= REPEAT; i++)); do
		for w in "${ws[@]}"; do
			drain_once "$w" "$i"
			times[$w]="${times[$w]:-} $RUN_SECONDS"
		done
	done
	queue_finish
	sql -q -c "SELECT txpipe.start_worker()" >/dev/null
	for w in "${ws[@]}"; do
		local dl lt ds rt cpu
		read -r -a RUN_TIMES <<<"${times[$w]}"
		dl=${DRAIN_DEADLOCKS[$w]:-0}
		lt=${DRAIN_LOCKTIMEOUTS[$w]:-0}
		ds=${DRAIN_STAT_DEADLOCKS[$w]:-0}
		rt=${DRAIN_RETRIES[$w]:-0}
		# the workers' CPU seconds in the run of the median time
		cpu=$(paste -d ' ' <(tr ' ' '\n' <<<"${times[$w]}" | sed '/^$/d') <(tr ' ' '\n' <<<"${DRAIN_CPU[$w]}" | sed '/^$/d') |
			sort -g | awk '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }')
		add_row "drain_$w" "queue drain: a backlog of $(thousands "$DRAIN_LINES") records, $w worker(s)" "$DRAIN_LINES" median \
			"the workers used $cpu CPU s in the median run; over $REPEAT runs: $ds deadlocks detected (pg_stat_database), $dl \"deadlock detected\" and $lt lock timeouts in the log, $rt batch retries; counts, dimension rows and each card's order exact" \
			"$(printf '{"workers": %s, "workers_cpu_s": [%s], "deadlocks_detected": %s, "deadlocks_in_log": %s, "lock_timeouts_in_log": %s, "batch_retries": %s, "dimension_rows": "%s", "counts": %s}' \
				"$w" "$(sed 's/^ //; s/ /, /g' <<<"${DRAIN_CPU[$w]}")" "$ds" "$dl" "$lt" "$rt" "$DRAIN_DIMS" "$(txpipe_counts_json cards_drain)")"
	done
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA cards_drain CASCADE" \
		-c "SELECT txpipe.drop_pipeline('cards_drain')" >/dev/null
	rm -f "$prefix".*
}
