"""Shared helpers for the SNMP integration tests: ephemeral ports, daemons
started by the test, running `netpulse-agent --once`."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_snmp(port, community, timeout_s=30.0, oid="1.3.6.1.2.1.1.3.0"):
    """Waits until an SNMP agent answers a v2c GET on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        r = subprocess.run(["snmpget", "-v2c", "-c", community, "-t", "1", "-r", "0",
                            "-On", f"127.0.0.1:{port}", oid],
                           capture_output=True, text=True)
        if r.returncode == 0 and "Timeout" not in r.stdout:
            return True
        time.sleep(0.3)
    return False


def run_once(agent, conf_text, workdir, timeout_s=120):
    conf = os.path.join(workdir, "agent.conf")
    with open(conf, "w") as f:
        f.write("[agent]\nid = test-site\n" + conf_text)
    t0 = time.monotonic()
    r = subprocess.run([agent, "-c", conf, "--once"], capture_output=True, text=True,
                       timeout=timeout_s)
    elapsed = time.monotonic() - t0
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    return r.returncode, lines, r.stderr, elapsed


class Failures:
    def __init__(self, name):
        self.name = name
        self.n = 0

    def check(self, cond, msg):
        if not cond:
            self.n += 1
            print(f"{self.name}: FAIL: {msg}", file=sys.stderr)

    def eq(self, a, b, msg):
        self.check(a == b, f"{msg}: {a!r} != {b!r}")

    def done(self):
        if self.n:
            print(f"{self.name}: {self.n} check(s) failed", file=sys.stderr)
            return 1
        print(f"{self.name}: all checks passed")
        return 0


def mkdtemp(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    os.chmod(d, 0o755)
    return d


def rmtree(d):
    shutil.rmtree(d, ignore_errors=True)
