#!/bin/sh
# Log import speed: `mailtls import dovecot` and `mailtls import postfix` on large logs made of
# the real lines the lab's servers wrote (crates/logs/testdata/), repeated with advancing
# times, 5,000 client addresses and unique session ids. For each log: a first import into an
# empty store, the same file again (every record already imported), and the file gzipped from
# standard input; lines/s, MB/s and peak RSS. Not part of CI. Knobs: LINES (1000000 per log),
# MAILTLS_BIN (target/release/mailtls, built when missing), BENCH_DIR (a temporary folder,
# removed unless BENCH_KEEP=1).
set -eu
cd "$(dirname "$0")/.."
LINES=${LINES:-1000000}
MAILTLS_BIN=${MAILTLS_BIN:-target/release/mailtls}
BENCH_DIR=${BENCH_DIR:-$(mktemp -d)}
if [ "${BENCH_KEEP:-0}" != 1 ]; then
    trap 'rm -rf "$BENCH_DIR"' EXIT
fi
if [ ! -x "$MAILTLS_BIN" ]; then
    cargo build --release -q -p mailtls
fi

python3 - "$BENCH_DIR" "$LINES" <<'PY'
import itertools, re, sys
out, lines = sys.argv[1], int(sys.argv[2])
months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

def stamp(second):
    # 50 lines a second from 1 March, a year-less syslog stamp as the servers write it.
    day, rest = divmod(second, 86400)
    return "Mar %02d %02d:%02d:%02d" % (1 + day % 28, rest // 3600, rest // 60 % 60, rest % 60)

def client(n):
    return "10.%d.%d.%d" % (n // 65536 % 256, n // 256 % 256, n % 256 or 1)

def generate(name, template_lines, rewrite):
    body = [l.split(" ", 3)[3] for l in template_lines if l[:3] in months]
    with open(f"{out}/{name}", "w") as f:
        for i, line in zip(range(lines), itertools.cycle(body)):
            f.write(stamp(i // 50) + " " + rewrite(i, line) + "\n")

dovecot = open("crates/logs/testdata/dovecot.log").read().splitlines()
def dovecot_line(i, line):
    line = line.replace("rip=127.0.0.1", "rip=" + client(i // 20 % 5000))
    return re.sub(r"session=<[^>]*>", "session=<s%x>" % i, line)
generate("dovecot.log", dovecot, dovecot_line)

postfix = [l for l in open("crates/logs/testdata/postfix.log").read().splitlines()
           if "postfix/smtpd[" in l and "NIS" not in l]
cycle = len(postfix)
def postfix_line(i, line):
    # One process id per pass over the template, so connections stay whole.
    line = re.sub(r"smtpd\[\d+\]", "smtpd[%d]" % (i // cycle % 30000 + 1000), line)
    line = re.sub(r"\b([0-9A-F]{11})\b", "%011X" % (i // cycle), line)
    return line.replace("127.0.0.1", client(i // cycle % 5000))
generate("postfix.log", postfix, postfix_line)
PY

for log in dovecot postfix; do
    file=$BENCH_DIR/$log.log
    gzip -c "$file" > "$file.gz"
    echo "$log: $(wc -l < "$file") lines, $(du -m "$file" | cut -f1) MB ($(du -m "$file.gz" | cut -f1) MB gzipped)"
    rm -f "$BENCH_DIR/$log.db"*
    for run in first again gzip; do
        if [ $run = gzip ]; then
            input=-
        else
            input=$file
        fi
        /usr/bin/time -f "%M" -o "$BENCH_DIR/rss" "$MAILTLS_BIN" import "$log" --year 2026 \
            --store "$BENCH_DIR/$log.db" --json "$input" < "$file.gz" > "$BENCH_DIR/summary.json"
        python3 - "$BENCH_DIR/summary.json" "$BENCH_DIR/rss" "$log" "$run" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
rss = int(open(sys.argv[2]).read().split()[-1]) / 1024
print("  %-6s %9.0f lines/s %6.1f MB/s  %7d new, %7d already imported, %d not understood, "
      "peak RSS %.0f MiB" % (sys.argv[4], s["read"] / s["seconds"], s["bytes"] / s["seconds"] / 1e6,
      s["new_records"], s["already_imported"], s["not_understood"], rss))
PY
    done
done
