#!/usr/bin/env bash
# lab/postgres.sh: a private, throwaway PostgreSQL for the fleet store's tests and benchmarks.
#
#   lab/postgres.sh start DIR [--stop-with PID]
#   lab/postgres.sh pause DIR      # stop the server, keep its data and port (an outage)
#   lab/postgres.sh resume DIR     # start it again on the same port with the same data
#   lab/postgres.sh createdb DIR NAME   # one more empty database owned by mailtls
#   lab/postgres.sh dropdb DIR NAME     # drop it again (a benchmark's round, to free disk)
#   lab/postgres.sh psql DIR NAME <SQL   # SQL run in database NAME as the superuser (fault tests)
#   lab/postgres.sh stop DIR
#
# A new cluster in DIR/data, run as the postgres user (when started as root), listening on a
# free port of 127.0.0.1 only, with TLS (a certificate from lab/certs.sh, TLS 1.2 or newer)
# required and scram-sha-256 passwords; its Unix socket stays in DIR/run. A role and database
# `mailtls` are made, the role's random password written to DIR/password (mode 0600). The
# system service, /etc/postgresql and /var/lib/postgresql are never read or touched.
# DIR/ports.env names the port, the store URL, the password and CA files (see lab/README.md).
set -euo pipefail

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lifetime.sh
. "$LAB/lifetime.sh"

die() { echo "postgres.sh: $*" >&2; exit 1; }

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# The newest installed server's programs (initdb and pg_ctl are not on PATH in Debian).
pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -x $bin/pg_ctl ]] || die "PostgreSQL not found; run lab/install.sh"
    echo "$bin"
}

# Runs a command as the server's owner: postgres when we are root (PostgreSQL refuses to run as
# root), ourselves otherwise.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# pid of DIR's postmaster if it runs. The cmdline check guards against a recycled pid.
server_pid() {
    local pidfile="$1/data/postmaster.pid" pid
    [[ -s $pidfile ]] || return 0
    { read -r pid <"$pidfile"; } 2>/dev/null || return 0
    [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 0
    if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$1/data"; then
        echo "$pid"
    fi
}

# Starts DIR's server on its port and waits until it accepts connections.
start_server() {
    local dir=$1 port=$2
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/postgresql.log" -w -t 30 \
        -o "-p $port" start >/dev/null \
        || { tail -n 20 "$dir/postgresql.log" >&2 || true; die "PostgreSQL did not start; log: $dir/postgresql.log"; }
}

cmd_pause() {
    local dir pid
    dir=$(realpath "$1")
    pid=$(server_pid "$dir")
    [[ -n $pid ]] || { echo "postgres.sh: not running in $dir"; return 0; }
    # fast: roll back open transactions and close connections now, as a crash or restart would.
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    echo "postgres.sh: paused PostgreSQL (pid $pid) in $dir"
}

cmd_resume() {
    local dir port
    dir=$(realpath "$1")
    [[ -s $dir/port ]] || die "no server was started in $dir"
    [[ -z $(server_pid "$dir") ]] || { echo "postgres.sh: already running in $dir"; return 0; }
    read -r port <"$dir/port"
    start_server "$dir" "$port"
    echo "postgres.sh: resumed PostgreSQL on 127.0.0.1:$port in $dir"
}

# createdb or dropdb (TOOL) of database NAME in DIR's server, or psql: the SQL on standard
# input run in database NAME as the server's superuser (tests that stage a fault use it).
cmd_database() {
    local tool=$1 dir name port
    dir=$(realpath "$2") name=$3
    [[ $name =~ ^[a-z][a-z0-9_]{0,62}$ ]] || die "a database name is lower-case letters, digits and _, not '$name'"
    [[ -n $(server_pid "$dir") ]] || die "PostgreSQL does not run in $dir"
    read -r port <"$dir/port"
    case $tool in
        createdb) as_owner "$(pg_bin)/createdb" -h "$dir/run" -p "$port" -U postgres -O mailtls "$name" ;;
        dropdb) as_owner "$(pg_bin)/dropdb" -h "$dir/run" -p "$port" -U postgres "$name" ;;
        psql) as_owner "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/run" -p "$port" -U postgres -d "$name" ;;
    esac
}

cmd_stop() {
    local dir=$1 pid
    [[ -d $dir ]] || { echo "postgres.sh: nothing to stop in $dir"; return 0; }
    dir=$(realpath "$dir")
    rm -f "$dir/ports.env"
    pid=$(server_pid "$dir")
    if [[ -n $pid ]]; then
        as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 \
            || terminate "$pid"
        echo "postgres.sh: stopped PostgreSQL (pid $pid) in $dir"
    else
        echo "postgres.sh: not running in $dir"
    fi
    # The server is gone, and so is the cluster: nothing of it outlives the test.
    rm -rf "$dir/data" "$dir/run" "$dir/port"
}

# Internal (started by --stop-with): stop DIR's server once process $2 is gone. It follows
# DIR, not a pid, since a paused and resumed server has a new one.
cmd_watch() {
    local dir=$1 parent=$2
    while alive "$parent"; do
        [[ -d $dir/data ]] || return 0
        sleep 1
    done
    cmd_stop "$dir" >/dev/null
}

