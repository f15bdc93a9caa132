#!/bin/sh
# The client inventory's cost: session records written per second through the store with the
# rollups (as the gateway's writer does) and without them, then the time `mailtls clients`
# takes over the resulting store. Not part of CI. Knobs: RECORDS (1000000), CLIENTS (1000),
# MAILTLS_BIN (target/release/mailtls, built when missing), BENCH_DIR (a temporary folder,
# removed unless BENCH_KEEP=1). POSTGRES=1 also measures PostgreSQL (a private server from
# lab/postgres.sh, TLS on loopback): POSTGRES_RECORDS (200000) by one writer, then as many again
# by two writers at once into the same clients, each round on a new database, ROUNDS (1) times.
# BASELINE_REF (a commit, e.g. main) also builds this bench against that commit's store and
# runs it in every round before this tree's, on the same server. RECORDS=0 skips SQLite.
set -eu
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
CLIENTS=${CLIENTS:-1000}
MAILTLS_BIN=${MAILTLS_BIN:-target/release/mailtls}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d)}
if [ "${BENCH_KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi

if [ -n "${BASELINE_REF:-}" ]; then
    # The same bench program over the baseline's store: that commit's files get this tree's
    # bench source and build into this tree's target/, so only the workspace's crates compile.
    baseline_src="$BENCH_DIR/baseline-src"
    mkdir -p "$baseline_src"
    git archive "$BASELINE_REF" | tar -x -C "$baseline_src"
    cp crates/store/examples/inventory_bench.rs "$baseline_src/crates/store/examples/"
    (cd "$baseline_src" && CARGO_TARGET_DIR="$OLDPWD/target" \
        cargo build --release -q -p store --example inventory_bench)
    cp target/release/examples/inventory_bench "$BENCH_DIR/inventory_bench.baseline"
    rm -rf "$baseline_src"
fi
cargo build --release -q -p store --example inventory_bench
if [ "$RECORDS" != 0 ] && [ ! -x "$MAILTLS_BIN" ]; then
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
if [ "${POSTGRES:-0}" != 1 ]; then
    target/release/examples/inventory_bench "$BENCH_DIR" "$RECORDS" "$CLIENTS"
else
    # Each run on a database of its own, dropped after it so the rounds need no more disk.
    base_url=$POSTGRES_URL
    for round in $(seq "${ROUNDS:-1}"); do
        for build in ${BASELINE_REF:+baseline} current; do
            bin=target/release/examples/inventory_bench
            [ "$build" = current ] || bin="$BENCH_DIR/inventory_bench.baseline"
            database="bench_${round}_$build"
            bash lab/postgres.sh createdb "$BENCH_DIR/postgres" "$database"
            echo "round=$round build=$build load=$(cut -d' ' -f1 /proc/loadavg)"
            POSTGRES_URL=$(echo "$base_url" | sed "s|/mailtls?|/$database?|") \
                "$bin" "$BENCH_DIR" "$RECORDS" "$CLIENTS"
            bash lab/postgres.sh dropdb "$BENCH_DIR/postgres" "$database"
            # Only the first run writes SQLite.
            RECORDS=0
        done
    done
fi
[ "$RECORDS" = 0 ] && [ ! -e "$BENCH_DIR/with-rollup.db" ] && exit 0
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
