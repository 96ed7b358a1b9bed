# shellcheck shell=bash
# The peer rows of bench/run (sourced by it, after queue.sh): what txpipe's
# queue is compared with, side by side in the same run.
#
#   per_event       the originals' per-event pattern: one transaction per
#                   event from QUEUE_CLIENTS connections (pgbench), each
#                   running the get-or-create statements of the card
#                   pipeline's function, into the cards template's tables
#   enqueue_single  the same events through txpipe.enqueue(pipeline, jsonb),
#                   one per transaction, until the workers have routed them
#   pgq_throughput  PgQ: the queue throughput row's records through
#                   pgq.insert_event, a consumer writing the same tables
#   pgq_latency     PgQ at QUEUE_RATE records/s: enqueue commit to the
#                   consumer's commit, as the queue latency row measures
#
# The events are clean generated records (txpipe gen cards --seed 7 --bad 0
# --dups 0), in bench.peer_docs, one primary-key lookup (or range) per
# event or batch; the per-event row reads them already typed
# (bench.pe_events), as its function had them once it had parsed the event.

PEER_EVENTS=${PEER_EVENTS:-32000}
PGQ_TICKER_PERIOD=${PGQ_TICKER_PERIOD:-0.1}
PGBENCH=$PG_BINDIR/pgbench
PEER_DOCS=0

# the peer events, at least N of them, in bench.peer_docs and
# bench.pe_events
peers_data() {
	local n=$1 f=$WORK/peers.ndjson
	[ "$PEER_DOCS" -ge "$n" ] && return 0
	log "peers: generating $n clean records (txpipe gen cards --seed 7 --bad 0 --dups 0)"
	"$CLIENT" gen cards --rows "$n" --seed 7 --bad 0 --dups 0 >"$f"
	sql -q -c "SET client_min_messages = warning" -c "CREATE SCHEMA IF NOT EXISTS bench" \
		-c "DROP TABLE IF EXISTS bench.peer_docs" \
		-c "CREATE TABLE bench.peer_docs (i integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, doc text NOT NULL)" \
		-c "\\copy bench.peer_docs (doc) FROM '$f' $COPY_OPTS" >/dev/null
	sql -q -c "SET client_min_messages = warning" -f "$BENCH/sql/peers_setup.sql" >/dev/null
	rm -f "$f"
	PEER_DOCS=$n
}

# round_down N M: N rounded down to a multiple of M
round_down() {
	echo $(($1 / $2 * $2))
}

elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'
}

# pgbench_run LOG SCRIPT TRANSACTIONS_PER_CLIENT [OPTIONS...]: QUEUE_CLIENTS
# clients, prepared statements; fails unless every transaction was done
pgbench_run() {
	local logfile=$1 script=$2 per_client=$3 done_tx
	shift 3
	"$PGBENCH" -n -M prepared -c "$QUEUE_CLIENTS" -j 2 -t "$per_client" \
		-D clients="$QUEUE_CLIENTS" -D n=0 "$@" -f "$script" >"$logfile" 2>&1 ||
		{ tail -n 20 "$logfile" >&2; die "pgbench $script failed (log: $logfile)"; }
	done_tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$logfile")
	[ "$done_tx" = "$((per_client * QUEUE_CLIENTS))" ] ||
		die "pgbench $script: $done_tx of $((per_client * QUEUE_CLIENTS)) transactions (log: $logfile)"
}

# rows per table of schema $1, "table=count ..."
peer_counts() {
	sql_value "SELECT string_agg(t || '=' || n, ' ' ORDER BY o) FROM (
		SELECT 1, 'state', count(*) FROM ONLY $1.state UNION ALL
		SELECT 2, 'city', count(*) FROM ONLY $1.city UNION ALL
		SELECT 3, 'customer', count(*) FROM ONLY $1.customer UNION ALL
		SELECT 4, 'customer_version', count(*) FROM ONLY $1.customer_version UNION ALL
		SELECT 5, 'card', count(*) FROM ONLY $1.card UNION ALL
		SELECT 6, 'merchant', count(*) FROM ONLY $1.merchant UNION ALL
		SELECT 7, 'category', count(*) FROM ONLY $1.category UNION ALL
		SELECT 8, 'transaction', count(*) FROM ONLY $1.transaction) c(o, t, n)"
}

