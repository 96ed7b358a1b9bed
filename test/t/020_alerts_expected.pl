# The templates' alerts on generated data with known truth: the
# generator plants fraud bursts, card-testing bursts (velocity) and fraud
# amounts far from a card's history (and, in clicks, bots: 40 views of a
# user within a minute), and writes into its summary the alerts
# the template's rules must raise from its valid records.  A load raises
# exactly those, per rule (so none on the quiet traffic); the same file
# again raises nothing; the same file through the queue (txpipe stream from
# one producer, so in the file's order, and the workers) raises the same
# alerts, rule, key and window, as COPY.  (An outlier is judged against the
# history as it stands when a record is routed: producers that send a
# card's records out of order can see other outliers.)
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('alerts_expected');
my $dir  = PostgreSQL::Test::Utils::tempdir();
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards', 'cards_q')");

my $s = txpipe_gen('cards', "$dir/cards.ndjson", '--rows', 30000, '--seed', 42,
	'--bad', '0.01', '--dups', '0.01');
my %expected = %{ $s->{alerts} };
cmp_ok($expected{$_}, '>', 0, "the generator planted $_ ($expected{$_})")
  for qw(fraud_flag card_velocity amount_outlier);

sub per_rule
{
	my ($p) = @_;
	my %n = map { split /\|/ } split /\n/, $node->safe_psql('postgres',
		"SELECT rule, count(*) FROM txpipe.alerts WHERE pipeline = '$p' GROUP BY rule");
	return \%n;
}

ok(txpipe_load($node, 'cards', "$dir/cards.ndjson"), 'the file loads by COPY');
my $got = per_rule('cards');
is($got->{$_} // 0, $expected{$_}, "COPY raises the summary's $_ alerts") for sort keys %expected;
is(scalar(keys %$got), 3, 'and no alert of another rule');

ok(txpipe_load($node, 'cards', "$dir/cards.ndjson"), 'the same file again');
is_deeply(per_rule('cards'), $got, 'raises nothing new');

# the queue path
$node->safe_psql('postgres', 'SELECT txpipe.start_worker()');
ok(txpipe_stream($node, 'cards_q', "$dir/cards.ndjson", '--batch', 100),
	'the file streams through the queue');
ok( $node->poll_query_until('postgres',
		"SELECT backlog = 0 AND received = 30000 FROM txpipe.stats WHERE pipeline = 'cards_q'"),
	'the workers route it');
my $q = per_rule('cards_q');
is($q->{$_} // 0, $expected{$_}, "the queue raises the summary's $_ alerts") for sort keys %expected;
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (
			(SELECT rule, key, window_start FROM txpipe.alerts WHERE pipeline = 'cards'
			 EXCEPT SELECT rule, key, window_start FROM txpipe.alerts WHERE pipeline = 'cards_q')
			UNION ALL
			(SELECT rule, key, window_start FROM txpipe.alerts WHERE pipeline = 'cards_q'
			 EXCEPT SELECT rule, key, window_start FROM txpipe.alerts WHERE pipeline = 'cards')) AS d}),
	0, 'the same alerts, rule, key and window, as COPY');

# clicks: the generator's bots, one user's 40 views within a minute
$node->safe_psql('postgres', "SELECT txpipe.install_template('clicks')");
my $c = txpipe_gen('clicks', "$dir/clicks.ndjson", '--rows', 30000, '--seed', 42,
	'--bad', '0.01', '--dups', '0.01');
cmp_ok($c->{alerts}{bot_user}, '>', 0, "the generator planted bots ($c->{bots})");
ok(txpipe_load($node, 'clicks', "$dir/clicks.ndjson"), 'the clicks file loads');
is(per_rule('clicks')->{bot_user} // 0, $c->{alerts}{bot_user},
	"COPY raises the summary's bot_user alerts, and none on the quiet traffic");
is(per_rule('clicks')->{bot_session} // 0, $c->{alerts}{bot_session},
	"COPY raises the summary's bot_session alerts");
is($c->{alerts}{flood}, 1, "the generator planted one flood minute ($c->{flood_events} events), and its quiet traffic has none");
is(per_rule('clicks')->{flood} // 0, 1, "COPY raises the flood alert");
is( $node->safe_psql('postgres', q{
		SELECT a.key || ' ' || (a.window_start AT TIME ZONE 'UTC') || ' ' || ((a.details->>'count')::int >= 100) || ' '
			   || (abs((a.details->>'baseline')::float8 - h.n / 60.0) < 1e-9)
		  FROM txpipe.alerts a,
			   (SELECT count(*) AS n FROM clicks.event
				 WHERE event_time >= '2019-10-16 11:00:00+00' AND event_time < '2019-10-16 12:00:00+00') h
		 WHERE a.pipeline = 'clicks' AND a.rule = 'flood'}),
	"* 2019-10-16 12:00:00 true true",
	'at noon on the 16th, with at least min_count events and the mean of the hour before');
ok(txpipe_load($node, 'clicks', "$dir/clicks.ndjson"), 'the clicks file again');
is_deeply(per_rule('clicks'), { bot_user => $c->{alerts}{bot_user}, bot_session => $c->{alerts}{bot_session}, flood => 1 },
	'raises nothing new');

# retail: one hour of the generator's with 120 cancelled lines
$node->safe_psql('postgres', "SELECT txpipe.install_template('retail')");
my $r = txpipe_gen('retail', "$dir/retail.ndjson", '--rows', 60000, '--seed', 42,
	'--bad', '0.01', '--dups', '0.01');
is($r->{alerts}{cancellation_spike}, 1,
	"the generator planted one cancellation spike ($r->{spike_lines} lines), and its quiet traffic has none");
ok(txpipe_load($node, 'retail', "$dir/retail.ndjson"), 'the retail file loads');
is(per_rule('retail')->{cancellation_spike} // 0, 1, 'COPY raises the cancellation spike');
ok(txpipe_load($node, 'retail', "$dir/retail.ndjson"), 'the retail file again');
is(per_rule('retail')->{cancellation_spike} // 0, 1, 'raises nothing new');

$node->stop;
done_testing();
