#!/usr/bin/env bash
# Analyzer benchmark: l7rec analyze against tshark on the same synthetic capture.
#
#   scripts/bench/analyzer.sh [SIZE_MB]     full run (default 1024 MB of pcap)
#   scripts/bench/analyzer.sh --smoke       ~20 MB, 3 runs each, < 1 min (CI)
#   options: --runs N (default 3)  --seed S (default 1)
#            --tshark-runs N (default = --runs; 0 skips tshark)
#            --rss-2g  also analyze a 2 GB capture (peak RSS target)
#
# Generates (and caches in bench-out/) the capture in both formats with
# analyzer/examples/gen_capture.rs, then runs, alternating, each RUNS times:
#   l7rec analyze F --format json > /dev/null            (all threads, --threads 1)
#     on the plain pcap and on the l7rec zstd pcapng; and as many `--threads 1` copies
#     side by side as there are CPUs (the machine's ceiling for the speed-up), and,
#     right before each all-threads run, the core-to-core round trip
#     (analyzer/examples/core_rtt.rs): the speed-up is also given for the runs under
#     and over $RTT_NEAR ns (default 150; on the benchmark VM ~55 ns when the host
#     keeps its two vCPUs close, ~430 ns when it places them far apart)
#   tshark -r F -2 -o tcp.reassemble_out_of_order:TRUE -Y http.request \
#     -T fields -e http.request.method -e http.request.uri    (on the plain pcap)
# and prints medians of wall time, CPU time (user + system), MB/s of uncompressed
# capture, transactions/s, peak RSS (/usr/bin/time -v), ratio l7rec/tshark on the same
# file, 1 -> N thread speed-up (of the medians, and the median of the ratios of runs made
# back to back) beside the ceiling; checks the request counts of l7rec, tshark and the
# generator agree.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

SIZE=1024 RUNS=3 SEED=1 TSHARK_RUNS= RSS2G=0 SMOKE=0
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 SIZE=20 ;;
        --runs) RUNS=$2; shift ;;
        --seed) SEED=$2; shift ;;
        --tshark-runs) TSHARK_RUNS=$2; shift ;;
        --rss-2g) RSS2G=1 ;;
        [0-9]*) SIZE=$1 ;;
        *) sed -n '2,25p' "$0"; exit 2 ;;
    esac
    shift
done
TSHARK_RUNS=${TSHARK_RUNS:-$RUNS}
need tshark cargo awk
mkdir -p "$OUT_DIR"
build
THREADS=$(nproc)
RTT_NEAR=${RTT_NEAR:-150}

# gen SIZE FORMAT -> path; the generator's ground-truth line is kept in PATH.meta.
gen() {
    local size=$1 format=$2 f
    case $format in
        pcap) f=$OUT_DIR/gen-${size}mb-s$SEED.pcap ;;
        l7rec) f=$OUT_DIR/gen-${size}mb-s$SEED.pcapng.zst ;;
    esac
    if [ ! -s "$f" ] || [ ! -s "$f.meta" ] || [ "$GEN" -nt "$f" ]; then
        echo "generating $f ..." >&2
        "$GEN" --out "$f" --size-mb "$size" --format "$format" --seed "$SEED" 2>"$f.meta" \
            || { cat "$f.meta" >&2; die "generator failed"; }
    fi
    echo "$f"
}
meta() { sed -n "s/.* $2=\([0-9]*\).*/\1/p" "$1.meta"; }

# timed OUTFILE CMD... : runs CMD with stdout to OUTFILE; sets WALL (s), CPU (user +
# system s) and RSS (MB).
timed() {
    local out=$1 tf; shift
    tf=$(mktemp)
    local t0=$EPOCHREALTIME
    "$TIME" -v -o "$tf" "$@" >"$out" 2>/dev/null || { cat "$tf" >&2; rm -f "$tf"; die "failed: $*"; }
    WALL=$(calc "$EPOCHREALTIME - $t0")
    RSS=$(awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2/1024}' "$tf")
    CPU=$(awk -F': ' '/(User|System) time \(seconds\)/ {s += $2} END {printf "%.2f", s}' "$tf")
    rm -f "$tf"
}

machine
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews figures)"
echo "tshark: $(tshark --version 2>/dev/null | head -1)"
PCAP=$(gen "$SIZE" pcap)
ZST=$(gen "$SIZE" l7rec)
TRUTH=$(meta "$PCAP" requests)
[ "$TRUTH" = "$(meta "$ZST" requests)" ] || die "the two formats differ in requests"
PCAP_BYTES=$(stat -c %s "$PCAP")
ZST_BYTES=$(meta "$ZST" uncompressed_bytes)
echo "capture: $PCAP ($(fmt 1 "$(calc "$PCAP_BYTES/1e6")") MB pcap), $ZST ($(fmt 1 "$(calc "$(stat -c %s "$ZST")/1e6")") MB zstd, $(fmt 1 "$(calc "$ZST_BYTES/1e6")") MB pcapng uncompressed); generator: $(cat "$PCAP.meta")"