# the cards template's tables in schema $1, without a pipeline
plain_tables() {
	sql -q -c "SET client_min_messages = warning" \
		-c "DROP SCHEMA IF EXISTS $1 CASCADE" \
		-c "SELECT txpipe.drop_pipeline(name) FROM txpipe.pipelines WHERE name = '$1'" \
		-c "SELECT txpipe.install_template('cards', '$1')" \
		-c "SELECT txpipe.drop_pipeline('$1')" >/dev/null
}

# a field of a row already in the report: row_field KEY records|seconds
row_field() {
	awk -F '\t' -v k="$1" -v f="$2" '$1 == k {
		n = split($5, t, " "); s = 0; for (i = 1; i <= n; i++) s = t[i]
		print (f == "records" ? $3 : s) }' "$RESULTS"
}

# a JSON field of a row's extra object: row_json KEY PERL_PATH (e.g. {latency_ms}{p99})
row_json() {
	awk -F '\t' -v k="$1" '$1 == k { print $7 }' "$RESULTS" |
		perl -MJSON::PP -ne 'my $v = eval { JSON::PP->new->decode($_) }; my $x = eval "\$v->'"$2"'";
			print defined $x ? $x : ""'
}

# WAL flushes of a run: wal_reset before, wal_flushes after prints
# "flushes avg_ms" (pg_stat_wal, track_wal_io_timing on meanwhile): one
# transaction per event waits for its commit's flush, so the flush time
# bounds what QUEUE_CLIENTS clients can send
wal_reset() {
	sql -q -c "ALTER SYSTEM SET track_wal_io_timing = on" -c "SELECT pg_reload_conf()" \
		-c "SELECT pg_stat_reset_shared('wal')" >/dev/null
	WAL_FROM=$(sql_value "SELECT pg_current_wal_insert_lsn()")
}

wal_flushes() {
	# WAL_RECORDS=1: the run's WAL by record type, into $OUT/wal.<caller>.txt
	if [ -n "${WAL_RECORDS:-}" ]; then
		as_pg "$PG_BINDIR/pg_waldump" -p "$PGDATA_DIR/pg_wal" -s "$WAL_FROM" \
			-e "$(sql_value "SELECT pg_current_wal_insert_lsn()")" --stats=record \
			>"$OUT/wal.${FUNCNAME[1]}.txt" 2>&1 || true
	fi
	sql_value "SELECT wal_sync || ' ' || round((wal_sync_time / greatest(wal_sync, 1))::numeric, 1) || ' ' || wal_bytes || ' ' || wal_fpi FROM pg_stat_wal"
	sql -q -c "ALTER SYSTEM RESET track_wal_io_timing" -c "SELECT pg_reload_conf()" >/dev/null
}

# "N WAL flushes, X ms each on average, Y events per flush, B bytes of WAL
# per event (F full-page images)"
wal_note() {
	awk -v f="$1" -v ms="$2" -v n="$3" -v b="${4:-0}" -v fpi="${5:-0}" 'BEGIN {
		printf "%d WAL flushes, %.1f ms each on average, %.1f events per flush, %.0f bytes of WAL per event (%d full-page images)",
			f, ms, (f > 0 ? n / f : 0), (n > 0 ? b / n : 0), fpi }'
}

# ------------------------------------------------------------------
# row: per_event
# ------------------------------------------------------------------
PER_EVENT_RATE=''

