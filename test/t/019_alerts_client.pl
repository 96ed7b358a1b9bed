# txpipe alerts: the open alerts, one line each, as a login that holds
# txpipe_reader only; with --follow, started before a load, each alert the
# load raises printed once as its transaction commits, nothing for a load
# of the same file again, and an acknowledged alert no longer listed.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('alerts_client');
my $dir  = PostgreSQL::Test::Utils::tempdir();
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");
$node->safe_psql('postgres', 'CREATE ROLE dashboard LOGIN IN ROLE txpipe_reader');

local $ENV{PGHOST}     = $node->host;
local $ENV{PGPORT}     = $node->port;
local $ENV{PGDATABASE} = 'postgres';

# as the reader
sub alerts
{
	my @args = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGUSER} = 'dashboard';
	IPC::Run::run([ txpipe_client(), 'alerts', @args ], '<', \undef, '>', \$out, '2>', \$err)
	  or die "txpipe alerts @args: $err";
	return $out;
}

sub open_count
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.open_alerts');
}

txpipe_gen('cards', "$dir/a.ndjson", '--rows', 3000, '--seed', 5);
txpipe_gen('cards', "$dir/b.ndjson", '--rows', 3000, '--seed', 6);

# --follow, as the reader, before anything is loaded
my ($fout, $ferr) = ('', '');
my $follow;
{
	local $ENV{PGUSER} = 'dashboard';
	$follow = IPC::Run::start([ txpipe_client(), 'alerts', 'cards', '--follow' ],
		'<', \undef, '>', \$fout, '2>', \$ferr);
}
my $until = time() + 30;
$follow->pump_nb while $ferr !~ /listening/ && time() < $until;
like($ferr, qr/listening on txpipe_alerts for cards/, '--follow listens');

ok(txpipe_load($node, 'cards', "$dir/a.ndjson"), 'a first file loads');
my $first = open_count();
cmp_ok($first, '>', 0, "it raises alerts ($first)");
my @lines = grep { length } split /\n/, alerts('cards');
is(scalar @lines, $first, 'txpipe alerts prints one line per open alert');
like($lines[0], qr/^#\d+  \S+  cards  (critical|warning|info)  \w+  key \*+\d{4}  record [0-9a-f]{32}  \{/,
	'a line: id, event time, pipeline, severity, rule, masked key, record, details');
unlike(join("\n", @lines), qr/\d{12}/, 'no full card number in the output');

ok(txpipe_load($node, 'cards', "$dir/b.ndjson"), 'a second file loads');
ok(txpipe_load($node, 'cards', "$dir/a.ndjson"), 'the first file again loads');
my $total = open_count();
$until = time() + 30;
$follow->pump_nb while (() = $fout =~ /^#/mg) < $total && time() < $until;
my @followed = $fout =~ /^#(\d+) /mg;
is(scalar @followed, $total, "--follow printed every alert ($total)");
my %seen;
is(scalar(grep { $seen{$_}++ } @followed), 0, '--follow printed each alert once');
is( join(',', sort { $a <=> $b } @followed),
	$node->safe_psql('postgres', q{SELECT string_agg(alert_id::text, ',' ORDER BY alert_id) FROM txpipe.alerts}),
	'--follow printed exactly the committed alerts');
$follow->signal('TERM');
$follow->finish;

# an acknowledged alert is no longer open
my $id = $node->safe_psql('postgres', 'SELECT min(alert_id) FROM txpipe.alerts');
$node->safe_psql('postgres', "SELECT txpipe.acknowledge_alert($id)");
my $after = alerts('cards');
unlike($after, qr/^#$id /m, 'an acknowledged alert is not listed');
is(scalar(grep { length } split /\n/, $after), $total - 1, 'the others are');

# a pipeline that does not exist
{
	local $ENV{PGUSER} = 'dashboard';
	my ($out, $err) = ('', '');
	my $ok = IPC::Run::run([ txpipe_client(), 'alerts', 'nosuch' ], '<', \undef, '>', \$out, '2>', \$err);
	ok(!$ok, 'an unknown pipeline is an error');
	like($err, qr/pipeline "nosuch" does not exist/, 'which says so');
}

$node->stop;
done_testing();
