# Each seed of the generator makes records of its own: a file of another
# seed, loaded into the same pipeline, shares no identity with the first
# (cards: no trans_num; retail and clicks: no line's or event's content).
# Its only duplicates are its own deliberate ones, and nothing of it is a
# key_conflict.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('seeds');
my $dir  = PostgreSQL::Test::Utils::tempdir();

# the grain table of each template: one row per valid record
my %grain = (cards => 'transaction', retail => 'invoice_line', clicks => 'event');
my %rows  = (cards => 3000, retail => 2000, clicks => 3000);

for my $t (sort keys %grain)
{
	$node->safe_psql('postgres', "SELECT txpipe.install_template('$t')");
	my %s;
	for my $seed (42, 43)
	{
		$s{$seed} = txpipe_gen($t, "$dir/$t.$seed.ndjson", '--rows', $rows{$t},
			'--seed', $seed, '--bad', '0.01', '--dups', '0.01');
		is($s{$seed}{valid} + $s{$seed}{bad} + $s{$seed}{dups},
			$rows{$t}, "$t seed $seed: valid + bad + dups = rows");
	}
	isnt(slurp_file("$dir/$t.43.ndjson"), slurp_file("$dir/$t.42.ndjson"),
		"$t: another seed, another file");

	ok(txpipe_load($node, $t, "$dir/$t.42.ndjson"), "$t: seed 42 loads");
	my $st42 = txpipe_stats($node, $t);
	ok(txpipe_load($node, $t, "$dir/$t.43.ndjson"), "$t: seed 43 loads");
	my $st43 = txpipe_stats($node, $t);

	is($st43->{duplicates} - $st42->{duplicates},
		$s{43}{dups}, "$t: seed 43's duplicates are only its own");
	is($st43->{accepted} - $st42->{accepted},
		$s{43}{valid}, "$t: every valid record of seed 43 is accepted");
	is($st43->{rejected} - $st42->{rejected},
		$s{43}{bad}, "$t: seed 43's rejects are only its bad records");
	is( $node->safe_psql('postgres', "SELECT count(*) FROM $t.$grain{$t}"),
		$s{42}{valid} + $s{43}{valid},
		"$t: the grain table holds both seeds' records");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM txpipe.rejects WHERE pipeline = '$t' AND error_code = 'key_conflict'"),
		0, "$t: no record of one seed has a key of the other");
}

$node->stop;
done_testing();
