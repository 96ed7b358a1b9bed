# The three data sets in the shapes they really arrive in, from the sample
# files under templates/<template>/samples/: the CSV as downloaded (cards
# with its byte-order mark, CRLF, unnamed index column and quoted commas;
# retail in ISO-8859-1; clicks with empty cells and the " UTC" suffix),
# pandas to_json records and the clickstream simulator's all-strings
# records.  Every valid record lands with the values of its source,
# compared field by field with the same file read by PostgreSQL's own COPY
# and jsonb; every bad record of bad.ndjson is a reject with the code and
# path of bad.expected; sending everything again, through COPY and the
# queue, adds nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $samples = "$FindBin::RealBin/../../templates";
-d "$samples/cards/samples" or BAIL_OUT("no sample files under $samples");

my $node = txpipe_node('real');
$node->safe_psql('postgres', "SELECT txpipe.install_template('$_')")
  for qw(cards retail clicks);

sub sample { my ($t, $f) = @_; return "$samples/$t/samples/$f"; }
sub sql { return $node->safe_psql('postgres', $_[0]); }

# load(PIPELINE, ARGS...): txpipe load; returns its stdout and stderr
sub load
{
	my ($pipeline, @args) = @_;
	local $ENV{PGHOST}     = $node->host;
	local $ENV{PGPORT}     = $node->port;
	local $ENV{PGDATABASE} = 'postgres';
	my ($out, $err) = ('', '');
	my @cmd = (txpipe_client(), 'load', $pipeline, @args);
	my $ok = IPC::Run::run(\@cmd, '<', \undef, '>', \$out, '2>', \$err);
	note "@cmd:\n$out$err";
	ok($ok, "txpipe load $pipeline @args");
	return ($out, $err);
}

# The file's counts from txpipe load's output line for it.
sub counts_of
{
	my ($out, $file) = @_;
	my ($line) = grep { index($_, "$file:") == 0 } split /\n/, $out;
	return '' unless $line;
	$line =~ /(\d+) received, (\d+) accepted, (\d+) rejected, (\d+) duplicates/;
	return "$1/$2/$3/$4";
}

# Each bad record's reject: code and path, in the order of bad.expected.
sub check_bad
{
	my ($t) = @_;
	my @expected = grep { !/^line\t/ } split /\n/, slurp_file(sample($t, 'bad.expected'));
	my $lines = () = slurp_file(sample($t, 'bad.ndjson')) =~ /\n/g;
	is(scalar @expected, $lines, "$t: bad.expected has a line per bad record");
	my ($out) = load($t, sample($t, 'bad.ndjson'));
	is(counts_of($out, sample($t, 'bad.ndjson')), "$lines/0/$lines/0",
		"$t: every bad record is rejected");
	my $got = sql(qq{
		SELECT string_agg(error_code || '\t' || error_path, '\n' ORDER BY reject_id)
		  FROM txpipe.rejects WHERE pipeline = '$t'});
	is($got, join("\n", map { (split /\t/)[1] . "\t" . (split /\t/)[2] } @expected),
		"$t: each reject has the code and path of bad.expected");
	return $lines;
}

