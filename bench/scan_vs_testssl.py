#!/usr/bin/env python3
"""bench/scan_vs_testssl.py: `mailtls scan` against testssl.sh and sslyze on the same lab
endpoints, in one run, printed as ratios; then 1,000 endpoints for wall time and peak memory.

    python3 bench/scan_vs_testssl.py [--quick] [--no-readme]

- versions only: `mailtls scan` vs `testssl --protocols` (with `-t imap|pop3` for STARTTLS),
  one endpoint per run, and the versions each reports are diffed;
- versions and suites: `mailtls scan --ciphers` vs `sslyze --sslv3 --tlsv1 ... --tlsv1_3`,
  and the accepted suites are diffed;
- 1,000 endpoints: two lab Dovecots given 500 listeners each, scanned in one `mailtls scan`.

Needs: lab/ (Dovecot, openssl), `testssl` (Debian testssl.sh), sslyze in a venv
(BENCH_SSLYZE, default /tmp/sslyze-venv/bin/sslyze: `python3 -m venv /tmp/sslyze-venv &&
/tmp/sslyze-venv/bin/pip install sslyze`). Figures go to bench/README.md, "Scanner" section.
On this 2-core machine the scanners and Dovecot share the CPU; ratios, not absolute times,
are the comparable figures.
"""

import argparse
import json
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "lab" / "dovecot.sh"
POSTFIX = ROOT / "lab" / "postfix.sh"
MAILTLS = ROOT / "target" / "release" / "mailtls"
SSLYZE = os.environ.get("BENCH_SSLYZE", "/tmp/sslyze-venv/bin/sslyze")
VERSIONS = ["ssl3", "tls1.0", "tls1.1", "tls1.2", "tls1.3"]
# Lab configurations: (label, --min-tls, extra lab options).
CONFIGS = [
    ("tls10", "TLSv1", []),
    ("tls11", "TLSv1.1", []),
    ("tls12", "TLSv1.2", []),
    ("tls13", "TLSv1.3", []),
]


