#!/usr/bin/env bash
# lab/certs.sh DIR: throwaway test PKI for the lab and the end-to-end tests.
#
#   DIR/ca.pem, DIR/ca.key            test CA (RSA 2048, self-signed, 10 years)
#   DIR/server.pem, DIR/server.key    leaf for localhost, 127.0.0.1, 127.0.0.2 (RSA 2048, SHA-256),
#                                     signed by the CA. server.pem holds the leaf ONLY: the CA is
#                                     the trust anchor the clients load (--cafile), so it is not sent.
#   DIR/untrusted.pem, .key           self-signed leaf with the same names, signed by nobody the
#                                     tests trust: for "upstream certificate verification fails".
#
# RSA on purpose: many legacy devices have no ECDSA. Idempotent: a complete, valid set is kept;
# anything missing, broken or expiring within a day is regenerated as a whole.
set -euo pipefail

die() { echo "certs.sh: $*" >&2; exit 1; }

[[ $# -eq 1 ]] || die "usage: lab/certs.sh DIR"
dir=$1
command -v openssl >/dev/null || die "openssl not found; run lab/install.sh"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# Parallel test processes may share DIR: one generates, the others wait and then reuse.
exec 9>"$dir/.certs.lock"
flock 9

complete() {
    local f
    for f in ca.pem ca.key server.pem server.key untrusted.pem untrusted.key; do
        [[ -s "$dir/$f" ]] || return 1
    done
    openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null 2>&1 || return 1
    openssl x509 -in "$dir/server.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    openssl x509 -in "$dir/untrusted.pem" -noout -checkend 86400 >/dev/null 2>&1 || return 1
    # A key replaced by hand would make the server fail its handshake: check each pair matches.
    local name
    for name in server untrusted; do
        [[ "$(openssl x509 -in "$dir/$name.pem" -noout -pubkey 2>/dev/null)" == \
           "$(openssl pkey -in "$dir/$name.key" -pubout 2>/dev/null)" ]] || return 1
    done
}

if complete; then
    echo "certs.sh: reusing valid certificates in $dir"
    exit 0
fi

tmp=$(mktemp -d "$dir/.certs.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

san="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2"
# keyEncipherment: TLS 1.0 clients often negotiate RSA key exchange (e.g. AES128-SHA).
leaf_ext=(-addext "basicConstraints=critical,CA:FALSE"
          -addext "keyUsage=critical,digitalSignature,keyEncipherment"
          -addext "extendedKeyUsage=serverAuth"
          -addext "$san")

openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 3650 \
    -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -subj "/O=mailtls lab/CN=mailtls lab test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -new -newkey rsa:2048 -sha256 -nodes \
    -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/O=mailtls lab/CN=localhost" 2>/dev/null
cat >"$tmp/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
$san
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 825 -sha256 \
    -extfile "$tmp/server.ext" -out "$tmp/server.pem" 2>/dev/null

openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 825 \
    -keyout "$tmp/untrusted.key" -out "$tmp/untrusted.pem" \
    -subj "/O=untrusted/CN=localhost" "${leaf_ext[@]}" 2>/dev/null

openssl verify -CAfile "$tmp/ca.pem" "$tmp/server.pem" >/dev/null \
    || die "generated server.pem does not verify against ca.pem"

chmod 600 "$tmp"/*.key
chmod 644 "$tmp"/*.pem
# Keys first, so a reader that sees a new .pem also finds its key.
for f in ca.key server.key untrusted.key ca.pem server.pem untrusted.pem; do
    mv -f "$tmp/$f" "$dir/$f"
done
echo "certs.sh: generated test CA, server and untrusted certificates in $dir"
