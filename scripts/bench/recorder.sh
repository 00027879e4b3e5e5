#!/usr/bin/env bash
# Recorder benchmark (root): overhead and completeness of `l7rec record` against
# tcpdump, under wrk load against nginx, in a network namespace this script creates.
#
#   scripts/bench/recorder.sh            3 rounds, wrk -t1 -c50 -d10s
#   scripts/bench/recorder.sh --smoke    1 round, -d2s (CI)
#   options: --rounds N  --duration SECONDS  --connections N
#            --l7rec NAME=ARGS  an l7rec configuration to measure (repeatable; default:
#                               "l7rec=" and "l7rec-calls=--syscalls calls")
#            --binary NAME=PATH configuration NAME runs this l7rec binary instead of
#                               the one built here (A/B against another build)
#            --floor            also measure scripts/bench/ring_floor.c: the same kind of
#                               packet ring, no filter, a consumer that only reads (the
#                               ceiling for any AF_PACKET capture here)
#
# Each round runs each capture once: no capture; each l7rec configuration (`l7rec record
# -o F --port 8080 ARGS`); and `tcpdump -i lo -w F -s 262144 port 8080` (all inside the
# namespace, on its lo), starting one further along that list every round. Ratios are
# taken within a round (the machine drifts over minutes), then the median over rounds.
# Printed per configuration (medians over rounds): requests/s (wrk), ratio to no capture
# and to tcpdump, CPU seconds of the capturing process (user+sys, /usr/bin/time,
# startup included) and per request served (steadier than throughput on a noisy host;
# the BPF programs run in the traced tasks' context and show in the throughput
# instead), drops it reports, bytes written per request, and completeness:
# transactions `l7rec analyze` finds in the file vs the requests wrk reports.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../lib/nginx.sh"

ROUNDS=3 DURATION=10 CONNS=50 CONFIGS=() FLOOR=
declare -A BINARY=()
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) ROUNDS=1 DURATION=2 ;;
        --rounds) ROUNDS=$2; shift ;;
        --duration) DURATION=$2; shift ;;
        --connections) CONNS=$2; shift ;;
        --l7rec) case $2 in *=*) CONFIGS+=("$2") ;; *) die "--l7rec wants NAME=ARGS" ;; esac; shift ;;
        --binary) case $2 in *=*) BINARY[${2%%=*}]=${2#*=} ;; *) die "--binary wants NAME=PATH" ;; esac; shift ;;
        --floor) FLOOR=1 ;;
        *) sed -n '2,25p' "$0"; exit 2 ;;
    esac
    shift
