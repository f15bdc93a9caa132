#!/bin/sh
# The client inventory's cost: session records written per second through the store with the
# rollups (as the gateway's writer does) and without them, then the time `mailtls clients`
# takes over the resulting store. Not part of CI. Knobs: RECORDS (1000000), CLIENTS (1000),
# MAILTLS_BIN (target/release/mailtls, built when missing), BENCH_DIR (a temporary folder,
# removed unless BENCH_KEEP=1). POSTGRES=1 also measures PostgreSQL (a private server from
# lab/postgres.sh, TLS on loopback): POSTGRES_RECORDS (200000) by one writer, then as many again
# by two writers at once into the same clients.
set -eu
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
CLIENTS=${CLIENTS:-1000}
MAILTLS_BIN=${MAILTLS_BIN:-target/release/mailtls}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d)}
if [ "${BENCH_KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi

cargo build --release -q -p store --example inventory_bench
if [ ! -x "$MAILTLS_BIN" ]; then
    cargo build --release -q -p mailtls
fi
if [ "${POSTGRES:-0}" = 1 ]; then
    mkdir -p "$BENCH_DIR"
    # mktemp's folder is 0700; the server runs as the postgres user and must reach its data.
    chmod a+x "$BENCH_DIR"
    bash lab/postgres.sh start "$BENCH_DIR/postgres" --stop-with $$ >/dev/null
    trap 'bash lab/postgres.sh stop "$BENCH_DIR/postgres" >/dev/null; [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$BENCH_DIR"' EXIT
    set -a
    . "$BENCH_DIR/postgres/ports.env"
    set +a
fi
target/release/examples/inventory_bench "$BENCH_DIR" "$RECORDS" "$CLIENTS"
ls -l "$BENCH_DIR"/*.db | awk '{print "db_bytes " $5 " " $9}'

# Three runs of the listing, the way an admin runs it: a new process each time.
for format in "" --json --csv; do
    for run in 1 2 3; do
        start=$(date +%s%N)
        "$MAILTLS_BIN" clients --store "$BENCH_DIR/with-rollup.db" $format >/dev/null || true
        end=$(date +%s%N)
        echo "clients${format:- (table)} run $run: $(( (end - start) / 1000000 )) ms"
    done
done
