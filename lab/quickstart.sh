#!/usr/bin/env bash
# The newcomer's first command: installs what the build needs, builds mailtls, makes an RSA
# certificate for the gateway, creates the `mailtls` system user, checks the example config and
# runs the gateway with it (sessions recorded in SQLite next to the config). Stop it with Ctrl-C.
#
# The gateway starts as root only to bind ports 993/143/995/110 and read its key, then serves
# as `mailtls` (`[gateway] user` in the example). Not runuser: as `mailtls` from the start it
# could bind none of those ports and would need the private key made readable to it.
# Usage: bash lab/quickstart.sh [CONFIG]   (default: examples/exchange-online-bridge.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-examples/exchange-online-bridge.toml}

need=()
for pkg in build-essential pkg-config libssl-dev openssl ca-certificates passwd; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

cargo build --release -p mailtls
bash lab/gateway-cert.sh "$(dirname "$config")/certs"
if ! id mailtls >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mailtls
fi
./target/release/mailtls check-config --config "$config"
exec ./target/release/mailtls gateway --config "$config"
