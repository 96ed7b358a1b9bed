# What Grafana makes of a dashboard's queries before its PostgreSQL data
# source runs them: the time range, the interval, the dashboard variables
# and the macros of Grafana's PostgreSQL data source, expanded as it
# expands them.  Used by test/t/017_grafana.pl and bench/panels.pl.
package GrafanaDash;

use strict;
use warnings;

use Exporter qw(import);
use POSIX qw(floor strftime);
use Time::HiRes ();
use Time::Local qw(timegm);

our @EXPORT = qw(grafana_time grafana_interval expand_macros expand_vars);

# a time of the dashboard's range: an absolute time or now[-N(s|m|h|d)]
sub grafana_time
{
	my ($t) = @_;
	# now to the millisecond, as Grafana's range is
	my $now = floor(Time::HiRes::time() * 1000) / 1000;
	return $now if $t eq 'now';
	if ($t =~ /^now-(\d+)([smhdw])$/)
	{
		my %unit = (s => 1, m => 60, h => 3600, d => 86400, w => 604800);
		return $now - $1 * $unit{$2};
	}
	$t =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)/ or die "time $t";
	return timegm($6, $5, $4, $3, $2 - 1, $1);
}

# RFC 3339 in UTC, with the milliseconds when there are any (as Go's
# RFC3339Nano writes them)
sub rfc3339
{
	my ($t) = @_;
	my $ms = sprintf('%03d', int(($t - floor($t)) * 1000 + 0.5) % 1000);
	my $frac = $ms eq '000' ? '' : ".$ms" =~ s/0+$//r;
	return strftime('%Y-%m-%dT%H:%M:%S', gmtime(floor($t))) . $frac . 'Z';
}

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

# the macros of Grafana's PostgreSQL data source
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
		elsif ($name eq '__unixEpochFilter')
		{
			$r = "$args[0] >= " . floor($from) . " AND $args[0] <= " . floor($to);
		}
		elsif ($name eq '__unixEpochFrom') { $r = floor($from); }
		elsif ($name eq '__unixEpochTo')   { $r = floor($to); }
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

1;
