# Every attack of issue #10, made as the ordinary role that found it
# (writer, a role with no grant, table owner, txpipe_admin, database
# owner, reader), and the safe outcome asserted: the attacker never becomes
# superuser, its code never runs as a superuser (where the design should
# never run it at all: never), nothing is routed that should not be, and a
# refusal is an error with SQLSTATE 42501 where the privilege is missing.
# Each check stands alone: one attack that still works hides no other.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/..";

use Digest::MD5 qw(md5_hex);
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use TxpipeTest;

txpipe_require_client();

my $node = txpipe_node('security');
my $dir  = PostgreSQL::Test::Utils::tempdir();

# ---------------------------------------------------------------- helpers

# psql as ROLE in DB: (rc, stdout, stderr), never dies.
sub as
{
	my ($role, $sql, $db) = @_;
	my ($out, $err) = ('', '');
	my $rc = $node->psql($db || 'postgres', "\\set VERBOSITY verbose\n$sql",
		stdout => \$out, stderr => \$err, extra_params => [ '-U', $role ],
		on_error_stop => 1);
	return ($rc, $out, $err);
}

sub su
{
	my ($sql, $db) = @_;
	return as('postgres', $sql, $db);
}

# one value as the superuser ('' on error)
sub q1
{
	my ($sql, $db) = @_;
	my ($rc, $out, $err) = su($sql, $db);
	diag "superuser query failed: $sql\n$err" if $rc;
	return $out;
}

my %is_role;

sub role
{
	my ($name, $opts) = @_;
	q1("CREATE ROLE $name LOGIN $opts");
	$is_role{$name} = 1;
	return $name;
}

sub make_pwned
{
	my ($db) = @_;
	q1( q{CREATE TABLE public.pwned (cu name, su name, at timestamptz DEFAULT clock_timestamp());
		  GRANT ALL ON public.pwned TO PUBLIC;}, $db);
	return;
}

# The body of an evil function: records who ran it and tries to make
# ATTACKER superuser; RET is what it returns.
sub evil_body
{
	my ($attacker, $ret) = @_;
	return qq{LANGUAGE plpgsql AS \$evil\$ BEGIN
		INSERT INTO public.pwned (cu, su) VALUES (current_user, session_user);
		BEGIN EXECUTE pg_catalog.format('ALTER ROLE %I SUPERUSER', '$attacker');
		EXCEPTION WHEN OTHERS THEN NULL; END;
		$ret;
	END \$evil\$};
}

# The safe outcome: ATTACKER is not superuser and no evil function ran as a
# superuser; with $never, no evil function ran at all.  Resets both for the
# next attack.
sub safe
{
	my ($what, $attacker, %o) = @_;
	my $db = $o{db} || 'postgres';
	is(q1("SELECT rolsuper FROM pg_roles WHERE rolname = '$attacker'", $db), 'f',
		"$what: $attacker is not superuser");
	is( q1( q{SELECT count(*) FROM public.pwned p JOIN pg_roles r ON r.rolname = p.cu WHERE r.rolsuper},
			$db),
		'0', "$what: no evil code ran as a superuser");
	if ($o{never})
	{
		is(q1('SELECT count(*) FROM public.pwned', $db), '0', "$what: the attacker's code never ran");
	}
	note "$what: pwned rows: " . q1("SELECT string_agg(cu || '/' || su, ' ') FROM public.pwned", $db);
	q1("ALTER ROLE $attacker NOSUPERUSER; TRUNCATE public.pwned", $db);
	return;
}

sub refused
{
	my ($what, $rc, $err, $code) = @_;
	isnt($rc, 0, "$what: refused");
	like($err, qr/ERROR:  $code/, "$what: SQLSTATE $code") if $code;
	note "$what: $err" if $err;
	return;
}

my $n = 0;

# A card record with a fresh trans_num; returns (trans_num, json line).
sub card
{
	my $tn = md5_hex('security' . $n++);
	return ($tn,
		qq({"trans_date_trans_time":"2020-01-01 00:00:00","cc_num":4200000000000001,"merchant":"fraud_M1","category":"travel","amt":10.5,"first":"F","last":"L","gender":"M","street":"1 Pine St","city":"C1","state":"NY","zip":20001,"lat":45,"long":-120,"city_pop":500,"job":"Pilot","dob":"1975-05-01","trans_num":"$tn","unix_time":1577836800,"merch_lat":45,"merch_long":-120,"is_fraud":0})
	);
}