# ---------------------------------------------------------------- cards
{
	my $csv = sample('cards', 'fraudTrain.csv');
	my $pd  = sample('cards', 'pandas.ndjson');
	my ($out) = load('cards', $csv, $pd);
	is(counts_of($out, $csv), '12/12/0/0', 'cards CSV: every line lands');
	is(counts_of($out, $pd), '6/5/0/1',
		'cards pandas: "Unnamed: 0" ignored, the CSV line it repeats is a duplicate');

	# the reference: the same files read by COPY and jsonb
	sql(qq{
		CREATE TABLE ref_cards_csv (idx text, trans_date_trans_time text, cc_num text,
			merchant text, category text, amt text, first text, last text, gender text,
			street text, city text, state text, zip text, lat text, long text,
			city_pop text, job text, dob text, trans_num text, unix_time text,
			merch_lat text, merch_long text, is_fraud text);
		COPY ref_cards_csv FROM '$csv' WITH (FORMAT csv, HEADER);
		CREATE TABLE ref_lines (doc text);
		COPY ref_lines FROM '$pd' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02');
		CREATE VIEW ref_cards AS
		SELECT trans_date_trans_time, cc_num, merchant, category, amt, first, last, gender,
			   street, city, state, zip, lat, long, city_pop, job, dob, trans_num, unix_time,
			   merch_lat, merch_long, is_fraud FROM ref_cards_csv
		UNION
		SELECT d->>'trans_date_trans_time', d->>'cc_num', d->>'merchant', d->>'category',
			   d->>'amt', d->>'first', d->>'last', d->>'gender', d->>'street', d->>'city',
			   d->>'state', d->>'zip', d->>'lat', d->>'long', d->>'city_pop', d->>'job',
			   d->>'dob', d->>'trans_num', d->>'unix_time', d->>'merch_lat',
			   d->>'merch_long', d->>'is_fraud'
		  FROM (SELECT doc::jsonb AS d FROM ref_lines) AS l;
	});
	is(sql('SELECT count(*) FROM ref_cards'), 17, 'cards: 17 distinct transactions in the files');
	is(sql('SELECT count(*) FROM cards.transaction'), 17, 'cards: 17 transactions stored');
	is( sql(q{
		SELECT count(*) FROM ref_cards r
		  JOIN cards.transaction t USING (trans_num)
		  JOIN cards.card c USING (card_id)
		  JOIN cards.customer_version v USING (customer_version_id)
		  JOIN cards.customer p ON p.customer_id = v.customer_id
		  JOIN cards.city y ON y.city_id = v.city_id
		  JOIN cards.state s ON s.state_id = y.state_id
		  JOIN cards.merchant m USING (merchant_id)
		  JOIN cards.category g USING (category_id)
		 WHERE t.trans_date_trans_time = r.trans_date_trans_time::timestamp
		   AND c.cc_num::text = r.cc_num
		   AND m.merchant = r.merchant AND g.category = r.category
		   AND t.amt = r.amt::numeric
		   AND p.first = r.first AND p.last = r.last AND p.gender = r.gender
		   AND v.street = r.street AND y.city = r.city AND s.state = r.state
		   AND y.zip = lpad(r.zip, 5, '0')
		   AND y.lat = r.lat::float8 AND y.long = r.long::float8
		   AND y.city_pop = r.city_pop::int AND v.job = r.job
		   AND p.dob = r.dob::date AND t.unix_time = r.unix_time::bigint
		   AND t.merch_lat = r.merch_lat::float8 AND t.merch_long = r.merch_long::float8
		   AND t.is_fraud = (r.is_fraud = '1')}),
		17, 'cards: every transaction holds its source values, field by field');
	is( sql(q{SELECT string_agg(cc_num::text, ' ' ORDER BY cc_num) FROM cards.card
			 WHERE cc_num IN (60416207185, 630423337322, 4992346398065154048)}),
		'60416207185 630423337322 4992346398065154048',
		'cards: 11-, 12- and 19-digit card numbers exact');
	is( sql(q{SELECT string_agg(city || ' ' || zip, ', ' ORDER BY zip) FROM cards.city
			 WHERE city IN ('Sheffield', 'Harrington Park')}),
		'Sheffield 01257, Harrington Park 07640',
		'cards: zip codes keep their leading zeros');
	is( sql(q{SELECT job FROM cards.customer WHERE first = 'Jennifer' AND last = 'Banks'}),
		'Psychologist, counselling', 'cards: a quoted comma stays in the job');
	is( sql(q{SELECT count(*) FROM txpipe.rejects WHERE pipeline = 'cards'}), 0,
		'cards: no valid record is rejected');
}

