# The warehouse on a logical replica: the cards template's normalized
# tables are published by one server and subscribed by another, where the
# star is refreshed.  Writers on the primary overlap, and one commits
# after a writer that drew higher ids (so the replica receives ids out of
# their order); routed rows are corrected and deleted on the primary.
# After each step the replica's star (facts and rollups) holds exactly the
# primary's normalized tables: count, sum(amt), fraud, per state; and an
# incremental refresh there equals a rebuild.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $primary = txpipe_node('primary', "wal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\n");
my $replica = txpipe_node('replica');
for my $n ($primary, $replica)
{
	$n->safe_psql('postgres', q{SELECT txpipe.install_template('cards')});
}

my $dir = PostgreSQL::Test::Utils::tempdir();
txpipe_gen('cards', "$dir/all.ndjson", '--rows', '6000', '--seed', '24');
open my $in, '<', "$dir/all.ndjson" or die $!;
my @lines = <$in>;
close $in;
chomp @lines;
sub write_part
{
	my ($name, $from, $to) = @_;
	open my $out, '>', "$dir/$name" or die $!;
	print $out "$_\n" for @lines[ $from .. $to ];
	close $out;
	return "$dir/$name";
}

ok(txpipe_load($primary, 'cards', write_part('first.ndjson', 0, 2999)), 'first 3000 records loaded on the primary');

my $tables = join ', ', map { "cards.$_" } qw(state city customer customer_version card category merchant transaction);
$primary->safe_psql('postgres', "CREATE PUBLICATION cards_pub FOR TABLE $tables");
my $connstr = $primary->connstr('postgres');
$connstr =~ s/'/''/g;
$replica->safe_psql('postgres',
	"CREATE SUBSCRIPTION cards_sub CONNECTION '$connstr' PUBLICATION cards_pub");
$replica->wait_for_subscription_sync($primary, 'cards_sub');

# totals of the primary's transactions, of the replica's star, and its rows
my ($truth, $star, $snapshot) = @{ txpipe_cards_totals() }{qw(truth star snapshot)};

sub refresh_replica
{
	my ($what) = @_;
	my $r = $replica->safe_psql('postgres',
		q{SELECT status || ' ' || rows FROM txpipe.refresh('cards')});
	like($r, qr/^ok /, "$what: the replica's refresh ran ($r)");
	return;
}

sub star_matches
{
	my ($what) = @_;
	$primary->wait_for_catchup('cards_sub');
	refresh_replica($what);
	my $want = $primary->safe_psql('postgres', $truth);
	my $got  = $replica->safe_psql('postgres', $star);
	is($got, $want, "$what: the replica's star holds the primary's transactions (count, amt, fraud, per state)");
	return;
}

star_matches('initial copy');

