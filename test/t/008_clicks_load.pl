# Generated click events, loaded with the client, end up in the database
# exactly as the generator says: valid events routed (with their users,
# sessions, products, categories and brands), bad ones dead-lettered,
# re-sent ones and events logged twice counted once (an event's identity is
# its content); the star refreshed from them has the same totals; a second
# load changes nothing.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use PostgreSQL::Test::Utils;
use Test::More;
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('clicks');
$node->safe_psql('postgres', "SELECT txpipe.install_template('clicks')");

my $dir  = PostgreSQL::Test::Utils::tempdir();
my $file = "$dir/clicks.ndjson";
my @args = ('--rows', 10000, '--seed', 7, '--bad', '0.02', '--dups', '0.02');
my $s = txpipe_gen('clicks', $file, @args);
cmp_ok($s->{$_}, '>', 0, "the generator made $_")
  for qw(valid bad dups twins views carts purchases no_brand no_category_code);
is($s->{views} + $s->{carts} + $s->{removals} + $s->{purchases},
	$s->{valid}, 'every valid record is one event of a type');

txpipe_gen('clicks', "$dir/again.ndjson", @args);
is(slurp_file("$dir/again.ndjson"), slurp_file($file),
	'the same seed gives the same bytes');

ok(txpipe_load($node, 'clicks', $file), 'txpipe load succeeds');

my $st = txpipe_stats($node, 'clicks');
is($st->{accepted},   $s->{valid}, 'stats: accepted = valid records');
is($st->{rejected},   $s->{bad},   'stats: rejected = bad records');
is($st->{duplicates}, $s->{dups},  'stats: duplicates = re-sent records and events logged twice');
is($s->{dups}, $s->{resent} + $s->{twins}, 'the generator\'s duplicates are its re-sends and twins');

is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM txpipe.rejects
		 WHERE pipeline = 'clicks'
		   AND (coalesce(error_code, '') = '' OR coalesce(error_path, '') = ''
				OR coalesce(message, '') = '')}),
	0,
	'every reject has an error code, path and message');
cmp_ok( $node->safe_psql('postgres',
		q{SELECT count(DISTINCT error_code) FROM txpipe.rejects WHERE pipeline = 'clicks'}),
	'>=', 10, 'the bad records fail in at least 10 different ways');

is( $node->safe_psql('postgres', q{
		SELECT count(*) || '/' || count(DISTINCT event_key)
			   || '/' || count(*) FILTER (WHERE event_type = 'view')
			   || '/' || count(*) FILTER (WHERE event_type = 'cart')
			   || '/' || count(*) FILTER (WHERE event_type = 'purchase')
			   || '/' || coalesce(sum(price) FILTER (WHERE event_type = 'purchase'), 0)
			   || '/' || sum(price)
			   || '/' || count(*) FILTER (WHERE session_id IS NULL)
		  FROM clicks.event}),
	join('/', $s->{valid}, $s->{valid}, $s->{views}, $s->{carts}, $s->{purchases},
		$s->{purchase_amount}, $s->{sum_price}, $s->{no_session}),
	'events, event keys, views, carts, purchases, purchase amount, prices, events without a session');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE p.brand_id IS NULL) || '/'
			   || count(*) FILTER (WHERE c.category_code IS NULL)
		  FROM clicks.event e
		  JOIN clicks.product p USING (product_id)
		  JOIN clicks.category c USING (category_id)}),
	"$s->{no_brand}/$s->{no_category_code}",
	'events without a brand and without a category code');
is( $node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM clicks.users) || '/' || (SELECT count(*) FROM clicks.session)
			   || '/' || (SELECT count(*) FROM clicks.product) || '/' || (SELECT count(*) FROM clicks.category)
			   || '/' || (SELECT count(*) FROM clicks.brand)}),
	join('/', map { $s->{$_} } qw(users sessions products categories brands)),
	'users, sessions, products, categories and brands');
is( $node->safe_psql('postgres',
		'SELECT min(category_id) > 9007199254740992 FROM clicks.category'),
	't', 'every category id is above 2^53, kept exactly in a bigint');
cmp_ok( $node->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT product_id FROM clicks.event GROUP BY 1
							   HAVING count(DISTINCT price) > 1) AS p}),
	'>', 0, 'products are seen at different prices');

# the star
is( $node->safe_psql('postgres',
		q{SELECT status || '/' || rows FROM txpipe.refresh('clicks')}),
	"ok/$s->{valid}", 'the refresh writes one fact per event');
