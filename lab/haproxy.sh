#!/usr/bin/env bash
# lab/haproxy.sh: a private, throwaway HAProxy (TCP mode) in front of gateway listeners, as a
# load balancer that sends the PROXY protocol header.
#
#   lab/haproxy.sh start DIR [--v2-to ADDR:PORT] [--v1-to ADDR:PORT] [--plain-to ADDR:PORT]
#                            [--stop-with PID]
#   lab/haproxy.sh stop DIR
#
# Each --*-to adds a frontend on 127.0.0.1 (a free port) whose backend is ADDR:PORT, reached with
# `send-proxy-v2`, `send-proxy` (v1) or no header at all. HAProxy runs in the foreground of its
# own background process, logging one line per connection to DIR/haproxy.log; its pid is in
# DIR/haproxy.pid. DIR/ports.env says which ports (see lab/README.md). /etc/haproxy and the
# system service are never read or touched.
set -euo pipefail

die() { echo "haproxy.sh: $*" >&2; exit 1; }

usage() {
    sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# True while pid $1 runs and is not a zombie.
alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# pid of DIR's HAProxy if it runs. The cmdline check guards against a recycled pid.
haproxy_pid() {
    local pidfile="$1/haproxy.pid" pid
    [[ -s $pidfile ]] || return 0
    { read -r pid <"$pidfile"; } 2>/dev/null || return 0
    [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 0
    if tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$1/haproxy.cfg"; then
        echo "$pid"
    fi
}

cmd_stop() {
    local dir=$1 pid i
    [[ -d $dir ]] || { echo "haproxy.sh: nothing to stop in $dir"; return 0; }
    dir=$(realpath "$dir")
    pid=$(haproxy_pid "$dir")
    rm -f "$dir/ports.env"
    if [[ -z $pid ]]; then
        echo "haproxy.sh: not running in $dir"
        return 0
    fi
    # SIGUSR1 would wait for open connections (soft stop); tests want it gone now.
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.05
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    echo "haproxy.sh: stopped HAProxy (pid $pid) in $dir"
}

# Internal (started by --stop-with): stop DIR's HAProxy once process $2 is gone, unless
# HAProxy $3 went first.
cmd_watch() {
    local dir=$1 parent=$2 proxy=$3
    while alive "$parent" && alive "$proxy"; do
        sleep 1
    done
    if ! alive "$parent" && [[ $(haproxy_pid "$dir") == "$proxy" ]]; then
        cmd_stop "$dir"
    fi
}

# Prints N distinct free TCP ports on 127.0.0.1 (the kernel's choice, so free right now).
pick_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

# Waits until every port listens on 127.0.0.1, without connecting: a connection would be
# relayed to the gateway and recorded there as a session.
wait_listening() {
    python3 - "$@" <<'EOF'
import sys, time
want = {"0100007F:%04X" % int(p) for p in sys.argv[1:]}
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    have = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        f = line.split()
        if f[3] == "0A":  # TCP_LISTEN
            have.add(f[1])
    if want <= have:
        sys.exit(0)
    time.sleep(0.05)
sys.exit("HAProxy did not listen within 10 s")
EOF
}

cmd_start() {
    local dir=$1; shift
    local v2_to="" v1_to="" plain_to="" stop_with=""
    while [[ $# -gt 0 ]]; do
        case $1 in
            --v2-to) v2_to=${2:?--v2-to needs ADDR:PORT}; shift 2 ;;
            --v1-to) v1_to=${2:?--v1-to needs ADDR:PORT}; shift 2 ;;
            --plain-to) plain_to=${2:?--plain-to needs ADDR:PORT}; shift 2 ;;
            --stop-with) stop_with=${2:?--stop-with needs a pid}; shift 2 ;;
            -h|--help) usage ;;
            *) die "unknown option '$1' (see lab/README.md)" ;;
        esac
    done
    local target
    for target in $v2_to $v1_to $plain_to; do
        # Loopback only: the lab must never relay to or from another machine.
        [[ $target =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+:[0-9]+$ ]] \
            || die "a target must be a loopback ADDR:PORT such as 127.0.0.1:10993, not '$target'"
    done
    [[ -n $v2_to$v1_to$plain_to ]] || die "name at least one target (--v2-to, --v1-to, --plain-to)"
    if [[ -n $stop_with ]]; then
        [[ $stop_with =~ ^[0-9]+$ ]] && kill -0 "$stop_with" 2>/dev/null \
            || die "--stop-with needs the pid of a running process, not '$stop_with'"
    fi
    for tool in haproxy python3; do
        command -v "$tool" >/dev/null || die "$tool not found; run lab/install.sh"
    done
    dir=$(realpath -m "$dir")
    [[ $dir =~ ^[A-Za-z0-9._/+-]+$ ]] || die "DIR '$dir' may only contain letters, digits and ._/+-"
    mkdir -p "$dir"
    [[ -z $(haproxy_pid "$dir") ]] || die "HAProxy already runs in $dir; run 'lab/haproxy.sh stop $dir' first"
    rm -f "$dir/ports.env"

    local v2_port v1_port plain_port
    read -r v2_port v1_port plain_port <<<"$(pick_ports 3)"
    {
        cat <<EOF
# Generated by lab/haproxy.sh: a private instance. Nothing here refers to /etc/haproxy.
global
    # One line per connection on stderr (DIR/haproxy.log), without a syslog header.
    log stderr format raw local0 info
    maxconn 2000
    nbthread 1

defaults
    mode tcp
    log global
    # What HAProxy saw: the client, and its own address towards the backend.
    log-format "client=%ci:%cp frontend=%ft proxy_source=%bi:%bp server=%si:%sp bytes_from_client=%U bytes_to_client=%B termination=%ts"
    timeout connect 5s
    timeout client 120s
    timeout server 120s
EOF
        frontend() {
            [[ -n $2 ]] || return 0
            printf '\nfrontend %s\n    bind 127.0.0.1:%s\n    default_backend %s_gateway\n' "$1" "$3" "$1"
            printf 'backend %s_gateway\n    server gateway %s %s\n' "$1" "$2" "$4"
        }
        frontend v2 "$v2_to" "$v2_port" send-proxy-v2
        frontend v1 "$v1_to" "$v1_port" send-proxy
        frontend plain "$plain_to" "$plain_port" ""
    } >"$dir/haproxy.cfg"
    haproxy -c -q -f "$dir/haproxy.cfg" || die "HAProxy refused $dir/haproxy.cfg"

    : >"$dir/haproxy.log"
    # -db: the foreground, so the log goes to our file; its own process in the background.
    haproxy -db -f "$dir/haproxy.cfg" </dev/null >>"$dir/haproxy.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/haproxy.pid"
    local ports=()
    [[ -n $v2_to ]] && ports+=("$v2_port")
    [[ -n $v1_to ]] && ports+=("$v1_port")
    [[ -n $plain_to ]] && ports+=("$plain_port")
    if ! wait_listening "${ports[@]}" || ! alive "$pid"; then
        tail -n 20 "$dir/haproxy.log" >&2 || true
        cmd_stop "$dir" >/dev/null
        die "HAProxy did not start; log: $dir/haproxy.log"
    fi
    if [[ -n $stop_with ]]; then
        # Watchdog: a test killed before its cleanup must not leave HAProxy running. Its own
        # session, so a signal to the test's process group does not take it down too.
        setsid bash "${BASH_SOURCE[0]}" watch "$dir" "$stop_with" "$pid" </dev/null >/dev/null 2>&1 &
    fi
    cat >"$dir/ports.env.tmp" <<EOF
HAPROXY_DIR=$dir
HAPROXY_PID=$pid
HAPROXY_CONF=$dir/haproxy.cfg
HAPROXY_LOG=$dir/haproxy.log
V2_PORT=${v2_to:+$v2_port}
V1_PORT=${v1_to:+$v1_port}
PLAIN_PORT=${plain_to:+$plain_port}
EOF
    mv -f "$dir/ports.env.tmp" "$dir/ports.env"
    cat "$dir/ports.env"
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
