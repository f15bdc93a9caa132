#!/usr/bin/env bash
# Makes a self-signed RSA 2048 certificate for the gateway's client side: RSA because many
# legacy devices (printers, old Java and .NET runtimes) have no ECDSA. Devices that check
# certificates need it imported, or better a certificate from your own CA.
# Usage: lab/gateway-cert.sh DIR [HOSTNAME]   -> DIR/gateway.pem, DIR/gateway.key
set -euo pipefail
dir=${1:?usage: lab/gateway-cert.sh DIR [HOSTNAME]}
host=${2:-$(hostname -f 2>/dev/null || hostname)}
mkdir -p "$dir"
if [[ -s $dir/gateway.pem && -s $dir/gateway.key ]]; then
  echo "keeping the existing $dir/gateway.pem"
  exit 0
fi
openssl req -x509 -newkey rsa:2048 -sha256 -days 825 -nodes \
  -keyout "$dir/gateway.key" -out "$dir/gateway.pem" \
  -subj "/CN=$host" -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" 2>/dev/null
chmod 600 "$dir/gateway.key"
echo "wrote $dir/gateway.pem and $dir/gateway.key for $host"
