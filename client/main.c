/*
 * txpipe: command-line client of the txpipe extension.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "common.h"
#include "stream.h"

static void
usage(FILE *f)
{
	fputs("txpipe is the command-line client of the txpipe PostgreSQL extension.\n"
		  "\n"
		  "Usage:\n"
		  "  txpipe [-d CONNINFO] COMMAND [OPTION]...\n"
		  "\n"
		  "Commands:\n"
		  "  gen TEMPLATE            write synthetic NDJSON records (templates: cards,\n"
		  "                          clicks, retail)\n"
		  "  load PIPELINE FILE...   send NDJSON or CSV files into a pipeline\n"
		  "  stream PIPELINE FILE... replay NDJSON files through the queue at a rate\n"
		  "  stats [PIPELINE]        show the counters of the pipelines\n"
		  "  alerts [PIPELINE]       show the open alerts; --follow prints new ones\n"
		  "                          as they are raised\n"
		  "\n"
		  "Options:\n"
		  "  -d, --dbname=CONNINFO   database to connect to: a name, a key=value\n"
		  "                          string or a postgresql:// URI; the libpq\n"
		  "                          environment (PGHOST, PGPORT, PGDATABASE, PGUSER...)\n"
		  "                          fills in the rest\n"
		  "  -h, --help              show this help, then exit\n"
		  "  -V, --version           show the version, then exit\n"
		  "\n"
		  "Run \"txpipe COMMAND --help\" for the options of a command.\n", f);
}

static void
usage_gen(FILE *f)
{
	fputs("Usage: txpipe gen TEMPLATE --rows N --seed S [OPTION]...\n"
		  "\n"
		  "Writes N lines of NDJSON records of a template, in time order.  The\n"
		  "same arguments always give the same bytes; another seed gives records\n"
		  "of their own, none the same as the first seed's.\n"
		  "\n"
		  "Templates:\n"
		  "  cards                 credit-card transactions shaped like the\n"
		  "                        fraudTrain.csv data set, over 2019-2020\n"
		  "  clicks                behaviour events of an online store (view, cart,\n"
		  "                        purchase) shaped like the REES46 October 2019\n"
		  "                        file, its columns only; some events are logged\n"
		  "                        twice, as exact duplicates\n"
		  "  retail                invoice lines shaped like the Online Retail data\n"
		  "                        set (2010-12-01 to 2011-12-09), its eight columns\n"
		  "                        only: invoices of several lines, cancellations,\n"
		  "                        guest sales, non-product stock codes, and the\n"
		  "                        file's share of exact duplicate lines\n"
		  "\n"
		  "Options:\n"
		  "  -n, --rows=N          number of lines to write (required)\n"
		  "  -s, --seed=S          seed of the generator (required)\n"
		  "      --bad=P           fraction of lines that are bad records the\n"
		  "                        contract rejects (default 0)\n"
		  "      --dups=P          fraction of lines that re-send an earlier valid\n"
		  "                        record byte for byte (default 0)\n"
		  "      --cards=C         cards: number of cards, one customer each\n"
		  "                        (default 983)\n"
		  "      --summary=FILE    write the expected load figures as JSON to FILE\n"
		  "  -o, --output=FILE     write to FILE instead of standard output\n"
		  "  -h, --help            show this help, then exit\n", f);
}

static void
usage_load(FILE *f)
{
	fputs("Usage: txpipe load PIPELINE FILE... [OPTION]...\n"
		  "\n"
		  "Sends records into a pipeline through COPY, one transaction per file:\n"
		  "a file is loaded whole or not at all.  A file is NDJSON (one record per\n"
		  "line) unless its name ends in .csv: then its first line is a header and\n"
		  "each row becomes a JSON object typed by the pipeline's contract.  \"-\"\n"
		  "reads standard input.\n"
		  "\n"
		  "Options:\n"
		  "  -d, --dbname=CONNINFO   database to connect to\n"
		  "  -b, --batch-lines=N     end the COPY statement and start a new one every\n"
		  "                          N lines, within the file's transaction\n"
		  "                          (default 0: one COPY per file)\n"
		  "      --csv               read every file as CSV with a header\n"
		  "      --ndjson            read every file as NDJSON\n"
		  "      --encoding=ENC      encoding of the files: auto (default: NDJSON\n"
		  "                          is UTF-8; a CSV file is UTF-8 unless a byte\n"
		  "                          that is not UTF-8 comes before any non-ASCII\n"
		  "                          UTF-8, then ISO-8859-1 from there on), utf8,\n"
		  "                          or latin1 (ISO-8859-1, CSV and NDJSON,\n"
		  "                          converted to UTF-8)\n"
		  "      --progress          show progress even when stderr is not a terminal\n"
		  "      --no-progress       never show progress\n"
		  "  -h, --help              show this help, then exit\n", f);
}

static void
usage_stats(FILE *f)
{
	fputs("Usage: txpipe stats [PIPELINE] [OPTION]...\n"
		  "\n"
		  "Prints txpipe.stats: per pipeline, the records received, accepted,\n"
		  "rejected and duplicated, the last batch and the routing rate.\n"
		  "\n"
		  "Options:\n"
		  "  -d, --dbname=CONNINFO   database to connect to\n"
		  "  -h, --help              show this help, then exit\n", f);
}

static void
usage_alerts(FILE *f)
{
	fputs("Usage: txpipe alerts [PIPELINE] [OPTION]...\n"
		  "\n"
		  "Prints the open alerts (txpipe.open_alerts: not acknowledged, keys masked\n"
		  "as their rules say), oldest first, one line each: id, event time,\n"
		  "pipeline, severity, rule, key, the record that raised it and the figures\n"
		  "that tripped the rule.\n"
		  "\n"
		  "Options:\n"
		  "  -d, --dbname=CONNINFO   database to connect to\n"
		  "  -f, --follow            then LISTEN on txpipe_alerts and print each new\n"
		  "                          alert as its transaction commits, until\n"
		  "                          interrupted\n"
		  "  -h, --help              show this help, then exit\n", f);
}

/* msg NULL: getopt has already said what is wrong */
static pg_noreturn void
bad_usage(const char *cmd, const char *msg)
{
	if (msg)
		fprintf(stderr, "txpipe: %s\n", msg);
	if (cmd)
		fprintf(stderr, "Try \"txpipe %s --help\" for more information.\n", cmd);
	else
		fputs("Try \"txpipe --help\" for more information.\n", stderr);
	exit(2);
}

