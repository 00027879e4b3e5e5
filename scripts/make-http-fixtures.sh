#!/usr/bin/env bash
# Regenerates fixtures/http/*: small real captures of HTTP/1.x traffic (curl, python,
# nginx) for the analyzer, each with its tshark oracle (<name>.tshark.tsv).
#
# Every scenario runs in its own throwaway network namespace, on lo only; the script kills
# only the processes it started (by pid) and deletes its namespaces, even on failure.
# Run as root from the repository root:   scripts/make-http-fixtures.sh [SCENARIO...]
# Needs: iproute2 nftables ethtool tcpdump tshark editcap curl python3 nginx (nginx-light is enough).
set -euo pipefail

[[ $EUID -eq 0 ]] || { echo "run as root" >&2; exit 1; }
[[ -d fixtures && -d scripts ]] || { echo "run from the repository root" >&2; exit 1; }

out=fixtures/http
helpers=$PWD/scripts/fixture-helpers
mkdir -p "$out"
tmp=$(mktemp -d /tmp/l7hf.XXXXXX)
chmod 755 "$tmp"

pids=()   # processes started by this script (ip netns exec execs the command: same pid)
nss=()    # namespaces created by this script
cleanup() {
  local p n
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  pids=()
  for n in "${nss[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  nss=()
}
trap 'cleanup; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- building blocks
NS=""
ns_new() {  # ns_new NAME: make and enter (for the helpers below) a fresh namespace
  NS="l7hf-$1-$$"
  ip netns add "$NS"; nss+=("$NS")
  ip -n "$NS" link set lo up
}
ns_end() { cleanup; NS=""; }
nsx() { ip netns exec "$NS" "$@"; }
BGPID=""
bg() {  # start a background process in $NS; not via a function, so $! is the process itself
  ip netns exec "$NS" "$@" & BGPID=$!; pids+=("$BGPID")
}

wait_listen() {  # wait_listen PORT...: until something listens on each port (no traffic)
  local port
  for port in "$@"; do
    for _ in $(seq 100); do
      nsx ss -Hltn "sport = :$port" | grep -q . && continue 2
      sleep 0.05
    done
    die "nothing listens on port $port in $NS"
  done
}

CAPPID="" CAPFILE="" CAPIF=lo
cap_start() {  # cap_start FILE FILTER [tcpdump args...]   (interface: $CAPIF, default lo)
  CAPFILE=$1; local filter=$2; shift 2
  rm -f "$CAPFILE"
  # No --immediate-mode: libpcap then falls back to TPACKET_V2 with one 256 kB slot per
  # packet (8 slots in the default buffer) and drops bursts. With TPACKET_V3 packets reach
  # tcpdump when a ring block is retired (1 s timeout): cap_stop waits 2 s for that.
  bg tcpdump -i "$CAPIF" -Z root -B 8192 -U -w "$CAPFILE" "$@" "$filter" 2>"$CAPFILE.log"
  CAPPID=$BGPID
  sleep 1
  grep -q "listening on" "$CAPFILE.log" || die "tcpdump did not start: $(cat "$CAPFILE.log")"
}
cap_stop() {
  sleep 2                                # last packets (FIN/ACK) out of the ring block
  kill "$CAPPID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$CAPPID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$CAPPID" 2>/dev/null || true
  wait "$CAPPID" 2>/dev/null || true
  grep -q "^0 packets dropped by kernel" "$CAPFILE.log" || die "tcpdump dropped packets: $(cat "$CAPFILE.log")"
  rm -f "$CAPFILE.log"
}

