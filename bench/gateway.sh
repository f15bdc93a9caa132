#!/usr/bin/env bash
# bench/gateway.sh: the gateway benchmark of issue 2 (see bench/README.md, "Gateway").
#
#   bench/gateway.sh            # several minutes after the release build; not part of CI
#
# In one run, against one lab Dovecot (TLS 1.2 minimum, 52 MiB mailbox, many-sessions tuning):
#   0. the crypto floor: CPU seconds OpenSSL needs to seal and open 1 GiB with AES-128-GCM
#   1. throughput: FETCH 1:* BODY.PEEK[] directly, through mailtls, through stunnel (MiB/s),
#      and the proxy's CPU seconds (user + system, /proc/PID/stat) per GiB proxied
#   2. connection rate: connect, TLS handshake, LOGIN, LOGOUT (sessions/s), same three paths
#   3. idle sessions: resident memory per logged-in idle session, mailtls and stunnel, for
#      sessions that never moved mail and for sessions that fetched a message first
# Both proxies run the same suites on both legs (checked; the run stops if they differ): the
# client offers TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256 only, and the upstream leg is TLS 1.3
# TLS_AES_128_GCM_SHA256 (what rustls picks with Dovecot; stunnel is pinned to it).
# Rounds alternate the paths (and rotate their order) because this 2-core machine is shared
# with the client, Dovecot and other work: single runs vary by 20%, medians and ratios do not.
#
# Knobs (environment): THROUGHPUT_ROUNDS (11), RATE_ROUNDS (7), RATE_COUNT (400),
# RATE_WORKERS (4), IDLE_SESSIONS (5000), IDLE_ROUNDS (2), IDLE_VARIANTS (1: also measure the
# gateway under MALLOC_ARENA_MAX=2, for the memory findings), IDLE_FETCH_BYTES (65536: what each
# session of the "moved mail" idle rows fetches first), MAILBOX_MIB (52), FLOOR_SECONDS (3: per
# openssl speed run), BENCH_KEEP (1: keep the work directory with every log and the raw
# results), MAILTLS_BIN (measure this binary instead of building one: A/B comparisons).
# A smoke run of the script itself (a minute or two, figures meaningless):
#   THROUGHPUT_ROUNDS=1 RATE_ROUNDS=1 RATE_COUNT=20 IDLE_SESSIONS=20 IDLE_ROUNDS=1 \
#   IDLE_VARIANTS=0 MAILBOX_MIB=4 FLOOR_SECONDS=1 bench/gateway.sh
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
THROUGHPUT_ROUNDS=${THROUGHPUT_ROUNDS:-11}
RATE_ROUNDS=${RATE_ROUNDS:-7}
RATE_COUNT=${RATE_COUNT:-400}
RATE_WORKERS=${RATE_WORKERS:-4}
IDLE_SESSIONS=${IDLE_SESSIONS:-5000}
IDLE_ROUNDS=${IDLE_ROUNDS:-2}
IDLE_VARIANTS=${IDLE_VARIANTS:-1}
IDLE_FETCH_BYTES=${IDLE_FETCH_BYTES:-65536}
MAILBOX_MIB=${MAILBOX_MIB:-52}
FLOOR_SECONDS=${FLOOR_SECONDS:-3}
# The one suite each leg runs, on both proxies.
CLIENT_CIPHER=ECDHE-RSA-AES128-GCM-SHA256
UPSTREAM_SUITE=TLS_AES_128_GCM_SHA256

die() { echo "gateway.sh: $*" >&2; exit 1; }
log() { echo "== $(date +%H:%M:%S) $*" >&2; }
# shellcheck source=bench/processes.sh
source "$BENCH/processes.sh"

require_tools cargo python3 stunnel4 dovecot openssl

WORK=$(make_work_dir mtbench)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
GW_PID="" FRONT_PID="" BACK_PID="" IDLE_PID="" DOVECOT_STARTED=""

cleanup() {
    local rc=$?
    set +e
    exec 7>&- 2>/dev/null
    stop_pid "$IDLE_PID"
    stop_pid "$GW_PID"
    stop_pid "$FRONT_PID"
    stop_pid "$BACK_PID"
    [[ -n $DOVECOT_STARTED ]] && "$ROOT/lab/dovecot.sh" stop "$WORK/dovecot" >/dev/null
    keep_or_remove_work "$rc" gateway.sh
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rss_kib() { # sum of VmRSS (KiB) of the given pids
    local total=0 pid v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
        total=$((total + v))
    done
    echo "$total"
}

fd_count() { # open file descriptors of the given pids, summed
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)))
    done
    echo "$total"
}

