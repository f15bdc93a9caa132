#!/usr/bin/env python3
"""Client side of bench/smtp.sh: message submission rate against one SMTP endpoint.

  smtp_bench.py --port P --cafile CA --user U --password-env VAR --to ADDR
                [--count 60] [--workers 2] [--message-kib 100] [--cipher C]

`--workers` threads each loop: connect, read the greeting, EHLO, STARTTLS (TLS 1.2 with one
pinned cipher, certificate verified for the address), EHLO, AUTH PLAIN, MAIL/RCPT/DATA of one message of
`--message-kib` KiB, QUIT, close, until `--count` messages were accepted in all; the clock
covers the whole batch. The same client work on every path, so direct, mailtls and stunnel
differ only in what sits between.

stdout: one JSON object. Exit status 1 on any failure (message on stderr). Standard library only.
"""
import argparse
import json
import os
import smtplib
import ssl
import sys
import threading
import time


def fail(message: str) -> "NoReturn":  # noqa: F821
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def message(kib: int, sender: str, to: str) -> bytes:
    """A text message of about `kib` KiB: headers, then lines of 76 characters."""
    head = (f"From: {sender}\r\nTo: {to}\r\nSubject: bench\r\n"
            "Date: Thu, 03 Dec 2026 04:00:00 +0000\r\n\r\n").encode()
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab\r\n"
    return head + line * (kib * 1024 // len(line))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password-env", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--message-kib", type=int, default=100)
    ap.add_argument("--cipher", default="ECDHE-RSA-AES128-GCM-SHA256")
    ap.add_argument("--timeout", type=float, default=30.0)
    args = ap.parse_args()
    password = os.environ.get(args.password_env) or fail(f"{args.password_env} is not set")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(args.cipher)
    ctx.load_verify_locations(cafile=args.cafile)
    body = message(args.message_kib, args.to, args.to)
    left = [args.count]
    lock = threading.Lock()
    errors = []
    seen_tls = set()

    def worker():
        while True:
            with lock:
                if left[0] == 0 or errors:
                    return
                left[0] -= 1
            try:
                smtp = smtplib.SMTP(args.host, args.port, timeout=args.timeout,
                                    local_hostname="bench.lab")
                smtp.starttls(context=ctx)
                with lock:
                    seen_tls.add(f"{smtp.sock.version()} with cipher {smtp.sock.cipher()[0]}")
                smtp.login(args.user, password)
                refused = smtp.sendmail(args.to, [args.to], body)
                if refused:
                    raise RuntimeError(f"refused: {refused}")
                smtp.quit()
            except Exception as e:  # noqa: BLE001: any failure ends the run
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")
                return

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        fail(errors[0])
    print(json.dumps({
        "messages": args.count,
        "message_bytes": len(body),
        "seconds": round(seconds, 3),
        "per_s": round(args.count / seconds, 2),
        "client_tls": sorted(seen_tls),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