static int
run_gen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"rows", required_argument, NULL, 'n'},
		{"seed", required_argument, NULL, 's'},
		{"bad", required_argument, NULL, 1},
		{"dups", required_argument, NULL, 2},
		{"cards", required_argument, NULL, 3},
		{"summary", required_argument, NULL, 4},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	gen_options opt = {0};
	int			have_rows = 0,
				have_seed = 0,
				have_cards = 0;
	int			c;
	char		msg[256];

	opt.cards = 983;
	while ((c = getopt_long(argc, argv, "n:s:o:h", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'n':
				opt.rows = parse_count(optarg, "--rows");
				have_rows = 1;
				break;
			case 's':
				opt.seed = parse_count(optarg, "--seed");
				have_seed = 1;
				break;
			case 1:
				opt.bad = parse_fraction(optarg, "--bad");
				break;
			case 2:
				opt.dups = parse_fraction(optarg, "--dups");
				break;
			case 3:
				opt.cards = parse_count(optarg, "--cards");
				if (opt.cards < 1 || opt.cards > 10000000)
					die("--cards: expected 1 to 10000000, got %s", optarg);
				have_cards = 1;
				break;
			case 4:
				opt.summary_path = optarg;
				break;
			case 'o':
				opt.output_path = optarg;
				break;
			case 'h':
				usage_gen(stdout);
				return 0;
			default:
				bad_usage("gen", NULL);
		}
	}
	if (optind >= argc)
		bad_usage("gen", "gen: missing template name (available: cards, clicks, retail)");
	if (optind + 1 < argc)
	{
		snprintf(msg, sizeof(msg), "gen: unexpected argument \"%s\"", argv[optind + 1]);
		bad_usage("gen", msg);
	}
	if (strcmp(argv[optind], "cards") != 0 && strcmp(argv[optind], "clicks") != 0 &&
		strcmp(argv[optind], "retail") != 0)
		die("gen: unknown template \"%s\" (available: cards, clicks, retail)", argv[optind]);
	if (!have_rows)
		bad_usage("gen", "gen: --rows is required");
	if (!have_seed)
		bad_usage("gen", "gen: --seed is required");
	if (opt.bad + opt.dups > 1.0)
		die("gen: --bad and --dups add up to more than 1");
	if (strcmp(argv[optind], "clicks") == 0)
	{
		if (have_cards)
			die("gen: --cards applies to gen cards only");
		return gen_clicks(&opt);
	}
	if (strcmp(argv[optind], "retail") == 0)
	{
		if (have_cards)
			die("gen: --cards applies to gen cards only");
		return gen_retail(&opt);
	}
	return gen_cards(&opt);
}