# Prints a free TCP port on 127.0.0.1 (lab/free_ports.py says how it is chosen).
pick_port() {
    python3 "$LAB/free_ports.py" 127.0.0.1 1
}

cmd_start() {
    local dir=$1; shift
    local stop_with=""
    while [[ $# -gt 0 ]]; do
        case $1 in
            --stop-with) stop_with=${2:?--stop-with needs a pid}; shift 2 ;;
            -h|--help) usage ;;
            *) die "unknown option '$1' (see lab/README.md)" ;;
        esac
    done
    if [[ -n $stop_with ]]; then
        [[ $stop_with =~ ^[0-9]+$ ]] && kill -0 "$stop_with" 2>/dev/null \
            || die "--stop-with needs the pid of a running process, not '$stop_with'"
    fi
    local bin
    bin=$(pg_bin)
    for tool in python3 openssl; do
        command -v "$tool" >/dev/null || die "$tool not found; run lab/install.sh"
    done
    dir=$(realpath -m "$dir")
    # Paths go into postgresql.conf and ports.env unquoted: keep them to safe characters.
    [[ $dir =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR '$dir' may only contain letters, digits and ._/+-"
    mkdir -p "$dir"
    [[ -z $(server_pid "$dir") ]] || die "PostgreSQL already runs in $dir; run 'lab/postgres.sh stop $dir' first"
    rm -rf "$dir/ports.env" "$dir/data" "$dir/run"

    bash "$LAB/certs.sh" "$dir/certs" >/dev/null
    mkdir -p "$dir/data" "$dir/run" "$dir/server-tls"
    : >"$dir/postgresql.log"
    # The server reads its key only when it belongs to it and nobody else may read it.
    cp "$dir/certs/server.pem" "$dir/certs/server.key" "$dir/server-tls/"
    chmod 0700 "$dir/data" "$dir/server-tls"
    chmod 0600 "$dir/server-tls/server.key"
    if [[ $EUID -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "no postgres user; run lab/install.sh"
        chown -R postgres: "$dir/data" "$dir/run" "$dir/server-tls" "$dir/postgresql.log"
        runuser -u postgres -- test -w "$dir/data" \
            || die "user postgres cannot write $dir/data: make DIR and its parents searchable (a+x)"
    fi
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    local port
    port=$(pick_port)
    echo "$port" >"$dir/port"
    cat >>"$dir/data/postgresql.conf" <<EOF

# lab/postgres.sh: a private instance on loopback, TLS required.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/run'
ssl = on
ssl_cert_file = '$dir/server-tls/server.pem'
ssl_key_file = '$dir/server-tls/server.key'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
max_connections = 50
# A throwaway test database: durability is not worth the disk's time.
fsync = off
synchronous_commit = off
full_page_writes = off
log_connections = on
EOF
    # Only TLS connections with a password over TCP; the local socket (in DIR/run, for this
    # script) trusts its peer.
    cat >"$dir/data/pg_hba.conf" <<EOF
local   all all                 trust
hostssl all all 127.0.0.1/32    scram-sha-256
EOF
    start_server "$dir" "$port"
    local pid password
    pid=$(server_pid "$dir")
    if [[ -n $stop_with ]]; then
        # Watchdog: a test killed before its cleanup must not leave PostgreSQL running. Its own
        # session, so a signal to the test's process group does not take it down too.
        setsid bash "$LAB/postgres.sh" watch "$dir" "$stop_with" </dev/null >/dev/null 2>&1 &
    fi
    password=$(openssl rand -hex 24)
    (umask 077 && printf '%s\n' "$password" >"$dir/password")
    as_owner "$bin/psql" -X -q -h "$dir/run" -p "$port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -v password="$password" >/dev/null <<'EOF' \
        || { cmd_stop "$dir" >/dev/null; die "could not create the mailtls role and database"; }
CREATE ROLE mailtls LOGIN PASSWORD :'password';
CREATE DATABASE mailtls OWNER mailtls;
EOF
    cat >"$dir/ports.env.tmp" <<EOF
POSTGRES_DIR=$dir
POSTGRES_PID=$pid
POSTGRES_PORT=$port
POSTGRES_URL=postgres://mailtls@127.0.0.1:$port/mailtls?sslmode=require
POSTGRES_PASSWORD_FILE=$dir/password
POSTGRES_CA_FILE=$dir/certs/ca.pem
POSTGRES_LOG=$dir/postgresql.log
POSTGRES_SOCKET_DIR=$dir/run
EOF
    mv -f "$dir/ports.env.tmp" "$dir/ports.env"
    cat "$dir/ports.env"
}

[[ $# -ge 2 ]] || usage
command=$1 dir=$2
shift 2
case $command in
    start) cmd_start "$dir" "$@" ;;
    pause) [[ $# -eq 0 ]] || die "pause takes no options"; cmd_pause "$dir" ;;
    resume) [[ $# -eq 0 ]] || die "resume takes no options"; cmd_resume "$dir" ;;
    createdb|dropdb|psql) [[ $# -eq 1 ]] || usage; cmd_database "$command" "$dir" "$1" ;;
    stop) [[ $# -eq 0 ]] || die "stop takes no options"; cmd_stop "$dir" ;;
    watch) [[ $# -eq 2 ]] || usage; cmd_watch "$dir" "$@" ;;
    *) usage ;;
esac
