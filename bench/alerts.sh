# shellcheck shell=bash
# The alert latency row of bench/run (sourced by it, after queue.sh): from
# the commit of the enqueue transaction that carried a record to the
# NOTIFY txpipe_alerts of the alert it raised reaching a listening client.
#
# The records are a paced stream through txpipe.enqueue into a cards
# pipeline, its template's rules on; every ALERT_EVERY-th record is made a
# fraud on a card of its own, so each of them raises exactly one
# fraud_flag alert, whatever the rest of the stream raises.  bench/listen
# LISTENs on txpipe_alerts and writes each notification with the time it
# read it; the enqueue's commit time is the inbox row's
# (pg_xact_commit_timestamp of its xmin, track_commit_timestamp on), read
# after the run, on the same machine's clock.

ALERT_RATE=${ALERT_RATE:-${QUEUE_RATE:-2000}}
ALERT_SECONDS=${ALERT_SECONDS:-${QUEUE_SECONDS:-30}}
ALERT_EVERY=${ALERT_EVERY:-100}
ALERT_BATCH=${ALERT_BATCH:-${QUEUE_LATENCY_BATCH:-5}}
ALERT_WORKERS=${ALERT_WORKERS:-${QUEUE_LATENCY_WORKERS:-1}}
# card numbers of the injected frauds: no generated card has one
ALERT_CARD_BASE=4999000000000000

# alert_file N OUT: N generated records, clean (no bad lines, no re-sends),
# every ALERT_EVERY-th a fraud on a fresh card; prints how many were made so
alert_file() {
	local n=$1 out=$2
	"$CLIENT" gen cards --rows "$n" --seed 12 --bad 0 --dups 0 |
		perl -ne '
			BEGIN { ($every, $base) = splice @ARGV, 0, 2; $i = $c = 0 }
			if (++$i % $every == 0) {
				$c++;
				s/"cc_num":\d+/sprintf(q{"cc_num":%d}, $base + $c)/e or die "no cc_num in line $i\n";
				s/"is_fraud":0/"is_fraud":1/;
			}
			print;
			END { print STDERR "$c\n" }
		' "$ALERT_EVERY" "$ALERT_CARD_BASE" >"$out" 2>"$out.injected"
	cat "$out.injected"
}

