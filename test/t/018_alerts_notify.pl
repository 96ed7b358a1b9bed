# Alerts through NOTIFY txpipe_alerts: a session that LISTENs receives each
# committed alert once, as JSON naming its row of txpipe.alerts, with the
# card number masked, whichever path routed the record (COPY, the queue's
# worker, NOTIFY txpipe_ingest); a rolled-back load notifies nothing, and
# loading a file again raises and notifies nothing new.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('alerts');
my $dir  = PostgreSQL::Test::Utils::tempdir();
$node->safe_psql('postgres', q{
	SELECT txpipe.install_template('cards');
	SELECT txpipe.start_worker();});

# the listener: a psql reading commands from a pipe; it prints the
# notifications it has received each time it runs a command
my ($in, $out, $err) = ('', '', '');
my $listener;
{
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	$listener = IPC::Run::start(
		[ 'psql', '-X', '-At', '-d', 'postgres' ],
		'<', \$in, '>', \$out, '2>', \$err);
}
$in .= "LISTEN txpipe_alerts;\n";
my $ping = 0;

# the payloads received so far
sub received
{
	$ping++;
	$in .= "SELECT 'ping $ping';\n";
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	$listener->pump while $out !~ /^ping $ping$/m && time < $deadline;
	my @payloads = $out =~ /^Asynchronous notification "txpipe_alerts" with payload "(.*)" received from server process with PID \d+\.$/mg;
	return @payloads;
}

# waits until the listener has as many payloads as txpipe.alerts has rows
sub wait_for_all
{
	my $alerts;
	my @p;
	for (1 .. 100)
	{
		$alerts = $node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.alerts');
		@p = received();
		last if scalar(@p) >= $alerts;
		sleep 0.1;
	}
	return @p;
}

