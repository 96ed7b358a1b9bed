# The Grafana dashboards under grafana/, checked the way Grafana would run
# them (Grafana itself is not installed here): every dashboard is valid
# JSON with a unique uid, and every panel and variable names the
# provisioned data source.  On generated data in the three templates,
# refreshed, each variable takes the first value of its own query (a
# textbox the value a user would type: a real card number and its holder's
# date of birth), and each panel's query, with the variables and Grafana's
# PostgreSQL macros expanded as the data source does ($__timeFilter,
# $__timeFrom/$__timeTo, $__timeGroup/$__timeGroupAlias, $__time,
# $__timeEpoch, $__unixEpochFilter/From/To, $__interval, $__interval_ms),
# runs as the data source's login (a member of txpipe_reader only) in a
# read-only transaction: no error, rows returned, and the columns its panel
# needs (a time column first for a time series, named columns for a table).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use GrafanaDash;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $grafana = "$FindBin::RealBin/../../grafana";
-d "$grafana/dashboards" or BAIL_OUT("no dashboards under $grafana");

# ------------------------------------------------------------ the files
my $ds_yaml = slurp_file("$grafana/provisioning/datasources/txpipe.yaml");
my ($ds_uid)  = $ds_yaml =~ /^\s+uid:\s*(\S+)\s*$/m;
my ($ds_type) = $ds_yaml =~ /^\s+type:\s*(\S+)\s*$/m;
ok(defined $ds_uid, "the data source has uid $ds_uid");
like($ds_yaml, qr/password:\s*\$\{TXPIPE_PG_PASSWORD\}/, 'its password comes from the environment');
like(slurp_file("$grafana/provisioning/dashboards/txpipe.yaml"),
	qr/type:\s*file/, 'a file provider serves the dashboards');

my (%uids, @dashboards);
for my $file (sort glob("$grafana/dashboards/*.json"))
{
	my $d = eval { JSON::PP->new->decode(slurp_file($file)) };
	ok($d, "$file is valid JSON") or next;
	ok($d->{uid} && !$uids{ $d->{uid} }++, "$file: uid $d->{uid} is unique");
	my @ds = map { ($_->{datasource}, map { $_->{datasource} } @{ $_->{targets} }) } @{ $d->{panels} };
	push @ds, map { $_->{datasource} } grep { $_->{type} eq 'query' } @{ $d->{templating}{list} };
	is(scalar(grep { !$_ || $_->{uid} ne $ds_uid || $_->{type} ne $ds_type } @ds), 0,
		"$file: every panel, query and variable uses the provisioned data source");
	push @dashboards, $d;
}
is(scalar @dashboards, 5, 'five dashboards');

# ------------------------------------------------------------ the data
my $node = txpipe_node('grafana');
my $dir  = PostgreSQL::Test::Utils::tempdir();
my %rows = (cards => 20000, retail => 10000, clicks => 20000);
for my $t (sort keys %rows)
{
	$node->safe_psql('postgres', "SELECT txpipe.install_template('$t')");
	txpipe_gen($t, "$dir/$t.ndjson", '--rows', $rows{$t}, '--seed', 7, '--bad', '0.01', '--dups', '0.01');
	ok(txpipe_load($node, $t, "$dir/$t.ndjson"), "$t: generated records load");
	is($node->safe_psql('postgres', "SELECT status FROM txpipe.refresh('$t')"), 'ok', "$t: the star refreshes");
}
# the queue path and a worker, for the pipeline dashboard
$node->safe_psql('postgres', 'SELECT txpipe.start_worker()');
txpipe_gen('cards', "$dir/queued.ndjson", '--rows', 50, '--seed', 8);
$node->safe_psql('postgres', qq{
	SELECT txpipe.enqueue('cards', line)
	  FROM regexp_split_to_table(rtrim(pg_read_file('$dir/queued.ndjson'), e'\\n'), e'\\n') AS line});