row_per_event() {
	local n per t0 t1 counts got fetch_rate flushes flush_ms wal_bytes wal_fpi
	n=$(round_down "$PEER_EVENTS" "$QUEUE_CLIENTS")
	per=$((n / QUEUE_CLIENTS))
	peers_data "$n"
	log "per_event: $n events, one transaction each from $QUEUE_CLIENTS clients (pgbench), 8 get-or-create statements per event (one run)"
	# what reading the events costs, alone
	pgbench_run "$OUT/pe_fetch.log" "$BENCH/sql/pe_fetch.pgbench" "$per"
	fetch_rate=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/pe_fetch.log" | head -n 1)
	settle
	plain_tables cards_pe
	checkpoint
	wal_reset
	t0=$(date +%s.%N)
	pgbench_run "$OUT/per_event.log" "$BENCH/sql/per_event.pgbench" "$per"
	t1=$(date +%s.%N)
	read -r flushes flush_ms wal_bytes wal_fpi <<<"$(wal_flushes)"
	RUN_TIMES=("$(elapsed "$t0" "$t1")")
	PER_EVENT_RATE=$(awk -v n="$n" -v t="${RUN_TIMES[0]}" 'BEGIN { printf "%.0f", n / t }')
	counts=$(peer_counts cards_pe)
	got=$(sed -n 's/.*transaction=\([0-9]*\).*/\1/p' <<<"$counts")
	[ "$got" = "$n" ] || die "per_event: $got transaction rows for $n events ($counts)"
	log "  run 1/1: ${RUN_TIMES[0]} s, $PER_EVENT_RATE events/s; $counts; the lookup alone $fetch_rate events/s"
	add_row per_event "peer: the per-event pattern, $QUEUE_CLIENTS clients, one transaction of 8 get-or-create statements per event (one run)" "$n" median \
		"$PER_EVENT_RATE events/s; $(wal_note "$flushes" "$flush_ms" "$n" "$wal_bytes" "$wal_fpi"); rows: $counts (all $n events written); reading the events alone (one primary-key lookup each, the same clients) $(printf '%.0f' "$fetch_rate") events/s" \
		"$(printf '{"events_per_s": %s, "lookup_alone_per_s": %s, "wal_flushes": %s, "wal_flush_avg_ms": %s, "wal_bytes": %s, "rows": "%s"}' "$PER_EVENT_RATE" "${fetch_rate:-null}" "${flushes:-null}" "${flush_ms:-null}" "${wal_bytes:-null}" "$counts")"
}

