# The queue path end to end with the background workers: records enqueued
# from several connections are routed exactly once, also when the worker is
# killed with SIGKILL or the server stopped with -m immediate in the middle
# of a batch; SIGHUP, SIGTERM, stop_worker/start_worker, NOTIFY payloads,
# poison records, DROP DATABASE and DROP EXTENSION while workers run, and
# the launcher at server start.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('worker');
# as in a default server (the test harness turns it off)
$node->append_conf('postgresql.conf', 'restart_after_crash = on');
$node->reload;
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");
my $dir = PostgreSQL::Test::Utils::tempdir();

sub workers
{
	my ($db) = @_;
	$db ||= 'postgres';
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(application_name || '=' || pid, ' ' ORDER BY application_name), '')
		   FROM pg_stat_activity WHERE backend_type = 'txpipe worker' AND datname = '$db'");
}

sub wait_for
{
	my ($sql, $expected, $what) = @_;
	ok($node->poll_query_until('postgres', $sql, $expected), $what);
}

sub totals
{
	return $node->safe_psql('postgres',
		"SELECT count(*) || '/' || coalesce(sum(amt), 0) || '/' || count(*) FILTER (WHERE is_fraud)
		   FROM cards.transaction");
}

sub expected_totals
{
	my (@s) = @_;
	my ($n, $amt, $fraud) = (0, 0, 0);
	for my $s (@s)
	{
		$n += $s->{valid};
		$amt += $s->{sum_amt};
		$fraud += $s->{fraud};
	}
	return sprintf('%d/%.2f/%d', $n, $amt, $fraud);
}

my $drained = q{SELECT backlog = 0 FROM txpipe.stats WHERE pipeline = 'cards'};

# 1. start_worker() starts a worker without a restart; it shows in
# pg_stat_activity with its LISTEN connection.
my $pid = $node->safe_psql('postgres', 'SELECT txpipe.start_worker()');
ok($pid > 0, 'start_worker returns a process id');
like(workers(), qr/^txpipe worker 0=\d+$/, 'one worker, named txpipe worker 0');
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'txpipe listener'
			 AND query ~ 'LISTEN txpipe_wakeup'}, '1', 'the worker LISTENs through its own connection');

# 2. Records enqueued from four connections, with bad and re-sent ones, are
# routed with the generator's totals.
my $s1 = txpipe_gen('cards', "$dir/one.ndjson", '--rows', 20000, '--seed', 21,
	'--bad', '0.02', '--dups', '0.02');
ok(txpipe_stream($node, 'cards', "$dir/one.ndjson", '--clients', 4, '--batch', 20),
	'stream of the first file through the queue');
wait_for($drained, 't', 'the worker drains the queue');
is(totals(), expected_totals($s1), 'count, sum(amt) and fraud equal the generator\'s');
my $st = txpipe_stats($node, 'cards');
is($st->{accepted},   $s1->{valid}, 'stats: accepted');
is($st->{rejected},   $s1->{bad},   'stats: rejected (malformed lines queued as text, and lines that are not UTF-8)');
is($st->{duplicates}, $s1->{dups},  'stats: duplicates');

# 3. The worker is killed with SIGKILL in the middle of a batch: the server
# restarts, the worker comes back, every record is routed exactly once.
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET txpipe.batch_size = 100;
	SELECT pg_reload_conf();
	SELECT txpipe.stop_worker();});
my $s2 = txpipe_gen('cards', "$dir/two.ndjson", '--rows', 15000, '--seed', 22,
	'--bad', '0', '--dups', '0');
ok(txpipe_stream($node, 'cards', "$dir/two.ndjson", '--batch', 500), 'second file queued while no worker runs');
is($node->safe_psql('postgres', q{SELECT backlog FROM txpipe.stats WHERE pipeline = 'cards'}),
	$s2->{valid}, 'all of it waits in the inbox');

sub kill_mid_batch
{
	my ($how) = @_;
	my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM cards.transaction');
	$node->safe_psql('postgres', 'SELECT txpipe.start_worker()');
	my $victim = '';
	for (my $i = 0; $i < 600; $i++)
	{
		$victim = $node->safe_psql('postgres', q{
			SELECT pid FROM pg_stat_activity
			 WHERE backend_type = 'txpipe worker' AND query LIKE 'routing%'
			   AND (SELECT count(*) FROM cards.transaction) > } . $before);
		last if $victim ne '';
		sleep(0.02);
	}
	ok($victim ne '', "$how: caught the worker routing, after some batches committed");
	my $mid = $node->safe_psql('postgres', q{SELECT backlog FROM txpipe.stats WHERE pipeline = 'cards'});
	note "$how: backlog at the kill: $mid";
	if ($how eq 'SIGKILL')
	{
		kill 'KILL', $victim;
	}
	else
	{
		$node->stop('immediate');
		$node->start;
	}
	return;
}