# Two writers overlap: A draws its ids first and commits last.
my $sa = $primary->background_psql('postgres');
my $sb = $primary->background_psql('postgres');
# Writers that meet on a new dimension key wait for each other (its
# unique index), and so do writers on the same card (its alert state), so
# the overlapping writers below send records of cards of their own, whose
# dimension keys the first load stored already: each then commits when it
# likes.
my (%seen, @pool, @rest, %card);
sub keys_of
{
	my ($r) = @_;
	my $zip = sprintf('%05d', $r->{zip});
	my $cust = join '|', @$r{qw(first last dob)};
	my $city = join '|', $r->{state}, $r->{city}, $zip;
	return ("s:$r->{state}", "c:$city", "u:$cust", "v:$cust|$r->{job}|$r->{street}|$city",
		"k:$r->{cc_num}", "g:$r->{category}", "m:$r->{merchant}");
}
my $json = JSON::PP->new;
for my $i (0 .. $#lines)
{
	my $r = $json->decode($lines[$i]);
	my @k = keys_of($r);
	$card{$i} = $r->{cc_num};
	if ($i < 3000) { $seen{$_} = 1 for @k; next; }
	if (grep { !$seen{$_} } @k) { push @rest, $i; } else { push @pool, $i; }
}
note scalar(@pool) . ' records with stored keys, ' . scalar(@rest) . ' with new ones';
my $part = 0;
# a COPY of the records with these indexes, and the query for their ids
sub send_part
{
	my ($s, @idx) = @_;
	my $file = "$dir/part" . $part++ . '.ndjson';
	open my $out, '>', $file or die $!;
	print $out "$lines[$_]\n" for @idx;
	close $out;
	$s->query_safe("\\copy txpipe_in.cards FROM '$file'");
	my $nums = join ',', map { $json->decode($lines[$_])->{trans_num} } @idx;
	return $s->query_safe(qq{SELECT min(transaction_id) || ' ' || max(transaction_id)
		FROM cards.transaction WHERE trans_num = ANY ('{$nums}')});
}
$sa->query_safe('BEGIN');
# the first N records of the pool whose card is W modulo M
sub take
{
	my ($n, $w, $m) = @_;
	my (@got, @keep);
	for my $i (@pool)
	{
		if (@got < $n && $card{$i} % $m == $w) { push @got, $i; } else { push @keep, $i; }
	}
	@pool = @keep;
	return @got;
}
my $ids_a = send_part($sa, take(150, 0, 2));
$sb->query_safe('BEGIN');
my $ids_b = send_part($sb, take(150, 1, 2));
$sb->query_safe('COMMIT');
my ($a_lo, $a_hi) = split / /, $ids_a;
my ($b_lo, $b_hi) = split / /, $ids_b;
ok($a_hi < $b_lo, "writer A holds the lower ids ($ids_a), writer B the higher ($ids_b), and B commits first");
star_matches('after B committed, A still open');
$sa->query_safe('COMMIT');
star_matches('after A committed its lower ids');

# Many overlapping writers at once, each committing in its own time.
my @bg = map { $primary->background_psql('postgres') } 1 .. 4;
for my $round (1 .. 3)
{
	for my $w (0 .. $#bg)
	{
		$bg[$w]->query_safe('BEGIN');
		send_part($bg[$w], take(60, $w, scalar @bg));
	}
	$_->query_safe('COMMIT') for reverse @bg;
	star_matches("round $round of 4 writers committing in reverse order");
}
$_->quit for @bg, $sa, $sb;

# Corrections on the primary reach the replica's star.
$primary->safe_psql('postgres', q{
	UPDATE cards.transaction SET is_fraud = NOT is_fraud WHERE transaction_id % 17 = 0;
	UPDATE cards.transaction SET amt = amt + 10 WHERE transaction_id % 23 = 0;
	DELETE FROM cards.transaction WHERE transaction_id % 29 = 0;});
star_matches('after updates and deletes on the primary');

# The rest, by COPY, while the replica refreshes in between.
{
	open my $out, '>', "$dir/last.ndjson" or die $!;
	print $out "$lines[$_]\n" for sort { $a <=> $b } @pool, @rest;
	close $out;
}
ok(txpipe_load($primary, 'cards', "$dir/last.ndjson"), 'the remaining records loaded');
star_matches('after the last load');
my $runs = $replica->safe_psql('postgres',
	q{SELECT count(*) FILTER (WHERE changes > 0) FROM txpipe.refresh_runs WHERE pipeline = 'cards' AND status = 'ok'});
ok($runs >= 5, "the replica's runs took their rows from the change log ($runs runs)");

my $inc = $replica->safe_psql('postgres', $snapshot);
$replica->safe_psql('postgres', q{SELECT txpipe.refresh('cards', full => true)});
is($replica->safe_psql('postgres', $snapshot), $inc, "the replica's incremental star equals its rebuild");
is($replica->safe_psql('postgres', q{SELECT count(*) FROM txpipe.changes}), '0', 'the change log is empty');

# The primary's own star, refreshed by watermark and change log, too.
$primary->safe_psql('postgres', q{SELECT txpipe.refresh('cards')});
is($primary->safe_psql('postgres', $star), $primary->safe_psql('postgres', $truth),
	"the primary's star holds its transactions");
is($primary->safe_psql('postgres', $snapshot), $replica->safe_psql('postgres', $snapshot),
	"the primary's star and the replica's are the same rows");

$replica->safe_psql('postgres', 'DROP SUBSCRIPTION cards_sub');
$replica->stop;
$primary->stop;
done_testing();
