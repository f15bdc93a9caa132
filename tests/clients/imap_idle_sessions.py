#!/usr/bin/env python3
"""Many idle IMAP sessions from one process, for idle-memory and load benchmarks.

  imap_idle_sessions.py --host 127.0.0.1 --port P --mode implicit|starttls|plain
                        --tls-version 1.0 --cafile ca.pem --user alice
                        (--password P | --password-env VAR | --password-file F)
                        --sessions 5000 [--concurrency 100] [--fetch-bytes B] [--ignore-stdin]
                        [--answer-on-stop]

Opens N sessions, each: connect, (TLS), LOGIN, then nothing: the session stays open and idle.
With --fetch-bytes B each session first moves mail: SELECT INBOX and
`FETCH * BODY.PEEK[]<0.B>` (the first B bytes of the last message), then goes idle.
When all are ready it prints `ready sessions=N seconds=S fetched_bytes=F` and waits until
SIGTERM/SIGINT or EOF on stdin (when stdin is a pipe, socket or terminal, and without
--ignore-stdin), then sends LOGOUT on every session and closes it. With --answer-on-stop each
session first sends NOOP and waits for its tagged OK, then LOGOUT and waits for the BYE and
the tagged OK, so a session the server dropped or left unanswered counts as not answered.

stdout: `progress logged_in=K` lines, `ready ...`, then `stopped sessions=N lost=L answered=A`,
where lost counts sessions the server closed while they were idle and answered those that
answered NOOP and LOGOUT (with --answer-on-stop). Exit status 1 if any login failed (the first
errors go to stderr), any session was lost or (with --answer-on-stop) did not answer, else 0.

One asyncio loop, one socket per session: size N below the open-file limit (20,000 here).
"""
import argparse
import asyncio
import os
import resource
import signal
import stat
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from legacy_tls import (add_password_args, add_tls_args, fail, legacy_context,  # noqa: E402
                        password_from)

try:
    import asyncio.sslproto as _sslproto
    # asyncio gives every TLS connection a 256 KiB read buffer; idle sessions need far less,
    # and 5,000 of them would otherwise hold over 1 GiB in this client.
    _sslproto.SSLProtocol.max_size = 16 * 1024
except (ImportError, AttributeError):
    pass


def imap_string(s: str) -> bytes:
    """A quoted string when 7-bit, else a literal marker (the caller sends the bytes later)."""
    if all(32 <= ord(c) < 127 for c in s):
        return b'"' + s.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'
    return b"{%d}" % len(s.encode("utf-8"))


