# Helpers for txpipe's TAP tests: a node with test/server.conf and the
# extension, and the client (TXPIPE_CLIENT, default client/txpipe) to
# generate and load data.
package TxpipeTest;

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(txpipe_client txpipe_require_client txpipe_node txpipe_gen
  txpipe_load txpipe_stream txpipe_stats txpipe_counts txpipe_counts_query txpipe_views_match
  txpipe_cards_totals);

my $testdir = dirname(abs_path(__FILE__));

sub txpipe_client
{
	return $ENV{TXPIPE_CLIENT} || "$testdir/../client/txpipe";
}

# Skips the whole test file when the client has not been built.
sub txpipe_require_client
{
	my $client = txpipe_client();
	plan skip_all => "client not built ($client)" unless -x $client;
	return;
}

# A started node with test/server.conf (and the settings EXTRA_CONF, if
# given) appended and txpipe created in the postgres database.
sub txpipe_node
{
	my ($name, $extra_conf) = @_;
	my $conf = $ENV{TXPIPE_SERVER_CONF} || "$testdir/server.conf";
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(extra => [ '-E', 'UTF8', '--locale=C' ]);
	$node->append_conf('postgresql.conf', slurp_file($conf));
	$node->append_conf('postgresql.conf', $extra_conf) if defined $extra_conf;
	$node->start;
	$node->safe_psql('postgres', 'CREATE EXTENSION txpipe');
	return $node;
}

# txpipe_gen(TEMPLATE, FILE, ARGS...): writes generated records to FILE and
# returns the generator's summary as a hash.
sub txpipe_gen
{
	my ($template, $file, @args) = @_;
	my $summary = "$file.summary.json";
	my $err = '';
	my @cmd = (txpipe_client(), 'gen', $template, @args, '--summary', $summary);
	IPC::Run::run(\@cmd, '>', $file, '2>', \$err)
	  or BAIL_OUT("@cmd failed: $err");
	open my $fh, '<', $summary or BAIL_OUT("$summary: $!");
	my $s = JSON::PP->new->decode(do { local $/; <$fh> });
	close $fh;
	note "generated $file: " . JSON::PP->new->canonical->encode($s);
	return $s;
}

# txpipe_load(NODE, PIPELINE, FILE...): runs "txpipe load" against the node's
# postgres database; returns true when the client exits 0.
sub txpipe_load
{
	my ($node, $pipeline, @files) = @_;
	local $ENV{PGHOST}     = $node->host;
	local $ENV{PGPORT}     = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	my ($out, $err) = ('', '');
	my @cmd = (txpipe_client(), 'load', $pipeline, @files);
	my $ok = IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	note "@cmd:\n$out$err";
	return $ok;
}

# txpipe_stream(NODE, PIPELINE, FILE, ARGS...): runs "txpipe stream" (the
# queue path) against the node's postgres database; true when it exits 0.
sub txpipe_stream
{
	my ($node, $pipeline, $file, @args) = @_;
	local $ENV{PGHOST}     = $node->host;
	local $ENV{PGPORT}     = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	my ($out, $err) = ('', '');
	my @cmd = (txpipe_client(), 'stream', $pipeline, $file, @args);
	my $ok = IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	note "@cmd:\n$out$err";
	return $ok;
}

# The pipeline's row of txpipe.stats: accepted, rejected, duplicates.
sub txpipe_stats
{
	my ($node, $pipeline) = @_;
	my $row = $node->safe_psql('postgres',
		"SELECT accepted, rejected, duplicates FROM txpipe.stats WHERE pipeline = '$pipeline'"
	);
	my %s;
	@s{qw(accepted rejected duplicates)} = split /\|/, $row;
	return \%s;
}

