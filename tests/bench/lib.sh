# Helpers shared by bench_core.sh and bench_db.sh, sourced after each sets
# RUN, RES, PORT, WRK_T and WRK_C and defines say().  Bash, like them.
# shellcheck shell=bash

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.  PID is a
# child of this shell, so it is reaped too.
stop_pid() {
    local pid=$1 secs=$2 i
    [ -n "$pid" ] || return 0
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "warning: pid $pid did not stop within ${secs}s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    return 0
}

# Pids of processes whose executable lives under the run directory: fngate's
# instances and the spawn-fcgi children.  Nothing else can run from there.
pids_under_run() {
    local p exe
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null) || continue
        case "$exe" in "$RUN"/*) printf '%s\n' "${p#/proc/}" ;; esac
    done
}

# A free TCP port on 127.0.0.1 (nothing answers a connect to it).
free_port() {
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
    done
    return 1
}

# wait_until SECONDS COMMAND...: polls COMMAND every 20 ms.
wait_until() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 50; i++)); do
        "$@" && return 0
        sleep 0.02
    done
    return 1
}

# Children of PID whose executable is EXE.
children_with_exe() {
    local parent=$1 exe=$2 c n=0
    for c in $(pgrep -P "$parent" 2>/dev/null); do
        [ "$(readlink "/proc/$c/exe" 2>/dev/null)" = "$exe" ] && n=$((n + 1))
    done
    printf '%s\n' "$n"
}

# Worker processes of php-fpm pool POOL (children of the master).
php_workers() {
    local pool=$1 c n=0
    for c in $(pgrep -P "$PHP_PID" 2>/dev/null); do
        tr '\0' ' ' 2>/dev/null <"/proc/$c/cmdline" | grep -q "pool $pool\b" && n=$((n + 1))
    done
    printf '%s\n' "$n"
}

# parse_wrk FILE -> "req/s p50_ms p99_ms requests non2xx socket_errors"
parse_wrk() {
    awk '
    function ms(v) {
        if (v ~ /us$/) return v / 1000
        if (v ~ /ms$/) return v + 0
        if (v ~ /m$/) return v * 60000
        if (v ~ /s$/) return v * 1000
        return v + 0
    }
    /^Requests\/sec:/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    / requests in / { reqs = $1 }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
    END {
        if (rps == "") { print "0 nan nan 0 0 0"; exit }
        printf "%.0f %.3f %.3f %d %d %d\n", rps, p50, p99, reqs, non2xx + 0, errs + 0
    }' "$1"
}

# run_wrk PATH SECONDS OUTFILE [wrk args...]: wrk in the background so that
# Ctrl-C and SIGTERM reach the trap at once.
# shellcheck disable=SC2153 # PORT is the sourcing script's
run_wrk() {
    local path=$1 secs=$2 out=$3
    shift 3
    wrk -t"$WRK_T" -c"$WRK_C" -d"${secs}s" "$@" "http://127.0.0.1:$PORT$path" >"$out" 2>&1 &
    WRK_PID=$!
    wait "$WRK_PID"
    local rc=$?
    WRK_PID=""
    return $rc
}

# cpu_busy SECONDS: percentage of all CPUs busy over the next SECONDS (/proc/stat).
cpu_busy() {
    local a b
    a=$(awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6 }' /proc/stat)
    sleep "$1"
    b=$(awk '/^cpu / { t = 0; for (i = 2; i <= 9; i++) t += $i; print t, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        dt = y[1] - x[1]; di = y[2] - x[2]; v = 0; if (dt > 0) v = 100 * (dt - di) / dt; printf "%.0f\n", v }'
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0 || a == "" || a == "nan") print "nan"; else printf "%.2f\n", a / b }'; }

verdict() { # verdict VALUE OP LIMIT
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "nan" || v == "") { print "MISS"; exit }
        ok = (op == ">=") ? (v + 0 >= l + 0) : (op == ">") ? (v + 0 > l + 0) : (op == "<=") ? (v + 0 <= l + 0) : (v + 0 == l + 0)
        print ok ? "PASS" : "MISS" }'
}
