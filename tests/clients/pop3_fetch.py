#!/usr/bin/env python3
"""A legacy POP3 device: log in over one pinned TLS version, RETR every message.

  pop3_fetch.py --host 127.0.0.1 --port P --mode implicit|starttls|plain --tls-version 1.0
                --cafile ca.pem --user alice (--password P | --password-env VAR | --password-file F)
                [--auth user|plain] [--out DIR]

Comparison rule: poplib splits RETR's reply into lines (dropping each CRLF) and undoes the
dot-stuffing. DIR/<n>.eml is those lines joined with CRLF plus one final CRLF, which equals the
stored message when the message uses CRLF line ends and ends with CRLF (all lab messages do).

--auth user sends USER/PASS (the password is the rest of the PASS line, spaces included);
--auth plain sends AUTH PLAIN with an initial response.

stdout: key=value lines (tls_version, cipher, login, messages, bytes, seconds, mib_per_s).
Exit status 0 on success, 1 on any failure (message on stderr).
"""
import argparse
import base64
import os
import poplib
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from legacy_tls import (add_password_args, add_tls_args, describe_tls, fail,  # noqa: E402
                        legacy_context, password_from)

# poplib refuses lines over 2048 bytes by default; RFC 5322 allows 998 but real mail breaks
# that, and a test must see what the server sent rather than a client-side limit.
poplib._MAXLINE = 1024 * 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("implicit", "starttls", "plain"), required=True)
    add_tls_args(ap)
    ap.add_argument("--user", required=True)
    add_password_args(ap)
    ap.add_argument("--auth", choices=("user", "plain"), default="user")
    ap.add_argument("--out", help="directory for <n>.eml files (created)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per network step")
    args = ap.parse_args()
    password = password_from(args)

    try:
        ctx = None if args.mode == "plain" else legacy_context(args)
        if args.mode == "implicit":
            pop = poplib.POP3_SSL(args.host, args.port, context=ctx, timeout=args.timeout)
        else:
            pop = poplib.POP3(args.host, args.port, timeout=args.timeout)
            if args.mode == "starttls":
                pop.stls(context=ctx)
        print(describe_tls(pop.sock), flush=True)

        if args.auth == "plain":
            blob = b"\0" + args.user.encode("utf-8") + b"\0" + password.encode("utf-8")
            pop._shortcmd("AUTH PLAIN " + base64.b64encode(blob).decode("ascii"))
        else:
            pop.user(args.user)
            pop.pass_(password)  # poplib encodes commands as UTF-8
        print("login=ok", flush=True)

        count, _size = pop.stat()
        if args.out:
            os.makedirs(args.out, exist_ok=True)
        start = time.monotonic()
        total = 0
        for n in range(1, count + 1):
            _resp, lines, _octets = pop.retr(n)
            body = b"\r\n".join(lines) + b"\r\n"
            total += len(body)
            if args.out:
                with open(os.path.join(args.out, f"{n}.eml"), "wb") as f:
                    f.write(body)
        seconds = time.monotonic() - start
        pop.quit()
    except (poplib.error_proto, ssl.SSLError, socket.timeout, OSError) as e:
        fail(f"{type(e).__name__}: {e}")

    rate = total / (1024 * 1024) / seconds if seconds > 0 else 0.0
    print(f"messages={count} bytes={total} seconds={seconds:.3f} mib_per_s={rate:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
