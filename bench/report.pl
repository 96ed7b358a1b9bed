#!/usr/bin/perl
# Turns the rows measured by bench/run (a TSV file) into the Markdown report
# on stdout and bench/out/results.json.  Ratios are to the "limit" row.
use strict;
use warnings;
use Getopt::Long;
use JSON::PP;
use POSIX qw(strftime);

my %o;
GetOptions(\%o, 'results=s', 'json=s', 'check=s', 'rows=i', 'repeat=i', 'lines=i',
	'aside=i', 'bytes=i', 'copy-bytes=i', 'nproc=i', 'mem-kb=i', 'cpu=s',
	'pg-version=s', 'settings=s', 'total-seconds=i')
  or die "report.pl: bad arguments\n";

sub median
{
	my @v = sort { $a <=> $b } @_;
	return undef unless @v;
	return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}

sub thousands
{
	my $n = reverse sprintf('%.0f', shift);
	$n =~ s/(\d{3})(?=\d)/$1,/g;
	return scalar reverse $n;
}

my $json = JSON::PP->new->canonical->pretty;
my @rows;
open my $fh, '<', $o{results} or die "$o{results}: $!\n";
while (my $line = <$fh>)
{
	chomp $line;
	my ($key, $label, $records, $stat, $runs, $note, $extra) = split /\t/, $line, -1;
	my @runs = split ' ', $runs;
	my $secs = $stat eq 'best' ? (sort { $a <=> $b } @runs)[0] : median(@runs);
	push @rows, {
		key => $key,
		label => $label,
		records => $records + 0,
		stat => $stat,
		seconds => $secs + 0,
		runs_s => [map { $_ + 0 } @runs],
		records_per_s => $secs > 0 && $records > 0 ? int($records / $secs + 0.5) : undef,
		note => $note,
		%{ decode_json($extra || '{}') },
	};
}
close $fh;

my ($limit) = grep { $_->{key} eq 'limit' } @rows;
for my $r (@rows)
{
	# a refresh reads the normalized tables, a panel query the star, not the
	# file: no limit to compare with
	$r->{ratio_to_limit} = $limit && $limit->{seconds} > 0 && !$r->{refresh} && !$r->{template}
	  && !defined $r->{over_100ms} && $r->{key} ne 'rules_instructions'
	  ? 0 + sprintf('%.2f', $r->{seconds} / $limit->{seconds}) : undef;
}

# the cards template's alert rules: txpipe COPY with them against without
my ($with_rules) = grep { $_->{key} eq 'txpipe_copy' } @rows;
my ($without_rules) = grep { $_->{key} eq 'txpipe_copy_norules' } @rows;
if ($with_rules && $without_rules && $without_rules->{seconds} > 0)
{
	# run in pairs: the median of the pairs' ratios, else of the medians
	my @pairs = @{ $with_rules->{paired_ratios_to_norules} || [] };
	$with_rules->{ratio_to_norules} = 0 + sprintf('%.4f',
		@pairs ? median(@pairs) : $with_rules->{seconds} / $without_rules->{seconds});
	$with_rules->{note} = join('; ', grep { defined && length } $with_rules->{note},
		sprintf('the alert rules cost %+.1f%% over txpipe_copy_norules%s (target: at most +10%%)',
			100 * ($with_rules->{ratio_to_norules} - 1),
			@pairs ? sprintf(', the median of %d paired runs (%s)', scalar @pairs,
				join(' ', map { sprintf('%+.1f%%', 100 * ($_ - 1)) } @pairs)) : ''));
}

# drain rows: the speedup over one worker, and 4 workers against 2
my %drain = map { $_->{key} => $_ } grep { $_->{key} =~ /^drain_\d+$/ } @rows;
for my $r (values %drain)
{
	my @notes;
	my ($one, $two) = @drain{qw(drain_1 drain_2)};
	if ($one && $r != $one && $r->{seconds} > 0)
	{
		$r->{speedup_over_drain_1} = 0 + sprintf('%.2f', $one->{seconds} / $r->{seconds});
		push @notes, sprintf('%.2f× drain_1%s', $r->{speedup_over_drain_1},
			$r->{key} eq 'drain_2' ? ' (target: at least 1.4×)' : '');
	}
	if ($two && $r->{key} eq 'drain_4' && $r->{seconds} > 0)
	{
		$r->{speedup_over_drain_2} = 0 + sprintf('%.2f', $two->{seconds} / $r->{seconds});
		push @notes, sprintf('%.2f× drain_2 (target: at least 1.0×)', $r->{speedup_over_drain_2});
	}
	$r->{note} = join('; ', @notes, $r->{note});
}