# --------------------------------------------------------------- retail
{
	my $csv = sample('retail', 'data.csv');
	my $pd  = sample('retail', 'pandas.ndjson');
	my ($out, $err) = load('retail', $csv, $pd);
	is(counts_of($out, $csv), '28/25/0/3',
		'retail CSV in ISO-8859-1, no --encoding: every line lands, exact copies are duplicates');
	like($err, qr/data\.csv: byte 0xA3 at offset \d+ is not UTF-8: reading the file as ISO-8859-1/,
		'retail: the client says it reads the file as ISO-8859-1');
	is(counts_of($out, $pd), '14/7/0/7',
		'retail pandas: 17850.0, null, \/ and numeric invoice numbers are the CSV\'s lines');

	sql(qq{
		CREATE TABLE ref_retail_csv ("InvoiceNo" text, "StockCode" text, "Description" text,
			"Quantity" text, "InvoiceDate" text, "UnitPrice" text, "CustomerID" text,
			"Country" text);
		COPY ref_retail_csv FROM '$csv' WITH (FORMAT csv, HEADER, ENCODING 'LATIN1');
		TRUNCATE ref_lines;
		COPY ref_lines FROM '$pd' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02');
		CREATE VIEW ref_retail AS
		SELECT "InvoiceNo" AS inv, "StockCode" AS code, "Description" AS descr,
			   "Quantity"::int AS qty, to_timestamp("InvoiceDate", 'MM/DD/YYYY HH24:MI')::timestamp AS at,
			   "UnitPrice"::numeric AS price, "CustomerID"::numeric AS cust, "Country" AS country
		  FROM ref_retail_csv
		UNION
		SELECT d->>'InvoiceNo', d->>'StockCode', d->>'Description', (d->>'Quantity')::int,
			   to_timestamp(d->>'InvoiceDate', 'MM/DD/YYYY HH24:MI')::timestamp,
			   (d->>'UnitPrice')::numeric, (d->>'CustomerID')::numeric, d->>'Country'
		  FROM (SELECT doc::jsonb AS d FROM ref_lines) AS l;
	});
	is(sql('SELECT count(*) FROM ref_retail'), 32, 'retail: 32 distinct lines in the files');
	is(sql('SELECT count(*) FROM retail.invoice_line'), 32, 'retail: 32 lines stored');
	is( sql(q{
		SELECT count(*) FROM ref_retail r
		  JOIN retail.invoice i ON i.invoice_no = r.inv
		  JOIN retail.invoice_line l ON l.invoice_id = i.invoice_id
		  JOIN retail.product p ON p.product_id = l.product_id AND p.stock_code = r.code
		  JOIN retail.country c ON c.country_id = i.country_id
		  LEFT JOIN retail.customer u ON u.customer_id = i.customer_id
		 WHERE l.quantity = r.qty AND l.unit_price = r.price
		   AND i.invoice_date = r.at AND c.country = r.country
		   AND u.customer_no IS NOT DISTINCT FROM r.cust
		   AND p.description IS NOT DISTINCT FROM r.descr}),
		32, 'retail: every line holds its source values, field by field');
	is( sql(q{SELECT invoice_date || ' ' || u.customer_no FROM retail.invoice i
			  JOIN retail.customer u USING (customer_id) WHERE invoice_no = '536365'}),
		'2010-12-01 08:26:00 17850',
		'retail: 12/1/2010 8:26 is December 1, 17850.0 is customer 17850');
	is( sql(q{SELECT string_agg(description, ' | ' ORDER BY stock_code)
				 = U&'CAF\00C9 SIGN CR\00C8ME BR\00DBL\00C9E | GINGHAM ROSE WRAP \00A33 OFF'
			  FROM retail.product WHERE stock_code IN ('22986', '22809')}),
		't', 'retail: the ISO-8859-1 pound sign and accented capitals read as themselves');
	is( sql(q{SELECT string_agg(invoice_no || ':' || is_cancellation, ' ' ORDER BY invoice_no)
			  FROM retail.invoice WHERE invoice_no ~ '^[AC]'}),
		'A563185:false A563187:false C536379:true C536383:true C536391:true C537630:true',
		'retail: C invoices are cancellations, A invoices are not');
	is( sql(q{SELECT string_agg(stock_code, ' ' ORDER BY stock_code) FROM retail.product
			 WHERE stock_code !~ '^[0-9]{5}'}),
		'AMAZONFEE B BANK CHARGES D DOT M POST',
		'retail: the codes that are not products are stored');
	is( sql(q{SELECT count(*) FROM retail.invoice_line l JOIN retail.invoice i USING (invoice_id)
			 WHERE l.quantity < 0 AND NOT i.is_cancellation}),
		2, 'retail: negative quantities without a C are stored as they are');
	is( sql(q{SELECT count(*) FROM retail.invoice WHERE customer_id IS NULL}),
		11, 'retail: invoices without a CustomerID are guest sales');
	is( sql(q{SELECT count(*) FROM retail.product WHERE description IS NULL}),
		2, 'retail: an empty Description is NULL');
}

