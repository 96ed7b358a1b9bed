# Hostile input: a record with 100,000 keys is rejected fast; cancel and
# statement_timeout stop COPY, ingest and drain of costly records within a
# second; a 200 MB line and 11 x 100 MB lines leave their neighbours routed,
# each reject a prefix, and the backend's private memory near PostgreSQL's
# own COPY of the same line; one bad NOTIFY payload costs no other, NOTIFY
# ingest is off unless a pipeline turns it on; a writer cannot raise the
# limits; a record whose batch keeps waiting on a lock becomes poison.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use TxpipeTest;

my $node = txpipe_node('hostile');
my $dir = PostgreSQL::Test::Utils::tempdir();
my $copy_opts = q{WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')};

$node->safe_psql('postgres', q{
	CREATE SCHEMA h;
	CREATE TABLE h.event (id text PRIMARY KEY, n integer);
	SELECT txpipe.create_pipeline('h', '{"schema": "h",
		"contract": {"type": "object", "required": ["id"],
					 "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}},
		"idempotency_key": "id", "routes": [{"table": "event", "columns": {"id": "id", "n": "n"}}]}');
	SELECT txpipe.create_pipeline('hq', '{"schema": "h", "mode": "async",
		"contract": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
		"idempotency_key": "id", "routes": [{"table": "event", "columns": {"id": "id"}}]}');
	CREATE TABLE plain (doc text);
	CREATE ROLE w LOGIN IN ROLE txpipe_writer;
	GRANT USAGE ON SCHEMA h TO w;});

# psql on its own connection; returns (ok, stdout, stderr, seconds)
sub timed_psql
{
	my ($sql, %opt) = @_;
	my ($out, $err) = ('', '');
	my @cmd = ($node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
		'-d', $node->connstr('postgres') . ($opt{user} ? " user=$opt{user}" : ''), '-c', $sql);
	my $t0 = time;
	my $ok = IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	chomp $out;
	return ($ok, $out, $err, time - $t0);
}

# ------------------------------------------------------------------
# 1. 100,000 keys, timed by the server around the call
# ------------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE TABLE many AS
	SELECT 'flat' AS kind, '{"id": "many", ' || string_agg(format('"k%s": %s', i, i), ', ') || '}' AS doc
	  FROM generate_series(1, 100000) i
	UNION ALL
	SELECT 'dup', '{"id": "dup", ' || string_agg(format('"k%s": %s', i, i), ', ') || ', "k1": 0}'
	  FROM generate_series(1, 100000) i;
	CREATE FUNCTION timed_validate(doc text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE t0 timestamptz := clock_timestamp(); c text;
	BEGIN
		SELECT error_code INTO c FROM txpipe.validate('h', doc) LIMIT 1;
		RETURN coalesce(c, 'ok') || ' ' || round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
	END $$;
	CREATE FUNCTION timed_ingest(doc text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE t0 timestamptz := clock_timestamp(); c text;
	BEGIN
		SELECT rejected INTO c FROM txpipe.ingest('h', doc);
		RETURN c || ' ' || round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1);
	END $$;});
for my $kind ('flat', 'dup')
{
	my $r = $node->safe_psql('postgres', qq{
		SET txpipe.max_record_size = '16MB';
		SELECT timed_validate(doc) || ' ' || timed_ingest(doc) FROM many WHERE kind = '$kind'});
	my ($code, $ms, $rejected, $ims) = split / /, $r;
	note "100,000 keys ($kind): validate $code in $ms ms, ingest rejected $rejected in $ims ms";
	is($code, 'too_many_keys', "a record with 100,000 keys ($kind) is rejected as too_many_keys");
	# bounds that tell linear from quadratic work (5 * 10^9 key comparisons
	# take many seconds), not a speed target: a busy machine passes them
	cmp_ok($ms, '<', 1000, "validate rejects it in under 1 s ($ms ms)");
	# storing the reject (1.6 MB of payload) is most of ingest's time
	cmp_ok($ims, '<', 2000, "ingest rejects and stores it in under 2 s ($ims ms)");
}
# with the keys limit raised (a superuser may), the whole record is parsed:
# the duplicate check stays linear
{
	my $r = $node->safe_psql('postgres', q{
		SET txpipe.max_record_size = '16MB'; SET txpipe.max_keys = 1000000;
		SELECT string_agg(timed_validate(doc), ' ' ORDER BY kind) FROM many});
	my ($dcode, $dms, $fcode, $fms) = split / /, $r;
	note "100,000 keys under txpipe.max_keys = 1000000: $dcode in $dms ms, $fcode in $fms ms";
	is("$dcode $fcode", 'json_duplicate_key ok', 'a repeated key among 100,000 is found; distinct ones decode');
	cmp_ok($dms, '<', 2000, "the duplicate among 100,000 keys is found in linear time ($dms ms)");
}

# ------------------------------------------------------------------
# 2. cancel and statement_timeout during COPY, ingest and drain
# ------------------------------------------------------------------
# 60 records of 100,000 keys (100 MB), each ~50 ms of parsing when a
# superuser has raised the limits: seconds of work in one statement
my $costly = "$dir/costly.ndjson";
{
	open my $fh, '>', $costly or die "$costly: $!";
	my $body = join(', ', map { qq("k$_": $_) } 1 .. 100000);
	print $fh qq({"id": "c$_", $body}\n) for 1 .. 60;
	close $fh;
}
my $raise = q{SET txpipe.max_record_size = '16MB'; SET txpipe.max_keys = 1000000;};
$node->safe_psql('postgres', 'SELECT txpipe.stop_worker()');
$node->safe_psql('postgres', "$raise COPY txpipe_in.hq FROM '$costly' $copy_opts");

my %stmt = (
	copy   => "COPY txpipe_in.h FROM '$costly' $copy_opts",
	ingest => "SELECT * FROM txpipe.ingest('h', pg_read_file('$costly'))",
	drain  => "SELECT txpipe.drain('hq')");
for my $path ('copy', 'ingest', 'drain')
{
	my ($ok, $out, $err, $secs) = timed_psql("$raise SET statement_timeout = '300ms'; $stmt{$path}");
	note sprintf("statement_timeout 300ms, %s: %.2f s: %s", $path, $secs, $err);
	ok(!$ok && $err =~ /canceling statement due to statement timeout/,
		"statement_timeout cancels $path of costly records");
	cmp_ok($secs, '<', 1.3, sprintf("within a second of the timeout (%.2f s)", $secs));

	my ($out2, $err2) = ('', '');
	my $h = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres') . ' application_name=victim',
		  '-c', "$raise $stmt{$path}" ],
		'<', \undef, '>', \$out2, '2>', \$err2);
	$node->poll_query_until('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim' AND state = 'active'}, '1');
	sleep 0.3;
	my $t0 = time;
	$node->safe_psql('postgres',
		q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'});
	$h->finish;
	my $secs2 = time - $t0;
	note sprintf("pg_cancel_backend, %s: %.2f s: %s", $path, $secs2, $err2);
	like($err2, qr/canceling statement due to user request/, "pg_cancel_backend cancels $path");
	cmp_ok($secs2, '<', 1, sprintf("within a second (%.2f s)", $secs2));
}
is($node->safe_psql('postgres', q{SELECT count(*) FROM h.event WHERE id LIKE 'c%'}), '0',
	'nothing of the cancelled statements is routed');
