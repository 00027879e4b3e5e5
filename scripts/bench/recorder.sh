#!/usr/bin/env bash
# Recorder benchmark (root): overhead and completeness of `l7rec record` against
# tcpdump, under wrk load against nginx, in a network namespace this script creates.
#
#   scripts/bench/recorder.sh            3 rounds, wrk -t1 -c50 -d10s
#   scripts/bench/recorder.sh --smoke    1 round, -d2s (CI)
#   options: --rounds N  --duration SECONDS  --connections N
#            --l7rec-args "ARGS"  extra `l7rec record` options (e.g. --no-syscalls)
#
# Each round runs, in turn: no capture; `l7rec record -o F --port 8080`; and
# `tcpdump -i lo -w F -s 262144 port 8080` (both inside the namespace, on its lo).
# Printed per configuration (medians over rounds): requests/s (wrk), ratio to no
# capture, CPU seconds of the capturing process (user+sys, /usr/bin/time; the BPF
# socket filter runs in the senders' context and shows in the throughput instead),
# drops it reports, bytes written per request, and completeness: transactions
# `l7rec analyze` finds in the file vs the requests wrk reports.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ROUNDS=3 DURATION=10 CONNS=50 EXTRA=
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) ROUNDS=1 DURATION=2 ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --connections) CONNS=$2; shift ;;
        --l7rec-args) EXTRA=$2; shift ;;
        *) sed -n '2,17p' "$0"; exit 2 ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || die "needs root (network namespace, BPF)"
need nginx wrk tcpdump ip cargo awk
build

