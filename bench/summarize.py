#!/usr/bin/env python3
"""Summary table of bench/gateway.sh's raw results (one JSON object per line).

Medians per path, the ratios of those medians, and the spread of the same ratio taken within
each round: rounds alternate the paths, so a per-round ratio compares runs made under the same
background load, and its spread shows how far the noise of this shared machine reaches.
Standard library only.
"""
import argparse
import collections
import json
import os
import platform
import statistics
import time


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def by_path(rows, test, key):
    out = collections.defaultdict(dict)
    for r in rows:
        if r["test"] == test:
            out[r["path"]][r["round"]] = r[key]
    return out


def median(d):
    return statistics.median(d.values()) if d else float("nan")


def per_round(a, b):
    """a/b within each round both were measured in."""
    return [a[r] / b[r] for r in sorted(a) if r in b and b[r]]


def spread(ratios):
    """Median of the per-round ratios and their range."""
    if not ratios:
        return "-"
    return f"{statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})"


def verdict(value, target, higher_is_better=True):
    ok = value >= target if higher_is_better else value <= target
    return "met" if ok else "MISSED"


def print_cpu(rows):
    """CPU seconds per GiB proxied, next to the crypto floor.

    The main figure is all the CPU time over all the bytes of every round: CPU time comes in
    ticks of 10 ms, and one round's 156 MiB costs the proxy only a few dozen of them.
    """
    cpu = collections.defaultdict(float)
    received = collections.defaultdict(float)
    per_round = collections.defaultdict(list)
    for r in rows:
        if r["test"] == "fetch" and r.get("proxy_cpu_seconds") is not None:
            cpu[r["path"]] += r["proxy_cpu_seconds"]
            received[r["path"]] += r["bytes"]
            per_round[r["path"]].append(r["proxy_cpu_seconds"] / (r["bytes"] / 2**30))
    if not cpu:
        return
    per_gib = {path: cpu[path] / (received[path] / 2**30) for path in cpu}
    print("   proxy CPU (user + system of its process(es) from /proc/PID/stat, over the whole fetch")
    print("   sessions) per GiB the client received, all rounds together; per-round range after:")
    for path in sorted(per_gib):
        values = per_round[path]
        print(f"     {path:<8} {per_gib[path]:6.3f} CPU s/GiB ({cpu[path]:.2f} s for "
              f"{received[path] / 2**30:.2f} GiB; rounds {min(values):.3f}-{max(values):.3f})")
    if "mailtls" in per_gib and "stunnel" in per_gib:
        print(f"     mailtls/stunnel CPU per GiB: {per_gib['mailtls'] / per_gib['stunnel']:.2f}")
    floor = next((r for r in rows if r["test"] == "floor"), None)
    if floor:
        seal, opn = floor["seal_bytes_per_cpu_s"], floor["open_bytes_per_cpu_s"]
        total = 2**30 / seal + 2**30 / opn
        print(f"     crypto floor {total:6.3f} CPU s/GiB: AES-128-GCM opening 1 GiB (upstream leg) plus "
              f"sealing it (client leg),")
        print(f"       in 16 KiB records, as `openssl speed -evp aes-128-gcm -aead` measures it on one "
              f"core (open {opn / 2**20:.0f},")
        print(f"       seal {seal / 2**20:.0f} MiB per CPU second); no copies, syscalls, TLS framing "
              f"or TCP.", end="")
        for path in ("mailtls", "stunnel"):
            if path in per_gib:
                print(f" {path} {per_gib[path] / total:.1f}x floor.", end="")
        print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--mailbox-bytes", type=int, required=True)
    ap.add_argument("--rate-count", type=int, required=True)
    ap.add_argument("--rate-workers", type=int, required=True)
    ap.add_argument("--idle-fetch-bytes", type=int, default=0)
    ap.add_argument("--load-start", default="?")
    ap.add_argument("--load-end", default="?")
    ap.add_argument("--versions", default="")
    a = ap.parse_args()
    rows = load(a.results)

    cpu = "?"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30

    print()
    print("=" * 96)
    print(f"mailtls gateway benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} "
          f"{platform.release()}; the client, the proxies and Dovecot share these cores, and")
    print(f"other work ran beside them (load average {a.load_start} at start, {a.load_end} at end).")
    if a.versions:
        print(f"software: {a.versions}")
    for r in rows:
        if r["test"] == "tls":
            print(f"TLS {r['path']:>8}: client leg {r['client_leg']}; upstream leg {r['upstream_leg']}")
    print("-" * 96)

    fetch = by_path(rows, "fetch", "mib_per_s")
    rate = by_path(rows, "rate", "per_s")
    idle = by_path(rows, "idle", "kib_per_session")
    d, m, s = (median(fetch.get(p, {})) for p in ("direct", "mailtls", "stunnel"))
    n = len(fetch.get("mailtls", {}))
    print(f"1. Throughput, FETCH 1:* BODY.PEEK[] of {a.mailbox_bytes / 2**20:.0f} MiB, TLS 1.2 client, "
          f"1 MiB reads; median of {n} alternating rounds")
    print(f"   {'direct':>10} {'mailtls':>10} {'stunnel':>10}   {'mailtls/direct':>15} {'mailtls/stunnel':>16}")
    md, ms = m / d, m / s
    print(f"   {d:10.1f} {m:10.1f} {s:10.1f}   {md:15.2f} {ms:16.2f}   MiB/s")
    print(f"   per-round ratios: mailtls/direct {spread(per_round(fetch['mailtls'], fetch['direct']))}, "
          f"mailtls/stunnel {spread(per_round(fetch['mailtls'], fetch['stunnel']))}")
    print(f"   targets: mailtls/direct >= 0.9 {verdict(md, 0.9)}; mailtls/stunnel >= 1.0 {verdict(ms, 1.0)}")
    print_cpu(rows)
    print()

    d, m, s = (median(rate.get(p, {})) for p in ("direct", "mailtls", "stunnel"))
    n = len(rate.get("mailtls", {}))
    print(f"2. Connection rate, {a.rate_count} x (connect, TLS 1.2 handshake, LOGIN, LOGOUT), "
          f"{a.rate_workers} workers; median of {n} alternating rounds")
    print(f"   {'direct':>10} {'mailtls':>10} {'stunnel':>10}   {'mailtls/direct':>15} {'mailtls/stunnel':>16}")
    print(f"   {d:10.1f} {m:10.1f} {s:10.1f}   {m / d:15.2f} {m / s:16.2f}   sessions/s")
    print(f"   per-round ratios: mailtls/direct {spread(per_round(rate['mailtls'], rate['direct']))}, "
          f"mailtls/stunnel {spread(per_round(rate['mailtls'], rate['stunnel']))}")
    print(f"   target: mailtls/stunnel >= 1.0 {verdict(m / s, 1.0)}")
    costs = [r for r in rows if r["test"] == "rate" and "writer_cpu_ms_per_session" in r]
    if costs:
        gw = median({r["round"]: r["proxy_cpu_ms_per_session"] for r in costs})
        wr = median({r["round"]: r["writer_cpu_ms_per_session"] for r in costs})
        print(f"   recording: the session-writer thread spends {wr:.3f} ms of CPU per session "
              f"(SQLite, rollups kept), {100 * wr / gw:.1f}% of the gateway's {gw:.3f} ms")
    print()

    print("3. Idle sessions: resident memory (VmRSS) per logged-in idle IMAP session, both TLS legs"
          + (f"; '-moved': each session fetched {a.idle_fetch_bytes} bytes of a message first"
             if a.idle_fetch_bytes else ""))
    idle_rows = [r for r in rows if r["test"] == "idle"]
    sessions = idle_rows[0]["sessions"] if idle_rows else 0
    for path in idle:
        rs = [r for r in idle_rows if r["path"] == path]
        kib = median(idle[path])
        before = statistics.median(r["rss_before_kib"] for r in rs)
        after = statistics.median(r["rss_after_kib"] for r in rs)
        note = " (sum of its two processes)" if path.startswith("stunnel") else ""
        target = f"  target <= 48: {verdict(kib, 48, False)}" if path.startswith("mailtls") else ""
        print(f"   {path:<15} {kib:6.1f} KiB/session  ({sessions} sessions; RSS {before / 1024:.1f} -> "
              f"{after / 1024:.1f} MiB; rounds {', '.join(f'{v:.1f}' for v in idle[path].values())}){note}{target}")
    for suffix in ("", "-moved"):
        m, s = f"mailtls{suffix}", f"stunnel{suffix}"
        if m in idle and s in idle:
            print(f"   {m}/{s} memory per session: {median(idle[m]) / median(idle[s]):.2f}")
    print("=" * 96)


if __name__ == "__main__":
    main()
