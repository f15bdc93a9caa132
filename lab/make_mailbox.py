#!/usr/bin/env python3
"""Write the lab's test messages straight into maildirs (fast, no IMAP APPEND).

Used by lab/dovecot.sh. Layout it creates under DIR:
  DIR/messages/<n>.eml          the expected bytes of message n (1-based, IMAP sequence order)
  DIR/mail/<user>/cur/<name>    the same file, hard-linked, for every user

Every message uses CRLF line endings and ends with CRLF, so what IMAP `BODY.PEEK[]` returns is
byte for byte the file, and POP3 RETR lines joined with CRLF plus a final CRLF are too.
Hard links cost no disk; Dovecot never rewrites a maildir file in place (flag changes rename,
expunge unlinks), so the copy in DIR/messages stays the expected content.

Content is deterministic: the same options always give the same bytes.
"""
import argparse
import base64
import os
import random
import shutil
import sys

MIB = 1024 * 1024
# Fixed maildir timestamps: Dovecot assigns UIDs to new files in filename (time) order, so
# message n gets sequence number n.
BASE_TIME = 1700000000


def small_message(n: int, total: int) -> bytes:
    lines = [
        "From: Lab Sender <sender@lab.invalid>",
        "To: Lab Recipient <rcpt@lab.invalid>",
        f"Date: Mon, 01 Jan 2024 00:{n % 60:02d}:00 +0000",
        f"Message-ID: <small-{n}@mailtls.lab>",
        f"Subject: lab message {n}",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
        "",
        f"Hello from the mailtls lab, message {n} of {total}.",
        # A lone dot and a leading dot: POP3 byte-stuffing must be undone exactly.
        ".",
        ". a line that starts with a dot",
        "..two dots",
        # 8-bit body and IMAP-special characters: nothing after login may be parsed or altered.
        "Non-ASCII: grüße, naïve, 日本語",
        'IMAP specials: ( ) { } * % " \\ [ ] {5}',
        "trailing spaces   ",
        "",
        "-- ",
        "mailtls lab",
    ]
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def large_message(n: int, size: int) -> bytes:
    """Exactly `size` bytes: headers, then pseudo-random printable 76-column lines."""
    head = (
        "From: Lab Sender <sender@lab.invalid>\r\n"
        "To: Lab Recipient <rcpt@lab.invalid>\r\n"
        "Date: Mon, 01 Jan 2024 01:00:00 +0000\r\n"
        f"Message-ID: <large-{n}@mailtls.lab>\r\n"
        f"Subject: lab bulk message {n}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    ).encode("ascii")
    body_len = size - len(head)
    # Filler: base64 text of seeded random bytes, in 76-column lines (78 bytes with CRLF).
    n_lines = body_len // 78 + 1
    text = base64.b64encode(random.Random(n).randbytes(n_lines * 57))
    full, rest = divmod(body_len, 78)
    widths = [76] * full
    if rest >= 2:
        widths.append(rest - 2)
    elif rest == 1:  # no room for a CRLF of its own: widen the last line instead
        widths[-1] += 1
    body = bytearray()
    pos = 0
    for w in widths:
        body += text[pos:pos + w] + b"\r\n"
        pos += w
    msg = head + bytes(body)
    assert len(msg) == size and msg.endswith(b"\r\n")
    return msg


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--users", required=True, help="comma-separated user names")
    ap.add_argument("--messages", type=int, default=3, help="small messages")
    ap.add_argument("--mailbox-mib", type=int, default=0,
                    help="add 1 MiB messages until the mailbox holds at least this many MiB")
    ap.add_argument("--uid", type=int, default=-1)
    ap.add_argument("--gid", type=int, default=-1)
    a = ap.parse_args()
    if a.messages < 0 or a.mailbox_mib < 0:
        sys.exit("make_mailbox.py: counts must be >= 0")

    msgs = [small_message(i + 1, a.messages) for i in range(a.messages)]
    small_bytes = sum(map(len, msgs))
    n_large = 0
    if a.mailbox_mib:
        n_large = max(0, -(-(a.mailbox_mib * MIB - small_bytes) // MIB))  # ceiling division

    expected = os.path.join(a.dir, "messages")
    mail = os.path.join(a.dir, "mail")
    for d in (expected, mail):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(expected, mode=0o755)

    names = []
    total = a.messages + n_large
    for n in range(1, total + 1):
        data = msgs[n - 1] if n <= a.messages else large_message(n, MIB)
        path = os.path.join(expected, f"{n}.eml")
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)
        # S= and W= (size, and size with CRLF) spare Dovecot a stat and a read per message.
        names.append((path, f"{BASE_TIME + n}.M{n}P0.mailtls-lab,S={len(data)},W={len(data)}:2,"))

    users = [u for u in a.users.split(",") if u]
    for user in users:
        root = os.path.join(mail, user)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(root, sub), mode=0o700, exist_ok=True)
        for path, name in names:
            os.link(path, os.path.join(root, "cur", name))

    if a.uid >= 0:
        # Mail must belong to the mail user, never root: Dovecot refuses to serve it otherwise.
        for top in (mail, expected):
            os.chown(top, a.uid, a.gid)
            for dirpath, dirnames, filenames in os.walk(top):
                for entry in dirnames + filenames:
                    os.chown(os.path.join(dirpath, entry), a.uid, a.gid)
    nbytes = sum(os.path.getsize(p) for p, _ in names)
    print(f"make_mailbox.py: {total} messages ({nbytes} bytes) for {','.join(users)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
