#!/usr/bin/env bash
# bench/oauth_logins.sh: the OAuth login benchmark of issue 11 (see bench/README.md, "OAuth logins").
#
#   bench/oauth_logins.sh       # about 3 minutes (release build included); not part of CI
#
# In one run, against one lab Dovecot with its oauth2 passdb (lab/dovecot.sh --oauth2) and one
# local token endpoint (the e2e fixture `token-endpoint`, HS256 JWTs Dovecot validates):
#   1. login rate, connect + TLS 1.2 handshake + LOGIN + LOGOUT, in alternating rounds, on
#      three sides that each do the same client work:
#        mailtls-oauth  the gateway checks a local password (Argon2id) and logs in to the
#                       token-only mailbox `oauthonly` with XOAUTH2 and a cached token
#        mailtls-pass   the same gateway passes alice's password through (PLAIN upstream)
#        emailproxy     email-oauth2-proxy (PyPI `emailproxy`), client_credentials against
#                       the same token endpoint, XOAUTH2 to the same Dovecot; its local side
#                       is implicit TLS (local_certificate_path), so the client speaks TLS 1.2
#      logins/s (median of rounds) and the CPU seconds of the proxy process per 1,000 logins
#      (user + system from /proc/PID/stat)
#   2. the cost of one local Argon2 check: CPU time of `mailtls passwd` (one hash with the
#      parameters every verify uses) minus that of `mailtls --version`
#   3. the sustained local-check rate: many clients sending wrong passwords to the OAuth
#      listener (2 refused LOGINs per connection; each is one Argon2 verify, nothing upstream)
#   4. whether running sessions slow down meanwhile: NOOP round trips on a logged-in OAuth
#      session, idle vs during that burst vs (the control) while two spinning processes keep
#      both cores busy without any login, in alternating rounds
# Every side's token is fetched once at warm-up; the run checks at the end that the token
# endpoint saw exactly one client_credentials request per proxy (tokens were cached).
#
# Knobs (environment): ROUNDS (7), RATE_COUNT (400: most sessions per side per round),
# RATE_SECONDS (4: no session starts after this long, per side per round), RATE_WORKERS (4),
# HASH_RUNS (5: `mailtls passwd` runs), BURST_ROUNDS (3), BURST_SECONDS (6), BURST_WORKERS (8),
# NOOP_INTERVAL (0.02 s), EMAILPROXY_VENV (reuse a venv with emailproxy installed instead of
# making one in the work directory), MAILTLS_BIN (measure this binary instead of building one),
# TOKEN_ENDPOINT_BIN (default: target/release or target/debug token-endpoint, built in debug if
# neither exists; it serves one request per proxy, its speed does not matter), BENCH_KEEP (1:
# keep the work directory with every log and the raw results).
# A smoke run (a minute or so, figures meaningless):
#   ROUNDS=1 RATE_SECONDS=1 HASH_RUNS=1 BURST_ROUNDS=1 BURST_SECONDS=2 bench/oauth_logins.sh
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1   # the clients import imap_bench.py and summarize.py

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
ROUNDS=${ROUNDS:-7}
RATE_COUNT=${RATE_COUNT:-400}
RATE_SECONDS=${RATE_SECONDS:-4}
RATE_WORKERS=${RATE_WORKERS:-4}
HASH_RUNS=${HASH_RUNS:-5}
BURST_ROUNDS=${BURST_ROUNDS:-3}
BURST_SECONDS=${BURST_SECONDS:-6}
BURST_WORKERS=${BURST_WORKERS:-8}
NOOP_INTERVAL=${NOOP_INTERVAL:-0.02}
CLIENT_CIPHER=ECDHE-RSA-AES128-GCM-SHA256
APP_ID=bench-app
APP_SECRET=bench-app-secret-7Qw
# The device's local password on the gateway, and the password emailproxy encrypts its cached
# token with: the same text on both OAuth sides.
export DEVICE_PASSWORD='bench-device-pw 9'

die() { echo "oauth_logins.sh: $*" >&2; exit 1; }
log() { echo "== $(date +%H:%M:%S) $*" >&2; }
# stop_pid, pick_ports, wait_listening, cpu_ticks, rotated, require_tools, make_work_dir:
# shared with the other benchmarks.
# shellcheck source=bench/processes.sh
source "$ROOT/bench/processes.sh"

require_tools cargo python3 dovecot openssl curl

WORK=$(make_work_dir mtoauth)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
GW_PID="" EP_PID="" TE_PID="" NOOP_PID="" DOVECOT_STARTED=""
BUSY_PIDS=()

