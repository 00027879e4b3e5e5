#!/usr/bin/env python3
"""Send several HTTP/1.1 GET requests in ONE write on one connection, then read every
response until the server closes (the last request carries `Connection: close`).

usage: pipeline_client.py HOST PORT PATH [PATH...]
"""
import socket
import sys
import time

host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
reqs = []
for i, p in enumerate(paths):
    last = i == len(paths) - 1
    reqs.append(
        f"GET {p} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: l7rec-pipeline/1\r\n"
        f"Accept: */*\r\n{'Connection: close' + chr(13) + chr(10) if last else ''}\r\n"
    )
payload = "".join(reqs).encode()
s = socket.create_connection((host, port), timeout=10)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.sendall(payload)  # one write: all requests in one segment on lo
got = b""
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    b = s.recv(65536)
    if not b:
        break
    got += b
s.close()
n = got.count(b"HTTP/1.1 ")
print(f"pipeline: sent {len(paths)} requests in {len(payload)} bytes, got {len(got)} bytes, {n} status lines")
sys.exit(0 if n >= len(paths) else 1)
