# bench/processes.sh: what the benchmark scripts share, sourced by them: stopping the processes
# they start, free ports, waiting for a listener without connecting to it, CPU time from /proc,
# and the rotating order of alternating rounds. The sourcing script defines die() and WORK.

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

# Free ports below the ephemeral range (as lab/dovecot.sh does): thousands of outgoing
# connections in this run must not take a port a listener is about to bind.
pick_ports() {
    python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
ports = []
while len(ports) < n:
    p = random.randint(10000, low - 1)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        if p not in ports:
            ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, ports)))
EOF
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
