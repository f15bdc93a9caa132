#!/usr/bin/env bash
# lab/postfix.sh: a private, throwaway Postfix (SMTP with STARTTLS, and SMTPS) for the scanner's
# tests, and as the submission server behind the gateway's SMTP bridge.
#
#   lab/postfix.sh start DIR [--listen 127.0.0.1|127.0.0.2] [--min-tls TLSv1|TLSv1.1|TLSv1.2|TLSv1.3]
#                            [--auth-before-tls yes|no] [--submission SASL_SOCKET [--mailboxes U1,U2]]
#                            [--certs CERT_DIR]
#   lab/postfix.sh stop DIR
#
# Everything lives in DIR (main.cf, master.cf, queue, data, log, SASL config, mail); /etc/postfix is
# only read for master.cf's service list. Two ports are picked, free, on the listen address:
# SMTP_PORT (STARTTLS) and SMTPS_PORT (implicit TLS); DIR/ports.env names them.
# Scanner mode (default): Cyrus SASL with PLAIN and LOGIN is enabled so that AUTH is advertised;
# --auth-before-tls no sets smtpd_tls_auth_only (AUTH only after STARTTLS). No mail is delivered.
# --submission: TLS (--min-tls or newer) is required before AUTH and MAIL; AUTH goes to the Dovecot
# auth socket SASL_SOCKET (lab/dovecot.sh --auth-listener); only authenticated clients may send,
# and mail to U@lab.mailtls.example (U in --mailboxes, default alice,tricky) is delivered into the
# Maildir DIR/mail/U/. --certs uses (or makes) lab/certs.sh certificates in CERT_DIR instead of
# DIR/certs, e.g. those of the lab Dovecot, which saves generating keys.
set -euo pipefail

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "postfix.sh: $*" >&2; exit 1; }
usage() { sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2; }

cmd_stop() {
    local dir=$1
    [[ -f $dir/main.cf ]] || { echo "postfix.sh: nothing to stop in $dir"; return 0; }
    postfix -c "$dir" stop >/dev/null 2>&1 || true
    rm -f "$dir/ports.env"
    echo "postfix.sh: stopped Postfix in $dir"
}

# Prints N distinct free TCP ports on ADDR (lab/free_ports.py says how they are chosen).
free_ports() {
    python3 "$LAB/free_ports.py" "$1" "$2"
}

MAIL_DOMAIN=lab.mailtls.example

# Appends the submission server's settings to DIR/main.cf (from cmd_start's locals): TLS at the
# minimum version before anything else (security level encrypt, so the mandatory protocols
# apply), Dovecot SASL, relaying for authenticated clients only, and virtual(8) delivery into
# one Maildir per user, owned by the lab's mail user.
submission_conf() {
    local owner=mailtls-lab
    if ! id "$owner" >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
            "$owner" 2>/dev/null || true
        id "$owner" >/dev/null 2>&1 || die "could not create the mail user $owner"
    fi
    mkdir -p "$dir/mail"
    chown "$owner:" "$dir/mail"
    local user
    : >"$dir/mailboxes"
    for user in ${mailboxes//,/ }; do
        echo "$user@$MAIL_DOMAIN $user/" >>"$dir/mailboxes"
    done
    cat >>"$dir/main.cf" <<CONF
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $sasl_socket
smtpd_relay_restrictions = permit_sasl_authenticated, reject
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
virtual_mailbox_domains = $MAIL_DOMAIN
virtual_mailbox_base = $dir/mail
virtual_mailbox_maps = texthash:$dir/mailboxes
virtual_uid_maps = static:$(id -u "$owner")
virtual_gid_maps = static:$(id -g "$owner")
virtual_minimum_uid = 1
# Long lines are kept whole, not split, so the delivered copy can be compared with what was sent.
line_length_limit = 100000
CONF
}

cmd_start() {
    local dir=$1; shift
    local listen=127.0.0.1 min_tls=TLSv1.2 auth_before_tls=no sasl_socket="" mailboxes=alice,tricky
    local certs=""
    while [[ $# -gt 0 ]]; do
        case $1 in
            --listen) listen=${2:?}; shift 2 ;;
            --min-tls) min_tls=${2:?}; shift 2 ;;
            --auth-before-tls) auth_before_tls=${2:?}; shift 2 ;;
            --submission) sasl_socket=${2:?--submission needs the Dovecot auth socket}; shift 2 ;;
            --mailboxes) mailboxes=${2:?--mailboxes needs user names}; shift 2 ;;
            --certs) certs=${2:?--certs needs a directory}; shift 2 ;;
            -h|--help) usage ;;
            *) die "unknown option '$1'" ;;
        esac
    done
    [[ $listen == 127.0.0.1 || $listen == 127.0.0.2 ]] || die "--listen must be 127.0.0.1 or 127.0.0.2"
    [[ $auth_before_tls == yes || $auth_before_tls == no ]] || die "--auth-before-tls must be yes or no"
    local protocols
    case $min_tls in
        TLSv1) protocols='>=TLSv1' ;;
        TLSv1.1) protocols='>=TLSv1.1' ;;
        TLSv1.2) protocols='>=TLSv1.2' ;;
        TLSv1.3) protocols='>=TLSv1.3' ;;
        *) die "--min-tls must be TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3" ;;
    esac
    [[ $mailboxes =~ ^[a-z0-9_-]+(,[a-z0-9_-]+)*$ ]] || die "--mailboxes wants user names separated by commas"
    [[ $EUID -eq 0 ]] || die "a private Postfix master must start as root"
    command -v postfix >/dev/null || die "postfix not found: apt-get install postfix libsasl2-modules"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    chmod a+x "$dir"
    certs=$(realpath -m "${certs:-$dir/certs}")
    bash "$LAB/certs.sh" "$certs" >/dev/null
    mkdir -p "$dir/queue" "$dir/data" "$dir/sasl"
    chown postfix "$dir/data"
    # Cyrus SASL: the mechanisms are listed from the plugins; no account is needed to advertise.
    cat >"$dir/sasl/smtpd.conf" <<CONF
