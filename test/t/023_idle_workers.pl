# Idle databases hold no worker slot: with 20 databases that have the
# extension and a pipeline, more than max_worker_processes leaves for
# txpipe, a worker starts where records are queued (by a role that may
# only enqueue), routes them and leaves after txpipe.worker_idle_timeout;
# once every database is idle no txpipe worker runs, and a record queued
# in any of them is routed within the poll interval plus the start-up
# time.  Commits that queue records wake the running workers through
# shared memory: the enqueue sends no NOTIFY.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use TxpipeTest;

txpipe_require_client();

my $ndb  = 20;
my $idle = 2;    # seconds
my $node = txpipe_node('idle');
$node->append_conf('postgresql.conf', 'max_prepared_transactions = 2');
$node->restart;
$node->safe_psql('postgres',
	"ALTER SYSTEM SET txpipe.worker_idle_timeout = '${idle}s'; SELECT pg_reload_conf();");
$node->safe_psql('postgres', q{CREATE ROLE idle_writer LOGIN IN ROLE txpipe_writer});

# a template database (the launcher starts nothing in templates), copied
$node->safe_psql('postgres', 'CREATE DATABASE idle_tpl IS_TEMPLATE true');
$node->safe_psql('idle_tpl', "CREATE EXTENSION txpipe; SELECT txpipe.install_template('cards')");
my @dbs = map { sprintf('idle%02d', $_) } 1 .. $ndb;
$node->safe_psql('postgres', "CREATE DATABASE $_ TEMPLATE idle_tpl") for @dbs;

my $dir = PostgreSQL::Test::Utils::tempdir();
txpipe_gen('cards', "$dir/c.ndjson", '--rows', 200, '--seed', 22, '--bad', '0', '--dups', '0');
open my $fh, '<', "$dir/c.ndjson" or die;
my @lines = <$fh>;
close $fh;
chomp @lines;

sub lit { my ($s) = @_; $s =~ s/'/''/g; return "'$s'"; }

my $workers = q{SELECT count(*) FROM pg_stat_activity
	WHERE backend_type = 'txpipe worker' OR application_name LIKE 'txpipe worker%'};

# enqueues record $i in $db as the writer; returns the seconds until the
# record is in cards.transaction
sub routed_after
{
	my ($db, $i) = @_;
	my $before = $node->safe_psql($db, 'SELECT count(*) FROM cards.transaction');
	my $t0 = time;
	$node->safe_psql($db, "SELECT txpipe.enqueue('cards', " . lit($lines[$i]) . '::jsonb)',
		extra_params => [ '-U', 'idle_writer' ]);
	my $want = $before + 1;
	while (time - $t0 < 60)
	{
		last if $node->safe_psql($db, 'SELECT count(*) FROM cards.transaction') >= $want;
		sleep(0.05);
	}
	diag("$db: not routed after 60 s: "
		  . $node->safe_psql($db, q{SELECT (SELECT string_agg(id || ':' || xid || ':' || class, ' ') FROM txpipe.queue)
			|| ' / ' || (SELECT string_agg(class || ':' || done_upto::text || ':' || coalesce(pass_upto::text, '-'), ' ') FROM txpipe.queue_positions WHERE done_upto::text <> '1:1:')
			|| ' / ' || (SELECT string_agg(backend_type || ':' || coalesce(application_name, '') || ':' || datname, ', ') FROM pg_stat_activity WHERE datname IS NOT NULL)}))
	  if time - $t0 >= 60;
	return time - $t0;
}

# the launcher's first probes of the new databases are over when no
# worker is left (each probe finds nothing queued and leaves)
ok($node->poll_query_until('postgres', $workers, '0'), 'after the probes no txpipe worker runs');

my $max = 0;
my $i = 0;
for my $db (@dbs)
{
	my $s = routed_after($db, $i++);
	$max = $s if $s > $max;
}
note sprintf('a record queued in each of %d databases without a worker: routed after at most %.2f s', $ndb, $max);
cmp_ok($max, '<', 15, "a record queued in each of $ndb idle databases is routed (at most ${max}s)");

my $t0 = time;
ok($node->poll_query_until('postgres', $workers, '0'), 'the workers leave once their database is idle');
note sprintf('no txpipe worker left %.1f s after the last record was routed', time - $t0);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe launcher'}),
	'1', 'only the launcher stays');

# all parked: a record queued in any database is routed at once (in the
# first round above, workers of 14 databases at once can fill the slots
# left: the launcher then tries again a second later)
my $log_from = -s $node->logfile;
$max = 0;
for my $db (@dbs[ 0, 9, 19 ])
{
	my $s = routed_after($db, $i++);
	$max = $s if $s > $max;
}
note sprintf('after every worker left: routed after at most %.2f s', $max);
cmp_ok($max, '<', 15, "a record queued after every worker left is routed (at most ${max}s)");

# a running worker is woken by the commit, without NOTIFY
my $db = $dbs[4];
my $out = $node->safe_psql($db, "LISTEN txpipe_wakeup; SELECT txpipe.enqueue('cards', " . lit($lines[$i++]) . '::jsonb); SELECT 1');
unlike($out, qr/Asynchronous notification/, 'enqueue sends no NOTIFY txpipe_wakeup');
routed_after($db, $i++);
$max = 0;
for (1 .. 5)
{
	my $s = routed_after($db, $i++);
	$max = $s if $s > $max;
}
note sprintf('with the worker running: routed after at most %.3f s', $max);
cmp_ok($max, '<', 5, 'a running worker routes a queued record when woken');
$node->safe_psql($db, q{BEGIN; SELECT txpipe.enqueue('cards', } . lit($lines[$i++]) . q{::jsonb); PREPARE TRANSACTION 'q1';});
$node->safe_psql($db, q{COMMIT PREPARED 'q1'});
ok($node->poll_query_until($db, 'SELECT count(*) FROM cards.transaction', 9),
	'a record enqueued in a prepared transaction is routed after COMMIT PREPARED');

is($node->safe_psql($db, 'SELECT count(*) FROM txpipe.queue'), '0', 'nothing left in the queue');
my $log = substr(slurp_file($node->logfile), $log_from);
unlike($log, qr/no background worker slot|could not start a worker/,
	'once the databases are idle, no start fails for want of a slot');

$node->stop;
done_testing();
