# txpipe: PGXS build.  The version lives in txpipe.control only.
EXTENSION = txpipe
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" txpipe.control)

MODULE_big = txpipe
OBJS = src/txpipe.o src/spi.o src/manage.o src/spec.o src/decoder.o src/contract.o src/router.o \
	src/copy.o src/ingest.o src/writer.o src/queue.o src/worker.o src/launcher.o \
	src/retention.o src/replay.o src/datefmt.o src/identity.o src/alerts.o src/changes.o

# The full install script is generated from the SQL sources and the
# templates; upgrade scripts, and the full scripts of earlier versions
# (so that an old version can be installed and updated), are kept as they
# were released, in src/sql.
# Update scripts: src/sql/updates/A--B.sql, then the templates of B.
UPDATES = $(patsubst src/sql/updates/%.sql,txpipe--%.sql,$(wildcard src/sql/updates/*--*.sql))
DATA_built = txpipe--$(EXTVERSION).sql $(UPDATES)
DATA = $(wildcard src/sql/txpipe--*.sql)
SQL_SOURCES = src/sql/schema.sql src/sql/functions.sql src/sql/refresh.sql src/sql/queue.sql \
	src/sql/stats.sql src/sql/roles.sql
TEMPLATES = $(sort $(wildcard templates/*/schema.sql templates/*/pipeline.json))

REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=txpipe
# isolation specs: test/isolation/specs/NAME.spec, expected/NAME.out; make
# installcheck runs them after the pg_regress tests (results in output_iso/)
ISOLATION = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=txpipe

PG_CPPFLAGS = -DTXPIPE_VERSION='"$(EXTVERSION)"' \
	-Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare -Isrc \
	-I$(shell $(PG_CONFIG) --includedir)
# the workers LISTEN through libpq
SHLIB_LINK_INTERNAL = $(libpq)
EXTRA_CLEAN = client/txpipe client/*.o

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# every subsystem shares the plan's layout
$(OBJS) $(OBJS:.o=.bc): src/txpipe.h txpipe.control

txpipe--$(EXTVERSION).sql: $(SQL_SOURCES) $(TEMPLATES) src/sql/templates.sh
	sh src/sql/templates.sh $(SQL_SOURCES) > $@

txpipe--%.sql: src/sql/updates/%.sql $(TEMPLATES) src/sql/templates.sh
	sh src/sql/templates.sh --update $(lastword $(subst --, ,$*)) $< > $@

.PHONY: client install-client
client:
	$(MAKE) -C client PG_CONFIG=$(PG_CONFIG)
install-client: client
	$(MAKE) -C client install PG_CONFIG=$(PG_CONFIG)