$node->safe_psql('postgres', q{TRUNCATE txpipe.inbox; TRUNCATE txpipe.rejects});
unlink $costly;

# ------------------------------------------------------------------
# 3. a 200 MB line, 11 x 100 MB lines: neighbours, prefixes, memory
# ------------------------------------------------------------------
my $big200 = "$dir/big200.ndjson";
my $big100 = "$dir/big100.ndjson";
my $big11 = "$dir/big11.ndjson";
{
	open my $fh, '>', $big200 or die;
	print $fh qq({"id": "before", "n": 1}\n{"id": "huge", "pad": "), 'x' x 200_000_000, qq("}\n{"id": "after", "n": 2}\n);
	close $fh;
	open $fh, '>', $big100 or die;
	print $fh qq({"id": "one", "pad": "), 'x' x 100_000_000, qq("}\n);
	close $fh;
	open $fh, '>', $big11 or die;
	my $pad = 'y' x 100_000_000;
	print $fh qq({"id": "g$_", "n": $_}\n{"id": "h$_", "pad": "$pad"}\n) for 1 .. 11;
	print $fh qq({"id": "last", "n": 0}\n);
	close $fh;
}

# the backend's private memory at its peak while running sql, in MB:
# the peak resident set less the shared memory it touched
sub private_peak
{
	my ($sql) = @_;
	my ($ok, $out, $err) = timed_psql(qq{$sql;
		SELECT string_agg(l, ' ') FROM pg_catalog.regexp_split_to_table(pg_read_file('/proc/self/status'), E'\\n') l
		 WHERE l ~ '^(VmHWM|RssShmem)'});
	die "$sql: $err" unless $ok;
	my ($hwm) = $out =~ /VmHWM:\s+(\d+) kB/;
	my ($shm) = $out =~ /RssShmem:\s+(\d+) kB/;
	return ($hwm - $shm) / 1024;
}

