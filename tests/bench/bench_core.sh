#!/usr/bin/env bash
# bench_core.sh: the fngate core benchmark (issue 2).  Run by hand, never in CI.
#
#     tests/bench/bench_core.sh [--quick] [--no-build] [--keep]
#
#   --quick     6 warm rounds of 3 s wrk runs instead of 10 of 5 s, 5 cold-start
#               rounds instead of 15
#   --no-build  skip `make`; use the binaries already built in the tree
#   --keep      keep the temporary run directory (configs, sockets, logs)
#   --warm-only only (a), the warm throughput (and --diag's /fn-direct): one
#               call stays under the quiet lock's 5 minutes
#   --diag      also measure /fn-direct: fngate's hello socket behind a plain
#               nginx location (no fngate.inc), to tell nginx-side cost from
#               function-side cost when the throughput target is missed
#   --only LIST run only these parts, comma-separated, out of warm, cold, idle,
#               breakdown, burst, deadline, overload (or their letters a..g
#               below), e.g. --only cold,burst,breakdown: one call of the
#               cold-start parts stays within a few minutes; a target whose
#               part did not run says SKIP
#
# One nginx (2 workers, no access log) in front of three FastCGI back ends:
#   /fn/hello   fngate's hello function (max_instances = 8)
#   /fn/hellospare  (a) only: the same hello with its handler.so on a second
#               fngate with spare_processes = 8, so that every instance is
#               spare-born (fngate-spare, dynamically linked, dlopen()s
#               handler.so), through the same include and its own generated
#               exact location
#   /bare       bare_hello.c, plain libfcgi, spawn-fcgi -F 8   (the speed limit)
#   /php        hello.php on php-fpm, pm = ondemand, max_children = 8
# and it measures
#   (a) warm throughput: wrk -t2 -c32 -d5s --latency (3 s with --quick) after a
#       1 s warm-up, in 10 rounds (6) whose order reverses every other round
#       (A B C D, D C B A, ...); the fngate/bare ratios printed are the median
#       and range of the per-round ratios, fngate and bare measured seconds apart
#   (b) cold start: median time of the first request to a function with no
#       process, fngate vs php-fpm ondemand, plus the warm (second) request
#   (c) idle cost: RSS of an fngate with 100 functions and no instance
#   (d) cold-start breakdown (issue 11): connect -> supervisor wake-up ->
#       the start -> ready in accept() -> response, from the supervisor's
#       debug trace and the client's clock (coldtrace.py), through a spare
#       process (the assignment, the spare's set-up incl. the sandbox, the
#       dlopen of handler.so, the SDK's start) and through the exec (vfork,
#       child set-up, execve, SDK start), sandbox on and off; and the floors under it
#       (spawn_floor.c: vfork+exec of a trivial static program, fork of a
#       started process as a template/zygote design would, one queue query)
#   (e) cold burst: 64 simultaneous requests to a function with no process,
#       max_instances 8 / max_children 8: slowest cold minus the median
#       slowest of 3 warm bursts once the process count holds, per round,
#       fngate vs php-fpm ondemand (burst.c), 20 rounds (10 with --quick);
#       and where a cold burst's time goes (burstrace.py, a debug fngate)
#   (f) queue_timeout: how late after the 500 ms deadline the 503 comes
#   (g) overload: 200 callers of a max_instances 1, queue_size 4 function:
#       the share of rejected requests that are 503 (never 502)
# and prints a summary with each target PASS or MISS.  Raw wrk output, cold
# samples, logs and the summary go to tests/bench/results/<date>-core/.
#
# When run as root, nginx workers, fngate instances, spawn-fcgi children and
# php-fpm workers all run as nobody:nogroup.  Everything this script starts is
# stopped on exit, Ctrl-C included.  It never installs anything: a missing
# tool is reported with the apt-get line that provides it.

set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT=$(cd "$BENCH_DIR/../.." && pwd)

DIAG=0
WARM_ONLY=0
ONLY=""
want_only=0
for arg in "$@"; do
    if [ "$want_only" = 1 ]; then ONLY=$arg; want_only=0; continue; fi
    common_arg "$arg" && continue
    case "$arg" in
        --only) want_only=1 ;;
        --only=*) ONLY=${arg#--only=} ;;
        --diag) DIAG=1 ;;
        --warm-only) WARM_ONLY=1; ONLY=warm ;;
        *) bad_arg "$arg" ;;
    esac
done
[ "$want_only" = 1 ] && { echo "bench_core.sh: --only needs a list (try --help)" >&2; exit 2; }
# part NAME: whether part NAME (warm, cold, idle, breakdown, burst, deadline,
# overload) runs
declare -A PART_LETTER=([warm]=a [cold]=b [idle]=c [breakdown]=d [burst]=e [deadline]=f [overload]=g)
for w in ${ONLY//,/ }; do
    case "$w" in
        warm|cold|idle|breakdown|burst|deadline|overload|a|b|c|d|e|f|g) ;;
        *) echo "bench_core.sh: --only: unknown part '$w' (warm, cold, idle, breakdown, burst, deadline, overload)" >&2; exit 2 ;;
    esac
done
part() {
    # (f) and (g) need the test function: without it they did not run
    case $1 in deadline | overload) [ "${HAVE_TESTFN:-1}" = 1 ] || return 1 ;; esac
    [ -z "$ONLY" ] && return 0
    case ",$ONLY," in *",$1,"*|*",${PART_LETTER[$1]},"*) return 0 ;; esac
    return 1
}

WARM_S=3                    # warm-up before every measured wrk run
# (a) runs W_ROUNDS rounds of every target, RUN_S seconds each
if [ "$QUICK" = 1 ]; then RUN_S=3; COLD_N=5; W_ROUNDS=6; else RUN_S=5; COLD_N=15; W_ROUNDS=10; fi
WRK_T=2
WRK_C=32
MAX_INST=8
IDLE_FNS=100

# Targets (issues 2 and 11).
T_THROUGHPUT=0.97           # fngate/bare req/s, at least
T_COLD=0.45                 # fngate/php cold-start median, at most
T_LATE_MS=50                # queue_timeout's 503 after the deadline, at most
BURST_N=64
BURST_ROUNDS=20             # (e): each is a cold and BURST_WARM warm bursts per back end
[ "$QUICK" = 1 ] && BURST_ROUNDS=10
BURST_WARM=3
BURST_SETTLE=6
BURST_GAP_MS=150
BURST_TRACE=3               # (e)'s traced cold bursts
T_RSS_MB=8                  # fngate RSS with 100 idle functions, at most

# --- dependencies -------------------------------------------------------------

need_stack_tools
need_report
PHP_FPM=$(command -v php-fpm8.2)
NGINX=$(command -v nginx)
php_opcache

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

# --- build --------------------------------------------------------------------

STAMP=$(date +%Y%m%d-%H%M%S)
RES="$BENCH_DIR/results/$STAMP-core"
mkdir -p "$RES" || die "cannot create $RES"

FNGATE="$ROOT/gateway/fngate"
HELLO="$ROOT/functions/hello/handler"
HELLO_SO="$ROOT/functions/hello/handler.so"   # the shared-object build spare processes load
build_tree
[ -x "$FNGATE" ] || die "$FNGATE is missing: build the project first"
[ -x "$HELLO" ] || die "$HELLO is missing: build the project first"

# --- run directory and cleanup ------------------------------------------------

make_run_dir fngate-bench

NGINX_PID=""
FNGATE_PID=""
TRACE_PID=""
BTRACE_PID=""
IDLE_PID=""
SPARE_GW_PID=""
BARE_PIDS=""

cleanup() {
    local p
    cleanup_once || return
    stop_pid "$NGINX_PID" 5
    stop_pid "$FNGATE_PID" 15
    stop_pid "$SPARE_GW_PID" 15
    stop_pid "$IDLE_PID" 15
    stop_pid "$TRACE_PID" 15
    stop_pid "$BTRACE_PID" 15
    stop_php
    for p in $BARE_PIDS $(pids_under_run); do kill -KILL "$p" 2>/dev/null; done
    # keep the logs next to the results
    [ -f "$RUN/fngate.log" ] && cp "$RUN/fngate.log" "$RES/fngate.log"
    [ -f "$RUN/fngate-spare.log" ] && cp "$RUN/fngate-spare.log" "$RES/fngate-spare.log"
    [ -f "$RUN/fngate-idle.log" ] && cp "$RUN/fngate-idle.log" "$RES/fngate-idle.log"
    [ -f "$RUN/fngate-trace.log" ] && cp "$RUN/fngate-trace.log" "$RES/fngate-trace.log"
    [ -f "$RUN/nginx/error.log" ] && cp "$RUN/nginx/error.log" "$RES/nginx-error.log"
    [ -f "$RUN/php/php-fpm.log" ] && cp "$RUN/php/php-fpm.log" "$RES/php-fpm.log"
    remove_run_dir
}
trap_cleanup