threads() { # threads of the given pids, summed
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(awk '/^Threads:/ {print $2}' "/proc/$pid/status")))
    done
    echo "$total"
}

# ---------------------------------------------------------------------------------------------
if [[ -n ${MAILTLS_BIN:-} ]]; then
    # A/B comparisons: measure a binary built elsewhere (e.g. before a change) in the same lab.
    BIN=$(realpath "$MAILTLS_BIN")
    log "using MAILTLS_BIN=$BIN (no build)"
else
    log "building: cargo build --release -p mailtls"
    (cd "$ROOT" && cargo build --release -p mailtls 2>&1 | tail -n 3) >&2
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mailtls
fi
[[ -x $BIN ]] || die "no release binary at $BIN"

log "starting a lab Dovecot (TLS 1.2 minimum, ${MAILBOX_MIB} MiB mailbox, --many)"
DOVECOT_STARTED=1
"$ROOT/lab/dovecot.sh" start "$WORK/dovecot" --min-tls TLSv1.2 --mailbox-mib "$MAILBOX_MIB" \
    --many >"$WORK/dovecot.start.log"
# shellcheck disable=SC1091
source "$WORK/dovecot/ports.env"
export ALICE_PASSWORD   # imap_bench.py and imap_idle_sessions.py read it from the environment
MAILBOX_BYTES=$(du -sb --apparent-size "$MESSAGES_DIR" | cut -f1)

read -r GW_PORT FRONT_PORT BACK_PORT <<<"$(pick_ports 3)"

mkdir -p "$WORK/gw" "$WORK/stunnel"
cat >"$WORK/gw/mailtls.toml" <<EOF
# Written by bench/gateway.sh: one implicit-TLS listener at the default floor (TLS 1.2) in
# front of the lab Dovecot, verified with the lab CA.
[gateway]
max_sessions = 12000
# Every benchmark client comes from 127.0.0.1: its share of the unauthenticated budget must
# cover the connection-rate and idle-session runs.
max_unauthenticated = 4000
max_unauthenticated_per_client = 2000

[store]
path = "$WORK/gw/sessions.db"

[[upstream]]
name = "lab-imap"
address = "127.0.0.1:$IMAPS_PORT"
protocol = "imap"
tls = "implicit"
ca_file = "$CA_FILE"
server_name = "localhost"

[[listener]]
name = "bench-imaps"
protocol = "imap"
bind = "127.0.0.1:$GW_PORT"
tls = "implicit"
min_tls = "1.2"
certificate = "$CERT_FILE"
key = "$KEY_FILE"
upstream = "lab-imap"
EOF
"$BIN" check-config --config "$WORK/gw/mailtls.toml" >/dev/null

# Left alone, stunnel takes Dovecot's first TLS 1.3 choice, AES-256-GCM, while mailtls's rustls
# asks for AES-128-GCM first. Pinned, both proxies do the same crypto per byte.
write_stunnel_pair imaps "$IMAPS_PORT" "$UPSTREAM_SUITE"

start_gateway() { # [VAR=value...]: extra environment, e.g. MALLOC_ARENA_MAX=2
    env "$@" MAILTLS_LOG=info "$BIN" gateway --config "$WORK/gw/mailtls.toml" \
        </dev/null >/dev/null 2>>"$WORK/gw/gateway.log" &
    GW_PID=$!
    wait_listening "$GW_PORT" "$GW_PID" "mailtls gateway"
}

start_stunnel() {
    stunnel4 "$WORK/stunnel/back.conf" </dev/null >>"$WORK/stunnel/back.out" 2>&1 &
    BACK_PID=$!
    stunnel4 "$WORK/stunnel/front.conf" </dev/null >>"$WORK/stunnel/front.out" 2>&1 &
    FRONT_PID=$!
    wait_listening "$BACK_PORT" "$BACK_PID" "stunnel (back)"
    wait_listening "$FRONT_PORT" "$FRONT_PID" "stunnel (front)"
}

