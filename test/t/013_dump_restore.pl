# pg_dump -Fc of a loaded txpipe database, restored into a new database of
# the same server and into another server: there it loads, dead-letters
# (new reject and batch ids go on after the restored ones), refreshes the
# star from the restored watermark, routes queued records (the inbox and
# its positions are not dumped: nothing restored is routed twice, nothing
# new is skipped) and its stats add up the restored counters and the new
# batches.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/..";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('dump');
# workers stay in databases with nothing queued, so that the restored
# database's worker can be watched (idle exit: 023_idle_workers)
$node->safe_psql('postgres', q{ALTER SYSTEM SET txpipe.worker_idle_timeout = 0; SELECT pg_reload_conf();});
my $dir  = PostgreSQL::Test::Utils::tempdir();
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");

# the client sends the files as they are, bytes that are not UTF-8 included
sub load
{
	my ($n, $db, $file) = @_;
	local $ENV{PGHOST}     = $n->host;
	local $ENV{PGPORT}     = $n->port;
	local $ENV{PGDATABASE} = $db;
	my ($out, $err) = ('', '');
	my @cmd = (txpipe_client(), 'load', 'cards', $file);
	ok(IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err), "$db: txpipe load $file") or diag("$out$err");
}
my $s1 = txpipe_gen('cards', "$dir/one.ndjson", '--rows', 3000, '--seed', 41, '--bad', '0.02', '--dups', '0');
my $s2 = txpipe_gen('cards', "$dir/two.ndjson", '--rows', 2000, '--seed', 42, '--bad', '0.02', '--dups', '0');
txpipe_gen('cards', "$dir/good.ndjson", '--rows', 1, '--seed', 43, '--bad', '0', '--dups', '0');
cmp_ok($s1->{bad}, '>', 0, 'the first file has bad records');

load($node, 'postgres', "$dir/one.ndjson");
# the same file again: all duplicates, its rejects counted again, not stored again
load($node, 'postgres', "$dir/one.ndjson");
$node->safe_psql('postgres', q{SELECT * FROM txpipe.refresh('cards')});
# a queued record, routed before the dump; part of the batches folded
$node->safe_psql('postgres', q{
	SELECT txpipe.enqueue('cards', jsonb_set(doc::jsonb, '{trans_num}', to_jsonb(md5('before'))))
	  FROM (SELECT split_part(pg_read_file('} . "$dir/good.ndjson" . q{'), E'\n', 1) AS doc) d;
	SELECT txpipe.drain('cards');});
# (the worker, woken by the commit, may have taken it before drain)
$node->poll_query_until('postgres', q{SELECT count(*) FROM cards.transaction WHERE trans_num = md5('before')}, '1')
  or die 'the queued record was not routed';
$node->safe_psql('postgres', q{SELECT txpipe._fold(1)});

my $counts = q{
	SELECT (SELECT count(*) FROM cards.transaction) || '/' ||
		   (SELECT count(*) FROM cards.fact_transaction) || '/' ||
		   (SELECT count(*) || ':' || sum(count) FROM txpipe.rejects WHERE pipeline = 'cards') || '/' ||
		   (SELECT received || ':' || accepted || ':' || rejected || ':' || duplicates FROM txpipe.stats WHERE pipeline = 'cards')};
my $valid1 = $s1->{valid} + 1;
my $recv1  = 2 * $s1->{rows} + 1;
is($node->safe_psql('postgres', $counts),
	"$valid1/$s1->{valid}/$s1->{bad}:" . (2 * $s1->{bad}) . "/$recv1:$valid1:" . (2 * $s1->{bad}) . ":$s1->{valid}",
	'before the dump: routed, refreshed, each reject stored once and counted twice');

my $dump = "$dir/txpipe.dump";
$node->command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('postgres'), '-f', $dump ], 'pg_dump -Fc');

# the star of the restored database matches its normalized tables
my $star = q{
	SELECT (SELECT (count(*), sum(amt), count(*) FILTER (WHERE is_fraud))::text FROM cards.fact_transaction)
		 = (SELECT (count(*), sum(amt), count(*) FILTER (WHERE is_fraud))::text FROM cards.transaction)};

my $other = PostgreSQL::Test::Cluster->new('restored');
$other->init(extra => [ '-E', 'UTF8', '--locale=C' ]);
$other->append_conf('postgresql.conf', slurp_file($ENV{TXPIPE_SERVER_CONF} || "$FindBin::RealBin/../server.conf"));
$other->append_conf('postgresql.conf', 'txpipe.worker_idle_timeout = 0');
$other->start;