sub landed
{
	my ($tn, $db) = @_;
	return q1("SELECT count(*) FROM cards.transaction WHERE trans_num = '$tn'", $db);
}

sub copy_sql
{
	my ($pipeline, @lines) = @_;
	return "COPY txpipe_in.$pipeline FROM STDIN WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02');\n"
	  . join("\n", @lines) . "\n\\.\n";
}

sub lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

sub wait_until
{
	my ($sql, $expected, $secs, $db) = @_;
	my $t0 = time;
	while (time - $t0 < $secs)
	{
		return 1 if q1($sql, $db) eq $expected;
		sleep(0.2);
	}
	return 0;
}

sub worker_listens
{
	my ($db) = @_;
	return wait_until(
		qq{SELECT count(*) > 0 FROM pg_stat_activity
			WHERE application_name = 'txpipe listener' AND datname = '$db' AND query ~ 'LISTEN'}, 't', 20);
}

# ------------------------------------------------------------------ setup

q1('CREATE EXTENSION pg_cron');
make_pwned('postgres');
for my $t (qw(cards retail clicks))
{
	q1("SELECT txpipe.install_template('$t')");
}
my $writer_t = role('atk_temp',   'IN ROLE txpipe_writer');    # TEMP only (PUBLIC's)
my $writer_s = role('atk_schema', 'IN ROLE txpipe_writer');    # a schema of its own
my $nobody   = role('atk_nobody', '');                          # no grant at all
my $towner   = role('atk_towner', '');                          # owns a table
my $admin    = role('atk_admin',  'IN ROLE txpipe_admin');
my $dbowner  = role('atk_dbowner', 'CREATEDB');
my $writer   = role('app_writer', 'IN ROLE txpipe_writer');
my $reader   = role('app_reader', 'IN ROLE txpipe_reader');
q1("REVOKE CREATE ON SCHEMA public FROM PUBLIC; CREATE SCHEMA w AUTHORIZATION $writer_s");
ok(q1('SELECT txpipe.start_worker()') > 0, 'a worker runs in postgres');
ok(worker_listens('postgres'), 'the worker LISTENs');

my ($rc, $out, $err, $tn, $line);

# A superuser's pipeline over its own table that writers may send to on
# any build: on builds that compile the plan with the caller's rights the
# writers also get USAGE and INSERT, SELECT (txpipe.grant_send where it
# exists).  The shipped templates are tried too.
q1( q{CREATE SCHEMA s1;
	  CREATE TABLE s1.dim (dim_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text NOT NULL UNIQUE);
	  CREATE TABLE s1.t (k text PRIMARY KEY, n bigint, dim_id bigint REFERENCES s1.dim);
	  SELECT txpipe.create_pipeline('p1', '{"schema": "s1", "idempotency_key": "k",
		"contract": {"type": "object", "required": ["k", "v"],
					 "properties": {"k": {"type": "string"}, "n": {"type": "integer"}, "v": {"type": "string"}}},
		"routes": [{"table": "dim", "key": {"v": "v"}, "id": "dim_id"},
				   {"table": "t", "columns": {"k": "k", "n": "n", "dim_id": "@dim"}}]}');
	  GRANT USAGE ON SCHEMA s1 TO txpipe_writer; GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA s1 TO txpipe_writer;
	  GRANT USAGE ON ALL SEQUENCES IN SCHEMA s1 TO txpipe_writer;});
q1(q{SELECT txpipe.grant_send('p1', 'txpipe_writer')})
  if q1(q{SELECT to_regproc('txpipe.grant_send') IS NOT NULL}) eq 't';

sub p1_landed
{
	my (@k) = @_;
	return q1('SELECT count(*) FROM s1.t WHERE k IN (' . join(',', map { "'$_'" } @k) . ')');
}

