#!/usr/bin/env bash
# warm_instr.sh: instructions per warm hello request, counted by valgrind's
# callgrind, which a shared machine's noise cannot move (issue 11 point 1).
#
#     tests/bench/warm_instr.sh [--no-build] [--keep] [-n N]
#
# One nginx (one process: master_process off, under callgrind) in front of
#   /fn/hello   fngate's hello through the shipped nginx/fngate.inc and the
#               exact location `fngate nginx --locations` writes for it
#   /fn/hello/  the same through the include's regex fallback (what a
#               function added since the file was written costs)
#   /fn/hellospare  the same hello with its handler.so (its exact location
#               too), so that its instance is spare-born: gateway/fngate-spare
#               (dynamically linked) takes the function on and dlopen()s
#               handler.so
#   /fn-direct  the same instance behind a plain location (the bare
#               program's parameters)
#   /bare       bare_hello.c on spawn-fcgi (one child, under callgrind)
# with fngate's one hello instance under callgrind too (a wrapper handler,
# sandbox off, since the sandbox would refuse valgrind's own system calls),
# and its spare processes likewise (a wrapper fngate-spare next to a copy
# of fngate, which runs the fngate-spare next to it).
# For each path, two fresh stacks: one serves 100 requests, the other 100 + N
# (one keep-alive client); the difference of each process's instructions
# over N is the cost of one warm request, start-up and shutdown cancelled.  Prints
# nginx's and the back end's instructions per request for each path.  Run
# under /work/coord/heavy (it is a load loop), not as a timed figure.

set -u -o pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT=$(cd "$BENCH_DIR/../.." && pwd)

N=2000
want_n=0
for arg in "$@"; do
    if [ "$want_n" = 1 ]; then N=$arg; want_n=0; continue; fi
    common_arg "$arg" && continue
    case "$arg" in
        -n) want_n=1 ;;
        *) bad_arg "$arg" ;;
    esac
done
need_cmd valgrind valgrind
need_cmd spawn-fcgi spawn-fcgi
need_cmd nginx nginx
need_report
NGINX=$(command -v nginx)
FNGATE="$ROOT/gateway/fngate"
HELLO="$ROOT/functions/hello/handler"
HELLO_SO="$ROOT/functions/hello/handler.so"
SPARE="$ROOT/gateway/fngate-spare"
RES=$(mktemp -d)
build_tree
[ -x "$FNGATE" ] && [ -x "$HELLO" ] && [ -f "$HELLO_SO" ] && [ -x "$SPARE" ] || die "build the project first"

make_run_dir fngate-instr
NGINX_PID=""; FNGATE_PID=""; BARE_PID=""
cleanup() {
    cleanup_once || return
    stop_pid "$NGINX_PID" 10
    stop_pid "$FNGATE_PID" 15
    [ -n "$BARE_PID" ] && kill -TERM "$BARE_PID" 2>/dev/null
    for p in $(pids_under_run); do kill -KILL "$p" 2>/dev/null; done
    [ "${KEEP:-0}" = 1 ] && cp -r "$CG" "$RUN/fngate.log" "$RUN/nginx/error.log" "$RES/" && say "kept: $RES"
    remove_run_dir
    [ "${KEEP:-0}" = 1 ] || rm -rf "$RES"
}
trap_cleanup

CG="$RUN/cg"
mkdir -p "$RUN/functions/hello" "$RUN/functions/hellospare" "$RUN/bin" "$RUN/sock" "$RUN/bare" \
    "$RUN/nginx" "$CG"
chmod 1777 "$CG"
cp "$HELLO" "$RUN/hello"
# hellospare: a handler (never run: the spare takes every cold start) and its
# handler.so, copied after it (fngate ignores a handler.so older than its
# handler).
cp "$HELLO" "$RUN/functions/hellospare/handler"
cp "$HELLO_SO" "$RUN/functions/hellospare/handler.so"
cp "$FNGATE" "$RUN/bin/fngate"
FNGATE="$RUN/bin/fngate"
cc -O2 -Wall -o "$RUN/bare/bare_hello" "$BENCH_DIR/bare_hello.c" -lfcgi || die "cannot build bare_hello.c"
VG="$(command -v valgrind) --tool=callgrind --dump-instr=no --compress-strings=no --vgdb=no"
# tool FILE: the command prefix that counts into FILE (%p: the pid)
tool() { printf '%s --callgrind-out-file=%s' "$VG" "$1"; }
cat >"$RUN/functions/hello/handler" <<WRAP
#!/bin/sh
exec $(tool "$CG/instance.out.%p") $RUN/hello "\$@" 2>>$CG/instance.err
WRAP
# fngate runs the fngate-spare next to it: this one, under callgrind (a
# spare is exec'd with an empty environment).
cat >"$RUN/bin/fngate-spare" <<WRAP
#!/bin/sh
exec $(tool "$CG/spare.out.%p") $SPARE "\$@" 2>>$CG/spare.err
WRAP
chmod 755 "$RUN/functions/hello/handler" "$RUN/hello" "$RUN/bare/bare_hello" "$RUN/bin/fngate-spare"
cat >"$RUN/fngate.conf" <<CONF
[gateway]
functions_dir = $RUN/functions
socket_dir = $RUN/sock
socket_mode = 0666
log_level = info

[hello]
sandbox = off
max_instances = 1
min_instances = 1
idle_timeout = 600s
request_timeout = 60s

