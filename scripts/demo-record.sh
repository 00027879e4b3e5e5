#!/usr/bin/env bash
# Records a real exchange end to end, as a newcomer's first run (root, from the repo
# root): builds l7rec, starts nginx in a throwaway network namespace, records curl's
# requests to it with `l7rec record -- curl ...`, then shows the capture as tshark
# reads it and as `l7rec analyze` reports it. Leaves the capture in ./demo.pcapng.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/nginx.sh
cargo build --release --quiet
bin=$PWD/target/release/l7rec
out=$PWD/demo.pcapng
ns="l7demo-$$"
tmp=$(mktemp -d)
nginx_pid=""
cleanup() {
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
nginx_conf "$tmp" 64 "listen 127.0.0.1:8080; listen [::1]:8080;"
echo "hello from nginx" > "$tmp/www/index.html"
head -c 200000 /dev/urandom | base64 > "$tmp/www/big.txt"
ip netns exec "$ns" nginx -c "$tmp/nginx.conf" -p "$tmp" &
nginx_pid=$!
for _ in $(seq 50); do
  ip netns exec "$ns" curl -s -o /dev/null http://127.0.0.1:8080/ && break
  sleep 0.1
done

echo "== l7rec record -o demo.pcapng -- curl (3 requests on one connection, one over IPv6)"
ip netns exec "$ns" "$bin" record -o "$out" -- sh -c \
  "curl -s -o /dev/null -o /dev/null -o /dev/null 'http://127.0.0.1:8080/' 'http://127.0.0.1:8080/big.txt?from=demo' 'http://127.0.0.1:8080/missing'
   curl -s -o /dev/null -g 'http://[::1]:8080/index.html'"

echo "== tshark -r demo.pcapng (HTTP only)"
tshark -r "$out" -Y http 2>/dev/null
echo "== l7rec analyze demo.pcapng"
"$bin" analyze "$out"
