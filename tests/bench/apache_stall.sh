#!/usr/bin/env bash
# apache_stall.sh: hunts the long stalls seen behind Apache's pooled FastCGI
# connections (day 4: 5 of ~27 loaded ab runs had a few requests of 25-30 s
# that then succeeded).  Run by hand, under /work/coord/bench, never in CI.
#
#     tests/bench/apache_stall.sh [--no-build] [--keep] [-r RUNS] [-n N] [-c C]
#                                 [--load K] [--children P] [--threads T]
#                                 [--ttl S] [--idle S] [--loglevel LEVEL]
#
#   -r RUNS       ab runs (default 6), each on the same stack
#   -n N, -c C    ab -n N -c C (default 20000, 32)
#   --load K      K busy loops on the machine during each run (default 2: the
#                 "loaded" machine); 0 for none
#   --children P  Apache processes (default 4), --threads T threads each
#                 (default 8); every process has its own connection pool
#   --ttl S       mod_proxy's ttl for the pooled connections (default 5, the
#                 README's); --idle S the function's idle_timeout (default 10)
#   --loglevel L  Apache's LogLevel (default "warn"; e.g. "warn proxy_fcgi:trace1")
#   --mpm M       Apache's MPM: event (default, Debian's), worker or prefork
#   --static      ab asks Apache for a static file instead (/hello.json, the
#                 same bytes): the same Apache and load with no FastCGI at all,
#                 to tell Apache's own stalls from fngate's
#
# One fngate (the hello function, max_instances 8, request_log on) behind
# Apache 2.4 (mpm_event, mod_proxy_fcgi to the function's unix socket with
# enablereuse=on), Apache's UNIQUE_ID passed as FNGATE_REQUEST_ID so that
# Apache's access log (begin, end, %D) and fngate's request log (when the
# instance had the parameters, how long it took, which pid) name the same
# request.  A monitor samples, 0.5 s apart (plus the time a sample takes),
# the unix connections (ss -xp: bytes waiting unread on each, who holds it),
# Apache's TCP connections and accept queue, what each instance and Apache
# thread waits in (/proc/PID/syscall, wchan) and each instance's CPU ticks,
# context switches and run-queue wait (/proc/PID/schedstat), into
# monitor.txt.  For every request Apache itself took over 2 s the summary
# prints both logs' lines.  Results (ab output, both logs, the samples, each
# process's autogroup) go to tests/bench/results/<date>-apache/.

set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT=$(cd "$BENCH_DIR/../.." && pwd)

RUNS=6
AB_N=20000
AB_C=32
LOAD=2
CHILDREN=4
THREADS=8
TTL=5
IDLE=10
LOGLEVEL=warn
MPM=event
STATIC=0
SLOW_MS=2000
want=""
for arg in "$@"; do
    if [ -n "$want" ]; then
        case "$want" in
            r) RUNS=$arg ;; n) AB_N=$arg ;; c) AB_C=$arg ;; load) LOAD=$arg ;;
            children) CHILDREN=$arg ;; threads) THREADS=$arg ;; ttl) TTL=$arg ;;
            idle) IDLE=$arg ;; loglevel) LOGLEVEL=$arg ;; mpm) MPM=$arg ;;
        esac
        want=""
        continue
    fi
    common_arg "$arg" && continue
    case "$arg" in
        -r) want=r ;; -n) want=n ;; -c) want=c ;; --load) want=load ;;
        --children) want=children ;; --threads) want=threads ;; --ttl) want=ttl ;;
        --idle) want=idle ;; --loglevel) want=loglevel ;; --mpm) want=mpm ;;
        --static) STATIC=1 ;;
        *) bad_arg "$arg" ;;
    esac
done
[ -z "$want" ] || { echo "apache_stall.sh: -$want needs a value (try --help)" >&2; exit 2; }

