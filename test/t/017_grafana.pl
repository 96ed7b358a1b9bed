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

use JSON::PP;
use POSIX qw(floor strftime);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::Local qw(timegm);
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
		"SELECT backlog = 0 AND accepted >= 50 FROM txpipe.stats WHERE pipeline = 'cards'"),
	'the worker routes the queued records');
$node->safe_psql('postgres', 'CREATE ROLE grafana LOGIN IN ROLE txpipe_reader');

# what a user types into a textbox: a real card and its holder's birthday
my ($card, $dob) = split /\|/, $node->safe_psql('postgres', q{
	SELECT ca.cc_num, cu.dob FROM cards.card ca JOIN cards.customer cu USING (customer_id)
	 ORDER BY ca.card_id LIMIT 1});
my %typed = (card => $card, dob => $dob);

# ------------------------------------------------------------ Grafana's expansion
# a time of the dashboard's range: an absolute time or now[-N(s|m|h|d)]
sub grafana_time
{
	my ($t) = @_;
	return time() if $t eq 'now';
	if ($t =~ /^now-(\d+)([smhdw])$/)
	{
		my %unit = (s => 1, m => 60, h => 3600, d => 86400, w => 604800);
		return time() - $1 * $unit{$2};
	}
	$t =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)/ or die "time $t";
	return timegm($6, $5, $4, $3, $2 - 1, $1);
}

sub rfc3339 { return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])); }

# Grafana's interval for a range drawn on ~1,000 points, rounded up to one
# of its steps; as text ("5m") and in ms
sub grafana_interval
{
	my ($from, $to) = @_;
	my $raw = ($to - $from) / 1000;
	my @steps = ([ 1, '1s' ], [ 5, '5s' ], [ 10, '10s' ], [ 30, '30s' ], [ 60, '1m' ], [ 300, '5m' ],
		[ 600, '10m' ], [ 1800, '30m' ], [ 3600, '1h' ], [ 10800, '3h' ], [ 21600, '6h' ],
		[ 43200, '12h' ], [ 86400, '1d' ], [ 604800, '7d' ]);
	for my $s (@steps) { return ($s->[1], $s->[0] * 1000) if $s->[0] >= $raw; }
	return ('7d', 604800000);
}

sub seconds_of
{
	my ($i) = @_;
	$i =~ s/^'|'$//g;
	my %unit = (ms => 0.001, s => 1, m => 60, h => 3600, d => 86400, w => 604800);
	$i =~ /^(\d+)(ms|s|m|h|d|w)$/ or die "interval $i";
	return $1 * $unit{$2};
}

# the macros of Grafana's postgres data source (macros.go)
sub expand_macros
{
	my ($sql, $from, $to) = @_;
	my $out = '';
	while ($sql =~ /\$([_a-zA-Z0-9]+)\(([^\)]*)\)/)
	{
		my ($pre, $name, $argstr, $post) = ($`, $1, $2, $');
		my @args = map { s/^\s+|\s+$//gr } split /,/, $argstr, -1;
		# $__timeGroup followed by a comma is the alias form (before 5.3)
		$name = '__timeGroupAlias' if $name eq '__timeGroup' && $post =~ /^,/;
		my $r;
		if    ($name eq '__time')      { $r = "$args[0] AS \"time\""; }
		elsif ($name eq '__timeEpoch') { $r = "extract(epoch from $args[0]) as \"time\""; }
		elsif ($name eq '__timeFilter')
		{
			$r = "$args[0] BETWEEN '" . rfc3339($from) . "' AND '" . rfc3339($to) . "'";
		}
		elsif ($name eq '__timeFrom') { $r = "'" . rfc3339($from) . "'"; }
		elsif ($name eq '__timeTo')   { $r = "'" . rfc3339($to) . "'"; }
		elsif ($name eq '__timeGroup' || $name eq '__timeGroupAlias')
		{
			my $s = seconds_of($args[1]);
			$r = "floor(extract(epoch from $args[0])/$s)*$s";
			$r .= ' AS "time"' if $name eq '__timeGroupAlias';
		}
		elsif ($name eq '__unixEpochFilter') { $r = "$args[0] >= $from AND $args[0] <= $to"; }
		elsif ($name eq '__unixEpochFrom')   { $r = "$from"; }
		elsif ($name eq '__unixEpochTo')     { $r = "$to"; }
		else                                 { die "unknown macro \$$name"; }
		$out .= $pre . $r;
		$sql = $post;
	}
	return $out . $sql;
}

# dashboard variables, then $__interval and $__interval_ms (as the
# front end does before the data source sees the query)
sub expand_vars
{
	my ($sql, $vars, $interval, $ms) = @_;
	$sql =~ s/\$__interval_ms\b/$ms/g;
	$sql =~ s/\$__interval\b/$interval/g;
	for my $v (sort { length($b) <=> length($a) } keys %$vars)
	{
		(my $val = $vars->{$v}) =~ s/'/''/g;
		$sql =~ s/\$\{\Q$v\E\}|\[\[\Q$v\E\]\]|\$\Q$v\E\b/$val/g;
	}
	return $sql;
}

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
			cmp_ok($n, '>', 0, "$what returns rows");
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