kill_mid_batch('SIGKILL');
wait_for($drained, 't', 'after SIGKILL and the restart, the queue drains');
is(totals(), expected_totals($s1, $s2), 'after SIGKILL: every record routed exactly once');

# 4. The same with an immediate shutdown: the launcher starts the worker
# with the server.
$node->safe_psql('postgres', 'SELECT txpipe.stop_worker()');
my $s3 = txpipe_gen('cards', "$dir/three.ndjson", '--rows', 15000, '--seed', 23,
	'--bad', '0', '--dups', '0');
ok(txpipe_stream($node, 'cards', "$dir/three.ndjson", '--batch', 500), 'third file queued');
kill_mid_batch('immediate stop');
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker'}, '1',
	'after the restart the launcher has started the worker');
wait_for($drained, 't', 'after an immediate stop and start, the queue drains');
is(totals(), expected_totals($s1, $s2, $s3), 'after -m immediate: every record routed exactly once');
$st = txpipe_stats($node, 'cards');
is($st->{accepted}, $s1->{valid} + $s2->{valid} + $s3->{valid}, 'stats: accepted counts each record once');
is($st->{duplicates}, $s1->{dups}, 'stats: no duplicates from the repeated batches');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET txpipe.batch_size; SELECT pg_reload_conf();});

# 5. SIGHUP: a change of txpipe.workers starts and stops workers live.
$node->safe_psql('postgres', q{ALTER SYSTEM SET txpipe.workers = 3; SELECT pg_reload_conf();});
wait_for(q{SELECT string_agg(application_name, ',' ORDER BY application_name) FROM pg_stat_activity
			WHERE backend_type = 'txpipe worker'}, 'txpipe worker 0,txpipe worker 1,txpipe worker 2',
	'SIGHUP with txpipe.workers = 3 starts workers 1 and 2');
my $s4 = txpipe_gen('cards', "$dir/four.ndjson", '--rows', 3000, '--seed', 24, '--bad', '0', '--dups', '0');
ok(txpipe_stream($node, 'cards', "$dir/four.ndjson", '--clients', 3), 'fourth file streamed to three workers');
wait_for($drained, 't', 'three workers drain the queue');
is(totals(), expected_totals($s1, $s2, $s3, $s4), 'three workers route every record once');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET txpipe.workers; SELECT pg_reload_conf();});
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker'}, '1',
	'SIGHUP with txpipe.workers back to 1 stops workers 1 and 2');

# 6. pg_terminate_backend (SIGTERM): the worker exits cleanly (no crash
# restart of the server: the checkpointer lives on) and is started again.
my $checkpointer = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'};
my $ckpt = $node->safe_psql('postgres', $checkpointer);
$pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'txpipe worker'});
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
wait_for(qq{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker' AND pid <> $pid}, '1',
	'after pg_terminate_backend the worker is started again');
is($node->safe_psql('postgres', $checkpointer), $ckpt, 'SIGTERM stopped the worker cleanly: no crash restart');

# 7. stop_worker() stops it for good, start_worker() brings it back.
is($node->safe_psql('postgres', 'SELECT txpipe.stop_worker()'), '1', 'stop_worker signals one worker');
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker'}, '0',
	'the worker stops');
is($node->safe_psql('postgres', $checkpointer), $ckpt, 'and exits cleanly');
sleep(6);
is(workers(), '', 'and stays stopped');
ok($node->safe_psql('postgres', 'SELECT txpipe.start_worker()') > 0, 'start_worker starts it again');

# 8. NOTIFY txpipe_ingest payloads are routed; a bad payload becomes a reject.
# (Notifications sent before the worker LISTENs are lost, as documented: wait
# for the new worker's LISTEN connection first.)
wait_for(q{SELECT count(*) FROM pg_stat_activity l, pg_stat_activity w
			WHERE l.application_name = 'txpipe listener' AND l.query ~ 'LISTEN'
			  AND w.backend_type = 'txpipe worker' AND l.backend_start > w.backend_start}, '1',
	'the restarted worker LISTENs');