APACHE=/usr/sbin/apache2
APACHE_MODULES=/usr/lib/apache2/modules
need_file "$APACHE" apache2
need_cmd ab apache2-utils
need_cmd ss iproute2
need_cmd curl curl
need_report

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
STAMP=$(date +%Y%m%d-%H%M%S)
RES="$BENCH_DIR/results/$STAMP-apache"
mkdir -p "$RES" || die "cannot create $RES"
FNGATE="$ROOT/gateway/fngate"
HELLO="$ROOT/functions/hello/handler"
build_tree
{ [ -x "$FNGATE" ] && [ -x "$HELLO" ]; } || die "build the project first"

make_run_dir fngate-apache
FNGATE_PID=""
APACHE_PID=""
MON_PID=""
LOAD_PIDS=""
cleanup() {
    local p
    cleanup_once || return
    for p in $LOAD_PIDS; do kill -KILL "$p" 2>/dev/null; done
    stop_pid "$MON_PID" 2
    stop_pid "$APACHE_PID" 10
    stop_pid "$FNGATE_PID" 15
    for p in $(pids_under_run); do kill -KILL "$p" 2>/dev/null; done
    for f in fngate.log requests.log apache/error.log apache/access.log; do
        [ -f "$RUN/$f" ] && cp "$RUN/$f" "$RES/${f//\//-}"
    done
    remove_run_dir
}
trap_cleanup

if [ "$IS_ROOT" = 1 ]; then RUN_GROUP=nogroup; else RUN_GROUP=$(id -gn); fi
mkdir -p "$RUN/functions/hello" "$RUN/sock" "$RUN/apache/htdocs"
cp "$HELLO" "$RUN/functions/hello/handler"
cat >"$RUN/fngate.conf" <<EOF
; written by tests/bench/apache_stall.sh
[gateway]
functions_dir = $RUN/functions
socket_dir = $RUN/sock
socket_mode = 0660
socket_group = $RUN_GROUP
log_level = info
request_log = $RUN/requests.log
$([ "$IS_ROOT" = 1 ] && printf 'user = nobody\ngroup = nogroup\n')

[hello]
max_instances = 8
idle_timeout = ${IDLE}s
request_timeout = 30s
EOF

PORT=$(free_port) || die "no free TCP port found"
SOCK="$RUN/sock/fn/hello.sock"
case "$MPM" in event | worker | prefork) ;; *) die "--mpm: event, worker or prefork, not $MPM" ;; esac
mods="mpm_$MPM authz_core proxy proxy_fcgi unique_id"
URL_PATH=/fn/hello
[ "$STATIC" = 1 ] && URL_PATH=/hello.json
printf '{"hello":"world"}' >"$RUN/apache/htdocs/hello.json"
{
    printf 'ServerRoot %s\nServerName localhost\nListen 127.0.0.1:%s\n' "$RUN/apache" "$PORT"
    printf 'PidFile %s/apache/httpd.pid\nDefaultRuntimeDir %s/apache\nMutex file:%s/apache default\n' "$RUN" "$RUN" "$RUN"
    printf 'ErrorLog %s/apache/error.log\nLogLevel %s\n' "$RUN" "$LOGLEVEL"
    [ "$IS_ROOT" = 1 ] && printf 'User nobody\nGroup nogroup\n'
    for m in $mods; do printf 'LoadModule %s_module %s/mod_%s.so\n' "$m" "$APACHE_MODULES" "$m"; done
    if [ "$MPM" = prefork ]; then
        # one request at a time per process: CHILDREN x THREADS processes
        workers=$((CHILDREN * THREADS))
        printf 'StartServers %s\nServerLimit %s\nMinSpareServers %s\nMaxSpareServers %s\n' \
            "$workers" "$workers" "$workers" "$workers"
    else
        printf 'StartServers %s\nServerLimit %s\nThreadsPerChild %s\nThreadLimit %s\n' \
            "$CHILDREN" "$CHILDREN" "$THREADS" "$THREADS"
        printf 'MinSpareThreads %s\nMaxSpareThreads %s\n' "$THREADS" "$((CHILDREN * THREADS))"
    fi
    cat <<EOF
DocumentRoot $RUN/apache/htdocs
MaxRequestWorkers $((CHILDREN * THREADS))
MaxConnectionsPerChild 0
LogFormat "%{begin:msec}t %{end:msec}t %D %>s %{UNIQUE_ID}e %P %{tid}P" stall
CustomLog $RUN/apache/access.log stall
ProxyPass "/fn/hello" "unix:$SOCK|fcgi://localhost/fn/hello" enablereuse=on ttl=$TTL
ProxyFCGISetEnvIf "true" FNGATE_REQUEST_ID "%{reqenv:UNIQUE_ID}"
EOF
} >"$RUN/apache/httpd.conf"