for my $target ([ $node, 'copy', 'the same server' ], [ $other, 'postgres2', 'another server' ])
{
	my ($n, $db, $where) = @$target;
	$n->safe_psql('postgres', "CREATE DATABASE $db");
	$n->command_ok([ 'pg_restore', '--exit-on-error', '-d', $n->connstr($db), $dump ],
		"pg_restore into a new database of $where");
	is($n->safe_psql($db, $counts),
		"$valid1/$s1->{valid}/$s1->{bad}:" . (2 * $s1->{bad}) . "/$recv1:$valid1:" . (2 * $s1->{bad}) . ":$s1->{valid}",
		"$where: the restored database has the rows, rejects and counts");

	# load more: new rejects and batches get ids after the restored ones
	my $last = $n->safe_psql($db, q{SELECT max(reject_id) FROM txpipe.rejects});
	load($n, $db, "$dir/two.ndjson");
	is($n->safe_psql($db, qq{SELECT count(*) FROM txpipe.rejects WHERE reject_id > $last}),
		$s2->{bad}, "$where: a load after the restore stores its rejects");
	# the same bad records again are counted, not stored again
	load($n, $db, "$dir/one.ndjson");
	is($n->safe_psql($db, q{SELECT count(*) FROM txpipe.rejects WHERE pipeline = 'cards'}),
		$s1->{bad} + $s2->{bad}, "$where: the first file's rejects are not stored again");

	my $r = $n->safe_psql($db, q{SELECT status, watermark_from > 0, rows >= } . $s2->{valid} . q{ FROM txpipe.refresh('cards')});
	is($r, 'ok|t|t', "$where: refresh goes on from the restored watermark");
	is($n->safe_psql($db, $star), 't', "$where: the star matches the normalized tables");
	is($n->safe_psql($db, q{SELECT count(*) FROM txpipe.refresh_runs WHERE pipeline = 'cards'}), '2',
		"$where: the refresh run is recorded beside the restored one");

	# the workers start by themselves in the restored database (the launcher
	# looks for new databases every 5 seconds)
	ok( $n->poll_query_until($db,
			qq{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'txpipe worker' AND datname = '$db'}),
		"$where: a worker runs in the restored database");
	# the queue: the record queued before the dump is not routed again; new
	# ones are routed, by drain and by the worker
	$n->safe_psql($db, q{SELECT txpipe.stop_worker()});
	$n->safe_psql($db, q{
		SELECT txpipe.enqueue('cards', jsonb_set(doc::jsonb, '{trans_num}', to_jsonb(md5('after' || n))))
		  FROM (SELECT split_part(pg_read_file('} . "$dir/good.ndjson" . q{'), E'\n', 1) AS doc) d,
			   generate_series(1, 3) n;});
	is($n->safe_psql($db, q{SELECT txpipe.drain('cards')}), '3', "$where: drain routes what was queued after the restore");
	# retention: worker 0 folds and prunes when it starts (then once a
	# minute); rejects last received 31 days ago and batches of 8 days ago
	# go, the rest stays
	my $rejects = $n->safe_psql($db, q{SELECT count(*) FROM txpipe.rejects});
	$n->safe_psql($db, q{
		UPDATE txpipe.rejects SET last_received_at = now() - interval '31 days'
		 WHERE reject_id IN (SELECT reject_id FROM txpipe.rejects ORDER BY reject_id LIMIT 5);
		UPDATE txpipe.batches SET finished_at = finished_at - interval '8 days'
		 WHERE batch_id IN (SELECT batch_id FROM txpipe.batches ORDER BY batch_id LIMIT 2);});
	$n->safe_psql($db, q{SELECT txpipe.start_worker()});
	ok( $n->poll_query_until($db, q{
			SELECT count(*) FROM txpipe.rejects WHERE last_received_at < now() - interval '30 days'
			UNION ALL SELECT count(*) FROM txpipe.batches WHERE finished_at < now() - interval '7 days'
			UNION ALL SELECT count(*) FROM txpipe.batches WHERE NOT folded}, "0\n0\n0"),
		"$where: the worker folds every batch and prunes old rejects and batches");
	is($n->safe_psql($db, q{SELECT count(*) FROM txpipe.rejects}), $rejects - 5,
		"$where: and leaves the other rejects");
	$n->safe_psql($db, q{
		SELECT txpipe.enqueue('cards', jsonb_set(doc::jsonb, '{trans_num}', to_jsonb(md5('worker'))))
		  FROM (SELECT split_part(pg_read_file('} . "$dir/good.ndjson" . q{'), E'\n', 1) AS doc) d;});
	ok( $n->poll_query_until($db,
			q{SELECT count(*) FROM cards.transaction WHERE trans_num = md5('worker')}, '1'),
		"$where: the worker routes a record queued after the restore");
	is($n->safe_psql($db, q{SELECT count(*) FROM cards.transaction WHERE trans_num = md5('before')}), '1',
		"$where: the record routed before the dump is there once");

	# stats: the restored counts plus every batch since
	my $valid = $valid1 + $s2->{valid} + 4;
	my $recv  = $recv1 + $s2->{rows} + $s1->{rows} + 4;
	my $rej   = 3 * $s1->{bad} + $s2->{bad};
	is($n->safe_psql($db, q{SELECT received || ':' || accepted || ':' || rejected FROM txpipe.stats WHERE pipeline = 'cards'}),
		"$recv:$valid:$rej", "$where: stats add up");
	$n->safe_psql($db, q{SELECT * FROM txpipe.prune()});
	is($n->safe_psql($db, q{SELECT received || ':' || accepted || ':' || rejected FROM txpipe.stats WHERE pipeline = 'cards'}),
		"$recv:$valid:$rej", "$where: and still after txpipe.prune() folds every batch");
	$n->safe_psql($db, q{SELECT txpipe.stop_worker()});
}

$other->stop;
$node->stop;
done_testing();