pwcheck_method: auxprop
auxprop_plugin: sasldb
sasldb_path: $dir/sasl/sasldb2
mech_list: PLAIN LOGIN
CONF
    local smtp smtps
    read -r smtp smtps <<<"$(free_ports "$listen" 2)"
    # OpenSSL 3 speaks TLS 1.0/1.1 only at security level 0.
    local seclevel=""
    [[ $min_tls == TLSv1 || $min_tls == TLSv1.1 ]] && seclevel='tls_medium_cipherlist = DEFAULT:@SECLEVEL=0'
    cat >"$dir/main.cf" <<CONF
# Generated by lab/postfix.sh: a private instance.
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
# start-fg writes the log to stdout, which goes to DIR/postfix.log.
maillog_file = /dev/stdout
inet_interfaces = $listen
inet_protocols = ipv4
myhostname = lab.mailtls.invalid
mydestination =
relayhost =
mynetworks = 127.0.0.0/8
smtpd_tls_cert_file = $certs/server.pem
smtpd_tls_key_file = $certs/server.key
smtpd_tls_protocols = $protocols
smtpd_tls_mandatory_protocols = $protocols
smtpd_tls_loglevel = 1
$seclevel
smtpd_sasl_auth_enable = yes
CONF
    if [[ -z $sasl_socket ]]; then
        cat >>"$dir/main.cf" <<CONF
smtpd_relay_restrictions = reject
smtpd_tls_security_level = may
smtpd_sasl_type = cyrus
smtpd_sasl_path = smtpd
cyrus_sasl_config_path = $dir/sasl
smtpd_tls_auth_only = $([[ $auth_before_tls == yes ]] && echo no || echo yes)
CONF
    else
        submission_conf
    fi
    # The package's service list, without its port-25 listener, plus ours (no chroot).
    {
        grep -v '^smtp  *inet' /etc/postfix/master.cf
        echo "$listen:$smtp inet n - n - - smtpd"
        echo "$listen:$smtps inet n - n - - smtpd -o smtpd_tls_wrappermode=yes"
    } >"$dir/master.cf"
    postfix -c "$dir" post-install create-missing >/dev/null 2>&1 || true
    # In the foreground (detached from us) so that its log has somewhere to go without syslog.
    setsid postfix -c "$dir" start-fg </dev/null >"$dir/postfix.log" 2>&1 &
    python3 - "$listen" "$smtp" <<'PY' || { cmd_stop "$dir"; die "Postfix is not serving; log: $dir/postfix.log"; }
import socket, sys, time
deadline = time.monotonic() + 20
while True:
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2) as s:
            if s.recv(512).startswith(b"220"):
                s.sendall(b"QUIT\r\n")
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.1)
PY
    cat >"$dir/ports.env" <<ENV
LAB_DIR=$dir
LISTEN_ADDR=$listen
SMTP_PORT=$smtp
SMTPS_PORT=$smtps
MIN_TLS=$min_tls
CA_FILE=$certs/ca.pem
POSTFIX_LOG=$dir/postfix.log
MAIL_DIR=$([[ -n $sasl_socket ]] && echo "$dir/mail")
MAIL_DOMAIN=$([[ -n $sasl_socket ]] && echo "$MAIL_DOMAIN")
ENV
    cat "$dir/ports.env"
}

[[ $# -ge 2 ]] || usage
command=$1 dir=$2
shift 2
case $command in
    start) cmd_start "$dir" "$@" ;;
    stop) cmd_stop "$dir" ;;
    *) usage ;;
esac