NS=l7bench-$$
TMP=$(mktemp -d)
NGINX_PID=
CAP_PID=
cleanup() {
    [ -n "$CAP_PID" ] && kill -INT "$CAP_PID" 2>/dev/null && wait "$CAP_PID" 2>/dev/null || true
    [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up
mkdir -p "$TMP/www" "$TMP/logs"
head -c 612 /dev/zero | tr '\0' 'x' >"$TMP/www/index.html"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP/body;
  server {
    listen 127.0.0.1:8080;
    root $TMP/www;
  }
}
CONF
ip netns exec "$NS" nginx -c "$TMP/nginx.conf" -p "$TMP" &
NGINX_PID=$!
for _ in $(seq 50); do
    ip netns exec "$NS" wrk -t1 -c1 -d1s http://127.0.0.1:8080/index.html >/dev/null 2>&1 && break
    sleep 0.1
done
URL=http://127.0.0.1:8080/index.html

machine
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'), tcpdump $(tcpdump --version | head -1 | awk '{print $3}')"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews figures)"
echo "l7rec record -o F --port 8080 $EXTRA"
echo "load: wrk -t1 -c$CONNS -d${DURATION}s --latency $URL (keep-alive), $ROUNDS rounds"

# run_wrk OUT: runs the load, leaves wrk's report in OUT; sets REQS and RPS.
run_wrk() {
    ip netns exec "$NS" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL" >"$1"
    REQS=$(awk '/requests in/ {print $1}' "$1")
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$1")
}

# start_capture NAME FILE ERR CMD...: runs CMD under /usr/bin/time in the namespace.
start_capture() {
    local tf=$TMP/time.$1
    ip netns exec "$NS" "$TIME" -f '%U %S' -o "$tf" "${@:4}" 2>"$3" &
    CAP_PID=$!
    sleep 1.5
    kill -0 "$CAP_PID" 2>/dev/null || { cat "$3" >&2; die "$1 did not start"; }
}

# stop_capture NAME: SIGINT to the capturing process (GNU time ignores it), waits;
# sets CPU (user+sys seconds).
stop_capture() {
    local child
    child=$(ps -o pid= --ppid "$CAP_PID" | head -1 | tr -d ' ')
    [ -n "$child" ] || die "$1: process not found"
    kill -INT "$child"
    wait "$CAP_PID" || true
    CAP_PID=
    CPU=$(awk '{print $1 + $2}' "$TMP/time.$1")
}

# completeness FILE: transactions l7rec analyze finds (with and without a response).
count_tx() {
    "$L7REC" analyze "$1" --format json >"$TMP/tx.json"
    TX=$(grep -c '"method":"' "$TMP/tx.json" || true)
    TX_OK=$(grep -c '"status":200' "$TMP/tx.json" || true)
}

declare -A V
add() { V[$1]="${V[$1]:-} $2"; }
for round in $(seq 1 "$ROUNDS"); do
    # No capture.
    run_wrk "$TMP/wrk.none"
    add none:rps "$RPS"

    # l7rec record.
    F=$TMP/l7rec.pcapng
    rm -f "$F"
    start_capture l7rec "$F" "$TMP/l7rec.err" "$L7REC" record -o "$F" --port 8080 $EXTRA
    run_wrk "$TMP/wrk.l7rec"
    stop_capture l7rec
    add l7rec:rps "$RPS"
    add l7rec:cpu "$CPU"
    DROPS=$(sed -n 's/.*drops: \([0-9]*\) packets, \([0-9]*\) syscall.*/\1 \2/p' "$TMP/l7rec.err")
    add l7rec:drops "${DROPS% *}"
    add l7rec:sysdrops "${DROPS#* }"
    SIZE=$(stat -c %s "$F")
    add l7rec:bpr "$(calc "$SIZE/$REQS")"
    count_tx "$F"
    add l7rec:complete "$(calc "100*$TX_OK/$REQS")"
    echo "round $round l7rec: wrk $REQS requests, l7rec found $TX transactions ($TX_OK with status 200); $(grep 'drops:' "$TMP/l7rec.err")" >&2

    # tcpdump.
    F=$TMP/tcpdump.pcap
    rm -f "$F"
    start_capture tcpdump "$F" "$TMP/tcpdump.err" tcpdump -Z root -i lo -w "$F" -s 262144 port 8080
    run_wrk "$TMP/wrk.tcpdump"
    stop_capture tcpdump
    add tcpdump:rps "$RPS"
    add tcpdump:cpu "$CPU"
    add tcpdump:drops "$(awk '/packets dropped by kernel/ {print $1}' "$TMP/tcpdump.err")"
    SIZE=$(stat -c %s "$F")
    add tcpdump:bpr "$(calc "$SIZE/$REQS")"
    count_tx "$F"
    add tcpdump:complete "$(calc "100*$TX_OK/$REQS")"
    echo "round $round tcpdump: wrk $REQS requests, l7rec analyze found $TX transactions ($TX_OK with status 200); $(tr '\n' ' ' <"$TMP/tcpdump.err" | sed 's/.*\(\<[0-9]* packets captured\)/\1/')" >&2
    echo "round $round/$ROUNDS done (no capture $(median ${V[none:rps]}) req/s so far)" >&2
done

med() { median ${V[$1]}; }
NONE=$(med none:rps)
echo
echo "=== recorder benchmark: medians of $ROUNDS rounds ==="
printf '%-14s %12s %10s %10s %12s %14s %14s\n' "capture" "requests/s" "vs none" "CPU s" "drops" "bytes/request" "complete %"
printf '%-14s %12s %10s %10s %12s %14s %14s\n' "none" "$(fmt 0 "$NONE")" "1.000" "-" "-" "-" "-"
for c in l7rec tcpdump; do
    d=$(med $c:drops)
    [ $c = l7rec ] && d="$d+$(med l7rec:sysdrops)ev"
    printf '%-14s %12s %10s %10s %12s %14s %14s\n' "$c" "$(fmt 0 "$(med $c:rps)")" \
        "$(fmt 3 "$(calc "$(med $c:rps)/$NONE")")" "$(fmt 2 "$(med $c:cpu)")" "$d" \
        "$(fmt 0 "$(med $c:bpr)")" "$(fmt 2 "$(med $c:complete)")"
done
echo
echo "l7rec throughput / none: $(fmt 3 "$(calc "$(med l7rec:rps)/$NONE")")   (target >= 0.90)"
echo "l7rec / tcpdump throughput: $(fmt 3 "$(calc "$(med l7rec:rps)/$(med tcpdump:rps)")")   (target >= 1.0)"
echo "l7rec bytes/request as % of tcpdump's pcap: $(fmt 1 "$(calc "100*$(med l7rec:bpr)/$(med tcpdump:bpr)")")%   (target <= 25%)"
echo "l7rec drops (per round): packets [${V[l7rec:drops]} ], syscall events [${V[l7rec:sysdrops]} ]   (target 0)"
echo "l7rec completeness (per round, % of wrk's requests found with status 200): [${V[l7rec:complete]} ]   (target 100)"
echo "per round requests/s: none [${V[none:rps]} ], l7rec [${V[l7rec:rps]} ], tcpdump [${V[tcpdump:rps]} ]"