# Request counts (one untimed run each).
count_l7rec() { "$L7REC" analyze "$1" --format json | grep -c '"method":"' || true; }
N_PCAP=$(count_l7rec "$PCAP")
N_ZST=$(count_l7rec "$ZST")

# side_by_side FILE: THREADS copies of `--threads 1` at once, each on the whole file;
# sets WALL to the time until the last one ends. What perfect parallelism would give
# on this machine right now: no work shared, nothing passed between cores.
side_by_side() {
    local t0=$EPOCHREALTIME pids=() p
    for _ in $(seq 1 "$THREADS"); do
        "$L7REC" analyze "$1" --format json --threads 1 >/dev/null 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || die "failed: side-by-side analyze $1"; done
    WALL=$(calc "$EPOCHREALTIME - $t0")
}

declare -A W R C
add() { W[$1]="${W[$1]:-} $WALL"; R[$1]="${R[$1]:-} $RSS"; C[$1]="${C[$1]:-} $CPU"; }
N_TSHARK=
for run in $(seq 1 "$RUNS"); do
    for cfg in pcap:all pcap:1 pcap:pair zst:all zst:1 zst:pair; do
        f=$PCAP; [ "${cfg%%:*}" = zst ] && f=$ZST
        # The machine's state right before the threads' run: their hand-off cost
        # (it changes from one second to the next on the benchmark VM).
        if [ "${cfg##*:}" = all ] && [ "$THREADS" -ge 2 ]; then
            W[rtt:${cfg%%:*}]="${W[rtt:${cfg%%:*}]:-} $("$CORE_RTT" 2>/dev/null || echo nan)"
        fi
        if [ "${cfg##*:}" = pair ]; then
            side_by_side "$f"
            W[l7rec:$cfg]="${W[l7rec:$cfg]:-} $WALL"
            continue
        fi
        t=(); [ "${cfg##*:}" = 1 ] && t=(--threads 1)
        timed /dev/null "$L7REC" analyze "$f" --format json "${t[@]}"
        add "l7rec:$cfg"
    done
    if [ "$run" -le "$TSHARK_RUNS" ]; then
        tout=$(mktemp)
        timed "$tout" tshark -r "$PCAP" -2 -o tcp.reassemble_out_of_order:TRUE -Y http.request \
            -T fields -e http.request.method -e http.request.uri
        N_TSHARK=$(wc -l <"$tout"); rm -f "$tout"
        add tshark
    fi
    echo "run $run/$RUNS done" >&2
done

# 2 GB capture: peak RSS (and throughput) of l7rec, all threads.
if [ "$RSS2G" = 1 ]; then
    ZST2=$(gen 2048 l7rec)
    ZST2_BYTES=$(meta "$ZST2" uncompressed_bytes)
    for run in $(seq 1 "$RUNS"); do
        timed /dev/null "$L7REC" analyze "$ZST2" --format json
        add "l7rec:zst2g:all"
    done
    N_ZST2=$(count_l7rec "$ZST2")
    TRUTH2=$(meta "$ZST2" requests)
fi

echo
echo "=== analyzer benchmark: medians of $RUNS runs (tshark: $TSHARK_RUNS) ==="
printf '%-34s %9s %7s %10s %12s %10s\n' "configuration" "wall s" "CPU s" "MB/s" "tx/s" "peak RSS MB"
row() { # key label bytes requests
    local w r
    w=$(median ${W[$1]}); r=$(median ${R[$1]})
    printf '%-34s %9s %7s %10s %12s %10s\n' "$2" "$(fmt 2 "$w")" "$(fmt 2 "$(median ${C[$1]})")" \
        "$(fmt 0 "$(calc "$3/1e6/$w")")" "$(fmt 0 "$(calc "$4/$w")")" "$(fmt 0 "$r")"
}
row l7rec:pcap:all "l7rec analyze pcap, $THREADS threads" "$PCAP_BYTES" "$TRUTH"
row l7rec:pcap:1 "l7rec analyze pcap, 1 thread" "$PCAP_BYTES" "$TRUTH"
row l7rec:zst:all "l7rec analyze zstd, $THREADS threads" "$ZST_BYTES" "$TRUTH"
row l7rec:zst:1 "l7rec analyze zstd, 1 thread" "$ZST_BYTES" "$TRUTH"
[ "$TSHARK_RUNS" -gt 0 ] && row tshark "tshark (pcap)" "$PCAP_BYTES" "$TRUTH"
[ "$RSS2G" = 1 ] && row l7rec:zst2g:all "l7rec analyze 2 GB zstd, $THREADS thr" "$ZST2_BYTES" "$TRUTH2"