# ------------------------------------------------------------------
# row: enqueue_single
# ------------------------------------------------------------------
row_enqueue_single() {
	local p=cards_es n per t0 sent t1 rate enq counts got accepted ratio='' same='' flushes flush_ms wal_bytes wal_fpi
	n=$(round_down "$PEER_EVENTS" "$QUEUE_CLIENTS")
	per=$((n / QUEUE_CLIENTS))
	peers_data "$n"
	log "enqueue_single: $n events, one txpipe.enqueue(jsonb) per transaction from $QUEUE_CLIENTS clients, ${QUEUE_WORKERS:-2} workers route (one run)"
	settle
	queue_prepare "$p" sync "${QUEUE_WORKERS:-2}"
	checkpoint
	wal_reset
	t0=$(date +%s.%N)
	pgbench_run "$OUT/enqueue_single.log" "$BENCH/sql/enqueue_single.pgbench" "$per"
	sent=$(date +%s.%N)
	t1=$(queue_wait_consumed "$p" "$n")
	read -r flushes flush_ms wal_bytes wal_fpi <<<"$(wal_flushes)"
	RUN_TIMES=("$(elapsed "$t0" "$t1")")
	rate=$(awk -v n="$n" -v t="${RUN_TIMES[0]}" 'BEGIN { printf "%.0f", n / t }')
	enq=$(awk -v n="$n" -v a="$t0" -v b="$sent" 'BEGIN { printf "%.0f", n / (b - a) }')
	counts=$(peer_counts "$p")
	got=$(sed -n 's/.*transaction=\([0-9]*\).*/\1/p' <<<"$counts")
	accepted=$(sql_value "SELECT accepted FROM txpipe.stats WHERE pipeline = '$p'")
	if [ "$got" != "$n" ] || [ "$accepted" != "$n" ]; then
		die "enqueue_single: $got transaction rows, $accepted accepted, for $n events ($counts)"
	fi
	if [ -n "$PER_EVENT_RATE" ]; then
		ratio=$(awk -v a="$rate" -v b="$PER_EVENT_RATE" 'BEGIN { printf "%.2f", a / b }')
		same=$([ "$counts" = "$(peer_counts cards_pe)" ] && echo "the same rows as per_event" || echo "rows DIFFER from per_event's")
	fi
	# the same enqueues again with the workers stopped: what writing the
	# inbox costs when nothing routes beside it on the same cores (the
	# records stay queued; the pipeline is dropped below)
	local a0 alone
	sql -q -c "SELECT txpipe.stop_worker()" >/dev/null
	checkpoint
	a0=$(date +%s.%N)
	pgbench_run "$OUT/enqueue_single.alone.log" "$BENCH/sql/enqueue_single.pgbench" "$per"
	alone=$(awk -v n="$n" -v a="$a0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", n / (b - a) }')
	local cmp=''
	[ -n "$ratio" ] && cmp=", ${ratio}× per_event (target ≥ 1.5×)"
	log "  run 1/1: ${RUN_TIMES[0]} s, $rate events/s routed (enqueue alone $enq/s; with the workers stopped $alone/s)$cmp; $counts"
	add_row enqueue_single "txpipe: the same events, one enqueue(jsonb) per transaction from $QUEUE_CLIENTS clients, ${QUEUE_WORKERS:-2} workers, until routed (one run)" "$n" median \
		"$rate events/s routed$cmp; enqueue alone $enq/s; with the workers stopped, nothing routed, $alone/s$([ -n "$PER_EVENT_RATE" ] && awk -v a="$alone" -v b="$PER_EVENT_RATE" 'BEGIN { printf " (%.2f× per_event)", a / b }'); $(wal_note "$flushes" "$flush_ms" "$n" "$wal_bytes" "$wal_fpi") (the workers' included); all $n routed${same:+, $same}" \
		"$(printf '{"events_per_s": %s, "enqueue_records_per_s": %s, "enqueue_alone_workers_stopped_per_s": %s, "ratio_to_per_event": %s, "wal_flushes": %s, "wal_flush_avg_ms": %s, "wal_bytes": %s, "rows": "%s", "counts": %s}' \
			"$rate" "$enq" "$alone" "${ratio:-null}" "${flushes:-null}" "${flush_ms:-null}" "${wal_bytes:-null}" "$counts" "$(txpipe_counts_json "$p")")"
	queue_finish
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $p CASCADE" \
		-c "SELECT txpipe.drop_pipeline('$p')" -c "DROP SCHEMA IF EXISTS cards_pe CASCADE" >/dev/null
}

# ------------------------------------------------------------------
# rows: enqueue_batch, enqueue_paced — txpipe's queue driven as the PgQ
# rows drive PgQ (pgbench, the records read in the server), so that the
# two compare with the same producer
# ------------------------------------------------------------------

