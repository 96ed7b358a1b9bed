# Committed records survive a crash; a COPY that fails or is killed part-way
# leaves nothing half-loaded, and loading again afterwards gives exact totals.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('restart');
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");
my $dir = PostgreSQL::Test::Utils::tempdir();

sub transactions
{
	return $node->safe_psql('postgres', 'SELECT count(*) FROM cards.transaction');
}

# 1. Committed rows survive an immediate shutdown.
my $s1 = txpipe_gen('cards', "$dir/first.ndjson", '--rows', 3000, '--seed', 11,
	'--bad', '0', '--dups', '0');
ok(txpipe_load($node, 'cards', "$dir/first.ndjson"), 'load of the first file succeeds');
is(transactions(), $s1->{valid}, 'every valid record of the first file is routed');
my $before = txpipe_counts($node, 'cards');

$node->stop('immediate');
$node->start;
is(txpipe_counts($node, 'cards'), $before,
	'after an immediate shutdown and restart all committed rows are there');

# 2. A COPY that fails on its last line, after thousands of routed records,
# leaves nothing; the same backend then loads the good lines normally (no
# key it cached during the failed COPY survives the rollback).
my $s2 = txpipe_gen('cards', "$dir/second.ndjson", '--rows', 5000, '--seed', 12,
	'--bad', '0', '--dups', '0');
my $broken = "$dir/second-broken.ndjson";
{
	open my $in,  '<', "$dir/second.ndjson" or die $!;
	open my $out, '>', $broken or die $!;
	print $out $_ while <$in>;

	# A second CSV field: COPY itself fails on this line.
	print $out qq({"trans_num": "x"}\x02{"trans_num": "y"}\n);
	close $out or die $!;
}
my $copy_opts = q{WITH (FORMAT csv, QUOTE e'\x01', DELIMITER e'\x02')};
my ($rc, $stdout, $stderr) = $node->psql(
	'postgres', qq{
	COPY txpipe_in.cards FROM '$broken' $copy_opts;
	} . txpipe_counts_query($node, 'cards') . qq{;
	COPY txpipe_in.cards FROM '$dir/second.ndjson' $copy_opts;
	},
	on_error_stop => 0);
like($stderr, qr/extra data after last expected column/,
	'the COPY with a broken last line fails');
is((split /\n/, $stdout)[0], $before,
	'the failed COPY left no rows, rejects or counts behind');
is(transactions(), $s1->{valid} + $s2->{valid},
	'the same session then routes every good line');
my $st = txpipe_stats($node, 'cards');
is($st->{accepted},   $s1->{valid} + $s2->{valid}, 'stats: accepted counts both files');
is($st->{duplicates}, 0, 'stats: no duplicates from the failed COPY');
is($st->{rejected},   0, 'stats: no rejects from the failed COPY');

# 3. A load whose backend is terminated mid-way: whatever was committed is
# consistent, and loading the file again completes it exactly once.
my $s3 = txpipe_gen('cards', "$dir/third.ndjson", '--rows', 100000, '--seed', 13,
	'--bad', '0', '--dups', '0');
my $loader;
{
	local $ENV{PGHOST}     = $node->host;
	local $ENV{PGPORT}     = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	$loader = IPC::Run::start([ txpipe_client(), 'load', 'cards', "$dir/third.ndjson" ],
		'<', \undef, '>', "$dir/third.out", '2>&1');
}
my $pid = '';
for (my $i = 0; $i < 1200 && $loader->pumpable; $i++)
{
	$pid = $node->safe_psql(
		'postgres', q{
		SELECT pid FROM pg_stat_activity
		 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
		   AND state = 'active' AND query ~* 'txpipe_in\.|txpipe\.ingest'
		 LIMIT 1});
	last if $pid ne '';
	$loader->pump_nb;
	sleep(0.05);
}
if ($pid ne '')
{
	sleep(0.5);
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
}
$loader->finish;
note 'loader terminated mid-way: ' . ($pid ne '' ? "yes (backend $pid)" : 'no (it finished first)');
note "loader output:\n" . slurp_file("$dir/third.out");
is( $node->safe_psql('postgres', 'SELECT count(*) FROM cards.transaction'),
	txpipe_stats($node, 'cards')->{accepted},
	'after the kill, routed rows and accepted counts agree');
ok(txpipe_load($node, 'cards', "$dir/third.ndjson"), 'loading the file again succeeds');
is(transactions(), $s1->{valid} + $s2->{valid} + $s3->{valid},
	'every record of the third file is routed exactly once');
is(txpipe_stats($node, 'cards')->{accepted}, $s1->{valid} + $s2->{valid} + $s3->{valid},
	'stats: accepted counts each record once');

$node->stop;
done_testing();
