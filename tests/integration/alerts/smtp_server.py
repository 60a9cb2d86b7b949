"""A real SMTP server for the alert tests: aiosmtpd (Debian python3-aiosmtpd)
with STARTTLS required before AUTH and before mail, AUTH PLAIN/LOGIN against
one user, and every accepted message written to a folder as NNNN.eml plus
NNNN.json (envelope: mail_from, rcpt_tos, peer, tls, auth user).

Used as a module by run_alerts.py (start/stop in the test's process, so the
test can take the server down and bring it back), or standalone:
  python3 smtp_server.py --dir DIR --cert CERT --key KEY --user U --password P
                         [--port N] [--port-file FILE]
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class _Store:
    def __init__(self, folder, user, password):
        self.folder = folder
        self.user = user.encode()
        self.password = password.encode()
        self.lock = threading.Lock()
        os.makedirs(folder, exist_ok=True)

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.login == self.user \
                and auth_data.password == self.password:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            n = len([f for f in os.listdir(self.folder) if f.endswith(".eml")])
            base = os.path.join(self.folder, "%04d" % n)
            with open(base + ".eml.tmp", "wb") as f:
                f.write(envelope.original_content or envelope.content)
            with open(base + ".json", "w") as f:
                json.dump({"mail_from": envelope.mail_from,
                           "rcpt_tos": envelope.rcpt_tos,
                           "tls": getattr(server, "_tls_protocol", None) is not None,
                           "auth": (session.auth_data.login.decode()
                                    if isinstance(session.auth_data, LoginPassword) else None)},
                          f)
            os.rename(base + ".eml.tmp", base + ".eml")
        return "250 OK queued as %04d" % n


class SmtpServer:
    """STARTTLS + AUTH server on 127.0.0.1:port (0: pick one; kept across
    stop/start so the collector's URL stays valid)."""

    def __init__(self, folder, cert, key, user, password, port=0):
        self.store = _Store(folder, user, password)
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        if port == 0:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
        self.port = port
        self.controller = None

    def start(self):
        self.controller = Controller(
            self.store, hostname="127.0.0.1", port=self.port, tls_context=self.ctx,
            require_starttls=True, auth_require_tls=True, auth_required=True,
            authenticator=self.store.authenticate, ready_timeout=10)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None


def main():
    ap = argparse.ArgumentParser()
    for a in ("--dir", "--cert", "--key", "--user", "--password"):
        ap.add_argument(a, required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    o = ap.parse_args()
    srv = SmtpServer(o.dir, o.cert, o.key, o.user, o.password, o.port)
    srv.start()
    if o.port_file:
        with open(o.port_file + ".tmp", "w") as f:
            f.write("%d\n" % srv.port)
        os.rename(o.port_file + ".tmp", o.port_file)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