# txpipe_pgbench KEY LABEL PIPELINE N BATCH WORKERS [RATE]: N records, BATCH per
# enqueue transaction from QUEUE_CLIENTS clients (RATE records/s in all if
# given), until the workers have routed them; sets TXPB_RATE, TXPB_ENQ,
# TXPB_LAT ("p50 p99 max count") and adds the row
TXPB_RATE='' TXPB_ENQ='' TXPB_LAT=''
txpipe_pgbench() {
	local key=$1 label=$2 p=$3 n=$4 b=$5 workers=$6 rate=${7:-} per t0 sent t1 accepted extra=() reached=''
	per=$((n / b / QUEUE_CLIENTS))
	peers_data "$n"
	[ -n "$rate" ] && extra=(-R "$(awk -v r="$rate" -v b="$b" 'BEGIN { printf "%.1f", r / b }')")
	log "$key: $n records, $b per txpipe.enqueue(text[]) from $QUEUE_CLIENTS clients (pgbench${rate:+, $rate records/s}), $workers worker(s) (one run)"
	settle
	queue_prepare "$p" sync "$workers"
	checkpoint
	t0=$(date +%s.%N)
	pgbench_run "$OUT/$key.log" "$BENCH/sql/enqueue_batch.pgbench" "$per" -D batch="$b" -D pipeline="$p" "${extra[@]}"
	sent=$(date +%s.%N)
	t1=$(queue_wait_consumed "$p" "$n")
	RUN_TIMES=("$(elapsed "$t0" "$t1")")
	TXPB_RATE=$(awk -v n="$n" -v t="${RUN_TIMES[0]}" 'BEGIN { printf "%.0f", n / t }')
	TXPB_ENQ=$(awk -v n="$n" -v a="$t0" -v b="$sent" 'BEGIN { printf "%.0f", n / (b - a) }')
	accepted=$(sql_value "SELECT accepted FROM txpipe.stats WHERE pipeline = '$p'")
	[ "$accepted" = "$n" ] || die "$key: $accepted accepted of $n records"
	local note="$TXPB_RATE records/s routed, enqueue alone $TXPB_ENQ records/s; all $n routed"
	TXPB_LAT=''
	if [ -n "$rate" ]; then
		local p50 p99 max cnt
		TXPB_LAT=$(queue_latency "$p" "$(warmup_end "$t0")")
		read -r p50 p99 max cnt <<<"$TXPB_LAT"
		reached=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/$key.log" | head -n 1)
		reached=$(awk -v t="$reached" -v b="$b" 'BEGIN { printf "%.0f", t * b }')
		note="enqueue rate reached ${reached}/s; enqueue→visible p50 $p50 ms, p99 $p99 ms, max $max ms ($cnt records after a $QUEUE_WARMUP s warm-up); all $n routed"
	fi
	log "  run 1/1: ${RUN_TIMES[0]} s; $note"
	add_row "$key" "$label" "$n" median "$note" \
		"$(printf '{"records_per_s": %s, "enqueue_records_per_s": %s, "latency_ms": %s, "counts": %s}' \
			"$TXPB_RATE" "$TXPB_ENQ" \
			"$(if [ -n "$TXPB_LAT" ]; then read -r a b c d <<<"$TXPB_LAT"; printf '{"p50": %s, "p99": %s, "max": %s, "records": %s}' "$a" "$b" "$c" "$d"; else echo null; fi)" \
			"$(txpipe_counts_json "$p")")"
	queue_finish
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $p CASCADE" \
		-c "SELECT txpipe.drop_pipeline('$p')" >/dev/null
}

row_enqueue_batch() {
	local n
	n=$(round_down "$QUEUE_RECORDS" $((100 * QUEUE_CLIENTS)))
	txpipe_pgbench enqueue_batch "txpipe, driven like pgq_throughput: $QUEUE_CLIENTS clients, 100 records per enqueue, until routed (one run)" \
		cards_eb "$n" 100 "${QUEUE_WORKERS:-2}"
}

row_enqueue_paced() {
	local n b=$QUEUE_LATENCY_BATCH
	n=$(round_down "$((QUEUE_RATE * (QUEUE_SECONDS + QUEUE_WARMUP)))" $((b * QUEUE_CLIENTS)))
	txpipe_pgbench enqueue_paced "txpipe, driven like pgq_latency: $QUEUE_RATE records/s from $QUEUE_CLIENTS clients, $b per enqueue (one run)" \
		cards_ep "$n" "$b" "$QUEUE_LATENCY_WORKERS" "$QUEUE_RATE"
}

# ------------------------------------------------------------------
# rows: PgQ
# ------------------------------------------------------------------
PGQD_PID=''

# PgQ into the PostgreSQL of PG_BINDIR: Debian's postgresql-15-pgq3 installs
# it for /usr/lib/postgresql/15; a copy of that tree gets its files
pgq_install() {
	local share lib sys_share=/usr/share/postgresql/15/extension sys_lib=/usr/lib/postgresql/15/lib
	share=$("$PG_CONFIG" --sharedir)/extension
	lib=$("$PG_CONFIG" --pkglibdir)
	if [ ! -f "$sys_share/pgq.control" ] || ! command -v pgqd >/dev/null; then
		log "pgq: apt-get install postgresql-15-pgq3 pgqd"
		apt-get install -y -q postgresql-15-pgq3 pgqd >"$OUT/pgq-install.log" 2>&1 ||
			die "apt-get install postgresql-15-pgq3 pgqd failed (log: $OUT/pgq-install.log)"
	fi
	if [ ! -f "$share/pgq.control" ] || [ ! -f "$lib/pgq_lowlevel.so" ]; then
		log "pgq: copying the extension into $(dirname "$share")"
		cp "$sys_share"/pgq.control "$sys_share"/pgq--*.sql "$share/"
		cp "$sys_lib"/pgq_lowlevel.so "$sys_lib"/pgq_triggers.so "$lib/"
	fi
}