# The oracle: (tcp.stream, method, uri, status) for every HTTP request/response tshark sees.
oracle() {  # oracle NAME
  tshark -r "$out/$1.pcap" -2 -o tcp.reassemble_out_of_order:TRUE -Y 'http.request or http.response' -T fields -E separator=/t -e tcp.stream -e http.request.method -e http.request.uri -e http.response.code \
    >"$out/$1.tshark.tsv" 2>"$tmp/tshark.err" || die "tshark: $(cat "$tmp/tshark.err")"
}
tcount() {  # tcount NAME DISPLAY_FILTER: how many frames match
  tshark -r "$out/$1.pcap" -2 -o tcp.reassemble_out_of_order:TRUE -Y "$2" 2>/dev/null | wc -l
}
expect() {  # expect NAME WHAT CMP N FILTER  e.g. expect x "100 Continue" -ge 1 'http.response.code == 100'
  local n; n=$(tcount "$1" "$5")
  # shellcheck disable=SC2086
  [ "$n" $3 "$4" ] || die "$1: expected $2 ($5) $3 $4, got $n"
  log "$1: $2: $n frame(s) match '$5'"
}
expect_tsv() {  # expect_tsv NAME REQUESTS RESPONSES
  local req resp
  # one row per frame: several messages in one frame come as comma-joined values
  req=$(awk -F'\t' '$2 != "" { n += split($2, a, ",") } END { print n + 0 }' "$out/$1.tshark.tsv")
  resp=$(awk -F'\t' '$4 != "" { n += split($4, a, ",") } END { print n + 0 }' "$out/$1.tshark.tsv")
  [[ $req -eq $2 && $resp -eq $3 ]] || die "$1: tshark sees $req requests / $resp responses, expected $2 / $3"
  log "$1: tshark oracle: $req requests, $resp responses"
}
finish() {  # finish NAME REQUESTS RESPONSES: write the oracle and check its counts
  oracle "$1"
  expect_tsv "$@"
}

# ---------------------------------------------------------------- nginx + docroot
www=$tmp/www
mkdir -p "$www"
cat >"$www/index.html" <<'EOF'
<!doctype html>
<html><head><title>l7rec fixture</title></head>
<body><h1>l7rec fixture</h1><p>Served by nginx inside a throwaway network namespace.</p>
<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt
ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco
laboris nisi ut aliquip ex ea commodo consequat.</p></body></html>
EOF
printf '<!doctype html><title>page 2</title><p>second page</p>\n' >"$www/page2.html"
printf 'plain text file\n' >"$www/hello.txt"
# 120 kB (not 300 kB): a 300 kB body would make the loss capture larger than 200 kB.
python3 -c 'import sys
sys.stdout.write("".join("line %05d of the big file, for the loss scenarios\n" % i for i in range(3000))[:120000])' \
  >"$www/big.txt"
