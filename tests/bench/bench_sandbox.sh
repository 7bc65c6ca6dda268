#!/usr/bin/env bash
# bench_sandbox.sh: what the instance sandbox costs (issue 6).  By hand, never in CI.
#
#     tests/bench/bench_sandbox.sh [--quick] [--no-build] [--keep]
#
#   --quick     5 cold rounds per side instead of 15, 3 s wrk runs instead of 8 s
#   --no-build  skip `make`
#   --keep      keep the run directory
#
# One nginx (nginx/nginx.conf) in front of one fngate serving the hello
# function four times: `cold` and `coldoff` (idle_timeout = 100ms) for cold
# starts, `warm` and `warmoff` for throughput; the *off ones run with
# sandbox = off, the yardstick, in the same run.  It measures
#   (a) cold start, alternating the two, median of N: the first request's
#       time through nginx (curl) and the spawn-to-ready time fngate logs;
#   (b) warm hello throughput: wrk -t2 -c32 --latency, A B A B A B, best of three;
#   (c) the sandbox's share of a bare spawn (sandbox_spawn.c: vfork + exec +
#       wait of a static program, with and without it, alternating, 400 each),
#       which no nginx or scheduling noise blurs;
# and prints the differences and ratios with the targets (at most 0.1 ms
# added to a cold start, no measurable warm cost).  Results go to
# tests/bench/results/<date>-sandbox/.

set -u -o pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/bench/lib.sh
source "$BENCH_DIR/lib.sh"
ROOT=$(cd "$BENCH_DIR/../.." && pwd)

for arg in "$@"; do
    common_arg "$arg" || bad_arg "$arg"
done
if [ "$QUICK" = 1 ]; then COLD_N=5; RUN_S=3; else COLD_N=15; RUN_S=8; fi
WARM_S=2
WRK_T=2
WRK_C=32
T_COLD_MS=0.1   # added to a cold start, at most
T_WARM=0.97     # sandboxed/unsandboxed warm req/s, at least (noise on a shared machine)

need_cmd wrk wrk
need_cmd nginx nginx
need_cmd curl curl
need_cmd awk mawk
need_report

STAMP=$(date +%Y%m%d-%H%M%S)
RES="$BENCH_DIR/results/$STAMP-sandbox"
mkdir -p "$RES" || die "cannot create $RES"
FNGATE="$ROOT/gateway/fngate"
HELLO="$ROOT/functions/hello/handler"
build_tree
[ -x "$FNGATE" ] && [ -x "$HELLO" ] || die "build the project first"

