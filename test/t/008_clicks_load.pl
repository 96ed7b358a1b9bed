# Generated click events, loaded with the client, end up in the database
# exactly as the generator says: valid events routed (with their users,
# sessions, products, categories and brands), bad ones dead-lettered,
# re-sent ones and events logged twice counted once (an event's identity is
# its content); the star refreshed from them has the same totals; a second
# load changes nothing.  Events updated and deleted afterwards reach the
# star through refresh_star(lo, hi, changed), which then equals a rebuild.
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

# Corrections: events updated (prices, types, times, sessions, users,
# products) and deleted after they reached the star, and events that reach
# it only through the changed ids (as on a subscriber), refreshed
# incrementally with refresh_star(lo, hi, changed).  The star must equal a
# rebuild's, the views their aggregates of the facts.
my $w = $node->safe_psql('postgres', 'SELECT max(event_seq) FROM clicks.fact_event');
is($w, $node->safe_psql('postgres', 'SELECT max(event_seq) FROM clicks.event'), 'the star has every event');
$node->safe_psql('postgres', q{
	CREATE TABLE public.changed (id bigint);
	CREATE FUNCTION public.track(VARIADIC ids bigint[]) RETURNS void LANGUAGE sql
		AS $$ INSERT INTO public.changed SELECT pg_catalog.unnest(ids) $$;
	-- the earliest event of a user with others; a carted and bought pair's
	-- cart event; a purchase that becomes a view; every event of a session
	-- on one day; a cart event moved to the day before
	SELECT track(VARIADIC array_agg(event_seq)) FROM (
		(SELECT e.event_seq FROM clicks.event e WHERE e.user_id IN
			(SELECT user_id FROM clicks.event GROUP BY 1 HAVING count(*) > 3 ORDER BY 1 LIMIT 5)
		  ORDER BY e.user_id, e.event_time LIMIT 1)
		UNION ALL
		(SELECT c.event_seq FROM clicks.event c JOIN clicks.event p USING (session_id, product_id)
		  WHERE c.event_type = 'cart' AND p.event_type = 'purchase' ORDER BY 1 LIMIT 10)) AS d;
	DELETE FROM clicks.event WHERE event_seq IN (SELECT id FROM public.changed);
	WITH u AS (
		UPDATE clicks.event SET event_type = 'view'
		 WHERE event_seq IN (SELECT event_seq FROM clicks.event WHERE event_type = 'purchase'
								AND session_id IS NOT NULL ORDER BY event_seq DESC LIMIT 20)
		RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	WITH d AS (
		DELETE FROM clicks.event WHERE session_id IN
			(SELECT session_id FROM clicks.event WHERE session_id IS NOT NULL GROUP BY 1 HAVING count(*) > 2 ORDER BY 1 LIMIT 10)
		RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM d;
	WITH u AS (
		UPDATE clicks.event SET event_time = event_time - interval '1 day'
		 WHERE event_seq IN (SELECT event_seq FROM clicks.event WHERE event_type = 'cart' ORDER BY event_seq LIMIT 30)
		RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	-- many of each kind
	WITH u AS (
		UPDATE clicks.event SET price = price + 1.5 WHERE event_seq % 37 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	WITH u AS (
		UPDATE clicks.event SET event_type = CASE event_type WHEN 'view' THEN 'cart' WHEN 'cart' THEN 'purchase'
				WHEN 'purchase' THEN 'remove_from_cart' ELSE 'view' END::clicks.event_type
		 WHERE event_seq % 41 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	WITH u AS (
		UPDATE clicks.event SET event_time = event_time - interval '1 day 3 hours 7 minutes' WHERE event_seq % 43 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	WITH u AS (
		UPDATE clicks.event SET session_id = NULL WHERE event_seq % 47 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	WITH u AS (
		UPDATE clicks.event SET session_id = (SELECT min(session_id) FROM clicks.session) WHERE event_seq % 53 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	WITH u AS (
		UPDATE clicks.event SET user_id = (SELECT max(user_id) FROM clicks.users) WHERE event_seq % 59 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	WITH u AS (
		UPDATE clicks.event SET product_id = (SELECT max(product_id) FROM clicks.product) WHERE event_seq % 61 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM u;
	WITH d AS (
		DELETE FROM clicks.event WHERE event_seq % 67 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM d;
	-- every event of the last day, of the least seen brand
	WITH d AS (
		DELETE FROM clicks.event WHERE (event_time AT TIME ZONE 'UTC')::date =
			(SELECT max((event_time AT TIME ZONE 'UTC')::date) FROM clicks.event) RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM d;
	WITH d AS (
		DELETE FROM clicks.event WHERE product_id IN (SELECT product_id FROM clicks.product WHERE brand_id =
			(SELECT p.brand_id FROM clicks.event e JOIN clicks.product p USING (product_id)
			  WHERE p.brand_id IS NOT NULL GROUP BY 1 ORDER BY count(*), 1 LIMIT 1)) RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM d;
	-- events past the watermark, a month later
	WITH i AS (
		INSERT INTO clicks.event (event_key, event_time, event_type, product_id, price, user_id, session_id)
		SELECT gen_random_uuid(), event_time + interval '30 days', event_type, product_id, price, user_id, session_id
		  FROM clicks.event WHERE event_seq % 31 = 0 RETURNING event_seq)
	SELECT track(VARIADIC array_agg(event_seq)) FROM i;
	-- ids twice, ids of no event, NULL
	INSERT INTO public.changed SELECT id FROM public.changed WHERE id % 3 = 0;
	INSERT INTO public.changed VALUES (NULL), (0), (-5), (999999999);
});
my $changed = 'ARRAY(SELECT id FROM public.changed ORDER BY random())';
cmp_ok($node->safe_psql('postgres', 'SELECT count(DISTINCT id) FROM public.changed'), '>', 2000,
	'more than 2,000 events changed');
for my $role (qw(txpipe_reader txpipe_writer txpipe_admin))
{
	for my $args ("$w, $w, ARRAY[1]::bigint[]", "$w, $w")
	{
		my ($rc, $out, $err) = $node->psql('postgres', "SET ROLE $role; SELECT clicks.refresh_star($args)");
		like($err, qr/permission denied for (function refresh_star|schema clicks)/,
			"$role may not run refresh_star($args)");
	}
}
cmp_ok($node->safe_psql('postgres', "SELECT clicks.refresh_star($w, $w, $changed)"), '>', 0,
	'the incremental refresh writes the changed events\' facts');
my @star = qw(fact_event agg_minute agg_hour agg_day agg_day_user agg_day_session agg_day_session_step
  agg_cart agg_cart_product agg_cart_day agg_category_dow_hour agg_code_dow_hour agg_brand_dow_hour
  agg_brand_day agg_brand dim_user dim_product dim_category dim_brand dim_date);
txpipe_views_match($node, 'clicks', \%direct, 'after corrections');
is( $node->safe_psql('postgres', q{
		SELECT sum(events) || '/' || sum(views) || '/' || sum(carts) || '/' || sum(removals) || '/'
			   || sum(purchases) || '/' || sum(revenue) || '/' || sum(visitors) || '/' || sum(sessions)
		  FROM clicks.events_daily JOIN clicks.unique_visitors_daily USING (date, events)}),
	$node->safe_psql('postgres', q{
		SELECT count(*) || '/' || count(*) FILTER (WHERE event_type = 'view') || '/'
			   || count(*) FILTER (WHERE event_type = 'cart') || '/' || count(*) FILTER (WHERE event_type = 'remove_from_cart') || '/'
			   || count(*) FILTER (WHERE event_type = 'purchase') || '/' || sum(price) FILTER (WHERE event_type = 'purchase') || '/'
			   || (SELECT count(*) FROM (SELECT DISTINCT (event_time AT TIME ZONE 'UTC')::date, user_id FROM clicks.event) d) || '/'
			   || (SELECT count(*) FROM (SELECT DISTINCT (event_time AT TIME ZONE 'UTC')::date, session_id FROM clicks.event
										  WHERE session_id IS NOT NULL) d)
		  FROM clicks.event}),
	'after corrections: events, types, revenue, visitors and sessions per day add up to the events\' table');
my $w2 = $node->safe_psql('postgres', 'SELECT max(event_seq) FROM clicks.event');
cmp_ok($w2, '>', $w, 'events past the watermark came through the changed ids');
# the range then reaches the events that came through the changed ids,
# two of which were corrected since
$node->safe_psql('postgres', "UPDATE clicks.event SET event_time = event_time + interval '2 hours', price = price + 1
	WHERE event_seq IN ($w2, $w2 - 1)");
is($node->safe_psql('postgres', "SELECT clicks.refresh_star($w, $w2, ARRAY[$w2, $w2 - 1])"), '2',
	'a range over events written through the changed ids writes only the corrected ones');
$node->safe_psql('postgres', 'CREATE SCHEMA incremental; '
	  . join(' ', map { "CREATE TABLE incremental.$_ AS SELECT * FROM clicks.$_;" } @star));
is($node->safe_psql('postgres', "SELECT clicks.refresh_star($w2, $w2, $changed)"), '0',
	'the same changes again write nothing');
is( $node->safe_psql('postgres', join(' + ', map { "(SELECT count(*) FROM ((SELECT * FROM incremental.$_ EXCEPT ALL SELECT * FROM clicks.$_)
		UNION ALL (SELECT * FROM clicks.$_ EXCEPT ALL SELECT * FROM incremental.$_)) d)" } @star) =~ s/^/SELECT /r),
	'0', 'the same changes again leave the star as it was');
# every fact and rollup table of the star now = the same table in schema
# $copy; dimension rows stay when their last fact leaves
sub star_matches
{
	my ($copy, $when) = @_;
	for my $t (@star)
	{
		my $only = $t =~ /^dim_(user|product|category|brand|date)$/
		  ? " WHERE ${1}_key IN (SELECT ${1}_key FROM clicks.fact_event)" : '';
		is( $node->safe_psql('postgres', qq{
				SELECT (SELECT count(*) FROM clicks.$t) || '/'
					   || (SELECT count(*) FROM ((SELECT * FROM $copy.$t$only EXCEPT ALL SELECT * FROM clicks.$t)
												 UNION ALL (SELECT * FROM clicks.$t EXCEPT ALL SELECT * FROM $copy.$t$only)) d)}),
			$node->safe_psql('postgres', "SELECT count(*) FROM clicks.$t") . '/0',
			"$t $when = $t rebuilt");
	}
}
$node->safe_psql('postgres', "SELECT clicks.refresh_star(0, $w2)");
star_matches('incremental', 'after the corrections');
cmp_ok($node->safe_psql('postgres', q{
		SELECT count(*) FROM incremental.dim_user WHERE user_key NOT IN (SELECT user_key FROM clicks.fact_event)}),
	'>', 0, 'a user whose events are all gone keeps a dim_user row');

# Through txpipe.refresh(): the grain's trigger logs the ids of updated and
# deleted events in txpipe.changes, new events arrive by the pipeline, and
# one incremental refresh takes both.
my $late = PostgreSQL::Test::Utils::tempdir() . '/late.ndjson';
txpipe_gen('clicks', $late, '--rows', 800, '--seed', 21);
ok(txpipe_load($node, 'clicks', $late), 'more events load');
$node->safe_psql('postgres', q{
	UPDATE clicks.event SET price = price + 2 WHERE event_seq % 29 = 0;
	UPDATE clicks.event SET event_type = 'purchase' WHERE event_seq % 31 = 1 AND session_id IS NOT NULL;
	UPDATE clicks.event SET event_time = event_time + interval '3 hours 1 minute' WHERE event_seq % 41 = 3;
	DELETE FROM clicks.event WHERE event_seq % 37 = 2;
});
cmp_ok($node->safe_psql('postgres', q{SELECT count(*) FROM txpipe.changes WHERE relid = 'clicks.event'::regclass}),
	'>', 1000, 'the trigger logs the updated and deleted events');
is($node->safe_psql('postgres', q{SELECT status FROM txpipe.refresh('clicks')}), 'ok', 'txpipe.refresh takes them');
is($node->safe_psql('postgres', q{SELECT count(*) FROM txpipe.changes WHERE relid = 'clicks.event'::regclass}),
	'0', 'and empties the log');
txpipe_views_match($node, 'clicks', \%direct, 'after txpipe.refresh with corrections');
$node->safe_psql('postgres', 'CREATE SCHEMA refreshed; '
	  . join(' ', map { "CREATE TABLE refreshed.$_ AS SELECT * FROM clicks.$_;" } @star));
$node->safe_psql('postgres', q{SELECT txpipe.refresh('clicks', full => true)});
star_matches('refreshed', 'after txpipe.refresh with corrections');

$node->stop;
done_testing();
