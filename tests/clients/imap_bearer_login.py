"""Logs in to an IMAP server over TLS with an OAuth 2.0 bearer token, as a mail client does,
and saves every INBOX message.

    python3 imap_bearer_login.py PORT CA_FILE USER xoauth2|oauthbearer OUT_DIR  < token

The token comes on standard input, never on the command line (where `ps` would show it).
Prints `LOGGED-IN <count>` and exits 0, or `REFUSED <server text>` and exits 1.
"""

import imaplib
import os
import ssl
import sys

port, ca_file, user, mechanism, out_dir = sys.argv[1:6]
port = int(port)
token = sys.stdin.read().strip()

context = ssl.create_default_context(cafile=ca_file)
context.check_hostname = False  # the lab certificate names localhost; we connect by address

if mechanism == "xoauth2":
    response = "user=%s\x01auth=Bearer %s\x01\x01" % (user, token)
elif mechanism == "oauthbearer":
    # RFC 7628: GS2 header with the authorization identity, then key=value pairs.
    response = "n,a=%s,\x01host=127.0.0.1\x01port=%d\x01auth=Bearer %s\x01\x01" % (user, port, token)
else:
    sys.exit("mechanism must be xoauth2 or oauthbearer")

imap = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=context)
try:
    imap.authenticate(mechanism.upper(), lambda _challenge: response.encode())
except imaplib.IMAP4.error as refused:
    print("REFUSED %s" % refused)
    sys.exit(1)
typ, data = imap.select("INBOX", readonly=True)
count = int(data[0])
os.makedirs(out_dir, exist_ok=True)
for number in range(1, count + 1):
    typ, parts = imap.fetch(str(number), "(BODY.PEEK[])")
    with open(os.path.join(out_dir, "%03d.eml" % number), "wb") as out:
        out.write(parts[0][1])
imap.logout()
print("LOGGED-IN %d" % count)
