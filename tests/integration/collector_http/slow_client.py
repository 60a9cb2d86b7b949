#!/usr/bin/env python3
"""Misbehaving clients for the collector HTTP tests (stdlib only).

  slow_client.py stall   PORT CAFILE   TLS, half a request, then silence
  slow_client.py trickle PORT CAFILE   TLS, one request byte per second
  slow_client.py garbage PORT          random bytes instead of a TLS handshake
  slow_client.py tlsjunk PORT CAFILE   TLS, then bytes that are not HTTP

Prints "closed AFTER_S" when the server closed the connection (or
"open AFTER_S" if it was still open after 40 s) and exits 0; the caller
judges the time.
"""
import os
import socket
import ssl
import sys
import time

LIMIT_S = 40


def tls_connect(port, cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def closed(sock, wait_s):
    """True when the peer closed within wait_s."""
    sock.settimeout(wait_s)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except socket.timeout:
        return False
    except (ConnectionError, ssl.SSLError, OSError):
        return True


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    start = time.monotonic()
    if mode == "garbage":
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(os.urandom(4096))
        done = closed(s, LIMIT_S)
    elif mode == "tlsjunk":
        s = tls_connect(port, sys.argv[3])
        s.sendall(b"\x00\x01\x02 not http at all \xff\xfe\r\n\r\n")
        done = closed(s, LIMIT_S)
    elif mode == "stall":
        s = tls_connect(port, sys.argv[3])
        s.sendall(b"POST /api/v1/ingest HTTP/1.1\r\nHost: localhost\r\nContent-Le")
        done = closed(s, LIMIT_S)
    elif mode == "trickle":
        s = tls_connect(port, sys.argv[3])
        req = (b"POST /api/v1/ingest HTTP/1.1\r\nHost: localhost\r\n"
               b"X-Padding: " + b"a" * 200 + b"\r\n\r\n")
        done = False
        for i in range(len(req)):
            try:
                s.sendall(req[i:i + 1])
            except (ConnectionError, ssl.SSLError, OSError):
                done = True
                break
            if closed(s, 1.0):
                done = True
                break
            if time.monotonic() - start > LIMIT_S:
                break
    else:
        print("unknown mode", file=sys.stderr)
        return 2
    print(("closed" if done else "open") + " %.1f" % (time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
