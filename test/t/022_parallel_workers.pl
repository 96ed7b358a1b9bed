# Several workers on one pipeline: 2 and then 4 workers drain a backlog in
# which nearly every batch creates dimension keys that the other workers'
# batches create too (cities, merchants and customers shared by cards of
# every queue class).  The result is exact — every transaction once, with
# the dimension rows its record names, no dimension key twice, each card's
# transactions in the order they were queued — and the server log has no
# "deadlock detected": batches meeting on the same new keys wait for each
# other instead.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use Digest::MD5 qw(md5_hex);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

my $records  = 12000;
my $cards    = 3000;
my $cities   = 1500;
my $merchants = 1500;
my $customers = 1500;
my $chunk    = 2000;    # records per enqueue transaction

my $node = txpipe_node('parallel');
# Small batches: more of them, so more meetings on the same new keys.  A
# lock wait longer than txpipe.worker_lock_timeout would end a cycle of
# waits before the deadlock detector (deadlock_timeout, 1 s) sees it, and
# the batch would be taken apart, record by record: with a long lock
# timeout, a cycle shows as a deadlock, and a wait that is no cycle ends
# when the batch waited for commits.
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET txpipe.batch_size = 250;
	ALTER SYSTEM SET txpipe.worker_lock_timeout = '60s';
	SELECT pg_reload_conf();
	SELECT txpipe.stop_worker();});

my @categories = qw(gas_transport grocery_pos home shopping_pos kids_pets shopping_net
  entertainment food_dining personal_care health_fitness misc_pos misc_net grocery_net travel);
my @states = map { chr(65 + $_ / 26) . chr(65 + $_ % 26) } 0 .. 49;

# Deterministic records: record i uses card i % cards, a customer shared by
# two cards (of different classes, mostly), and a city and a merchant drawn
# from pools that every class draws from.  Each record's time is its place
# in the file, so each card's records are queued in time order.
my $seed = 7;
sub next_rand
{
	$seed = ($seed * 1103515245 + 12345) % 2147483648;
	return $seed;
}
my (@docs, @expected, $sum);
$sum = 0;
my $t0 = 1546300800;    # 2019-01-01 00:00:00 UTC
for my $i (0 .. $records - 1)
{
	my $card = $i % $cards;
	my $cust = ($card * 7) % $customers;
	my $city = next_rand() % $cities;
	my $merch = next_rand() % $merchants;
	my $cents = 100 + next_rand() % 50000;
	my $t = $t0 + $i * 60;
	my @tm = gmtime($t);
	my $time = sprintf('%04d-%02d-%02d %02d:%02d:%02d', $tm[5] + 1900, $tm[4] + 1, @tm[3, 2, 1, 0]);
	my %r = (
		trans_date_trans_time => $time,
		cc_num => 4000000000000000 + $card * 7919,
		merchant => "fraud_Merchant $merch",
		category => $categories[ $merch % @categories ],
		amt => sprintf('%d.%02d', $cents / 100, $cents % 100),
		first => "First$cust",
		last => "Last$cust",
		gender => $cust % 2 ? 'F' : 'M',
		street => "$cust Main Street",
		city => "City $city",
		state => $states[ $city % @states ],
		zip => 10000 + $city,
		lat => 40.5,
		long => -75.25,
		city_pop => 1000 + $city,
		job => 'Engineer',
		dob => sprintf('19%02d-%02d-%02d', 50 + $cust % 40, 1 + $cust % 12, 1 + $cust % 28),
		trans_num => md5_hex("parallel $i"),
		unix_time => $t - 1546300800 + 1325376000,
		merch_lat => 41.5,
		merch_long => -76.25,
		is_fraud => 0);
	push @docs, JSON::PP->new->canonical->encode(\%r);
	$docs[-1] =~ s/"amt":"([0-9.]+)"/"amt":$1/;
	push @expected, join('|', @r{qw(trans_num cc_num city state zip merchant category first last dob amt)});
	$sum += $cents;
}
my $expected_md5 = md5_hex(join("\n", sort @expected));
my $expected_totals = sprintf('%d/%.2f', $records, $sum / 100);

# natural keys of each stored transaction, in the shape of @expected
my $stored_md5 = q{
	SELECT pg_catalog.md5(string_agg(concat_ws('|', t.trans_num, ca.cc_num, ci.city, st.state, ci.zip,
					m.merchant, k.category, cu.first, cu.last, cu.dob, t.amt), E'\n' ORDER BY
					concat_ws('|', t.trans_num, ca.cc_num, ci.city, st.state, ci.zip,
					m.merchant, k.category, cu.first, cu.last, cu.dob, t.amt) COLLATE "C"))
	  FROM cards.transaction t
	  JOIN cards.card ca USING (card_id)
	  JOIN cards.merchant m USING (merchant_id)
	  JOIN cards.category k USING (category_id)
	  JOIN cards.customer_version v USING (customer_version_id)
	  JOIN cards.customer cu ON cu.customer_id = v.customer_id
	  JOIN cards.city ci ON ci.city_id = v.city_id
	  JOIN cards.state st ON st.state_id = ci.state_id};

