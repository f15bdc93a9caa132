#!/usr/bin/env bash
# lab/dovecot.sh: a private, throwaway Dovecot for tests and benchmarks.
#
#   lab/dovecot.sh start DIR [--listen 127.0.0.1|127.0.0.2] [--min-tls TLSv1|TLSv1.1|TLSv1.2|TLSv1.3]
#                            [--ciphers LIST] [--plaintext-auth yes|no] [--cert FILE --key FILE [--ca FILE]]
#                            [--messages N] [--mailbox-mib M] [--many] [--auth-delay yes|no]
#                            [--oauth2] [--stop-with PID] [--auth-listener SOCKET]
#   lab/dovecot.sh stop DIR
#
# --oauth2 adds XOAUTH2 and OAUTHBEARER, validated by Dovecot's oauth2 passdb against HS256 JWTs
# signed with a key it generates (DIR/oauth2.key, base64; its path is OAUTH2_KEY_FILE in
# ports.env), and a user `oauthonly` who has a mailbox but no password: only a token opens it.
# PLAIN and LOGIN keep working for alice and tricky.
#
# Everything lives in DIR (config, sockets, state, log, users, mail); the system Dovecot service
# and /etc/dovecot are never read or touched. Ports are picked here, free, on the listen address;
# DIR/ports.env tells the caller which ones (see lab/README.md).
set -euo pipefail

LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lab/lifetime.sh
. "$LAB/lifetime.sh"
MAIL_USER=mailtls-lab
TRICKY_PASSWORD='p a"s\s wörd'   # spaces, a double quote, a backslash, non-ASCII; no ' and no :

die() { echo "dovecot.sh: $*" >&2; exit 1; }

