#!/usr/bin/env python3
"""Client side of bench/gateway.sh: throughput and connection rate against one IMAPS endpoint.

  imap_bench.py fetch --port P --cafile CA --user U --password-env VAR [--repeat 3] [--cipher C]
  imap_bench.py rate  --port P --cafile CA --user U --password-env VAR
                      [--count 400] [--workers 4] [--cipher C]

Every connection offers TLS 1.2 only with one pinned cipher (default ECDHE-RSA-AES128-GCM-SHA256),
so direct, mailtls and stunnel are measured with the same client-side TLS.

fetch: LOGIN, SELECT INBOX, then `FETCH 1:* BODY.PEEK[]` read with 1 MiB recv_into buffers (the
lab's baseline method); the clock runs from sending FETCH to its tagged OK. --repeat FETCHes (3
by default) in one session make one figure, all bytes over all those seconds: one FETCH of 52 MiB
lasts a quarter of a second, short enough for one scheduler hiccup to move it by 20%.
rate: `--workers` threads each loop connect, TLS handshake, LOGIN, LOGOUT, close until `--count`
sessions are done in all; the clock covers the whole batch.

stdout: one JSON object. Exit status 1 on any failure (message on stderr). Standard library only.
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time

MIB = 1024 * 1024
READ_BUFFER = MIB
# A tag no message body of the lab mailbox contains, so the end of FETCH is found by a search
# in the last bytes read instead of parsing every literal (parsing would slow the client down).
FETCH_TAG = b"Zb7f"


def fail(message: str) -> "NoReturn":  # noqa: F821
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def context(args) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(args.cipher)
    ctx.load_verify_locations(cafile=args.cafile)
    return ctx


class Conn:
    """A verified TLS connection with a small line reader for the login dialogue."""

    def __init__(self, args, ctx):
        raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname=args.server_name)
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"closed by the server; last bytes {self.buf[-80:]!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def command(self, tag: bytes, text: bytes) -> bytes:
        """Sends a command whose reply has no literals; returns the tagged line."""
        self.sock.sendall(tag + b" " + text + b"\r\n")
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise ConnectionError(f"{text.split()[0].decode()} failed: {line[:120]!r}")
                return line

    def greeting(self):
        line = self.line()
        if not line.startswith(b"* OK"):
            raise ConnectionError(f"greeting {line[:80]!r}")

    def login(self, user: str, password: str):
        q = lambda s: b'"' + s.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'  # noqa: E731
        self.command(b"l", b"LOGIN " + q(user) + b" " + q(password))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def fetch_all(c: Conn, view: memoryview, tag: bytes):
    """One `FETCH 1:* BODY.PEEK[]`: (bytes read, seconds from sending it to its tagged OK)."""
    end_marker = b"\r\n" + tag + b" "
    tail = b""
    total = 0
    start = time.perf_counter()
    c.sock.sendall(tag + b" FETCH 1:* BODY.PEEK[]\r\n")
    if c.buf:  # nothing should be pending after a tagged reply, but count it if so
        total += len(c.buf)
        tail, c.buf = c.buf[-256:], b""
    while True:
        n = c.sock.recv_into(view, READ_BUFFER)
        if n == 0:
            raise ConnectionError("closed during FETCH")
        total += n
        # Only the last bytes matter: the tagged reply ends the stream of FETCH responses.
        tail = (tail + bytes(view[max(0, n - 256):n]))[-512:]
        i = tail.rfind(end_marker)
        if i >= 0 and tail.endswith(b"\r\n"):
            status = tail[i + len(end_marker):].split(b"\r\n", 1)[0]
            if not status.startswith(b"OK"):
                raise ConnectionError(f"FETCH failed: {status[:120]!r}")
            return total, time.perf_counter() - start


def cmd_fetch(args, password) -> dict:
    ctx = context(args)
    c = Conn(args, ctx)
    c.greeting()
    c.login(args.user, password)
    c.command(b"s", b"SELECT INBOX")
    buf = bytearray(READ_BUFFER)
    total = 0
    seconds = 0.0
    for i in range(args.repeat):
        n, t = fetch_all(c, memoryview(buf), FETCH_TAG + b"%d" % i)
        total += n
        seconds += t
    version, cipher = c.sock.version(), c.sock.cipher()[0]
    try:
        c.command(b"z", b"LOGOUT")
    except (OSError, ConnectionError):
        pass
    c.close()
    return {"bytes": total, "seconds": round(seconds, 4),
            "mib_per_s": round(total / MIB / seconds, 2),
            "tls_version": version, "cipher": cipher}


def cmd_rate(args, password) -> dict:
    ctx = context(args)
    lock = threading.Lock()
    state = {"left": args.count, "done": 0, "errors": [], "cipher": None}

    def worker():
        while True:
            with lock:
                if state["left"] == 0 or len(state["errors"]) > 10:
                    return
                state["left"] -= 1
            try:
                c = Conn(args, ctx)
                try:
                    c.greeting()
                    c.login(args.user, password)
                    cipher = c.sock.cipher()[0]
                    c.command(b"z", b"LOGOUT")
                finally:
                    c.close()
                with lock:
                    state["done"] += 1
                    state["cipher"] = cipher
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
        fail(f"{len(state['errors'])} of {args.count} sessions failed")
    return {"sessions": state["done"], "seconds": round(seconds, 3),
            "per_s": round(state["done"] / seconds, 1), "cipher": state["cipher"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=("fetch", "rate"))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--server-name", default="localhost", help="name the certificate must carry")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--cipher", default="ECDHE-RSA-AES128-GCM-SHA256",
                    help="the one TLS 1.2 cipher offered (OpenSSL name)")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-env", required=True, metavar="VAR",
                    help="environment variable holding the password (kept off the command line)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="fetch: FETCH the mailbox this many times in one session (default 3)")
    ap.add_argument("--count", type=int, default=400)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args()
    password = os.environ.get(args.password_env)
    if password is None:
        fail(f"environment variable {args.password_env} is not set")
    try:
        result = cmd_fetch(args, password) if args.mode == "fetch" else cmd_rate(args, password)
    except (OSError, ConnectionError, ssl.SSLError) as e:
        fail(f"{type(e).__name__}: {e}")
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
