#!/usr/bin/env bash
# Regenerates fixtures/l7rec/*: captures written by `l7rec record` itself, of curl
# against nginx and python3 http.server inside a throwaway network namespace, so the
# analyzer's tests cover l7rec's own format (zstd, custom blocks, process records).
# Run as root from the repository root.
set -euo pipefail
. "$(dirname "$0")/lib/nginx.sh"
cargo build --release --quiet
bin=$PWD/target/release/l7rec
out=fixtures/l7rec
mkdir -p "$out"
ns="l7fxr-$$"
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
nginx_conf "$tmp" 64 'listen 127.0.0.1:8080; listen [::1]:8080;
    location /upload { client_max_body_size 1m; return 201 "stored\n"; }'
echo "hello" > "$tmp/www/index.html"
seq 1 20000 > "$tmp/www/numbers.txt"
ip netns exec "$ns" nginx -c "$tmp/nginx.conf" -p "$tmp" & pids+=($!)
ip netns exec "$ns" python3 -m http.server 8000 --bind 127.0.0.1 --directory "$tmp/www" >/dev/null 2>&1 & pids+=($!)
for _ in $(seq 50); do
  ip netns exec "$ns" curl -s -o /dev/null http://127.0.0.1:8080/ &&
    ip netns exec "$ns" curl -s -o /dev/null http://127.0.0.1:8000/ && break
  sleep 0.1
done
ip netns exec "$ns" "$bin" record -o "$out/nginx-python.pcapng" -- sh -c "
  curl -s -o /dev/null -o /dev/null -o /dev/null http://127.0.0.1:8080/ 'http://127.0.0.1:8080/numbers.txt?x=1' http://127.0.0.1:8080/nope
  curl -s -o /dev/null -d 'name=l7rec&value=42' http://127.0.0.1:8080/upload
  curl -s -o /dev/null -I http://127.0.0.1:8080/index.html
  curl -s -o /dev/null -g 'http://[::1]:8080/index.html'
  curl -s -o /dev/null -o /dev/null http://127.0.0.1:8000/index.html http://127.0.0.1:8000/numbers.txt"
ls -l "$out"
