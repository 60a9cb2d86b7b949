#!/usr/bin/env python3
"""Integration tests of agent/probe through tests/integration/probe/probe_run.

Two network namespaces joined by a veth pair, both created (and removed in a
finally) by the test: the probes run in "a" (10.97.1.1/24, fd97::1/64), the
targets live in "b" (10.97.1.2/24, fd97::2/64). No traffic leaves them.

  test_probe.py icmp|tcp|dns|http PROBE_RUN

icmp: raw sockets (the namespace's default ping_group_range "1 0") then ping
      sockets (range opened inside the namespace), IPv4 and IPv6; two probes
      at one target see each other's replies on their raw sockets and must
      count only their own; the link cut from b's side gives failures and an
      UPLINK_DOWN stamped within one interval of the cut, and UPLINK_UP after.
tcp:  a listener (ok, rtt), a closed port (connection refused), an address
      nobody answers (timeout / host unreachable); quorum 1 and all.
dns:  a tiny resolver (A answer, NXDOMAIN), a server that never answers
      (timeout), the system resolver.
http: python3's http.server: 200 ok, 404 fails with expect_status default,
      404 ok with expect_status = 404.
Exit 0 pass, 1 fail, 77 skipped (not root / no netns)."""
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time

PID = os.getpid()
NS_A, NS_B = f"npa{PID}", f"npb{PID}"
VA, VB = f"vpa{PID % 100000}", f"vpb{PID % 100000}"
A4, B4, A6, B6 = "10.97.1.1", "10.97.1.2", "fd97::1", "fd97::2"
FAILS = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILS.append(what)


def sh(*args, check_rc=True):
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def setup():
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "add", ns)
        # No duplicate address detection: the addresses (link-local ones too)
        # work at once, also after the link comes back.
        # IPv6 addresses stay on a link that goes down (the cut), like IPv4 ones.
        for conf in ("all", "default"):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{conf}.accept_dad=0")
            sh("ip", "netns", "exec", ns, "sysctl", "-qw",
               f"net.ipv6.conf.{conf}.keep_addr_on_down=1")
    sh("ip", "link", "add", VA, "netns", NS_A, "type", "veth", "peer", "name", VB, "netns", NS_B)
    for ns, dev, a4, a6 in ((NS_A, VA, A4, A6), (NS_B, VB, B4, B6)):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "addr", "add", a4 + "/24", "dev", dev)
        sh("ip", "-n", ns, "addr", "add", a6 + "/64", "dev", dev, "nodad")
        sh("ip", "-n", ns, "link", "set", dev, "up")
    # A fresh veth takes about a second before IPv6 flows; wait until a
    # connection attempt from a to b is refused (answered) on both families.
    sh("ip", "netns", "exec", NS_A, sys.executable, "-c", WARM_UP, B4, B6)


WARM_UP = r"""
import socket, sys, time
for host in sys.argv[1:]:
    for _ in range(50):
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        s.settimeout(0.1)
        try:
            s.connect((host, 9))
            break
        except ConnectionRefusedError:
            break
        except OSError:
            time.sleep(0.1)
        finally:
            s.close()
"""


def teardown():
    for ns in (NS_A, NS_B):
        sh("ip", "netns", "del", ns, check_rc=False)


def in_b(code, *args):
    """Starts python3 -c code in namespace b; returns (process, first stdout line)."""
    p = subprocess.Popen(["ip", "netns", "exec", NS_B, sys.executable, "-c", code, *args],
                         stdout=subprocess.PIPE, text=True)
    return p, p.stdout.readline().strip()