# A query giving one line with the row count of every table in SCHEMA, the
# pipeline's rejects and its stats: equal lines mean nothing was added or lost.
sub txpipe_counts_query
{
	my ($node, $schema) = @_;
	my $tables = $node->safe_psql(
		'postgres', qq{
		SELECT string_agg(format('SELECT %L || ''='' || count(*) FROM %I.%I', c.relname, n.nspname, c.relname),
						  ' UNION ALL ' ORDER BY c.relname)
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = '$schema' AND c.relkind IN ('r', 'p') AND NOT c.relispartition});
	return qq{
		SELECT string_agg(x, ' ') FROM (
			$tables
			UNION ALL SELECT 'rejects=' || count(*) FROM txpipe.rejects WHERE pipeline = '$schema'
			UNION ALL SELECT format('stats=%s/%s/%s', accepted, rejected, duplicates)
						FROM txpipe.stats WHERE pipeline = '$schema') AS t(x)};
}

sub txpipe_counts
{
	my ($node, $schema) = @_;
	return $node->safe_psql('postgres', txpipe_counts_query($node, $schema));
}

# txpipe_views_match(NODE, SCHEMA, DIRECT, WHEN): for each view or function
# call V of SCHEMA, a key of the hash DIRECT, checks that V returns exactly
# the rows of its query DIRECT->{V}, as many times each.
sub txpipe_views_match
{
	my ($node, $schema, $direct, $when) = @_;
	for my $v (sort keys %$direct)
	{
		my $q = $direct->{$v};
		is( $node->safe_psql('postgres', qq{
				SELECT (SELECT count(*) FROM $schema.$v) || '/'
					   || (SELECT count(*) FROM ((SELECT * FROM $schema.$v EXCEPT ALL ($q))
												 UNION ALL (($q) EXCEPT ALL SELECT * FROM $schema.$v)) d)}),
			$node->safe_psql('postgres', "SELECT count(*) FROM ($q) q") . '/0',
			"$when: $v = its aggregate of the facts");
	}
}


# Queries on a cards template in schema cards: truth, the totals of its
# transactions (count, sum(amt), fraud, and per state: count, amt, fraud);
# star, the same totals from its star (facts and agg_day_state); snapshot,
# an md5 of every fact and rollup row, to compare an incremental star with
# a rebuild.
sub txpipe_cards_totals
{
	return {
		truth => q{
			SELECT count(*), sum(t.amt), count(*) FILTER (WHERE t.is_fraud),
				   (SELECT string_agg(format('%s:%s:%s:%s', s, n, a, f), ',' ORDER BY s) FROM (
						SELECT st.state AS s, count(*) AS n, sum(t2.amt) AS a,
							   count(*) FILTER (WHERE t2.is_fraud) AS f
						  FROM cards.transaction t2
						  JOIN cards.customer_version v ON v.customer_version_id = t2.customer_version_id
						  JOIN cards.city c ON c.city_id = v.city_id
						  JOIN cards.state st ON st.state_id = c.state_id
						 GROUP BY st.state) x)
			  FROM cards.transaction t},
		star => q{
			SELECT count(*), sum(f.amt), count(*) FILTER (WHERE f.is_fraud),
				   (SELECT string_agg(format('%s:%s:%s:%s', s, n, a, f), ',' ORDER BY s) FROM (
						SELECT a.state AS s, sum(a.transactions) AS n, sum(a.amt) AS a, sum(a.fraud) AS f
						  FROM cards.agg_day_state a GROUP BY a.state) x)
			  FROM cards.fact_transaction f},
		snapshot => q{
			SELECT md5(string_agg(j, E'\n' ORDER BY j)) FROM (
				SELECT 'f' || (to_jsonb(f) - 'customer_key')::text AS j FROM cards.fact_transaction f
				UNION ALL SELECT 'h' || to_jsonb(a)::text FROM cards.agg_hour a
				UNION ALL SELECT 'hs' || to_jsonb(a)::text FROM cards.agg_hour_state a
				UNION ALL SELECT 'ds' || to_jsonb(a)::text FROM cards.agg_day_state a
				UNION ALL SELECT 'dl' || to_jsonb(a)::text FROM cards.agg_day_location a
				UNION ALL SELECT 'ml' || to_jsonb(a)::text FROM cards.agg_month_location a
				UNION ALL SELECT 'dch' || to_jsonb(a)::text FROM cards.agg_day_category_hour a
				UNION ALL SELECT 'mch' || to_jsonb(a)::text FROM cards.agg_month_category_hour a) s},
	};
}

1;