ok( $node->poll_query_until('postgres',
		"SELECT backlog = 0 AND EXISTS (SELECT 1 FROM txpipe.batches WHERE pipeline = 'cards' AND source = 'queue') FROM txpipe.stats WHERE pipeline = 'cards'"),
	'the worker routes the queued records');
$node->safe_psql('postgres', 'CREATE ROLE grafana LOGIN IN ROLE txpipe_reader');

# what a user types into a textbox: a real card and its holder's birthday
my ($card, $dob) = split /\|/, $node->safe_psql('postgres', q{
	SELECT ca.cc_num, cu.dob FROM cards.card ca JOIN cards.customer cu USING (customer_id)
	 ORDER BY ca.card_id LIMIT 1});
my %typed = (card => $card, dob => $dob);

# runs a query as the data source's login, read only; returns (ok,
# [[name, type]...], rows, stderr)
sub run_as_grafana
{
	my ($sql) = @_;
	my $script = "BEGIN READ ONLY;\nSET LOCAL statement_timeout = '20s';\n$sql \\gdesc\n"
	  . "\\echo ===\nSELECT count(*) FROM ($sql) AS q;\nROLLBACK;\n";
	my ($ret, $out, $err) = $node->psql('postgres', $script,
		extra_params => [ '-U', 'grafana', '-v', 'ON_ERROR_STOP=1' ]);
	my ($desc, $count) = split /^===\n/m, $out // '';
	my @cols = map { [ split /\|/ ] } grep { length } split /\n/, $desc // '';
	return ($ret == 0, \@cols, ($count // '') =~ /(\d+)/ ? $1 : -1, $err);
}

# ------------------------------------------------------------ every panel
for my $d (@dashboards)
{
	my $from = grafana_time($d->{time}{from});
	my $to   = grafana_time($d->{time}{to});
	my ($interval, $ms) = grafana_interval($from, $to);
	my %vars;
	for my $v (@{ $d->{templating}{list} })
	{
		if ($v->{type} eq 'textbox')
		{
			$vars{ $v->{name} } = $typed{ $v->{name} } // $v->{query};
			next;
		}
		my $q = expand_macros(expand_vars($v->{query}, \%vars, $interval, $ms), $from, $to);
		my ($ok, $cols, $n, $err) = run_as_grafana($q);
		ok($ok && $n > 0, "$d->{uid}: variable $v->{name} has values") or diag($err);
		my ($vi) = grep { $cols->[$_][0] eq '__value' } 0 .. $#$cols;
		my $first = $node->safe_psql('postgres', "SET ROLE grafana; $q LIMIT 1", extra_params => [ '-F', "\t" ]);
		$vars{ $v->{name} } = (split /\t/, (split /\n/, $first)[0] // '')[ $vi // 0 ];
		note "$d->{uid}: \$$v->{name} = $vars{ $v->{name} }";
	}
	for my $p (@{ $d->{panels} })
	{
		for my $target (@{ $p->{targets} })
		{
			my $sql = expand_macros(expand_vars($target->{rawSql}, \%vars, $interval, $ms), $from, $to);
			my ($ok, $cols, $n, $err) = run_as_grafana($sql);
			my $what = "$d->{uid}: \"$p->{title}\"";
			ok($ok, "$what runs as the reader, read only") or diag("$err\n$sql");
			cmp_ok($n, '>', 0, "$what returns rows") or diag($sql);
			if ($target->{format} eq 'time_series')
			{
				ok( @$cols && $cols->[0][0] eq 'time'
					  && $cols->[0][1] =~ /^(timestamp|double precision|numeric|bigint|integer)/,
					"$what: a time column first ($cols->[0][0] $cols->[0][1])");
				ok((grep { $_->[1] =~ /^(bigint|integer|numeric|double|real|smallint)/ } @$cols[ 1 .. $#$cols ]),
					"$what: numeric values after it");
			}
			else
			{
				my %seen;
				is(scalar(grep { $_->[0] eq '?column?' || $seen{ $_->[0] }++ } @$cols), 0,
					"$what: named columns (@{[ join ', ', map { $_->[0] } @$cols ]})");
			}
		}
	}
}

$node->stop;
done_testing();