cleanup() {
    local rc=$?
    set +e
    stop_pid "$NOOP_PID"
    for pid in "${BUSY_PIDS[@]}"; do stop_pid "$pid"; done
    stop_pid "$GW_PID"
    stop_pid "$EP_PID"
    stop_pid "$TE_PID"
    [[ -n $DOVECOT_STARTED ]] && "$ROOT/lab/dovecot.sh" stop "$WORK/dovecot" >/dev/null
    keep_or_remove_work "$rc" oauth_logins.sh
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
if [[ -n ${MAILTLS_BIN:-} ]]; then
    BIN=$(realpath "$MAILTLS_BIN")
    log "using MAILTLS_BIN=$BIN (no build)"
else
    log "building: cargo build --release -p mailtls"
    (cd "$ROOT" && cargo build --release -p mailtls 2>&1 | tail -n 3) >&2
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mailtls
fi
[[ -x $BIN ]] || die "no release binary at $BIN"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [[ -z ${TOKEN_ENDPOINT_BIN:-} ]]; then
    for candidate in "$TARGET/release/token-endpoint" "$TARGET/debug/token-endpoint"; do
        [[ -x $candidate ]] && TOKEN_ENDPOINT_BIN=$candidate && break
    done
    if [[ -z ${TOKEN_ENDPOINT_BIN:-} ]]; then
        log "building: cargo build -p e2e --bin token-endpoint"
        (cd "$ROOT" && cargo build -p e2e --bin token-endpoint 2>&1 | tail -n 3) >&2
        TOKEN_ENDPOINT_BIN=$TARGET/debug/token-endpoint
    fi
fi
[[ -x $TOKEN_ENDPOINT_BIN ]] || die "no token-endpoint binary at $TOKEN_ENDPOINT_BIN"

if [[ -n ${EMAILPROXY_VENV:-} ]]; then
    VENV=$EMAILPROXY_VENV
else
    log "installing emailproxy from PyPI into $WORK/venv"
    VENV=$WORK/venv
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q emailproxy >"$WORK/pip.log" 2>&1 || { cat "$WORK/pip.log" >&2; die "pip install emailproxy failed"; }
fi
[[ -x $VENV/bin/emailproxy ]] || die "no emailproxy in $VENV"
EP_VERSION=$("$VENV/bin/pip" show emailproxy 2>/dev/null | awk '/^Version:/ {print $2}')

log "starting a lab Dovecot (--oauth2: token-only user oauthonly; TLS 1.2 minimum; --many)"
DOVECOT_STARTED=1
"$ROOT/lab/dovecot.sh" start "$WORK/dovecot" --oauth2 --min-tls TLSv1.2 --many >"$WORK/dovecot.start.log"
# shellcheck disable=SC1091
source "$WORK/dovecot/ports.env"
export ALICE_PASSWORD
[[ -n ${OAUTH2_KEY_FILE:-} && $OAUTH_ONLY_USER == oauthonly ]] || die "the lab Dovecot has no oauth2 key"

log "starting the token endpoint ($TOKEN_ENDPOINT_BIN)"
"$TOKEN_ENDPOINT_BIN" --hs256-key "$OAUTH2_KEY_FILE" --lifetime 3600 \
    --secret-client "$APP_ID,$APP_SECRET,$OAUTH_ONLY_USER" \
    </dev/null >"$WORK/token-endpoint.out" 2>"$WORK/token-endpoint.err" &
TE_PID=$!
for ((i = 0; i < 100; i++)); do
    grep -q '^listening on ' "$WORK/token-endpoint.out" 2>/dev/null && break
    kill -0 "$TE_PID" 2>/dev/null || die "the token endpoint exited at start; see $WORK"
    sleep 0.1
done
TOKEN_BASE=$(sed -n 's/^listening on //p' "$WORK/token-endpoint.out" | head -n 1)
[[ -n $TOKEN_BASE ]] || die "the token endpoint gave no address"
token_requests() { curl -sf "$TOKEN_BASE/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_credentials"])'; }

read -r OAUTH_PORT PASS_PORT EP_PORT <<<"$(pick_ports 3)"

