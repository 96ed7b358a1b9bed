# Sustained load on the queue: 16 clients enqueue card records for 60 s
# (pgbench, 2,000 records/s in all).  Nothing is lost, the inbox stays
# bounded while it runs (routed slots are truncated), and the worker's
# memory stays flat.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use TxpipeTest;

my $seconds = $ENV{TXPIPE_LOAD_SECONDS} || 60;
my $rate    = 2000;

my $node = txpipe_node('load');
$node->append_conf('postgresql.conf', 'txpipe.inbox_slot_seconds = 2');
$node->reload;
$node->safe_psql(
	'postgres', q{
	SELECT txpipe.install_template('cards');
	SELECT txpipe.start_worker();
	CREATE FUNCTION load_doc(n bigint) RETURNS jsonb LANGUAGE sql AS $$
		SELECT jsonb_build_object(
			'trans_date_trans_time', to_char('2020-03-01'::timestamp + (n % 1000000) * interval '1 minute', 'YYYY-MM-DD HH24:MI:SS'),
			'cc_num', 4100000000000000 + n % 500, 'merchant', 'fraud_M' || n % 300,
			'category', 'grocery_pos', 'amt', (n % 10000) / 100.0 + 1,
			'first', 'F' || n % 500, 'last', 'L', 'gender', 'F',
			'street', n % 500 || ' Oak St', 'city', 'C' || n % 50,
			'state', (ARRAY['NY', 'TX', 'CA', 'WA'])[n % 4 + 1], 'zip', 10000 + n % 50,
			'lat', 40, 'long', -75, 'city_pop', 100, 'job', 'Clerk',
			'dob', '1980-02-01', 'trans_num', md5(random()::text || clock_timestamp()::text || n),
			'unix_time', 1583020800 + n % 1000000, 'merch_lat', 40, 'merch_long', -75, 'is_fraud', (n % 97 = 0)::int)
	$$;});

my $dir    = PostgreSQL::Test::Utils::tempdir();
my $script = "$dir/enqueue.sql";
open my $fh, '>', $script or die $!;
print $fh "\\set n random(1, 1000000000)\n";
print $fh "SELECT txpipe.enqueue('cards', load_doc(:n));\n";
close $fh or die $!;

my ($out, $err) = ('', '');
my $pgbench;
{
	local $ENV{PGHOST}     = $node->host;
	local $ENV{PGPORT}     = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	$pgbench = IPC::Run::start(
		[ 'pgbench', '-n', '-c', 16, '-j', 4, '-T', $seconds, '-R', $rate, '-f', $script ],
		'<', \undef, '>', \$out, '2>', \$err);
}

sub worker_private_kb
{
	my $pid = $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'txpipe worker' LIMIT 1});
	# RssAnon: the worker's own memory; shared buffers it touches are not
	return undef if $pid eq '' || !open(my $sm, '<', "/proc/$pid/status");
	my $kb = 0;
	while (<$sm>)
	{
		$kb += $1 if /^RssAnon:\s+(\d+) kB/;
	}
	return $kb;
}

my $start = time;
my (@inbox, @mem);
while ($pgbench->pumpable)
{
	$pgbench->pump_nb;
	my $t = time - $start;
	push @inbox, $node->safe_psql('postgres', 'SELECT count(*) FROM txpipe.inbox');
	push @mem, [ $t, worker_private_kb() ];
	last if $t > $seconds + 30;
	sleep(2);
}
$pgbench->finish;
note "pgbench:\n$out$err";
my ($sent) = $out =~ /number of transactions actually processed: (\d+)/;
my ($failed) = $out =~ /number of failed transactions: (\d+)/;
# the rate a loaded machine reaches is the bench's business; here it only
# has to be sustained load
ok(defined $sent && $sent > $seconds * 100,
	"16 clients enqueued for $seconds s at up to $rate records/s: " . ($sent // 'none') . ' records');
is($failed // 0, 0, 'no enqueue failed');
unlike($err, qr/aborted/, 'no client aborted');

ok( $node->poll_query_until(
		'postgres', q{SELECT backlog = 0 FROM txpipe.stats WHERE pipeline = 'cards'}, 't'),
	'the worker drains the queue');
is($node->safe_psql('postgres', 'SELECT count(*) FROM cards.transaction'),
	$sent, 'every enqueued record is routed exactly once');
my $st = txpipe_stats($node, 'cards');
is("$st->{accepted}/$st->{rejected}/$st->{duplicates}", "$sent/0/0", 'stats agree');

my $max_inbox = (sort { $b <=> $a } @inbox)[0];
note "inbox rows sampled every 2 s: @inbox";
ok($max_inbox < $sent / 3,
	"the inbox stays bounded: at most $max_inbox rows while $sent went through");
ok( $node->poll_query_until('postgres', 'SELECT count(*) < 1000 FROM txpipe.inbox', 't'),
	'once drained, the routed slots are truncated');

my @m = grep { defined $_->[1] && $_->[0] <= $seconds } @mem;
note 'worker private memory (s: kB): ' . join(' ', map { sprintf('%.0f:%d', @$_) } @m);
my @early = grep { $_->[0] >= $seconds / 4 && $_->[0] < $seconds / 2 } @m;
my @late  = grep { $_->[0] >= $seconds * 3 / 4 } @m;
SKIP:
{
	skip 'worker memory not readable', 1 unless @early && @late;
	my $grow = (sort { $b <=> $a } map { $_->[1] } @late)[0] - (sort { $b <=> $a } map { $_->[1] } @early)[0];
	ok($grow < 8192, "worker memory flat: grew $grow kB from the second quarter to the last");
}

$node->stop;
done_testing();