# --- helpers ------------------------------------------------------------------

fngate_cold() { [ "$(fn_instances "$FNGATE_PID" hellocold "$RUN/functions/hellocold/handler")" = 0 ]; }
php_cold() { [ -z "$(pgrep -P "$PHP_PID")" ]; }   # no worker at all, in any pool
both_cold() { fngate_cold && php_cold; }

# CPU clock ticks (utime + stime) used so far by PIDs, summed; a process that
# is gone counts 0.  Under a shared machine's contention, CPU per request is
# steadier than req/s: it is what the include and the back end cost.
cpu_ticks() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    printf '%s\n' "$t"
}
# The processes of target NAME's back end (for fngate: the gateway and its
# instances).
backend_pids() {
    case "$1" in
        fngate|direct) printf '%s\n' "$FNGATE_PID $(pgrep -P "$FNGATE_PID" 2>/dev/null)" ;;
        spare) printf '%s\n' "$SPARE_GW_PID $(pgrep -P "$SPARE_GW_PID" 2>/dev/null)" ;;
        bare) printf '%s\n' "$BARE_PIDS" ;;
        php) printf '%s\n' "$PHP_PID $(pgrep -P "$PHP_PID" 2>/dev/null)" ;;
    esac
}
# The processes that serve target NAME: nginx and its back end.
target_pids() {
    printf '%s\n' "$NGINX_PID $(pgrep -P "$NGINX_PID" 2>/dev/null) $(backend_pids "$1")"
}
# Context switches (voluntary and involuntary) of PIDS so far, summed: each
# is a sleep or a preemption, which a change in how a connection ends can
# add to a request without showing in its instructions.
ctx_switches() {
    local p t=0 v
    for p in "$@"; do
        v=$(awk '/^(non)?voluntary_ctxt_switches:/ { s += $2 } END { print s + 0 }' \
            "/proc/$p/status" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    printf '%s\n' "$t"
}
CLK_TCK=$(getconf CLK_TCK)
# Instances of hellospare the second gateway has that are spare-born:
# fngate-spare processes that took its name on.
spare_born() {
    local c n=0
    for c in $(pgrep -P "$SPARE_GW_PID" 2>/dev/null); do
        [ "$(basename "$(readlink "/proc/$c/exe" 2>/dev/null)")" = fngate-spare ] \
            && [ "$(cat "/proc/$c/comm" 2>/dev/null)" = hellospare ] && n=$((n + 1))
    done
    printf '%s\n' "$n"
}

# median of the numbers on stdin
median() {
    sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- stage everything ---------------------------------------------------------

mkdir -p "$RUN/functions/hello" "$RUN/functions/hellocold" "$RUN/functions/helloburst" "$RUN/sock" \
         "$RUN/bare" "$RUN/php" "$RUN/nginx" "$RUN/idle/functions" "$RUN/idle/sock"
cp "$HELLO" "$RUN/functions/hello/handler"
cp "$HELLO" "$RUN/functions/hellocold/handler"
cp "$HELLO" "$RUN/functions/helloburst/handler"
mkdir -p "$RUN/btrace/functions/helloburst" "$RUN/btrace/sock"
cp "$HELLO" "$RUN/btrace/functions/helloburst/handler"
# The default configuration: spare_processes = 1 and a handler.so, so a cold
# start goes through a spare process (copied after the handler: fngate
# ignores a handler.so older than its handler).
cp "$HELLO_SO" "$RUN/functions/hellocold/handler.so"
cp "$HELLO_SO" "$RUN/functions/helloburst/handler.so"
cp "$HELLO_SO" "$RUN/btrace/functions/helloburst/handler.so"
# (a)'s spare-born hello: a second fngate whose every instance is spare-born
mkdir -p "$RUN/spare/functions/hellospare" "$RUN/spare/sock"
cp "$HELLO" "$RUN/spare/functions/hellospare/handler"
cp "$HELLO_SO" "$RUN/spare/functions/hellospare/handler.so"
TESTFN="$ROOT/tests/integration/testfn"
HAVE_TESTFN=0
if [ -x "$TESTFN" ]; then
    HAVE_TESTFN=1
    mkdir -p "$RUN/functions/slow" "$RUN/functions/over"
    cp "$TESTFN" "$RUN/functions/slow/handler"
    cp "$TESTFN" "$RUN/functions/over/handler"
else
    say "note: $TESTFN is not built (make check builds it): (f) and (g) are skipped"
fi
# The breakdown: the same function through a spare process (tracesb,
# tracenosb: with a handler.so) and through the exec (execsb, execnosb).
TRACE_FNS="tracesb tracenosb execsb execnosb"
for fn in $TRACE_FNS; do
    mkdir -p "$RUN/trace/functions/$fn"
    cp "$HELLO" "$RUN/trace/functions/$fn/handler"
done
cp "$HELLO_SO" "$RUN/trace/functions/tracesb/handler.so"
cp "$HELLO_SO" "$RUN/trace/functions/tracenosb/handler.so"
mkdir -p "$RUN/trace/sock"
printf 'int main(void) { return 0; }\n' >"$RUN/trivial.c"
cc -O2 -static -o "$RUN/trivial" "$RUN/trivial.c" >>"$RES/cc.log" 2>&1 \
    && cc -O2 -Wall -o "$RUN/spawn_floor" "$BENCH_DIR/spawn_floor.c" >>"$RES/cc.log" 2>&1 \
    || say "note: cannot build spawn_floor.c (static libc missing?): its floors are skipped"
cp "$BENCH_DIR/hello.php" "$RUN/php/hello.php"
cp "$ROOT/nginx/fngate.inc" "$RUN/nginx/fngate.inc"
say "building: cc -O2 tests/bench/bare_hello.c -lfcgi, tests/bench/burst.c"
cc -O2 -Wall -o "$RUN/bare/bare_hello" "$BENCH_DIR/bare_hello.c" -lfcgi >"$RES/cc.log" 2>&1 \
    || { cat "$RES/cc.log" >&2; die "cannot build bare_hello.c"; }
cc -O2 -Wall -o "$RUN/burst" "$BENCH_DIR/burst.c" >>"$RES/cc.log" 2>&1 \
    || { cat "$RES/cc.log" >&2; die "cannot build burst.c"; }
for ((i = 0; i < IDLE_FNS; i++)); do
    n=$(printf 'fn%03d' "$i")
    mkdir -p "$RUN/idle/functions/$n"
    ln "$RUN/functions/hello/handler" "$RUN/idle/functions/$n/handler" 2>/dev/null \
        || cp "$RUN/functions/hello/handler" "$RUN/idle/functions/$n/handler"
done

# shellcheck disable=SC2034 # RUN_USER is for lib.sh's nginx_conf_head
if [ "$IS_ROOT" = 1 ]; then RUN_USER=nobody; RUN_GROUP=nogroup; else RUN_USER=$(id -un); RUN_GROUP=$(id -gn); fi

# fngate: hello for throughput, hellocold (idle_timeout = 100ms) for cold start
cat >"$RUN/fngate.conf" <<EOF
; written by tests/bench/bench_core.sh
[gateway]
functions_dir = $RUN/functions
socket_dir = $RUN/sock
socket_mode = 0660
socket_group = $RUN_GROUP
log_level = info

[defaults]
max_instances = $MAX_INST
min_instances = 0
idle_timeout = 10s
request_timeout = 30s

[hello]
max_instances = $MAX_INST
idle_timeout = 10s

[hellocold]
max_instances = $MAX_INST
idle_timeout = 100ms

; (e): as long as php-fpm's process_idle_timeout, so the warm bursts find
; every instance the cold burst started
[helloburst]
max_instances = $MAX_INST
idle_timeout = 1s

[slow]
max_instances = 1
queue_timeout = 500ms

[over]
max_instances = 1
queue_size = 4
EOF

# (a)'s second fngate: as many spares as instances, so that all of
# hellospare's are spare-born (the first gateway keeps the default 1)
cat >"$RUN/fngate-spare.conf" <<EOF
; written by tests/bench/bench_core.sh
[gateway]
functions_dir = $RUN/spare/functions
socket_dir = $RUN/spare/sock
socket_mode = 0660
socket_group = $RUN_GROUP
log_level = info
spare_processes = $MAX_INST

[hellospare]
max_instances = $MAX_INST
min_instances = 0
idle_timeout = 10s
request_timeout = 30s
EOF

# fngate for the cold-start trace: debug log, the same function with and
# without the sandbox
cat >"$RUN/fngate-trace.conf" <<EOF
; written by tests/bench/bench_core.sh
[gateway]
functions_dir = $RUN/trace/functions
socket_dir = $RUN/trace/sock
socket_mode = 0666
log_level = debug
user = nobody
group = nogroup

[defaults]
max_instances = $MAX_INST
idle_timeout = 100ms

[tracenosb]
sandbox = off

[execnosb]
sandbox = off
EOF

# (e)'s trace: the measured fngate's settings for helloburst, debug log
cat >"$RUN/fngate-btrace.conf" <<EOF
; written by tests/bench/bench_core.sh
[gateway]
functions_dir = $RUN/btrace/functions
socket_dir = $RUN/btrace/sock
socket_mode = 0660
socket_group = $RUN_GROUP
log_level = debug

[helloburst]
max_instances = $MAX_INST
min_instances = 0
idle_timeout = 1s
request_timeout = 30s
EOF

# fngate with 100 idle functions
{
    say "; written by tests/bench/bench_core.sh"
    say "[gateway]"
    say "functions_dir = $RUN/idle/functions"
    say "socket_dir = $RUN/idle/sock"
    say "socket_mode = 0660"
    say "socket_group = $RUN_GROUP"
    say "log_level = info"
    say ""
    say "[defaults]"
    say "max_instances = $MAX_INST"
    say "min_instances = 0"
    say "idle_timeout = 10s"
    say "request_timeout = 30s"
} >"$RUN/fngate-idle.conf"

# php-fpm: one master, a pool for throughput and a pool for cold start
php_user=""
[ "$IS_ROOT" = 1 ] && php_user=$'user = nobody\ngroup = nogroup'
{
    php_conf_head
    cat <<EOF
[bench]
$php_user
listen = $RUN/php/php.sock
listen.mode = 0666
pm = ondemand
pm.max_children = $MAX_INST
pm.process_idle_timeout = 10s
pm.max_requests = 0

[cold]
$php_user
listen = $RUN/php/php-cold.sock
listen.mode = 0666
pm = ondemand
pm.max_children = $MAX_INST
pm.process_idle_timeout = 1s
pm.max_requests = 0
EOF
} >"$RUN/php/php-fpm.conf"

# nginx: fngate.inc for /fn/, plus /bare and /php
fastcgi_params_bench >"$RUN/nginx/fastcgi_params.bench"

PORT=$(free_port) || die "no free TCP port found"
{
    nginx_conf_head 2 "$RUN_USER $RUN_GROUP" \
        "# as nginx/nginx.conf and the README recommend for fngate.inc's fallback regex" \
        "pcre_jit on;"
    cat <<EOF
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;

        set \$fngate_socket_dir $RUN/sock;
        include fngate.inc;

        location = /bare {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /bare;
            fastcgi_pass unix:$RUN/bare/bare.sock;
        }
        location = /php {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /php;
            fastcgi_param SCRIPT_FILENAME $RUN/php/hello.php;
            fastcgi_pass unix:$RUN/php/php.sock;
        }
        location = /php-cold {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /php-cold;
            fastcgi_param SCRIPT_FILENAME $RUN/php/hello.php;
            fastcgi_pass unix:$RUN/php/php-cold.sock;
        }
        location = /php-burst {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /php-burst;
            fastcgi_param SCRIPT_FILENAME $RUN/php/hello.php;
            fastcgi_pass unix:$RUN/php/php-cold.sock;
        }
        # --diag: fngate's hello socket without fngate.inc (plain location, the
        # same parameters as /bare)
        # (e)'s trace: the debug fngate's helloburst
        location = /btrace {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /fn/helloburst;
            fastcgi_pass unix:$RUN/btrace/sock/fn/helloburst.sock;
        }
        location = /fn-direct {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /fn/hello;
            fastcgi_pass unix:$RUN/sock/fn/hello.sock;
        }
        location = /healthz {
            default_type text/plain;
            return 200 'ok';
        }
    }
}
EOF
} >"$RUN/nginx/nginx.conf"
# fngate.inc's exact locations for $RUN/functions, as the README has users
# make them (the fallback regex serves the rest)
fngate_locations "$FNGATE" "$RUN/fngate.conf" "$RUN/nginx"
# and the second gateway's, in a file of its own (the include takes both)
fngate_locations "$FNGATE" "$RUN/fngate-spare.conf" "$RUN/nginx" fngate-functions-spare.conf

