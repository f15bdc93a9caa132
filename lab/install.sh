#!/usr/bin/env bash
# lab/install.sh: install what the tests and benchmarks need (Debian 12). Idempotent: when every
# package is already installed it touches nothing and takes well under a second.
#
# On a machine running systemd, installing Dovecot, HAProxy, PostgreSQL or Prometheus (for promtool) also
# starts the system service; the lab never uses or changes it (lab/dovecot.sh, lab/haproxy.sh and
# lab/postgres.sh run private instances, and promtool only checks text).
set -euo pipefail

PACKAGES=(
    dovecot-imapd dovecot-pop3d   # the real IMAP/POP3 server behind the gateway
    openssl libssl-dev pkg-config # TLS: CLI for tests, headers for the openssl crate
    gcc libc6-dev                 # C compiler for crates with bundled C code (SQLite)
    postfix libsasl2-modules sasl2-bin  # real SMTP server: the scanner's (AUTH via sasldb) and
                                        # the SMTP bridge's upstream (AUTH via Dovecot SASL)
    swaks                         # real SMTP submission client
    ca-certificates               # system roots for the upstream verifier
    curl fetchmail stunnel4       # real clients, and the bridge we measure against
    haproxy                       # a real load balancer sending the PROXY protocol header
    postgresql                    # the fleet store (lab/postgres.sh runs private clusters)
    python3                       # tests/clients drivers and lab helpers (stdlib only)
    testssl.sh                    # reference scanner for cross-checks (command: testssl)
    procps util-linux passwd      # ps, flock/runuser, useradd used by lab scripts
    iproute2                      # ss: the tests count the gateway's sockets
    prometheus                    # promtool checks the gateway's /metrics (its service is never used)
    systemd                       # systemd-analyze checks examples/systemd/mailtls.service
    chromium                      # headless browser: the report and dashboard render, offline
    gzip time                     # log import tests (gzip copies) and bench/logs.sh (peak RSS)
    tcpdump tshark                # capture lab sessions for `mailtls import pcap`, and the reference dissector
    libpcap-dev                   # libpcap for `mailtls sensor` (the pcap crate links it)
)
MAIL_USER=mailtls-lab

die() { echo "install.sh: $*" >&2; exit 1; }

# One dpkg-query for all: "installed" only (dpkg -s also succeeds for removed packages whose
# config files remain). Unknown packages print nothing and so count as missing.
declare -A installed=()
while read -r name status; do
    [[ $status == installed ]] && installed[${name%%:*}]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
    [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "install.sh: installing ${missing[*]}"
    sudo=()
    if [[ $EUID -ne 0 ]]; then
        command -v sudo >/dev/null || die "need root to install: apt-get install -y ${missing[*]}"
        sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update
    # invoke-rc.d may refuse to start services in containers; that is expected and harmless.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
else
    echo "install.sh: all ${#PACKAGES[@]} packages already installed"
fi

# The owner of the lab's maildirs (Dovecot refuses mail owned by root). dovecot.sh creates it
# too, but doing it here keeps parallel test processes from racing to create it.
if [[ $EUID -eq 0 ]] && ! id "$MAIL_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$MAIL_USER"
    echo "install.sh: created system user $MAIL_USER"
fi

for tool in dovecot doveadm openssl python3 curl fetchmail stunnel4 testssl haproxy promtool swaks systemd-analyze; do
    command -v "$tool" >/dev/null || die "$tool is still missing after installation"
done
python3 -c 'import ssl, asyncio, imaplib, poplib, smtplib' || die "python3 lacks ssl/imaplib/poplib/smtplib"
