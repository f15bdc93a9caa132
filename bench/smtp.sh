#!/usr/bin/env bash
# bench/smtp.sh: the SMTP submission benchmark of issue 12 (see bench/README.md, "SMTP").
#
#   bench/smtp.sh            # a few minutes after the release build; not part of CI
#
# Messages per second, each one session: connect, EHLO, STARTTLS, EHLO, AUTH PLAIN, one
# 100 KiB message, QUIT; directly to the lab Postfix (TLS 1.2 minimum, Dovecot SASL, delivery
# into a Maildir), through mailtls (a STARTTLS listener, upstream STARTTLS verified) and through
# stunnel (two chained services speaking `protocol = smtp`: STARTTLS towards the client, then
# STARTTLS towards Postfix, verified). The client does the same on every path: TLS 1.2 with
# ECDHE-RSA-AES128-GCM-SHA256 only. Rounds alternate the paths and rotate their order, since
# this 2-core machine is shared; besides the rate, the proxy's CPU time (user + system from
# /proc/PID/stat) per message is reported, which other work on the machine does not inflate.
#
# Knobs (environment): ROUNDS (5), COUNT (60 messages per round and path), WORKERS (2),
# MESSAGE_KIB (100), BENCH_KEEP (1: keep the work directory), MAILTLS_BIN (measure this binary
# instead of building one).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
ROUNDS=${ROUNDS:-5}
COUNT=${COUNT:-60}
WORKERS=${WORKERS:-2}
MESSAGE_KIB=${MESSAGE_KIB:-100}
CLIENT_CIPHER=ECDHE-RSA-AES128-GCM-SHA256

die() { echo "smtp.sh: $*" >&2; exit 1; }
log() { echo "== $(date +%H:%M:%S) $*" >&2; }
# shellcheck source=bench/processes.sh
source "$BENCH/processes.sh"

require_tools cargo python3 stunnel4 dovecot postfix openssl

WORK=$(make_work_dir mtsmtp)
RESULTS=$WORK/results.jsonl
: >"$RESULTS"
GW_PID="" FRONT_PID="" BACK_PID="" DOVECOT_STARTED="" POSTFIX_STARTED=""

cleanup() {
    local rc=$?
    set +e
    stop_pid "$GW_PID"
    stop_pid "$FRONT_PID"
    stop_pid "$BACK_PID"
    [[ -n $POSTFIX_STARTED ]] && "$ROOT/lab/postfix.sh" stop "$WORK/postfix" >/dev/null
    [[ -n $DOVECOT_STARTED ]] && "$ROOT/lab/dovecot.sh" stop "$WORK/dovecot" >/dev/null
    keep_or_remove_work "$rc" smtp.sh
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n ${MAILTLS_BIN:-} ]]; then
    BIN=$(realpath "$MAILTLS_BIN")
    log "using MAILTLS_BIN=$BIN (no build)"
else
    log "building: cargo build --release -p mailtls"
    (cd "$ROOT" && cargo build --release -p mailtls 2>&1 | tail -n 3) >&2
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/mailtls
fi
[[ -x $BIN ]] || die "no release binary at $BIN"

log "starting a lab Dovecot (SASL for Postfix) and a submission Postfix (TLS 1.2 minimum)"
DOVECOT_STARTED=1
"$ROOT/lab/dovecot.sh" start "$WORK/dovecot" --auth-listener "$WORK/dovecot/sasl/auth-postfix" \
    >"$WORK/dovecot.start.log"
source "$WORK/dovecot/ports.env"
export ALICE_PASSWORD
POSTFIX_STARTED=1
"$ROOT/lab/postfix.sh" start "$WORK/postfix" --min-tls TLSv1.2 \
    --submission "$WORK/dovecot/sasl/auth-postfix" --certs "$WORK/dovecot/certs" \
    >"$WORK/postfix.start.log"
source "$WORK/postfix/ports.env"
TO=alice@$MAIL_DOMAIN

read -r GW_PORT FRONT_PORT BACK_PORT <<<"$(pick_ports 3)"
mkdir -p "$WORK/gw" "$WORK/stunnel"
cat >"$WORK/gw/mailtls.toml" <<EOF
[store]
path = "$WORK/gw/sessions.db"

[[upstream]]
name = "lab-submission"
address = "127.0.0.1:$SMTP_PORT"
protocol = "smtp"
tls = "starttls"
ca_file = "$CA_FILE"
server_name = "localhost"

[[listener]]
name = "bench-submission"
protocol = "smtp"
bind = "127.0.0.1:$GW_PORT"
tls = "starttls"
min_tls = "1.2"
certificate = "$CERT_FILE"
key = "$KEY_FILE"
upstream = "lab-submission"
EOF
"$BIN" check-config --config "$WORK/gw/mailtls.toml" >/dev/null

