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
ok(txpipe_load($node, 'clicks', "$dir/clicks.ndjson"), 'the clicks file again');
is_deeply(per_rule('clicks'), { bot_user => $c->{alerts}{bot_user}, bot_session => $c->{alerts}{bot_session} },
	'raises nothing new');

$node->stop;
done_testing();
