# Differential fuzzing of the decoder: records made from valid flat and
# nested objects by random edits (bytes inserted, deleted, replaced; keys
# repeated; records cut short) are routed twice, once with the flat
# scanner (txpipe.flat_decoder on) and once with every record through the
# JSON parser (off).  Both must store the same rows and give the same
# rejects: code, path and message, record by record.
use strict;
use utf8;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

my $node = txpipe_node('fuzz');

my $spec = <<'EOF';
{
  "contract": {
    "type": "object",
    "required": ["id"],
    "properties": {
      "id": {"type": "string", "maxLength": 40},
      "s": {"type": ["string", "null"], "maxLength": 20},
      "n": {"type": ["number", "null"], "minimum": -1000, "maximum": 1000},
      "i": {"type": "integer"},
      "b": {"type": ["boolean", "null"]},
      "z": {},
      "o": {}
    }
  },
  "idempotency_key": "id",
  "routes": [
    {"name": "rec", "table": "rec",
     "columns": {"id": "id", "s": "s", "n": "n", "i": "i", "b": "b", "z": "z", "o": "o"}}
  ]
}
EOF

for my $p ('fa', 'fb')
{
	$node->safe_psql('postgres', qq{
		CREATE SCHEMA $p;
		CREATE TABLE $p.rec (id text PRIMARY KEY, s text, n text, i text, b text, z text, o text);
		SELECT txpipe.create_pipeline('$p', '$spec'::jsonb || '{"schema": "$p"}');
	});
}

# deterministic pseudo-random numbers (no dependence on Perl's rand)
my $state = 20261122;
sub rnd
{
	my ($n) = @_;
	$state = ($state * 1103515245 + 12345) % 2147483648;
	return int(($state / 2147483648) * $n);
}

my @bases = (
	'{"id":"ID","s":"plain text","n":12.5,"i":7,"b":true,"z":null}',
	'{ "id" : "ID" , "s" : "" , "n" : -0.25e2 , "i" : 0 , "b" : false }',
	"{\t\"id\":\"ID\",\r\"n\":1E+2,\"extra\":[1,2],\"more\":{\"a\":\"b\"}}",
	'{"id":"ID","s":"caf\u00e9 \\"q\\" \\\\ \\n","z":"\\ud83d\\ude00"}',
	'{"id":"ID","s":"ünï ✓","o":{"k":[1,{"x":null}],"t":true},"z":[]}',
	'{"id":"ID","i":-12,"n":999.999,"b":null,"s":null}',
	'{"id":"ID"}',
);
my @chars = ('"', '\\', ',', ':', '{', '}', '[', ']', ' ', "\t", "\r", 'e', 'E', '-', '+',
	'.', '0', '1', '9', 't', 'f', 'n', 'u', 'l', 'a', "'", 'N', "\x01", "\x1f", 'é', '✓');

my $records = 6000;
my @lines;
for my $k (1 .. $records)
{
	my $r = $bases[ rnd(scalar @bases) ];
	$r =~ s/ID/r$k/;
	my $edits = rnd(4);
	for (1 .. $edits)
	{
		my @c   = split //, $r;
		my $pos = rnd(scalar(@c) + 1);
		my $op  = rnd(6);
		if ($op == 0 && @c)
		{
			splice(@c, $pos < @c ? $pos : $#c, 1);
		}
		elsif ($op == 1)
		{
			splice(@c, $pos, 0, $chars[ rnd(scalar @chars) ]);
		}
		elsif ($op == 2 && @c)
		{
			$c[ $pos < @c ? $pos : $#c ] = $chars[ rnd(scalar @chars) ];
		}
		elsif ($op == 3)
		{
			# repeat a key
			my $s = join('', @c);
			$s =~ s/\{/{"s":"x",/ if rnd(2);
			$s =~ s/\}$/,"i":1}/;
			@c = split //, $s;
		}
		elsif ($op == 4)
		{
			splice(@c, $pos);
		}
		$r = join('', @c);
	}
	next if $r =~ /^\s*$/;
	push @lines, $r;
}
utf8::encode($_) for @lines;

# records in batches of 200, the same batches for both pipelines
my $dir = PostgreSQL::Test::Utils::tempdir();
my @batches;
for (my $i = 0; $i < @lines; $i += 200)
{
	my $last = $i + 199 < $#lines ? $i + 199 : $#lines;
	push @batches, join("\n", @lines[ $i .. $last ]);
}
for my $p ('fa', 'fb')
{
	my $setting = $p eq 'fa' ? 'on' : 'off';
	my $sql = "SET txpipe.flat_decoder = $setting;\n";
	for my $b (0 .. $#batches)
	{
		my $f = "$dir/$p.$b.ndjson";
		open my $fh, '>:raw', $f or die "$f: $!";
		print $fh $batches[$b];
		close $fh;
		$sql .= "SELECT txpipe.ingest('$p', pg_read_file('$f'));\n";
	}
	$node->safe_psql('postgres', $sql);
}

my $counts = $node->safe_psql('postgres',
	"SELECT (SELECT count(*) FROM fa.rec) || ' ' || (SELECT count(*) FROM txpipe.rejects WHERE pipeline = 'fa')");
my ($stored, $rejected) = split / /, $counts;
note("$stored records stored, $rejected rejected out of " . scalar(@lines));
cmp_ok($stored,   '>', 500, 'many records decode and are stored');
cmp_ok($rejected, '>', 500, 'many records are rejected');

is( $node->safe_psql(
		'postgres', q{
		SELECT count(*) FROM ((TABLE fa.rec EXCEPT ALL TABLE fb.rec)
		                      UNION ALL (TABLE fb.rec EXCEPT ALL TABLE fa.rec)) d}),
	'0',
	'both decoders store the same rows');

my $rej = q{SELECT payload, error_code, error_path, message FROM txpipe.rejects WHERE pipeline = '%s'};
my $diff = $node->safe_psql(
	'postgres', sprintf(
		q{SELECT count(*) FROM ((%s EXCEPT ALL %s) UNION ALL (%s EXCEPT ALL %s)) d},
		sprintf($rej, 'fa'), sprintf($rej, 'fb'), sprintf($rej, 'fb'), sprintf($rej, 'fa')));
is($diff, '0', 'both decoders give the same rejects: code, path and message');
if ($diff ne '0')
{
	diag($node->safe_psql(
		'postgres', sprintf(q{%s EXCEPT ALL %s LIMIT 10}, sprintf($rej, 'fa'), sprintf($rej, 'fb'))));
}

is( $node->safe_psql(
		'postgres', q{
		SELECT (SELECT sum(received) FROM txpipe.batches WHERE pipeline = 'fa') =
		       (SELECT sum(received) FROM txpipe.batches WHERE pipeline = 'fb')}),
	't',
	'both pipelines received every record');

done_testing();
