#!/usr/bin/perl
# bench/panels.pl DASHBOARDS SCHEMA TARGET REPEAT: the panel queries of the
# dashboards under DASHBOARDS that read schema SCHEMA, with the variables
# and Grafana's macros expanded (test/GrafanaDash.pm), run in schema TARGET
# instead, REPEAT times each, as EXPLAIN (ANALYZE, TIMING OFF): planning
# plus execution time in the server.  Variables take the first value of
# their own query, a textbox the first card and its holder's date of birth.
# Prints one line per panel: median ms, then each run's ms, the dashboard's
# uid and the panel's title, tab-separated.  psql connects through the
# libpq environment.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/../test";

use GrafanaDash;
use IPC::Open3;
use JSON::PP;

my ($dir, $schema, $target, $repeat) = @ARGV;
die "usage: panels.pl DASHBOARDS SCHEMA TARGET REPEAT\n" unless $repeat;
my $psql = $ENV{PSQL} || 'psql';

sub psql
{
	my ($sql) = @_;
	my $pid = open3(my $in, my $out, undef, $psql, '-X', '-At', '-F', "\t", '-v', 'ON_ERROR_STOP=1', '-q');
	print $in $sql;
	close $in;
	my $text = do { local $/; <$out> };
	waitpid($pid, 0);
	die "psql failed on:\n$sql\n" if $? != 0;
	return $text;
}

sub retarget { my ($sql) = @_; $sql =~ s/\b\Q$schema\E\./$target./g; return $sql; }

# the textboxes of the cards dashboards: a card and its holder's birthday
my %typed;
if (psql("SELECT to_regclass('\"$target\".card') IS NOT NULL;") =~ /^t/)
{
	my ($card, $dob) = split /\t/, (split /\n/, psql(qq{
		SELECT ca.cc_num, cu.dob FROM "$target".card ca JOIN "$target".customer cu USING (customer_id)
		 ORDER BY ca.card_id LIMIT 1;}))[0];
	%typed = (card => $card, dob => $dob);
}

for my $file (sort glob("$dir/*.json"))
{
	open my $fh, '<', $file or die "$file: $!";
	my $d = JSON::PP->new->decode(do { local $/; <$fh> });
	close $fh;
	next unless grep { $_->{rawSql} =~ /\b\Q$schema\E\./ } map { @{ $_->{targets} } } @{ $d->{panels} };
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
		my $q = retarget(expand_macros(expand_vars($v->{query}, \%vars, $interval, $ms), $from, $to));
		# the first row; __value when the query names one
		my $sql = "SELECT to_jsonb(q) FROM ($q) AS q LIMIT 1;";
		my $row = JSON::PP->new->decode((split /\n/, psql($sql))[0] // '{}');
		$vars{ $v->{name} } = exists $row->{__value} ? $row->{__value} : (values %$row)[0];
	}
	for my $p (@{ $d->{panels} })
	{
		for my $t (@{ $p->{targets} })
		{
			my $sql = retarget(expand_macros(expand_vars($t->{rawSql}, \%vars, $interval, $ms), $from, $to));
			my @runs;
			for (1 .. $repeat)
			{
				my $plan = psql("EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) $sql;");
				my ($plan_ms) = $plan =~ /Planning Time: ([\d.]+) ms/;
				my ($exec_ms) = $plan =~ /Execution Time: ([\d.]+) ms/;
				push @runs, ($plan_ms // 0) + ($exec_ms // 0);
			}
			my @sorted = sort { $a <=> $b } @runs;
			printf "%.1f\t%s\t%s\t%s\n", $sorted[ int(@sorted / 2) ],
			  join(' ', map { sprintf '%.1f', $_ } @runs), $d->{uid}, $p->{title};
		}
	}
}