pgqd_stop() {
	if [ -n "$PGQD_PID" ]; then
		kill -INT "$PGQD_PID" 2>/dev/null || true
		wait "$PGQD_PID" 2>/dev/null || true
		PGQD_PID=''
	fi
}

# a fresh queue, consumer and cards_pq tables; pgqd ticking
pgq_prepare() {
	pgq_install
	sql -q -c "SET client_min_messages = warning" -c "DROP EXTENSION IF EXISTS pgq CASCADE" \
		-c "DROP SCHEMA IF EXISTS pgq CASCADE" \
		-c "DROP PROCEDURE IF EXISTS bench.pgq_consume(bigint, float8)" \
		-c "DROP FUNCTION IF EXISTS bench.pgq_apply(bigint)" -c "DROP TABLE IF EXISTS bench.pgq_progress" \
		-c "CREATE EXTENSION pgq" >/dev/null
	plain_tables cards_pq
	sql -q -c "SET client_min_messages = warning" -f "$BENCH/sql/pgq_setup.sql" >/dev/null
	cat >"$WORK/pgqd.ini" <<-EOF
		[pgqd]
		base_connstr = host=$PGHOST port=$PGPORT user=$PGUSER
		initial_database = $PGDATABASE
		database_list = $PGDATABASE
		ticker_period = $PGQ_TICKER_PERIOD
		syslog = 0
	EOF
	pgqd "$WORK/pgqd.ini" >>"$OUT/pgqd.log" 2>&1 &
	PGQD_PID=$!
	sleep 1
	kill -0 "$PGQD_PID" 2>/dev/null || die "pgqd did not start (log: $OUT/pgqd.log)"
}

# the consumer, in the background, until it has applied $1 events
PGQ_CONSUMER=''
pgq_consumer_start() {
	sql -q -c "CALL bench.pgq_consume($1, 1800)" >"$OUT/pgq_consumer.log" 2>&1 &
	PGQ_CONSUMER=$!
}

# sets PGQ_DONE to the time the consumer returned (not in a subshell: it
# waits for a child of this shell)
PGQ_DONE=''
pgq_consumer_wait() {
	wait "$PGQ_CONSUMER" || die "the PgQ consumer failed (log: $OUT/pgq_consumer.log)"
	PGQ_DONE=$(date +%s.%N)
}

# ticks, batches and the consumer's seconds in pgq_apply, "ticks batches apply_s"
pgq_ticks() {
	sql_value "SELECT (SELECT count(*) FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue
						WHERE q.queue_name = 'peers') || ' ' || batches || ' ' || round(apply_s::numeric, 2)
				 FROM bench.pgq_progress"
}

pgq_finish() {
	pgqd_stop
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA cards_pq CASCADE" \
		-c "DROP PROCEDURE bench.pgq_consume(bigint, float8)" -c "DROP FUNCTION bench.pgq_apply(bigint)" \
		-c "DROP TABLE bench.pgq_progress" -c "DROP EXTENSION pgq CASCADE" >/dev/null
}

# the consumer wrote n transaction rows: dies otherwise
pgq_check() {
	local what=$1 n=$2 counts got
	counts=$(peer_counts cards_pq)
	got=$(sed -n 's/.*transaction=\([0-9]*\).*/\1/p' <<<"$counts")
	[ "$got" = "$n" ] || die "$what: $got transaction rows for $n events ($counts)"
	echo "$counts"
}

