# bench/processes.sh: what the benchmark scripts share, sourced by them: stopping the processes
# they start, free ports, waiting for a listener without connecting to it, CPU time from /proc,
# the rotating order of alternating rounds, stunnel's configs, the tools a run needs and its
# work folder. The sourcing script defines die(), and WORK (make_work_dir) before the rest runs.

require_tools() { # TOOL...: stops the run when one is missing (lab/install.sh installs them all)
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] \
            || die "$tool not found (the lab's install script installs it)"
    done
}

make_work_dir() { # PREFIX: prints a new folder /tmp/PREFIX.XXXXXX
    # Short, so Dovecot's unix sockets fit in sun_path (lab/dovecot.sh checks it); searchable,
    # so Dovecot's unprivileged users reach the lab inside it (mktemp makes it 0700).
    local dir
    dir=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod a+x "$dir"
    echo "$dir"
}

keep_or_remove_work() { # RC NAME: at exit, WORK is kept (and said so) with BENCH_KEEP=1 or after a failure
    if [[ ${BENCH_KEEP:-0} == 1 || $1 -ne 0 ]]; then
        echo "$2: logs and results kept in $WORK" >&2
    else
        rm -rf "$WORK"
    fi
}

stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Free ports below the ephemeral range (lab/free_ports.py): thousands of outgoing
# connections in this run must not take a port a listener is about to bind.
pick_ports() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/../lab/free_ports.py" 127.0.0.1 "$1"
}

# Waits until 127.0.0.1:PORT is in LISTEN state, without connecting: a probe connection
# would become a session record in the gateway and a log line in stunnel.
wait_listening() {
    local port=$1 pid=$2 what=$3 hex i
    hex=$(printf '0100007F:%04X' "$port")
    for ((i = 0; i < 300; i++)); do
        awk -v a="$hex" '$2 == a && $4 == "0A" {found=1} END {exit !found}' /proc/net/tcp && return 0
        kill -0 "$pid" 2>/dev/null || die "$what exited at start; see $WORK"
        sleep 0.1
    done
    die "$what did not listen on port $port within 30 s"
}

CLK_TCK=$(getconf CLK_TCK)
thread_cpu_ticks() { # PID NAME: user + system CPU time of PID's threads named NAME, in ticks
    local total=0 task
    for task in /proc/"$1"/task/*; do
        [[ $(<"$task/comm") == "$2" ]] || continue
        total=$((total + $(sed 's/.*) //' "$task/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}

cpu_ticks() { # user + system CPU time of the given pids (all their threads, live and ended), in ticks
    local total=0 pid
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat, counted after the ")" that ends the command name.
        total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
    done
    echo "$total"
}

rotated() {
    local r=$1; shift
    local paths=("$@") n=$# i
    for ((i = 0; i < n; i++)); do echo "${paths[(i + r) % n]}"; done
}

# stunnel as two chained services, the way people put it in front of a TLS-only server: TLS
# accept on FRONT_PORT (front), then a TLS connect to 127.0.0.1:UPSTREAM_PORT (back), verified
# with CA_FILE for localhost, the upstream TLS 1.3 suite pinned to SUITE. Two processes rather
# than one: one process would hold 4 descriptors per session, 20,000 at 5,000 idle sessions,
# which is this machine's hard per-process limit. syslog = no: without /dev/log (containers)
# stunnel logs every line to /dev/console as well, 2-7 ms a write; the file log stays. Each LINE
# goes into both services (e.g. "protocol = smtp" for STARTTLS on both legs).
write_stunnel_pair() { # NAME UPSTREAM_PORT SUITE [LINE...]: $WORK/stunnel/{front,back}.conf
    local name=$1 upstream_port=$2 suite=$3
    shift 3
    local extra
    extra=$(printf '%s\n' "$@")
    cat >"$WORK/stunnel/front.conf" <<EOF
foreground = yes
pid =
syslog = no
output = $WORK/stunnel/front.log
[$name-front]
accept = 127.0.0.1:$FRONT_PORT
connect = 127.0.0.1:$BACK_PORT
cert = $CERT_FILE
key = $KEY_FILE
sslVersionMin = TLSv1.2
$extra
EOF
    cat >"$WORK/stunnel/back.conf" <<EOF
foreground = yes
pid =
syslog = no
output = $WORK/stunnel/back.log
[$name-back]
client = yes
accept = 127.0.0.1:$BACK_PORT
connect = 127.0.0.1:$upstream_port
sslVersionMin = TLSv1.2
verifyChain = yes
CAfile = $CA_FILE
checkHost = localhost
ciphersuites = $suite
$extra
EOF
}
