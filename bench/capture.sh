#!/usr/bin/env bash
# bench/capture.sh: capture import throughput and memory against tshark, on captures made from
# lab traffic. Not part of CI.
#
# It builds `cargo build --release -p capture --example capture_rate` (the analysis of
# `mailtls import pcap`: reading, link layers, TCP reassembly, dialogues, hellos; no store),
# starts a lab Dovecot (TLS 1.2 minimum, MAILBOX_MIB mailbox), and records on loopback with
# tcpdump: HANDSHAKES TLS connections that log in and out (bench/imap_bench.py rate) and bulk
# IMAP FETCH of the whole mailbox FETCH_REPEAT times (bench/imap_bench.py fetch). That seed is
# repeated, client ports shifted and time moved on per copy (bench/capture_replicate.py), into
# captures of each of SIZES_MIB; each is read by capture_rate (MB/s, handshakes, peak RSS) and,
# for the sizes in TSHARK_SIZES_MIB, by `tshark -Y tls.handshake.type==1` (MB/s, hellos, peak
# RSS by /usr/bin/time). The two must find the same number of ClientHellos.
#
# Knobs: MAILBOX_MIB (16), FETCH_REPEAT (4), HANDSHAKES (2000), SIZES_MIB ("256 1024 2048"),
# TSHARK_SIZES_MIB ("256"), BENCH_KEEP=1 (keep the captures and logs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$ROOT/bench
MAILBOX_MIB=${MAILBOX_MIB:-16}
FETCH_REPEAT=${FETCH_REPEAT:-4}
HANDSHAKES=${HANDSHAKES:-2000}
SIZES_MIB=${SIZES_MIB:-256 1024 2048}
TSHARK_SIZES_MIB=${TSHARK_SIZES_MIB:-256}

die() { echo "capture.sh: $*" >&2; exit 1; }
log() { echo "== $(date +%H:%M:%S) $*" >&2; }
# shellcheck source=bench/processes.sh
source "$BENCH/processes.sh"

require_tools cargo python3 dovecot tcpdump tshark /usr/bin/time

WORK=$(make_work_dir mtcapbench)
TCPDUMP_PID="" DOVECOT_STARTED=""

cleanup() {
    local rc=$?
    set +e
    stop_pid "$TCPDUMP_PID"
    [[ -n $DOVECOT_STARTED ]] && "$ROOT/lab/dovecot.sh" stop "$WORK/dovecot" >/dev/null
    keep_or_remove_work "$rc" capture.sh
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building: cargo build --release -p capture --example capture_rate"
(cd "$ROOT" && cargo build --release -p capture --example capture_rate 2>&1 | tail -n 2) >&2
RATE_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/capture_rate
[[ -x $RATE_BIN ]] || die "no binary at $RATE_BIN"

log "starting a lab Dovecot (TLS 1.2 minimum, ${MAILBOX_MIB} MiB mailbox)"
DOVECOT_STARTED=1
"$ROOT/lab/dovecot.sh" start "$WORK/dovecot" --min-tls TLSv1.2 --mailbox-mib "$MAILBOX_MIB" \
    --many >"$WORK/dovecot.start.log"
# shellcheck disable=SC1091
source "$WORK/dovecot/ports.env"
export ALICE_PASSWORD

SEED=$WORK/seed.pcap
log "recording the seed on lo: $HANDSHAKES logins, FETCH of the mailbox x$FETCH_REPEAT"
tcpdump -i lo -s 0 -U -n -w "$SEED" "tcp port $IMAPS_PORT" 2>"$WORK/tcpdump.log" &
TCPDUMP_PID=$!
for _ in $(seq 50); do grep -qs "listening on" "$WORK/tcpdump.log" && break; sleep 0.1; done
common=(--port "$IMAPS_PORT" --cafile "$CA_FILE" --user alice --password-env ALICE_PASSWORD)
python3 "$BENCH/imap_bench.py" rate "${common[@]}" --count "$HANDSHAKES" --workers 4 >"$WORK/rate.json"
python3 "$BENCH/imap_bench.py" fetch "${common[@]}" --repeat "$FETCH_REPEAT" >"$WORK/fetch.json"
sleep 0.5
stop_pid "$TCPDUMP_PID"
TCPDUMP_PID=""
log "seed: $(stat -c %s "$SEED") bytes"

printf '%-10s %-8s %10s %10s %12s %14s\n' size tool MB/s seconds hellos peak_RSS_MiB
for size in $SIZES_MIB; do
    capture=$WORK/capture-$size.pcap
    python3 "$BENCH/capture_replicate.py" "$SEED" "$capture" $((size * 1024 * 1024)) "$IMAPS_PORT" >&2
    line=$("$RATE_BIN" "$capture" --tls-port "$IMAPS_PORT")
    mb=$(sed -E 's/.*mb_per_s=([^ ]+).*/\1/' <<<"$line")
    secs=$(sed -E 's/.*seconds=([^ ]+).*/\1/' <<<"$line")
    hellos=$(sed -E 's/.*handshakes=([^ ]+).*/\1/' <<<"$line")
    rss=$(sed -E 's/.*peak_rss_kib=([^ ]+).*/\1/' <<<"$line")
    printf '%-10s %-8s %10s %10s %12s %14s\n' "${size}MiB" mailtls "$mb" "$secs" "$hellos" $((rss / 1024))
    if [[ " $TSHARK_SIZES_MIB " == *" $size "* ]]; then
        bytes=$(stat -c %s "$capture")
        start=$(date +%s.%N)
        /usr/bin/time -f '%M' -o "$WORK/tshark.rss" tshark -r "$capture" -n \
            -d "tcp.port==$IMAPS_PORT,tls" -Y 'tls.handshake.type==1' -T fields -e tcp.srcport \
            >"$WORK/tshark-$size.txt" 2>"$WORK/tshark-$size.err"
        end=$(date +%s.%N)
        tshark_hellos=$(wc -l <"$WORK/tshark-$size.txt")
        read -r tmb tsecs < <(python3 -c "s=$end-$start; print(f'{$bytes/s/1e6:.1f} {s:.3f}')")
        printf '%-10s %-8s %10s %10s %12s %14s\n' "${size}MiB" tshark "$tmb" "$tsecs" "$tshark_hellos" \
            $(($(cat "$WORK/tshark.rss") / 1024))
        [[ $tshark_hellos == "$hellos" ]] || log "hellos differ: mailtls $hellos, tshark $tshark_hellos"
    fi
    rm -f "$capture"
done