my $floor200 = private_peak("COPY plain(doc) FROM '$big200' $copy_opts");
my $floor100 = private_peak("TRUNCATE plain; COPY plain(doc) FROM '$big100' $copy_opts");
$node->safe_psql('postgres', 'TRUNCATE plain');
my $copy200 = private_peak("COPY txpipe_in.h FROM '$big200' $copy_opts");
my $copy11 = private_peak("COPY txpipe_in.h FROM '$big11' $copy_opts");
my $routed = $node->safe_psql('postgres', q{SELECT count(*) FROM h.event WHERE id IN ('before', 'after', 'last') OR id ~ '^g[0-9]+$'});
is($routed, '14', 'the neighbours of a 200 MB line and of 11 x 100 MB lines are routed');
$node->safe_psql('postgres', q{DELETE FROM h.event});
my $ingest200 = private_peak("SELECT * FROM txpipe.ingest('h', pg_read_file('$big200'))");
is($node->safe_psql('postgres', q{SELECT count(*) FROM h.event WHERE id IN ('before', 'after')}), '2',
	'ingest routes the neighbours of a 200 MB line');
my ($ok, $out, $err) = timed_psql("SELECT txpipe.enqueue('hq', pg_read_file('$big200'))");
is($out, '0', 'enqueue(text) of a 200 MB record queues nothing');

note sprintf("private memory peak, MB: plain COPY of the 200 MB line %.0f (the floor), of one 100 MB line %.0f;"
	. " txpipe COPY 200 MB line %.0f, 11 x 100 MB lines %.0f; ingest of the 200 MB line %.0f",
	$floor200, $floor100, $copy200, $copy11, $ingest200);
# PostgreSQL's COPY alone holds a line in its line and attribute buffers and
# as the row's value, ~4 times the line: above 256 MB for these lines.
# txpipe adds at most a batch's bytes (TXPIPE_BATCH_BYTES, 64 MB) to it.
cmp_ok($copy200, '<', $floor200 + 64, 'COPY of a 200 MB line costs at most the floor + 64 MB');
cmp_ok($copy11, '<', $floor100 + 64, '11 x 100 MB lines cost no more than one 100 MB line\'s floor + 64 MB');
cmp_ok($ingest200, '<', 256, 'ingest of a 200 MB line stays under 256 MB (its argument is 200 MB)');

my $rej = $node->safe_psql('postgres', q{
	SELECT sum(count) || ' ' || max(octet_length(payload)) || ' ' || sum(count) FILTER (WHERE message ~ 'sha256 of the record: [0-9a-f]{64}$')
	  FROM txpipe.rejects WHERE error_code = 'too_large'});
# (the 200 MB line's rejects through COPY and ingest are identical: one row, counted twice)
is($rej, '14 1000 14', 'each huge line is a too_large reject keeping 1,000 bytes and a SHA-256 (COPY, ingest, enqueue)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM txpipe.inbox}), '0', 'the inbox holds none of it');
unlink $big100, $big11;

# a drain takes at most 64 MB of records per batch (and one record): 100
# records of 900 kB are routed in two batches or more, none lost
{
	my $mid = "$dir/mid.ndjson";
	open my $fh, '>', $mid or die;
	my $pad = 'z' x 900_000;
	print $fh qq({"id": "m$_", "pad": "$pad"}\n) for 1 .. 100;
	close $fh;
	$node->safe_psql('postgres', "COPY txpipe_in.hq FROM '$mid' $copy_opts");
	unlink $mid;
	my $drained = $node->safe_psql('postgres', q{SELECT txpipe.drain('hq')});
	my ($routed, $batches) = split / /, $node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM h.event WHERE id ~ '^m[0-9]+$')
		  || ' ' || (SELECT count(*) FROM txpipe.batches WHERE pipeline = 'hq' AND source = 'copy' AND received > 0)});
	is("$drained $routed", '100 100', 'a drain of 90 MB of queued records routes them all');
	cmp_ok($batches, '>=', 2, "in batches of at most 64 MB ($batches batches)");
}