# --------------------------------------------------------------- clicks
{
	my $csv = sample('clicks', '2019-Oct.csv');
	my $sim = sample('clicks', 'simulator.ndjson');
	my $pd  = sample('clicks', 'pandas.ndjson');
	my ($out) = load('clicks', $csv, $sim, $pd);
	is(counts_of($out, $csv), '15/14/0/1', 'clicks CSV: every event lands, the exact copy is a duplicate');
	is(counts_of($out, $sim), '8/7/0/1',
		'clicks simulator: strings, "" and txn_timestamp taken; the CSV event it repeats is a duplicate');
	is(counts_of($out, $pd), '6/4/0/2', 'clicks pandas: null and numbers; two repeats are duplicates');

	sql(qq{
		CREATE TABLE ref_clicks_csv (event_time text, event_type text, product_id text,
			category_id text, category_code text, brand text, price text, user_id text,
			user_session text);
		COPY ref_clicks_csv FROM '$csv' WITH (FORMAT csv, HEADER);
		TRUNCATE ref_lines;
		COPY ref_lines FROM '$sim' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02');
		COPY ref_lines FROM '$pd' WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02');
		CREATE VIEW ref_clicks AS
		SELECT (replace(event_time, ' UTC', '') || '+00')::timestamptz AS at, event_type,
			   product_id::bigint AS product_id, category_id::bigint AS category_id,
			   nullif(category_code, '') AS category_code, nullif(brand, '') AS brand,
			   price::numeric AS price, user_id::bigint AS user_id,
			   nullif(user_session, '')::uuid AS user_session
		  FROM (SELECT * FROM ref_clicks_csv
				UNION ALL
				SELECT d->>'event_time', d->>'event_type', d->>'product_id', d->>'category_id',
					   coalesce(d->>'category_code', ''), coalesce(d->>'brand', ''), d->>'price',
					   d->>'user_id', coalesce(d->>'user_session', '')
				  FROM (SELECT doc::jsonb AS d FROM ref_lines) AS l) AS a
		 GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9;
	});
	is(sql('SELECT count(*) FROM ref_clicks'), 25, 'clicks: 25 distinct events in the files');
	is(sql('SELECT count(*) FROM clicks.event'), 25, 'clicks: 25 events stored');
	is( sql(q{
		SELECT count(*) FROM ref_clicks r
		  JOIN clicks.event e ON e.event_time = r.at AND e.event_type::text = r.event_type
			   AND e.product_id = r.product_id AND e.user_id = r.user_id AND e.price = r.price
		  JOIN clicks.product p ON p.product_id = e.product_id
		  JOIN clicks.category c ON c.category_id = p.category_id
		  LEFT JOIN clicks.brand b ON b.brand_id = p.brand_id
		  LEFT JOIN clicks.session s ON s.session_id = e.session_id
		 WHERE c.category_id = r.category_id
		   AND c.category_code IS NOT DISTINCT FROM r.category_code
		   AND b.brand IS NOT DISTINCT FROM r.brand
		   AND s.user_session IS NOT DISTINCT FROM r.user_session}),
		25, 'clicks: every event holds its source values, field by field');
	is( sql(q{SET TimeZone = 'America/New_York';
			SELECT p.category_id || ' ' || (e.event_time AT TIME ZONE 'UTC') FROM clicks.event e
			  JOIN clicks.product p USING (product_id) WHERE e.product_id = 44600062}),
		'2103807459595387724 2019-10-01 00:00:00',
		'clicks: the 19-digit category id exact, " UTC" read as UTC');
	is( sql(q{SELECT count(*) FROM clicks.product WHERE brand_id IS NULL}), 4,
		'clicks: an empty brand is NULL');
	is( sql(q{SELECT count(*) FROM clicks.event WHERE session_id IS NULL}), 5,
		'clicks: an empty session is NULL');
}

# ------------------------------------------------- bad records, then again
my %bad;
$bad{$_} = check_bad($_) for qw(cards retail clicks);