# every payload is JSON of a row of txpipe.alerts, each row once
sub check_payloads
{
	my ($what, @payloads) = @_;
	my %ids;
	my $bad = 0;
	my $full = 0;
	for my $p (@payloads)
	{
		my $j = eval { JSON::PP->new->decode($p) };
		if (!$j || !defined $j->{id} || !$j->{pipeline} || !$j->{rule} || !defined $j->{key}
			|| !exists $j->{record} || !exists $j->{event_time} || ref($j->{details}) ne 'HASH')
		{
			$bad++;
			diag "not an alert payload: $p";
			next;
		}
		$ids{ $j->{id} }++;
		$full++ if $j->{key} =~ /[0-9]{5}/;
	}
	my $rows = $node->safe_psql('postgres', 'SELECT string_agg(alert_id::text, \',\' ORDER BY alert_id) FROM txpipe.alerts');
	is($bad, 0, "$what: every payload is an alert as JSON");
	is(join(',', sort { $a <=> $b } keys %ids), $rows // '', "$what: one payload for each row of txpipe.alerts");
	is(scalar(grep { $ids{$_} > 1 } keys %ids), 0, "$what: no alert notified twice");
	is($full, 0, "$what: no payload holds a card number");
	my $longest = 0;
	$longest = length($_) > $longest ? length($_) : $longest for @payloads;
	cmp_ok($longest, '<', 8000, "$what: every payload under 8000 bytes (longest $longest)");
}

# the listener listens from here on
is(scalar(received()), 0, 'the listener LISTENs');

# COPY: a generated file with fraud bursts
my $s1 = txpipe_gen('cards', "$dir/one.ndjson", '--rows', 3000, '--seed', 61, '--bad', '0', '--dups', '0');
ok(txpipe_load($node, 'cards', "$dir/one.ndjson"), 'a file loaded by COPY');
my $n1 = $node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.alerts');
cmp_ok($n1, '>', 0, "the file raised alerts ($n1)");
check_payloads('COPY', wait_for_all());

# the same file again: duplicates, nothing raised or notified
ok(txpipe_load($node, 'cards', "$dir/one.ndjson"), 'the file loaded again');
is($node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.alerts'), $n1, 'nothing new raised');
sleep 0.5;
is(scalar(received()), $n1, 'nothing new notified');

# a rolled-back load of another file: nothing raised, nothing notified
txpipe_gen('cards', "$dir/two.ndjson", '--rows', 3000, '--seed', 62, '--bad', '0', '--dups', '0');
$node->safe_psql('postgres', qq{
	BEGIN;
	COPY txpipe_in.cards FROM '$dir/two.ndjson' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02');
	DO \$\$ BEGIN
		IF (SELECT count(*) FROM txpipe.alerts) = $n1 THEN RAISE EXCEPTION 'the load raised nothing'; END IF;
	END \$\$;
	ROLLBACK;});
is($node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.alerts'), $n1, 'a rolled-back load leaves no alert');
sleep 0.5;
is(scalar(received()), $n1, 'and notified nothing');

# the queue: the same file enqueued, routed by the worker
$node->safe_psql('postgres', qq{
	SELECT txpipe.enqueue('cards', array_agg(l ORDER BY o))
	  FROM unnest(string_to_array(pg_read_file('$dir/two.ndjson'), E'\\n')) WITH ORDINALITY AS u(l, o)
	 WHERE l <> '';});
ok( $node->poll_query_until('postgres', q{SELECT backlog = 0 FROM txpipe.stats WHERE pipeline = 'cards'}),
	'the worker routed the queue');
my $n2 = $node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.alerts');
cmp_ok($n2, '>', $n1, 'the queued records raised alerts (' . ($n2 - $n1) . ')');
check_payloads('queue', wait_for_all());

# the same records by COPY into another cards pipeline raise the same
# alerts, from the same records
$node->safe_psql('postgres', qq{
	SELECT txpipe.install_template('cards', 'cards_b');
	COPY txpipe_in.cards_b FROM '$dir/two.ndjson' WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02');});
sub alert_set
{
	my ($pipeline, $after) = @_;
	return $node->safe_psql('postgres', qq{
	SELECT string_agg(concat_ws(' ', rule, key, record_key, window_start), ', ' ORDER BY rule, key, window_start)
	  FROM txpipe.alerts WHERE pipeline = '$pipeline' AND alert_id > $after});
}
is(alert_set('cards_b', 0), alert_set('cards', $n1),
	'COPY raises the alerts the queue raised, from the same records');
check_payloads('COPY into cards_b', wait_for_all());

# NOTIFY txpipe_ingest: a burst of 6 transactions on a new card in a minute
$node->safe_psql('postgres', q{UPDATE txpipe.pipelines SET spec = spec || '{"notify": true}', version = version + 1 WHERE name = 'cards'});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'txpipe listener' AND query ~ 'LISTEN'}),
	'the worker LISTENs');
$node->safe_psql('postgres', qq{
	WITH one AS (SELECT split_part(pg_read_file('$dir/one.ndjson'), E'\\n', 1)::jsonb AS doc)
	SELECT pg_notify('txpipe_ingest', jsonb_build_object('pipeline', 'cards', 'records', jsonb_agg(
		doc || jsonb_build_object('cc_num', 4999000011112222, 'trans_num', md5('notify' || n),
								  'trans_date_trans_time', '2020-12-31 23:5' || n || ':00', 'is_fraud', 0))
		)::text)
	  FROM one, generate_series(0, 5) n;});
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM txpipe.alerts WHERE key = '4999000011112222' AND rule = 'card_velocity'}),
	'records sent by NOTIFY txpipe_ingest raise their alert');
my @all = wait_for_all();
check_payloads('NOTIFY ingest', @all);
my ($velocity) = grep { /4999000011112222|2222"/ && /card_velocity/ } @all;
like($velocity, qr/"key" : "\*{12}2222"/, 'its payload masks the card number');

$in .= "\\q\n";
$listener->finish;
done_testing();
