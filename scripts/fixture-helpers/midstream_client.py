#!/usr/bin/env python3
"""Keep-alive client for a capture that starts mid-connection.

Connects, sends request 1 and reads its response, then creates READY_FILE and waits
(at least MIN_WAIT seconds and until GO_FILE exists, at most 15 s) so the capture can be
started, then sends the remaining requests on the same connection and closes.

usage: midstream_client.py HOST PORT READY_FILE GO_FILE MIN_WAIT PATH1 PATH2 [PATH...]
"""
import http.client
import os
import sys
import time

host, port, ready, go, min_wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5])
paths = sys.argv[6:]
conn = http.client.HTTPConnection(host, port, timeout=10)


def get(path):
    conn.request("GET", path, headers={"User-Agent": "l7rec-midstream/1"})
    r = conn.getresponse()
    body = r.read()
    print(f"midstream: {path} -> {r.status} ({len(body)} bytes)")


get(paths[0])
open(ready, "w").close()
t0 = time.monotonic()
while time.monotonic() - t0 < 15:
    if time.monotonic() - t0 >= min_wait and os.path.exists(go):
        break
    time.sleep(0.1)
for p in paths[1:]:
    get(p)
conn.close()
