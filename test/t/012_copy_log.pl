# The server log and card numbers: an error raised while COPY routes its
# lines (a lock timeout, a statement timeout) is logged with the COPY's
# line number, never with the line, which holds the card number; a
# refused record becomes a reject and is not logged at all.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

my $node = txpipe_node('copy_log');
# a prepared transaction holds a lock with no session to keep open
$node->append_conf('postgresql.conf', 'max_prepared_transactions = 2');
$node->restart;
$node->safe_psql('postgres', "SELECT txpipe.install_template('cards')");
my $dir = PostgreSQL::Test::Utils::tempdir();

my $cc = '4556737586899855';
my $dob = '1968-04-13';

sub record
{
	my ($n, %over) = @_;
	my %r = (
		trans_date_trans_time => sprintf('2019-07-01 10:%02d:00', $n),
		cc_num => $cc, merchant => '"fraud_Log Shop"', category => '"grocery_pos"',
		amt => '12.50', first => '"Eve"', last => '"Moss"', gender => '"F"',
		street => '"1 Log St"', city => '"Albany"', state => '"NY"', zip => 12201,
		lat => 42.6, long => -73.7, city_pop => 97000, job => '"Clerk"', dob => "\"$dob\"",
		trans_num => sprintf('"%032x"', 0xc0de00 + $n), unix_time => 1561975200 + $n * 60,
		merch_lat => 42.7, merch_long => -73.8, is_fraud => 0, %over);
	$r{trans_date_trans_time} = "\"$r{trans_date_trans_time}\"";
	return '{' . join(', ', map { "\"$_\": $r{$_}" } sort keys %r) . '}';
}

sub copy_file
{
	my ($name, @lines) = @_;
	my $file = "$dir/$name.ndjson";
	open my $fh, '>', $file or die "$file: $!";
	print $fh "$_\n" for @lines;
	close $fh;
	chmod 0644, $file;
	return qq{COPY txpipe_in.cards FROM '$file' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')};
}

my $copy = copy_file('five', map { record($_) } 1 .. 5);

# another transaction holds the card table: routing the second line's
# batch (batch_size 2) waits, inside COPY's row trigger, until a timeout
$node->safe_psql('postgres', q{
	BEGIN;
	LOCK TABLE cards.card IN ACCESS EXCLUSIVE MODE;
	PREPARE TRANSACTION 'hold_cards';});

my $offset = -s $node->logfile;
my ($rc, $out, $err) = $node->psql('postgres', "SET txpipe.batch_size = 2; SET lock_timeout = '200ms'; $copy");
like($err, qr/canceling statement due to lock timeout/, 'COPY fails with a lock timeout while it routes');
like($err, qr/COPY cards, line 2/, 'the error names the line it stopped at');

($rc, $out, $err) = $node->psql('postgres', "SET txpipe.batch_size = 2; SET statement_timeout = '300ms'; $copy");
like($err, qr/canceling statement due to statement timeout/, 'COPY fails with a statement timeout while it routes');

$node->safe_psql('postgres', q{ROLLBACK PREPARED 'hold_cards'});

# a refused record is a reject, not a log line
$node->safe_psql('postgres', copy_file('refused', record(10), record(11, category => '"stolen_goods"')));
is($node->safe_psql('postgres', 'SELECT count(*) FROM cards.transaction'), '1', 'the good record is routed');
is($node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.rejects'), '1', 'the refused one is a reject');

my $log = slurp_file($node->logfile, $offset);
like($log, qr/CONTEXT:  COPY cards, line 2\n/, 'the server log has the COPY line number as the context');
like($log, qr/statement timeout/, 'and both errors');
unlike($log, qr/\Q$cc\E/, 'the server log has no card number');
unlike($log, qr/\Q$dob\E|Moss/, 'nor anything else of the records');

done_testing();
