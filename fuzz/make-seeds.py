#!/usr/bin/env python3
"""Writes the initial fuzz corpora under fuzz/corpus/<target>/ from the repository's
fixtures and a few synthetic inputs (see fuzz/harness/*.rs for the input formats).
Run from anywhere: python3 fuzz/make-seeds.py"""
import gzip, hashlib, os, struct, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "fixtures")
OUT = os.path.join(ROOT, "fuzz", "corpus")


def put(target, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(p):
    with open(p, "rb") as f:
        return f.read()


# ---- capture_reader: [mode] file
reader_files = [os.path.join(FIX, "reader", n) for n in sorted(os.listdir(os.path.join(FIX, "reader")))
                if not n.endswith(".jsonl")]
small_http = [os.path.join(FIX, "http", n) for n in ("keepalive.pcap", "sll2.pcap", "midstream.pcap")]
for p in reader_files + small_http:
    put("capture_reader", b"\x00" + read(p))
l7 = os.path.join(FIX, "l7rec", "nginx-python.pcapng")
plain = subprocess.run(["zstd", "-dc", l7], check=True, capture_output=True).stdout
put("capture_reader", b"\x00" + read(l7))  # zstd as recorded
put("capture_reader", b"\x00" + plain[:16384])  # plain pcapng with l7rec custom blocks
put("capture_reader", b"\x01" + plain[:8192])  # compressed by the harness
put("capture_reader", b"\x02" + read(os.path.join(FIX, "reader", "dumpcap.pcapng")))
put("capture_reader", b"\x81" + plain[:8192])  # zstd cut at half

# ---- analyzer_pcap: [sel] records (pcap header written by the harness)
LINK = {1: 0, 276: 3}
for n in sorted(os.listdir(os.path.join(FIX, "http"))):
    if not n.endswith(".pcap"):
        continue
    b = read(os.path.join(FIX, "http", n))
    if len(b) > 40000:
        continue
    magic, = struct.unpack("<I", b[:4])
    lt, = struct.unpack("<I", b[20:24])
    sel = (LINK[lt] << 2) | (1 if magic == 0xa1b23c4d else 0)
    put("analyzer_pcap", bytes([sel]) + b[24:])

# ---- http: [cfg] ops
def data(side, b):
    out = b""
    for i in range(0, len(b), 200):
        piece = b[i:i + 200]
        out += bytes([0x80 if side == "s" else 0, len(piece)]) + piece
    return out

def gap(side, n):
    return bytes([(0x80 if side == "s" else 0) | 4, n & 0x7f])

def close(side):
    return bytes([(0x80 if side == "s" else 0) | 5])

req = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n"
ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
post = b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"
seeds = [
    b"\x00" + data("c", req) + data("s", ok) + data("c", req) + data("s", chunked) + close("c") + close("s"),
    b"\x00" + data("c", req + req + b"HEAD / HTTP/1.1\r\n\r\n") + data("s", ok + chunked + ok),
    b"\x00" + data("c", post) + data("s", b"HTTP/1.1 100 Continue\r\n\r\n") + data("c", b"body")
    + data("s", b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    b"\x00" + data("c", b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
    + data("s", b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n") + data("c", b"\x81\x05hello"),
    b"\x00" + data("c", b"CONNECT h:443 HTTP/1.1\r\n\r\n") + data("s", b"HTTP/1.1 200 OK\r\n\r\n") + data("c", b"\x16\x03"),
    b"\x00" + data("c", req) + data("s", b"HTTP/1.0 200 OK\r\n\r\nclose-delimited") + close("s"),
    b"\x00" + data("c", req) + data("s", ok[:30]) + gap("s", 20) + data("s", ok) + gap("c", 5) + data("c", req),
    b"\x01" + data("s", b"lo\r\n\r\n" + ok) + data("c", b"x HTTP/1.1\r\n\r\n" + req),
    b"\x02" + data("c", b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n") + data("s", ok),
    b"\x00" + data("c", b"GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n")
    + data("s", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
]
for s in seeds:
    put("http", s)

# ---- reassembly: [cfg] [isn] ops
def seg(rel, n, syn=False, fin=False, rst=False, raw=None):
    k = 0 | (0x20 if syn else 0) | (0x40 if fin else 0) | ((0x80 | 4) if rst else 0) | (8 if raw else 0)
    b = bytes([k]) + struct.pack("<h", rel) + bytes([n])
    return b + (raw or b"")

isn = struct.pack("<I", 0xfffffff0)
put("reassembly", b"\x00" + isn + seg(0, 0, syn=True) + seg(11, 10) + seg(1, 10) + seg(21, 5, fin=True))
put("reassembly", b"\x01" + isn + seg(0, 0, syn=True) + seg(40, 30) + seg(80, 30) + seg(120, 30) + seg(1, 39))
put("reassembly", b"\x00" + isn + seg(5, 20) + seg(5, 20) + seg(0, 63) + bytes([2]) + struct.pack("<h", 68) + b"\x10" + seg(100, 3, rst=True))
put("reassembly", b"\x00" + struct.pack("<I", 1000) + seg(0, 0, syn=True) + seg(1, 8, raw=b"abcdefgh") + seg(3, 8, raw=b"XXXXXXXX") + b"\x03" + seg(20, 4))
print("seeds written under", OUT)