# ------------------------------------------------------------------
# 4. NOTIFY txpipe_ingest
# ------------------------------------------------------------------
$node->safe_psql('postgres', q{TRUNCATE txpipe.rejects; SELECT txpipe.start_worker()});
$node->poll_query_until('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'txpipe listener' AND query ~ 'LISTEN'}, '1');
# off by default: nothing of this is taken, nor stored as a reject
$node->safe_psql('postgres', q{NOTIFY txpipe_ingest, '{"pipeline": "h", "records": [{"id": "n_off", "n": 1}]}'});
$node->safe_psql('postgres', q{UPDATE txpipe.pipelines SET spec = spec || '{"notify": true}' WHERE name = 'h'});
$node->safe_psql('postgres', q{BEGIN;
	NOTIFY txpipe_ingest, '{"pipeline": "h", "records": [{"id": "n1", "n": 1}]}';
	NOTIFY txpipe_ingest, '{"pipeline": "h", "records": [{"id": "n_nul", "n": 1, "x": "\u0000"}]}';
	NOTIFY txpipe_ingest, '{"pipeline": "h", "records": [{"id": "n_big", "n": 1e1000000}]}';
	NOTIFY txpipe_ingest, '{"pipeline": "h", "records": [{"id": "n2", "n": 2}, {"id": "n3", "n": 3}]}';
	COMMIT;});
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM h.event WHERE id IN ('n1', 'n2', 'n3')}, '3'),
	'the good NOTIFY payloads of a round with bad ones are routed');
is($node->safe_psql('postgres', q{SELECT count(*) FROM txpipe.rejects WHERE source = 'notify'}), '2',
	'each bad payload is one reject');
is($node->safe_psql('postgres', q{SELECT count(*) FROM h.event WHERE id = 'n_off'}), '0',
	'NOTIFY ingest is off for a pipeline until its spec says "notify": true');

# the worker: an async COPY of the 200 MB line queues its neighbours only;
# the worker drains them without ever holding the line
$node->safe_psql('postgres', "COPY txpipe_in.hq FROM '$big200' $copy_opts");
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM txpipe.queue WHERE pipeline = 'hq'}, '0'),
	'the worker drains the neighbours of a 200 MB line');
{
	my $pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'txpipe worker'});
	open my $fh, '<', "/proc/$pid/status" or die "/proc/$pid/status: $!";
	my $status = do { local $/; <$fh> };
	close $fh;
	my ($hwm) = $status =~ /VmHWM:\s+(\d+) kB/;
	my ($shm) = $status =~ /RssShmem:\s+(\d+) kB/;
	my $worker = ($hwm - $shm) / 1024;
	note sprintf("the worker's private memory peak: %.0f MB", $worker);
	cmp_ok($worker, '<', 256, 'the worker stays under 256 MB of private memory');
}
unlink $big200;

# ------------------------------------------------------------------
# 5. a writer cannot raise the limits
# ------------------------------------------------------------------
for my $set (q{SET txpipe.max_record_size = '1GB'}, q{SET txpipe.max_keys = 100000000},
	q{SET txpipe.max_depth = 1000}, q{SET txpipe.batch_size = 100000}, q{SET txpipe.key_cache_size = 0})
{
	my ($ok, $out, $err) = timed_psql($set, user => 'w');
	ok(!$ok && $err =~ /permission denied to set parameter/, "a writer cannot: $set");
}

# ------------------------------------------------------------------
# 6. a record whose batch keeps waiting on a lock becomes poison: another
# transaction, left open, inserted the same key
# ------------------------------------------------------------------
my ($lout, $lerr) = ('', '');
my $locker = IPC::Run::start(
	[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres') . ' application_name=locker',
	  '-c', q{BEGIN; INSERT INTO h.event VALUES ('locked', 0); SELECT pg_sleep(60); COMMIT;} ],
	'<', \undef, '>', \$lout, '2>', \$lerr);
$node->poll_query_until('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'locker' AND wait_event = 'PgSleep'}, '1');
my $t0 = time;
$node->safe_psql('postgres', q{SELECT txpipe.enqueue('hq', '{"id": "locked"}'::text)});
ok($node->poll_query_until('postgres',
	q{SELECT count(*) FROM txpipe.rejects WHERE error_code = 'poison' AND payload ~ 'locked' AND message ~ 'lock timeout'}, '1'),
	'a record whose routing keeps exceeding txpipe.worker_lock_timeout becomes poison');
note sprintf("poison after %.1f s", time - $t0);
$node->safe_psql('postgres', q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'locker'});
$locker->kill_kill;
$node->safe_psql('postgres', q{SELECT txpipe.enqueue('hq', '{"id": "free"}'::text)});
ok($node->poll_query_until('postgres', q{SELECT count(*) FROM h.event WHERE id = 'free'}, '1'),
	'the records behind it are routed once the lock is gone');

$node->stop;
done_testing();
