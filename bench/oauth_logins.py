#!/usr/bin/env python3
"""Client side of bench/oauth_logins.sh: login rates and the latency of a running session.

  oauth_logins.py rate  --port P --cafile CA --user U --password-env VAR
                        [--count 400] [--seconds 4] [--workers 4] [--wrong 0]
  oauth_logins.py noop  --port P --cafile CA --user U --password-env VAR
                        [--seconds 8] [--interval 0.02]

Every connection offers TLS 1.2 only with one pinned cipher (imap_bench.py's `context` and
`Conn`), so the gateway's OAuth listener, its pass-through listener and email-oauth2-proxy
get the same client-side work.

rate: `--workers` threads each loop connect, TLS handshake, LOGIN, LOGOUT, close, until
`--count` sessions are done or `--seconds` have passed (no new session starts after that),
whichever comes first; the clock covers the whole batch. With `--wrong N` each connection
instead sends N LOGINs with a wrong password, each of which must get a tagged NO, then closes:
N local password checks per connection and nothing sent upstream.
noop: one logged-in session sends NOOP every `--interval` seconds for `--seconds` and reports
the round-trip times (what a running session feels while other work happens).

stdout: one JSON object. Exit status 1 on any failure (message on stderr). Standard library only.
"""
import argparse
import json
import os
import ssl
import statistics
import sys
import threading
import time

from imap_bench import Conn, context, fail

WRONG_PASSWORD = "not-the-password"


def tagged(c: Conn, tag: bytes) -> bytes:
    """The tagged reply to a command already sent, whatever its status."""
    while True:
        line = c.line()
        if line.startswith(tag + b" "):
            return line


def quoted(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


def one_login(args, ctx, password):
    """connect, TLS, LOGIN, LOGOUT; or N refused LOGINs with --wrong N."""
    c = Conn(args, ctx)
    try:
        c.greeting()
        if args.wrong:
            for i in range(args.wrong):
                tag = b"w%d" % i
                c.sock.sendall(tag + b" LOGIN " + quoted(args.user) + b" " + quoted(WRONG_PASSWORD) + b"\r\n")
                line = tagged(c, tag)
                if not line.startswith(tag + b" NO"):
                    raise ConnectionError(f"a wrong password got {line[:120]!r}")
        else:
            c.login(args.user, password)
            c.command(b"z", b"LOGOUT")
        return c.sock.version()
    finally:
        c.close()


def cmd_rate(args, password) -> dict:
    ctx = context(args)
    lock = threading.Lock()
    state = {"left": args.count, "done": 0, "errors": [], "tls": None}
    stop_at = time.perf_counter() + args.seconds

    def worker():
        while True:
            with lock:
                if state["left"] == 0 or len(state["errors"]) > 10 or time.perf_counter() >= stop_at:
                    return
                state["left"] -= 1
            try:
                version = one_login(args, ctx, password)
                with lock:
                    state["done"] += 1
                    state["tls"] = version
            except (OSError, ConnectionError, ssl.SSLError) as e:
                with lock:
                    state["errors"].append(f"{type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if state["errors"]:
        for e in state["errors"][:5]:
            print(f"error: {e}", file=sys.stderr)
        fail(f"{len(state['errors'])} sessions failed ({state['done']} done)")
    logins = state["done"] * (args.wrong or 1)
    return {"sessions": state["done"], "logins": logins, "seconds": round(seconds, 3),
            "per_s": round(logins / seconds, 2), "tls_version": state["tls"]}


def cmd_noop(args, password) -> dict:
    ctx = context(args)
    c = Conn(args, ctx)
    c.greeting()
    c.login(args.user, password)
    c.command(b"s", b"SELECT INBOX")
    times = []
    end = time.perf_counter() + args.seconds
    i = 0
    while time.perf_counter() < end:
        tag = b"n%d" % i
        t0 = time.perf_counter()
        c.command(tag, b"NOOP")
        times.append((time.perf_counter() - t0) * 1000)
        i += 1
        time.sleep(args.interval)
    c.command(b"z", b"LOGOUT")
    c.close()
    times.sort()
    q = lambda p: round(times[min(len(times) - 1, int(p * len(times)))], 3)  # noqa: E731
    return {"noops": len(times), "median_ms": round(statistics.median(times), 3),
            "p90_ms": q(0.90), "p99_ms": q(0.99), "max_ms": round(times[-1], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("rate", "noop"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server-name", default="localhost", help="name the certificate must carry")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--cipher", default="ECDHE-RSA-AES128-GCM-SHA256",
                    help="the one TLS 1.2 cipher offered (OpenSSL name)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-env", required=True, metavar="VAR",
                    help="environment variable holding the password (kept off the command line)")
    ap.add_argument("--count", type=int, default=400, help="rate: at most this many sessions")
    ap.add_argument("--seconds", type=float, default=4.0,
                    help="rate: start no session after this long; noop: how long to send NOOPs")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--wrong", type=int, default=0,
                    help="rate: wrong-password LOGINs per connection instead of a login")
    ap.add_argument("--interval", type=float, default=0.02, help="noop: pause between NOOPs")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    password = os.environ.get(args.password_env)
    if password is None:
        fail(f"environment variable {args.password_env} is not set")
    try:
        result = cmd_rate(args, password) if args.mode == "rate" else cmd_noop(args, password)
    except (OSError, ConnectionError, ssl.SSLError) as e:
        fail(f"{type(e).__name__}: {e}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