usage() {
    sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# pid of the instance's master if it is running, else nothing. The cmdline check guards
# against a recycled pid belonging to something else.
master_pid() {
    local pidfile="$1/run/master.pid" pid args
    [[ -s $pidfile ]] || return 0
    { read -r pid <"$pidfile"; } 2>/dev/null || return 0
    [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 0
    args=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
    if grep -qxF -- "$1/dovecot.conf" <<<"$args"; then
        echo "$pid"
    fi
}

# Direct children of pid $1 (Dovecot's service processes). The master is single-threaded, so
# its main thread's children file lists them all; ps is the fallback on kernels without it.
children_of() {
    local f=/proc/$1/task/$1/children
    if [[ -r $f ]]; then
        cat "$f" 2>/dev/null || true
    else
        ps -o pid= --ppid "$1" 2>/dev/null || true
    fi
}

cmd_stop() {
    local dir=$1 pid kids p i
    [[ -d $dir ]] || { echo "dovecot.sh: nothing to stop in $dir"; return 0; }
    dir=$(realpath "$dir")
    pid=$(master_pid "$dir")
    if [[ -z $pid ]]; then
        rm -f "$dir/ports.env"
        echo "dovecot.sh: not running in $dir"
        return 0
    fi
    kids=$(children_of "$pid")
    # SIGTERM makes the master stop its services and exit.
    terminate "$pid"
    # Service processes notice the master is gone and exit; give them a moment, then insist.
    for p in $kids; do
        for ((i = 0; i < 50; i++)); do
            alive "$p" || break
            sleep 0.05
        done
        alive "$p" && kill -KILL "$p" 2>/dev/null || true
    done
    rm -f "$dir/ports.env"
    echo "dovecot.sh: stopped Dovecot (master pid $pid) in $dir"
}

# Internal (started by --stop-with): stop DIR's Dovecot once process $2 is gone, unless master
# $3 went first.
cmd_watch() {
    local dir=$1 parent=$2 master=$3
    if outlived_by "$parent" "$master" && [[ $(master_pid "$dir") == "$master" ]]; then
        cmd_stop "$dir"
    fi
}

# Prints N distinct free TCP ports on ADDR (lab/free_ports.py says how they are chosen).
pick_ports() {
    python3 "$LAB/free_ports.py" "$1" "$2"
}

# Waits until every port listens, then reads the IMAP and POP3 greetings: proof that the login
# services start, not only that the master bound the sockets. An IMAP greeting without
# capabilities ("Waiting for authentication process to respond..") means auth is not up yet.
wait_ready() {
    python3 - "$@" <<'EOF'
import socket, sys, time
addr, imap, imaps, pop3, pop3s = sys.argv[1], *map(int, sys.argv[2:6])
deadline = time.monotonic() + 20

def listening():
    want = {"%08X:%04X" % (int.from_bytes(socket.inet_aton(addr), "little"), p)
            for p in (imap, imaps, pop3, pop3s)}
    have = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A":  # TCP_LISTEN
            have.add(f[1])
    return want <= have

def greeting(port, expect, bye):
    with socket.create_connection((addr, port), timeout=5) as s:
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                raise OSError("closed before greeting")
            buf += chunk
        if not buf.startswith(expect):
            raise OSError("unexpected greeting %r" % buf[:80])
        s.sendall(bye)

while True:
    try:
        if listening():
            greeting(imap, b"* OK [CAPABILITY ", b"r LOGOUT\r\n")
            greeting(pop3, b"+OK", b"QUIT\r\n")
            sys.exit(0)
    except OSError:
        pass  # not up yet: retry until the deadline
    if time.monotonic() > deadline:
        sys.exit("Dovecot did not become ready within 20 s")
    time.sleep(0.05)
EOF
}

cmd_start() {
    local dir=$1; shift
    local listen=127.0.0.1 min_tls=TLSv1.2 ciphers="" plaintext_auth=yes cert="" key="" ca=""
    local messages=3 mailbox_mib=0 many=no auth_delay=no stop_with="" auth_listener="" oauth2=no
    while [[ $# -gt 0 ]]; do
        case $1 in
            --listen) listen=${2:?--listen needs an address}; shift 2 ;;
            --min-tls) min_tls=${2:?--min-tls needs a value}; shift 2 ;;
            --ciphers) ciphers=${2:?--ciphers needs a list}; shift 2 ;;
            --plaintext-auth) plaintext_auth=${2:?--plaintext-auth needs yes or no}; shift 2 ;;
            --cert) cert=${2:?--cert needs a file}; shift 2 ;;
            --key) key=${2:?--key needs a file}; shift 2 ;;
            --ca) ca=${2:?--ca needs a file}; shift 2 ;;
            --messages) messages=${2:?--messages needs a number}; shift 2 ;;
            --mailbox-mib) mailbox_mib=${2:?--mailbox-mib needs a number}; shift 2 ;;
            --many) many=yes; shift ;;
            --oauth2) oauth2=yes; shift ;;
            --auth-delay) auth_delay=${2:?--auth-delay needs yes or no}; shift 2 ;;
            --stop-with) stop_with=${2:?--stop-with needs a pid}; shift 2 ;;
            --auth-listener) auth_listener=${2:?--auth-listener needs a socket path}; shift 2 ;;
            -h|--help) usage ;;
            *) die "unknown option '$1' (see lab/README.md)" ;;
        esac
    done
    # The lab must never be reachable from outside this machine.
    [[ $listen == 127.0.0.1 || $listen == 127.0.0.2 ]] \
        || die "--listen must be 127.0.0.1 or 127.0.0.2 (the lab binds to loopback only), not '$listen'"
    case $min_tls in TLSv1|TLSv1.1|TLSv1.2|TLSv1.3) ;; *)
        die "--min-tls must be TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3, not '$min_tls'" ;; esac
    case $plaintext_auth in yes|no) ;; *) die "--plaintext-auth must be yes or no" ;; esac
    case $auth_delay in yes|no) ;; *) die "--auth-delay must be yes or no" ;; esac
    [[ $messages =~ ^[0-9]+$ ]] || die "--messages must be a number"
    if [[ -n $stop_with ]]; then
        [[ $stop_with =~ ^[0-9]+$ ]] && kill -0 "$stop_with" 2>/dev/null \
            || die "--stop-with needs the pid of a running process, not '$stop_with'"
    fi
    [[ $mailbox_mib =~ ^[0-9]+$ ]] || die "--mailbox-mib must be a number of MiB"
    [[ -n $cert && -z $key || -z $cert && -n $key ]] && die "--cert and --key go together"
    [[ -n $ciphers && $ciphers =~ [[:space:]\"] ]] && die "--ciphers must not contain spaces or quotes"
    if [[ -n $auth_listener ]]; then
        auth_listener=$(realpath -m "$auth_listener")
        [[ $auth_listener =~ ^[A-Za-z0-9._/+-]+$ ]] \
            || die "--auth-listener '$auth_listener' may only contain letters, digits and ._/+-"
        ((${#auth_listener} <= 100)) || die "--auth-listener '$auth_listener' is too long for a unix socket"
        mkdir -p "$(dirname "$auth_listener")"
    fi

    for tool in dovecot python3 openssl; do
        command -v "$tool" >/dev/null || die "$tool not found; run lab/install.sh"
    done
    # Absolute, and checked before anything is created.
    dir=$(realpath -m "$dir")
    # Paths go into dovecot.conf and ports.env unquoted: keep them to safe characters.
    [[ $dir =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR '$dir' may only contain letters, digits and ._/+-"
    # Dovecot's unix sockets live in DIR/run; their paths must fit in sun_path (108 bytes).
    ((${#dir} <= 70)) || die "DIR '$dir' is too long (${#dir} > 70 characters) for Dovecot's unix sockets; use a shorter path, e.g. under /tmp"
    mkdir -p "$dir"
    [[ -z $(master_pid "$dir") ]] || die "Dovecot already runs in $dir; run 'lab/dovecot.sh stop $dir' first"
    # A ports.env left by an earlier run must not outlive a failed start.
    rm -f "$dir/ports.env"

    # Users: as root, Dovecot's own unprivileged users plus a mail user that owns the maildirs
    # (mail owned by uid 0 is refused). As non-root, everything runs as the caller.
    local login_user internal_user internal_group uid gid chroot_login
    if [[ $EUID -eq 0 ]]; then
        id dovecot >/dev/null 2>&1 && id dovenull >/dev/null 2>&1 \
            || die "users dovecot/dovenull missing: Dovecot is not installed; run lab/install.sh"
        if ! id "$MAIL_USER" >/dev/null 2>&1; then
            # A parallel start may create it first: only the final lookup must succeed.
            useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
                "$MAIL_USER" 2>/dev/null || true
            id "$MAIL_USER" >/dev/null 2>&1 || die "could not create the mail user $MAIL_USER"
        fi
        login_user=dovenull internal_user=dovecot internal_group=dovecot chroot_login=login
        uid=$(id -u "$MAIL_USER") gid=$(id -g "$MAIL_USER")
    else
        login_user=$(id -un) internal_user=$(id -un) internal_group=$(id -gn) chroot_login=""
        uid=$(id -u) gid=$(id -g)
    fi

    if [[ -z $cert ]]; then
        bash "$LAB/certs.sh" "$dir/certs" >/dev/null
        cert=$dir/certs/server.pem key=$dir/certs/server.key ca=$dir/certs/ca.pem
    fi
    for f in "$cert" "$key" ${ca:+"$ca"}; do
        [[ -r $f ]] || die "cannot read '$f'"
    done
    cert=$(realpath "$cert") key=$(realpath "$key")
    [[ -n $ca ]] && ca=$(realpath "$ca")

    # OpenSSL 3 only speaks TLS 1.0/1.1 at security level 0 (SHA-1 handshake signatures).
    local cipher_list=$ciphers
    if [[ $min_tls == TLSv1 || $min_tls == TLSv1.1 ]]; then
        if [[ -z $cipher_list ]]; then
            cipher_list='DEFAULT:@SECLEVEL=0'
        elif [[ $cipher_list != *SECLEVEL* ]]; then
            cipher_list+=':@SECLEVEL=0'
        fi
    fi

    # Stale sockets from an earlier run would be connected to (and refuse) instead of missing.
    rm -rf "$dir/run"
    mkdir -p "$dir/state"
    # Dovecot's auth (user dovecot) and mail (mail user) processes must reach DIR.
    chmod a+x "$dir"

    # passwd-file: user:{PLAIN}password:uid:gid:gecos:home. Fields are split on ':' only, so the
    # tricky password (no ':') is stored verbatim.
    {
        printf 'alice:{PLAIN}secret:%s:%s::%s/mail/alice\n' "$uid" "$gid" "$dir"
        printf 'tricky:{PLAIN}%s:%s:%s::%s/mail/tricky\n' "$TRICKY_PASSWORD" "$uid" "$gid" "$dir"
    } >"$dir/users"
    chmod 644 "$dir/users"
    # The userdb knows every mailbox; the passdb file knows only those with a password.
    local mail_users=alice,tricky
    cp "$dir/users" "$dir/userdb"
    rm -rf "$dir/keys" "$dir/oauth2.key" "$dir/oauth2.conf.ext"
    if [[ $oauth2 == yes ]]; then
        mail_users+=,oauthonly
        printf 'oauthonly::%s:%s::%s/mail/oauthonly\n' "$uid" "$gid" "$dir" >>"$dir/userdb"
        # Dovecot's key dictionary reads <azp or default>/<alg>/<kid or default>; an HS256
        # key is stored base64-encoded, the same text the token endpoint signs with.
        mkdir -p "$dir/keys/default/HS256"
        openssl rand -base64 32 | tr -d '\n' >"$dir/oauth2.key"
        cp "$dir/oauth2.key" "$dir/keys/default/HS256/default"
        chmod -R a+rX "$dir/keys"
        chmod 644 "$dir/oauth2.key"
        printf '%s\n' 'introspection_mode = local' \
            "local_validation_key_dict = fs:posix:prefix=$dir/keys/" \
            'username_attribute = sub' >"$dir/oauth2.conf.ext"
        chmod 644 "$dir/oauth2.conf.ext"
    fi
    chmod 644 "$dir/userdb"
    printf '%s' "$TRICKY_PASSWORD" >"$dir/tricky.password"
    cat >"$dir/users.env" <<EOF
ALICE_USER=alice
ALICE_PASSWORD=secret
TRICKY_USER=tricky
TRICKY_PASSWORD='$TRICKY_PASSWORD'
TRICKY_PASSWORD_FILE=$dir/tricky.password
EOF
    if [[ $oauth2 == yes ]]; then
        printf '%s\n' OAUTH_ONLY_USER=oauthonly "OAUTH2_KEY_FILE=$dir/oauth2.key" >>"$dir/users.env"
    fi
    if [[ $EUID -eq 0 ]]; then
        runuser -u dovecot -- test -r "$dir/users" \
            || die "user dovecot cannot read $dir/users: make DIR and its parents searchable (a+x), e.g. use a DIR under /tmp"
    fi

    local owner=()
    [[ $EUID -eq 0 ]] && owner=(--uid "$uid" --gid "$gid")
    python3 "$LAB/make_mailbox.py" "$dir" --users "$mail_users" --messages "$messages" \
        --mailbox-mib "$mailbox_mib" "${owner[@]}" >/dev/null
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$MAIL_USER" -- test -w "$dir/mail/alice" \
            || die "user $MAIL_USER cannot write $dir/mail/alice: make DIR and its parents searchable (a+x)"
    fi

    local ports imap imaps pop3 pop3s out rc pid
    for _ in 1 2 3 4 5; do
        ports=$(pick_ports "$listen" 4) || die "could not find free ports on $listen"
        read -r imap imaps pop3 pop3s <<<"$ports"
        write_conf
        : >"$dir/dovecot.log"
        # Output to a file, never a pipe: the daemonised master keeps its stderr open, so a
        # caller reading our output through a pipe (e.g. $(...)) would wait forever.
        set +e
        dovecot -c "$dir/dovecot.conf" </dev/null >"$dir/dovecot.start.out" 2>&1
        rc=$?
        set -e
        out=$(<"$dir/dovecot.start.out")
        if [[ $rc -eq 0 ]]; then
            break
        fi
        # Another process took a port between our check and Dovecot's bind: pick again.
        if grep -q 'Address already in use' "$dir/dovecot.start.out" "$dir/dovecot.log"; then
            continue
        fi
        echo "$out" >&2
        tail -n 20 "$dir/dovecot.log" >&2 || true
        die "Dovecot failed to start (exit $rc); config: $dir/dovecot.conf"
    done
    [[ $rc -eq 0 ]] || die "Dovecot could not bind free ports after 5 attempts: $out"

    if ! wait_ready "$listen" "$imap" "$imaps" "$pop3" "$pop3s"; then
        tail -n 20 "$dir/dovecot.log" >&2 || true
        cmd_stop "$dir" >/dev/null
        die "Dovecot started but is not serving; log: $dir/dovecot.log"
    fi
    pid=$(master_pid "$dir")

    if [[ -n $stop_with ]]; then
        # Watchdog: a test killed before its cleanup (timeout, Ctrl-C, fail-fast) must not leave
        # Dovecot running. It ends with the master, so a later instance in DIR is never touched.
        # Its own session, so a signal to the test's process group does not take it down too.
        setsid bash "$LAB/dovecot.sh" watch "$dir" "$stop_with" "$pid" </dev/null >/dev/null 2>&1 &
    fi

    local total
    total=$(find "$dir/messages" -name '*.eml' | wc -l)
    # Bare values, except TRICKY_PASSWORD which is single-quoted (it holds no single quote).
    cat >"$dir/ports.env.tmp" <<EOF
LAB_DIR=$dir
LISTEN_ADDR=$listen
IMAP_PORT=$imap
IMAPS_PORT=$imaps
POP3_PORT=$pop3
POP3S_PORT=$pop3s
MIN_TLS=$min_tls
CA_FILE=$ca
CERT_FILE=$cert
KEY_FILE=$key
DOVECOT_PID=$pid
DOVECOT_CONF=$dir/dovecot.conf
DOVECOT_LOG=$dir/dovecot.log
AUTH_LISTENER=$auth_listener
MAIL_DIR=$dir/mail
MESSAGES_DIR=$dir/messages
MESSAGE_COUNT=$total
$(cat "$dir/users.env")
EOF
    mv -f "$dir/ports.env.tmp" "$dir/ports.env"
    cat "$dir/ports.env"
}

# Writes DIR/dovecot.conf from cmd_start's locals (bash functions see their caller's locals).
write_conf() {
    local ssl_cipher_line="" many_block="" plaintext
    [[ -n $cipher_list ]] && ssl_cipher_line="ssl_cipher_list = $cipher_list"
    [[ $plaintext_auth == yes ]] && plaintext=no || plaintext=yes
    local userip=1000
    if [[ $many == yes ]]; then
        userip=100000
        # Thousands of sessions (lab.md): one imap process serves many clients.
        many_block=$(cat <<'EOF'
default_client_limit = 20000
default_vsz_limit = 2G
service imap {
  # Without service_count = 0, client_limit > 1 is ignored and logins fail ("process_limit reached?").
  service_count = 0
  client_limit = 1000
  process_limit = 50
}
EOF
)
    fi
    local auth_delay_line="" anvil_block="" anvil_body=""
    # Unprivileged, Dovecot cannot chroot; as root, anvil keeps its default chroot.
    [[ $EUID -ne 0 ]] && anvil_body+=$'  chroot =\n'
    if [[ $auth_delay == no ]]; then
        # Tests fail logins on purpose. Dovecot's defaults answer each failure after 2 s and then
        # delay every login from that IP (the gateway's: 127.0.0.1) by up to 15 s, which makes
        # later tests slow and flaky. Mode 0 on the penalty socket is Dovecot's off switch.
        auth_delay_line="auth_failure_delay = 0"
        anvil_body+=$'  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n'
    fi
    [[ -n $anvil_body ]] && anvil_block=$'service anvil {\n'"$anvil_body}"
    # Dovecot SASL for a lab Postfix (smtpd_sasl_type = dovecot): the auth service answers on
    # one more socket. World-writable, because Postfix's smtpd connects as user postfix and the
    # lab holds only test accounts.
    local auth_block=""
    [[ -n $auth_listener ]] && auth_block=$'service auth {\n  unix_listener '"$auth_listener"$' {\n    mode = 0666\n  }\n}'
    local login_tuning="" mechanisms="plain login" oauth2_passdb="" password_mechanisms=""
    if [[ $oauth2 == yes ]]; then
        mechanisms="plain login xoauth2 oauthbearer"
        # Tokens are checked here, locally, with the key in DIR/keys; passwords never reach it.
        oauth2_passdb=$'passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = '"$dir"$'/oauth2.conf.ext\n}'
        # Passwords only for PLAIN/LOGIN: else a "token" equal to a password would log in.
        password_mechanisms="mechanisms = plain login"
    fi
    [[ $many == yes ]] && login_tuning=$'  service_count = 0\n  client_limit = 10000\n  process_min_avail = 2'
    cat >"$dir/dovecot.conf" <<EOF
# Generated by lab/dovecot.sh: a private instance. Nothing here refers to /etc/dovecot.
protocols = imap pop3
listen = $listen
base_dir = $dir/run
state_dir = $dir/state
log_path = $dir/dovecot.log
# %k adds the TLS version and cipher to every login line.
login_log_format_elements = user=<%u> method=%m rip=%r lip=%l mpid=%e %c %k session=<%{session}>
auth_verbose = yes
$auth_delay_line
auth_mechanisms = $mechanisms

default_login_user = $login_user
default_internal_user = $internal_user
default_internal_group = $internal_group
first_valid_uid = $uid
mail_uid = $uid
mail_gid = $gid
mail_location = maildir:$dir/mail/%u
mail_max_userip_connections = $userip

ssl = yes
ssl_cert = <$cert
ssl_key = <$key
ssl_dh = </usr/share/dovecot/dh.pem
ssl_min_protocol = $min_tls
$ssl_cipher_line
disable_plaintext_auth = $plaintext

$oauth2_passdb
passdb {
  driver = passwd-file
  args = scheme=PLAIN $dir/users
  $password_mechanisms
}
userdb {
  driver = passwd-file
  args = $dir/userdb
}

service imap-login {
  chroot = $chroot_login
  inet_listener imap {
    port = $imap
  }
  inet_listener imaps {
    port = $imaps
    ssl = yes
  }
$login_tuning
}
service pop3-login {
  chroot = $chroot_login
  inet_listener pop3 {
    port = $pop3
  }
  inet_listener pop3s {
    port = $pop3s
    ssl = yes
  }
$login_tuning
}
$many_block
$anvil_block
$auth_block
EOF
}

[[ $# -ge 2 ]] || usage
command=$1 dir=$2
shift 2
case $command in
    start) cmd_start "$dir" "$@" ;;
    stop) [[ $# -eq 0 ]] || die "stop takes no options"; cmd_stop "$dir" ;;
    watch) [[ $# -eq 2 ]] || usage; cmd_watch "$dir" "$@" ;;
    *) usage ;;
esac
