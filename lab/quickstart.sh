#!/usr/bin/env bash
# The newcomer's first command: installs what the build needs, builds mailtls, makes an RSA
# certificate for the gateway, checks the example config and runs the gateway with it
# (sessions recorded in SQLite next to the config). Stop it with Ctrl-C.
# Usage: bash lab/quickstart.sh [CONFIG]   (default: examples/exchange-online-bridge.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-examples/exchange-online-bridge.toml}

need=()
for pkg in build-essential pkg-config libssl-dev openssl ca-certificates; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

cargo build --release -p mailtls
bash lab/gateway-cert.sh "$(dirname "$config")/certs"
./target/release/mailtls check-config --config "$config"
exec ./target/release/mailtls gateway --config "$config"