is( $node->safe_psql('postgres', q{
		SELECT sum(views) || '/' || sum(carts) || '/' || sum(purchases) || '/' || sum(revenue)
		  FROM clicks.funnel_daily}),
	join('/', $s->{views}, $s->{carts}, $s->{purchases}, $s->{purchase_amount}),
	'the funnel adds up to the generator\'s views, carts, purchases and purchase amount');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(brand, ',' ORDER BY rank, brand) FROM clicks.top_brands WHERE rank <= 3}),
	'samsung,apple,xiaomi', 'the top brands by purchases');

# The same file again: everything valid is now a duplicate.
ok(txpipe_load($node, 'clicks', $file), 'loading the same file again succeeds');
my $st2 = txpipe_stats($node, 'clicks');
is($st2->{accepted} - $st->{accepted}, 0, 'the second load accepts nothing');
is( $st2->{duplicates} - $st->{duplicates},
	$s->{valid} + $s->{dups},
	'the second load counts every valid record as a duplicate');
is($node->safe_psql('postgres', 'SELECT count(*) FROM clicks.event'),
	$s->{valid}, 'the event count is unchanged');

# The reporting views read the rollups; they give what the old views
# aggregated from the facts, after two refreshes and after a full rebuild.
# each session and product carted or bought: when first carted, and
# whether bought in the session
my $pairs = q{(SELECT session_id, product_key, min(event_time) FILTER (WHERE event_type = 'cart') AS carted_at,
			 bool_or(event_type = 'purchase') AS bought
		FROM clicks.fact_event WHERE session_id IS NOT NULL AND event_type IN ('cart', 'purchase')
	   GROUP BY 1, 2)};
my %direct = (
	funnel_daily => q{
		SELECT d.date,
			   count(*) FILTER (WHERE f.event_type = 'view') AS views,
			   count(*) FILTER (WHERE f.event_type = 'cart') AS carts,
			   count(*) FILTER (WHERE f.event_type = 'remove_from_cart') AS removals,
			   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
			   coalesce(sum(f.price) FILTER (WHERE f.event_type = 'purchase'), 0) AS revenue,
			   count(DISTINCT f.session_id) FILTER (WHERE f.event_type = 'view') AS viewing_sessions,
			   count(DISTINCT f.session_id) FILTER (WHERE f.event_type = 'cart') AS carting_sessions,
			   count(DISTINCT f.session_id) FILTER (WHERE f.event_type = 'purchase') AS purchasing_sessions,
			   round(count(*) FILTER (WHERE f.event_type = 'cart')::numeric
					 / nullif(count(*) FILTER (WHERE f.event_type = 'view'), 0), 4) AS cart_rate,
			   round(count(*) FILTER (WHERE f.event_type = 'purchase')::numeric
					 / nullif(count(*) FILTER (WHERE f.event_type = 'view'), 0), 4) AS purchase_rate
		  FROM clicks.fact_event f JOIN clicks.dim_date d USING (date_key) GROUP BY d.date},
	brand_daily => q{
		SELECT d.date, b.brand_key, b.brand,
			   count(*) FILTER (WHERE f.event_type = 'view') AS views,
			   count(*) FILTER (WHERE f.event_type = 'cart') AS carts,
			   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
			   coalesce(sum(f.price) FILTER (WHERE f.event_type = 'purchase'), 0) AS revenue
		  FROM clicks.fact_event f JOIN clicks.dim_brand b USING (brand_key)
		  JOIN clicks.dim_date d USING (date_key) GROUP BY d.date, b.brand_key, b.brand},
	carts_daily => qq{
		SELECT (o.carted_at AT TIME ZONE 'UTC')::date AS date, count(*) AS carted,
			   count(*) FILTER (WHERE o.bought) AS bought, count(*) FILTER (WHERE NOT o.bought) AS abandoned
		  FROM $pairs AS o
		 WHERE o.carted_at IS NOT NULL GROUP BY 1},
	cart_abandonment => qq{
		SELECT o.product_key, b.brand, c.category_code, count(*) AS carted,
			   count(*) FILTER (WHERE o.bought) AS bought, count(*) FILTER (WHERE NOT o.bought) AS abandoned,
			   round(count(*) FILTER (WHERE NOT o.bought)::numeric / count(*), 4) AS abandonment_rate
		  FROM $pairs AS o
		  JOIN clicks.dim_product p USING (product_key) JOIN clicks.dim_brand b USING (brand_key)
		  JOIN clicks.dim_category c USING (category_key)
		 WHERE o.carted_at IS NOT NULL GROUP BY o.product_key, b.brand, c.category_code},
	# from agg_cart_product when the range holds every cart, else from agg_cart
	(map {;
		my ($since, $until) = @$_;
		("cart_abandonment_between('$since', '$until')" => qq{
		SELECT o.product_key, b.brand, c.category_code, count(*) AS carted,
			   count(*) FILTER (WHERE o.bought) AS bought, count(*) FILTER (WHERE NOT o.bought) AS abandoned
		  FROM $pairs AS o
		  JOIN clicks.dim_product p USING (product_key) JOIN clicks.dim_brand b USING (brand_key)
		  JOIN clicks.dim_category c USING (category_key)
		 WHERE o.carted_at BETWEEN '$since' AND '$until' GROUP BY o.product_key, b.brand, c.category_code})
	} [ '2019-09-01', '2019-12-01' ], [ '2019-10-05', '2019-10-19 12:00' ]),
	category_code_by_hour_weekday => q{
		SELECT extract(isodow FROM f.event_time AT TIME ZONE 'UTC')::smallint AS day_of_week,
			   to_char(f.event_time AT TIME ZONE 'UTC', 'FMDay') AS day_name, f.hour,
			   coalesce(c.category_code, '(no category code)') AS category,
			   count(*) FILTER (WHERE f.event_type = 'view') AS views,
			   count(*) FILTER (WHERE f.event_type = 'cart') AS carts,
			   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
			   coalesce(sum(f.price) FILTER (WHERE f.event_type = 'purchase'), 0) AS revenue
		  FROM clicks.fact_event f JOIN clicks.dim_category c USING (category_key) GROUP BY 1, 2, 3, 4},
	# events in buckets: hours from agg_hour, minutes from agg_minute;
	# the busiest minute from the facts
	map {;
		my $b = $_;
		("events_series('2019-09-01', '2019-12-01', $b)" => qq{
		SELECT to_timestamp(floor(extract(epoch FROM m.minute) / $b) * $b) AS "time",
			   sum(m.events)::bigint AS events, sum(m.views)::bigint AS views, sum(m.carts)::bigint AS carts,
			   sum(m.purchases)::bigint AS purchases, sum(m.revenue) AS revenue, max(m.events) AS peak_minute_events
		  FROM (SELECT date_trunc('minute', f.event_time) AS minute, count(*) AS events,
					   count(*) FILTER (WHERE f.event_type = 'view') AS views,
					   count(*) FILTER (WHERE f.event_type = 'cart') AS carts,
					   count(*) FILTER (WHERE f.event_type = 'purchase') AS purchases,
					   coalesce(sum(f.price) FILTER (WHERE f.event_type = 'purchase'), 0) AS revenue
				  FROM clicks.fact_event f GROUP BY 1) AS m
		 GROUP BY 1})
	} 3600, 86400, 300);