done
[ ${#CONFIGS[@]} -gt 0 ] || CONFIGS=("l7rec=" "l7rec-calls=--syscalls calls")
NAMES=()
for c in "${CONFIGS[@]}"; do NAMES+=("${c%%=*}"); done
[ "$(id -u)" = 0 ] || die "needs root (network namespace, BPF)"
need nginx wrk tcpdump ip cargo awk
build

NS=l7bench-$$
TMP=$(mktemp -d)
if [ -n "$FLOOR" ]; then
    need "${CC:-cc}"
    "${CC:-cc}" -O2 -o "$TMP/ring_floor" "$(dirname "$0")/ring_floor.c" || die "building ring_floor.c failed"
fi
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
nginx_conf "$TMP" 1024 "listen 127.0.0.1:8080;"
head -c 612 /dev/zero | tr '\0' 'x' >"$TMP/www/index.html"
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
for c in "${CONFIGS[@]}"; do echo "${c%%=*}: ${BINARY[${c%%=*}]:-l7rec} record -o F --port 8080 ${c#*=}"; done
echo "load: wrk -t1 -c$CONNS -d${DURATION}s --latency $URL (keep-alive), $ROUNDS rounds"

# run_wrk OUT: runs the load, leaves wrk's report in OUT; sets REQS and RPS.
run_wrk() {
    ip netns exec "$NS" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "$URL" >"$1"
    REQS=$(awk '/requests in/ {print $1}' "$1")
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$1")
}

# start_capture NAME READY ERR CMD...: runs CMD under /usr/bin/time in the namespace and
# waits until its stderr (ERR) shows READY (a regex).
start_capture() {
    local tf=$TMP/time.$1
    ip netns exec "$NS" "$TIME" -f '%U %S' -o "$tf" "${@:4}" 2>"$3" &
    CAP_PID=$!
    for _ in $(seq 100); do
        grep -q "$2" "$3" 2>/dev/null && return
        kill -0 "$CAP_PID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$3" >&2
    die "$1 did not start"
}

# stop_capture NAME: SIGINT to the capturing process (GNU time ignores it), waits;
# sets CPU (user+sys seconds) and records it per request of the last wrk run.
stop_capture() {
    local child
    child=$(ps -o pid= --ppid "$CAP_PID" | head -1 | tr -d ' ')
    [ -n "$child" ] || die "$1: process not found"
    kill -INT "$child"
    wait "$CAP_PID" || true
    CAP_PID=
    CPU=$(awk '{print $1 + $2}' "$TMP/time.$1")
    add "$1:cpureq" "$(calc "1e6*$CPU/$REQS")"
}

# completeness FILE: transactions l7rec analyze finds (with and without a response).
count_tx() {
    "$L7REC" analyze "$1" --format json >"$TMP/tx.json"
    TX=$(grep -c '"method":"' "$TMP/tx.json" || true)
    TX_OK=$(grep -c '"status":200' "$TMP/tx.json" || true)
}

declare -A V
add() { V[$1]="${V[$1]:-} $2"; }

# measure NAME: one wrk run under capture NAME ("none", an l7rec configuration or
# "tcpdump"); records its figures and sets RPS.
measure() {
    local name=$1 c F
    if [ "$name" = none ]; then
        run_wrk "$TMP/wrk.none"
        add none:rps "$RPS"
        return
    fi
    if [ "$name" = floor ]; then
        start_capture floor "listening on" "$TMP/floor.err" "$TMP/ring_floor" lo
        run_wrk "$TMP/wrk.floor"
        stop_capture floor
        add floor:rps "$RPS"
        add floor:cpu "$CPU"
        add floor:drops "$(awk '/dropped by kernel/ {print $4}' "$TMP/floor.err")"
        echo "round $round floor: $(tail -1 "$TMP/floor.err")" >&2
        return
    fi
    if [ "$name" = tcpdump ]; then
        F=$TMP/tcpdump.pcap
        rm -f "$F"
        start_capture tcpdump "listening on" "$TMP/tcpdump.err" tcpdump -Z root -i lo -w "$F" -s 262144 port 8080
        run_wrk "$TMP/wrk.tcpdump"
        stop_capture tcpdump
        add tcpdump:drops "$(awk '/packets dropped by kernel/ {print $1}' "$TMP/tcpdump.err")"
        add tcpdump:sysdrops 0
        DROPS_SAID=$(tr '\n' ' ' <"$TMP/tcpdump.err" | sed 's/.*\(\<[0-9]* packets captured\)/\1/')
    else
        for c in "${CONFIGS[@]}"; do [ "${c%%=*}" = "$name" ] && break; done
        F=$TMP/$name.pcapng
        rm -f "$F"
        # shellcheck disable=SC2086 # ARGS are words
        start_capture "$name" "recording on" "$TMP/$name.err" "${BINARY[$name]:-$L7REC}" record -o "$F" --port 8080 ${c#*=}
        run_wrk "$TMP/wrk.$name"
        stop_capture "$name"
        DROPS=$(sed -n 's/.*drops: \([0-9]*\) packets, \([0-9]*\) syscall.*/\1 \2/p' "$TMP/$name.err")
        [ -n "$DROPS" ] || DROPS="$(sed -n 's/.*drops: \([0-9]*\) packets.*/\1/p' "$TMP/$name.err") 0"
        add "$name:drops" "${DROPS% *}"
        add "$name:sysdrops" "${DROPS#* }"
        DROPS_SAID=$(grep 'drops:' "$TMP/$name.err")
    fi
    add "$name:rps" "$RPS"
    add "$name:cpu" "$CPU"
    add "$name:bpr" "$(calc "$(stat -c %s "$F")/$REQS")"
    count_tx "$F"
    add "$name:complete" "$(calc "100*$TX_OK/$REQS")"
    echo "round $round $name: wrk $REQS requests, l7rec analyze found $TX transactions ($TX_OK with status 200); $DROPS_SAID" >&2
}

# Every round runs every capture once, starting one further along the list each round,
# so that no capture always runs first or last (the machine drifts within minutes).
# Ratios are taken within a round, then the median over rounds.
ORDER=(none "${NAMES[@]}" tcpdump ${FLOOR:+floor})
for round in $(seq 1 "$ROUNDS"); do
    declare -A R=()
    for i in "${!ORDER[@]}"; do
        name=${ORDER[$(((i + round - 1) % ${#ORDER[@]}))]}
        measure "$name"
        R[$name]=$RPS
    done
    for c in "${NAMES[@]}" tcpdump ${FLOOR:+floor}; do
        add "$c:ratio" "$(calc "${R[$c]}/${R[none]}")"
        add "$c:vstcpdump" "$(calc "${R[$c]}/${R[tcpdump]}")"
    done
    echo "round $round/$ROUNDS done (no capture $(median ${V[none:rps]}) req/s so far)" >&2
done

med() { median ${V[$1]}; }
NONE=$(med none:rps)
echo
echo "=== recorder benchmark: medians of $ROUNDS rounds ==="
ROW='%-14s %12s %10s %8s %12s %12s %14s %14s\n'
# shellcheck disable=SC2059 # the format is ROW
printf "$ROW" "capture" "requests/s" "vs none" "CPU s" "CPU us/req" "drops" "bytes/request" "complete %"
# shellcheck disable=SC2059
printf "$ROW" "none" "$(fmt 0 "$NONE")" "1.000" "-" "-" "-" "-" "-"
for c in "${NAMES[@]}" tcpdump; do
    d=$(med "$c:drops")
    [ "$c" = tcpdump ] || d="$d+$(med "$c:sysdrops")ev"
    # shellcheck disable=SC2059
    printf "$ROW" "$c" "$(fmt 0 "$(med "$c:rps")")" "$(fmt 3 "$(med "$c:ratio")")" \
        "$(fmt 2 "$(med "$c:cpu")")" "$(fmt 2 "$(med "$c:cpureq")")" "$d" \
        "$(fmt 0 "$(med "$c:bpr")")" "$(fmt 2 "$(med "$c:complete")")"
done
if [ -n "$FLOOR" ]; then
    # shellcheck disable=SC2059
    printf "$ROW" "floor" "$(fmt 0 "$(med floor:rps)")" "$(fmt 3 "$(med floor:ratio)")" \
        "$(fmt 2 "$(med floor:cpu)")" "$(fmt 2 "$(med floor:cpureq)")" "$(med floor:drops)" "-" "-"
fi
echo
for c in "${NAMES[@]}"; do
    echo "$c throughput / none: $(fmt 3 "$(med "$c:ratio")")   (target >= 0.90; per round: [${V[$c:ratio]} ])"
    echo "$c / tcpdump throughput: $(fmt 3 "$(med "$c:vstcpdump")")   (target >= 1.0; per round: [${V[$c:vstcpdump]} ])"
    echo "$c bytes/request as % of tcpdump's pcap: $(fmt 1 "$(calc "100*$(med "$c:bpr")/$(med tcpdump:bpr)")")%   (target <= 25%)"
    echo "$c drops (per round): packets [${V[$c:drops]} ], syscall events [${V[$c:sysdrops]} ]   (target 0)"
    echo "$c completeness (per round, % of wrk's requests found with status 200): [${V[$c:complete]} ]   (target 100)"
done
for c in "${NAMES[@]}" tcpdump; do
    echo "$c capturer CPU us/request (per round): [${V[$c:cpureq]} ]"
done
[ -z "$FLOOR" ] || echo "floor throughput / none: $(fmt 3 "$(med floor:ratio)")   (per round: [${V[floor:ratio]} ])"
printf 'per round requests/s:'
for c in none "${NAMES[@]}" tcpdump ${FLOOR:+floor}; do printf ' %s [%s ]' "$c" "${V[$c:rps]}"; done
echo