# STARTTLS on both legs; TCP_NODELAY on every socket, as mailtls sets it.
write_stunnel_pair smtp "$SMTP_PORT" TLS_AES_128_GCM_SHA256 "protocol = smtp" \
    "socket = l:TCP_NODELAY=1" "socket = r:TCP_NODELAY=1"

MAILTLS_LOG=info "$BIN" gateway --config "$WORK/gw/mailtls.toml" \
    </dev/null >/dev/null 2>>"$WORK/gw/gateway.log" &
GW_PID=$!
wait_listening "$GW_PORT" "$GW_PID" "mailtls gateway"
stunnel4 "$WORK/stunnel/back.conf" </dev/null >>"$WORK/stunnel/back.out" 2>&1 &
BACK_PID=$!
stunnel4 "$WORK/stunnel/front.conf" </dev/null >>"$WORK/stunnel/front.out" 2>&1 &
FRONT_PID=$!
wait_listening "$BACK_PORT" "$BACK_PID" "stunnel (back)"
wait_listening "$FRONT_PORT" "$FRONT_PID" "stunnel (front)"

port_of() {
    case $1 in
        direct) echo "$SMTP_PORT" ;;
        mailtls) echo "$GW_PORT" ;;
        stunnel) echo "$FRONT_PORT" ;;
    esac
}
proxy_pids() {
    case $1 in
        mailtls) echo "$GW_PID" ;;
        stunnel) echo "$FRONT_PID $BACK_PID" ;;
    esac
}
submit() { # PATH COUNT: one smtp_bench.py batch, its JSON on stdout
    python3 "$BENCH/smtp_bench.py" --port "$(port_of "$1")" --cafile "$CA_FILE" \
        --cipher "$CLIENT_CIPHER" --user alice --password-env ALICE_PASSWORD --to "$TO" \
        --count "$2" --workers "$WORKERS" --message-kib "$MESSAGE_KIB"
}

log "warm-up (the gateway learns Postfix's extensions at its first login), and the TLS of each leg"
for path in direct mailtls stunnel; do
    out=$(submit "$path" 2)
    sleep 0.3
    upstream=$(grep -o 'TLS connection established from [^:]*: TLSv1[.0-9]* with cipher [A-Z0-9_-]*' \
        "$POSTFIX_LOG" | tail -n 1 | sed 's/.*\]: //')
    echo "  $path: client leg $(python3 -c 'import json,sys; print(", ".join(json.loads(sys.argv[1])["client_tls"]))' "$out"); Postfix saw ${upstream:-?}" >&2
done

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "$ROUNDS alternating rounds of $COUNT messages of $MESSAGE_KIB KiB, $WORKERS workers"
for ((r = 1; r <= ROUNDS; r++)); do
    line="  round $r:"
    for path in $(rotated "$r" direct mailtls stunnel); do
        pids=($(proxy_pids "$path"))
        before=$( ((${#pids[@]})) && cpu_ticks "${pids[@]}" || echo 0)
        out=$(submit "$path" "$COUNT")
        after=$( ((${#pids[@]})) && cpu_ticks "${pids[@]}" || echo 0)
        out=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); t=int(sys.argv[2]); d["proxy_cpu_ms_per_message"]=round(1000*t/int(sys.argv[3])/d["messages"],2) if sys.argv[4]=="1" else None; d.update(path=sys.argv[5], round=int(sys.argv[6])); print(json.dumps(d))' \
            "$out" "$((after - before))" "$CLK_TCK" "$((${#pids[@]} > 0))" "$path" "$r")
        echo "$out" >>"$RESULTS"
        line+=" $path $(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); c=d["proxy_cpu_ms_per_message"]; print(d["per_s"], "" if c is None else "(%.2f CPU ms/msg)" % c)' "$out")"
    done
    echo "$line msg/s" >&2
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$RESULTS" "$LOAD_START" "$LOAD_END" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["path"], []).append(r)
rate = {p: statistics.median(r["per_s"] for r in rs) for p, rs in by.items()}
print(f"load average at start {sys.argv[2]}, at end {sys.argv[3]}")
print("path      median msg/s  per round                      proxy CPU ms/msg (median)")
for p in ("direct", "mailtls", "stunnel"):
    cpu = [r["proxy_cpu_ms_per_message"] for r in by[p] if r["proxy_cpu_ms_per_message"] is not None]
    print(f"{p:9} {rate[p]:12.2f}  {' '.join('%.1f' % r['per_s'] for r in by[p]):30} "
          f"{statistics.median(cpu) if cpu else '-'}")
print(f"mailtls / stunnel: {rate['mailtls'] / rate['stunnel']:.2f}x; mailtls / direct: "
      f"{rate['mailtls'] / rate['direct']:.2f}x")
EOF
