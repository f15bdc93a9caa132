#!/bin/sh
# Captures the ClientHello of each lab client program into OUT_DIR (default: the store's
# known_hellos test data), for the known-fingerprint table in crates/store/src/known_software.rs.
# A Python socket on loopback keeps the first bytes each client sends and closes; the clients
# then fail their handshakes, which does not matter.
set -eu
OUT_DIR=${1:-$(dirname "$0")/../crates/store/src/testdata/known_hellos}
PORT=${PORT:-47001}
mkdir -p "$OUT_DIR"
HOME_DIR=$(mktemp -d)
trap 'rm -rf "$HOME_DIR"' EXIT

capture() {
    name=$1; shift
    python3 - "$PORT" "$OUT_DIR/$name.bin" <<'PY' &
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(1)
conn, _ = srv.accept(); conn.settimeout(3)
data = b""
try:
    while len(data) < 5 or len(data) < 5 + int.from_bytes(data[3:5], "big"):
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
open(sys.argv[2], "wb").write(data)
PY
    sleep 0.3
    "$@" </dev/null >/dev/null 2>&1 || true
    wait
}

py_client() {
    python3 -c "
import ssl, socket, sys
c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); c.check_hostname = False; c.verify_mode = ssl.CERT_NONE
if sys.argv[1] == '1.0':
    c.minimum_version = c.maximum_version = ssl.TLSVersion.TLSv1; c.set_ciphers('DEFAULT:@SECLEVEL=0')
elif sys.argv[1] == '1.2':
    c.maximum_version = ssl.TLSVersion.TLSv1_2
c.wrap_socket(socket.create_connection(('127.0.0.1', $PORT)))" "$1"
}

fetchmail_client() {
    printf 'poll 127.0.0.1 service %s protocol IMAP user alice password x ssl sslproto "%s"\n' \
        "$PORT" "$1" >"$HOME_DIR/rc"
    chmod 600 "$HOME_DIR/rc"
    HOME=$HOME_DIR fetchmail -f "$HOME_DIR/rc" --nodetach -N
}

capture s_client_tls1 openssl s_client -connect 127.0.0.1:$PORT -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
capture s_client_tls1_sni openssl s_client -connect 127.0.0.1:$PORT -servername localhost -tls1 -cipher 'DEFAULT:@SECLEVEL=0'
capture s_client_tls1_2 openssl s_client -connect 127.0.0.1:$PORT -tls1_2
capture s_client_default openssl s_client -connect 127.0.0.1:$PORT
capture curl_tls10 curl -sk --tlsv1.0 --tls-max 1.0 --ciphers 'DEFAULT:@SECLEVEL=0' imaps://127.0.0.1:$PORT/
capture curl_default curl -sk imaps://127.0.0.1:$PORT/
capture python_tls10 py_client 1.0
capture python_tls12 py_client 1.2
capture python_default py_client default
capture fetchmail_tls1 fetchmail_client TLS1
capture fetchmail_default fetchmail_client TLS1+
ls -l "$OUT_DIR"