class Session(asyncio.Protocol):
    """One IMAP session's client side: greeting, optional STARTTLS, LOGIN, then idle."""

    def __init__(self, runner: "Runner"):
        self.r = runner
        self.transport = None
        self.buf = b""
        self.state = "greeting"
        self.logged_in = asyncio.get_running_loop().create_future()
        self.closed_by_us = False
        self.literal_pending = None
        self.literal_left = 0
        self.answered = None
        self.saw_bye = False

    def connection_made(self, transport):
        self.transport = transport

    def send(self, data: bytes):
        self.transport.write(data)

    def data_received(self, data: bytes):
        self.buf += data
        while True:
            if self.literal_left:
                # Message bytes of a FETCH literal: counted, never parsed as lines.
                taken = min(self.literal_left, len(self.buf))
                self.buf = self.buf[taken:]
                self.literal_left -= taken
                self.r.fetched_bytes += taken
                if self.literal_left:
                    return
            if b"\r\n" not in self.buf:
                return
            line, self.buf = self.buf.split(b"\r\n", 1)
            self.line(line)

    def line(self, line: bytes):
        if self.state == "greeting":
            if not line.startswith(b"* OK"):
                return self.failed(f"greeting {line[:80]!r}")
            if self.r.mode == "starttls":
                self.state = "starttls"
                self.send(b"s STARTTLS\r\n")
            else:
                self.send_login()
        elif self.state == "starttls":
            if line.startswith(b"s "):
                if not line.startswith(b"s OK"):
                    return self.failed(f"STARTTLS refused {line[:80]!r}")
                self.state = "upgrading"
                asyncio.ensure_future(self.upgrade())
        elif self.state == "login":
            if line.startswith(b"+") and self.literal_pending is not None:
                self.send(self.literal_pending + b"\r\n")
                self.literal_pending = None
            elif line.startswith(b"l "):
                if not line.startswith(b"l OK"):
                    return self.failed(f"LOGIN refused {line[:120]!r}")
                if self.r.fetch_bytes:
                    self.state = "select"
                    self.send(b"s1 SELECT INBOX\r\n")
                else:
                    self.go_idle()
        elif self.state == "select":
            if line.startswith(b"s1 "):
                if not line.startswith(b"s1 OK"):
                    return self.failed(f"SELECT refused {line[:120]!r}")
                self.state = "fetch"
                self.send(b"f FETCH * BODY.PEEK[]<0.%d>\r\n" % self.r.fetch_bytes)
        elif self.state == "fetch":
            if line.startswith(b"* ") and line.endswith(b"}") and b"{" in line:
                self.literal_left = int(line[line.rindex(b"{") + 1:-1])
            elif line.startswith(b"f "):
                if not line.startswith(b"f OK"):
                    return self.failed(f"FETCH refused {line[:120]!r}")
                self.go_idle()
        elif self.state == "noop":
            if line.startswith(b"n "):
                if not line.startswith(b"n OK"):
                    return self.answer(False, f"NOOP {line[:80]!r}")
                self.state = "answering-logout"
                self.send(b"z LOGOUT\r\n")
        elif self.state == "answering-logout":
            if line.startswith(b"* BYE"):
                self.saw_bye = True
            elif line.startswith(b"z "):
                ok = line.startswith(b"z OK") and self.saw_bye
                self.answer(ok, f"LOGOUT {line[:80]!r} bye={self.saw_bye}")
                self.transport.close()
        # In "idle" untagged lines (e.g. EXISTS) need no answer; "logout": nothing to do.

    def go_idle(self):
        self.state = "idle"
        self.buf = b""
        if not self.logged_in.done():
            self.logged_in.set_result(True)

    async def upgrade(self):
        loop = asyncio.get_running_loop()
        try:
            self.transport = await loop.start_tls(self.transport, self, self.r.ctx,
                                                  server_hostname=self.r.host)
        except Exception as e:  # noqa: BLE001 - any handshake failure fails this session
            return self.failed(f"TLS handshake after STARTTLS: {e}")
        self.send_login()

    def send_login(self):
        self.state = "login"
        user, pw = self.r.user, self.r.password
        cmd = b"l LOGIN " + imap_string(user) + b" " + imap_string(pw)
        if cmd.endswith(b"}"):
            self.literal_pending = pw.encode("utf-8")
        self.send(cmd + b"\r\n")

    def failed(self, why: str):
        if not self.logged_in.done():
            self.logged_in.set_exception(ConnectionError(why))
        if self.transport:
            self.transport.abort()

    def connection_lost(self, exc):
        if self.answered is not None and not self.answered.done():
            self.answer(False, f"closed before answering ({self.state}): {exc}")
        if not self.logged_in.done():
            self.logged_in.set_exception(ConnectionError(f"closed during login: {exc}"))
        elif self.state == "idle" and not self.closed_by_us:
            self.r.lost += 1

    def answer(self, ok: bool, why: str):
        if not ok:
            print(f"error: session not answering: {why}", file=sys.stderr)
        if self.answered is not None and not self.answered.done():
            self.answered.set_result(ok)

    def noop_and_logout(self):
        """NOOP, then LOGOUT, each answered; `self.answered` says whether both were."""
        self.closed_by_us = True
        self.answered = asyncio.get_running_loop().create_future()
        if self.state != "idle" or self.transport is None or self.transport.is_closing():
            self.answer(False, f"not idle at stop: {self.state}")
            return
        self.state = "noop"
        self.send(b"n NOOP\r\n")

    def close(self):
        self.closed_by_us = True
        if self.transport and not self.transport.is_closing():
            self.state = "logout"
            self.transport.write(b"z LOGOUT\r\n")
            self.transport.close()


class Runner:
    def __init__(self, args, password):
        self.host, self.port, self.mode = args.host, args.port, args.mode
        self.user, self.password = args.user, password
        self.ctx = None if args.mode == "plain" else legacy_context(args)
        self.sessions = []
        self.lost = 0
        self.timeout = args.timeout
        self.fetch_bytes = args.fetch_bytes
        self.fetched_bytes = 0

    async def open_one(self, sem: asyncio.Semaphore):
        async with sem:
            loop = asyncio.get_running_loop()
            ssl_ctx = self.ctx if self.mode == "implicit" else None
            _t, proto = await asyncio.wait_for(
                loop.create_connection(lambda: Session(self), self.host, self.port,
                                       ssl=ssl_ctx,
                                       server_hostname=self.host if ssl_ctx else None),
                self.timeout)
            self.sessions.append(proto)
            await asyncio.wait_for(proto.logged_in, self.timeout)


