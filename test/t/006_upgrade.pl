# ALTER EXTENSION txpipe UPDATE from 0.1.0, one released version at a
# time: a database updated with data in it ends up with exactly the objects
# of a fresh install, keeps its data, and its worker, which waits while the
# tables are of the old version, starts routing once they match the
# library.  A database made at the previous release and updated in one
# step ends up the same.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('upgrade');
my $dir  = PostgreSQL::Test::Utils::tempdir();
my $fingerprint = slurp_file("$FindBin::RealBin/../sql/fingerprint.sql");
my $version = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'txpipe'});

$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', q{
	CREATE EXTENSION txpipe VERSION '0.1.0';
	SELECT txpipe.install_template('cards');});
my $s = txpipe_gen('cards', "$dir/old.ndjson", '--rows', 2000, '--seed', 31, '--bad', '0.01', '--dups', '0');
$node->safe_psql('old',
	qq{COPY txpipe_in.cards FROM '$dir/old.ndjson' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')});
is($node->safe_psql('old', 'SELECT count(*) FROM cards.transaction'), $s->{valid},
	'version 0.1.0 routes a file');

# The launcher starts a worker in the old database at server start; the
# worker sees tables of another version than its library and waits.
$node->restart;
ok( $node->poll_query_until('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker' AND datname = 'old'}, '1'),
	'a worker runs in the database that still has 0.1.0');
ok( $node->wait_for_log(qr/waits: the extension's version in this database is 0\.1\.0, the library's is \Q$version\E/),
	'the worker says it waits for the versions to match');

# every released step, in order
my @steps = map { $_->[0] } grep { $_->[0] ne '0.1.0' } map { [ split /\|/ ] } split /\n/,
  $node->safe_psql('postgres', q{
	SELECT target FROM pg_extension_update_paths('txpipe')
	 WHERE source = '0.1.0' AND path IS NOT NULL
	 ORDER BY string_to_array(target, '.')::int[]});
ok(scalar(@steps) >= 2, 'there is an update path through every released version: ' . join(' -> ', '0.1.0', @steps));
for my $step (@steps)
{
	$node->safe_psql('old', "ALTER EXTENSION txpipe UPDATE TO '$step'");
	is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'txpipe'}), $step,
		"ALTER EXTENSION txpipe UPDATE TO '$step'");
	is($node->safe_psql('old', 'SELECT count(*) FROM cards.transaction'), $s->{valid},
		"the routed rows are kept at $step");
}
is($node->safe_psql('old', q{SELECT extversion FROM pg_extension WHERE extname = 'txpipe'}), $version,
	"ALTER EXTENSION txpipe UPDATE goes to $version");
is($node->safe_psql('old', $fingerprint), $node->safe_psql('postgres', $fingerprint),
	'the updated database has exactly the objects of a fresh install');
is($node->safe_psql('old', 'SELECT count(*) FROM cards.transaction'), $s->{valid},
	'the routed rows are kept');
is($node->safe_psql('old', q{SELECT accepted || '/' || rejected FROM txpipe.stats WHERE pipeline = 'cards'}),
	"$s->{valid}/$s->{bad}", 'and so are the counters');

# the waiting worker now routes what is queued
txpipe_gen('cards', "$dir/good.ndjson", '--rows', 1, '--seed', 32, '--bad', '0', '--dups', '0');
$node->safe_psql('old', q{
	SELECT txpipe.enqueue('cards', jsonb_set(doc::jsonb, '{trans_num}', to_jsonb(md5('after' || n))))
	  FROM (SELECT split_part(pg_read_file('} . "$dir/good.ndjson" . q{'), E'\n', 1) AS doc) d,
		   generate_series(1, 5) n;});
ok( $node->poll_query_until('old',
		q{SELECT count(*) FROM cards.transaction WHERE trans_num IN (SELECT md5('after' || n) FROM generate_series(1, 5) n)},
		'5'),
	'after the update the worker routes queued records');

# the previous release, installed fresh and updated in one step
my $previous = $steps[-2] // '0.1.0';
$node->safe_psql('postgres', 'CREATE DATABASE prev');
$node->safe_psql('prev', qq{
	CREATE EXTENSION txpipe VERSION '$previous';
	SELECT txpipe.install_template('cards');
	ALTER EXTENSION txpipe UPDATE;});
is($node->safe_psql('prev', $fingerprint), $node->safe_psql('postgres', $fingerprint),
	"a database made at $previous and updated has exactly the objects of a fresh install");

$node->stop;
done_testing();