# ---------------------------------------------------------------------------------------------
# The gateway: one process, two listeners on the same Dovecot port; only the upstream's auth
# differs. Both accept TLS 1.0 (they are the legacy side); the benchmark client offers 1.2.
mkdir -p "$WORK/gw"
printf '%s\n' "$APP_SECRET" >"$WORK/app.secret"
openssl rand -base64 32 >"$WORK/token.key"
chmod 600 "$WORK/app.secret" "$WORK/token.key"
log "2. the cost of one Argon2 check: $HASH_RUNS x mailtls passwd, CPU time less mailtls --version's"
# One hash (what each verify recomputes: Argon2id, the crate's defaults, 19 MiB, 2 passes)
# in a process of its own; the process's own start-up is measured alone and taken off.
HASH_JSON=$(python3 - "$BIN" "$HASH_RUNS" <<'EOF'
import json, os, resource, statistics, subprocess, sys, time
binary, runs = sys.argv[1], int(sys.argv[2])
def cpu_of(args, stdin=b""):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(args, input=stdin, capture_output=True, check=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, out
password = (os.environ["DEVICE_PASSWORD"] + "\n").encode()
hashes = [cpu_of([binary, "passwd"], password) for _ in range(runs)]
bare = [cpu_of([binary, "--version"]) for _ in range(runs)]
cpu_ms = (statistics.median(h[0] for h in hashes) - statistics.median(b[0] for b in bare)) * 1000
wall_ms = (statistics.median(h[1] for h in hashes) - statistics.median(b[1] for b in bare)) * 1000
print(json.dumps({"cpu_ms": round(cpu_ms, 1), "wall_ms": round(wall_ms, 1), "runs": runs,
                  "hash": hashes[0][2].decode().strip()}))
EOF
)
DEVICE_HASH=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["hash"])' "$HASH_JSON")
[[ $DEVICE_HASH == '$argon2id$'* ]] || die "mailtls passwd printed no Argon2id hash"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); del d["hash"]; d.update(test="argon2"); print(json.dumps(d))' \
    "$HASH_JSON" >>"$RESULTS"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("  one Argon2id hash: %.1f ms CPU, %.1f ms wall (median of %d, process start-up taken off)" % (d["cpu_ms"], d["wall_ms"], d["runs"]))' \
    "$HASH_JSON" >&2

cat >"$WORK/gw/mailtls.toml" <<EOF
# Written by bench/oauth_logins.sh.
[gateway]
max_sessions = 4000
# Every benchmark client comes from 127.0.0.1, and the wrong-password burst is the point of
# phase 3: the per-address budgets must not refuse it.
max_unauthenticated = 4000
max_unauthenticated_per_client = 2000
failed_logins_per_client = 100000000

[store]
path = "$WORK/gw/sessions.db"

[token_cache]
path = "$WORK/gw/tokens.enc"
key_file = "$WORK/token.key"

[[oauth]]
name = "$APP_ID"
token_url = "$TOKEN_BASE/token"
client_id = "$APP_ID"
client_secret_file = "$WORK/app.secret"
scope = "https://outlook.office365.com/.default"
grant = "client_credentials"

[[account]]
login = "scanner"
password_hash = '$DEVICE_HASH'
mailbox = "$OAUTH_ONLY_USER"
oauth = "$APP_ID"

[[upstream]]
name = "lab-oauth"
address = "127.0.0.1:$IMAPS_PORT"
protocol = "imap"
tls = "implicit"
ca_file = "$CA_FILE"
server_name = "localhost"
auth = "oauth"
sasl = "xoauth2"

[[upstream]]
name = "lab-pass"
address = "127.0.0.1:$IMAPS_PORT"
protocol = "imap"
tls = "implicit"
ca_file = "$CA_FILE"
server_name = "localhost"

[[listener]]
name = "bench-oauth"
protocol = "imap"
bind = "127.0.0.1:$OAUTH_PORT"
tls = "implicit"
min_tls = "1.0"
certificate = "$CERT_FILE"
key = "$KEY_FILE"
upstream = "lab-oauth"

[[listener]]
name = "bench-pass"
protocol = "imap"
bind = "127.0.0.1:$PASS_PORT"
tls = "implicit"
min_tls = "1.0"
certificate = "$CERT_FILE"
key = "$KEY_FILE"
upstream = "lab-pass"
EOF
"$BIN" check-config --config "$WORK/gw/mailtls.toml" >"$WORK/gw/check-config.out" 2>&1 \
    || { cat "$WORK/gw/check-config.out" >&2; die "the gateway config does not check"; }
MAILTLS_LOG=info "$BIN" gateway --config "$WORK/gw/mailtls.toml" \
    </dev/null >/dev/null 2>>"$WORK/gw/gateway.log" &
GW_PID=$!
wait_listening "$OAUTH_PORT" "$GW_PID" "mailtls gateway"
wait_listening "$PASS_PORT" "$GW_PID" "mailtls gateway"