# row: alert latency at ALERT_RATE records/s
row_alert_latency() {
	local p=cards_alerts file=$WORK/alerts.ndjson n injected lpid t0 t1 stop=$WORK/alerts.stop
	local arrivals=$WORK/alert_arrivals.tsv
	n=$((ALERT_RATE * (ALERT_SECONDS + QUEUE_WARMUP)))
	injected=$(alert_file "$n" "$file")
	log "alert latency: $n records at $ALERT_RATE records/s from $QUEUE_CLIENTS clients, $ALERT_BATCH per enqueue, $injected made frauds on fresh cards, the first $QUEUE_WARMUP s not timed (one run)"
	settle
	queue_prepare "$p" sync "$ALERT_WORKERS"
	checkpoint
	"$BENCH/listen" txpipe_alerts >"$arrivals" 2>"$OUT/alert_listen.log" &
	lpid=$!
	for _ in $(seq 100); do
		grep -q '^ready' "$OUT/alert_listen.log" 2>/dev/null && break
		sleep 0.05
	done
	grep -q '^ready' "$OUT/alert_listen.log" || die "bench/listen did not start (log: $OUT/alert_listen.log)"
	rm -f "$stop" "$WORK/alert_mem"
	sample_workers "$stop" "$WORK/alert_mem" &
	local sampler=$!
	t0=$(date +%s.%N)
	"$CLIENT" stream "$p" "$file" --clients "$QUEUE_CLIENTS" --rate "$ALERT_RATE" --batch "$ALERT_BATCH" \
		>"$OUT/alert_latency.log" 2>&1 ||
		{ touch "$stop"; kill "$lpid"; die "txpipe stream failed (log: $OUT/alert_latency.log)"; }
	t1=$(queue_wait_consumed "$p" "$(stream_queued "$OUT/alert_latency.log")")
	touch "$stop"
	wait "$sampler" 2>/dev/null || true
	# the last alerts are on their way: wait until as many have arrived as
	# were raised, 10 s at most
	local raised
	raised=$(sql_value "SELECT count(*) FROM txpipe.alerts WHERE pipeline = '$p'")
	for _ in $(seq 200); do
		[ "$(grep -c "\"pipeline\": *\"$p\"" "$arrivals" || true)" -ge "$raised" ] && break
		sleep 0.05
	done
	kill -TERM "$lpid" 2>/dev/null || true
	wait "$lpid" 2>/dev/null || true
	RUN_TIMES=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
	chown "$PG_OSUSER:" "$arrivals"
	local res
	res=$(sql -q -At -F ' ' <<-EOF
		SET client_min_messages = warning;
		CREATE SCHEMA IF NOT EXISTS bench;
		DROP TABLE IF EXISTS bench.alert_arrivals;
		CREATE TABLE bench.alert_arrivals (arrived float8 NOT NULL, payload jsonb NOT NULL);
		\\copy bench.alert_arrivals FROM '$arrivals' WITH (FORMAT csv, DELIMITER e'\\t', QUOTE e'\\x01')
		WITH a AS (SELECT arrived, (payload->>'id')::bigint AS alert_id FROM bench.alert_arrivals
					WHERE payload->>'pipeline' = '$p'),
			 enq AS (SELECT substring(i.doc FROM '"trans_num"\\s*:\\s*"([^"]*)"') AS trans_num,
							min(pg_xact_commit_timestamp(i.xmin)) AS committed
					   FROM txpipe.inbox i WHERE i.pipeline = '$p' GROUP BY 1),
			 l AS (SELECT al.rule, (a.arrived - extract(epoch FROM e.committed)) * 1000 AS ms,
						  extract(epoch FROM pg_xact_commit_timestamp(al.xmin) - e.committed) * 1000 AS route_ms,
						  (a.arrived - extract(epoch FROM pg_xact_commit_timestamp(al.xmin))) * 1000 AS deliver_ms,
						  e.committed >= to_timestamp($(warmup_end "$t0")) AS timed
					 FROM a JOIN txpipe.alerts al USING (alert_id)
					 JOIN enq e ON e.trans_num = al.record_key),
			 s AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FILTER (WHERE timed) AS p50,
						  percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) FILTER (WHERE timed) AS p99,
						  max(ms) FILTER (WHERE timed) AS mx, count(*) FILTER (WHERE timed) AS timed_n, count(*) AS n,
						  percentile_cont(0.99) WITHIN GROUP (ORDER BY route_ms) FILTER (WHERE timed) AS route_p99,
						  percentile_cont(0.99) WITHIN GROUP (ORDER BY deliver_ms) FILTER (WHERE timed) AS deliver_p99,
						  percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS all_p99
					 FROM l),
			 r AS (SELECT string_agg(rule || ':' || n || ':' || round(p50::numeric, 1) || ':' || round(p99::numeric, 1), ',' ORDER BY rule) AS by_rule
					 FROM (SELECT rule, count(*) AS n,
								  percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
								  percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99
							 FROM l WHERE timed GROUP BY rule) x)
		SELECT round(p50::numeric, 1), round(p99::numeric, 1), round(mx::numeric, 1), n, timed_n, round(all_p99::numeric, 1),
			   round(route_p99::numeric, 1), round(deliver_p99::numeric, 1),
			   (SELECT count(*) FROM a), (SELECT count(DISTINCT alert_id) FROM a),
			   (SELECT count(*) FROM txpipe.alerts al WHERE al.pipeline = '$p'),
			   (SELECT count(*) FROM txpipe.alerts al WHERE al.pipeline = '$p'
				   AND al.alert_id NOT IN (SELECT alert_id FROM a)),
			   (SELECT count(*) FROM txpipe.alerts al WHERE al.pipeline = '$p' AND al.rule = 'fraud_flag'
				   AND al.key ~ '^[0-9]{16}\$' AND al.key::bigint > $ALERT_CARD_BASE
				   AND al.key::bigint <= $ALERT_CARD_BASE + $injected),
			   (SELECT by_rule FROM r)
		  FROM s;
	EOF
	)
	local p50 p99 max cnt timed all99 route99 deliver99 got distinct alerts missing made by_rule mem ok
	read -r p50 p99 max cnt timed all99 route99 deliver99 got distinct alerts missing made by_rule <<<"$res"
	mem=$(cat "$WORK/alert_mem" 2>/dev/null || echo '')
	ok=yes
	[ "$got" = "$alerts" ] && [ "$distinct" = "$alerts" ] && [ "$missing" = 0 ] && [ "$made" = "$injected" ] &&
		[ "$cnt" = "$alerts" ] || ok=NO
	log "  run 1/1: ${RUN_TIMES[0]} s; alert latency p50 $p50 ms, p99 $p99 ms, max $max ms over the $timed alerts after the warm-up (with it p99 $all99 ms); $got notifications, $distinct distinct, $alerts raised, $missing missing; $made of $injected made frauds alerted; per rule (alerts:p50:p99 ms) $by_rule"
	add_row alert_latency "alerts: enqueue commit → NOTIFY txpipe_alerts at a listener, $ALERT_RATE records/s, $ALERT_BATCH per enqueue (one run)" "$n" median \
		"enqueue rate reached $(sed -n 's/.*(\([0-9]*\) records\/s).*/\1/p' "$OUT/alert_latency.log")/s; $timed alerts after a $QUEUE_WARMUP s warm-up: p50 $p50 ms, p99 $p99 ms, max $max ms (with the warm-up's $((cnt - timed)) p99 $all99 ms; p99 enqueue commit → routing commit $route99 ms, routing commit → arrival $deliver99 ms); each alert arrived once: $ok ($got notifications, $distinct distinct, $alerts raised, $missing missing; $made of $injected made frauds); worker private RSS peak $(awk -v k="${mem:-0}" 'BEGIN { printf "%.0f", k / 1024 }') MB" \
		"$(printf '{"latency_ms": {"p50": %s, "p99": %s, "max": %s, "alerts": %s, "route_p99": %s, "deliver_p99": %s}, "latency_with_warmup_ms": {"p99": %s, "alerts": %s}, "warmup_s": %s, "notifications": %s, "distinct": %s, "raised": %s, "missing": %s, "made_frauds": %s, "made_frauds_alerted": %s, "each_once": %s, "counts": %s}' \
			"${p50:-null}" "${p99:-null}" "${max:-null}" "${timed:-0}" "${route99:-null}" "${deliver99:-null}" "${all99:-null}" "${cnt:-0}" "$QUEUE_WARMUP" \
			"${got:-0}" "${distinct:-0}" "${alerts:-0}" "${missing:-null}" "$injected" "${made:-0}" \
			"$([ "$ok" = yes ] && echo true || echo false)" "$(txpipe_counts_json "$p")")"
	cp "$arrivals" "$OUT/alert_arrivals.tsv"
	queue_finish
	sql -q -c "SET client_min_messages = warning" -c "DROP SCHEMA $p CASCADE" \
		-c "SELECT txpipe.drop_pipeline('$p')" -c "DROP TABLE bench.alert_arrivals" >/dev/null
	rm -f "$file" "$file.injected" "$arrivals"
}
