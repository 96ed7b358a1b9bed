# Generated card transactions, loaded with the client, end up in the
# database exactly as the generator says: valid records routed, bad ones
# dead-lettered, duplicates counted once; a second load changes nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('cards');
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");

my $file = PostgreSQL::Test::Utils::tempdir() . '/cards.ndjson';
my $s = txpipe_gen('cards', $file, '--rows', 20000, '--seed', 7,
	'--bad', '0.02', '--dups', '0.02');
cmp_ok($s->{$_}, '>', 0, "the generator made $_ records")
  for qw(valid bad dups fraud);

ok(txpipe_load($node, 'cards', $file), 'txpipe load succeeds');

my $st = txpipe_stats($node, 'cards');
is($st->{accepted},   $s->{valid}, 'stats: accepted = valid records');
is($st->{rejected},   $s->{bad},   'stats: rejected = bad records');
is($st->{duplicates}, $s->{dups},  'stats: duplicates = duplicated records');

is( $node->safe_psql('postgres',
		"SELECT count(*) FROM txpipe.rejects WHERE pipeline = 'cards'"),
	$s->{bad},
	'one reject per bad record');
is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM txpipe.rejects
		 WHERE pipeline = 'cards'
		   AND (coalesce(error_code, '') = '' OR coalesce(error_path, '') = ''
				OR coalesce(message, '') = '')}),
	0,
	'every reject has an error code, path and message');

my $transactions = $node->safe_psql('postgres',
	'SELECT count(*) FROM cards.transaction');
is($transactions, $s->{valid}, 'one transaction row per valid record');
is( $node->safe_psql('postgres', 'SELECT sum(amt) FROM cards.transaction'),
	sprintf('%.2f', $s->{sum_amt}),
	'sum(amt) = the generator\'s sum');
is( $node->safe_psql('postgres',
		'SELECT count(*) FILTER (WHERE is_fraud) FROM cards.transaction'),
	$s->{fraud},
	'fraud count = the generator\'s');

# The same file again: everything valid is now a duplicate.
ok(txpipe_load($node, 'cards', $file), 'loading the same file again succeeds');
my $st2 = txpipe_stats($node, 'cards');
is($st2->{accepted} - $st->{accepted}, 0, 'the second load accepts nothing');
is( $st2->{duplicates} - $st->{duplicates},
	$s->{valid} + $s->{dups},
	'the second load counts every valid record as a duplicate');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cards.transaction'),
	$transactions, 'the transaction count is unchanged');

$node->stop;
done_testing();