machine_info
say "apache_stall.sh: $RUNS runs of ab -n $AB_N -c $AB_C through Apache (mpm_$MPM, $CHILDREN x $THREADS workers)"
if [ "$STATIC" = 1 ]; then
    say "   to a static file ($URL_PATH, no FastCGI), $LOAD busy loops"
else
    say "   (enablereuse=on ttl=$TTL) to fngate's hello (max_instances 8, idle_timeout ${IDLE}s), $LOAD busy loops"
fi
say "machine   $MACHINE"
say "date      $DATE; load $LOAD_START; busy $BUSY_START%"

"$FNGATE" serve -c "$RUN/fngate.conf" >"$RUN/fngate.log" 2>&1 &
FNGATE_PID=$!
wait_until 10 sh -c "[ -S '$SOCK' ] || ! kill -0 $FNGATE_PID"
[ -S "$SOCK" ] || { cat "$RUN/fngate.log" >&2; die "fngate made no socket for hello"; }
"$APACHE" -f "$RUN/apache/httpd.conf" -DFOREGROUND >"$RUN/apache/stderr.log" 2>&1 &
APACHE_PID=$!
apache_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$URL_PATH")" = 200 ]; }
wait_until 10 apache_up || { cat "$RUN/apache/stderr.log" "$RUN/apache/error.log" >&2; die "Apache does not answer 200 on $URL_PATH"; }