# email-oauth2-proxy: one IMAP server section (implicit TLS on both sides) and one account.
# Its account sections must hold an "@", and the login it receives is the XOAUTH2 user= it
# sends; the lab mailbox is plain `oauthonly`, so the account is its catch-all "@" section
# (the token is still cached under `oauthonly`, encrypted with the login password). It
# verifies Dovecot's certificate with Python's default context, which reads SSL_CERT_FILE.
mkdir -p "$WORK/emailproxy"
cat >"$WORK/emailproxy/emailproxy.config" <<EOF
[Server setup]

[IMAP-$EP_PORT]
server_address = localhost
server_port = $IMAPS_PORT
local_address = 127.0.0.1
local_certificate_path = $CERT_FILE
local_key_path = $KEY_FILE

[emailproxy]
allow_catch_all_accounts = True

[Account setup]

[@]
token_url = $TOKEN_BASE/token
oauth2_scope = https://outlook.office365.com/.default
oauth2_flow = client_credentials
client_id = $APP_ID
client_secret = $APP_SECRET
EOF
SSL_CERT_FILE=$CA_FILE "$VENV/bin/emailproxy" --no-gui --config-file "$WORK/emailproxy/emailproxy.config" \
    --log-file "$WORK/emailproxy/emailproxy.log" </dev/null >"$WORK/emailproxy/out.log" 2>&1 &
EP_PID=$!
wait_listening "$EP_PORT" "$EP_PID" "emailproxy"

# ---------------------------------------------------------------------------------------------
port_of() {
    case $1 in
        mailtls-oauth) echo "$OAUTH_PORT" ;;
        mailtls-pass) echo "$PASS_PORT" ;;
        emailproxy) echo "$EP_PORT" ;;
    esac
}
user_of() {
    case $1 in
        mailtls-oauth) echo scanner ;;
        mailtls-pass) echo alice ;;
        emailproxy) echo "$OAUTH_ONLY_USER" ;;
    esac
}
password_env_of() { [[ $1 == mailtls-pass ]] && echo ALICE_PASSWORD || echo DEVICE_PASSWORD; }
pid_of() { [[ $1 == emailproxy ]] && echo "$EP_PID" || echo "$GW_PID"; }

client() { # MODE SIDE [args...]: one oauth_logins.py run, its JSON on stdout
    local mode=$1 side=$2; shift 2
    python3 "$BENCH/oauth_logins.py" "$mode" --port "$(port_of "$side")" --cafile "$CA_FILE" \
        --cipher "$CLIENT_CIPHER" --user "$(user_of "$side")" \
        --password-env "$(password_env_of "$side")" "$@"
}

record() { # TEST SIDE ROUND JSON [key=value...]: one line of raw results
    python3 -c 'import json,sys; d=json.loads(sys.argv[4]); d.update(test=sys.argv[1], side=sys.argv[2], round=int(sys.argv[3])); d.update(a.split("=", 1) for a in sys.argv[5:]); print(json.dumps(d))' \
        "$@" >>"$RESULTS"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }


LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# Warm-up: each OAuth side fetches its token here (emailproxy also encrypts it under the
# password), every side's TLS session caches fill.
log "warm-up: one login per side, then check Dovecot saw the OAuth sides' XOAUTH2"
for side in mailtls-oauth mailtls-pass emailproxy; do
    client rate "$side" --count 3 --workers 1 --seconds 60 >/dev/null \
        || die "warm-up login through $side failed; see $WORK"
done
sleep 0.3
XOAUTH2_LOGINS=$(grep -c "Login: user=<$OAUTH_ONLY_USER>, method=XOAUTH2" "$DOVECOT_LOG" || true)
((XOAUTH2_LOGINS == 6)) || die "expected 6 XOAUTH2 logins for $OAUTH_ONLY_USER in Dovecot's log, saw $XOAUTH2_LOGINS"
WARM_TOKENS=$(token_requests)
((WARM_TOKENS == 2)) || die "expected 2 token requests (one per OAuth proxy) after warm-up, saw $WARM_TOKENS"
echo "  Dovecot: 6 XOAUTH2 logins for $OAUTH_ONLY_USER (3 per OAuth side); token endpoint: $WARM_TOKENS client_credentials requests" >&2

log "1. login rate: <= $RATE_COUNT sessions or ${RATE_SECONDS} s per side, $RATE_WORKERS workers, $ROUNDS alternating rounds"
for ((r = 1; r <= ROUNDS; r++)); do
    line="  round $r:"
    for side in $(rotated "$r" mailtls-oauth mailtls-pass emailproxy); do
        pid=$(pid_of "$side")
        before=$(cpu_ticks "$pid")
        out=$(client rate "$side" --count "$RATE_COUNT" --seconds "$RATE_SECONDS" --workers "$RATE_WORKERS") \
            || die "logins through $side failed in round $r"
        after=$(cpu_ticks "$pid")
        record rate "$side" "$r" "$out" "cpu_ticks=$((after - before))"
        line+=" $side $(field "$out" per_s)/s ($(field "$out" logins), $(python3 -c "print(round($((after - before)) / $CLK_TCK, 2))") CPU s)"
    done
    echo "$line" >&2