for my $workers (2, 4)
{
	# every key new again: a fresh template
	$node->safe_psql('postgres', q{
		SET client_min_messages = warning;
		DROP SCHEMA IF EXISTS cards CASCADE;
		SELECT txpipe.drop_pipeline(name) FROM txpipe.pipelines WHERE name = 'cards';
		SELECT txpipe.install_template('cards');
		DELETE FROM txpipe.batches WHERE pipeline = 'cards';
		DELETE FROM txpipe.counters WHERE pipeline = 'cards';});
	for (my $from = 0; $from < $records; $from += $chunk)
	{
		my $to = $from + $chunk - 1;
		$to = $records - 1 if $to >= $records;
		my $array = join(",\n", map { "\$r\$$_\$r\$" } @docs[ $from .. $to ]);
		$node->safe_psql('postgres', "SELECT txpipe.enqueue('cards', ARRAY[$array]::text[])");
	}
	is($node->safe_psql('postgres', q{SELECT backlog FROM txpipe.stats WHERE pipeline = 'cards'}),
		$records, "$workers workers: the backlog waits while the workers are stopped");

	my $offset = -s $node->logfile;
	my $deadlocks_before = $node->safe_psql('postgres',
		'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()');
	# the grain table held until every worker is inside a batch: the
	# first worker up cannot drain the backlog before the others start
	my ($lout, $lerr) = ('', '');
	my $locker = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres') . ' application_name=locker',
		  '-c', q{BEGIN; LOCK TABLE cards.transaction IN SHARE MODE; SELECT pg_sleep(300); COMMIT;} ],
		'<', \undef, '>', \$lout, '2>', \$lerr);
	$node->poll_query_until('postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'locker' AND wait_event = 'PgSleep'}, '1');
	$node->safe_psql('postgres', qq{
		ALTER SYSTEM SET txpipe.workers = $workers;
		SELECT pg_reload_conf();
		SELECT txpipe.start_worker();});
	ok($node->poll_query_until('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker'}, $workers),
		"$workers workers run");
	ok($node->poll_query_until('postgres',
			q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'txpipe worker' AND wait_event_type = 'Lock'},
			$workers),
		"$workers workers each wait inside a batch");
	$node->safe_psql('postgres',
		q{SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'locker'});
	$locker->kill_kill;
	ok($node->poll_query_until('postgres',
			q{SELECT backlog = 0 FROM txpipe.stats WHERE pipeline = 'cards'}, 't'),
		"$workers workers drain the backlog");
	$node->safe_psql('postgres', 'SELECT txpipe.stop_worker()');

	is($node->safe_psql('postgres',
			q{SELECT count(*) || '/' || sum(amt) FROM cards.transaction}),
		$expected_totals, "$workers workers: every transaction once, sum(amt) exact");
	is($node->safe_psql('postgres',
			q{SELECT accepted || '/' || rejected || '/' || duplicates FROM txpipe.stats WHERE pipeline = 'cards'}),
		"$records/0/0", "$workers workers: stats count each record once");
	is($node->safe_psql('postgres', $stored_md5), $expected_md5,
		"$workers workers: each transaction has the card, customer, city, state, merchant and category its record names");
	is($node->safe_psql('postgres', q{
			SELECT (SELECT count(*) FROM cards.city) || '/' || (SELECT count(*) FROM cards.merchant)
				|| '/' || (SELECT count(*) FROM cards.customer) || '/' || (SELECT count(*) FROM cards.card)
				|| '/' || (SELECT count(*) FROM cards.state) || '/' || (SELECT count(DISTINCT (state, city, zip)) FROM cards.city c JOIN cards.state USING (state_id))}),
		"$cities/$merchants/$customers/$cards/" . scalar(@states) . "/$cities",
		"$workers workers: no dimension key stored twice");
	is($node->safe_psql('postgres', q{
			SELECT count(*) FROM (
				SELECT unix_time < lag(unix_time) OVER (PARTITION BY card_id ORDER BY transaction_id) AS back
				  FROM cards.transaction) o WHERE back}),
		'0', "$workers workers: each card's transactions stored in the order they were queued");
	# the workers routed side by side: batches of the pipeline that ran
	# at the same time
	my $overlapping = $node->safe_psql('postgres', q{
		SELECT count(*) FROM txpipe.batches a JOIN txpipe.batches b
			ON a.batch_id < b.batch_id AND a.finished_at - a.duration < b.finished_at
		   AND b.finished_at - b.duration < a.finished_at
		 WHERE a.pipeline = 'cards' AND b.pipeline = 'cards'});
	cmp_ok($overlapping, '>', 0, "$workers workers: batches ran at the same time ($overlapping pairs)");

	# a batch retries a deadlock within itself (a savepoint), so the
	# server's count is the one that sees them all; the workers have
	# exited, so their counts are in
	is($node->safe_psql('postgres', 'SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()'),
		$deadlocks_before, "$workers workers: the server detected no deadlock");
	is($node->safe_psql('postgres', q{SELECT sum(retries) FROM txpipe.batches WHERE pipeline = 'cards'}),
		'0', "$workers workers: no batch was rolled back to retry");
	my $log = slurp_file($node->logfile, $offset);
	my @deadlocks = $log =~ /(deadlock detected)/g;
	is(scalar(@deadlocks), 0, "$workers workers: no \"deadlock detected\" in the server log");
	my @timeouts = $log =~ /(lock timeout)/g;
	is(scalar(@timeouts), 0, "$workers workers: no lock timeout in the server log");
}

done_testing();
