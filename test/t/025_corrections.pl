# Corrections reach the cards star: routed transactions updated (fraud
# confirmed later, an amount fixed, an event moved to another month) and
# deleted are reflected by the next incremental refresh, which then equals
# a rebuild, facts and rollups alike.  The change log is written whoever
# changes the rows, is consumed only by the refresh of its own grain table,
# and survives a refresh that does not run.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('corrections');
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");
my $dir = PostgreSQL::Test::Utils::tempdir();
txpipe_gen('cards', "$dir/all.ndjson", '--rows', 12000, '--seed', 25);
open my $in, '<', "$dir/all.ndjson" or die $!;
my @lines = <$in>;
close $in;
for my $p ([ 'a', 0, 7999 ], [ 'b', 8000, 11999 ])
{
	open my $out, '>', "$dir/$p->[0].ndjson" or die $!;
	print $out @lines[ $p->[1] .. $p->[2] ];
	close $out;
}
ok(txpipe_load($node, 'cards', "$dir/a.ndjson"), 'first 8000 records loaded');

my ($truth, $star, $snapshot) = @{ txpipe_cards_totals() }{qw(truth star snapshot)};
my $last_run = q{SELECT status || ' rows=' || rows || ' changes=' || changes
	FROM txpipe.refresh_runs WHERE pipeline = 'cards' ORDER BY run_id DESC LIMIT 1};

sub refresh_matches
{
	my ($what) = @_;
	$node->safe_psql('postgres', q{SELECT txpipe.refresh('cards')});
	my $run = $node->safe_psql('postgres', $last_run);
	like($run, qr/^ok /, "$what: refreshed ($run)");
	is($node->safe_psql('postgres', $star), $node->safe_psql('postgres', $truth),
		"$what: the star holds the transactions (count, amt, fraud, per state)");
	return $run;
}
refresh_matches('first load');

# Fraud confirmed later, amounts fixed, test transactions deleted.
my $changed = $node->safe_psql('postgres', q{
	WITH u1 AS (UPDATE cards.transaction SET is_fraud = NOT is_fraud WHERE transaction_id % 37 = 0 RETURNING transaction_id),
		 u2 AS (UPDATE cards.transaction SET amt = amt + 0.25 WHERE transaction_id % 41 = 0 RETURNING transaction_id),
		 d AS (DELETE FROM cards.transaction WHERE transaction_id % 43 = 0 RETURNING transaction_id)
	SELECT count(DISTINCT id) FROM (SELECT * FROM u1 UNION ALL SELECT * FROM u2 UNION ALL SELECT * FROM d) x(id)});
is($node->safe_psql('postgres', q{SELECT count(DISTINCT id) FROM txpipe.changes}), $changed,
	"every changed transaction is logged ($changed)");
my $run = refresh_matches('updates and deletes');
like($run, qr/ changes=$changed$/, 'the run took the changed ids, and only those');
my ($rows) = $run =~ / rows=(\d+)/;
ok($rows < $changed, "it wrote the facts of the changed rows still there ($rows), not the table");
is($node->safe_psql('postgres', q{SELECT count(*) FROM txpipe.changes}), '0', 'the change log is empty');

# An event moved to another month (a partition the star may not have),
# changes to rows the star has not seen yet, and new rows, in one run.
$node->safe_psql('postgres', q{
	UPDATE cards.transaction SET trans_date_trans_time = trans_date_trans_time + interval '40 days'
	 WHERE transaction_id IN (SELECT transaction_id FROM cards.transaction ORDER BY transaction_id DESC LIMIT 5)});
ok(txpipe_load($node, 'cards', "$dir/b.ndjson"), 'the last 4000 records loaded');
$node->safe_psql('postgres', q{
	UPDATE cards.transaction SET is_fraud = true WHERE transaction_id IN (
		SELECT transaction_id FROM cards.transaction ORDER BY transaction_id DESC LIMIT 7);
	DELETE FROM cards.transaction WHERE transaction_id IN (
		SELECT transaction_id FROM cards.transaction ORDER BY transaction_id DESC LIMIT 3);});
refresh_matches('moved events, changes above the watermark and new rows');
# a rerun with the same ids writes nothing twice
$node->safe_psql('postgres', q{UPDATE cards.transaction SET amt = amt WHERE transaction_id % 101 = 0});
refresh_matches('rows updated to the same values');

# A role that may only correct the fraud flag: its updates are logged,
# and it can neither read nor write the log, nor call the trigger.
$node->safe_psql('postgres', q{
	CREATE ROLE corr_clerk LOGIN;
	GRANT USAGE ON SCHEMA cards TO corr_clerk;
	GRANT SELECT (transaction_id, trans_num), UPDATE (is_fraud) ON cards.transaction TO corr_clerk;});