class Run:
    """probe_run in namespace a, its JSON lines read by a thread."""

    def __init__(self, probe_run, conf_text, *args):
        self.conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False)
        self.conf.write("[agent]\nid = probe-test\n" + conf_text)
        self.conf.close()
        self.p = subprocess.Popen(["ip", "netns", "exec", NS_A, probe_run, "-c", self.conf.name,
                                   *args], stdout=subprocess.PIPE, text=True)
        self.q = queue.Queue()
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stdout:
            self.q.put(json.loads(line))
        self.q.put(None)

    def wait_for(self, pred, timeout):
        """Next line (consuming the ones before) that pred accepts, or None."""
        end = time.time() + timeout
        while time.time() < end:
            try:
                o = self.q.get(timeout=max(0.05, end - time.time()))
            except queue.Empty:
                break
            if o is None:
                return None
            self.lines.append(o)
            if pred(o):
                return o
        return None

    def finish(self, timeout=20):
        """Waits for exit (after --rounds/--for, or SIGTERM if still running)."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.send_signal(signal.SIGTERM)
            rc = self.p.wait(timeout=10)
        while True:
            o = self.wait_for(lambda o: False, 0.2)
            if o is None and self.q.empty():
                break
        os.unlink(self.conf.name)
        return rc

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        return self.finish()

    def results(self, name):
        return [o for o in self.lines if o["kind"] == "result" and o["name"] == name]

    def events(self, typ):
        return [o for o in self.lines if o["kind"] == "event" and o["type"] == typ]

    def sockets(self):
        return {o["name"]: o["socket"] for o in self.lines if o["kind"] == "probe"}


def icmp_conf(interval="1s"):
    return (f"[probe gw]\ntype = icmp\ntarget = {B4}\ninterval = {interval}\ntimeout = 400ms\n"
            f"count = 3\n"
            f"[probe gw-twin]\ntype = icmp\ntarget = {B4}\ninterval = {interval}\n"
            f"timeout = 400ms\ncount = 3\n"
            f"[probe gw6]\ntype = icmp\ntarget = {B6}\ninterval = {interval}\ntimeout = 400ms\n"
            f"count = 2\n")


def check_icmp_round(run, mode):
    for name in ("gw", "gw-twin", "gw6"):
        rs = run.results(name)
        check(len(rs) >= 2, f"{mode}: {name} has results ({len(rs)})")
        good = [r for r in rs if r["ok"]]
        check(len(good) == len(rs), f"{mode}: {name} every round ok")
        check(all(r["received"] == r["sent"] and r["sent"] > 0 for r in rs),
              f"{mode}: {name} received == sent, the twin's replies not counted")
        check(all(0 < r["rtt_us"] < 400000 for r in good), f"{mode}: {name} rtt measured")
    check(len(run.events("UPLINK_UP")) == 1, f"{mode}: one UPLINK_UP")


def test_icmp(probe_run):
    # Raw sockets: the new namespace's ping_group_range is "1 0" (nobody).
    sh("ip", "netns", "exec", NS_A, "sysctl", "-qw", "net.ipv4.ping_group_range=1 0")
    run = Run(probe_run, icmp_conf(), "--rounds", "2")
    rc = run.finish()
    check(rc == 0, "raw: probe_run exit 0")
    check(run.sockets() == {"gw": "raw", "gw-twin": "raw", "gw6": "raw"},
          f"raw sockets used: {run.sockets()}")
    check_icmp_round(run, "raw")

    # Ping sockets: let root's group in, inside namespace a only.
    sh("ip", "netns", "exec", NS_A, "sysctl", "-qw", "net.ipv4.ping_group_range=0 2147483647")
    run = Run(probe_run, icmp_conf(), "--rounds", "2")
    rc = run.finish()
    check(rc == 0, "ping: probe_run exit 0")
    check(run.sockets() == {"gw": "ping", "gw-twin": "ping", "gw6": "ping"},
          f"ping sockets used: {run.sockets()}")
    check_icmp_round(run, "ping")

    # Link cut and back (raw sockets again, so both paths see the outage).
    sh("ip", "netns", "exec", NS_A, "sysctl", "-qw", "net.ipv4.ping_group_range=1 0")
    # 2 s rounds: room for a slow machine's scheduling inside "one interval".
    interval_ms = 2000
    run = Run(probe_run, icmp_conf("2s"), "--for", "60s")
    up = run.wait_for(lambda o: o["kind"] == "event" and o["type"] == "UPLINK_UP", 10)
    check(up is not None, "cut: uplink up before the cut")
    time.sleep(1.5)
    cut_ms = int(time.time() * 1000)
    sh("ip", "-n", NS_B, "link", "set", VB, "down")
    down = run.wait_for(lambda o: o["kind"] == "event" and o["type"] == "UPLINK_DOWN", 15)
    check(down is not None, "cut: UPLINK_DOWN after the cut")
    if down:
        check(abs(down["time_ms"] - cut_ms) <= interval_ms,
              f"cut: UPLINK_DOWN stamped {down['time_ms'] - cut_ms} ms from the cut "
              f"(within one interval)")
    time.sleep(3 * interval_ms / 1000)
    back_ms = int(time.time() * 1000)
    sh("ip", "-n", NS_B, "link", "set", VB, "up")
    up2 = run.wait_for(lambda o: o["kind"] == "event" and o["type"] == "UPLINK_UP", 15)
    check(up2 is not None, "cut: UPLINK_UP after the link is back")
    if up2:
        check(up2["time_ms"] >= back_ms - interval_ms,
              f"cut: UPLINK_UP stamped {up2['time_ms'] - back_ms} ms from the repair")
    back = {up2["subject"]} if up2 else set()
    while back != {"gw", "gw-twin", "gw6"}:
        o = run.wait_for(lambda o: o["kind"] == "event" and o["type"] == "PROBE_UP", 10)
        if o is None:
            break
        back.add(o["subject"])
    check(back == {"gw", "gw-twin", "gw6"}, f"cut: every probe up again ({sorted(back)})")
    rc = run.stop()
    check(rc == 0, "cut: probe_run exit 0 after SIGTERM")
    failed = [r for r in run.results("gw") if not r["ok"]]
    check(len(failed) >= 2, f"cut: failed rounds during the cut ({len(failed)})")
    check(all(r["received"] == 0 and r["error"] for r in failed),
          "cut: failed rounds have received 0 and a reason")
    check(len(run.events("PROBE_DOWN")) == 3 and len(run.events("PROBE_UP")) == 6,
          f"cut: PROBE_DOWN x3, PROBE_UP x6 "
          f"({len(run.events('PROBE_DOWN'))}, {len(run.events('PROBE_UP'))})")
    downs = run.events("UPLINK_DOWN")
    check(len(downs) == 1, f"cut: exactly one UPLINK_DOWN ({len(downs)})")


LISTENER = r"""
import socket, sys, time
l = socket.socket(); l.bind((sys.argv[1], 0)); l.listen(16)
c = socket.socket(); c.bind((sys.argv[1], 0)); closed = c.getsockname()[1]; c.close()
print(l.getsockname()[1], closed, flush=True)
while True:
    s, _ = l.accept(); s.close()