my %before = map { $_ => sql(txpipe_counts_query($node, $_) =~ s/UNION ALL SELECT format\('stats.*$//sr . ') AS t(x)') } qw(cards retail clicks);
my %stats_before = map { $_ => txpipe_stats($node, $_) } qw(cards retail clicks);

# everything again: the CSV through COPY, the NDJSON through the queue
my %lines = (
	cards  => [ 'pandas.ndjson', 'bad.ndjson' ],
	retail => [ 'pandas.ndjson', 'bad.ndjson' ],
	clicks => [ 'simulator.ndjson', 'pandas.ndjson', 'bad.ndjson' ]);
my %csv = (cards => 'fraudTrain.csv', retail => 'data.csv', clicks => '2019-Oct.csv');
for my $t (qw(cards retail clicks))
{
	my ($out) = load($t, sample($t, $csv{$t}));
	my $sent = 0;
	for my $f (@{ $lines{$t} })
	{
		my $path = sample($t, $f);
		$sent += () = slurp_file($path) =~ /\n/g;
		sql(qq{SELECT txpipe.enqueue('$t', line)
			   FROM regexp_split_to_table(rtrim(pg_read_file('$path'), e'\\n'), e'\\n') AS line});
	}
	sql("SELECT txpipe.drain('$t')");
	is(sql(txpipe_counts_query($node, $t) =~ s/UNION ALL SELECT format\('stats.*$//sr . ') AS t(x)'),
		$before{$t}, "$t: sending every file again, by COPY and the queue, adds no row anywhere");
	my $st = txpipe_stats($node, $t);
	my ($csv_lines) = counts_of($out, sample($t, $csv{$t})) =~ m{^(\d+)/};
	is($st->{accepted} - $stats_before{$t}{accepted}, 0, "$t: nothing accepted the second time");
	is($st->{rejected} - $stats_before{$t}{rejected}, $bad{$t},
		"$t: the bad records are refused again");
	is($st->{duplicates} - $stats_before{$t}{duplicates},
		$csv_lines + $sent - $bad{$t}, "$t: every other record is a duplicate");
}

# The same file in UTF-8 is the same lines: read as UTF-8, without a word
# from the client, all duplicates.  A UTF-8 sequence that two reads of the
# client split still reads as one character.
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $latin1 = slurp_file(sample('retail', 'data.csv'));
	(my $utf8 = $latin1) =~ s/([\x80-\xff])/chr(0xC0 | (ord($1) >> 6)) . chr(0x80 | (ord($1) & 0x3F))/ge;
	open my $fh, '>:raw', "$dir/data-utf8.csv" or die $!;
	print $fh $utf8;
	close $fh;
	my ($out, $err) = load('retail', "$dir/data-utf8.csv");
	is(counts_of($out, "$dir/data-utf8.csv"), '28/0/0/28', 'retail CSV converted to UTF-8: the same lines');
	unlike($err, qr/not UTF-8/, 'retail CSV in UTF-8: read as UTF-8');

	# 256 KiB of lines, then a pound sign whose two bytes straddle the first read
	my $head = (split /\n/, $utf8)[0] . "\n";
	my $body = '';
	my $i = 0;
	while (length($head . $body) < 262144 - 300)
	{
		$body .= sprintf("590001,W%d,PADDING LINE %s,1,12/9/2011 9:00,1.0,,United Kingdom\n", $i++, 'X' x 150);
	}
	my $pre = "590002,SPLIT,";
	my $pad = 262143 - length($head . $body . $pre);
	my $split = $head . $body . $pre . ('Y' x $pad) . "\xc2\xa3,1,12/9/2011 9:00,1.0,,United Kingdom\n";
	is(index($split, "\xc2\xa3"), 262143, 'the pound sign starts at the last byte of the first read');
	cmp_ok($pad, '<', 190, 'the split line\'s Description is within maxLength');
	open $fh, '>:raw', "$dir/split.csv" or die $!;
	print $fh $split;
	close $fh;
	($out, $err) = load('retail', "$dir/split.csv");
	is(counts_of($out, "$dir/split.csv"), ($i + 1) . '/' . ($i + 1) . '/0/0', 'the split file loads whole');
	unlike($err, qr/not UTF-8/, 'the split file: read as UTF-8');
	is(sql(q{SELECT right(description, 1) = U&'\00A3' FROM retail.product WHERE stock_code = 'SPLIT'}),
		't', 'the split pound sign is one character');
}

# A file read as the wrong encoding loses nothing: its lines that are not
# UTF-8 are rejects, the others land.
$node->safe_psql('postgres', "SELECT txpipe.install_template('retail', 'retail_u8')");
{
	my $csv = sample('retail', 'data.csv');
	my ($out) = load('retail_u8', '--encoding', 'utf8', $csv);
	is(counts_of($out, $csv), '28/23/2/3', 'retail as UTF-8: the two ISO-8859-1 lines are refused');
	is( sql(q{SELECT string_agg(error_code, ' ') FROM txpipe.rejects WHERE pipeline = 'retail_u8'}),
		'invalid_utf8 invalid_utf8', 'retail as UTF-8: the rejects say invalid_utf8');
}

$node->stop;
done_testing();