def sh(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def start_lab(workdir, label, min_tls, extra):
    # Dovecot's own users must reach the lab folder; mkdtemp makes it 0700.
    workdir.chmod(0o755)
    directory = workdir / label
    sh(["bash", str(LAB), "start", str(directory), "--min-tls", min_tls, "--messages", "1", *extra])
    env = {}
    for line in (directory / "ports.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip("'\"")
    return directory, env


def stop_lab(directory):
    script = POSTFIX if (directory / "main.cf").exists() else LAB
    subprocess.run(["bash", str(script), "stop", str(directory)], capture_output=True)


def start_postfix(workdir, label, min_tls):
    workdir.chmod(0o755)
    directory = workdir / label
    out = sh(["bash", str(POSTFIX), "start", str(directory), "--min-tls", min_tls,
              "--auth-before-tls", "yes"]).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return directory, env


def endpoints(env):
    host = env["LISTEN_ADDR"]
    return [
        ("imaps", host, int(env["IMAPS_PORT"])),
        ("imap", host, int(env["IMAP_PORT"])),
        ("pop3s", host, int(env["POP3S_PORT"])),
        ("pop3", host, int(env["POP3_PORT"])),
    ]


def timed(cmd):
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.monotonic() - start, proc


def mailtls_scan(scheme, host, port, ca, ciphers=False):
    cmd = [str(MAILTLS), "scan", "--json", "--ca-file", ca, f"{scheme}://{host}:{port}"]
    if ciphers:
        cmd.insert(3, "--ciphers")
    # Best of three: one run of a few milliseconds is mostly noise.
    runs = [timed(cmd) for _ in range(3)]
    seconds = min(r[0] for r in runs)
    report = json.loads(runs[0][1].stdout)[0]
    return seconds, report


def testssl(scheme, host, port):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "t.json"
        cmd = ["testssl", "--protocols", "--quiet", "--warnings", "off", "--color", "0",
               "--jsonfile", str(out)]
        if not scheme.endswith("s"):
            cmd += ["-t", scheme]
        cmd.append(f"{host}:{port}")
        seconds, _ = timed(cmd)
        ids = {"SSLv3": "ssl3", "TLS1": "tls1.0", "TLS1_1": "tls1.1", "TLS1_2": "tls1.2",
               "TLS1_3": "tls1.3"}
        found = {}
        for entry in json.loads(out.read_text() or "[]"):
            key = ids.get(entry.get("id"))
            if key:
                finding = entry.get("finding", "")
                found[key] = "rejected" if "not offered" in finding else (
                    "accepted" if "offered" in finding else "unknown")
        return seconds, found


def sslyze(scheme, host, port):
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.json"
        cmd = [SSLYZE, "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3",
               "--json_out", str(out)]
        if not scheme.endswith("s"):
            cmd += ["--starttls", scheme]
        cmd.append(f"{host}:{port}")
        seconds, _ = timed(cmd)
        data = json.loads(out.read_text())
        result = data["server_scan_results"][0]["scan_result"]
        keys = {"ssl_3_0_cipher_suites": "ssl3", "tls_1_0_cipher_suites": "tls1.0",
                "tls_1_1_cipher_suites": "tls1.1", "tls_1_2_cipher_suites": "tls1.2",
                "tls_1_3_cipher_suites": "tls1.3"}
        suites = {}
        for key, version in keys.items():
            accepted = ((result.get(key) or {}).get("result") or {}).get("accepted_cipher_suites", [])
            names = sorted(s["cipher_suite"]["name"] for s in accepted)
            if names:
                suites[version] = names
        return seconds, suites


def mailtls_suites(report):
    return {v: sorted(c["suites"]) for v, c in (report.get("ciphers") or {}).items() if c["suites"]}


def free_ports(n, host):
    """n free ports on host, chosen as lab/free_ports.py chooses them."""
    out = subprocess.run([sys.executable, str(ROOT / "lab" / "free_ports.py"), host, str(n)],
                         check=True, capture_output=True, text=True).stdout
    return sorted(int(p) for p in out.split())


def widen(directory, env, per_service):
    """Restarts a lab Dovecot with `per_service` more listeners on each of its four services."""
    conf = directory / "dovecot.conf"
    text = conf.read_text()
    ports = free_ports(4 * per_service, env["LISTEN_ADDR"])
    targets = []
    for service, names in (("imap-login", ("imap", "imaps")), ("pop3-login", ("pop3", "pop3s"))):
        block = ""
        for name in names:
            for i in range(per_service):
                port = ports.pop()
                ssl = "    ssl = yes\n" if name.endswith("s") else ""
                block += f"  inet_listener {name}_b{i} {{\n    port = {port}\n{ssl}  }}\n"
                targets.append(f"{name}://{env['LISTEN_ADDR']}:{port}")
        text = text.replace(f"service {service} {{\n", f"service {service} {{\n{block}", 1)
    stop_lab(directory)
    conf.write_text(text)
    # Dovecot's daemon keeps inherited pipes open: give it none.
    subprocess.run(["dovecot", "-c", str(conf)], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    for target in targets:
        host, port = target.split("://")[1].rsplit(":", 1)
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"{target} never listened")
                time.sleep(0.05)
    return targets


def thousand(workdir):
    """1,000 endpoints across two Dovecots (TLS 1.0 and TLS 1.2 minimum)."""
    dirs, targets = [], []
    for label, min_tls in (("many10", "TLSv1"), ("many12", "TLSv1.2")):
        directory, env = start_lab(workdir, label, min_tls, ["--many"])
        dirs.append(directory)
        targets += widen(directory, env, 125)
    listing = workdir / "targets.txt"
    listing.write_text("\n".join(targets) + "\n")
    try:
        cmd = ["/usr/bin/time", "-f", "%e %M", str(MAILTLS), "scan", "--json", "--timeout", "10",
               "--from-file", str(listing)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall, peak_kib = proc.stderr.strip().splitlines()[-1].split()
        reports = json.loads(proc.stdout)
        concluded = sum(1 for r in reports if all(r["versions"][v] != "unknown" for v in VERSIONS))
        return {"endpoints": len(targets), "wall_s": float(wall), "peak_mib": int(peak_kib) / 1024,
                "all_versions_known": concluded}
    finally:
        for d in dirs:
            stop_lab(d)


def write_readme(text):
    readme = ROOT / "bench" / "README.md"
    current = readme.read_text() if readme.exists() else "# Benchmarks\n"
    section = "## Scanner\n\n" + text.strip() + "\n"
    pattern = re.compile(r"^## Scanner\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        current = pattern.sub(lambda _: section + "\n", current).rstrip() + "\n"
    else:
        current = current.rstrip() + "\n\n" + section
    readme.write_text(current)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one lab config, no 1,000 run")
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    args = parser.parse_args()
    for tool in ("testssl", "dovecot"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found")
    if not Path(SSLYZE).exists():
        sys.exit(f"sslyze not found at {SSLYZE}; see the docstring")
    sh(["cargo", "build", "--release", "-q", "-p", "mailtls"], cwd=ROOT)

    workdir = Path(tempfile.mkdtemp(prefix="mtb-", dir="/tmp"))
    labs = []
    rows = []
    try:
        plan = []
        for label, min_tls, extra in CONFIGS[: 1 if args.quick else None]:
            directory, env = start_lab(workdir, label, min_tls, extra)
            labs.append(directory)
            plan += [(label, env, e) for e in endpoints(env)]
        if shutil.which("postfix") or Path("/usr/sbin/postfix").exists():
            directory, env = start_postfix(workdir, "postfix10", "TLSv1")
            labs.append(directory)
            host = env["LISTEN_ADDR"]
            plan += [("postfix10", env, ("smtp", host, int(env["SMTP_PORT"]))),
                     ("postfix10", env, ("smtps", host, int(env["SMTPS_PORT"])))]
        for label, env, (scheme, host, port) in plan:
            name = f"{label} {scheme}"
            m_s, m_report = mailtls_scan(scheme, host, port, env["CA_FILE"])
            t_s, t_versions = testssl(scheme, host, port)
            mc_s, mc_report = mailtls_scan(scheme, host, port, env["CA_FILE"], ciphers=True)
            y_s, y_suites = sslyze(scheme, host, port)
            m_versions = {v: m_report["versions"][v] for v in VERSIONS}
            versions_agree = all(t_versions.get(v) == m_versions[v] for v in VERSIONS)
            suites_agree = mailtls_suites(mc_report) == y_suites
            rows.append((name, m_s, t_s, mc_s, y_s, versions_agree, suites_agree,
                         m_versions, t_versions, mailtls_suites(mc_report), y_suites))
            print(f"{name:12} versions {m_s*1000:7.1f} ms vs testssl {t_s:5.1f} s "
                  f"({t_s/m_s:6.0f}x) agree={versions_agree} | suites {mc_s*1000:7.1f} ms "
                  f"vs sslyze {y_s:5.1f} s ({y_s/mc_s:5.0f}x) agree={suites_agree}", flush=True)
    finally:
        for d in labs:
            stop_lab(d)

    big = None if args.quick else thousand(workdir)
    shutil.rmtree(workdir, ignore_errors=True)

    version_ratios = [t / m for _, m, t, *_ in rows]
    suite_ratios = [y / mc for _, _, _, mc, y, *_ in rows]
    lines = [
        f"Run `python3 bench/scan_vs_testssl.py` (last run {time.strftime('%Y-%m-%d')}, "
        f"loopback, 2 cores shared by scanners and Dovecot; mailtls time is the best of 3 runs, "
        f"testssl and sslyze one run each). Needs `testssl` (Debian testssl.sh) and sslyze in a "
        f"venv: `python3 -m venv /tmp/sslyze-venv && /tmp/sslyze-venv/bin/pip install sslyze`.",
        "",
        "| endpoint | mailtls versions | testssl --protocols | ratio | same versions "
        "| mailtls --ciphers | sslyze (5 versions) | ratio | same suites |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m_s, t_s, mc_s, y_s, va, sa, *_ in rows:
        lines.append(f"| {name} | {m_s*1000:.1f} ms | {t_s:.1f} s | {t_s/m_s:.0f}x | "
                     f"{'yes' if va else 'NO'} | {mc_s*1000:.1f} ms | {y_s:.1f} s | {y_s/mc_s:.0f}x | "
                     f"{'yes' if sa else 'NO'} |")
    lines += [
        "",
        f"- Versions vs testssl: median {statistics.median(version_ratios):.0f}x faster per endpoint "
        f"(min {min(version_ratios):.0f}x); {sum(r[5] for r in rows)}/{len(rows)} endpoints agree "
        f"on every version.",
        f"- Versions and suites vs sslyze: median {statistics.median(suite_ratios):.0f}x faster "
        f"(min {min(suite_ratios):.0f}x); {sum(r[6] for r in rows)}/{len(rows)} endpoints report "
        f"the same accepted suites.",
    ]
    if big:
        lines.append(
            f"- {big['endpoints']} endpoints (two Dovecots with 500 listeners each, half STARTTLS) in "
            f"one `mailtls scan --from-file`: {big['wall_s']:.1f} s wall, peak RSS "
            f"{big['peak_mib']:.0f} MiB; {big['all_versions_known']}/{big['endpoints']} with every "
            f"version known.")
    for name, *_, va, sa, mv, tv, ms, ys in rows:
        if not va:
            lines.append(f"- {name}: versions differ: mailtls {mv}, testssl {tv}")
        if not sa:
            lines.append(f"- {name}: suites differ: mailtls {ms}, sslyze {ys}")
    text = "\n".join(lines)
    print()
    print(text)
    if not args.no_readme:
        write_readme(text)


if __name__ == "__main__":
    main()