row_pgq_throughput() {
	local n per t0 sent t1 rate enq counts ticks batches apply_s tx_rate tx_enq ratio='' ratio_enq=''
	n=$(round_down "$QUEUE_RECORDS" $((100 * QUEUE_CLIENTS)))
	per=$((n / 100 / QUEUE_CLIENTS))
	peers_data "$n"
	log "pgq throughput: $n records, $QUEUE_CLIENTS clients, 100 pgq.insert_event per transaction, one consumer, pgqd ticker_period $PGQ_TICKER_PERIOD s (one run)"
	settle
	pgq_prepare
	checkpoint
	pgq_consumer_start "$n"
	t0=$(date +%s.%N)
	pgbench_run "$OUT/pgq_throughput.log" "$BENCH/sql/pgq_insert.pgbench" "$per" -D batch=100
	sent=$(date +%s.%N)
	pgq_consumer_wait
	t1=$PGQ_DONE
	RUN_TIMES=("$(elapsed "$t0" "$t1")")
	rate=$(awk -v n="$n" -v t="${RUN_TIMES[0]}" 'BEGIN { printf "%.0f", n / t }')
	enq=$(awk -v n="$n" -v a="$t0" -v b="$sent" 'BEGIN { printf "%.0f", n / (b - a) }')
	counts=$(pgq_check pgq_throughput "$n")
	read -r ticks batches apply_s <<<"$(pgq_ticks)"
	tx_rate=$(awk -v n="$(row_field queue_throughput records)" -v t="$(row_field queue_throughput seconds)" \
		'BEGIN { if (n > 0 && t > 0) printf "%.0f", n / t }')
	tx_enq=$(row_json queue_throughput '{enqueue_records_per_s}')
	[ -n "$tx_rate" ] && ratio=$(awk -v a="$tx_rate" -v b="$rate" 'BEGIN { printf "%.2f", a / b }')
	[ -n "$tx_enq" ] && ratio_enq=$(awk -v a="$tx_enq" -v b="$enq" 'BEGIN { printf "%.2f", a / b }')
	local cmp='' eb_rate eb_enq eb_ratio='' eb_ratio_enq=''
	[ -n "$ratio" ] && cmp="; txpipe: queue_throughput ${ratio}× this, enqueue alone ${ratio_enq}×"
	eb_rate=$(row_json enqueue_batch '{records_per_s}')
	eb_enq=$(row_json enqueue_batch '{enqueue_records_per_s}')
	if [ -n "$eb_rate" ]; then
		eb_ratio=$(awk -v a="$eb_rate" -v b="$rate" 'BEGIN { printf "%.2f", a / b }')
		eb_ratio_enq=$(awk -v a="$eb_enq" -v b="$enq" 'BEGIN { printf "%.2f", a / b }')
		cmp="$cmp; enqueue_batch (the same producer) ${eb_ratio}× this, enqueue alone ${eb_ratio_enq}×"
	fi
	log "  run 1/1: ${RUN_TIMES[0]} s, $rate records/s consumed, enqueue alone $enq/s; $ticks ticks, $batches batches$cmp"
	add_row pgq_throughput "PgQ: $QUEUE_CLIENTS clients, 100 insert_event per transaction, one consumer into the cards tables, until consumed (one run)" "$n" median \
		"$rate records/s consumed, enqueue alone $enq records/s; $batches batches, $ticks ticks; the consumer spent $apply_s s writing the batches; all $n written$cmp" \
		"$(printf '{"records_per_s": %s, "enqueue_records_per_s": %s, "ticks": %s, "batches": %s, "apply_s": %s, "txpipe_ratio": %s, "txpipe_enqueue_ratio": %s, "enqueue_batch_ratio": %s, "enqueue_batch_enqueue_ratio": %s, "rows": "%s"}' \
			"$rate" "$enq" "$ticks" "$batches" "$apply_s" "${ratio:-null}" "${ratio_enq:-null}" "${eb_ratio:-null}" "${eb_ratio_enq:-null}" "$counts")"
	pgq_finish
}