; its one instance starts with the first request, through the spare;
; valgrind takes no setrlimit(RLIMIT_NOFILE) but one to the hard limit it
; leaves its process (ours minus the 12 descriptors it keeps for itself)
[hellospare]
sandbox = off
max_instances = 1
min_instances = 0
idle_timeout = 600s
request_timeout = 60s
open_files = $(($(ulimit -Hn) - 12))
$([ "$(id -u)" = 0 ] && printf 'user = nobody\ngroup = nogroup')
CONF
PORT=$(free_port) || die "no free port"
fastcgi_params_bench >"$RUN/nginx/fastcgi_params.bench"
cp "$ROOT/nginx/fngate.inc" "$RUN/nginx/fngate.inc"
# the head bench_core.sh and bench_db.sh use, one process (under callgrind)
{
    nginx_conf_head 1 "" "master_process off;" "daemon off;" "pcre_jit on;"
    cat <<CONF
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$PORT;
        set \$fngate_socket_dir $RUN/sock;
        include fngate.inc;
        location = /bare {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /bare;
            fastcgi_pass unix:$RUN/bare/bare.sock;
        }
        location = /fn-direct {
            include fastcgi_params.bench;
            fastcgi_param SCRIPT_NAME /fn/hello;
            fastcgi_pass unix:$RUN/sock/fn/hello.sock;
        }
        location = /healthz { return 200 'ok'; }
    }
}
CONF
} >"$RUN/nginx/nginx.conf"
# fngate.inc's exact location for hello, made as the README says
fngate_locations "$FNGATE" "$RUN/fngate.conf" "$RUN/nginx"

# stack_up / stack_down: fngate (its hello instance under callgrind), the
# bare program and nginx, all under callgrind; down stops them so that each
# writes its totals.
stack_up() {
    "$FNGATE" serve -c "$RUN/fngate.conf" >>"$RUN/fngate.log" 2>&1 &
    FNGATE_PID=$!
    rm -f "$RUN/bare/bare.sock"
    spawn-fcgi "${spawn_args[@]}" -- \
        $(tool "$CG/bare.out.%p") "$RUN/bare/bare_hello" \
        >"$RUN/spawn.log" 2>&1 || { cat "$RUN/spawn.log" >&2; die "spawn-fcgi failed"; }
    BARE_PID=$(cat "$RUN/bare/pid")
    $(tool "$CG/nginx.out.%p") "$NGINX" -p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" \
        -e stderr >>"$RUN/nginx/error.log" 2>&1 &
    NGINX_PID=$!
    wait_until 60 nginx_ready || { cat "$RUN/nginx/error.log" >&2; die "nginx did not start"; }
    wait_until 60 test -S "$RUN/sock/fn/hello.sock" || die "no hello socket"
    # A spare's out file is made as it starts, as root, and written as it
    # exits, as the function's user when it took hellospare on.
    if [ "$(id -u)" = 0 ]; then
        wait_until 60 sh -c "ls $CG/spare.out.* >/dev/null 2>&1" || die "no spare process"
        chown nobody:nogroup "$CG"/spare.out.*
    fi
}
stack_down() {
    stop_pid "$NGINX_PID" 30; NGINX_PID=""
    stop_pid "$FNGATE_PID" 30; FNGATE_PID=""
    kill -TERM "$BARE_PID" 2>/dev/null
    BARE_PID=""
    # every process under callgrind (the instance outlives fngate a little)
    wait_until 60 sh -c "! pgrep -f -- '[-]-callgrind-out-file=$CG/' >/dev/null" \
        || die "processes under callgrind did not exit"
}
spawn_args=(-s "$RUN/bare/bare.sock" -M 0666 -F 1 -P "$RUN/bare/pid")
[ "$(id -u)" = 0 ] && spawn_args+=(-u nobody -g nogroup)

# drive PATH COUNT: COUNT keep-alive GETs; fails unless every one is 200
drive() {
    /usr/bin/python3 - "$PORT" "$1" "$2" <<'PY'
import http.client, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for i in range(n):
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    if r.status != 200 or body != b'{"hello":"world"}':
        sys.exit("GET %s: %d %r" % (path, r.status, body))
PY
}
# ir PREFIX: the instructions callgrind counted in the process whose out
# file starts with PREFIX; of several (the spares: the one that took the
# function on, and its replacement that waited), the most
ir() {
    local f n max=""
    for f in "$1"*; do
        [ -f "$f" ] || continue
        n=$(awk '/^(summary|totals):/ { print $2; exit }' "$f")
        [ -z "$max" ] || [ "${n:-0}" -gt "$max" ] && max=$n
    done
    echo "${max:-nan}"
}
# run PATH COUNT: "nginx back-end" instructions of a stack that served COUNT
# requests to PATH (plus one to /healthz)
run() {
    local back
    stack_up
    drive "$1" "$2" || die "$1 failed"
    stack_down
    case $1 in /bare) back=$CG/bare.out ;; /fn/hellospare) back=$CG/spare.out ;; *) back=$CG/instance.out ;; esac
    printf '%s %s\n' "$(ir "$CG/nginx.out")" "$(ir "$back")" >"$RUN/ir"
    # kept (--keep) for callgrind_annotate
    mkdir -p "$CG/run${1//\//-}-$2" && mv "$CG"/*.out.* "$CG/run${1//\//-}-$2/"
}

W=100
printf '%-10s %12s %12s   (instructions per request: %d requests minus %d, one stack each)\n' path nginx back-end "$((W + N))" "$W"
for path in ${WARM_INSTR_PATHS:-/fn/hello /fn/hello/ /fn/hellospare /fn-direct /bare}; do
    run "$path" "$W"
    read -r ng0 be0 <"$RUN/ir"
    run "$path" "$((W + N))"
    read -r ng1 be1 <"$RUN/ir"
    awk -v a="$ng0" -v b="$ng1" -v c="$be0" -v d="$be1" -v n="$N" -v p="$path" \
        'BEGIN { printf "%-10s %12.0f %12.0f\n", p, (b - a) / n, (d - c) / n }'
done