echo "per-run wall s:"
for k in "${!W[@]}"; do [ "${k%%:*}" = rtt ] || echo "  $k:${W[$k]}"; done | sort
m() { median ${W[$1]}; }
# paired SLOW FAST: median over runs of SLOW's wall time / FAST's in the same run (the
# two ran one after the other, so drift of the machine's speed mostly cancels).
paired() {
    # shellcheck disable=SC2046 # one number per run
    median $(paste -d/ <(printf '%s\n' ${W[$1]}) <(printf '%s\n' ${W[$2]}) | awk -F/ '{print $1 / $2}')
}
echo
echo "speed-up 1 -> $THREADS threads: pcap $(fmt 2 "$(calc "$(m l7rec:pcap:1)/$(m l7rec:pcap:all)")")x, zstd $(fmt 2 "$(calc "$(m l7rec:zst:1)/$(m l7rec:zst:all)")")x   (target >= 1.7x)"
echo "  median of the runs' own ratios: pcap $(fmt 2 "$(paired l7rec:pcap:1 l7rec:pcap:all)")x, zstd $(fmt 2 "$(paired l7rec:zst:1 l7rec:zst:all)")x"
# ceiling FORMAT: the speed-up of THREADS independent copies side by side over one
# alone (THREADS x the 1-thread run / the side-by-side run), median of the runs' own.
ceiling() {
    # shellcheck disable=SC2046 # one number per run
    median $(paste -d/ <(printf '%s\n' ${W[l7rec:$1:1]}) <(printf '%s\n' ${W[l7rec:$1:pair]}) \
        | awk -F/ -v n="$THREADS" '{print n * $1 / $2}')
}
echo "  the machine's ceiling, $THREADS copies of --threads 1 side by side (median of the runs' own): pcap $(fmt 2 "$(ceiling pcap)")x, zstd $(fmt 2 "$(ceiling zst)")x"
# by_rtt FORMAT LOW HIGH: the runs' own speed-ups whose threads' run followed a
# core-to-core round trip in [LOW, HIGH) ns: "MEDIAN in N runs", or "no run".
by_rtt() {
    local picked
    # shellcheck disable=SC2046 # one number per run
    picked=$(paste <(printf '%s\n' ${W[rtt:$1]}) <(printf '%s\n' ${W[l7rec:$1:1]}) \
        <(printf '%s\n' ${W[l7rec:$1:all]}) | awk -v lo="$2" -v hi="$3" '$1 >= lo && $1 < hi {print $2 / $3}')
    if [ -z "$picked" ]; then echo "no run"; return; fi
    # shellcheck disable=SC2086 # one number per run
    echo "$(fmt 2 "$(median $picked)")x in $(echo "$picked" | wc -l) runs"
}
if [ -n "${W[rtt:pcap]:-}" ]; then
    # shellcheck disable=SC2086 # one number per run
    echo "  core-to-core round trip just before the threads' run (CPUs 0 and 1 handing a cache line back and forth), ns: pcap median $(fmt 0 "$(median ${W[rtt:pcap]})"), per run:${W[rtt:pcap]}; zstd median $(fmt 0 "$(median ${W[rtt:zst]})"), per run:${W[rtt:zst]}"
    echo "  the runs' own speed-ups by that round trip: under $RTT_NEAR ns pcap $(by_rtt pcap 0 "$RTT_NEAR"), zstd $(by_rtt zst 0 "$RTT_NEAR"); $RTT_NEAR ns or more pcap $(by_rtt pcap "$RTT_NEAR" 1e12), zstd $(by_rtt zst "$RTT_NEAR" 1e12)"
fi
echo "  l7rec's share of that ceiling: pcap $(fmt 0 "$(calc "100*$(paired l7rec:pcap:1 l7rec:pcap:all)/$(ceiling pcap)")") %, zstd $(fmt 0 "$(calc "100*$(paired l7rec:zst:1 l7rec:zst:all)/$(ceiling zst)")") %"
if [ "$TSHARK_RUNS" -gt 0 ]; then
    echo "throughput l7rec/tshark on the same pcap: $(fmt 1 "$(calc "$(m tshark)/$(m l7rec:pcap:all)")")x ($THREADS threads), $(fmt 1 "$(calc "$(m tshark)/$(m l7rec:pcap:1)")")x (1 thread)   (target >= 20x)"
fi
echo "MB/s of uncompressed capture, $THREADS threads: pcap $(fmt 0 "$(calc "$PCAP_BYTES/1e6/$(m l7rec:pcap:all)")"), zstd $(fmt 0 "$(calc "$ZST_BYTES/1e6/$(m l7rec:zst:all)")")   (target >= 500)"
[ "$RSS2G" = 1 ] && echo "peak RSS on the 2 GB capture: $(fmt 0 "$(median ${R[l7rec:zst2g:all]})") MB   (target < 256)"

echo
ok=1
echo "requests: generator $TRUTH, l7rec pcap $N_PCAP, l7rec zstd $N_ZST, tshark ${N_TSHARK:-not run}"
[ "$N_PCAP" = "$TRUTH" ] && [ "$N_ZST" = "$TRUTH" ] || ok=0
[ -z "$N_TSHARK" ] || [ "$N_TSHARK" = "$TRUTH" ] || ok=0
if [ "$RSS2G" = 1 ]; then
    echo "requests (2 GB): generator $TRUTH2, l7rec $N_ZST2"
    [ "$N_ZST2" = "$TRUTH2" ] || ok=0
fi
if [ $ok = 1 ]; then echo "request counts: OK"; else echo "request counts: MISMATCH"; exit 1; fi
