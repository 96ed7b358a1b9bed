# A cards star made by txpipe 0.2.0 (full card numbers readable by
# txpipe_reader through card_activity, names and dates of birth through
# dim_customer, no card dimension) becomes, once the extension is updated
# and install_template('cards') run again, the star a fresh install makes:
# the facts it holds get their card_key, the reader loses what it must not
# read, and refreshes go on from where they were.  The retail and clicks
# templates applied again end up as fresh ones too.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

my $node = txpipe_node('cards_upgrade');

# the template's objects and privileges, a line each
my $shape = q{
	SELECT string_agg(line, E'\n' ORDER BY line) FROM (
		SELECT format('column %s.%s %s notnull=%s', c.relname, a.attname,
					  format_type(a.atttypid, a.atttypmod), a.attnotnull) AS line
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		 WHERE c.relnamespace = '__S__'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
		   AND c.relkind IN ('r', 'p', 'v') AND NOT c.relispartition
		UNION ALL
		SELECT format('constraint %s.%s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
		  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
		 WHERE c.relnamespace = '__S__'::regnamespace AND NOT c.relispartition
		UNION ALL
		SELECT format('acl %s %s', c.relname, c.relacl)
		  FROM pg_class c WHERE c.relnamespace = '__S__'::regnamespace AND NOT c.relispartition
		UNION ALL
		SELECT format('column acl %s.%s %s', c.relname, a.attname, a.attacl)
		  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		 WHERE c.relnamespace = '__S__'::regnamespace AND a.attacl IS NOT NULL
		UNION ALL
		SELECT format('function %s secdef=%s config=%s acl=%s', p.oid::regprocedure, p.prosecdef,
					  p.proconfig, p.proacl)
		  FROM pg_proc p WHERE p.pronamespace = '__S__'::regnamespace) x};

my $records = q{
	SELECT string_agg(jsonb_build_object(
		'trans_date_trans_time', to_char(timestamp '2019-08-01' + n * interval '5 hours', 'YYYY-MM-DD HH24:MI:SS'),
		'cc_num', 4000000000000000 + n % 3, 'merchant', 'fraud_Up ' || n % 2, 'category', 'travel',
		'amt', n, 'first', 'F' || n % 3, 'last', 'Up', 'gender', 'M', 'street', '2 Up St',
		'city', 'Reno', 'state', 'NV', 'zip', 89501, 'lat', 39.5, 'long', -119.8, 'city_pop', 250000,
		'job', 'Pilot', 'dob', '1960-01-0' || (n % 3 + 1), 'trans_num', md5('up' || n),
		'unix_time', 1564617600 + n * 18000, 'merch_lat', 39.6, 'merch_long', -119.7,
		'is_fraud', 0)::text, E'\n' ORDER BY n)
	  FROM generate_series(%d, %d) n};

sub shape
{
	my ($db, $schema) = @_;
	(my $q = $shape) =~ s/__S__/$schema/g;
	return $node->safe_psql($db, $q);
}

my @templates = qw(cards retail clicks);
$node->safe_psql('postgres', "SELECT txpipe.install_template('$_')") for @templates;
$node->safe_psql('postgres', 'CREATE DATABASE old');
$node->safe_psql('old', q{CREATE EXTENSION txpipe VERSION '0.2.0'});
$node->safe_psql('old', "SELECT txpipe.install_template('$_')") for @templates;
$node->safe_psql('old', 'SELECT txpipe.ingest(\'cards\', (' . sprintf($records, 1, 30) . '))');
$node->safe_psql('old', q{SELECT txpipe.refresh('cards')});
is($node->safe_psql('old', 'SELECT count(*) FROM cards.fact_transaction'), '30', 'a 0.2.0 star with 30 facts');
is($node->safe_psql('old', q{SELECT has_table_privilege('txpipe_reader', 'cards.card_activity', 'SELECT')}),
	't', 'where txpipe_reader reads full card numbers');

my $old_retail = shape('old', 'retail');
$node->safe_psql('old', 'ALTER EXTENSION txpipe UPDATE');
$node->safe_psql('old', "SELECT txpipe.install_template('cards')");

# retail and clicks tables of 0.2.0 identify records by fields this
# version's templates do not have: they are refused, not rewritten, and the
# old pipeline goes on with the old records
for my $t (qw(retail clicks))
{
	my ($rc, $out, $err) = $node->psql('old', "SELECT txpipe.install_template('$t')");
	like($err, qr/schema $t holds the $t tables of txpipe 0\.2\.0/, "$t: a 0.2.0 schema is refused");
	like($err, qr/HINT:.*install_template\('$t', '${t}_v3'\)/, "$t: with a hint");
}
is(shape('old', 'retail'), $old_retail, 'retail: its tables are left as they were');
is( $node->safe_psql('old', q{SELECT accepted || '/' || rejected || '/' || duplicates FROM txpipe.ingest('retail', '{"id": "536365/1", "InvoiceNo": "536365", "LineNo": 1, "StockCode": "85123A", "Quantity": 6, "InvoiceDate": "2010-12-01 08:26:00", "UnitPrice": 2.55, "CustomerID": 17850, "Country": "United Kingdom"}')}),
	'1/0/0', 'retail: its pipeline routes old records');
$node->safe_psql('old', "SELECT txpipe.install_template('$_', '${_}_v3')") for qw(retail clicks);

is($node->safe_psql('old', 'SELECT count(*), count(card_key) FROM cards.fact_transaction'), '30|30',
	'every fact it held has its card_key');
is( $node->safe_psql('old', q{
		SELECT count(*) FROM cards.fact_transaction f
		  JOIN cards.transaction t USING (transaction_id)
		 WHERE f.card_key IS DISTINCT FROM t.card_id}), '0',
	'the card of its transaction');
is($node->safe_psql('old', 'SELECT string_agg(cc_masked, \',\' ORDER BY cc_masked) FROM cards.dim_card'),
	'************0000,************0001,************0002', 'the cards masked');
is(shape('old', 'cards'), shape('postgres', 'cards'),
	"cards: the tables, functions and privileges are those of a fresh install");
for my $t (qw(retail clicks))
{
	(my $fresh = shape('postgres', $t)) =~ s/\b$t\b/${t}_v3/g;
	is(shape('old', "${t}_v3"), $fresh, "$t: installed into a new schema, those of a fresh install");
}
is( $node->safe_psql('old', q{
		SELECT has_table_privilege('txpipe_reader', 'cards.card_activity', 'SELECT'),
			   has_column_privilege('txpipe_reader', 'cards.dim_customer', 'dob', 'SELECT'),
			   has_function_privilege('txpipe_reader', 'cards.card_lookup(text, date)', 'EXECUTE')}),
	'f|f|t', 'txpipe_reader has the lookup instead of the numbers and dates of birth');

# refreshes go on from the watermark; a rebuild gives the same star
$node->safe_psql('old', 'SELECT txpipe.ingest(\'cards\', (' . sprintf($records, 31, 40) . '))');
is($node->safe_psql('old', q{SELECT status || '/' || rows FROM txpipe.refresh('cards')}), 'ok/10',
	'an incremental refresh writes the new facts');
my $star = q{SELECT md5(string_agg(f::text, ',' ORDER BY transaction_id)) || md5(string_agg(d::text, ',' ORDER BY card_key))
			   FROM cards.fact_transaction f JOIN cards.dim_card d USING (card_key)};
my $before = $node->safe_psql('old', $star);
is($node->safe_psql('old', q{SELECT status || '/' || rows FROM txpipe.refresh('cards', full => true)}), 'ok/40',
	'a full refresh');
is($node->safe_psql('old', $star), $before, 'gives the same star');
is( $node->safe_psql('old', q{
		SELECT count(*) FROM cards.card_lookup('4000000000000001', '1960-01-02')}), '14',
	'the lookup finds a card of the old star');

$node->stop;
done_testing();