# refresh rows: each incremental refresh against the full rebuild of the
# same base, and against the incremental refresh on the smallest base
my %full_by_base = map { $_->{base} => $_ } grep { ($_->{refresh} // '') eq 'full' } @rows;
my @incremental = sort { $a->{base} <=> $b->{base} } grep { ($_->{refresh} // '') eq 'incremental' } @rows;
my @refresh_summary;
for my $r (@incremental)
{
	my $full = $full_by_base{ $r->{base} };
	my @notes;
	if ($full && $full->{seconds} > 0)
	{
		$r->{ratio_to_full} = 0 + sprintf('%.4f', $r->{seconds} / $full->{seconds});
		push @notes, sprintf('%.2f%% of the full rebuild', 100 * $r->{ratio_to_full});
	}
	if ($r != $incremental[0] && $incremental[0]{seconds} > 0)
	{
		$r->{ratio_to_smallest_base} = 0 + sprintf('%.2f', $r->{seconds} / $incremental[0]{seconds});
		push @notes, sprintf('%.2f× the time on top of %s', $r->{ratio_to_smallest_base},
			thousands($incremental[0]{base}));
	}
	$r->{note} = join('; ', @notes, $r->{note});
	push @refresh_summary, {
		base => $r->{base},
		new => $r->{new},
		incremental_s => $r->{seconds},
		full_s => $full ? $full->{seconds} : undef,
		full_runs => $full ? scalar @{ $full->{runs_s} } : undef,
		ratio_to_full => $r->{ratio_to_full},
		ratio_to_smallest_base => $r->{ratio_to_smallest_base},
	};
}
my ($sqlrow) = grep { $_->{key} eq 'sql_baseline' } @rows;
my ($txrow) = grep { $_->{key} eq 'txpipe_copy' } @rows;
my $speedup = $sqlrow && $txrow && $txrow->{seconds} > 0
  ? 0 + sprintf('%.2f', $sqlrow->{seconds} / $txrow->{seconds}) : undef;
my ($floorrow) = grep { $_->{key} eq 'floor' } @rows;
my $over_floor = $floorrow && $txrow && $floorrow->{seconds} > 0
  ? 0 + sprintf('%.2f', $txrow->{seconds} / $floorrow->{seconds}) : undef;

my %settings = map { my ($k, $v) = split / = /, $_, 2; ($k => $v) } split /\n/, $o{settings} // '';
my $check = $o{check} && $o{check} ne 'null' ? decode_json($o{check}) : undef;
my $date = strftime('%Y-%m-%d %H:%M:%S %Z', localtime);

# ---- Markdown ----
printf "\n## txpipe bench: %s records, %d run%s per row\n\n", thousands($o{rows}), $o{repeat},
  $o{repeat} == 1 ? '' : 's';
printf "- machine: %d CPUs (%s), %.1f GB RAM; %s\n", $o{nproc}, $o{cpu}, $o{'mem-kb'} / 1048576, $date;
printf "- server: %s\n", $o{'pg-version'};
printf "- settings: %s\n", join(', ', map { "$_=$settings{$_}" } sort keys %settings);
printf "- data: `txpipe gen cards --rows %d --seed 42 --bad 0.01 --dups 0.01`, %.0f MB; "
  . "%s lines (%.0f MB) through COPY in every row; %d bad lines COPY cannot carry byte for byte "
  . "(invalid UTF-8, raw control bytes) set aside for all rows alike\n",
  $o{rows}, $o{bytes} / 1e6, thousands($o{lines}), $o{'copy-bytes'} / 1e6, $o{aside};
print "- seconds: median of the runs, from the start of COPY to COMMIT; decoders: best of 5 passes over the file in memory; "
  . "refresh: from the call of `txpipe.refresh()` to its COMMIT, on transactions made set-based from a routed sample (bench/README.md)\n\n";

print "| row | seconds | records/s | × limit | runs (s) | notes |\n";
print "|---|---:|---:|---:|---|---|\n";
for my $r (@rows)
{
	printf "| %s | %.2f | %s | %s | %s | %s |\n", $r->{label}, $r->{seconds},
	  defined $r->{records_per_s} ? thousands($r->{records_per_s}) : '',
	  defined $r->{ratio_to_limit} ? sprintf('%.2f', $r->{ratio_to_limit}) : '',
	  join(' ', map { sprintf '%.2f', $_ } @{ $r->{runs_s} }), $r->{note};
}
print "\n";
if (defined $speedup)
{
	printf "**txpipe COPY vs SQL baseline: %.2f× faster** (%.2f s vs %.2f s median).\n\n",
	  $speedup, $txrow->{seconds}, $sqlrow->{seconds};
}
if (defined $over_floor)
{
	printf "txpipe COPY takes %.2f× the floor row (%.2f s vs %.2f s): the rest is decoding, the contract, "
	  . "lookups, the duplicate check and foreign keys.\n\n",
	  $over_floor, $txrow->{seconds}, $floorrow->{seconds};
}
if ($txrow && $txrow->{counts})
{
	my $c = $txrow->{counts};
	printf "txpipe routed: %s received, %s accepted, %s rejected, %s duplicates.\n\n",
	  map { thousands($c->{$_}) } qw(received accepted rejected duplicates);
}
my ($tx2row) = grep { $_->{key} eq 'txpipe_copy_2x' } @rows;
if ($txrow && $tx2row && $txrow->{private_rss_peak_kb} && $tx2row->{private_rss_peak_kb})
{
	printf "Routing backend, private memory peak: %.0f MB for %s records, %.0f MB for %s records (%.2f×); VmHWM %.0f MB and %.0f MB.\n\n",
	  $txrow->{private_rss_peak_kb} / 1024, thousands($txrow->{records}),
	  $tx2row->{private_rss_peak_kb} / 1024, thousands($tx2row->{records}),
	  $tx2row->{private_rss_peak_kb} / $txrow->{private_rss_peak_kb},
	  $txrow->{vmhwm_kb} / 1024, $tx2row->{vmhwm_kb} / 1024;
}
if (@refresh_summary)
{
	printf "Refresh of %s new transactions: %s.\n\n", thousands($refresh_summary[0]{new}), join('; ', map {
		sprintf('on top of %s, %.2f s%s%s', thousands($_->{base}), $_->{incremental_s},
			defined $_->{ratio_to_full}
			  ? sprintf(', %.2f%% of a full rebuild (%.2f s%s)', 100 * $_->{ratio_to_full}, $_->{full_s},
				$_->{full_runs} == 1 && $o{repeat} > 1 ? ', one run' : '')
			  : '',
			defined $_->{ratio_to_smallest_base}
			  ? sprintf(', %.2f× the time on top of %s', $_->{ratio_to_smallest_base}, thousands($refresh_summary[0]{base}))
			  : '')
	} @refresh_summary);
}
if ($check)
{
	printf "Check, SQL baseline against txpipe (and the generator's summary: %s accepted, sum(amt) %s): **%s**\n\n",
	  thousands($check->{expected_accepted}), $check->{expected_sum_amt}, $check->{ok} ? 'equal' : 'DIFFERENT';
	print "| | txpipe | SQL baseline | |\n|---|---:|---:|---|\n";
	for my $c (@{ $check->{rows} })
	{
		printf "| %s | %s | %s | %s |\n", $c->{what}, $c->{txpipe}, $c->{sql_baseline}, $c->{ok} ? 'ok' : 'DIFFERENT';
	}
	print "\n";
}
printf "Total run time: %d min %02d s.\n", int($o{'total-seconds'} / 60), $o{'total-seconds'} % 60;

# ---- JSON ----
my $doc = {
	date => $date,
	machine => { nproc => $o{nproc}, cpu => $o{cpu}, memory_kb => $o{'mem-kb'} },
	postgresql => { version => $o{'pg-version'}, settings => \%settings },
	rows => $o{rows},
	repeat => $o{repeat},
	data => {
		generator => "txpipe gen cards --rows $o{rows} --seed 42 --bad 0.01 --dups 0.01",
		bytes => $o{bytes},
		copy_lines => $o{lines},
		copy_bytes => $o{'copy-bytes'},
		set_aside_lines => $o{aside},
	},
	results => \@rows,
	speedup_txpipe_copy_over_sql_baseline => $speedup,
	txpipe_copy_over_floor => $over_floor,
	refresh => @refresh_summary ? \@refresh_summary : undef,
	check => $check,
	total_seconds => $o{'total-seconds'},
};
open my $out, '>', $o{json} or die "$o{json}: $!\n";
print $out $json->encode($doc);
close $out or die "$o{json}: $!\n";
