# lab/lifetime.sh: sourced by the lab scripts that run a server in the background (dovecot.sh,
# haproxy.sh): whether a process still runs, stopping it, and the wait of the watchdog that
# stops a server once the test that started it is gone.

# True while pid $1 runs. A zombie counts as gone: a daemon's parent is init, which may reap
# it late.
alive() {
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat:0:1} != Z ]]
}

# SIGTERM to pid $1, then SIGKILL if it still runs after 5 s.
terminate() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        alive "$pid" || break
        sleep 0.05
    done
    alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
}

# Waits while both process $1 (the test) and process $2 (its server) run; true when the test
# went first, so the watchdog should stop the server.
outlived_by() {
    local parent=$1 server=$2
    while alive "$parent" && alive "$server"; do
        sleep 1
    done
    ! alive "$parent"
}
