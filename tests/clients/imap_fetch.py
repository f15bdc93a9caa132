#!/usr/bin/env python3
"""A legacy IMAP device: log in over one pinned TLS version, fetch every INBOX message.

  imap_fetch.py --host 127.0.0.1 --port P --mode implicit|starttls|plain --tls-version 1.0
                --cafile ca.pem --user alice (--password P | --password-env VAR | --password-file F)
                [--auth login|plain] [--out DIR]

Each message n (sequence number) is written to DIR/<n>.eml exactly as BODY.PEEK[] returned it,
so it compares byte for byte with the maildir file (the lab writes CRLF messages). LOGIN sends
the password as a quoted string, or as a literal when it is not 7-bit (quoted strings cannot
carry 8-bit bytes); --auth plain uses AUTHENTICATE PLAIN instead.

stdout: key=value lines (tls_version, cipher, login, messages, bytes, seconds, mib_per_s).
Exit status 0 on success, 1 on any failure (message on stderr).
"""
import argparse
import imaplib
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from legacy_tls import (add_password_args, add_tls_args, describe_tls, fail,  # noqa: E402
                        legacy_context, password_from)

READ_BUFFER = 1024 * 1024  # large reads, as the lab's throughput baseline did
FETCH_HEAD = re.compile(rb"^(\d+) \(")


def buffered(imap: imaplib.IMAP4) -> None:
    """Swap imaplib's 8 KiB reader for a 1 MiB one. Only safe with nothing in flight: the
    server has sent nothing we have not read (after the greeting or a STARTTLS reply)."""
    imap.file.close()
    imap.file = imap.sock.makefile("rb", buffering=READ_BUFFER)


def quotable(s: str) -> bool:
    return all(32 <= ord(c) < 127 for c in s)


def login(imap: imaplib.IMAP4, user: str, password: str, auth: str) -> None:
    if auth == "plain":
        blob = b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8")
        imap.authenticate("PLAIN", lambda _challenge: blob)
        return
    if quotable(user) and quotable(password):
        imap.login(user, password)  # imaplib quotes and escapes " and \
        return
    # 8-bit credentials: send the password as a synchronizing literal, as mail clients do.
    imap.literal = password.encode("utf-8")
    typ, dat = imap._simple_command("LOGIN", imap._quote(user))
    if typ != "OK":
        raise imap.error(dat[-1])
    imap.state = "AUTH"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("implicit", "starttls", "plain"), required=True)
    add_tls_args(ap)
    ap.add_argument("--user", required=True)
    add_password_args(ap)
    ap.add_argument("--auth", choices=("login", "plain"), default="login")
    ap.add_argument("--out", help="directory for <n>.eml files (created)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per network step")
    args = ap.parse_args()
    password = password_from(args)

    try:
        ctx = None if args.mode == "plain" else legacy_context(args)
        if args.mode == "implicit":
            imap = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=ctx, timeout=args.timeout)
        else:
            imap = imaplib.IMAP4(args.host, args.port, timeout=args.timeout)
            if args.mode == "starttls":
                imap.starttls(ssl_context=ctx)
        buffered(imap)
        print(describe_tls(imap.sock), flush=True)

        login(imap, args.user, password, args.auth)
        print("login=ok", flush=True)

        typ, dat = imap.select("INBOX", readonly=True)
        if typ != "OK":
            fail(f"SELECT INBOX failed: {dat!r}")
        count = int(dat[0])
        if args.out:
            os.makedirs(args.out, exist_ok=True)

        start = time.monotonic()
        total = 0
        seen = 0
        if count:
            typ, dat = imap.fetch("1:*", "(BODY.PEEK[])")
            if typ != "OK":
                fail(f"FETCH failed: {dat!r}")
            for item in dat:
                if not isinstance(item, tuple):
                    continue  # the closing ")" of each FETCH response
                m = FETCH_HEAD.match(item[0])
                if not m:
                    fail(f"unexpected FETCH response {item[0][:80]!r}")
                body = item[1]
                seen += 1
                total += len(body)
                if args.out:
                    with open(os.path.join(args.out, f"{int(m.group(1))}.eml"), "wb") as f:
                        f.write(body)
        seconds = time.monotonic() - start
        if seen != count:
            fail(f"INBOX has {count} messages but FETCH returned {seen}")
        imap.logout()
    except (imaplib.IMAP4.error, ssl.SSLError, socket.timeout, OSError) as e:
        fail(f"{type(e).__name__}: {e}")

    rate = total / (1024 * 1024) / seconds if seconds > 0 else 0.0
    print(f"messages={seen} bytes={total} seconds={seconds:.3f} mib_per_s={rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