row_pgq_latency() {
	local n per t0 t1 counts ticks batches apply_s tps lat p50 p99 max cnt tbl reached tx99 ratio=''
	local b=$QUEUE_LATENCY_BATCH
	n=$(round_down "$((QUEUE_RATE * (QUEUE_SECONDS + QUEUE_WARMUP)))" $((b * QUEUE_CLIENTS)))
	per=$((n / b / QUEUE_CLIENTS))
	tps=$(awk -v r="$QUEUE_RATE" -v b="$b" 'BEGIN { printf "%.1f", r / b }')
	peers_data "$n"
	log "pgq latency: $n records at $QUEUE_RATE records/s from $QUEUE_CLIENTS clients, $b insert_event per transaction, one consumer, pgqd ticker_period $PGQ_TICKER_PERIOD s (one run)"
	settle
	pgq_prepare
	checkpoint
	pgq_consumer_start "$n"
	t0=$(date +%s.%N)
	pgbench_run "$OUT/pgq_latency.log" "$BENCH/sql/pgq_insert.pgbench" "$per" -D batch="$b" -R "$tps"
	pgq_consumer_wait
	t1=$PGQ_DONE
	RUN_TIMES=("$(elapsed "$t0" "$t1")")
	counts=$(pgq_check pgq_latency "$n")
	read -r ticks batches apply_s <<<"$(pgq_ticks)"
	reached=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/pgq_latency.log" | head -n 1)
	reached=$(awk -v t="$reached" -v b="$b" 'BEGIN { printf "%.0f", t * b }')
	tbl=$(sql_value "SELECT queue_data_pfx FROM pgq.queue WHERE queue_name = 'peers'")
	lat=$(sql_value "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
					  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
					  round(max(ms)::numeric, 1) || ' ' || count(*)
		FROM (SELECT extract(epoch FROM pg_xact_commit_timestamp(t.xmin)
									  - pg_xact_commit_timestamp(e.xmin)) * 1000 AS ms
				FROM $tbl e JOIN ONLY cards_pq.transaction t ON t.trans_num = e.ev_data::jsonb->>'trans_num'
			   WHERE pg_xact_commit_timestamp(e.xmin) >= to_timestamp($(warmup_end "$t0"))) s")
	read -r p50 p99 max cnt <<<"$lat"
	tx99=$(row_json queue_latency '{latency_ms}{p99}')
	[ -n "$tx99" ] && ratio=$(awk -v a="$p99" -v b="$tx99" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
	local cmp='' ep99 eratio=''
	[ -n "$ratio" ] && cmp="; p99 ${ratio}× the p99 of queue_latency (txpipe, $tx99 ms)"
	ep99=$(row_json enqueue_paced '{latency_ms}{p99}')
	if [ -n "$ep99" ]; then
		eratio=$(awk -v a="$p99" -v b="$ep99" 'BEGIN { if (b > 0) printf "%.2f", a / b }')
		cmp="$cmp; p99 ${eratio}× the p99 of enqueue_paced (txpipe, the same producer, $ep99 ms)"
	fi
	log "  run 1/1: ${RUN_TIMES[0]} s; latency p50 $p50 ms, p99 $p99 ms, max $max ms over $cnt records; $ticks ticks, $batches batches$cmp"
	add_row pgq_latency "PgQ: $QUEUE_RATE records/s from $QUEUE_CLIENTS clients, $b insert_event per transaction, one consumer (one run)" "$n" median \
		"enqueue rate reached ${reached}/s; enqueue→consumed p50 $p50 ms, p99 $p99 ms, max $max ms ($cnt records after a $QUEUE_WARMUP s warm-up); $batches batches, $ticks ticks (pgqd ticker_period $PGQ_TICKER_PERIOD s); the consumer spent $apply_s of ${RUN_TIMES[0]} s writing the batches$cmp" \
		"$(printf '{"latency_ms": {"p50": %s, "p99": %s, "max": %s, "records": %s}, "ticks": %s, "batches": %s, "apply_s": %s, "p99_ratio_to_txpipe": %s, "p99_ratio_to_enqueue_paced": %s, "rows": "%s"}' \
			"${p50:-null}" "${p99:-null}" "${max:-null}" "${cnt:-0}" "$ticks" "$batches" "$apply_s" "${ratio:-null}" "${eratio:-null}" "$counts")"
	pgq_finish
}
