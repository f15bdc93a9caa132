#!/usr/bin/env bash
# The newcomer's first command: installs what the build needs, builds mailtls, and runs the
# gateway in front of Exchange Online the way Exchange Online now requires: the legacy device
# logs in to mailtls with a local password over TLS 1.0, and mailtls signs in to the mailbox with
# OAuth 2.0 (an app's client credentials, XOAUTH2). Stop it with Ctrl-C.
#
# It needs the app registration and mailbox grant that examples/exchange-online-oauth.toml
# describes (steps 1-3 in its comments), given as environment variables:
#
#   TENANT_ID=<directory id> CLIENT_ID=<application id> CLIENT_SECRET=<secret> \
#   MAILBOX=scanner@contoso.com DEVICE_PASSWORD=<what the printer will send> \
#   bash lab/quickstart.sh
#
# It writes /etc/mailtls/mailtls.toml from that example (device login `scanner`), keeps the
# client secret, the token cache key and an RSA certificate for the gateway beside it in the
# root-only /etc/mailtls, creates the `mailtls` system user, checks the config and runs the
# gateway. The gateway starts as root only to bind ports 993, 995 and 587 and read its config and
# keys, then serves as `mailtls`, which owns only /var/lib/mailtls (the session store and the
# encrypted token cache): nothing root reads at the next start is writable by it. Not runuser: as `mailtls` from the start it could bind neither port and would
# need the keys made readable to it.
#
# Usage: bash lab/quickstart.sh [CONFIG]   (an existing config of your own skips the setup)
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in build-essential pkg-config libssl-dev openssl ca-certificates passwd; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

cargo build --release -p mailtls
mailtls=$PWD/target/release/mailtls
if ! id mailtls >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin mailtls
fi

config=${1:-}
if [[ -z $config ]]; then
  missing=()
  for var in TENANT_ID CLIENT_ID CLIENT_SECRET MAILBOX DEVICE_PASSWORD; do
    [[ -n ${!var:-} ]] || missing+=("$var")
  done
  if ((${#missing[@]})); then
    echo "quickstart: set ${missing[*]} (see the top of lab/quickstart.sh and the steps in" >&2
    echo "examples/exchange-online-oauth.toml), or pass a config of your own." >&2
    exit 2
  fi
  install -d -m 0700 /etc/mailtls
  install -d -m 0750 -o mailtls -g mailtls /var/lib/mailtls
  umask 077
  printf '%s\n' "$CLIENT_SECRET" >/etc/mailtls/exchange.secret
  [[ -s /etc/mailtls/token.key ]] || openssl rand -base64 32 >/etc/mailtls/token.key
  hash=$(printf '%s\n' "$DEVICE_PASSWORD" | "$mailtls" passwd)
  config=/etc/mailtls/mailtls.toml
  # The example with this tenant, app, mailbox and device password; one account, the
  # gateway dropping root for `mailtls`.
  sed -e "s|TENANT-ID|$TENANT_ID|; s|APPLICATION-ID|$CLIENT_ID|" \
      -e "s|/etc/mailtls/contoso.secret|/etc/mailtls/exchange.secret|" \
      -e "s|^\[gateway\]|[gateway]\nuser = \"mailtls\"|" \
      -e "s|^path = \"mailtls.db\"|path = \"/var/lib/mailtls/mailtls.db\"|" \
      -e "s|^path = \"mailtls-tokens.enc\"|path = \"/var/lib/mailtls/mailtls-tokens.enc\"|" \
      examples/exchange-online-oauth.toml |
    awk -v mailbox="$MAILBOX" -v hash="$hash" '
      /^\[\[account\]\]/ { accounts++ }
      accounts == 2 && !/^\[\[upstream\]\]/ { next }   # keep the first account only
      /^\[\[upstream\]\]/ { accounts = 3 }
      /^password_hash = / && accounts == 1 { print "password_hash = \x27" hash "\x27"; next }
      /^mailbox = / && accounts == 1 { print "mailbox = \"" mailbox "\""; next }
      { print }' >"$config"
  chmod 0600 "$config"
fi

bash lab/gateway-cert.sh "$(dirname "$config")/certs"
"$mailtls" check-config --config "$config"
exec "$mailtls" gateway --config "$config"