"""


def test_tcp(probe_run):
    srv, ports = in_b(LISTENER, B4)
    try:
        port, closed = ports.split()
        conf = (f"[probe open]\ntype = tcp\ntarget = {B4}:{port}\ninterval = 1s\ntimeout = 500ms\n"
                f"[probe closed]\ntype = tcp\ntarget = {B4}:{closed}\ninterval = 1s\n"
                f"timeout = 500ms\n"
                f"[probe void]\ntype = tcp\ntarget = 10.97.1.77:80\ninterval = 1s\n"
                f"timeout = 500ms\n")
        run = Run(probe_run, conf, "--rounds", "2")
        check(run.finish() == 0, "tcp: probe_run exit 0")
        o = run.results("open")
        check(len(o) == 2 and all(r["ok"] and r["rtt_us"] > 0 for r in o),
              "tcp: listener ok with rtt")
        c = run.results("closed")
        check(len(c) == 2 and all(not r["ok"] and r["error"] == "connection refused" for r in c),
              f"tcp: closed port refused ({[r['error'] for r in c]})")
        v = run.results("void")
        check(len(v) == 2 and all(not r["ok"] and r["error"] in ("timeout", "host unreachable")
                                  for r in v),
              f"tcp: silent address fails ({[r['error'] for r in v]})")
        check(len(run.events("UPLINK_UP")) == 1 and not run.events("UPLINK_DOWN"),
              "tcp: quorum 1 -> uplink up")
        run = Run(probe_run, conf + "[uplink]\nquorum = all\n", "--rounds", "1")
        check(run.finish() == 0, "tcp: probe_run exit 0 (quorum all)")
        check(len(run.events("UPLINK_DOWN")) == 1 and not run.events("UPLINK_UP"),
              "tcp: quorum all -> uplink down")
    finally:
        srv.kill()
        srv.wait()


RESOLVER = r"""
import socket, struct, sys
def serve(sock):
    while True:
        q, peer = sock.recvfrom(512)
        if len(q) < 17: continue
        qid, flags = struct.unpack("!HH", q[:4])
        i, labels = 12, []
        while q[i]:
            labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
        question = q[12:i + 5]
        name = ".".join(labels).lower()
        if name == "up.test":
            ans = struct.pack("!HHHLH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("10.97.1.99")
            hdr = struct.pack("!HHHHHH", qid, 0x8180 | (flags & 0x0100), 1, 1, 0, 0)
            sock.sendto(hdr + question + ans, peer)
        else:
            hdr = struct.pack("!HHHHHH", qid, 0x8183 | (flags & 0x0100), 1, 0, 0, 0)
            sock.sendto(hdr + question, peer)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 0))
silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); silent.bind((sys.argv[1], 0))
print(s.getsockname()[1], silent.getsockname()[1], flush=True)
serve(s)
"""


def test_dns(probe_run):
    srv, ports = in_b(RESOLVER, B4)
    try:
        port, silent = ports.split()
        conf = (f"[probe up]\ntype = dns\ntarget = up.test\nserver = {B4}:{port}\n"
                f"interval = 1s\ntimeout = 500ms\n"
                f"[probe nx]\ntype = dns\ntarget = missing.test\nserver = {B4}:{port}\n"
                f"interval = 1s\ntimeout = 500ms\n"
                f"[probe silent]\ntype = dns\ntarget = up.test\nserver = {B4}:{silent}\n"
                f"interval = 1s\ntimeout = 500ms\n"
                f"[probe system]\ntype = dns\ntarget = localhost\ninterval = 1s\n"
                f"timeout = 500ms\n")
        run = Run(probe_run, conf, "--rounds", "2")
        check(run.finish() == 0, "dns: probe_run exit 0")
        u = run.results("up")
        check(len(u) == 2 and all(r["ok"] and r["rtt_us"] > 0 for r in u),
              f"dns: A answer ok ({[r['error'] for r in u]})")
        n = run.results("nx")
        check(len(n) == 2 and all(not r["ok"] and r["error"] == "name not found" for r in n),
              f"dns: NXDOMAIN fails ({[r['error'] for r in n]})")
        s = run.results("silent")
        check(len(s) == 2 and all(not r["ok"] and r["error"] == "timeout" for r in s),
              f"dns: silent server times out ({[r['error'] for r in s]})")
        y = run.results("system")
        check(len(y) == 2 and all(r["ok"] for r in y), "dns: system resolver ok")
    finally:
        srv.kill()
        srv.wait()


HTTPD = r"""
import http.server, os, sys
os.chdir(sys.argv[2])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer((sys.argv[1], 0), Quiet)
print(s.server_address[1], flush=True)
s.serve_forever()
"""


def test_http(probe_run):
    docroot = tempfile.mkdtemp()
    with open(os.path.join(docroot, "index.html"), "w") as f:
        f.write("<p>netpulse</p>\n")
    srv, port = in_b(HTTPD, B4, docroot)
    try:
        base = f"http://{B4}:{port}"
        conf = (f"[probe web]\ntype = http\ntarget = {base}/\ninterval = 1s\ntimeout = 800ms\n"
                f"[probe missing]\ntype = http\ntarget = {base}/nope\ninterval = 1s\n"
                f"timeout = 800ms\n"
                f"[probe want404]\ntype = http\ntarget = {base}/nope\ninterval = 1s\n"
                f"timeout = 800ms\nexpect_status = 404\n"
                f"[probe refused]\ntype = http\ntarget = http://{B4}:1/\ninterval = 1s\n"
                f"timeout = 800ms\n")
        run = Run(probe_run, conf, "--rounds", "2")
        check(run.finish() == 0, "http: probe_run exit 0")
        w = run.results("web")
        check(len(w) == 2 and all(r["ok"] and r["rtt_us"] > 0 for r in w),
              f"http: 200 ok ({[r['error'] for r in w]})")
        m = run.results("missing")
        check(len(m) == 2 and all(not r["ok"] and r["error"] == "HTTP status 404" for r in m),
              f"http: 404 fails ({[r['error'] for r in m]})")
        x = run.results("want404")
        check(len(x) == 2 and all(r["ok"] for r in x), "http: 404 ok with expect_status = 404")
        f = run.results("refused")
        check(len(f) == 2 and all(not r["ok"] and r["error"] for r in f),
              f"http: refused fails ({[r['error'] for r in f]})")
    finally:
        srv.kill()
        srv.wait()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("icmp", "tcp", "dns", "http"):
        print(__doc__, file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("skipped: needs root for network namespaces")
        return 77
    try:
        setup()
    except (RuntimeError, FileNotFoundError) as e:
        teardown()
        print(f"skipped: cannot create namespaces: {e}")
        return 77
    t0 = time.time()
    try:
        {"icmp": test_icmp, "tcp": test_tcp, "dns": test_dns, "http": test_http}[sys.argv[1]](
            sys.argv[2])
    finally:
        teardown()
    print(f"{sys.argv[1]}: {len(FAILS)} failure(s) in {time.time() - t0:.1f}s")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
