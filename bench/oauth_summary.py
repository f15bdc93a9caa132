#!/usr/bin/env python3
"""Summary of bench/oauth_logins.sh's raw results (one JSON object per line).

Login rates: the median per side over the alternating rounds, the ratio of those medians and
the spread of the same ratio taken within each round (see bench/summarize.py for why), and
the proxy's CPU seconds per 1,000 logins over all rounds together (CPU time comes in 10 ms
ticks). Then the Argon2 figures and the NOOP latencies idle vs during the wrong-password burst.
Standard library only.
"""
import argparse
import os
import platform
import statistics
import time

from summarize import load, median, per_round, spread, verdict

SIDES = ("mailtls-oauth", "mailtls-pass", "emailproxy")


def by_side(rows, test, key):
    out = {}
    for r in rows:
        if r["test"] == test:
            out.setdefault(r["side"], {})[r["round"]] = r[key]
    return out


def cpu_per_1000(rows, test, side, clk_tck):
    """CPU seconds per 1,000 logins, all rounds together."""
    ticks = sum(int(r["cpu_ticks"]) for r in rows if r["test"] == test and r["side"] == side)
    logins = sum(r["logins"] for r in rows if r["test"] == test and r["side"] == side)
    return ticks / clk_tck / logins * 1000 if logins else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--clk-tck", type=int, required=True)
    ap.add_argument("--rate-count", type=int, required=True)
    ap.add_argument("--rate-seconds", type=float, required=True)
    ap.add_argument("--rate-workers", type=int, required=True)
    ap.add_argument("--token-requests", type=int, required=True)
    ap.add_argument("--load-start", default="?")
    ap.add_argument("--load-end", default="?")
    ap.add_argument("--versions", default="")
    a = ap.parse_args()
    rows = load(a.results)

    cpu = "?"
    for line in open("/proc/cpuinfo", encoding="utf-8"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    print()
    print("=" * 96)
    print(f"mailtls OAuth login benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}; the "
          f"client, the proxies, Dovecot and the")
    print(f"token endpoint share these cores with other work (load average {a.load_start} at start, "
          f"{a.load_end} at end).")
    if a.versions:
        print(f"software: {a.versions}")
    print("-" * 96)

    rate = by_side(rows, "rate", "per_s")
    n = len(rate.get("mailtls-oauth", {}))
    med = {s: median(rate.get(s, {})) for s in SIDES}
    print(f"1. Login rate: connect, TLS 1.2 handshake, LOGIN, LOGOUT; {a.rate_workers} client "
          f"workers, at most {a.rate_count} sessions or {a.rate_seconds:g} s")
    print(f"   per side per round; median of {n} alternating rounds. Token requests in the whole run: "
          f"{a.token_requests} (one per OAuth proxy).")
    print(f"   {'side':<14} {'logins/s':>9} {'rounds':>28} {'proxy CPU s / 1,000 logins':>28}")
    for s in SIDES:
        rounds = ", ".join(f"{rate[s][r]:g}" for r in sorted(rate.get(s, {})))
        print(f"   {s:<14} {med[s]:9.1f} {rounds:>28} {cpu_per_1000(rows, 'rate', s, a.clk_tck):28.2f}")
    op = med["mailtls-oauth"] / med["mailtls-pass"]
    oe = med["mailtls-oauth"] / med["emailproxy"]
    print(f"   mailtls-oauth/mailtls-pass {op:.2f} (per round "
          f"{spread(per_round(rate['mailtls-oauth'], rate['mailtls-pass']))}); target >= 0.8 {verdict(op, 0.8)}")
    print(f"   mailtls-oauth/emailproxy   {oe:.1f} (per round "
          f"{spread(per_round(rate['mailtls-oauth'], rate['emailproxy']))}); target >= 10 {verdict(oe, 10)}")
    extra = (cpu_per_1000(rows, "rate", "mailtls-oauth", a.clk_tck)
             - cpu_per_1000(rows, "rate", "mailtls-pass", a.clk_tck))
    print(f"   gateway CPU an OAuth login costs beyond a pass-through one: {extra:.1f} ms "
          f"(the local Argon2 check, and XOAUTH2 instead of PLAIN upstream)")
    print()

    argon = next((r for r in rows if r["test"] == "argon2"), None)
    if argon:
        print(f"2. One Argon2id check (mailtls passwd: 19 MiB, 2 passes, 1 lane, the parameters every "
              f"verify recomputes): {argon['cpu_ms']:.1f} ms CPU,")
        print(f"   {argon['wall_ms']:.1f} ms wall (median of {argon['runs']} runs, less a bare "
              f"`mailtls --version` run); one core sustains about {1000 / argon['cpu_ms']:.0f} per second.")
        print()

    checks = [r for r in rows if r["test"] == "checks"]
    if checks:
        per_s = statistics.median(r["per_s"] for r in checks)
        cpu_ms = (sum(int(r["cpu_ticks"]) for r in checks) / a.clk_tck
                  / sum(r["logins"] for r in checks) * 1000)
        print(f"3. Sustained local checks (wrong passwords, 2 per TLS connection, nothing upstream): "
              f"{per_s:.1f} per second (median of {len(checks)};")
        print(f"   rounds {', '.join('%g' % r['per_s'] for r in checks)}); gateway CPU {cpu_ms:.1f} ms "
              f"per refused login, TLS handshake (1/2 per login) included.")
        print()

    noop = [r for r in rows if r["test"] == "noop"]
    if noop:
        print("4. A running session meanwhile: NOOP round trips on a logged-in OAuth session; idle, during the")
        print("   burst of 3., and (control) while two spinning processes outside the gateway keep both cores busy")
        for phase in ("idle", "burst", "busy"):
            rs = [r for r in noop if r["side"] == phase]
            if not rs:
                continue
            print(f"   {phase:<6} median {statistics.median(r['median_ms'] for r in rs):6.2f} ms, "
                  f"p90 {statistics.median(r['p90_ms'] for r in rs):6.2f} ms, "
                  f"p99 {statistics.median(r['p99_ms'] for r in rs):6.2f} ms, "
                  f"max {max(r['max_ms'] for r in rs):6.2f} ms "
                  f"({sum(r['noops'] for r in rs)} NOOPs in {len(rs)} rounds; medians of the rounds)")
    print("=" * 96)


if __name__ == "__main__":
    main()