done

LOGINS_BEFORE_CHECKS=$(grep -c "Login: user=<$OAUTH_ONLY_USER>" "$DOVECOT_LOG" || true)
log "3+4. local checks: NOOPs on a logged-in OAuth session every ${NOOP_INTERVAL} s, idle, during a burst of wrong passwords ($BURST_WORKERS workers, 2 per connection), and with both cores busy, $BURST_ROUNDS rounds of ${BURST_SECONDS} s"
for ((r = 1; r <= BURST_ROUNDS; r++)); do
    for phase in $(rotated "$r" idle burst busy); do
        client noop mailtls-oauth --seconds "$BURST_SECONDS" --interval "$NOOP_INTERVAL" \
            >"$WORK/noop.out" 2>"$WORK/noop.err" &
        NOOP_PID=$!
        if [[ $phase == busy ]]; then
            # The control: both cores kept busy by two spinning processes outside the gateway,
            # no login at all. NOOP times here are what CPU contention alone does to them.
            sleep 0.5
            for i in 1 2; do
                python3 -c 'import sys, time
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end: pass' "$((BURST_SECONDS - 1))" &
                BUSY_PIDS+=("$!")
            done
            for pid in "${BUSY_PIDS[@]}"; do wait "$pid"; done
            BUSY_PIDS=()
        fi
        if [[ $phase == burst ]]; then
            sleep 0.5   # the NOOP session logs in first, alone
            before=$(cpu_ticks "$GW_PID")
            out=$(client rate mailtls-oauth --wrong 2 --count 100000 --seconds "$((BURST_SECONDS - 1))" \
                --workers "$BURST_WORKERS") || die "the wrong-password burst failed in round $r"
            after=$(cpu_ticks "$GW_PID")
            record checks mailtls-oauth "$r" "$out" "cpu_ticks=$((after - before))"
            echo "  round $r: burst $(field "$out" per_s) refused logins/s ($(field "$out" logins) checks, $(python3 -c "print(round($((after - before)) / $CLK_TCK, 2))") gateway CPU s)" >&2
        fi
        wait "$NOOP_PID" || { cat "$WORK/noop.err" >&2; die "the NOOP session failed ($phase, round $r)"; }
        NOOP_PID=""
        out=$(cat "$WORK/noop.out")
        record noop "$phase" "$r" "$out"
        echo "  round $r: NOOP while $phase: median $(field "$out" median_ms) ms, p99 $(field "$out" p99_ms) ms, max $(field "$out" max_ms) ms ($(field "$out" noops) NOOPs)" >&2
    done
done

TOKENS_END=$(token_requests)
((TOKENS_END == WARM_TOKENS)) || die "the token endpoint saw $((TOKENS_END - WARM_TOKENS)) more requests after warm-up: tokens were not cached"
# Nothing of the burst went upstream: Dovecot saw only the NOOP sessions' logins, and no
# failed authentication at all.
LOGINS_AFTER_CHECKS=$(grep -c "Login: user=<$OAUTH_ONLY_USER>" "$DOVECOT_LOG" || true)
((LOGINS_AFTER_CHECKS - LOGINS_BEFORE_CHECKS == 3 * BURST_ROUNDS)) \
    || die "Dovecot saw $((LOGINS_AFTER_CHECKS - LOGINS_BEFORE_CHECKS)) logins for $OAUTH_ONLY_USER during phase 3+4, expected $((3 * BURST_ROUNDS)) (the NOOP sessions)"
AUTH_FAILED=$(grep -c 'auth failed' "$DOVECOT_LOG" || true)
((AUTH_FAILED == 0)) || die "Dovecot logged $AUTH_FAILED failed authentications: a wrong password went upstream"
echo "  Dovecot: no failed authentication; token endpoint: still $TOKENS_END requests" >&2
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
python3 "$BENCH/oauth_summary.py" "$RESULTS" --clk-tck "$CLK_TCK" \
    --rate-count "$RATE_COUNT" --rate-seconds "$RATE_SECONDS" --rate-workers "$RATE_WORKERS" \
    --token-requests "$TOKENS_END" --load-start "$LOAD_START" --load-end "$LOAD_END" \
    --versions "$("$BIN" --version); emailproxy $EP_VERSION ($("$VENV/bin/python" --version)); $(dovecot --version | cut -d' ' -f1) Dovecot"
