# shellcheck shell=bash
# Shared by test/run and demo (source it; needs bash).
#
# PostgreSQL refuses to run as root, so servers run as the postgres OS user in
# a throwaway directory, reachable only through a private unix socket.  The
# build and the clients run as root.

# PG_BINDIR may point at another (relocated) copy of the PostgreSQL 15
# binaries; the extension is then built and installed into that copy.
PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PG_CONFIG=$PG_BINDIR/pg_config
# shellcheck disable=SC2034 # used by the scripts that source this file
PGXS_DIR=$PG_BINDIR/../lib/pgxs
PG_OSUSER=postgres

# Directories made by tmpdir_for_pg, removed by cleanup unless KEEP_TMP=1.
TMPDIRS=()
KEEP_TMP=${KEEP_TMP:-0}

# Set by server_start.
SRV_DIR='' SRV_DATA='' SRV_SOCK='' SRV_PORT='' SRV_LOG=''

section() {
	printf '\n=== %s ===\n' "$*"
}

note() {
	printf '  %s\n' "$*"
}

# Runs a command as the postgres OS user with the PostgreSQL 15 binaries
# first on PATH.  Leading VAR=value arguments become its environment.
as_pg() {
	runuser -u "$PG_OSUSER" -- env PATH="$PG_BINDIR:/usr/local/bin:/usr/bin:/bin" "$@"
}

# tmpdir_for_pg VAR: sets VAR to a new empty directory owned by the postgres
# user, removed by cleanup.
tmpdir_for_pg() {
	local d
	d=$(mktemp -d /tmp/txpipe.XXXXXX) || return 1
	TMPDIRS+=("$d")
	chown "$PG_OSUSER:" "$d" && chmod 0755 "$d" || return 1
	printf -v "$1" '%s' "$d"
}

# Runs a command with its output in a log file; shows the log's tail only
# when the command fails.
quietly() {
	local log=$1
	shift
	if "$@" >"$log" 2>&1; then
		return 0
	else
		local rc=$?
		note "failed (exit $rc): $*"
		tail -n 60 "$log" | sed 's/^/  | /'
		return "$rc"
	fi
}

require_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "$(basename "$0"): run this as root (it installs packages and switches to the postgres user)" >&2
		exit 1
	fi
}

# make && make install of the extension, as root, in the current directory.
build_extension() {
	local log=$1
	quietly "$log" make -j"$(nproc)" PG_CONFIG="$PG_CONFIG" &&
		quietly "$log.install" make install PG_CONFIG="$PG_CONFIG"
}

# Builds and installs the client (check first that client/Makefile exists).
build_client() {
	local log=$1
	quietly "$log" make client PG_CONFIG="$PG_CONFIG" &&
		quietly "$log.install" make install-client PG_CONFIG="$PG_CONFIG"
}

# server_start CONF...: initdb and start a server with the given config files
# appended.  Exports PGHOST, PGPORT, PGUSER and PGDATABASE for clients.
server_start() {
	tmpdir_for_pg SRV_DIR || return 1
	SRV_DATA=$SRV_DIR/data
	SRV_SOCK=$SRV_DIR/sock
	SRV_LOG=$SRV_DIR/server.log
	as_pg mkdir -m 0755 "$SRV_SOCK" || return 1
	if ! as_pg initdb -D "$SRV_DATA" -U postgres -A trust -E UTF8 --locale="${PG_LOCALE:-C}" --no-sync \
		>"$SRV_DIR/initdb.log" 2>&1; then
		note "initdb failed:"
		sed 's/^/  | /' "$SRV_DIR/initdb.log"
		return 1
	fi
	# The socket directory is private, so a port only has to be free there;
	# it still comes from a small range of its own.
	SRV_PORT=$((5470 + RANDOM % 20))
	{
		printf '\n# added by test/lib.sh\n'
		printf "listen_addresses = ''\n"
		printf "unix_socket_directories = '%s'\n" "$SRV_SOCK"
		printf 'port = %s\n' "$SRV_PORT"
		local conf
		for conf in "$@"; do
			printf '\n# %s\n' "$conf"
			cat "$conf"
		done
	} >>"$SRV_DATA/postgresql.conf" || return 1

	if ! as_pg pg_ctl -D "$SRV_DATA" -l "$SRV_LOG" -w -t 60 start >/dev/null; then
		note "the server did not start; its log:"
		sed 's/^/  | /' "$SRV_LOG" 2>/dev/null
		return 1
	fi
	export PGHOST=$SRV_SOCK PGPORT=$SRV_PORT PGUSER=postgres PGDATABASE=postgres
	note "server running: data $SRV_DATA, socket $SRV_SOCK, port $SRV_PORT"
}

server_running() {
	[ -n "$SRV_DATA" ] && [ -f "$SRV_DATA/postmaster.pid" ]
}

server_stop() {
	server_running || return 0
	as_pg pg_ctl -D "$SRV_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 ||
		as_pg pg_ctl -D "$SRV_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1
}

# Stops every server whose data directory lies under one of our temp dirs
# (TAP clusters included, should a test have been interrupted), then removes
# the dirs.
cleanup() {
	local d pidfile
	server_stop
	for d in "${TMPDIRS[@]}"; do
		while IFS= read -r pidfile; do
			as_pg pg_ctl -D "$(dirname "$pidfile")" -m immediate -w -t 30 stop >/dev/null 2>&1
		done < <(find "$d" -name postmaster.pid 2>/dev/null)
	done
	if [ "$KEEP_TMP" = 1 ]; then
		[ "${#TMPDIRS[@]}" -gt 0 ] && note "kept: ${TMPDIRS[*]}"
	else
		for d in "${TMPDIRS[@]}"; do
			rm -rf "$d"
		done
	fi
	TMPDIRS=()
}

# psql as a client of the server started by server_start.
pg_sql() {
	"$PG_BINDIR/psql" -X -v ON_ERROR_STOP=1 -P pager=off "$@"
}

# The value of a field in the generator's JSON summary; fails when absent.
summary_get() {
	perl -MJSON::PP -e '
		my ($file, $key) = @ARGV;
		open my $fh, "<", $file or die "$file: $!\n";
		my $s = JSON::PP->new->decode(do { local $/; <$fh> });
		# a.b: field b of object a
		for my $k (split /\./, $key) {
			die "$file: no \"$key\" in the summary\n" unless ref $s eq "HASH" && exists $s->{$k};
			$s = $s->{$k};
		}
		print $s, "\n";
	' "$1" "$2"
}
