# pg_cron runs the scheduled star refresh by itself: for a pipeline in its
# own database and for one in another database.  Where pg_cron is not
# installed, scheduling fails with the call to make instead; rescheduling
# replaces a job; txpipe's jobs keep a short run history; unscheduling
# removes the jobs.  The only slow test: pg_cron starts jobs on the minute.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep);
use TxpipeTest;

# test/server.conf preloads pg_cron with cron.database_name = 'postgres'
my $node = txpipe_node('cron');
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron');
$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', 'CREATE EXTENSION txpipe');

# card records made in SQL, so that the test does not need the client
my $records = q{
	SELECT string_agg(jsonb_build_object(
		'trans_date_trans_time', to_char('2020-01-01'::timestamp + n * interval '17 minutes', 'YYYY-MM-DD HH24:MI:SS'),
		'cc_num', 4200000000000000 + n % 7, 'merchant', 'fraud_M' || n % 11,
		'category', 'travel', 'amt', n % 300 + 0.5,
		'first', 'F' || n % 7, 'last', 'L', 'gender', 'M', 'street', n % 7 || ' Pine St',
		'city', 'C' || n % 5, 'state', (ARRAY['NY', 'TX', 'CA', 'WA', 'OR'])[n % 5 + 1],
		'zip', 20000 + n % 5, 'lat', 45, 'long', -120, 'city_pop', 500, 'job', 'Pilot',
		'dob', '1975-05-0' || n % 7 + 1, 'trans_num', md5('cron' || n), 'unix_time', 1577836800 + n,
		'merch_lat', 45, 'merch_long', -120, 'is_fraud', (n % 13 = 0)::int)::text, E'\n')
	  FROM generate_series(1, 500) n};
for my $db (qw(postgres shop))
{
	$node->safe_psql($db, "SELECT txpipe.install_template('cards')");
	is($node->safe_psql($db, "SELECT accepted FROM txpipe.ingest('cards', ($records))"),
		500, "$db: 500 records routed");
}

# In shop there is no pg_cron: the error names the call to make, and where.
my ($rc, $stdout, $stderr) = $node->psql('shop',
	"\\set VERBOSITY verbose\nSELECT txpipe.schedule_refresh('cards')");
isnt($rc, 0, 'scheduling where pg_cron is not installed fails');
like($stderr, qr/ERROR:  55000: pg_cron is not installed in database "shop"/,
	'the error says pg_cron is missing in this database, with SQLSTATE 55000');
like(
	$stderr,
	qr/HINT:  In database "postgres", run: .*SELECT txpipe\.schedule_refresh\('cards', '\* \* \* \* \*', database => 'shop'\);/,
	'the hint names pg_cron\'s database and the call to run there');

# From pg_cron's database: one job per pipeline, whatever database it is in.
my $job = $node->safe_psql('postgres', "SELECT txpipe.schedule_refresh('cards')");
my $job_shop = $node->safe_psql('postgres',
	"SELECT txpipe.schedule_refresh('cards', database => 'shop')");
is($node->safe_psql('postgres', "SELECT txpipe.schedule_refresh('cards', '* * * * *')"),
	$job, 'scheduling the same pipeline again replaces its job');
is( $node->safe_psql(
		'postgres', 'SELECT jobname, schedule, database FROM cron.job ORDER BY jobname'),
	"txpipe_prune_history|17 * * * *|postgres\n"
	  . "txpipe_refresh_cards|* * * * *|postgres\n"
	  . "txpipe_refresh_cards\@shop|* * * * *|shop",
	'a refresh job for each pipeline and one job pruning their history');

# pg_cron starts both jobs at the next minute.
my $done = 0;
for (my $t = 0; $t < 100 && !$done; $t += 0.5)
{
	$done = $node->safe_psql(
		'postgres', qq{
		SELECT count(DISTINCT jobid) = 2 FROM cron.job_run_details
		 WHERE jobid IN ($job, $job_shop) AND status = 'succeeded'}) eq 't';
	sleep(0.5) unless $done;
}
ok($done, 'pg_cron ran both refresh jobs');

my %job_of = (postgres => $job, shop => $job_shop);
for my $db (qw(postgres shop))
{
	my $pids = $node->safe_psql('postgres',
		"SELECT string_agg(job_pid::text, ',') FROM cron.job_run_details WHERE jobid = $job_of{$db}"
	);
	$pids = '0' if $pids eq '';
	is( $node->safe_psql(
			$db, qq{
			SELECT status, rows, watermark_from FROM txpipe.refresh_runs
			 WHERE pipeline = 'cards' AND pid IN ($pids) ORDER BY run_id LIMIT 1}),
		'ok|500|0',
		"$db: the run by pg_cron is recorded in txpipe.refresh_runs");
	is( $node->safe_psql(
			$db, q{
			SELECT (SELECT (count(*), sum(amt), count(*) FILTER (WHERE is_fraud))::text FROM cards.fact_transaction)
				 = (SELECT (count(*), sum(amt), count(*) FILTER (WHERE is_fraud))::text FROM cards.transaction)}),
		't',
		"$db: the facts match the normalized tables");
}

# History: the prune job keeps the newest 1000 runs of each txpipe job and
# leaves other jobs' history alone.
$node->safe_psql(
	'postgres', qq{
	SELECT cron.schedule('other_job', '0 0 1 1 *', 'SELECT 1');
	INSERT INTO cron.job_run_details (jobid, job_pid, database, username, command, status,
									  return_message, start_time, end_time)
	SELECT j.jobid, 0, 'postgres', 'postgres', 'SELECT 1', 'succeeded', 'SELECT 1',
		   now() - n * interval '1 minute', now() - n * interval '1 minute'
	  FROM cron.job j, generate_series(1, 1500) n
	 WHERE j.jobname IN ('txpipe_refresh_cards', 'other_job')});
my $prune = $node->safe_psql('postgres',
	"SELECT command FROM cron.job WHERE jobname = 'txpipe_prune_history'");
$node->safe_psql('postgres', $prune);
is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg(format('%s=%s', j.jobname, (SELECT count(*) FROM cron.job_run_details d WHERE d.jobid = j.jobid)), ' ' ORDER BY j.jobname)
		  FROM cron.job j WHERE j.jobname IN ('txpipe_refresh_cards', 'other_job')}),
	'other_job=1500 txpipe_refresh_cards=1000',
	'the prune job keeps 1000 runs of a txpipe job, and all of another job');

# Unscheduling removes the job and its history; the prune job goes with the
# last refresh job.
is($node->safe_psql('postgres', "SELECT txpipe.unschedule_refresh('cards')"),
	't', 'unschedule_refresh removes a job');
is($node->safe_psql('postgres', "SELECT txpipe.unschedule_refresh('cards')"),
	'f', 'and returns false when there is none');
is( $node->safe_psql('postgres',
		"SELECT txpipe.unschedule_refresh('cards', database => 'shop')"),
	't', 'unschedule_refresh removes the job of another database');
is( $node->safe_psql(
		'postgres', q{
		SELECT string_agg(j.jobname, ' ' ORDER BY j.jobname) FROM cron.job j}),
	'other_job', 'no txpipe job is left');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM cron.job_run_details WHERE jobid IN ($job, $job_shop)"),
	'0', 'and none of their history');

$node->stop;
done_testing();
