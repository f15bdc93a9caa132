#!/usr/bin/env bash
# Build the fuzz targets and run each one for a short, fixed time.
#
#   bash fuzz/run.sh [--seconds N] [TARGET...] [-- LIBFUZZER_ARGS...]
#
# Works on the stable toolchain: we do what `cargo fuzz build -s none -a` does (same RUSTFLAGS,
# same target directory), so there is no cargo-fuzz to install and no nightly to find. Anyone
# with cargo-fuzz can still use `cargo fuzz run -s none -a TARGET` on the same build.
#
# Exits non-zero if any target crashes, hangs or runs out of memory; the input is kept under
# fuzz/artifacts/TARGET/ and printed.
set -euo pipefail

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "$0"
    echo "Targets: $(all_targets | tr '\n' ' ')"
}

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_dir=$(dirname "$fuzz_dir")
cd "$fuzz_dir"

# A target is a file in fuzz_targets/ (as `cargo fuzz add` lays them out), so a new target is
# picked up without editing this script.
all_targets() {
    local file
    for file in fuzz_targets/*.rs; do
        basename "$file" .rs
    done
}

fuzz_seconds=20
targets=()
libfuzzer_args=()
while (($#)); do
    case $1 in
        --seconds) fuzz_seconds=${2:?--seconds needs a number}; shift 2 ;;
        --seconds=*) fuzz_seconds=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        --) shift; libfuzzer_args=("$@"); break ;;
        -*) echo "unknown option $1" >&2; usage >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [[ ! $fuzz_seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "--seconds wants a positive whole number" >&2
    exit 2
fi
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(all_targets)
fi
for target in "${targets[@]}"; do
    [[ -f fuzz_targets/$target.rs ]] || { echo "no such target: $target" >&2; exit 2; }
done

# libfuzzer-sys compiles libFuzzer itself (C++), so say so up front rather than deep in a
# build-script failure.
command -v cargo > /dev/null || { echo "cargo is needed (https://rustup.rs)" >&2; exit 1; }
command -v "${CXX:-c++}" > /dev/null || {
    echo "a C++ compiler is needed to build libFuzzer (apt-get install g++, or set CXX)" >&2
    exit 1
}

triple=$(rustc -vV | sed -n 's/^host: //p')
target_dir=${CARGO_TARGET_DIR:-$fuzz_dir/target}
bin_dir=$target_dir/$triple/release

# The flags `cargo fuzz build -s none -a` passes (cargo-fuzz 0.13), in the same order so that
# cargo sees the same fingerprint and either tool reuses the other's build:
# - sancov-module with 8-bit counters, PC table and compare tracing is libFuzzer's coverage
#   feedback; stack-depth lets -use_value_profile style stack tracking work on Linux;
# - branch folding off keeps separate branches separately visible to coverage;
# - --cfg fuzzing lets crates (ours and dependencies) skip checksums and the like;
# - debug assertions turn on overflow checks: an arithmetic overflow on a length from the
#   network is exactly the bug a parser fuzzer should report;
# - one codegen unit, because sancov otherwise defeats cross-unit inlining in release.
# No -Zsanitizer: AddressSanitizer needs nightly, and this code has no `unsafe` to check.
rustflags="-Cpasses=sancov-module"
rustflags+=" -Cllvm-args=-sanitizer-coverage-level=4"
rustflags+=" -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
rustflags+=" -Cllvm-args=-sanitizer-coverage-pc-table"
rustflags+=" -Cllvm-args=-sanitizer-coverage-trace-compares"
rustflags+=" --cfg fuzzing"
rustflags+=" -Cllvm-args=-simplifycfg-branch-fold-threshold=0"
[[ $triple == *-linux-* ]] && rustflags+=" -Cllvm-args=-sanitizer-coverage-stack-depth"
rustflags+=" -Cdebug-assertions"
rustflags+=" -Ccodegen-units=1"
# Like cargo-fuzz, let a caller's RUSTFLAGS come last so they can override ours.
[[ -n ${RUSTFLAGS:-} ]] && rustflags+=" $RUSTFLAGS"

bin_args=()
for target in "${targets[@]}"; do
    bin_args+=(--bin "$target")
done
echo "==> building ${#targets[@]} fuzz target(s) (release, $triple)"
build_start=$SECONDS
# --target keeps RUSTFLAGS (and the sancov symbols they need) away from build scripts and
# proc macros, which are not linked against libFuzzer.
RUSTFLAGS=$rustflags cargo build --manifest-path "$fuzz_dir/Cargo.toml" \
    --target-dir "$target_dir" --target "$triple" --release \
    --config 'profile.release.debug="line-tables-only"' "${bin_args[@]}"
echo "==> built in $((SECONDS - build_start))s"

# Seed inputs, written fresh each run into a scratch directory that libFuzzer only reads; what
# it discovers goes to fuzz/corpus/TARGET (ignored by git), so repeated local runs build on
# each other and CI starts clean.
seed_dir=$(mktemp -d "${TMPDIR:-/tmp}/mailtls-fuzz-seeds.XXXXXX")
trap 'rm -rf "$seed_dir"' EXIT

# Byte-level writers for the input layouts the targets decode (see each target's doc comment).
# Everything is counted in bytes, not characters.
export LC_ALL=C
byte() { printf "\\x$(printf %02x "$1")"; }
# A chunk: a header byte holding the length (plus any flag bits), then the text.
# Usage: chunk MAX_LEN FLAGS TEXT
chunk() {
    local max=$1 flags=$2 text=$3
    ((${#text} <= max)) || { echo "seed chunk longer than $max bytes: $text" >&2; exit 1; }
    byte $((${#text} | flags))
    printf '%s' "$text"
}
imap() { chunk 255 0 "$1"; }           # imap_*_dialogue: a plain length byte
pop3() { chunk 127 0 "$1"; }           # pop3_client_dialogue: length in the low 7 bits...
pop3_accept() { chunk 127 128 "$1"; }  # ...and the top bit accepts a login in this chunk
pop3_up() { chunk 255 0 "$1"; }        # pop3_upstream_dialogue: a plain length byte
smtp() { chunk 127 0 "$1"; }           # smtp_client_dialogue: as pop3_client_dialogue
smtp_accept() { chunk 127 128 "$1"; }
smtp_up() { chunk 255 0 "$1"; }        # smtp_upstream_dialogue: a plain length byte

crlf=$'\r\n'
plain_b64=AGFsaWNlAHNlY3JldA==  # SASL PLAIN for alice/secret: base64 of "\0alice\0secret"
# A bearer failure challenge: base64 of {"status":"invalid_token","schemes":"bearer","scope":"mail"}
invalid_token_b64=eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIiwic2NoZW1lcyI6ImJlYXJlciIsInNjb3BlIjoibWFpbCJ9

write_seeds() {
    local dir=$1 file size cut kind d
    mkdir -p "$dir"/{client_hello,server_reply,imap_client_dialogue,imap_upstream_dialogue}
    mkdir -p "$dir"/{pop3_client_dialogue,pop3_upstream_dialogue,proxy_header}
    mkdir -p "$dir"/{smtp_client_dialogue,smtp_upstream_dialogue}

    # TLS captures from the wire crate's tests. Record type 0x16 with handshake type 1 is a
    # ClientHello; anything else (ServerHello flights, alerts) is a server reply. Each is written
    # twice: cut in the middle (the prefix-consistency check) and cut past the end.
    for file in "$repo_dir"/crates/wire/src/testdata/*.bin; do
        kind=$(od -An -tx1 -N6 "$file" | tr -d ' \n')
        case $kind in
            16????????01) kind=client_hello ;;
            *) kind=server_reply ;;
        esac
        size=$(wc -c < "$file")
        cut=$((size / 2))
        { byte $((cut >> 8)); byte $((cut & 255)); cat "$file"; } \
            > "$dir/$kind/$(basename "$file" .bin)-half"
        { byte 255; byte 255; cat "$file"; } > "$dir/$kind/$(basename "$file" .bin)-whole"
    done

    # Client-facing IMAP. Setup byte: %3 picks TLS (0 active, 1 STARTTLS required, 2 none),
    # bit 2 small limits (64-byte lines, 32-byte literals), bit 3 accepts the login.
    d=$dir/imap_client_dialogue
    { byte 10
      imap "a1 CAPABILITY$crlf"; imap "a2 LOGIN alice secret$crlf"; imap "a3 STARTTLS$crlf"
      imap "a4 CAPABILITY${crlf}a5 ID (\"name\" \"fuzz\" \"version\" NIL)$crlf"
      imap "a6 LOGIN alice \"se cr\\\"et\"$crlf"; } > "$d/starttls-login-accepted"
    { byte 2
      imap "a1 LOGIN {5}$crlf"; imap "alice {6}$crlf"; imap "secret$crlf"
      imap "a2 LOGIN {5+}${crlf}alice {6+}${crlf}sec"; imap "ret$crlf"
      imap "a3 AUTHENTICATE PLAIN$crlf"; imap "$plain_b64$crlf"
      imap "a4 AUTHENTICATE PLAIN$crlf"; imap "*$crlf"
      imap "a5 NOOP${crlf}a6 FETCH 1 BODY[]$crlf"; imap "a7 LOGOUT$crlf"; } > "$d/literals-rejected"
    { byte 8
      imap "a1 AUTHENTICATE PLAIN $plain_b64$crlf"; imap "a2 STARTTLS$crlf"
    } > "$d/sasl-ir-accepted"
    { byte 6
      imap "a1 LOGIN {100}$crlf"; imap "a2 ID NIL$crlf"
      imap "a3 AUTHENTICATE CRAM-MD5$crlf"; imap "a4 NOOP $(printf 'x%.0s' {1..70})$crlf"
    } > "$d/small-limits"

    # Upstream IMAP: the server's side. Setup byte: bit 0 STARTTLS, bit 1 a password that needs
    # quoting and a literal, bit 2 an access token (bit 3: OAUTHBEARER, else XOAUTH2). The
    # gateway tags its commands m1, m2, ...
    d=$dir/imap_upstream_dialogue
    { byte 0
      imap "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready$crlf"
      imap "m1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in$crlf"; } > "$d/sasl-ir"
    { byte 1
      imap "* OK IMAP4rev1 ready$crlf"
      imap "* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED${crlf}m1 OK done$crlf"
      imap "m2 OK Begin TLS$crlf"
      imap "* CAPABILITY IMAP4rev1 AUTH=PLAIN${crlf}m3 OK done$crlf"
      imap "+ $crlf"; imap "m4 OK Logged in$crlf"; } > "$d/starttls-plain"
    { byte 2
      imap "* OK ready$crlf"; imap "* CAPABILITY IMAP4rev1${crlf}m1 OK done$crlf"
      imap "+ go ahead$crlf"; imap "+ go ahead$crlf"
      imap "m2 NO [AUTHENTICATIONFAILED] Invalid credentials$crlf"; } > "$d/login-literals-rejected"
    { byte 4
      imap "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2 AUTH=OAUTHBEARER] ready$crlf"
      imap "+ $invalid_token_b64$crlf"; imap "m1 NO [AUTHENTICATIONFAILED] failed$crlf"
    } > "$d/xoauth2-refused"
    { byte 13
      imap "* OK IMAP4rev1 ready$crlf"; imap "* CAPABILITY IMAP4rev1 STARTTLS${crlf}m1 OK done$crlf"
      imap "m2 OK Begin TLS$crlf"
      imap "* CAPABILITY IMAP4rev1 AUTH=OAUTHBEARER${crlf}m3 OK done$crlf"
      imap "+ $crlf"; imap "m4 OK Logged in$crlf"; } > "$d/starttls-oauthbearer"
    { byte 0; imap "* PREAUTH [CAPABILITY IMAP4rev1] hi$crlf"; } > "$d/preauth"
    { byte 0; imap "* OK ready$crlf"; imap "* BYE going away$crlf"; } > "$d/bye"

    # Client-facing POP3. Settings byte: %3 picks TLS as above; with bit 7 set, the low six
    # bits are the line cap.
    d=$dir/pop3_client_dialogue
    { byte 1
      pop3 "CAPA$crlf"; pop3 "USER alice$crlf"; pop3 "STLS$crlf"; pop3 "CAPA$crlf"
      pop3 "USER alice$crlf"; pop3_accept "PASS secret$crlf"; } > "$d/stls-user-pass-accepted"
    { byte 2
      pop3 "AUTH$crlf"; pop3 "AUTH PLAIN$crlf"; pop3 "$plain_b64$crlf"
      pop3 "APOP alice 0123456789abcdef${crlf}STAT${crlf}LIST 1$crlf"
      pop3 "USER alice${crlf}PASS wrong$crlf"; pop3 "QUIT$crlf"; } > "$d/auth-rejected-quit"
    { byte 0; pop3_accept "AUTH PLAIN $plain_b64$crlf"; } > "$d/auth-plain-accepted"
    { byte $((128 | 16 | 2)); pop3 "NOOP$crlf"; pop3 "USER averyveryverylongname$crlf"; } \
        > "$d/small-line-cap"

    # Upstream POP3: settings byte (bit 0 STLS, bit 1 the secret is an access token, bit 2
    # OAUTHBEARER), secret length and secret, then the server's side.
    d=$dir/pop3_upstream_dialogue
    { byte 0; byte 6; printf secret
      pop3_up "+OK POP3 ready$crlf"
      pop3_up "+OK Capability list follows${crlf}TOP${crlf}USER${crlf}SASL PLAIN LOGIN$crlf.$crlf"
      pop3_up "+OK Logged in$crlf"; } > "$d/capa-auth-plain"
    { byte 1; byte 6; printf secret
      pop3_up "+OK ready$crlf"; pop3_up "+OK Begin TLS$crlf"
      pop3_up "+OK${crlf}USER$crlf.$crlf"; pop3_up "+OK send PASS$crlf"
      pop3_up "-ERR [AUTH] Invalid login$crlf"; } > "$d/stls-user-pass-rejected"
    { byte 0; byte 200; printf 'p%.0s' {1..200}
      pop3_up "+OK ready$crlf"; pop3_up "+OK${crlf}SASL PLAIN$crlf.$crlf"
      pop3_up "+ $crlf"; pop3_up "+OK$crlf"; } > "$d/long-password-challenge"
    { byte 0; byte 6; printf secret
      pop3_up "+OK ready$crlf"; pop3_up "-ERR no CAPA$crlf"; pop3_up "+OK$crlf"
      pop3_up "+OK maildrop locked${crlf}leftover"; } > "$d/no-capa"
    { byte 2; byte 200; printf 't%.0s' {1..200}
      pop3_up "+OK ready$crlf"; pop3_up "+OK${crlf}SASL PLAIN XOAUTH2 OAUTHBEARER$crlf.$crlf"
      pop3_up "+ $crlf"; pop3_up "+ $invalid_token_b64$crlf"
      pop3_up "-ERR [AUTH] Authentication failed.$crlf"; } > "$d/xoauth2-long-token-refused"
    { byte 6; byte 5; printf t0ken
      pop3_up "+OK ready$crlf"; pop3_up "+OK${crlf}SASL OAUTHBEARER$crlf.$crlf"
      pop3_up "+OK Logged in$crlf"; } > "$d/oauthbearer-on-the-auth-line"

    # PROXY protocol headers as HAProxy sends them (v1 text, v2 binary with an IPv4 client),
    # each with the client's first bytes behind it; the cut bytes come first.
    d=$dir/proxy_header
    { byte 0; byte 20; printf 'PROXY TCP4 192.0.2.7 10.0.0.1 51000 993\r\na1 CAPABILITY\r\n'; } > "$d/v1-tcp4"
    { byte 255; byte 255; printf 'PROXY TCP6 2001:db8::7 2001:db8::1 40000 143\r\n'; } > "$d/v1-tcp6"
    { byte 0; byte 9; printf 'PROXY UNKNOWN\r\n'; } > "$d/v1-unknown"
    { byte 0; byte 10
      printf '\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x0a\x00\x00\x01\xc7\x38\x03\xe1'
      printf '\x16\x03\x01'; } > "$d/v2-ipv4"
    { byte 255; byte 255; printf '\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00'; } > "$d/v2-local"

    # Client-facing SMTP. Settings byte: %3 picks TLS as above, bit 6 shows upstream
    # extensions; with bit 7 set, the low six bits are the line cap.
    d=$dir/smtp_client_dialogue
    { byte $((64 | 1))
      smtp "EHLO printer$crlf"; smtp "AUTH PLAIN $plain_b64$crlf"; smtp "STARTTLS$crlf"
      smtp "EHLO printer$crlf"; smtp "AUTH LOGIN$crlf"; smtp "YWxpY2U=$crlf"
      smtp_accept "c2VjcmV0${crlf}MAIL FROM:<alice@example.com>$crlf"; } > "$d/starttls-login-accepted"
    { byte 2
      smtp "HELO x${crlf}MAIL FROM:<a@b>${crlf}RCPT TO:<c@d>${crlf}DATA$crlf"
      smtp "BDAT 5 LAST${crlf}abcdeRSET$crlf"; smtp "AUTH PLAIN$crlf"; smtp "*$crlf"
      smtp "AUTH LOGIN YWxpY2U=$crlf"; smtp "d3Jvbmc=$crlf"; smtp "QUIT$crlf"; } > "$d/refused-quit"
    { byte $((128 | 16)); smtp "NOOP$crlf"; smtp "EHLO averyveryverylongname$crlf"; } \
        > "$d/small-line-cap"

    # Upstream SMTP: settings byte (bit 0 STARTTLS), password length and password, then the
    # server's side.
    d=$dir/smtp_upstream_dialogue
    { byte 1; byte 6; printf secret
      smtp_up "220 mx ESMTP$crlf"; smtp_up "250-mx${crlf}250-SIZE 1000${crlf}250 STARTTLS$crlf"
      smtp_up "220 2.0.0 Ready$crlf"
      smtp_up "250-mx${crlf}250-PIPELINING${crlf}250 AUTH PLAIN LOGIN$crlf"
      smtp_up "235 2.7.0 Authentication successful$crlf"; } > "$d/starttls-plain"
    { byte 0; byte 6; printf secret
      smtp_up "220-mx${crlf}220 ESMTP$crlf"; smtp_up "250-mx${crlf}250 AUTH=LOGIN XOAUTH2$crlf"
      smtp_up "334 VXNlcm5hbWU6$crlf"; smtp_up "334 UGFzc3dvcmQ6$crlf"
      smtp_up "535 5.7.139 Authentication unsuccessful$crlf"; } > "$d/login-rejected"

    # Log and export readers: the logs the lab's servers wrote and the export fixtures.
    local testdata=$repo_dir/crates/logs/testdata
    mkdir -p "$dir"/{log_reader,entra_sign_ins,smtp_auth_report}
    { byte 0; cat "$testdata/dovecot.log"; } > "$dir/log_reader/dovecot"
    { byte 1; cat "$testdata/postfix.log"; } > "$dir/log_reader/postfix"
    cp "$testdata"/entra-* "$dir/entra_sign_ins/"
    cp "$testdata"/smtp-auth-report* "$dir/smtp_auth_report/"

    # Report data: the report crate's own sample, as `mailtls report` embeds it.
    mkdir -p "$dir/report_data"
    cp "$repo_dir/crates/report/testdata/report-data.json" "$dir/report_data/"
}
write_seeds "$seed_dir"

# Per-target results, for the summary at the end.
declare -A outcome execs rate coverage
failed=()
log_dir=$target_dir/fuzz-logs
mkdir -p "$log_dir"
for target in "${targets[@]}"; do
    corpus=$fuzz_dir/corpus/$target
    artifacts=$fuzz_dir/artifacts/$target
    log=$log_dir/$target.log
    mkdir -p "$corpus" "$artifacts"
    inputs=("$corpus")
    [[ -d $seed_dir/$target ]] && inputs+=("$seed_dir/$target")
    echo "==> fuzzing $target for ${fuzz_seconds}s (log: $log)"
    # -timeout: a single input taking 10 s is a hang worth reporting, not a slow machine.
    # -print_final_stats gives the exec count; the input dirs come last (first one is written).
    status=0
    "$bin_dir/$target" -max_total_time="$fuzz_seconds" -timeout=10 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "${libfuzzer_args[@]}" "${inputs[@]}" > "$log" 2>&1 \
        || status=$?
    execs[$target]=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    # -fork=N prints no final stats; its progress lines ("#123: cov: ...") still count execs.
    if [[ -z ${execs[$target]} ]]; then
        execs[$target]=$(sed -n 's/^#\([0-9]*\):\{0,1\}[[:space:]].*/\1/p' "$log" | tail -n1)
    fi
    rate[$target]=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    coverage[$target]=$(grep -o 'cov: [0-9]*' "$log" | tail -n1 | cut -d' ' -f2)
    if ((status == 0)); then
        outcome[$target]=ok
        continue
    fi
    outcome[$target]="FAILED (exit $status)"
    failed+=("$target")
    # Show the log from the first sign of trouble (a Rust panic message, or libFuzzer's own
    # report of a crash, hang or OOM) rather than pages of coverage progress.
    echo "!!! $target failed; from its log:"
    awk '/panicked at|ERROR: libFuzzer|ALARM: working on the last Unit/ { show = 1 } show' "$log" \
        | head -n 60 | sed 's/^/    /'
    # libFuzzer prints the input (hex and base64) only when it is at most 256 bytes; CI may not
    # keep artifacts, so print the larger ones too.
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)
    if [[ -n $artifact && -f $artifact ]]; then
        if ! grep -q '^Base64: ' "$log"; then
            echo "    input ($(wc -c < "$artifact") bytes), base64: $(base64 -w0 < "$artifact")"
        fi
        echo "    reproduce: $bin_dir/$target $artifact"
    fi
done

echo
printf '%-26s %12s %10s %6s  %s\n' target execs execs/s cov result
for target in "${targets[@]}"; do
    printf '%-26s %12s %10s %6s  %s\n' "$target" "${execs[$target]:-?}" "${rate[$target]:-?}" \
        "${coverage[$target]:-?}" "${outcome[$target]}"
done
echo "total wall time: ${SECONDS}s"
if ((${#failed[@]})); then
    echo "crashed or hung: ${failed[*]} (inputs under $fuzz_dir/artifacts/)" >&2
    exit 1
fi