def raise_nofile(need: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            fail(f"{need} open files needed but the hard limit is {hard}; use fewer sessions")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def watchable_stdin() -> bool:
    """Only a pipe, socket or terminal can signal 'stop' by EOF; /dev/null or a regular file
    would end the run at once, so they are ignored (stop with SIGTERM then)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(sys.stdin.fileno())


async def run(args, password) -> int:
    runner = Runner(args, password)
    raise_nofile(args.sessions + 64)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if not args.ignore_stdin and watchable_stdin():
        # A thread: simpler than epoll, which cannot watch every kind of stdin anyway.
        def wait_eof():
            try:
                while os.read(sys.stdin.fileno(), 65536):
                    pass
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(stop.set)
        threading.Thread(target=wait_eof, daemon=True).start()

    sem = asyncio.Semaphore(args.concurrency)
    start = time.monotonic()
    tasks = [asyncio.ensure_future(runner.open_one(sem)) for _ in range(args.sessions)]
    done_count = 0
    errors = []
    next_report = time.monotonic() + 1
    for fut in asyncio.as_completed(tasks):
        try:
            await fut
            done_count += 1
        except Exception as e:  # noqa: BLE001 - collect, report the first few
            errors.append(f"{type(e).__name__}: {e}")
        if time.monotonic() >= next_report:
            print(f"progress logged_in={done_count} failed={len(errors)}", flush=True)
            next_report = time.monotonic() + 1
        if stop.is_set():
            break
    seconds = time.monotonic() - start

    rc = 0
    if stop.is_set() and done_count + len(errors) < args.sessions:
        print(f"interrupted logged_in={done_count} failed={len(errors)} seconds={seconds:.2f}",
              flush=True)
        rc = 1
    elif errors or done_count < args.sessions:
        for e in errors[:5]:
            print(f"error: {e}", file=sys.stderr)
        print(f"failed logged_in={done_count} failed={len(errors)} seconds={seconds:.2f}",
              flush=True)
        rc = 1
    else:
        print(f"ready sessions={done_count} seconds={seconds:.2f} "
              f"fetched_bytes={runner.fetched_bytes}", flush=True)
        await stop.wait()

    for t in tasks:
        t.cancel()
    answered = 0
    if args.answer_on_stop:
        for s in runner.sessions:
            s.noop_and_logout()
        waits = [s.answered for s in runner.sessions]
        try:
            results = await asyncio.wait_for(asyncio.gather(*waits), args.timeout)
        except asyncio.TimeoutError:
            results = [w.done() and w.result() for w in waits]
            print("error: some sessions did not answer in time", file=sys.stderr)
        answered = sum(1 for ok in results if ok)
    for s in runner.sessions:
        s.close()
    await asyncio.sleep(0.2)  # let the LOGOUTs and close_notify alerts go out
    print(f"stopped sessions={done_count} lost={runner.lost} answered={answered}", flush=True)
    if runner.lost or (args.answer_on_stop and answered < done_count):
        rc = 1
    return rc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("implicit", "starttls", "plain"), default="implicit")
    add_tls_args(ap)
    ap.add_argument("--user", required=True)
    add_password_args(ap)
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=100,
                    help="connections being set up at once (default 100)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per session setup")
    ap.add_argument("--fetch-bytes", type=int, default=0, metavar="B",
                    help="before idling, fetch the first B bytes of the last message (default 0: "
                         "idle right after LOGIN)")
    ap.add_argument("--answer-on-stop", action="store_true",
                    help="at stop, each session must answer NOOP and LOGOUT (see above)")
    ap.add_argument("--ignore-stdin", action="store_true",
                    help="stop only on SIGTERM/SIGINT, not on stdin EOF")
    args = ap.parse_args()
    if args.sessions < 1 or args.concurrency < 1:
        fail("--sessions and --concurrency must be at least 1")
    if args.fetch_bytes < 0:
        fail("--fetch-bytes must not be negative")
    return asyncio.run(run(args, password_from(args)))


if __name__ == "__main__":
    sys.exit(main())