# ---- 1. writer with only TEMP: pg_temp.text domain calling pg_temp.evil
{
	my ($tn1, $l1) = card();
	my ($tn2, $l2) = card();
	($rc, $out, $err) = as(
		$writer_t, qq{
		CREATE FUNCTION pg_temp.evil(text) RETURNS boolean @{[evil_body($writer_t, 'RETURN true')]};
		CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
		CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.evil(VALUE::pg_catalog.text));
		SELECT accepted FROM txpipe.ingest('p1', '{"k": "1a", "n": 1, "v": "x1a"}');
		@{[copy_sql('p1', '{"k": "1b", "n": 2, "v": "x1b"}')]}});
	is($rc, 0, '1. TEMP-only writer: ingest and COPY into p1 succeed with pg_temp shadows') or diag $err;
	is(p1_landed('1a', '1b'), '2', '1. both records are routed into p1');
	safe('1. pg_temp domain, p1', $writer_t, never => 1);
	($rc, $out, $err) = as(
		$writer_t, qq{
		CREATE FUNCTION pg_temp.evil(text) RETURNS boolean @{[evil_body($writer_t, 'RETURN true')]};
		CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.evil(VALUE));
		CREATE DOMAIN pg_temp.int8 AS pg_catalog.int8 CHECK (pg_temp.evil(VALUE::pg_catalog.text));
		SELECT accepted FROM txpipe.ingest('cards', @{[lit($l1)]});
		@{[copy_sql('cards', $l2)]}});
	is($rc, 0, '1. TEMP-only writer: ingest and COPY into cards succeed with pg_temp shadows') or diag $err;
	is(landed($tn1) . landed($tn2), '11', '1. both records are routed into cards');
	safe('1. pg_temp domain, cards', $writer_t, never => 1);
}

# ---- 2. writer with its own schema: w.unnest(text[]), SET search_path
{
	my ($tn1, $l1) = card();
	my ($tn2, $l2) = card();
	($rc, $out, $err) = as(
		$writer_s, qq{
		CREATE FUNCTION w.unnest(text[]) RETURNS SETOF text
			@{[evil_body($writer_s, 'RETURN QUERY SELECT pg_catalog.unnest($1)')]};
		CREATE FUNCTION w.unnest(bigint[]) RETURNS SETOF bigint
			@{[evil_body($writer_s, 'RETURN QUERY SELECT pg_catalog.unnest($1)')]};
		CREATE FUNCTION w.count(anyelement) RETURNS bigint
			@{[evil_body($writer_s, 'RETURN 1')]};
		SET search_path = w, public;
		SELECT accepted FROM txpipe.ingest('p1', '{"k": "2a", "n": 1, "v": "x2a"}');
		@{[copy_sql('p1', '{"k": "2b", "n": 2, "v": "x2b"}')]}
		SELECT accepted FROM txpipe.ingest('cards', @{[lit($l1)]});
		@{[copy_sql('cards', $l2)]}});
	is($rc, 0, '2. writer with a schema: ingest and COPY succeed with search_path = w, public') or diag $err;
	is(p1_landed('2a', '2b'), '2', '2. both records are routed into p1');
	is(landed($tn1) . landed($tn2), '11', '2. both records are routed into cards');
	safe('2. own schema unnest', $writer_s, never => 1);
}

# ---- 3. a role with no grant: NOTIFY txpipe_ingest; public.unnest in the worker
{
	($tn, $line) = card();
	q1('GRANT CREATE ON SCHEMA public TO PUBLIC');
	($rc, $out, $err) = as(
		$nobody, qq{
		CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text
			@{[evil_body($nobody, 'RETURN QUERY SELECT pg_catalog.unnest($1)')]};
		CREATE FUNCTION public.unnest(jsonb[]) RETURNS SETOF jsonb
			@{[evil_body($nobody, 'RETURN QUERY SELECT pg_catalog.unnest($1)')]};
		SELECT pg_notify('txpipe_ingest', @{[lit(qq({"pipeline":"cards","records":[$line]}))]});});
	is($rc, 0, '3. anyone may NOTIFY') or diag $err;
	# a record the superuser enqueues: the worker has read past the NOTIFY
	# (and would have run public.unnest) once it is routed
	my ($tn2, $l2) = card();
	q1("SELECT txpipe.enqueue('cards', " . lit($l2) . '::jsonb)');
	ok(wait_until("SELECT count(*) FROM cards.transaction WHERE trans_num = '$tn2'", '1', 15),
		'3. the worker routes a queued record meanwhile');
	sleep(2);
	is(landed($tn), '0', '3. the NOTIFY of a role with no grant routed nothing into cards');
	safe('3. NOTIFY + public.unnest', $nobody, never => 1);

	# sending without a grant is refused on every path
	my ($tn3, $l3) = card();
	($rc, $out, $err) = as($nobody, "SELECT txpipe.ingest('cards', " . lit($l3) . ')');
	refused('3. no grant: ingest', $rc, $err, '42501');
	($rc, $out, $err) = as($nobody, "SELECT txpipe.enqueue('cards', " . lit($l3) . '::jsonb)');
	refused('3. no grant: enqueue', $rc, $err, '42501');
	($rc, $out, $err) = as($nobody, copy_sql('cards', $l3));
	refused('3. no grant: COPY', $rc, $err, '42501');
	q1('SELECT txpipe.drain()');
	is(landed($tn3), '0', '3. nothing of it routed');
	q1('DROP FUNCTION public.unnest(text[]), public.unnest(jsonb[])');
}