my ($rc, $out, $err) = $node->psql('postgres',
	q{UPDATE cards.transaction SET is_fraud = true WHERE transaction_id IN (1, 2, 3)},
	extra_params => [ '-U', 'corr_clerk' ]);
is($rc, 0, 'the clerk corrects the flag') or diag $err;
for my $try ([ q{SELECT count(*) FROM txpipe.changes}, 'read the change log' ],
	[ q{INSERT INTO txpipe.changes VALUES ('cards.transaction', 5)}, 'write the change log' ],
	[ q{SELECT txpipe.track_change()}, 'call txpipe.track_change()' ],
	[ q{CREATE TRIGGER t AFTER DELETE ON cards.transaction FOR EACH ROW EXECUTE FUNCTION txpipe.track_change('transaction_id')}, 'attach the trigger to the grain table' ])
{
	($rc, $out, $err) = $node->psql('postgres', $try->[0], extra_params => [ '-U', 'corr_clerk' ]);
	isnt($rc, 0, "the clerk cannot $try->[1]");
	like($err, qr/permission denied|must be owner/, "... refused: permission denied ($try->[1])");
}
refresh_matches("the clerk's corrections");

# An admin's own table with the trigger: its ids are logged under its own
# table, and no pipeline's refresh takes them.
$node->safe_psql('postgres', q{
	CREATE ROLE corr_admin LOGIN IN ROLE txpipe_admin;
	CREATE SCHEMA corr_own AUTHORIZATION corr_admin;});
($rc, $out, $err) = $node->psql('postgres', q{
	CREATE TABLE corr_own.t (id bigint PRIMARY KEY);
	CREATE TRIGGER t AFTER UPDATE OR DELETE ON corr_own.t FOR EACH ROW EXECUTE FUNCTION txpipe.track_change('id');
	INSERT INTO corr_own.t SELECT g FROM generate_series(1, 10) g;
	DELETE FROM corr_own.t WHERE id <= 4;}, extra_params => [ '-U', 'corr_admin' ]);
is($rc, 0, 'a txpipe_admin member attaches the trigger to a table of its own') or diag $err;
$node->safe_psql('postgres', q{UPDATE cards.transaction SET amt = amt + 1 WHERE transaction_id = 10});
refresh_matches('next to another table\'s log rows');
is($node->safe_psql('postgres', q{SELECT string_agg(relid::text || ':' || id, ',' ORDER BY id) FROM txpipe.changes}),
	'corr_own.t:1,corr_own.t:2,corr_own.t:3,corr_own.t:4', 'the other table\'s rows stay, under its name');
($rc, $out, $err) = $node->psql('postgres',
	q{CREATE TABLE corr_own.u (id bigint); CREATE TRIGGER u AFTER DELETE ON corr_own.u FOR EACH STATEMENT EXECUTE FUNCTION txpipe.track_change('id'); INSERT INTO corr_own.u VALUES (1); DELETE FROM corr_own.u;},
	extra_params => [ '-U', 'corr_admin' ]);
like($err, qr/must be an AFTER \.\.\. FOR EACH ROW trigger/, 'a statement trigger is refused with a clear error');

# A run that cannot take its bound leaves the log as it was.
my $w = $node->background_psql('postgres');
$w->query_safe('BEGIN');
$w->query_safe(q{UPDATE cards.transaction SET is_fraud = NOT is_fraud WHERE transaction_id IN (20, 21)});
$node->safe_psql('postgres', q{UPDATE cards.transaction SET amt = amt + 1 WHERE transaction_id = 22});
my $r = $node->safe_psql('postgres', q{SET lock_timeout = '200ms'; SELECT status FROM txpipe.refresh('cards')});
is($r, 'skipped', 'a refresh that waits too long for a writer is skipped');
is($node->safe_psql('postgres', q{SELECT string_agg(id::text, ',') FROM txpipe.changes WHERE relid = 'cards.transaction'::regclass}),
	'22', 'and gives the ids it took back');
$w->query_safe('COMMIT');
$w->quit;
refresh_matches('after the skipped run');

# Incremental equals rebuild.
my $inc = $node->safe_psql('postgres', $snapshot);
$node->safe_psql('postgres', q{SELECT txpipe.refresh('cards', full => true)});
is($node->safe_psql('postgres', $snapshot), $inc, 'the incremental star and rollups equal a rebuild');

# The two-argument form still refreshes by range, leaving corrections out.
is($node->safe_psql('postgres', q{SELECT cards.refresh_star(0, 0) >= 0}), 't', 'refresh_star(lo, hi) still runs');

$node->stop;
done_testing();