find "$RUN" -type d -exec chmod 755 {} +
find "$RUN" -type f -exec chmod go+r {} +
chmod 755 "$RUN/functions"/*/handler "$RUN/spare/functions"/*/handler "$RUN/btrace/functions"/*/handler "$RUN/idle/functions"/*/handler "$RUN/trace/functions"/*/handler "$RUN/bare/bare_hello"
cp "$RUN/fngate.conf" "$RUN/fngate-spare.conf" "$RUN/fngate-idle.conf" "$RUN/fngate-trace.conf" "$RUN/fngate-btrace.conf" "$RUN/php/php-fpm.conf" "$RUN/nginx/nginx.conf" "$RUN/nginx/fngate-functions.conf" "$RES/"

# --- machine ------------------------------------------------------------------

machine_info
VERSIONS="$("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $("$PHP_FPM" -v 2>/dev/null | head -1 | awk '{print "php-fpm " $2}'), opcache $([ "$OPCACHE" = 1 ] && echo on || echo off), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}')"
say ""
say "fngate core benchmark, $DATE"
say "machine: $MACHINE"
say "before start: CPUs ${BUSY_START}% busy over 2 s, load average $LOAD_START"
say "run directory: $RUN    results: $RES"
[ "$QUICK" = 1 ] && say "QUICK mode: ${RUN_S}s wrk runs, $COLD_N cold rounds (figures are indicative only)"

# --- (c) idle cost ------------------------------------------------------------

# --warm-only (--only warm) skips everything but (a); its summary is printed
# right after it.
IDLE_SPARES=nan; IDLE_SPARE_KB=nan; IDLE_WARDENS=nan; IDLE_WARDEN_KB=nan; IDLE_RSS_MB=nan; IDLE_RSS_KB=nan; IDLE_ANON_KB=nan; IDLE_FILE_KB=nan; IDLE_PSS_KB=nan; IDLE_PROCS=nan
if part idle; then
say ""
say "== (c) idle cost: fngate with $IDLE_FNS functions, 0 instances =="
"$FNGATE" serve -c "$RUN/fngate-idle.conf" >"$RUN/fngate-idle.log" 2>&1 &
IDLE_PID=$!
idle_ready() {
    kill -0 "$IDLE_PID" 2>/dev/null || return 0
    [ "$(find "$RUN/idle/sock/fn" -maxdepth 1 -type s 2>/dev/null | wc -l)" -ge "$IDLE_FNS" ]
}
wait_until 15 idle_ready
kill -0 "$IDLE_PID" 2>/dev/null || { cat "$RUN/fngate-idle.log" >&2; die "fngate (100 functions) exited at start"; }
[ "$(find "$RUN/idle/sock/fn" -maxdepth 1 -type s | wc -l)" -ge "$IDLE_FNS" ] \
    || { tail -20 "$RUN/fngate-idle.log" >&2; die "fngate did not create $IDLE_FNS sockets"; }
sleep 1
IDLE_RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$IDLE_PID/status")
IDLE_HWM_KB=$(awk '/^VmHWM:/ { print $2 }' "/proc/$IDLE_PID/status")
IDLE_PSS_KB=$(awk '/^Pss:/ { print $2 }' "/proc/$IDLE_PID/smaps_rollup" 2>/dev/null)
IDLE_FDS=$(ls "/proc/$IDLE_PID/fd" 2>/dev/null | wc -l)
IDLE_CHILDREN=$(pgrep -P "$IDLE_PID" | wc -l)
# The gateway-wide spare processes (spare_processes, default 1) are counted
# apart: they belong to no function, and "no process while idle" is per
# function.
IDLE_SPARES=0; IDLE_SPARE_KB=0
# So is the warden (a fork of the gateway that kills its instances if it
# dies): one per gateway, its Pss reported apart.
IDLE_WARDENS=0; IDLE_WARDEN_KB=0
for c in $(pgrep -P "$IDLE_PID"); do
    if [ "$(basename "$(readlink "/proc/$c/exe" 2>/dev/null)")" = fngate-spare ]; then
        IDLE_SPARES=$((IDLE_SPARES + 1))
        IDLE_SPARE_KB=$((IDLE_SPARE_KB + $(awk '/^Pss:/ { print $2 }' "/proc/$c/smaps_rollup" 2>/dev/null || echo 0)))
    elif [ "$(cat "/proc/$c/comm" 2>/dev/null)" = fngate-warden ]; then
        IDLE_WARDENS=$((IDLE_WARDENS + 1))
        IDLE_WARDEN_KB=$((IDLE_WARDEN_KB + $(awk '/^Pss:/ { print $2 }' "/proc/$c/smaps_rollup" 2>/dev/null || echo 0)))
    fi
done
IDLE_PROCS=$((1 + IDLE_CHILDREN - IDLE_SPARES - IDLE_WARDENS))
IDLE_ANON_KB=$(awk '/^RssAnon:/ { print $2 }' "/proc/$IDLE_PID/status")
IDLE_FILE_KB=$(awk '/^RssFile:/ { print $2 }' "/proc/$IDLE_PID/status")
IDLE_RSS_MB=$(awk -v k="$IDLE_RSS_KB" 'BEGIN { printf "%.1f", k / 1024 }')
{
    say "pid $IDLE_PID  VmRSS $IDLE_RSS_KB kB  VmHWM $IDLE_HWM_KB kB  Pss ${IDLE_PSS_KB:-?} kB  fds $IDLE_FDS  processes $IDLE_PROCS"
    grep -E '^(VmPeak|VmSize|VmHWM|VmRSS|RssAnon|RssFile|RssShmem|Threads)' "/proc/$IDLE_PID/status"
} >"$RES/idle.txt"
say "fngate RSS $IDLE_RSS_MB MB (VmRSS $IDLE_RSS_KB kB, Pss ${IDLE_PSS_KB:-?} kB), $IDLE_FDS open fds, processes: $IDLE_PROCS, plus $IDLE_SPARES spare process(es), Pss $IDLE_SPARE_KB kB, and $IDLE_WARDENS warden, Pss $IDLE_WARDEN_KB kB"
stop_pid "$IDLE_PID" 15
IDLE_PID=""
fi # idle

# --- start the stack ----------------------------------------------------------

say ""
say "starting fngate, spawn-fcgi (bare_hello x $MAX_INST), php-fpm and nginx on 127.0.0.1:$PORT"

"$FNGATE" serve -c "$RUN/fngate.conf" >"$RUN/fngate.log" 2>&1 &
FNGATE_PID=$!
fngate_ready() {
    kill -0 "$FNGATE_PID" 2>/dev/null || return 0
    [ -S "$RUN/sock/fn/hello.sock" ] && [ -S "$RUN/sock/fn/hellocold.sock" ]
}
wait_until 10 fngate_ready
kill -0 "$FNGATE_PID" 2>/dev/null || { cat "$RUN/fngate.log" >&2; die "fngate exited at start"; }
[ -S "$RUN/sock/fn/hello.sock" ] || { cat "$RUN/fngate.log" >&2; die "fngate made no socket for hello"; }

if part warm; then
    "$FNGATE" serve -c "$RUN/fngate-spare.conf" >"$RUN/fngate-spare.log" 2>&1 &
    SPARE_GW_PID=$!
    wait_until 10 sh -c "[ -S '$RUN/spare/sock/fn/hellospare.sock' ] || ! kill -0 $SPARE_GW_PID"
    [ -S "$RUN/spare/sock/fn/hellospare.sock" ] || { cat "$RUN/fngate-spare.log" >&2; die "the second fngate made no socket for hellospare"; }
fi

spawn_args=(-s "$RUN/bare/bare.sock" -M 0666 -F "$MAX_INST" -P "$RUN/bare/spawn-fcgi.pid")
[ "$IS_ROOT" = 1 ] && spawn_args+=(-u nobody -g nogroup)
spawn-fcgi "${spawn_args[@]}" -- "$RUN/bare/bare_hello" >"$RES/spawn-fcgi.log" 2>&1 \
    || { cat "$RES/spawn-fcgi.log" >&2; die "spawn-fcgi failed"; }
BARE_PIDS=$(cat "$RUN/bare/spawn-fcgi.pid" 2>/dev/null)
[ "$(wc -w <<<"$BARE_PIDS")" = "$MAX_INST" ] || say "warning: spawn-fcgi reported $(wc -w <<<"$BARE_PIDS") children, not $MAX_INST"

start_php "$RUN/php/php.sock" "$RUN/php/php-cold.sock"

start_nginx

# every back end answers 200 {"hello":"world"}
for path in /fn/hello /fn/hellocold /fn/helloburst /bare /php /php-cold /fn-direct \
    $([ -n "$SPARE_GW_PID" ] && echo /fn/hellospare); do
    out=$(curl -s -w ' %{http_code}' "http://127.0.0.1:$PORT$path")
    [ "$out" = '{"hello":"world"} 200' ] || die "GET $path answered: $out (expected {\"hello\":\"world\"} 200)"
done
say "all endpoints answer 200 {\"hello\":\"world\"}"

# --- (a) warm throughput ------------------------------------------------------

say ""
say "== (a) warm throughput: $W_ROUNDS rounds of wrk -t$WRK_T -c$WRK_C -d${RUN_S}s --latency, each after a 1 s warm-up =="
NAMES=(fngate spare bare php)
[ "$DIAG" = 1 ] && NAMES+=(direct)
say "   order reversed every other round ($(IFS=' '; echo "${NAMES[*]}") / the reverse), so that drift hits fngate and bare alike;"
say "   the ratios are the medians (and ranges) of the per-round ratios: fngate and bare measured seconds apart"
declare -A PATHS=([fngate]=/fn/hello [spare]=/fn/hellospare [bare]=/bare [php]=/php [direct]=/fn-direct)
declare -A BEST_RPS BEST_P50 BEST_P99 TOT_NON2XX TOT_ERRS RUNS_RPS RUNS_CPU RUNS_CS MED_RPS MED_CPU
declare -A ROUND_RPS ROUND_CPU
for name in fngate spare bare php direct; do
    BEST_RPS[$name]=""; BEST_P50[$name]=""; BEST_P99[$name]=""; TOT_NON2XX[$name]=0; TOT_ERRS[$name]=0
    RUNS_RPS[$name]=""; RUNS_CPU[$name]=""; RUNS_CS[$name]=""; MED_RPS[$name]=nan; MED_CPU[$name]=nan
done
R_THR=""; R_CPU=""; R_DTHR=""; R_DCPU=""; R_PHP=""; R_STHR=""; R_SCPU=""; R_SVF=""
part warm || { say "   skipped (--only)"; NAMES=(); W_ROUNDS=0; }
for name in "${NAMES[@]+"${NAMES[@]}"}"; do
    run_wrk "${PATHS[$name]}" "$WARM_S" "$RES/wrk-$name-warmup.txt"
done
printf '%-7s %-4s %-10s %10s %9s %9s %9s %7s %7s %8s %7s %7s  %s\n' run "" target "req/s" "p50 ms" "p99 ms" requests non2xx errors "CPU us" "cs/req" "ngx cs" processes
for ((round = 1; round <= W_ROUNDS; round++)); do
    order=("${NAMES[@]+"${NAMES[@]}"}")
    if [ $((round % 2)) = 0 ]; then
        order=(); for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do order+=("${NAMES[$i]}"); done
    fi
    for name in "${order[@]+"${order[@]}"}"; do
        path=${PATHS[$name]}
        run_wrk "$path" 1 "$RES/wrk-$name-pre$round.txt"
        pids=$(target_pids "$name")
        bpids=$(backend_pids "$name")
        npids="$NGINX_PID $(pgrep -P "$NGINX_PID" 2>/dev/null)"
        # shellcheck disable=SC2086 # lists of pids
        { t0=$(cpu_ticks $pids); c0=$(ctx_switches $bpids); n0=$(ctx_switches $npids); }
        run_wrk "$path" "$RUN_S" "$RES/wrk-$name-run$round.txt" --latency
        # shellcheck disable=SC2086 # lists of pids
        { t1=$(cpu_ticks $pids); c1=$(ctx_switches $bpids); n1=$(ctx_switches $npids); }
        case "$name" in
            fngate|direct) procs="$(children_with_exe "$FNGATE_PID" "$RUN/functions/hello/handler") instances" ;;
            spare) procs="$(spare_born) spare-born, $(children_with_exe "$SPARE_GW_PID" "$RUN/spare/functions/hellospare/handler") exec'd instances" ;;
            bare) procs="$(for p in $BARE_PIDS; do kill -0 "$p" 2>/dev/null && echo "$p"; done | wc -l) children" ;;
            php) procs="$(php_workers bench) workers" ;;
        esac
        read -r rps p50 p99 reqs non2xx errs < <(parse_wrk "$RES/wrk-$name-run$round.txt")
        read -r _ _ _ _ wnon2xx werrs < <(parse_wrk "$RES/wrk-$name-pre$round.txt")
        cpu_us=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$reqs" 'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "nan" }')
        cs=$(awk -v c=$((c1 - c0)) -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", c / n; else print "nan" }')
        ngx_cs=$(awk -v c=$((n1 - n0)) -v n="$reqs" 'BEGIN { if (n > 0) printf "%.2f", c / n; else print "nan" }')
        printf '%-7s %-4s %-10s %10s %9s %9s %9s %7s %7s %8s %7s %7s  %s\n' "round$round" "" "$name" "$rps" "$p50" "$p99" "$reqs" "$non2xx" "$errs" "$cpu_us" "$cs" "$ngx_cs" "$procs"
        TOT_NON2XX[$name]=$(( ${TOT_NON2XX[$name]:-0} + non2xx + wnon2xx ))
        TOT_ERRS[$name]=$(( ${TOT_ERRS[$name]:-0} + errs + werrs ))
        RUNS_RPS[$name]="${RUNS_RPS[$name]:-} $rps"
        RUNS_CPU[$name]="${RUNS_CPU[$name]:-} $cpu_us"
        RUNS_CS[$name]="${RUNS_CS[$name]:-} $cs/$ngx_cs"
        ROUND_RPS[$name]=$rps; ROUND_CPU[$name]=$cpu_us
        printf '%s %s %s %s %s %s\n' "$round" "$name" "$rps" "$cpu_us" "$cs" "$ngx_cs" >>"$RES/cpu.txt"
        if [ "$rps" -gt "${BEST_RPS[$name]:-0}" ]; then
            BEST_RPS[$name]=$rps; BEST_P50[$name]=$p50; BEST_P99[$name]=$p99
        fi
        if [ "$name" = fngate ] && ! kill -0 "$FNGATE_PID" 2>/dev/null; then
            tail -30 "$RUN/fngate.log" >&2
            die "fngate died during the throughput run"
        fi
    done
    # this round's ratios: req/s over bare's, and bare's CPU per request over theirs
    R_THR+=" $(ratio "${ROUND_RPS[fngate]}" "${ROUND_RPS[bare]}")"
    R_CPU+=" $(ratio "${ROUND_CPU[bare]}" "${ROUND_CPU[fngate]}")"
    R_PHP+=" $(ratio "${ROUND_RPS[php]}" "${ROUND_RPS[bare]}")"
    R_STHR+=" $(ratio "${ROUND_RPS[spare]}" "${ROUND_RPS[bare]}")"
    R_SCPU+=" $(ratio "${ROUND_CPU[bare]}" "${ROUND_CPU[spare]}")"
    R_SVF+=" $(ratio "${ROUND_RPS[spare]}" "${ROUND_RPS[fngate]}")"
    if [ "$DIAG" = 1 ]; then
        R_DTHR+=" $(ratio "${ROUND_RPS[direct]}" "${ROUND_RPS[bare]}")"
        R_DCPU+=" $(ratio "${ROUND_CPU[bare]}" "${ROUND_CPU[direct]}")"
    fi
done
# med/range BACKEND COL: median and min-max of column COL of cold.txt's rows
# for BACKEND (part (b); the summary uses them too, also when (b) is skipped)
med() { awk -v b="$1" -v col="$2" '$1 !~ /^#/ && $2 == b { print $col }' "$RES/cold.txt" 2>/dev/null | median; }
range() { awk -v b="$1" -v col="$2" '$1 !~ /^#/ && $2 == b { print $col }' "$RES/cold.txt" 2>/dev/null | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s-%s", lo, hi }'; }
# mrange LIST: "median (min-max)" of the numbers in LIST
mrange() {
    printf '%s\n' $1 | awk '$1 != "nan"' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan (no rounds)"; exit }
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.2f (%.2f-%.2f)\n", m, v[1], v[NR] }'
}
for name in "${NAMES[@]+"${NAMES[@]}"}"; do
    MED_RPS[$name]=$(printf '%s\n' ${RUNS_RPS[$name]} | median)
    MED_CPU[$name]=$(printf '%s\n' ${RUNS_CPU[$name]} | median)
done
THR_RATIO=nan; CPU_RATIO=nan; PHP_RATIO=nan; THR_RANGE=nan; CPU_RANGE=nan; PHP_RANGE=nan
if part warm; then
    THR_RANGE=$(mrange "$R_THR"); THR_RATIO=${THR_RANGE%% *}
    CPU_RANGE=$(mrange "$R_CPU"); CPU_RATIO=${CPU_RANGE%% *}
    PHP_RANGE=$(mrange "$R_PHP"); PHP_RATIO=${PHP_RANGE%% *}
    say "per-round fngate/bare req/s:${R_THR}   bare/fngate CPU:${R_CPU}"
    [ "$DIAG" = 1 ] && say "per-round direct/bare req/s:${R_DTHR}   bare/direct CPU:${R_DCPU}"
    say "per-round spare-born/bare req/s:${R_STHR}   bare/spare-born CPU:${R_SCPU}"
    {
        say "fngate/bare req/s, median (range) of $W_ROUNDS rounds: $THR_RANGE"
        say "bare/fngate CPU per request:                         $CPU_RANGE"
        [ "$DIAG" = 1 ] && say "direct/bare req/s: $(mrange "$R_DTHR");  bare/direct CPU: $(mrange "$R_DCPU")"
        say "spare-born/bare req/s: $(mrange "$R_STHR");  bare/spare-born CPU: $(mrange "$R_SCPU");  spare-born/exec'd req/s: $(mrange "$R_SVF")"
        say "php/bare req/s: $PHP_RANGE"
    } | tee "$RES/warm-ratios.txt"
fi

if [ "$WARM_ONLY" = 1 ]; then
    {
        say ""
        say "==================== fngate core benchmark: warm-only summary ===================="
        say "date      $DATE; load average $LOAD_START before, $(cut -d' ' -f1-3 /proc/loadavg) after"
        say "machine   $MACHINE"
        say "mode      $([ "$QUICK" = 1 ] && echo QUICK || echo full): $W_ROUNDS interleaved rounds of wrk -t$WRK_T -c$WRK_C -d${RUN_S}s"
        for name in "${NAMES[@]}"; do
            printf '  %-10s median %9s req/s   CPU/request %7s us (runs:%s)\n' "$name" "${MED_RPS[$name]}" \
                "${MED_CPU[$name]}" "${RUNS_CPU[$name]}"
            printf '  %-10s context switches per request, back end/nginx (runs:%s)\n' "" "${RUNS_CS[$name]}"
        done
        printf '  %-44s %s  %s\n' "warm throughput fngate/bare >= $T_THROUGHPUT" "$THR_RANGE" \
            "$(verdict "$THR_RATIO" ">=" "$T_THROUGHPUT")"
        printf '  %-44s %s  %s\n' "warm CPU per request bare/fngate >= $T_THROUGHPUT" "$CPU_RANGE" \
            "$(verdict "$CPU_RATIO" ">=" "$T_THROUGHPUT")"
        [ "$DIAG" = 1 ] && say "  direct/bare req/s $(mrange "$R_DTHR"), bare/direct CPU $(mrange "$R_DCPU")"
        say "  spare-born/bare req/s $(mrange "$R_STHR"), bare/spare-born CPU $(mrange "$R_SCPU"), spare-born/exec'd req/s $(mrange "$R_SVF") (reported)"
        say "raw       $RES"
    } | tee "$RES/summary.txt"
    exit 0
fi

# --- (b) cold start -----------------------------------------------------------

F_COLD=nan; F_WARM=nan; P_COLD=nan; P_WARM=nan; COLD_RATIO=nan; COLD_FAIL=0
: >"$RES/cold.txt"
if part cold; then
say ""
say "== (b) cold start: first request to a function with no process, $COLD_N rounds (+1 discarded) =="
say "   fngate /fn/hellocold (idle_timeout = 100ms; the default configuration: a handler.so and spare_processes = 1)"
say "   vs php-fpm /php-cold (ondemand, process_idle_timeout = 1s)"
: >"$RES/cold.txt"
printf '%s\n' "# round backend cold_ms warm_ms cold_status warm_status" >>"$RES/cold.txt"
COLD_FAIL=0
# Start from a calm machine: the throughput run's instances and workers go
# away after their 10 s idle timeouts.
quiet_stack() {
    [ "$(children_with_exe "$FNGATE_PID" "$RUN/functions/hello/handler")" = 0 ] && both_cold
}
say "   waiting for the throughput run's instances and php workers to be reaped (idle timeouts 10 s)"
wait_until 30 quiet_stack || say "warning: instances or workers still running after 30 s; measuring anyway"
# time_req PATH -> "status ms"
time_req() {
    curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$PORT$1" \
        | awk '{ printf "%s %.3f\n", $1, $2 * 1000 }'
}
for ((round = 0; round <= COLD_N; round++)); do
    if [ $((round % 2)) = 0 ]; then order="fngate php"; else order="php fngate"; fi
    for b in $order; do
        if ! wait_until 15 both_cold; then
            say "warning: round $round: instances did not go away within 15 s (fngate $(fn_instances "$FNGATE_PID" hellocold "$RUN/functions/hellocold/handler"), php workers $(pgrep -P "$PHP_PID" | wc -l))"
            COLD_FAIL=$((COLD_FAIL + 1))
            continue
        fi
        sleep 0.3   # let the reaping settle: nothing else moves while we time
        if [ "$b" = fngate ]; then path=/fn/hellocold; else path=/php-cold; fi
        read -r cs cms < <(time_req "$path")
        read -r ws wms < <(time_req "$path")
        [ "$cs" = 200 ] && [ "$ws" = 200 ] || COLD_FAIL=$((COLD_FAIL + 1))
        if [ "$round" = 0 ]; then
            printf '# %d %s %s %s %s %s (discarded warm-up round)\n' "$round" "$b" "$cms" "$wms" "$cs" "$ws" >>"$RES/cold.txt"
        else
            printf '%d %s %s %s %s %s\n' "$round" "$b" "$cms" "$wms" "$cs" "$ws" >>"$RES/cold.txt"
        fi
    done
done
F_COLD=$(med fngate 3); F_WARM=$(med fngate 4)
P_COLD=$(med php 3); P_WARM=$(med php 4)
COLD_RATIO=$(ratio "$F_COLD" "$P_COLD")
printf '%-8s %14s %16s %14s %16s\n' backend "cold median ms" "cold range ms" "warm median ms" "warm range ms"
printf '%-8s %14s %16s %14s %16s\n' fngate "$F_COLD" "$(range fngate 3)" "$F_WARM" "$(range fngate 4)"
printf '%-8s %14s %16s %14s %16s\n' php "$P_COLD" "$(range php 3)" "$P_WARM" "$(range php 4)"
say "cold fngate/php = $COLD_RATIO; non-200 or timed-out rounds: $COLD_FAIL"
fi # cold

# --- (e) cold burst -----------------------------------------------------------

# Per round and back end: both back ends without a process, then one
# burst call sends the cold burst and, BURST_GAP_MS after each answer,
# BURST_WARM warm ones over the same connections (both back ends keep their
# processes 1 s idle, so the warm bursts find all the cold one started).
# excess = slowest of the cold burst - the median of the warm bursts'
# slowest; the order of the back ends alternates from round to round.
F_BEX=nan; P_BEX=nan; BURST_WINS=0/0; BURST_FAIL=0; BURST_RUN=nan
: >"$RES/burst.txt"
if part burst; then
say ""
say "== (e) cold burst: $BURST_N simultaneous requests, no process before, max_instances/max_children $MAX_INST; $BURST_ROUNDS rounds =="
say "   fngate /fn/helloburst (idle_timeout = 1s; the default configuration: a handler.so, spare_processes = 1)"
say "   vs php-fpm /php-burst (ondemand, process_idle_timeout = 1s)"
say "   excess = slowest request of the cold burst - median slowest of $BURST_WARM warm bursts, sent ${BURST_GAP_MS} ms apart"
say "   once the back end's process count holds (up to $BURST_SETTLE settling bursts first: both start more while every process is busy)"
: >"$RES/burst.txt"
printf '%s\n' "# round backend cold_slowest_ms warm_slowest_ms(median) excess_ms cold_codes warm_codes procs_after_cold procs_after_warm warm_slowest_each settle_bursts" >>"$RES/burst.txt"
fngate_burst_cold() { [ "$(fn_instances "$FNGATE_PID" helloburst "$RUN/functions/helloburst/handler")" = 0 ]; }
burst_cold() { fngate_burst_cold && php_cold; }
for ((round = 1; round <= BURST_ROUNDS; round++)); do
    if [ $((round % 2)) = 1 ]; then order="fngate php"; else order="php fngate"; fi
    for b in $order; do
        wait_until 15 burst_cold || { say "warning: burst round $round: not cold"; BURST_FAIL=$((BURST_FAIL + 1)); continue; }
        sleep 0.3
        if [ "$b" = fngate ]; then
            path=/fn/helloburst; kids="$FNGATE_PID:$RUN/functions/helloburst/handler:helloburst"
        else
            path=/php-burst; kids="$PHP_PID"
        fi
        "$RUN/burst" --warm "$BURST_WARM" --settle "$BURST_SETTLE" --gap "$BURST_GAP_MS" --children "$kids" \
            "$PORT" "$path" "$BURST_N" >"$RUN/burst.out" 2>>"$RES/burst-errors.txt"
        awk -v r="$round" -v b="$b" -v n="$BURST_N" '
            $1 == "cold" { c = $2; cc = $4; pc = $5 }
            $1 == "settle" { ns++; if ($4 != "200:" n) wbad = $4 }
            $1 == "warm" { w[++k] = $2; each = each sep $2; sep = ","; if ($4 != "200:" n) wbad = $4; pw = $5 }
            END {
                if (c == "" || k == 0) { printf "%d %s nan nan nan failed failed 0 0 - 0\n", r, b; exit }
                # median of the warm slowest
                for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (w[j] < w[i]) { t = w[i]; w[i] = w[j]; w[j] = t }
                m = (k % 2) ? w[(k + 1) / 2] : (w[k / 2] + w[k / 2 + 1]) / 2
                printf "%d %s %s %.2f %.2f %s %s %s %s %s %d\n", r, b, c, m, c - m, cc, wbad ? wbad : "200:" n, pc, pw, each, ns
            }' "$RUN/burst.out" >>"$RES/burst.txt"
        tail -1 "$RES/burst.txt" | awk -v n="$BURST_N" '$6 != "200:" n || $7 != "200:" n { exit 1 }' || BURST_FAIL=$((BURST_FAIL + 1))
    done
done
bcol() { awk -v b="$1" -v col="$2" '$1 !~ /^#/ && $2 == b { print $col }' "$RES/burst.txt"; }
F_BEX=$(bcol fngate 5 | median); P_BEX=$(bcol php 5 | median)
brange() { bcol "$1" "$2" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%s..%s", lo, hi }'; }
BURST_WINS=$(awk '$1 !~ /^#/ { ex[$1 "," $2] = $5; r[$1] = 1 } END { w = 0; n = 0; for (k in r) { if ((k ",fngate") in ex && (k ",php") in ex) { n++; if (ex[k ",fngate"] + 0 < ex[k ",php"] + 0) w++ } } printf "%d/%d", w, n }' "$RES/burst.txt")
BURST_RUN=$(awk -v f="$F_BEX" -v p="$P_BEX" 'BEGIN { if (f == "nan" || p == "nan") print "nan"; else print (f + 0 < p + 0) ? "yes" : "no" }')
printf '   %-5s %-7s %9s %9s %9s %11s %7s  %s\n' round backend "cold ms" "warm ms" "excess" "procs c->w" settle "warm slowest of each"
awk '$1 !~ /^#/ { printf "   %-5s %-7s %9s %9s %9s %11s %7s  %s%s\n", $1, $2, $3, $4, $5, $8 "->" $9, $11, $10, ($6 != $7 || $6 !~ /^200:/) ? "  codes " $6 " " $7 : "" }' "$RES/burst.txt"
printf '   %-13s %18s %18s %16s\n' backend "cold slowest ms" "warm slowest ms" "excess ms"
printf '   %-13s %18s %18s %16s\n' fngate "$(brange fngate 3)" "$(brange fngate 4)" "$(brange fngate 5)"
printf '   %-13s %18s %18s %16s\n' php "$(brange php 3)" "$(brange php 4)" "$(brange php 5)"
say "median excess: fngate $F_BEX ms, php-fpm $P_BEX ms (fngate's the smaller: $BURST_RUN); rounds where fngate's is the smaller: $BURST_WINS; failed rounds (not all 200): $BURST_FAIL"
# Where the time goes: the same cold burst against an fngate with a debug
# log (its trace lines), BURST_TRACE times, after the measured rounds.
say "   where a cold burst's time goes (ms after the first write; a debug fngate, helloburst, $BURST_TRACE bursts):"
"$FNGATE" serve -c "$RUN/fngate-btrace.conf" >"$RUN/fngate-btrace.log" 2>&1 &
BTRACE_PID=$!
btrace_ready() { kill -0 "$BTRACE_PID" 2>/dev/null || return 0; [ -S "$RUN/btrace/sock/fn/helloburst.sock" ]; }
btrace_cold() { [ "$(fn_instances "$BTRACE_PID" helloburst "$RUN/btrace/functions/helloburst/handler")" = 0 ] && burst_cold; }
wait_until 10 btrace_ready
: >"$RES/bursttrace.txt"
for ((i = 1; i <= BURST_TRACE; i++)); do
    wait_until 15 btrace_cold || { say "warning: burst trace $i: not cold"; continue; }
    sleep 0.3
    # the measured rounds' settling and warm bursts too: the same history
    # (request and start-up times) for the next cold burst's estimate
    "$RUN/burst" --warm "$BURST_WARM" --settle "$BURST_SETTLE" --gap "$BURST_GAP_MS" \
        --children "$BTRACE_PID:$RUN/btrace/functions/helloburst/handler:helloburst" --timeline "$RUN/btrace-$i.txt" \
        "$PORT" /btrace "$BURST_N" >>"$RES/bursttrace-codes.txt" 2>&1
    sleep 0.1
    { echo "# burst $i"; python3 "$BENCH_DIR/burstrace.py" "$RUN/btrace-$i.txt" "$RUN/fngate-btrace.log" helloburst; } >>"$RES/bursttrace.txt" 2>&1
done
stop_pid "$BTRACE_PID" 15
BTRACE_PID=""
cp "$RUN/fngate-btrace.log" "$RES/fngate-btrace.log" 2>/dev/null
sed 's/^/   /' "$RES/bursttrace.txt"
fi # burst

# --- (f) queue_timeout at the deadline, (g) overload ----------------------------

LATE_MED=nan; LATE_MAX=nan; OVER_SHARE=nan; OVER_LINE="skipped (no testfn)"
if [ "$HAVE_TESTFN" = 1 ] && part deadline; then
    say ""
    say "== (f) queue_timeout = 500ms, max_instances = 1, the instance busy for 2 s: when does the waiting request get its 503? =="
    : >"$RES/deadline.txt"
    for ((round = 1; round <= 5; round++)); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/fn/slow?sleep=2000" &
        busy_pid=$!
        sleep 0.3
        read -r st ms < <(curl -s -o "$RES/deadline-body.txt" -D "$RES/deadline-headers.txt" -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$PORT/fn/slow" | awk '{ printf "%s %.1f\n", $1, $2 * 1000 }')
        ra=$(tr -d '\r' <"$RES/deadline-headers.txt" | awk -F': ' 'tolower($1) == "retry-after" { print $2 }')
        late=$(awk -v m="$ms" 'BEGIN { printf "%.1f", m - 500 }')
        printf '%d %s %s %s retry-after=%s\n' "$round" "$st" "$ms" "$late" "${ra:-none}" >>"$RES/deadline.txt"
        wait "$busy_pid"
    done
    awk '{ printf "   round %s: %s after %s ms (%s ms after the deadline), %s\n", $1, $2, $3, $4, $5 }' "$RES/deadline.txt"
    LATE_MED=$(awk '{ print $4 }' "$RES/deadline.txt" | median)
    LATE_MAX=$(awk '{ print $4 }' "$RES/deadline.txt" | sort -g | tail -1)
    LATE_OK=$(awk '$2 != 503 || $5 != "retry-after=1" { bad++ } END { print bad ? "NO" : "yes" }' "$RES/deadline.txt")
    say "503 after the deadline: median $LATE_MED ms, worst $LATE_MAX ms; every answer 503 with Retry-After: $LATE_OK"
fi
if [ "$HAVE_TESTFN" = 1 ] && part overload; then
    say ""
    say "== (g) overload: 200 simultaneous callers of a 200 ms function, max_instances = 1, queue_size = 4 =="
    : >"$RES/overload.txt"
    for ((round = 1; round <= 3; round++)); do
        read -r _ _ _ codes < <("$RUN/burst" "$PORT" "/fn/over?sleep=200" 200)
        echo "$round $codes" >>"$RES/overload.txt"
        sleep 1.5
    done
    OVER_SHARE=$(awk '{ n = split($2, a, ","); for (i = 1; i <= n; i++) { split(a[i], kv, ":"); if (kv[1] != 200) { rej += kv[2]; if (kv[1] == 503) s += kv[2] } } } END { if (rej) printf "%.1f", 100 * s / rej; else print "nan" }' "$RES/overload.txt")
    OVER_LINE="$(awk '{ printf "%s%s", sep, $2; sep = " | " }' "$RES/overload.txt")"
    say "status counts per round: $OVER_LINE"
    say "503 share of rejected requests: $OVER_SHARE%"
fi

# --- (d) cold-start breakdown -----------------------------------------------------

FLOORS="skipped"
for fn in $TRACE_FNS; do : >"$RES/coldtrace-$fn.txt"; done
if part breakdown; then
say ""
say "== (d) cold-start breakdown: one FastCGI request straight to the socket (no nginx), medians of $COLD_N, microseconds =="
"$FNGATE" serve -c "$RUN/fngate-trace.conf" >"$RUN/fngate-trace.log" 2>&1 &
TRACE_PID=$!
trace_ready() { kill -0 "$TRACE_PID" 2>/dev/null || return 0; [ -S "$RUN/trace/sock/fn/execnosb.sock" ]; }
wait_until 10 trace_ready
for fn in $TRACE_FNS; do
    python3 "$BENCH_DIR/coldtrace.py" "$RUN/trace/sock/fn/$fn.sock" "$RUN/fngate-trace.log" "$COLD_N" >"$RES/coldtrace-$fn.txt" 2>&1
done
stop_pid "$TRACE_PID" 15
TRACE_PID=""
for fn in $TRACE_FNS; do
    case $fn in
        tracesb) label="spare, sandbox on" ;;
        tracenosb) label="spare, sandbox off" ;;
        execsb) label="exec, sandbox on" ;;
        execnosb) label="exec, sandbox off" ;;
    esac
    printf '   %-22s %s\n' "" "$(grep '^round' "$RES/coldtrace-$fn.txt" | sed 's/^round //')"
    printf '   %-22s %s\n' "$label" "$(grep '^median' "$RES/coldtrace-$fn.txt" | sed 's/^median //')"
done
if [ -x "$RUN/spawn_floor" ]; then
    "$RUN/spawn_floor" "$RUN/functions/hello/handler" "$RUN/trivial" 200 >"$RES/floors.txt" 2>&1
    FLOORS=$(awk '{ printf "%s%s %s us", sep, $1, $2; sep = ", " }' "$RES/floors.txt")
    say "   floors (medians of 200): $FLOORS"
fi
python3 "$BENCH_DIR/coldtrace.py" --table "spare, sandbox on (default)=$RES/coldtrace-tracesb.txt" \
    "exec, sandbox on=$RES/coldtrace-execsb.txt" "spare, sandbox off=$RES/coldtrace-tracenosb.txt" \
    "exec, sandbox off=$RES/coldtrace-execnosb.txt" >"$RES/breakdown.md" 2>&1
fi # breakdown

# --- stop, and check that fngate stops cleanly ------------------------------

stop_pid "$NGINX_PID" 5; NGINX_PID=""
stop_fngate

# --- summary ------------------------------------------------------------------

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BUSY_END=$(cpu_busy 2)
# pverdict PART VALUE OP LIMIT: verdict, or SKIP when PART did not run
pverdict() { if part "$1"; then shift; verdict "$@"; else echo SKIP; fi; }
V_THR=$(pverdict warm "$THR_RATIO" ">=" "$T_THROUGHPUT")
V_COLD=$(pverdict cold "$COLD_RATIO" "<=" "$T_COLD")
V_RSS=$(pverdict idle "$IDLE_RSS_MB" "<=" "$T_RSS_MB")
V_PROCS=$(pverdict idle "$IDLE_PROCS" "==" 1)
{
    say ""
    say "==================== fngate core benchmark: summary ===================="
    say "date      $DATE"
    say "machine   $MACHINE"
    say "software  $VERSIONS"
    say "idle?     CPUs ${BUSY_START}% busy before start, ${BUSY_END}% after the end (2 s samples, nothing of ours running)"
    if [ "$BUSY_START" -gt 10 ] || [ "$BUSY_END" -gt 10 ]; then
        say "WARNING   other work was using the cores: these figures are unreliable, run again when the machine is idle"
    fi
    say "mode      $([ "$QUICK" = 1 ] && echo "QUICK (${RUN_S}s runs, $COLD_N cold rounds): indicative only" || echo "full (${RUN_S}s runs, $COLD_N cold rounds)")"
    say ""
    say "warm throughput: nginx (2 workers) -> FastCGI over unix sockets, $MAX_INST processes each,"
    say "$W_ROUNDS rounds of wrk -t$WRK_T -c$WRK_C -d${RUN_S}s --latency, order reversed every other round;"
    say "req/s the median of the rounds, p50/p99 of the best round; 'vs bare' the median of the per-round ratios"
    printf '  %-22s %9s %8s %8s %9s  %s\n' "" "req/s" "p50 ms" "p99 ms" "vs bare" "runs req/s; non-2xx, socket errors"
    for name in "${NAMES[@]}"; do
        case "$name" in
            fngate) label="fngate /fn/hello" ;;
            spare) label="spare-born /fn/hellospare" ;;
            bare) label="bare libfcgi /bare" ;;
            php) label="php-fpm ondemand /php" ;;
            direct) label="(diag) /fn-direct" ;;
        esac
        case "$name" in
            fngate) vs=$THR_RATIO ;; bare) vs=1.00 ;; php) vs=$PHP_RATIO ;;
            spare) vs=$(mrange "$R_STHR"); vs=${vs%% *} ;;
            direct) vs=$(mrange "$R_DTHR"); vs=${vs%% *} ;;
        esac
        printf '  %-22s %9s %8s %8s %9s  %s\n' "$label" "${MED_RPS[$name]}" "${BEST_P50[$name]}" "${BEST_P99[$name]}" \
            "$vs" "${RUNS_RPS[$name]# }; ${TOT_NON2XX[$name]}, ${TOT_ERRS[$name]}"
    done
    say "CPU per request (nginx workers + the back end's processes, /proc utime+stime; steadier than req/s"
    say "on a shared machine), median of the rounds, and bare's CPU over fngate's (>= $T_THROUGHPUT: as cheap):"
    for name in "${NAMES[@]}"; do
        printf '  %-22s %7s us   runs:%s\n' "$name" "${MED_CPU[$name]}" "${RUNS_CPU[$name]}"
    done
    say "  bare/fngate CPU = ${CPU_RANGE:-nan} (median, range of the per-round ratios)"
    [ "$DIAG" = 1 ] && say "  bare/direct CPU = $(mrange "$R_DCPU")"
    say ""
    say "cold start: first request after every process went away, median of $COLD_N (curl time_total)"
    printf '  %-26s %9s %9s   %-15s %s\n' "" "cold ms" "warm ms" "cold min-max" "warm min-max"
    printf '  %-26s %9s %9s   %-15s %s\n' "fngate /fn/hellocold" "$F_COLD" "$F_WARM" "$(range fngate 3)" "$(range fngate 4)"
    printf '  %-26s %9s %9s   %-15s %s\n' "php-fpm ondemand /php-cold" "$P_COLD" "$P_WARM" "$(range php 3)" "$(range php 4)"
    say ""
    say "idle cost: fngate with $IDLE_FNS functions, 0 instances, after 1 s"
    say "  VmRSS $IDLE_RSS_MB MB ($IDLE_RSS_KB kB: anonymous $IDLE_ANON_KB kB, file-backed $IDLE_FILE_KB kB; Pss ${IDLE_PSS_KB:-?} kB), processes $IDLE_PROCS"
    say "  plus ${IDLE_SPARES:-?} gateway-wide spare process(es) (spare_processes), Pss ${IDLE_SPARE_KB:-?} kB"
    say "  and ${IDLE_WARDENS:-?} warden (kills the instances if the gateway dies), Pss ${IDLE_WARDEN_KB:-?} kB"
    say ""
    say "targets"
    printf '  %-44s %8s  %s  range %s\n' "warm throughput fngate/bare >= $T_THROUGHPUT" "$THR_RATIO" "$V_THR" "${THR_RANGE#* }"
    printf '  %-44s %8s  %s  range %s\n' "warm CPU per request bare/fngate >= $T_THROUGHPUT" "$CPU_RATIO" "$(pverdict warm "$CPU_RATIO" ">=" "$T_THROUGHPUT")" "${CPU_RANGE#* }"
    SPARE_RANGE=$(mrange "$R_STHR")
    printf '  %-44s %8s  %s  range %s\n' "warm throughput spare-born/bare" "${SPARE_RANGE%% *}" "$(part warm && echo reported || echo SKIP)" "${SPARE_RANGE#* }"
    printf '  %-44s %8s  %s\n' "cold start median fngate/php <= $T_COLD" "$COLD_RATIO" "$V_COLD"
    printf '  %-44s %8s  %s\n' "idle RSS, $IDLE_FNS functions <= $T_RSS_MB MB" "$IDLE_RSS_MB" "$V_RSS"
    printf '  %-44s %8s  %s\n' "idle processes == 1 (spares apart)" "$IDLE_PROCS" "$V_PROCS"
    printf '  %-44s %8s  %s\n' "cold-burst median excess fngate < php-fpm" "$F_BEX<$P_BEX" "$(part burst && { [ "$BURST_RUN" = yes ] && [ "$BURST_FAIL" = 0 ] && echo PASS || echo MISS; } || echo SKIP)"
    printf '  %-44s %8s  %s\n' "  rounds where fngate's excess is the smaller" "$BURST_WINS" "$(part burst && echo reported || echo SKIP)"
    printf '  %-44s %8s  %s\n' "queue_timeout 503 worst lateness <= $T_LATE_MS ms" "$LATE_MAX" "$(pverdict deadline "$LATE_MAX" "<=" "$T_LATE_MS")"
    printf '  %-44s %8s  %s\n' "overload: 503 share of rejected == 100%" "$OVER_SHARE" "$(pverdict overload "$OVER_SHARE" "==" 100.0)"
    say ""
    say "cold burst ($BURST_N at once, $MAX_INST processes max, $BURST_ROUNDS rounds): median excess fngate $F_BEX ms, php-fpm $P_BEX ms; failed rounds $BURST_FAIL"
    say "cold-start breakdown (us; wake prep spawn serve total; exec: vfork, spawn = child + exec + sdk;"
    say "spare: spawn = assign + setup + dlopen + sdk):"
    say "  spare, sandbox on   $(grep '^median' "$RES/coldtrace-tracesb.txt" 2>/dev/null | sed 's/^median *//')"
    say "  spare, sandbox off  $(grep '^median' "$RES/coldtrace-tracenosb.txt" 2>/dev/null | sed 's/^median *//')"
    say "  exec, sandbox on    $(grep '^median' "$RES/coldtrace-execsb.txt" 2>/dev/null | sed 's/^median *//')"
    say "  exec, sandbox off   $(grep '^median' "$RES/coldtrace-execnosb.txt" 2>/dev/null | sed 's/^median *//')"
    say "  floors      $FLOORS"
    if [ -s "$RES/breakdown.md" ]; then
        say "  as a table for the README (medians, microseconds; $DATE, load $LOAD_START):"
        sed 's/^/  /' "$RES/breakdown.md"
    fi
    say ""
    say "checks    fngate exit status on SIGTERM: $FNGATE_RC; instances left behind: $LEFTOVER;"
    say "          warn/error lines in fngate's log: $FNGATE_ERRLINES; failed cold rounds: $COLD_FAIL"
    say "          (php-fpm/bare ratio: $PHP_RATIO)"
    say "raw       $RES"
    say "========================================================================="
} | tee "$RES/summary.txt"