restart_gateway() { stop_pid "$GW_PID"; GW_PID=""; start_gateway "$@"; }
restart_stunnel() { stop_pid "$FRONT_PID"; stop_pid "$BACK_PID"; FRONT_PID="" BACK_PID=""; start_stunnel; }

proxy_pids() { # PATH: the processes that carry it (none for direct)
    case $1 in
        mailtls) echo "$GW_PID" ;;
        stunnel) echo "$FRONT_PID $BACK_PID" ;;
    esac
}

port_of() {
    case $1 in
        direct) echo "$IMAPS_PORT" ;;
        mailtls) echo "$GW_PORT" ;;
        stunnel) echo "$FRONT_PORT" ;;
    esac
}

# The paths in round r, rotated so no path always runs first (right after another's load).
bench_client() { # MODE PATH [args...]: one imap_bench.py run, its JSON on stdout
    local mode=$1 path=$2; shift 2
    python3 "$BENCH/imap_bench.py" "$mode" --port "$(port_of "$path")" --cafile "$CA_FILE" \
        --cipher "$CLIENT_CIPHER" --user alice --password-env ALICE_PASSWORD "$@"
}

record() { # TEST PATH ROUND JSON: one line of raw results
    python3 -c 'import json,sys; d=json.loads(sys.argv[4]); d.update(test=sys.argv[1], path=sys.argv[2], round=int(sys.argv[3])); print(json.dumps(d))' \
        "$@" >>"$RESULTS"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------
# The crypto floor, measured before the proxies start: what sealing (encrypt + tag) and opening
# (decrypt + check) cost per byte in OpenSSL's TLS-like AEAD loop (a fresh nonce and 13 bytes of
# additional data per 16 KiB record, as TLS records are), in CPU time of one core. A proxy
# opens every byte once as it arrives on one leg and seals it once as it leaves on the other.
log "0. crypto floor: openssl speed -evp aes-128-gcm -aead -bytes 16384, ${FLOOR_SECONDS} s each way"
aead_bytes_per_cpu_second() { # [-decrypt]
    openssl speed -evp aes-128-gcm -aead -bytes 16384 -seconds "$FLOOR_SECONDS" -mr "$@" 2>/dev/null \
        | awk -F: '$1 == "+F" {print $NF}'
}
SEAL=$(aead_bytes_per_cpu_second)
OPEN=$(aead_bytes_per_cpu_second -decrypt)
[[ -n $SEAL && -n $OPEN ]] || die "openssl speed gave no AES-128-GCM figure"
record floor openssl 0 "$(printf '{"seal_bytes_per_cpu_s": %s, "open_bytes_per_cpu_s": %s}' "$SEAL" "$OPEN")"
python3 -c 'import sys; s, o = map(float, sys.argv[1:]); print("  seal %.0f MiB/s, open %.0f MiB/s per core: %.3f CPU s per GiB for one open + one seal" % (s / 2**20, o / 2**20, 2**30 / s + 2**30 / o))' \
    "$SEAL" "$OPEN" >&2

start_gateway
start_stunnel

# ---------------------------------------------------------------------------------------------
# Warm-up: page cache for the mailbox, rustls and stunnel session caches, Dovecot's index.
# Each path's upstream leg is read from Dovecot's login line right after its warm-up fetch.
log "warm-up, and the TLS each path negotiates with Dovecot"
declare -A UPSTREAM_TLS CLIENT_TLS
for path in direct mailtls stunnel; do
    out=$(bench_client fetch "$path")
    sleep 0.2
    UPSTREAM_TLS[$path]=$(grep 'Login: user=<alice>' "$DOVECOT_LOG" | tail -n 1 \
        | grep -o 'TLSv1[.0-9]* with cipher [A-Z0-9_-]*' || echo unknown)
    python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("  %-8s client leg %s %s; upstream leg %s" % (sys.argv[2], d["tls_version"], d["cipher"], sys.argv[3]))' \
        "$out" "$path" "${UPSTREAM_TLS[$path]}" >&2
    CLIENT_TLS[$path]=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["tls_version"] + " with cipher " + d["cipher"])' "$out")
    record tls "$path" 0 "$(python3 -c 'import json,sys; print(json.dumps({"client_leg": sys.argv[1], "upstream_leg": sys.argv[2]}))' "${CLIENT_TLS[$path]}" "${UPSTREAM_TLS[$path]}")"
