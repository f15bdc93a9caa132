#!/usr/bin/env bash
# bench/sensor.sh: packets per second `mailtls sensor` takes on loopback without drops, while
# lab traffic runs. Not part of CI.
#
# It builds `cargo build --release -p mailtls`, starts a lab Dovecot (TLS 1.2 minimum,
# MAILBOX_MIB mailbox) and `mailtls sensor --interface lo` for the run, then drives, at once,
# HANDSHAKES TLS connections that log in and out (bench/imap_bench.py rate) and bulk IMAP
# FETCH of the whole mailbox FETCH_REPEAT times (bench/imap_bench.py fetch). The sensor's own
# end line gives the packets its filter received and those the kernel and the interface
# dropped; the store gives the handshakes it recorded, to compare with those made. Packets
# per second is received packets over the traffic's wall time. The sensor's CPU time comes
# from /proc.
#
# Knobs: MAILBOX_MIB (16), FETCH_REPEAT (8), HANDSHAKES (2000), BENCH_KEEP=1 (keep logs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
MAILBOX_MIB=${MAILBOX_MIB:-16}
FETCH_REPEAT=${FETCH_REPEAT:-8}
HANDSHAKES=${HANDSHAKES:-2000}

die() { echo "sensor.sh: $*" >&2; exit 1; }
log() { echo "== $(date +%H:%M:%S) $*" >&2; }
# shellcheck source=bench/processes.sh
source "$BENCH/processes.sh"

require_tools cargo python3 dovecot

WORK=$(make_work_dir mtsensbench)
SENSOR_PID="" DOVECOT_STARTED=""

cleanup() {
    local rc=$?
    set +e
    stop_pid "$SENSOR_PID"
    [[ -n $DOVECOT_STARTED ]] && "$ROOT/lab/dovecot.sh" stop "$WORK/dovecot" >/dev/null
    keep_or_remove_work "$rc" sensor.sh
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building: cargo build --release -p mailtls"
(cd "$ROOT" && cargo build --release -p mailtls 2>&1 | tail -n 2) >&2
MAILTLS=${CARGO_TARGET_DIR:-$ROOT/target}/release/mailtls
[[ -x $MAILTLS ]] || die "no binary at $MAILTLS"

log "starting a lab Dovecot (TLS 1.2 minimum, ${MAILBOX_MIB} MiB mailbox)"
DOVECOT_STARTED=1
"$ROOT/lab/dovecot.sh" start "$WORK/dovecot" --min-tls TLSv1.2 --mailbox-mib "$MAILBOX_MIB" \
    --many >"$WORK/dovecot.start.log"
# shellcheck disable=SC1091
source "$WORK/dovecot/ports.env"
export ALICE_PASSWORD

log "sensor on lo; $HANDSHAKES logins and FETCH of the mailbox x$FETCH_REPEAT at once"
"$MAILTLS" sensor --interface lo --store "$WORK/sensor.db" --tls-port "$IMAPS_PORT=imap" \
    --for 3600s >"$WORK/sensor.out" 2>"$WORK/sensor.err" &
SENSOR_PID=$!
for _ in $(seq 100); do grep -qs "listening on" "$WORK/sensor.err" && break; sleep 0.1; done
grep -qs "listening on" "$WORK/sensor.err" || die "the sensor did not start: $(cat "$WORK/sensor.err")"

common=(--port "$IMAPS_PORT" --cafile "$CA_FILE" --user alice --password-env ALICE_PASSWORD)
start=$(date +%s.%N)
python3 "$BENCH/imap_bench.py" rate "${common[@]}" --count "$HANDSHAKES" --workers 4 >"$WORK/rate.json" &
rate_pid=$!
python3 "$BENCH/imap_bench.py" fetch "${common[@]}" --repeat "$FETCH_REPEAT" >"$WORK/fetch.json"
wait "$rate_pid"
end=$(date +%s.%N)
sleep 2
cpu_ticks=$(awk '{print $14 + $15}' "/proc/$SENSOR_PID/stat")
kill -INT "$SENSOR_PID"
wait "$SENSOR_PID" || true
SENSOR_PID=""

# The summary's counts, one a line: "N packets received by the filter" and so on.
count_of() {
    awk -v what="$1" '$0 ~ "^[0-9]+ " what "$" {print $1}' "$WORK/sensor.out"
}
received=$(count_of "packets received by the filter")
dropped=$(count_of "packets dropped by the kernel")
if_dropped=$(count_of "packets dropped by the interface")
[[ -n $received && -n $dropped && -n $if_dropped ]] || die "no counts in the summary: $(cat "$WORK/sensor.out" "$WORK/sensor.err")"
# Python's own sqlite3: the sqlite3 command is not among what lab/install.sh installs.
recorded=$(python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(
    "select count(*) from sessions where source = ? and tls_version is not null", ("sensor",)
).fetchone()[0])' "$WORK/sensor.db")
hz=$(getconf CLK_TCK)
python3 - "$received" "$dropped" "$if_dropped" "$recorded" "$HANDSHAKES" "$start" "$end" "$cpu_ticks" "$hz" <<'EOF'
import sys
received, dropped, if_dropped, recorded, made = map(int, sys.argv[1:6])
start, end = float(sys.argv[6]), float(sys.argv[7])
cpu = int(sys.argv[8]) / int(sys.argv[9])
seconds = end - start
print(f"traffic {seconds:.1f} s: {received} packets received ({received / seconds:,.0f}/s), "
      f"{dropped} dropped by the kernel, {if_dropped} by the interface")
print(f"handshakes recorded {recorded} of at least {made} made (the fetch adds its own)")
print(f"sensor CPU {cpu:.2f} s: {cpu / max(received, 1) * 1e6:.2f} us per packet")
EOF
