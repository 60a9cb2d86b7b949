#!/usr/bin/env python3
"""Runs tests/unit/test_curl_uv (argv[1]) against a real HTTP/1.1 server on an
ephemeral loopback port started here, and a listener that never answers.

Endpoints: GET /data/N   N bytes of a known pattern (keep-alive)
           POST /echo    the request body back
           GET /status/C an empty reply with status C
"""
import http.server
import socket
import subprocess
import sys
import threading


def pattern(n):
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) == 3 and parts[1] == "data":
            self.reply(200, pattern(int(parts[2])))
        elif len(parts) == 3 and parts[1] == "status":
            self.reply(int(parts[2]), b"")
        else:
            self.reply(404, b"no such thing\n")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        self.reply(200, body)


def main():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    # A listener that accepts (kernel backlog) and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    # A port with nothing behind it.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    silent_url = "http://127.0.0.1:%d/" % silent.getsockname()[1]
    refused_url = "http://127.0.0.1:%d/" % closed_port
    rc = subprocess.run([sys.argv[1], base, silent_url, refused_url], timeout=50).returncode
    srv.shutdown()
    sys.exit(rc)


if __name__ == "__main__":
    main()