# NOTIFY ingest is off unless the pipeline's spec turns it on
$node->safe_psql('postgres', q{UPDATE txpipe.pipelines SET spec = spec || '{"notify": true}' WHERE name = 'cards'});
$node->safe_psql('postgres', q{
	CREATE TABLE one AS SELECT jsonb_set(doc::jsonb, '{trans_num}', '"00000000000000000000000000000abc"') AS doc
	  FROM (SELECT pg_read_file('} . "$dir/four.ndjson" . q{') AS f) r,
		   LATERAL (SELECT split_part(r.f, E'\n', 1) AS doc) d;
	SELECT pg_notify('txpipe_ingest', jsonb_build_object('pipeline', 'cards', 'records', jsonb_build_array(doc))::text) FROM one;
	NOTIFY txpipe_ingest, 'not json';});
wait_for(q{SELECT count(*) FROM cards.transaction WHERE trans_num = '00000000000000000000000000000abc'}, '1',
	'a record sent by NOTIFY txpipe_ingest is routed');
wait_for(q{SELECT count(*) FROM txpipe.rejects WHERE source = 'notify' AND error_code = 'json_syntax'}, '1',
	'a NOTIFY payload that is not JSON becomes a reject');

# 9. Poison: a record whose routing fails with an error that is not about a
# refused row goes to txpipe.rejects after txpipe.worker_max_attempts
# tries; the records around it are routed.
$node->safe_psql('postgres', q{
	CREATE FUNCTION cards.explode() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.amt = 777.77 THEN
			RAISE EXCEPTION 'cannot route this one' USING ERRCODE = 'XX000';
		END IF;
		RETURN NEW;
	END $$;
	CREATE TRIGGER explode BEFORE INSERT ON cards.transaction FOR EACH ROW EXECUTE FUNCTION cards.explode();
	CREATE TABLE five (n int, doc jsonb);
	INSERT INTO five
	SELECT n, jsonb_set(jsonb_set(one.doc, '{trans_num}', to_jsonb(md5('poison' || n))),
						'{amt}', CASE WHEN n = 5 THEN '777.77' ELSE to_jsonb(n) END)
	  FROM one, generate_series(1, 10) n;
	SELECT txpipe.enqueue('cards', array_agg(doc ORDER BY n)) FROM five;});
wait_for(q{SELECT count(*) FROM txpipe.rejects WHERE error_code = 'poison'}, '1',
	'the failing record becomes a poison reject');
wait_for(q{SELECT count(*) FROM cards.transaction WHERE trans_num IN (SELECT md5('poison' || n) FROM generate_series(1, 10) n)},
	'9', 'the other nine records are routed');
like($node->safe_psql('postgres', q{SELECT message FROM txpipe.rejects WHERE error_code = 'poison'}),
	qr/routing failed 3 times: cannot route this one \(SQLSTATE XX000\)/, 'the poison reject says why');
$node->safe_psql('postgres', 'DROP TRIGGER explode ON cards.transaction');

# 10. DROP DATABASE while its worker runs: the worker steps aside.
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('other', 'CREATE EXTENSION txpipe; SELECT txpipe.start_worker()');
like(workers('other'), qr/txpipe worker 0=\d+/, 'a worker runs in the other database');
my ($rc, $out, $err) = $node->psql('postgres', 'DROP DATABASE other');
is($rc, 0, 'DROP DATABASE succeeds while its worker runs') or diag $err;

# 11. DROP EXTENSION while the worker runs: the worker leaves.
$node->safe_psql('postgres', 'CREATE DATABASE third');
$node->safe_psql('third', 'CREATE EXTENSION txpipe; SELECT txpipe.start_worker()');
($rc, $out, $err) = $node->psql('third', 'DROP EXTENSION txpipe CASCADE');
is($rc, 0, 'DROP EXTENSION succeeds while the worker runs') or diag $err;
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker' AND datname = 'third'},
	'0', 'the worker leaves the database without the extension');
$node->safe_psql('postgres', 'DROP DATABASE third');

# 12. A normal restart: the launcher starts the worker by itself.
$node->restart;
wait_for(q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker' AND datname = 'postgres'},
	'1', 'with shared_preload_libraries the worker starts with the server');
ok(txpipe_stream($node, 'cards', "$dir/four.ndjson"), 'a file already routed, streamed again');
wait_for($drained, 't', 'the worker drains it');
is(txpipe_stats($node, 'cards')->{duplicates}, $s1->{dups} + $s4->{valid}, 're-sent records are duplicates');

$node->stop;
done_testing();