# another file in two halves, each refreshed on top: sessions and days
# that span both
my $more = PostgreSQL::Test::Utils::tempdir() . '/more.ndjson';
txpipe_gen('clicks', $more, '--rows', 3000, '--seed', 14);
open my $mf, '<:raw', $more or die $!;
my @lines = <$mf>;
close $mf;
for my $part ([ 0, 1499 ], [ 1500, $#lines ])
{
	my $f = PostgreSQL::Test::Utils::tempdir() . "/part$part->[0].ndjson";
	open my $pf, '>:raw', $f or die $!;
	print $pf @lines[ $part->[0] .. $part->[1] ];
	close $pf;
	ok(txpipe_load($node, 'clicks', $f), "events $part->[0] to $part->[1] load");
	like($node->safe_psql('postgres', q{SELECT status FROM txpipe.refresh('clicks')}), qr/^ok$/, 'and refresh');
}
my %seen;
$seen{$_}++ for map { /"user_session":"([^"]+)"/ ? $1 : () } @lines[ 0 .. 1499 ];
cmp_ok(scalar(grep { /"user_session":"([^"]+)"/ && $seen{$1} } @lines[ 1500 .. $#lines ]), '>', 0,
	'some sessions have events in both halves');
txpipe_views_match($node, 'clicks', \%direct, 'incremental');
$node->safe_psql('postgres', q{SELECT txpipe.refresh('clicks', full => true)});
txpipe_views_match($node, 'clicks', \%direct, 'rebuilt');

# the panel's top of the abandoned products: the same rows, in the same
# order, as sorting cart_abandonment_between
for my $r ([ '2019-09-01', '2019-12-01' ], [ '2019-10-05', '2019-10-19 12:00' ])
{
	my ($since, $until) = @$r;
	my $top = $node->safe_psql('postgres', "SELECT * FROM clicks.cart_abandonment_top('$since', '$until', 20)");
	my $sorted = $node->safe_psql('postgres', "SELECT * FROM clicks.cart_abandonment_between('$since', '$until')
		ORDER BY abandoned DESC, carted DESC, product_key LIMIT 20");
	isnt($top, '', "cart_abandonment_top($since, $until): rows");
	is($top, $sorted, "cart_abandonment_top($since, $until) is the top of cart_abandonment_between");
}

$node->stop;
done_testing();
