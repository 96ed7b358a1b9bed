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

# queue_prepare PIPELINE [MODE [WORKERS]]: a fresh cards pipeline, its
# workers running, an empty inbox
queue_prepare() {
	local p=$1 mode=${2:-sync} workers=${3:-${QUEUE_WORKERS:-2}}
	txpipe_prepare "$p"
	sql -q -c "SET client_min_messages = warning" \
		-c "SELECT txpipe.create_pipeline('$p', spec || '{\"mode\": \"$mode\"}', or_replace => true)
			  FROM txpipe.pipelines WHERE name = '$p'" \
		-c "TRUNCATE txpipe.inbox" \
		-c "ALTER SYSTEM SET txpipe.inbox_slot_seconds = 3600" \
		-c "ALTER SYSTEM SET txpipe.workers = $workers" \
		-c "SELECT pg_reload_conf()" >/dev/null
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
queue_latency() {
	local p=$1
	sql_value "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
					  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
					  round(max(ms)::numeric, 1) || ' ' || count(*)
		FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(t.xmin)
									  - pg_xact_commit_timestamp(i.xmin)) * 1000 AS ms
				FROM txpipe.inbox i
				JOIN $p.transaction t ON t.trans_num = substring(i.doc FROM '\"trans_num\"\\s*:\\s*\"([^\"]*)\"')
			   WHERE i.pipeline = '$p') s"
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
	local p=cards_latency t0 t1 file=$WORK/queue_lat.ndjson n stop=$WORK/lat.stop lat
	head -n "$((QUEUE_RATE * QUEUE_SECONDS))" "$DATA" >"$file"
	n=$(wc -l <"$file")
	log "queue latency: $n records at $QUEUE_RATE records/s from $QUEUE_CLIENTS clients (one run)"
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
	lat=$(queue_latency "$p")
	local p50 p99 max cnt mem
	read -r p50 p99 max cnt <<<"$lat"
	mem=$(cat "$WORK/lat_mem" 2>/dev/null || echo '')
	log "  run 1/1: ${RUN_TIMES[0]} s; latency p50 $p50 ms, p99 $p99 ms, max $max ms over $cnt records"
	add_row queue_latency "queue: $QUEUE_RATE records/s from $QUEUE_CLIENTS clients, $QUEUE_LATENCY_BATCH per enqueue (one run)" "$n" median \
		"enqueue rate reached $(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' "$OUT/queue_latency.log")/s; enqueue→visible p50 $p50 ms, p99 $p99 ms, max $max ms ($cnt records); worker private RSS peak $(awk -v k="${mem:-0}" 'BEGIN { printf "%.0f", k / 1024 }') MB" \
		"$(printf '{"latency_ms": {"p50": %s, "p99": %s, "max": %s, "records": %s}, "worker_private_rss_peak_kb": %s, "counts": %s}' \
			"${p50:-null}" "${p99:-null}" "${max:-null}" "${cnt:-0}" "${mem:-null}" "$(txpipe_counts_json "$p")")"
	queue_finish
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $p CASCADE" \
		-c "SELECT txpipe.drop_pipeline('$p')" >/dev/null
	rm -f "$file"
}