# ---- 4. shadows in a writable public while a superuser manages pipelines
{
	($rc, $out, $err) = as(
		$nobody, qq{
		CREATE FUNCTION public.format(text, text) RETURNS text
			@{[evil_body($nobody, 'RETURN pg_catalog.format($1, $2)')]};
		CREATE FUNCTION public.format(text, text, text) RETURNS text
			@{[evil_body($nobody, 'RETURN pg_catalog.format($1, $2, $3)')]};
		CREATE FUNCTION public.format(text, regclass) RETURNS text
			@{[evil_body($nobody, 'RETURN pg_catalog.format($1, $2)')]};
		CREATE FUNCTION public.format(text, name) RETURNS text
			@{[evil_body($nobody, 'RETURN pg_catalog.format($1, $2)')]};
		CREATE FUNCTION public.quote_ident(varchar) RETURNS text
			@{[evil_body($nobody, 'RETURN pg_catalog.quote_ident($1)')]};
		CREATE FUNCTION public.to_regclass(varchar) RETURNS regclass
			@{[evil_body($nobody, 'RETURN pg_catalog.to_regclass($1)')]};
		CREATE FUNCTION public.jsonb_build_object(text, text) RETURNS jsonb
			@{[evil_body($nobody, "RETURN pg_catalog.jsonb_build_object(\$1, \$2)")]};});
	is($rc, 0, '4. a role with no grant shadows format & co. in public') or diag $err;
	q1( q{CREATE SCHEMA s4;
		  CREATE TABLE s4.orders (order_id text PRIMARY KEY, qty integer NOT NULL)});
	my $spec = q{'{"schema": "s4", "idempotency_key": "id",
		"contract": {"type": "object", "required": ["id", "qty"],
					 "properties": {"id": {"type": "string"}, "qty": {"type": "integer"}}},
		"routes": [{"table": "orders", "columns": {"order_id": "id", "qty": "qty"}}]}'};
	my @calls = (
		"SELECT txpipe.create_pipeline('p4', $spec)",
		"SELECT txpipe.create_pipeline('p4', $spec, or_replace => true)",
		"SELECT txpipe.install_template('cards', 'cards4')",
		"SELECT txpipe.refresh('cards')",
		"SELECT txpipe.schedule_refresh('cards')",
		"SELECT txpipe.unschedule_refresh('cards')",
		"SELECT txpipe.drop_pipeline('p4')");
	for my $c (@calls)
	{
		($rc, $out, $err) = su("SET search_path = \"\$user\", public; $c");
		is($rc, 0, "4. superuser: $c") or diag $err;
	}
	safe('4. public.format & co. in superuser calls', $nobody, never => 1);
	q1('DROP FUNCTION public.format(text, text), public.format(text, text, text), public.format(text, regclass),
		public.format(text, name), public.quote_ident(varchar), public.to_regclass(varchar),
		public.jsonb_build_object(text, text); REVOKE CREATE ON SCHEMA public FROM PUBLIC');
}

# ---- 5. a table owned by an ordinary role, with code on it (a CHECK, a
# default, an index expression, a trigger: one table each), routed by a
# superuser's pipeline: refused, or run as the table's owner, never as the
# superuser; on the direct paths and in the worker
{
	q1("CREATE SCHEMA s5 AUTHORIZATION $towner");
	my %ddl = (
		check   => 'CREATE TABLE s5.t_check (k text PRIMARY KEY CHECK (s5.ev(k)), w text)',
		default => 'CREATE TABLE s5.t_default (k text PRIMARY KEY, w text, d boolean DEFAULT s5.ev(\'d\'))',
		index   => 'CREATE TABLE s5.t_index (k text PRIMARY KEY, w text); CREATE INDEX ON s5.t_index (s5.ix(w))',
		trigger => 'CREATE TABLE s5.t_trigger (k text PRIMARY KEY, w text);
					CREATE TRIGGER tg BEFORE INSERT ON s5.t_trigger FOR EACH ROW EXECUTE FUNCTION s5.tg()');
	($rc, $out, $err) = as(
		$towner, qq{
		CREATE FUNCTION s5.ev(text) RETURNS boolean @{[evil_body($towner, 'RETURN true')]};
		CREATE FUNCTION s5.ix(text) RETURNS boolean IMMUTABLE LANGUAGE sql AS 'SELECT s5.ev(\$1)';
		CREATE FUNCTION s5.tg() RETURNS trigger @{[evil_body($towner, 'RETURN NEW')]};
		@{[join(";\n", values %ddl)]};});
	is($rc, 0, '5. an ordinary role owns tables with a CHECK, a default, an index expression, a trigger')
	  or diag $err;
	q1('TRUNCATE public.pwned');
	for my $kind (sort keys %ddl)
	{
		my $p = "p5_$kind";
		my ($crc, $cout, $cerr) = su(qq{SELECT txpipe.create_pipeline('$p', '{"schema": "s5", "idempotency_key": "k",
			"contract": {"type": "object", "required": ["k"],
						 "properties": {"k": {"type": "string"}, "w": {"type": "string"}}},
			"routes": [{"table": "t_$kind", "columns": {"k": "k", "w": "w"}}]}')});
		note "5. $kind: create_pipeline: rc $crc $cerr";
		next if $crc != 0;
		($rc, $out, $err) = su(qq{SELECT txpipe.ingest('$p', '{"k": "a", "w": "x"}')});
		note "5. $kind: ingest: rc $rc $out $err";
		($rc, $out, $err) = su(copy_sql($p, '{"k": "b", "w": "x"}'));
		note "5. $kind: COPY: rc $rc $err";
		($rc, $out, $err) = su(qq{SELECT txpipe.enqueue('$p', '{"k": "c", "w": "x"}'::jsonb)});
		note "5. $kind: enqueue: rc $rc $err";
		wait_until(qq{SELECT count(*) FROM txpipe.inbox WHERE pipeline = '$p'}, '0', 10);
		note "5. $kind: routed: " . q1("SELECT string_agg(k, ',') FROM s5.t_$kind");
	}
	safe('5. table owner code (ingest, COPY, worker)', $towner);
}

# ---- 6. txpipe_admin
{
	($rc, $out, $err) = as($admin, q{UPDATE txpipe.pipelines SET owner = 'postgres'});
	refused('6a. admin: UPDATE txpipe.pipelines SET owner', $rc, $err, '42501');
	is(q1(q{SELECT count(*) FROM txpipe.pipelines WHERE owner = 'atk_admin'::regrole}), '0',
		'6a. (it owns no pipeline yet)');

	# an evil refresh function pointed at by the superuser's cards pipeline
	q1("CREATE SCHEMA a6 AUTHORIZATION $admin");
	($rc, $out, $err) = as(
		$admin, qq{
		CREATE FUNCTION a6.refresh_evil(lo bigint, hi bigint) RETURNS bigint
			@{[evil_body($admin, 'RETURN 0')]};
		UPDATE txpipe.pipelines SET spec = jsonb_set(spec, '{refresh,function}', '"a6.refresh_evil"')
		 WHERE name = 'cards';});
	refused('6b. admin: UPDATE the spec of the superuser\'s cards', $rc, $err, '42501');
	($rc, $out, $err) = as($admin,
		q{SELECT txpipe.create_pipeline('cards', jsonb_set((SELECT spec FROM txpipe.pipelines WHERE name = 'cards'),
			'{refresh,function}', '"a6.refresh_evil"'), or_replace => true)});
	refused('6b. admin: create_pipeline(cards, or_replace) of the superuser\'s pipeline', $rc, $err, '42501');
	($rc, $out, $err) = as($admin, q{SELECT txpipe.drop_pipeline('cards')});
	refused('6b. admin: drop_pipeline of the superuser\'s pipeline', $rc, $err, '42501');
	is(q1(q{SELECT spec->'refresh'->>'function' FROM txpipe.pipelines WHERE name = 'cards'}), 'refresh_star',
		'6b. cards still refreshes with its own function');

	# its own pipeline with its own refresh function, refreshed by the
	# superuser (directly and by the pg_cron job's command)
	($rc, $out, $err) = as(
		$admin, q{
		CREATE TABLE a6.events (event_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, k text UNIQUE);
		SELECT txpipe.create_pipeline('p6', '{"schema": "a6", "idempotency_key": "k",
			"contract": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}},
			"routes": [{"table": "events", "columns": {"k": "k"}}],
			"refresh": {"function": "refresh_evil", "watermark": "event_id"}}');
		SELECT txpipe.ingest('p6', '{"k": "one"}');});
	is($rc, 0, '6b. admin creates its own pipeline with its own refresh function') or diag $err;
	($rc, $out, $err) = su(q{SELECT txpipe.refresh('p6')});
	note "6b. superuser refresh(p6): rc $rc $err";
	($rc, $out, $err) = su(q{SELECT txpipe.schedule_refresh('p6')});
	note "6b. schedule_refresh(p6): rc $rc $err";
	my $cmd = q1(q{SELECT command FROM cron.job WHERE jobname = 'txpipe_refresh_p6'});
	if ($cmd ne '')
	{
		($rc, $out, $err) = su($cmd);
		note "6b. the cron job's command as superuser: rc $rc $err";
		su(q{SELECT txpipe.unschedule_refresh('p6')});
	}
	($rc, $out, $err) = su(q{SELECT txpipe.refresh('cards')});
	safe('6b. refresh function', $admin);

	# templates
	($rc, $out, $err) = as($admin,
		q{UPDATE txpipe.templates SET ddl = ddl || ' SELECT 1' WHERE name = 'retail'});
	refused('6c. admin: UPDATE txpipe.templates SET ddl', $rc, $err, '42501');
	($rc, $out, $err) = as($admin, q{INSERT INTO txpipe.templates VALUES ('evil', 'SELECT 1', '{}')});
	refused('6c. admin: INSERT INTO txpipe.templates', $rc, $err, '42501');

	# txpipe_in
	($rc, $out, $err) = as(
		$admin, qq{
		CREATE FUNCTION a6.tg() RETURNS trigger @{[evil_body($admin, 'RETURN NEW')]};
		CREATE TABLE txpipe_in.p6c (doc text);
		CREATE TRIGGER tg BEFORE INSERT ON txpipe_in.p6c FOR EACH ROW EXECUTE FUNCTION a6.tg();});
	refused('6d. admin: CREATE TABLE in txpipe_in', $rc, $err, '42501');
	q1('CREATE TABLE txpipe_in.p6d (doc text); CREATE SCHEMA s6; CREATE TABLE s6.events (k text PRIMARY KEY)');
	($rc, $out, $err) = su(q{SELECT txpipe.create_pipeline('p6d', '{"schema": "s6", "idempotency_key": "k",
			"contract": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}},
			"routes": [{"table": "events", "columns": {"k": "k"}}]}')});
	like($err, qr/txpipe_in/, '6d. the refusal names the txpipe_in table');
	refused('6d. create_pipeline does not adopt a txpipe_in table it did not create', $rc, $err);
	safe('6. txpipe_admin', $admin);
}

# ---- 7. squatting by a database owner
{
	q1("CREATE DATABASE squat OWNER $dbowner");
	make_pwned('squat');
	($rc, $out, $err) = as(
		$dbowner, qq{
		CREATE SCHEMA cards;
		CREATE FUNCTION cards.refresh_star(lo bigint, hi bigint) RETURNS bigint
			@{[evil_body($dbowner, 'RETURN 0')]};
		CREATE FUNCTION cards.card_lookup(cc_num text, dob date) RETURNS SETOF record
			@{[evil_body($dbowner, 'RETURN')]};}, 'squat');
	is($rc, 0, '7a. the database owner pre-creates schema cards with refresh_star') or diag $err;
	q1('CREATE EXTENSION txpipe', 'squat');
	($rc, $out, $err) = su(q{SELECT txpipe.install_template('cards')}, 'squat');
	refused('7a. install_template refuses a schema it did not create', $rc, $err);
	as($dbowner, qq{CREATE OR REPLACE FUNCTION cards.refresh_star(lo bigint, hi bigint) RETURNS bigint
			@{[evil_body($dbowner, 'RETURN 0')]};}, 'squat');
	($tn, $line) = card();
	su("SELECT txpipe.ingest('cards', " . lit($line) . ')', 'squat');
	($rc, $out, $err) = su(q{SELECT txpipe.refresh('cards')}, 'squat');
	note "7a. superuser refresh(cards) in squat: rc $rc $err";
	safe('7a. squatted cards', $dbowner, db => 'squat', never => 1);

	q1("CREATE DATABASE squat2 OWNER $dbowner");
	make_pwned('squat2');
	($rc, $out, $err) = as(
		$dbowner, qq{
		CREATE SCHEMA txpipe;
		CREATE FUNCTION txpipe.format(text, int, int) RETURNS text
			@{[evil_body($dbowner, 'RETURN pg_catalog.format($1, $2, $3)')]};
		CREATE FUNCTION txpipe.format(text, text) RETURNS text
			@{[evil_body($dbowner, 'RETURN pg_catalog.format($1, $2)')]};
		CREATE FUNCTION txpipe.format(text, text, text) RETURNS text
			@{[evil_body($dbowner, 'RETURN pg_catalog.format($1, $2, $3)')]};}, 'squat2');
	is($rc, 0, '7b. the database owner pre-creates schema txpipe with txpipe.format') or diag $err;
	($rc, $out, $err) = su('CREATE EXTENSION txpipe', 'squat2');
	refused('7b. CREATE EXTENSION refuses a txpipe schema it did not create', $rc, $err);
	safe('7b. squatted txpipe', $dbowner, db => 'squat2', never => 1);
}

# ---- 8. DROP DATABASE by a role that does not own it
{
	q1('CREATE DATABASE x8');
	q1("CREATE EXTENSION txpipe; SELECT txpipe.install_template('cards')", 'x8');
	q1('SELECT txpipe.start_worker()', 'x8');
	ok(worker_listens('x8'), '8. a worker runs in x8');
	my $wq = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'txpipe worker' AND datname = 'x8'};
	my $pid = q1($wq);
	for (1 .. 5)
	{
		($rc, $out, $err) = as($nobody, 'DROP DATABASE x8');
		sleep(0.3);
	}
	refused('8. DROP DATABASE x8 by a role that does not own it', $rc, $err, '42501');
	is(q1($wq), $pid, '8. x8\'s worker still runs, the same process');
	($tn, $line) = card();
	my $t0 = time;
	q1("SELECT txpipe.enqueue('cards', " . lit($line) . '::jsonb)', 'x8');
	ok(wait_until("SELECT count(*) FROM cards.transaction WHERE trans_num = '$tn'", '1', 5, 'x8'),
		'8. a record enqueued in x8 is routed within 5 s');
	note sprintf('8. routed after %.1f s', time - $t0);
	q1('SELECT txpipe.stop_worker()', 'x8');
}

# ---- 9. forged inbox rows
{
	for my $sql (
		'INSERT INTO txpipe.inbox DEFAULT VALUES',
		q{UPDATE txpipe.inbox SET pipeline = 'cards'},
		'DELETE FROM txpipe.inbox',
		q{INSERT INTO txpipe.inbox (xid, pipeline, class, source, doc)
		  VALUES ((pg_current_xact_id()::text::bigint + 1000000)::text::xid8, 'cards', 0, 'queue', '{}')})
	{
		($rc, $out, $err) = as($writer, $sql);
		refused("9. writer: $sql", $rc, $err, '42501');
	}
}

# ---- writer: sends into every template with no extra grant, reads nothing
{
	my %made;
	for my $t (qw(cards retail clicks))
	{
		txpipe_gen($t, "$dir/$t.ndjson", '--rows', 300, '--seed', 10, '--bad', '0', '--dups', '0');
		open my $fh, '<', "$dir/$t.ndjson" or die $!;
		my @lines = grep { /\S/ } map { chomp; $_ } <$fh>;
		close $fh;
		$made{$t} = \@lines;
		my $before = q1("SELECT accepted FROM txpipe.stats WHERE pipeline = '$t'");
		($rc, $out, $err) = as($writer, "SELECT accepted FROM txpipe.ingest('$t', " . lit($lines[-1]) . ')');
		is($rc . '/' . $out, '0/1', "writer: ingest into $t") or diag $err;
		($rc, $out, $err) = as($writer, copy_sql($t, $lines[-2]));
		is($rc, 0, "writer: COPY into $t") or diag $err;
		($rc, $out, $err) = as($writer, "SELECT txpipe.enqueue('$t', " . lit($lines[-3]) . '::jsonb)');
		is($rc, 0, "writer: enqueue into $t") or diag $err;
		($rc, $out, $err) = as($writer, "SELECT count(*) FROM txpipe.validate('$t', " . lit($lines[-4]) . ')');
		is($rc, 0, "writer: validate against $t") or diag $err;
		q1('SELECT txpipe.drain()');
		wait_until("SELECT accepted - " . ($before || 0) . " FROM txpipe.stats WHERE pipeline = '$t'", '3', 10);
		is(q1("SELECT accepted - " . ($before || 0) . " FROM txpipe.stats WHERE pipeline = '$t'"), '3',
			"writer: the three records are routed into $t");
	}
	my %tables = (cards => 'transaction', retail => 'invoice_line', clicks => 'event');
	for my $t (sort keys %tables)
	{
		($rc, $out, $err) = as($writer, "SELECT * FROM $t.$tables{$t} LIMIT 1");
		refused("writer: SELECT $t.$tables{$t}", $rc, $err, '42501');
	}
	($rc, $out, $err) = as($writer, 'SELECT payload FROM txpipe.rejects LIMIT 1');
	refused('writer: SELECT txpipe.rejects', $rc, $err, '42501');
	($rc, $out, $err) = as($writer, q{SELECT spec FROM txpipe.pipelines WHERE name = 'cards'});
	ok($rc != 0 || $out eq '', 'writer: cannot read the superuser\'s specs in txpipe.pipelines');

	# ---- reader: no full card number anywhere
	ok(txpipe_load($node, 'cards', "$dir/cards.ndjson"), 'reader setup: cards loaded as superuser');
	q1(q{SELECT txpipe.refresh('cards')});
	# a bad record with a card number, as a reject
	q1(q{SELECT txpipe.ingest('cards', '{"cc_num": 4111111111111111, "amt": "x"}')});
	my $nums = q1(q{SELECT string_agg(DISTINCT cc_num::text, E'\n') FROM cards.card});
	my @nums = split /\n/, $nums;
	cmp_ok(scalar(@nums), '>', 10, 'reader setup: card numbers to look for');
	push @nums, '4111111111111111';
	($rc, $out, $err) = as(
		$reader, qq{
		CREATE TEMP TABLE nums (n text);
		COPY nums FROM STDIN;
@{[join("\n", @nums)]}
\\.
		SET client_min_messages = warning;
		DO \$\$
		DECLARE r record; hit boolean; seen int := 0;
		BEGIN
			FOR r IN SELECT c.oid::regclass AS rel FROM pg_class c
					  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
						AND c.relnamespace <> pg_my_temp_schema()
						AND c.relnamespace <> 'pg_toast'::regnamespace
						AND has_table_privilege(c.oid, 'SELECT') LOOP
				BEGIN
					EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s t, nums WHERE strpos(t::text, nums.n) > 0)', r.rel)
					   INTO hit;
					seen := seen + 1;
					IF hit THEN RAISE WARNING 'full card number in %', r.rel; END IF;
				EXCEPTION WHEN insufficient_privilege OR feature_not_supported OR object_not_in_prerequisite_state THEN NULL;
				END;
			END LOOP;
			RAISE WARNING 'relations read: %', seen;
		END \$\$;});
	is($rc, 0, 'reader: every readable relation searched') or diag $err;
	my @hits = $err =~ /full card number in (\S+)/g;
	like($err, qr/relations read: [1-9]/, 'reader: it read some relations');
	is(join(' ', @hits), '', 'reader: no relation it may read holds a full card number');
	($rc, $out, $err) = as($reader, 'SELECT payload FROM txpipe.rejects LIMIT 1');
	refused('reader: SELECT payload FROM txpipe.rejects', $rc, $err, '42501');

  SKIP:
	{
		skip 'cards.card_lookup does not exist', 3
		  unless q1(q{SELECT to_regprocedure('cards.card_lookup(text, date)') IS NOT NULL}) eq 't';
		my ($num, $dob) = split /\|/,
		  q1(q{SELECT ca.cc_num, cu.dob FROM cards.card ca JOIN cards.customer cu USING (customer_id) ORDER BY 1 LIMIT 1});
		($rc, $out, $err) = as($reader, "SELECT count(*) > 0 FROM cards.card_lookup('$num', '$dob')");
		is($rc . $out, '0t', 'reader: card_lookup answers with the number and the date of birth') or diag $err;
		($rc, $out, $err) = as($reader, "SELECT count(*) FROM cards.card_lookup('$num', '$dob'::date + 1)");
		is($rc . $out, '00', 'reader: card_lookup answers nothing with the wrong date of birth') or diag $err;
		($rc, $out, $err) = as($reader, "SELECT count(*) FROM cards.card_lookup('${num}9', '$dob')");
		is($rc . $out, '00', 'reader: card_lookup answers nothing for another number') or diag $err;
	}
}

$node->stop;
done_testing();