touch -d '2024-01-02 03:04:05 UTC' "$www"/*
head -c 100000 /dev/zero | tr '\0' 'p' >"$tmp/post-body.bin"      # 100 kB POST body
head -c 4000 /dev/zero | tr '\0' 'q' >"$tmp/post-small-body.bin"   # over a 1k limit

nginx_start() {  # nginx_start [gzip on|off]: own instance in $NS, 127.0.0.1:8080 and [::1]:8080
  local gz=${1:-off} p=$tmp/nginx-$NS
  mkdir -p "$p"
  cat >"$p/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $p/nginx.pid;
error_log $p/error.log info;
events { worker_connections 64; }
http {
    types { text/html html; text/plain txt; }
    default_type application/octet-stream;
    access_log $p/access.log;
    client_body_temp_path $p/body;
    proxy_temp_path $p/proxy;
    fastcgi_temp_path $p/fastcgi;
    uwsgi_temp_path $p/uwsgi;
    scgi_temp_path $p/scgi;
    sendfile on;
    keepalive_timeout 75s;
    large_client_header_buffers 4 32k;
    gzip $gz;
    gzip_types text/plain;
    gzip_min_length 20;
    server {
        ${NGX_LISTEN:+listen $NGX_LISTEN:8080;}
        listen 127.0.0.1:8080;
        listen [::1]:8080;
        root $www;
        # proxy_pass makes nginx read the request body, and so answer "Expect: 100-continue"
        # with "HTTP/1.1 100 Continue" (return/static locations never read it).
        location = /upload       { client_max_body_size 10m; proxy_pass http://127.0.0.1:8081/ok; }
        location = /upload-small { client_max_body_size 1k;  proxy_pass http://127.0.0.1:8081/ok; }
    }
    server {   # the upload upstream; its traffic is not captured (port 8081)
        listen 127.0.0.1:8081;
        location / { return 201 "ok\n"; }
    }
}
EOF
  bg nginx -c "$p/nginx.conf" -p "$p" -e "$p/error.log"
  wait_listen 8080 8081
}
URL=http://127.0.0.1:8080
CURL=(curl -sS --max-time 20)

# ---------------------------------------------------------------- scenarios
s_keepalive() {
  ns_new keepalive; nginx_start
  cap_start "$out/keepalive.pcap" 'tcp port 8080'
  nsx "${CURL[@]}" -o /dev/null -o /dev/null -o /dev/null "$URL/index.html" "$URL/missing.html" "$URL/page2.html?x=1&y=2"
  cap_stop; ns_end
  finish keepalive 3 3
  expect keepalive "one connection" -eq 1 'tcp.flags.syn == 1 && tcp.flags.ack == 0'
  expect keepalive "a 404" -eq 1 'http.response.code == 404'
}

s_pipelining() {
  ns_new pipelining; nginx_start
  cap_start "$out/pipelining.pcap" 'tcp port 8080'
  nsx timeout 20 python3 "$helpers/pipeline_client.py" 127.0.0.1 8080 /index.html /missing /hello.txt
  cap_stop; ns_end
  finish pipelining 3 3
  expect pipelining "3 requests in one segment" -eq 1 'http.request && count(http.request.method) == 3'
}

s_chunked() {
  ns_new chunked; nginx_start on
  bg python3 "$helpers/http_helper_server.py" 127.0.0.1 8088
  wait_listen 8088
  cap_start "$out/chunked.pcap" 'tcp port 8080 or tcp port 8088'
  # python: a chunked response (extension + trailers) then a close-delimited one, one connection
  nsx "${CURL[@]}" -o /dev/null -o /dev/null http://127.0.0.1:8088/chunked http://127.0.0.1:8088/close-delimited
  # nginx gzip: chunked because the compressed length is not known in advance
  nsx "${CURL[@]}" --compressed -o /dev/null -o /dev/null "$URL/index.html" "$URL/big.txt"
  cap_stop; ns_end
  finish chunked 4 4
  expect chunked "chunked responses" -eq 3 'http.transfer_encoding == "chunked"'
  expect chunked "gzip responses" -eq 2 'http.content_encoding == "gzip"'
  expect chunked "a chunk extension" -ge 1 'tcp.payload contains ";name=\"with ext\";flag"'
  expect chunked "trailers" -ge 1 'tcp.payload contains "X-Checksum:"'
  expect chunked "close-delimited (no length)" -eq 1 'http.response && !http.content_length && !http.transfer_encoding'
}

s_post_100_continue() {
  ns_new post100; nginx_start
  cap_start "$out/post-100-continue.pcap" 'tcp port 8080'
  # curl adds Expect: 100-continue by itself only above 1 MB; asked for explicitly here so
  # the body (and the capture) stays at 100 kB.
  nsx "${CURL[@]}" -o /dev/null -H 'Expect: 100-continue' -H 'Content-Type: application/octet-stream' \
    --data-binary @"$tmp/post-body.bin" "$URL/upload"
  # refused before the body: the final 413 comes instead of 100 Continue, curl sends no body
  nsx "${CURL[@]}" -o /dev/null -H 'Expect: 100-continue' -H 'Content-Type: application/octet-stream' \
    --data-binary @"$tmp/post-small-body.bin" "$URL/upload-small"
  cap_stop; ns_end
  # tshark: 1 request / 3 responses. The refused POST /upload-small is never reported:
  # tshark waits for its 4000-byte body (Content-Length), which never comes. Truth: 2 / 3.
  finish post-100-continue 1 3
  expect post-100-continue "the refused request's headers" -eq 1 'tcp.payload contains "POST /upload-small "'
  expect post-100-continue "100 Continue" -eq 1 'http.response.code == 100'
  expect post-100-continue "201 after the body" -eq 1 'http.response.code == 201'
  expect post-100-continue "413 without 100" -eq 1 'http.response.code == 413'
}

s_head_304() {
  ns_new head304; nginx_start
  local f=$www/index.html mtime size etag lm
  mtime=$(stat -c %Y "$f"); size=$(stat -c %s "$f")
  etag=$(printf '"%x-%x"' "$mtime" "$size")                       # nginx's ETag format
  lm=$(LC_ALL=C date -u -d "@$mtime" '+%a, %d %b %Y %H:%M:%S GMT')
  cap_start "$out/head-304.pcap" 'tcp port 8080'
  # --next keeps the connection: HEAD 200, GET 304 (ETag), GET 304 (date), HEAD 404, GET 200
  nsx "${CURL[@]}" -o /dev/null -I "$URL/index.html" \
    --next "${CURL[@]:1}" -o /dev/null -H "If-None-Match: $etag" "$URL/index.html" \
    --next "${CURL[@]:1}" -o /dev/null -H "If-Modified-Since: $lm" "$URL/page2.html" \
    --next "${CURL[@]:1}" -o /dev/null -I "$URL/missing.html" \
    --next "${CURL[@]:1}" -o /dev/null "$URL/hello.txt"
  cap_stop; ns_end
  finish head-304 5 5
  expect head-304 "one connection" -eq 1 'tcp.flags.syn == 1 && tcp.flags.ack == 0'
  expect head-304 "HEAD requests" -eq 2 'http.request.method == "HEAD"'
  expect head-304 "304s" -eq 2 'http.response.code == 304'
}

s_long_url() {
  ns_new longurl
  ip -n "$NS" link set lo mtu 1280
  nsx ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || nsx ethtool -K lo tso off gso off
  nginx_start
  local q cookie
  q=$(python3 -c 'print("&".join("k%03d=%s" % (i, "v" * 70) for i in range(105)))')        # ~8 kB
  cookie=$(python3 -c 'print("; ".join("c%03d=%s" % (i, "z" * 95) for i in range(200)))')  # ~20 kB
  cap_start "$out/long-url.pcap" 'tcp port 8080'
  nsx "${CURL[@]}" -o /dev/null -o /dev/null "$URL/index.html?$q" "$URL/hello.txt"
  nsx "${CURL[@]}" -o /dev/null -H "Cookie: $cookie" "$URL/page2.html"
  cap_stop; ns_end
  finish long-url 3 3
  expect long-url "200s (nginx accepted them)" -eq 3 'http.response.code == 200'
  expect long-url "8 kB request over >= 7 segments" -eq 1 'http.request && tcp.reassembled.length > 8000 && tcp.reassembled.length < 9000 && count(tcp.segment) >= 7'
  expect long-url "20 kB request over >= 17 segments" -eq 1 'http.request && tcp.reassembled.length > 20000 && count(tcp.segment) >= 17'
  expect long-url "no frame > 1280+14" -eq 0 'frame.len > 1294'
}

loss_run() {  # loss_run NAME FAMILY HOOK [device lo]
  local name=$1 FAMILY=$2 hook=$3 HOOKDEV=${4:-}
  ns_new "$name"
  ip -n "$NS" link set lo mtu 1500
  nsx ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || nsx ethtool -K lo tso off gso off
  nsx nft -f - <<EOF
table $FAMILY l7hf {
  chain c {
    type filter hook $hook $HOOKDEV priority 0; policy accept;
    meta l4proto tcp numgen random mod 15 == 0 counter drop
  }
}
EOF
  nginx_start
  cap_start "$out/$name.pcap" 'tcp port 8080'
  nsx "${CURL[@]}" -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    "$URL/big.txt" "$URL/index.html" "$URL/hello.txt" "$URL/page2.html"
  nsx "${CURL[@]}" -o /dev/null "$URL/missing.html"
  cap_stop
  log "$name: nftables ($hook hook) dropped $(nsx nft list table "$FAMILY" l7hf | grep -o 'packets [0-9]*')"
  ns_end
  [[ $(stat -c %s "$out/$name.pcap") -lt 200000 ]] || die "$name: capture too big"
  finish "$name" 5 5
}

s_loss() {
  # Drop on the INPUT hook: tcpdump on lo sees the packet (on receive) before nftables
  # drops it, so the capture holds each lost segment AND its retransmission.
  loss_run loss inet input
  expect loss "retransmissions" -ge 1 'tcp.analysis.retransmission'
  expect loss "no capture holes" -eq 0 'tcp.analysis.lost_segment'
}

s_loss_routed() {
  # Loss in the middle of a path, so the capture has real holes. On lo that cannot be
  # had: drops on the inet OUTPUT hook (and on lo's netdev egress) are local send errors
  # for TCP, which resends in order (nothing visible), and drops after lo's receive tap
  # are captured. Here: client ns <-veth-> router ns <-veth-> server ns; the router's
  # FORWARD chain drops ~1/15 packets; tcpdump on the client's veth sees what survives.
  local c r sv
  ns_new lossr-c; c=$NS
  ns_new lossr-r; r=$NS
  ns_new lossr-s; sv=$NS
  ip link add l7hf-c0 netns "$c" type veth peer name l7hf-r0 netns "$r"
  ip link add l7hf-r1 netns "$r" type veth peer name l7hf-s0 netns "$sv"
  ip -n "$c" addr add 198.18.1.2/24 dev l7hf-c0
  ip -n "$r" addr add 198.18.1.1/24 dev l7hf-r0
  ip -n "$r" addr add 198.18.2.1/24 dev l7hf-r1
  ip -n "$sv" addr add 198.18.2.2/24 dev l7hf-s0
  local n d
  for n in "$c:l7hf-c0" "$r:l7hf-r0" "$r:l7hf-r1" "$sv:l7hf-s0"; do
    d=${n#*:}; n=${n%%:*}
    ip -n "$n" link set "$d" up
    ip netns exec "$n" ethtool -K "$d" tso off gso off gro off >/dev/null 2>&1 || true
  done
  ip -n "$c" route add default via 198.18.1.1
  ip -n "$sv" route add default via 198.18.2.1
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  ip netns exec "$r" nft -f - <<'EOF'
table inet l7hf {
  chain c {
    type filter hook forward priority 0; policy accept;
    meta l4proto tcp numgen random mod 15 == 0 counter drop
  }
}
EOF
  NS=$sv NGX_LISTEN=198.18.2.2 nginx_start
  NS=$c
  local url=http://198.18.2.2:8080
  CAPIF=l7hf-c0 cap_start "$out/loss-routed.pcap" 'tcp port 8080'
  nsx "${CURL[@]}" -o /dev/null -o /dev/null -o /dev/null -o /dev/null \
    "$url/big.txt" "$url/index.html" "$url/hello.txt" "$url/page2.html"
  nsx "${CURL[@]}" -o /dev/null "$url/missing.html"
  cap_stop
  log "loss-routed: the router dropped $(ip netns exec "$r" nft list table inet l7hf | grep -o 'packets [0-9]*')"
  ns_end
  [[ $(stat -c %s "$out/loss-routed.pcap") -lt 200000 ]] || die "loss-routed: capture too big"
  finish loss-routed 5 5
  expect loss-routed "capture holes (previous segment not captured)" -ge 1 'tcp.analysis.lost_segment'
  expect loss-routed "retransmissions filling them" -ge 1 'tcp.analysis.retransmission || tcp.analysis.out_of_order'
}

s_midstream() {
  ns_new midstream; nginx_start
  local ready=$tmp/midstream.ready go=$tmp/midstream.go
  rm -f "$ready" "$go"
  bg timeout 30 python3 "$helpers/midstream_client.py" 127.0.0.1 8080 "$ready" "$go" 2 /index.html /page2.html /missing.html
  local client=$BGPID
  for _ in $(seq 100); do [[ -e $ready ]] && break; sleep 0.1; done
  [[ -e $ready ]] || die "midstream: client did not get its first response"
  cap_start "$out/midstream.pcap" 'tcp port 8080'
  touch "$go"
  wait "$client" || die "midstream: client failed"
  cap_stop; ns_end
  finish midstream 2 2
  expect midstream "no SYN" -eq 0 'tcp.flags.syn == 1'
}

s_loss_midstream() {
  # No traffic of its own: loss.pcap cut so that it starts inside the 120 kB body of
  # /big.txt, as when a capture starts in the middle of a connection. That body ends
  # without a newline ("...loss scenari") and the next status line starts a segment of
  # its own: resync must find it there, and must not give a later response to /index.html.
  [[ -s $out/loss.pcap ]] || die "loss-midstream: needs $out/loss.pcap (scenario loss) first"
  local big n
  big=$(tshark -r "$out/loss.pcap" -2 -o tcp.reassemble_out_of_order:TRUE \
    -Y 'http.request.uri == "/big.txt"' -T fields -e frame.number 2>/dev/null)
  n=$(tshark -r "$out/loss.pcap" 2>/dev/null | wc -l)
  [[ $big =~ ^[0-9]+$ ]] || die "loss-midstream: no GET /big.txt in loss.pcap"
  # 4 frames after the request: inside the body (its ~80 segments), before its end.
  editcap -r "$out/loss.pcap" "$out/loss-midstream.pcap" "$((big + 4))-$n"
  finish loss-midstream 4 4
  expect loss-midstream "no /big.txt request" -eq 0 'http.request.uri == "/big.txt"'
  expect loss-midstream "starts inside a body" -eq 1 'frame.number == 1 && tcp.len > 0 && !http.request && !http.response'
}

s_ipv6() {
  ns_new ipv6; nginx_start
  cap_start "$out/ipv6.pcap" 'tcp port 8080'
  nsx "${CURL[@]}" -g -o /dev/null -o /dev/null 'http://[::1]:8080/' 'http://[::1]:8080/hello.txt?v6=1'
  cap_stop; ns_end
  finish ipv6 2 2
  expect ipv6 "IPv6 only" -eq 0 'ip'
}

s_python_server() {
  ns_new pyserver
  bg python3 -m http.server 8080 --bind 127.0.0.1 --directory "$www" 2>/dev/null
  wait_listen 8080
  cap_start "$out/python-server.pcap" 'tcp port 8080'
  nsx "${CURL[@]}" -o /dev/null -o /dev/null "$URL/index.html" "$URL/hello.txt"
  cap_stop; ns_end
  finish python-server 2 2
  expect python-server "HTTP/1.0 responses" -eq 2 'http.response.version == "HTTP/1.0"'
  expect python-server "two connections (server closes)" -eq 2 'tcp.flags.syn == 1 && tcp.flags.ack == 0'
}

s_sll2() {
  ns_new sll2; nginx_start
  CAPIF=any cap_start "$out/sll2.pcap" 'tcp port 8080' -y LINUX_SLL2
  nsx "${CURL[@]}" -o /dev/null "$URL/index.html"
  cap_stop; ns_end
  finish sll2 1 1
  expect sll2 "link type SLL2" -ge 1 'sll.pkttype'
}

all=(keepalive pipelining chunked post_100_continue head_304 long_url loss loss_routed midstream loss_midstream ipv6 python_server sll2)
sel=("$@")
[[ ${#sel[@]} -gt 0 ]] || sel=("${all[@]}")
for s in "${sel[@]}"; do
  s=${s//-/_}
  declare -F "s_$s" >/dev/null || die "unknown scenario $s (known: ${all[*]})"
  # Each attempt in a subshell of its own (its own cleanup); random loss or a capture
  # that lost packets can make an attempt fail: try again, at most 3 times.
  for try in 1 2 3; do
    log "scenario $s (attempt $try)"
    set +e
    ( set -e; trap cleanup EXIT; trap 'exit 130' INT TERM; "s_$s" )
    rc=$?
    set -e
    [[ $rc -ne 0 ]] || continue 2
    [[ $rc -lt 128 ]] || exit "$rc"   # interrupted: no retry
  done
  die "scenario $s failed 3 times"
done
ls -l "$out"