static int
run_load(int argc, char **argv, const char *conninfo)
{
	static const struct option opts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"batch-lines", required_argument, NULL, 'b'},
		{"csv", no_argument, NULL, 1},
		{"ndjson", no_argument, NULL, 2},
		{"encoding", required_argument, NULL, 3},
		{"progress", no_argument, NULL, 4},
		{"no-progress", no_argument, NULL, 5},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	load_options opt = {0};
	int			c;

	opt.conninfo = conninfo;
	opt.progress = -1;
	while ((c = getopt_long(argc, argv, "d:b:h", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				opt.conninfo = optarg;
				break;
			case 'b':
				opt.batch_lines = parse_count(optarg, "--batch-lines");
				break;
			case 1:
				opt.format = INPUT_CSV;
				break;
			case 2:
				opt.format = INPUT_NDJSON;
				break;
			case 3:
				if (strcasecmp(optarg, "latin1") == 0 || strcasecmp(optarg, "iso-8859-1") == 0 ||
					strcasecmp(optarg, "iso8859-1") == 0)
					opt.encoding = ENCODING_LATIN1;
				else if (strcasecmp(optarg, "utf8") == 0 || strcasecmp(optarg, "utf-8") == 0)
					opt.encoding = ENCODING_UTF8;
				else if (strcasecmp(optarg, "auto") == 0)
					opt.encoding = ENCODING_AUTO;
				else
					die("--encoding: expected auto, utf8 or latin1, got \"%s\"", optarg);
				break;
			case 4:
				opt.progress = 1;
				break;
			case 5:
				opt.progress = 0;
				break;
			case 'h':
				usage_load(stdout);
				return 0;
			default:
				bad_usage("load", NULL);
		}
	}
	if (optind >= argc)
		bad_usage("load", "load: missing pipeline name");
	opt.pipeline = argv[optind++];
	if (optind >= argc)
		bad_usage("load", "load: missing file name");
	opt.files = argv + optind;
	opt.n_files = argc - optind;
	return load_files(&opt);
}

static void
usage_stream(FILE *f)
{
	fprintf(f,
			"Usage: txpipe stream <pipeline> FILE... [--rate N] [--batch N] [--clients N] [-d CONNINFO]\n"
			"\n"
			"Replays NDJSON files as a live stream through txpipe.enqueue(), for the\n"
			"background workers to route.\n"
			"\n"
			"  --rate N      records per second over all connections (default: as fast as possible)\n"
			"  --batch N     records per enqueue call, one transaction each (default 1)\n"
			"  --clients N   connections sending at once, each with every N-th batch (default 1)\n"
			"\n"
			"Lines go as they are (enqueue(pipeline, text[])); the workers reject the\n"
			"malformed ones. A line that is not valid UTF-8 cannot be sent as text; it\n"
			"goes through txpipe.ingest_raw() instead and becomes a reject.\n");
}

