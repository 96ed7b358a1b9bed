# Alerts and a crash: the worker routing queued cards records with the
# template's rules is killed with SIGKILL in the middle of a batch; after
# the restart it routes the rest, and the alerts are those the same records
# raise by COPY into a second pipeline, each once, with the rules' state
# counting every record once.  After the restart the worker may route some
# records before records queued ahead of them, so which record of a card's
# day raised its flag, and the outlier rule's judgments (which follow the
# order records are routed in), may differ from the COPY's; the cards and
# windows alerted by the flag and rate rules, and the histories, may not.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('alerts_kill');
# as in a default server (the test harness turns it off)
$node->append_conf('postgresql.conf', 'restart_after_crash = on');
$node->reload;
my $dir = PostgreSQL::Test::Utils::tempdir();
$node->safe_psql('postgres', q{
	SELECT txpipe.install_template('cards');
	SELECT txpipe.install_template('cards', 'cards_b');
	ALTER SYSTEM SET txpipe.batch_size = 100;
	SELECT pg_reload_conf();
	SELECT txpipe.stop_worker();});

my $s = txpipe_gen('cards', "$dir/cards.ndjson", '--rows', 15000, '--seed', 71, '--bad', '0', '--dups', '0');

# and a velocity burst in the middle of the file: 7 transactions of a new
# card within 10 minutes
{
	open(my $fh, '<', "$dir/cards.ndjson") or die "cards.ndjson: $!";
	my @lines = <$fh>;
	close($fh);
	my $json = JSON::PP->new->canonical;
	my $doc  = $json->decode($lines[7000]);
	my @burst;
	for my $i (0 .. 6)
	{
		my %d = %$doc;
		$d{cc_num}                = 4999000011113333;
		$d{trans_num}             = sprintf('b0a57%027d', $i);
		$d{trans_date_trans_time} = "2020-06-01 10:0$i:00";
		$d{is_fraud}              = 0;
		push @burst, $json->encode(\%d) . "\n";
	}
	splice(@lines, 7000, 0, @burst);
	open($fh, '>', "$dir/cards.ndjson") or die "cards.ndjson: $!";
	print $fh @lines;
	close($fh);
	$s->{valid} += 7;
}
ok(txpipe_stream($node, 'cards', "$dir/cards.ndjson", '--batch', 500), 'the file queued while no worker runs');
is($node->safe_psql('postgres', q{SELECT backlog FROM txpipe.stats WHERE pipeline = 'cards'}),
	$s->{valid}, 'all of it waits in the inbox');

# the worker is caught routing after some of its batches committed alerts
my $before = $node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.alerts');
$node->safe_psql('postgres', 'SELECT txpipe.start_worker()');
my $victim = '';
for (my $i = 0; $i < 1000; $i++)
{
	$victim = $node->safe_psql('postgres', q{
		SELECT pid FROM pg_stat_activity
		 WHERE backend_type = 'txpipe worker' AND query LIKE 'routing%'
		   AND (SELECT count(*) FROM txpipe.alerts WHERE pipeline = 'cards') > } . $before);
	last if $victim ne '';
	sleep(0.02);
}
ok($victim ne '', 'caught the worker routing, after batches that raised alerts committed');
my $mid = $node->safe_psql('postgres', q{SELECT backlog FROM txpipe.stats WHERE pipeline = 'cards'});
note "backlog at the kill: $mid";
cmp_ok($mid, '>', 0, 'records were still queued at the kill');
kill 'KILL', $victim;

ok( $node->poll_query_until('postgres', q{SELECT backlog = 0 FROM txpipe.stats WHERE pipeline = 'cards'}),
	'after the restart, the worker routes the rest');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cards.transaction'), $s->{valid},
	'every record routed once');

# the same records by COPY into the second pipeline
$node->safe_psql('postgres', qq{
	COPY txpipe_in.cards_b FROM '$dir/cards.ndjson' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02');});

sub alert_set
{
	my ($pipeline) = @_;
	return $node->safe_psql('postgres', qq{
	SELECT string_agg(concat_ws(' ', rule, key, window_start), ', ' ORDER BY rule, key, window_start)
	  FROM txpipe.alerts WHERE pipeline = '$pipeline' AND rule IN ('fraud_flag', 'card_velocity')});
}
my $n = $node->safe_psql('postgres', q{SELECT count(*) FROM txpipe.alerts WHERE pipeline = 'cards'});
cmp_ok($n, '>', 0, "the queued records raised alerts ($n)");
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM txpipe.alerts WHERE pipeline = 'cards' AND rule = 'card_velocity' AND key = '4999000011113333'}),
	'1', 'the burst raised one velocity alert');
is(alert_set('cards'), alert_set('cards_b'),
	'the queue raised every flag and rate alert COPY raises from the same records, and no other');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT rule, key, window_start FROM txpipe.alerts WHERE pipeline = 'cards'
							   GROUP BY 1, 2, 3 HAVING count(*) > 1) d}),
	'0', 'no alert doubled');

# the rules' state counted each record once: the histories' values, and
# the windows kept with their counts, equal those of the COPY
sub state_of
{
	my ($pipeline) = @_;
	return $node->safe_psql('postgres', qq{
	SELECT (SELECT count(*) || '/' || sum(count) FROM txpipe.alert_windows WHERE pipeline = '$pipeline')
		   || ' ' || (SELECT count(*) || '/' || sum(n) || '/' || round(sum(mean)::numeric, 6)
						FROM txpipe.alert_history WHERE pipeline = '$pipeline')});
}
my $state = state_of('cards');
like($state, qr{^\d+/\d+ \d+/$s->{valid}/}, "the histories count every record once ($state)");
is($state, state_of('cards_b'), 'the state equals that of the COPY');

done_testing();
