# Shared helpers of the benchmark scripts (sourced, not run).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT_DIR=${BENCH_OUT:-$ROOT/bench-out}
L7REC=$TARGET_DIR/release/l7rec
GEN=$TARGET_DIR/release/examples/gen_capture
CORE_RTT=$TARGET_DIR/release/examples/core_rtt
TIME=/usr/bin/time

die() { echo "bench: $*" >&2; exit 1; }

need() {
    for c in "$@"; do
        command -v "$c" >/dev/null || die "missing $c (scripts/setup.sh installs it)"
    done
    [ -x "$TIME" ] || die "missing /usr/bin/time (apt-get install time)"
}

# Release build of l7rec, the capture generator and the core-to-core round trip probe.
build() {
    (cd "$ROOT" && cargo build --release --quiet -p l7rec \
        && cargo build --release --quiet -p l7rec-analyzer --example gen_capture \
            --example core_rtt) \
        || die "build failed"
}

# Median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2] + v[NR/2+1]) / 2 }'
}

# Floating point arithmetic: calc 'expr' (awk syntax).
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

# fmt DIGITS VALUE
fmt() { awk -v d="$1" -v v="$2" 'BEGIN { if (v == "nan" || v == "") print "n/a"; else printf "%.*f", d, v }'; }

machine() {
    echo "machine: $(nproc) CPUs ($(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)), kernel $(uname -r), memory $(free -h | awk '/^Mem:/ {print $2}'), $(. /etc/os-release && echo "$PRETTY_NAME")"
}
