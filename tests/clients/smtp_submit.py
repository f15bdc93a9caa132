#!/usr/bin/env python3
"""A legacy SMTP device: submit one message over one pinned TLS version with AUTH.

  smtp_submit.py --host 127.0.0.1 --port P --mode implicit|starttls|cleartext|plain --tls-version 1.0
                 --cafile ca.pem --user alice (--password P | --password-env VAR | --password-file F)
                 [--auth plain|login] --from ADDR --to ADDR --message FILE
  smtp_submit.py ... --no-auth [--count N] [--source ADDR] --from ADDR --to ADDR --message FILE

--no-auth is a device that cannot authenticate (a relaying listener): MAIL straight after EHLO,
each reply reported (mail=, rcpt=, data=), the message sent --count times in one session.
--source binds the client to a local address first (e.g. 127.0.0.3, another network).

The message file is sent as it is (it should use CRLF line ends and end with CRLF); smtplib
dot-stuffs it. --auth plain sends AUTH PLAIN with an initial response, --auth login AUTH LOGIN
answering both prompts. --mode plain sends no STARTTLS and no AUTH: the server's refusals are
reported. --mode cleartext is a device without TLS: no STARTTLS, but AUTH and the message.

stdout: key=value lines (tls_version/cipher, ehlo_auth, login (the code and text of the
reply to AUTH), mail, queued).
Exit status 0 when the message was accepted, 1 on any failure (message on stderr).
"""
import argparse
import base64
import os
import smtplib
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from legacy_tls import (add_password_args, add_tls_args, describe_tls, fail,  # noqa: E402
                        legacy_context, password_from)


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--mode", choices=("implicit", "starttls", "cleartext", "plain"),
                    required=True)
    add_tls_args(ap)
    ap.add_argument("--user")
    add_password_args(ap, required=False)
    ap.add_argument("--no-auth", action="store_true", help="send without AUTH")
    ap.add_argument("--count", type=int, default=1, help="messages sent in the session (--no-auth)")
    ap.add_argument("--source", help="local address to connect from")
    ap.add_argument("--auth", choices=("plain", "login"), default="plain")
    ap.add_argument("--from", dest="sender", required=True)
    ap.add_argument("--to", required=True)
    ap.add_argument("--message", required=True, help="file holding the message, sent as is")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per network step")
    args = ap.parse_args()
    if not args.no_auth and (args.user is None or
                             (args.password, args.password_env, args.password_file) == (None,) * 3):
        fail("--user and a password are needed unless --no-auth")
    password = None if args.no_auth else password_from(args)
    source = (args.source, 0) if args.source else None
    with open(args.message, "rb") as f:
        message = f.read()

    try:
        ctx = None if args.mode in ("plain", "cleartext") else legacy_context(args)
        if args.mode == "implicit":
            smtp = smtplib.SMTP_SSL(args.host, args.port, context=ctx, timeout=args.timeout,
                                    source_address=source)
        else:
            smtp = smtplib.SMTP(args.host, args.port, timeout=args.timeout,
                                source_address=source)
            if args.mode == "starttls":
                smtp.starttls(context=ctx)
        print(describe_tls(smtp.sock), flush=True)
        smtp.ehlo()
        print(f"ehlo_auth={smtp.esmtp_features.get('auth', '').strip() or '-'}", flush=True)
        if args.mode == "plain":
            code, text = smtp.mail(args.sender)
            print(f"mail={code} {text.decode(errors='replace')}", flush=True)
            smtp.quit()
            return 1 if code >= 400 else 0
        if args.no_auth:
            return submit_without_auth(smtp, args, message)
        # By hand rather than smtplib's login(): its mechanisms encode the password as ASCII.
        user, secret = args.user.encode("utf-8"), password.encode("utf-8")
        if args.auth == "plain":
            code, text = smtp.docmd("AUTH", "PLAIN " + b64(b"\0" + user + b"\0" + secret))
        else:
            code, text = smtp.docmd("AUTH", "LOGIN")
            for prompt, answer in ((b"VXNlcm5hbWU6", user), (b"UGFzc3dvcmQ6", secret)):
                if code != 334 or text != prompt:
                    break
                code, text = smtp.docmd(b64(answer))
        print(f"login={code} {text.decode(errors='replace')}", flush=True)
        if code != 235:
            fail(f"AUTH {args.auth.upper()} refused: {code} {text.decode(errors='replace')}")
        refused = smtp.sendmail(args.sender, [args.to], message)
        if refused:
            fail(f"recipients refused: {refused}")
        print("queued=yes", flush=True)
        smtp.quit()
    except (smtplib.SMTPException, ssl.SSLError, socket.timeout, OSError) as e:
        fail(f"{type(e).__name__}: {e}")
    return 0


def submit_without_auth(smtp: smtplib.SMTP, args: argparse.Namespace, message: bytes) -> int:
    """Sends the message --count times, each reply reported; stops at the first refusal."""
    queued = 0
    for _ in range(args.count):
        for name, step in (("mail", lambda: smtp.mail(args.sender)),
                           ("rcpt", lambda: smtp.rcpt(args.to)),
                           ("data", lambda: smtp.data(message))):
            code, text = step()
            print(f"{name}={code} {text.decode(errors='replace')}", flush=True)
            if code >= 400:
                print(f"queued={queued}", flush=True)
                smtp.rset()
                smtp.quit()
                return 1
        queued += 1
    print(f"queued={queued}", flush=True)
    smtp.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