make_run_dir fngate-bench-sbx
FNGATE_PID=""
NGINX_PID=""
WRK_PID=""
cleanup() {
    [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
    stop_pid "$NGINX_PID" 10
    stop_pid "$FNGATE_PID" 15
    for p in $(pids_under_run); do kill -KILL "$p" 2>/dev/null; done
    remove_run_dir
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for fn in cold coldoff warm warmoff; do
    mkdir -p "$RUN/functions/$fn"
    cp "$HELLO" "$RUN/functions/$fn/handler"
done
mkdir -p "$RUN/sock" "$RUN/nginx"
chmod -R a+rX "$RUN"
GROUP_LINE=""
[ "$(id -u)" = 0 ] && GROUP_LINE="socket_group = nogroup"
cat >"$RUN/fngate.conf" <<EOF
; written by tests/bench/bench_sandbox.sh
[gateway]
functions_dir = $RUN/functions
socket_dir = $RUN/sock
socket_mode = 0660
$GROUP_LINE
log_level = debug

[defaults]
max_instances = 8
idle_timeout = 10s

[cold]
idle_timeout = 100ms
[coldoff]
idle_timeout = 100ms
sandbox = off
[warmoff]
sandbox = off
EOF

PORT=$(free_port) || die "no free port"
sed -e "s|^\(\s*listen\s\+127\.0\.0\.1:\)8080;|\1$PORT;|" \
    -e "s|^\(\s*set \$fngate_socket_dir \).*;|\1$RUN/sock;|" \
    "$ROOT/nginx/nginx.conf" >"$RUN/nginx/nginx.conf"
cp "$ROOT/nginx/fngate.inc" "$RUN/nginx/"

"$FNGATE" serve -c "$RUN/fngate.conf" >"$RES/fngate.log" 2>&1 &
FNGATE_PID=$!
wait_until 10 test -S "$RUN/sock/fn/warmoff.sock" || die "fngate did not start: $RES/fngate.log"
nginx -p "$RUN/nginx" -c "$RUN/nginx/nginx.conf" -e stderr -g 'daemon off;' >"$RES/nginx.log" 2>&1 &
NGINX_PID=$!
wait_until 10 curl -fs -o /dev/null "http://127.0.0.1:$PORT/fn/warm" || die "nginx/fngate not answering"
grep -m1 'sandbox:' "$RES/fngate.log" | sed 's/^[^ ]* [^ ]* *//' | tee "$RES/kernel.txt"

# --- (a) cold start ------------------------------------------------------------
no_instance() { [ "$(children_with_exe "$FNGATE_PID" "$RUN/functions/$1/handler")" = 0 ]; }
# Both gone: the other side's reaping must not land in this side's cold start.
both_cold() { no_instance cold && no_instance coldoff; }
ready_ms() { # the spawn-to-ready time fngate logged for instance pid $2 of $1
    awk -v k="[fn $1 pid $2] ready in" 'index($0, k) {
        for (i = 2; i < NF; i++) if ($(i - 1) == "ready" && $i == "in") { print $(i + 1); exit } }' "$RES/fngate.log"
}
say "== (a) cold start, $COLD_N rounds per side (+1 discarded), alternating =="
: >"$RES/cold.txt"
for ((round = 0; round <= COLD_N; round++)); do
    for fn in cold coldoff; do
        wait_until 15 both_cold || die "instances did not go away"
        sleep 0.05
        out=$(curl -s -o "$RUN/body" -w '%{http_code} %{time_total}' "http://127.0.0.1:$PORT/fn/$fn")
        pid=$(pgrep -P "$FNGATE_PID" -f "$RUN/functions/$fn/handler" | head -1)
        sleep 0.05 # the tick logs the ready time
        [ "$round" = 0 ] && continue
        printf '%s %s %s %s\n' "$fn" "${out% *}" "$(awk -v t="${out#* }" 'BEGIN { printf "%.3f", t * 1000 }')" \
            "$(ready_ms "$fn" "$pid")" >>"$RES/cold.txt"
    done
done
median() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
bad=$(awk '$2 != 200' "$RES/cold.txt" | wc -l)
c_on=$(awk '$1 == "cold" { print $3 }' "$RES/cold.txt" | median)
c_off=$(awk '$1 == "coldoff" { print $3 }' "$RES/cold.txt" | median)
r_on=$(awk '$1 == "cold" && $4 != "" { print $4 }' "$RES/cold.txt" | median)
r_off=$(awk '$1 == "coldoff" && $4 != "" { print $4 }' "$RES/cold.txt" | median)

# --- (b) warm throughput ---------------------------------------------------------
say "== (b) warm hello, wrk -t$WRK_T -c$WRK_C -d${RUN_S}s, A B A B A B =="
best_on=0
best_off=0
for pass in 1 2 3; do
    for fn in warm warmoff; do
        run_wrk "/fn/$fn" "$WARM_S" "$RES/wrk-$fn-warmup-$pass.txt" >/dev/null
        run_wrk "/fn/$fn" "$RUN_S" "$RES/wrk-$fn-$pass.txt" --latency
        read -r rps p50 p99 _ non2xx errs < <(parse_wrk "$RES/wrk-$fn-$pass.txt")
        say "   $fn pass $pass: $rps req/s, p50 $p50 ms, p99 $p99 ms, non-2xx $non2xx, socket errors $errs"
        if [ "$fn" = warm ]; then
            [ "$rps" -gt "$best_on" ] && best_on=$rps
        else
            [ "$rps" -gt "$best_off" ] && best_off=$rps
        fi
    done
done

# --- (c) the sandbox's share of a bare spawn ---------------------------------------
say "== (c) vfork + exec + wait of a static program, with and without the sandbox =="
printf 'int main(void) { return 0; }\n' >"$RUN/true.c"
spawn_line="(c) not measured (see $RES/spawn-build.log)"
if cc -O2 -static -o "$RUN/true" "$RUN/true.c" 2>"$RES/spawn-build.log" &&
    cc -O2 -D_GNU_SOURCE -I"$ROOT" -I"$ROOT/gateway" -o "$RUN/sandbox_spawn" \
        "$BENCH_DIR/sandbox_spawn.c" "$ROOT/gateway/.libs/libgateway.a" -lseccomp \
        $(pkg-config --libs libevent_core inih) 2>>"$RES/spawn-build.log"; then
    read -r s_on s_off s_add c_on2 c_off2 c_add < <("$RUN/sandbox_spawn" "$RUN/true" 400 2>/dev/null) || true
    spawn_line="bare spawn, median of 400 each: wall: sandbox on ${s_on:-?} ms, off ${s_off:-?} ms, added ${s_add:-?} ms; child CPU: on ${c_on2:-?} ms, off ${c_off2:-?} ms, added ${c_add:-?} ms (target <= $T_COLD_MS ms: $(awk -v a="${c_add:-1}" -v t="$T_COLD_MS" 'BEGIN { print (a <= t) ? "PASS" : "MISS" }'))"
fi

# --- summary ---------------------------------------------------------------------
{
    say ""
    say "== summary ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)) =="
    say "cold start through nginx, median of $COLD_N: sandbox on $c_on ms, off $c_off ms, added $(awk -v a="$c_on" -v b="$c_off" 'BEGIN { printf "%.3f", a - b }') ms"
    say "spawn to ready (fngate's log), median:      sandbox on $r_on ms, off $r_off ms, added $(awk -v a="$r_on" -v b="$r_off" 'BEGIN { printf "%.3f", a - b }') ms (target <= $T_COLD_MS ms: $(awk -v a="$r_on" -v b="$r_off" -v t="$T_COLD_MS" 'BEGIN { print (a - b <= t) ? "PASS" : "MISS" }'))"
    say "$spawn_line"
    say "warm hello, best of three: sandbox on $best_on req/s, off $best_off req/s, ratio $(awk -v a="$best_on" -v b="$best_off" 'BEGIN { printf "%.3f", b ? a / b : 0 }') (target >= $T_WARM: $(awk -v a="$best_on" -v b="$best_off" -v t="$T_WARM" 'BEGIN { print (b && a / b >= t) ? "PASS" : "MISS" }'))"
    [ "$bad" = 0 ] || say "warning: $bad cold requests did not answer 200 (see $RES/cold.txt)"
} | tee "$RES/summary.txt"