static int
run_stream(int argc, char **argv, const char *conninfo)
{
	static const struct option opts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"rate", required_argument, NULL, 'r'},
		{"batch", required_argument, NULL, 'b'},
		{"clients", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	stream_options opt = {0};
	int			c;

	opt.conninfo = conninfo;
	opt.batch = 1;
	opt.clients = 1;
	while ((c = getopt_long(argc, argv, "d:r:b:c:h", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				opt.conninfo = optarg;
				break;
			case 'r':
				opt.rate = (double) parse_count(optarg, "--rate");
				break;
			case 'b':
				opt.batch = (int) parse_count(optarg, "--batch");
				if (opt.batch < 1 || opt.batch > 100000)
					die("--batch: expected 1 to 100000");
				break;
			case 'c':
				opt.clients = (int) parse_count(optarg, "--clients");
				if (opt.clients < 1 || opt.clients > 64)
					die("--clients: expected 1 to 64");
				break;
			case 'h':
				usage_stream(stdout);
				return 0;
			default:
				bad_usage("stream", NULL);
		}
	}
	if (optind >= argc)
		bad_usage("stream", "stream: missing pipeline name");
	opt.pipeline = argv[optind++];
	if (optind >= argc)
		bad_usage("stream", "stream: missing file name");
	opt.files = argv + optind;
	opt.n_files = argc - optind;
	return stream_files(&opt);
}

static int
run_stats(int argc, char **argv, const char *conninfo)
{
	static const struct option opts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;

	while ((c = getopt_long(argc, argv, "d:h", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'h':
				usage_stats(stdout);
				return 0;
			default:
				bad_usage("stats", NULL);
		}
	}
	if (optind + 1 < argc)
		bad_usage("stats", "stats: at most one pipeline name");
	return show_stats(conninfo, optind < argc ? argv[optind] : NULL);
}

static int
run_alerts(int argc, char **argv, const char *conninfo)
{
	static const struct option opts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"follow", no_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	int			follow = 0;

	while ((c = getopt_long(argc, argv, "d:fh", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'f':
				follow = 1;
				break;
			case 'h':
				usage_alerts(stdout);
				return 0;
			default:
				bad_usage("alerts", NULL);
		}
	}
	if (optind + 1 < argc)
		bad_usage("alerts", "alerts: at most one pipeline name");
	return show_alerts(conninfo, optind < argc ? argv[optind] : NULL, follow);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	const char *conninfo = NULL;
	const char *cmd;
	char		msg[256];
	int			c;

	/* getopt names the program in its messages */
	argv[0] = "txpipe";
	/* "+": options after the command belong to the command */
	while ((c = getopt_long(argc, argv, "+d:hV", opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				conninfo = optarg;
				break;
			case 'h':
				usage(stdout);
				return 0;
			case 'V':
				puts("txpipe " TXPIPE_VERSION);
				return 0;
			default:
				bad_usage(NULL, NULL);
		}
	}
	if (optind >= argc)
	{
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	/* 0, not 1: glibc then also forgets the "+" ordering of the first scan */
	optind = 0;

	if (strcmp(cmd, "gen") == 0)
	{
		argv[0] = "txpipe gen";
		return run_gen(argc, argv);
	}
	if (strcmp(cmd, "load") == 0)
	{
		argv[0] = "txpipe load";
		return run_load(argc, argv, conninfo);
	}
	if (strcmp(cmd, "stream") == 0)
	{
		argv[0] = "txpipe stream";
		return run_stream(argc, argv, conninfo);
	}
	if (strcmp(cmd, "stats") == 0)
	{
		argv[0] = "txpipe stats";
		return run_stats(argc, argv, conninfo);
	}
	if (strcmp(cmd, "alerts") == 0)
	{
		argv[0] = "txpipe alerts";
		return run_alerts(argc, argv, conninfo);
	}
	if (strcmp(cmd, "help") == 0)
	{
		usage(stdout);
		return 0;
	}
	snprintf(msg, sizeof(msg), "unknown command \"%s\"", cmd);
	bad_usage(NULL, msg);
}