done
# The comparison is only fair if both proxies do the same crypto on both legs.
for leg in CLIENT_TLS UPSTREAM_TLS; do
    declare -n seen=$leg
    [[ ${seen[mailtls]} == "${seen[stunnel]}" && ${seen[mailtls]} != unknown ]] \
        || die "mailtls and stunnel negotiated different suites ($leg): '${seen[mailtls]}' vs '${seen[stunnel]}'"
    unset -n seen
done
[[ ${UPSTREAM_TLS[mailtls]} == *"$UPSTREAM_SUITE" ]] \
    || die "the upstream leg runs ${UPSTREAM_TLS[mailtls]}, not $UPSTREAM_SUITE: update UPSTREAM_SUITE and the floor"

log "1. throughput: FETCH 1:* BODY.PEEK[] of $((MAILBOX_BYTES / 1048576)) MiB, $THROUGHPUT_ROUNDS alternating rounds"
for ((r = 1; r <= THROUGHPUT_ROUNDS; r++)); do
    line="  round $r:"
    for path in $(rotated "$r" direct mailtls stunnel); do
        # shellcheck disable=SC2046 # word splitting wanted: a list of pids
        pids=($(proxy_pids "$path"))
        ticks_before=$( ((${#pids[@]})) && cpu_ticks "${pids[@]}" || echo 0)
        out=$(bench_client fetch "$path")
        ticks_after=$( ((${#pids[@]})) && cpu_ticks "${pids[@]}" || echo 0)
        out=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); t=int(sys.argv[2]); d["proxy_cpu_seconds"]=round(t/int(sys.argv[3]),2) if sys.argv[4]=="1" else None; print(json.dumps(d))' \
            "$out" "$((ticks_after - ticks_before))" "$CLK_TCK" "$((${#pids[@]} > 0))")
        record fetch "$path" "$r" "$out"
        line+=" $path $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); c=d["proxy_cpu_seconds"]; print(d["mib_per_s"], "" if c is None else "(%.2f CPU s/GiB)" % (c / (d["bytes"] / 2**30)))' "$out")"
    done
    echo "$line (MiB/s)" >&2
done

log "2. connection rate: $RATE_COUNT x (connect, TLS, LOGIN, LOGOUT), $RATE_WORKERS workers, $RATE_ROUNDS alternating rounds"
for ((r = 1; r <= RATE_ROUNDS; r++)); do
    line="  round $r:"
    for path in $(rotated "$r" direct mailtls stunnel); do
        # The gateway's CPU per session, and the part of it its session-writer thread spends
        # recording each session (the SQLite store with the inventory's rollups).
        if [[ $path == mailtls ]]; then
            gw_before=$(cpu_ticks "$GW_PID") writer_before=$(thread_cpu_ticks "$GW_PID" session-writer)
        fi
        out=$(bench_client rate "$path" --count "$RATE_COUNT" --workers "$RATE_WORKERS")
        if [[ $path == mailtls ]]; then
            # Records are written in batches: wait for the last one before counting.
            sleep 1.5
            out=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); gw, wr, hz, n = map(int, sys.argv[2:]); d["proxy_cpu_ms_per_session"] = round(gw * 1000 / hz / n, 3); d["writer_cpu_ms_per_session"] = round(wr * 1000 / hz / n, 3); print(json.dumps(d))' \
                "$out" "$(($(cpu_ticks "$GW_PID") - gw_before))" \
                "$(($(thread_cpu_ticks "$GW_PID" session-writer) - writer_before))" "$CLK_TCK" "$RATE_COUNT")
        fi
        record rate "$path" "$r" "$out"
        line+=" $path $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["per_s"])' "$out")"
    done
    echo "$line sessions/s" >&2
done

# ---------------------------------------------------------------------------------------------
# Idle sessions. Each measurement starts from a freshly started proxy, so memory freed by
# earlier phases (and kept by the allocator) cannot hide what the sessions cost.
idle_once() { # PATH ROUND: PATH is mailtls or stunnel, -moved for sessions that fetched first
    local path=$1 r=$2 pids before after fds thr out status secs fetched after_close fetch=0
    case $path in
        mailtls | mailtls-moved) restart_gateway; pids=("$GW_PID") ;;
        mailtls-arena2) restart_gateway MALLOC_ARENA_MAX=2; pids=("$GW_PID") ;;
        stunnel | stunnel-moved) restart_stunnel; pids=("$FRONT_PID" "$BACK_PID") ;;
    esac
    [[ $path == *-moved ]] && fetch=$IDLE_FETCH_BYTES
    sleep 1
    before=$(rss_kib "${pids[@]}")
    local port
    port=$(port_of "${path%%-*}")
    rm -f "$WORK/idle.in" && mkfifo "$WORK/idle.in"
    # The client holds its sessions until its stdin (this fifo) reaches EOF.
    python3 "$ROOT/tests/clients/imap_idle_sessions.py" --port "$port" --mode implicit \
        --tls-version 1.2 --cafile "$CA_FILE" --user alice --password-env ALICE_PASSWORD \
        --sessions "$IDLE_SESSIONS" --concurrency 50 --fetch-bytes "$fetch" \
        <"$WORK/idle.in" >"$WORK/idle.out" 2>"$WORK/idle.err" &
    IDLE_PID=$!
    exec 7>"$WORK/idle.in"
    local i
    for ((i = 0; i < 3000; i++)); do
        grep -qE '^(ready|failed|interrupted)' "$WORK/idle.out" && break
        kill -0 "$IDLE_PID" 2>/dev/null || break
        sleep 0.1
    done
    status=$(grep -E '^(ready|failed|interrupted)' "$WORK/idle.out" || true)
    [[ $status == ready* ]] || { cat "$WORK/idle.err" >&2; die "idle sessions through $path: ${status:-no answer}"; }
    secs=$(sed -n 's/.* seconds=\([0-9.]*\).*/\1/p' <<<"$status")
    fetched=$(sed -n 's/.* fetched_bytes=\([0-9]*\).*/\1/p' <<<"$status")
    ((fetch == 0 || fetched >= IDLE_SESSIONS * 1024)) \
        || die "the idle sessions through $path moved only $fetched bytes before idling"
    # Let the last hand-overs finish and the allocator settle before reading memory.
    sleep 5
    after=$(rss_kib "${pids[@]}")
    fds=$(fd_count "${pids[@]}")
    thr=$(threads "${pids[@]}")
    exec 7>&-
    wait "$IDLE_PID" || die "the idle client reported lost sessions through $path: $(tail -n 1 "$WORK/idle.out")"
    IDLE_PID=""
    sleep 3
    after_close=$(rss_kib "${pids[@]}")
    record idle "$path" "$r" "$(printf '{"sessions": %d, "fetched_bytes": %d, "rss_before_kib": %d, "rss_after_kib": %d, "rss_after_close_kib": %d, "fds": %d, "threads": %d, "setup_seconds": %s, "kib_per_session": %.1f}' \
        "$IDLE_SESSIONS" "$fetched" "$before" "$after" "$after_close" "$fds" "$thr" "$secs" \
        "$(python3 -c "print(($after - $before) / $IDLE_SESSIONS)")")"
    printf '  round %d: %-15s RSS %d -> %d KiB (%s KiB/session; %d fds, %d threads; %s s to log in; %d KiB after close)\n' \
        "$r" "$path" "$before" "$after" "$(python3 -c "print(round(($after - $before) / $IDLE_SESSIONS, 1))")" \
        "$fds" "$thr" "$secs" "$after_close" >&2
}

idle_paths=(mailtls stunnel mailtls-moved stunnel-moved)
[[ $IDLE_VARIANTS == 1 ]] && idle_paths+=(mailtls-arena2)
log "3. idle sessions: $IDLE_SESSIONS logged-in TLS IMAP sessions ('-moved': each fetched $IDLE_FETCH_BYTES bytes first), $IDLE_ROUNDS alternating rounds"
for ((r = 1; r <= IDLE_ROUNDS; r++)); do
    for path in $(rotated "$((r - 1))" "${idle_paths[@]}"); do
        idle_once "$path" "$r"
    done
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$BENCH/summarize.py" "$RESULTS" \
    --mailbox-bytes "$MAILBOX_BYTES" --rate-count "$RATE_COUNT" --rate-workers "$RATE_WORKERS" \
    --idle-fetch-bytes "$IDLE_FETCH_BYTES" \
    --load-start "$LOAD_START" --load-end "$LOAD_END" \
    --versions "$("$BIN" --version); $(stunnel4 -version 2>&1 | grep -m1 '^stunnel'); $(dovecot --version | cut -d' ' -f1) Dovecot; $(openssl version | cut -d' ' -f1-2)"
