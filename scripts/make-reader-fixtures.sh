#!/usr/bin/env bash
# Regenerates fixtures/reader/*: small captures written by tcpdump and dumpcap of one
# curl -> python3 http.server exchange, inside a throwaway network namespace.
# Run as root from the repository root. Needs: iproute2 tcpdump tshark curl python3.
set -euo pipefail
out=fixtures/reader
mkdir -p "$out"
ns="l7fx-$$"
ip netns add "$ns"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; ip netns del "$ns" 2>/dev/null || true; }
trap cleanup EXIT
ip -n "$ns" link set lo up
www=$(mktemp -d); echo "hello fixture" > "$www/index.html"
ip netns exec "$ns" python3 -m http.server 8080 --bind 127.0.0.1 --directory "$www" >/dev/null 2>&1 & pids+=($!)
ip netns exec "$ns" tcpdump -i lo -w "$out/tcpdump-us.pcap" -U 'tcp port 8080' 2>/dev/null & pids+=($!)
ip netns exec "$ns" tcpdump -i lo --time-stamp-precision=nano -w "$out/tcpdump-ns.pcap" -U 'tcp port 8080' 2>/dev/null & pids+=($!)
ip netns exec "$ns" dumpcap -q -i lo -f 'tcp port 8080' -w "$out/dumpcap.pcapng" 2>/dev/null & pids+=($!)
sleep 2
ip netns exec "$ns" curl -s -o /dev/null "http://127.0.0.1:8080/index.html?fixture=1"
ip netns exec "$ns" curl -s -o /dev/null "http://127.0.0.1:8080/missing"
sleep 1
cleanup; trap - EXIT
sleep 1
tshark -r "$out/dumpcap.pcapng" -F pcapng -w - 2>/dev/null | gzip -9 > "$out/dumpcap.pcapng.gz"
ls -l "$out"
