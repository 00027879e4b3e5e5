#!/usr/bin/env python3
"""Small HTTP/1.1 server (http.server subclass) for framings nginx does not produce on demand.

  GET /chunked         200, Transfer-Encoding: chunked: several chunks of different sizes,
                       one chunk with a chunk extension, and two trailer fields
  GET /close-delimited 200 with neither Content-Length nor chunked: the body ends when the
                       server closes the connection
  anything else        404 with Content-Length

usage: http_helper_server.py BIND_ADDR PORT
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

CHUNKS = [b"first chunk of the chunked body\n", b"x" * 300 + b"\n", b"second line\n" * 40, b"end\n"]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "l7rec-fixture/1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum, X-Chunk-Count")
            self.end_headers()
            self.wfile.flush()
            for i, c in enumerate(CHUNKS):
                ext = ';name="with ext";flag' if i == 1 else ""
                self.wfile.write(b"%x%s\r\n" % (len(c), ext.encode()) + c + b"\r\n")
                self.wfile.flush()
                time.sleep(0.02)  # let the chunks leave in separate segments
            self.wfile.write(b"0\r\nX-Checksum: %d\r\nX-Chunk-Count: %d\r\n\r\n" % (sum(map(len, CHUNKS)), len(CHUNKS)))
            self.wfile.flush()
        elif self.path == "/close-delimited":
            body = b"this body has no length; the server closes the connection to end it\n" * 20
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
        else:
            body = b"not found\n"
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


HTTPServer((sys.argv[1], int(sys.argv[2])), Handler).serve_forever()