# monitor: every 0.5 s, the unix connections of the instances and Apache
# (Recv-Q: bytes sent and not yet read) and what each instance waits in
monitor() {
    local p
    while :; do
        printf '@ %s\n' "$(date +%s.%N | cut -c1-14)"
        ss -xpn 2>/dev/null | awk 'NR > 1 && /handler|apache2|hello/ { print "ss", $0 }'
        for p in $(pids_under_run); do
            # syscall (or "running"), wchan, then state, utime+stime ticks
            # and context switches: an instance that makes no progress
            # while its CPU time climbs is spinning
            printf 'inst %s %s %s %s %s %s\n' "$p" "$(cut -d' ' -f1-3 "/proc/$p/syscall" 2>/dev/null)" \
                "$(cat "/proc/$p/wchan" 2>/dev/null)" \
                "$(awk '{ sub(/^.*\) /, ""); print $1, $12 + $13 }' "/proc/$p/stat" 2>/dev/null)" \
                "$(awk '/ctxt_switches/ { s += $2 } END { print "cs=" s }' "/proc/$p/status" 2>/dev/null)" \
                "$(awk '{ printf "ran=%.0fms waited=%.0fms", $1 / 1e6, $2 / 1e6 }' "/proc/$p/schedstat" 2>/dev/null)"
        done
        # ab's connections to Apache (Recv-Q on Apache's side: a request
        # Apache has not read), Apache's accept queue, and what Apache's
        # threads wait in, counted per process
        ss -tn 2>/dev/null | awk -v p=":$PORT" '$4 ~ p"$" { print "tcp", $0 }'
        ss -ltn 2>/dev/null | awk -v p=":$PORT" '$4 ~ p"$" { print "listen", $0 }'
        for p in $APACHE_PID $(pgrep -P "$APACHE_PID" 2>/dev/null); do
            for t in /proc/"$p"/task/*; do
                printf '%s %s\n' "$(cut -d' ' -f1 "$t/syscall" 2>/dev/null)" "$(cat "$t/wchan" 2>/dev/null)"
            done | sort | uniq -c | awk -v p="$p" '{ printf "apache %s %s x%s\n", p, $2 " " $3, $1 }'
        done
        sleep 0.5
    done
}
monitor >"$RES/monitor.txt" 2>/dev/null &
MON_PID=$!

printf '%-5s %9s %7s %7s %9s %6s %6s\n' run "req/s" failed non2xx "max ms" ">2s" ">1s"
TOTAL_SLOW=0
for ((run = 1; run <= RUNS; run++)); do
    LOAD_PIDS=""
    for ((i = 0; i < LOAD; i++)); do
        sh -c 'while :; do :; done' &
        LOAD_PIDS="$LOAD_PIDS $!"
    done
    printf 'run %s start %s\n' "$run" "$(date +%s.%N | cut -c1-14)" >>"$RES/runs.txt"
    # who shares the CPU with whom: each process's autogroup (setsid makes
    # one), nice and scheduling class
    for p in $(pids_under_run) $APACHE_PID $(pgrep -P "$APACHE_PID") $LOAD_PIDS $$; do
        printf 'run %s pid %s %s %s %s\n' "$run" "$p" "$(cat "/proc/$p/comm" 2>/dev/null)" \
            "$(cat "/proc/$p/autogroup" 2>/dev/null)" "$(ps -o ni=,cls= -p "$p" 2>/dev/null)"
    done >>"$RES/sched.txt"
    ab -n "$AB_N" -c "$AB_C" -s 120 -g "$RES/ab-$run.tsv" "http://127.0.0.1:$PORT$URL_PATH" \
        >"$RES/ab-$run.txt" 2>&1
    rc=$?
    printf 'run %s end %s rc %s\n' "$run" "$(date +%s.%N | cut -c1-14)" "$rc" >>"$RES/runs.txt"
    for p in $LOAD_PIDS; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    LOAD_PIDS=""
    rps=$(awk '/^Requests per second/ { print $4 }' "$RES/ab-$run.txt")
    failed=$(awk '/^Failed requests/ { print $3 }' "$RES/ab-$run.txt")
    non2xx=$(awk '/^Non-2xx responses/ { print $3 }' "$RES/ab-$run.txt")
    maxms=$(awk -F'\t' 'NR > 1 && $5 > m { m = $5 } END { print m + 0 }' "$RES/ab-$run.tsv" 2>/dev/null)
    slow2=$(awk -F'\t' -v s="$SLOW_MS" 'NR > 1 && $5 > s' "$RES/ab-$run.tsv" 2>/dev/null | wc -l)
    slow1=$(awk -F'\t' 'NR > 1 && $5 > 1000' "$RES/ab-$run.tsv" 2>/dev/null | wc -l)
    TOTAL_SLOW=$((TOTAL_SLOW + slow2))
    printf '%-5s %9s %7s %7s %9s %6s %6s\n' "$run" "${rps:-?}" "${failed:-?}" "${non2xx:-0}" "$maxms" "$slow2" "$slow1"
    sleep 2
done
stop_pid "$MON_PID" 2
MON_PID=""

# every request Apache took longer than SLOW_MS over: its line in both logs
say ""
say "requests Apache took more than $SLOW_MS ms over (access log: begin end us status id pid tid):"
awk -v s="$SLOW_MS" '$3 > s * 1000' "$RUN/apache/access.log" >"$RES/slow.txt"
if [ ! -s "$RES/slow.txt" ]; then
    say "   none"
else
    while read -r begin end us status id apid tid; do
        say "apache  begin $begin end $end $((us / 1000)) ms status $status pid $apid tid $tid id $id"
        say "fngate  $(grep -F "\"$id\"" "$RUN/requests.log" 2>/dev/null | head -1)"
    done <"$RES/slow.txt"
fi
say ""
say "slow requests in all: $TOTAL_SLOW; fngate log warnings: $(grep -ciE ' (warn|error) ' "$RUN/fngate.log"), instances killed: $(grep -c 'killed by signal' "$RUN/fngate.log")"
say "raw       $RES"
