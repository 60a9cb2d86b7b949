#!/usr/bin/env python3
"""Rates end to end over a real link: two network namespaces created by the
test joined by a veth pair (10.99.X.1 <-> 10.99.X.2, IPv6 off and static
neighbours so nothing but our traffic crosses it), Debian's snmpd and
`netpulse-agent --polls 3 --interval 4s` inside the first namespace. Between
the polls the test sends a known number of UDP datagrams across the veth and
the peer echoes them back. For each poll the veth counters must equal
/proc/net/dev of that namespace, and the rate must equal the known traffic
(payload + UDP/IP/Ethernet headers, both ways) over the real interval.

The 4 s interval is longer than snmpd's 3 s interface cache, so each poll
reads fresh counters. Namespaces are deleted on exit, also on SIGTERM.

usage: test_snmp_veth.py AGENT   (root; exits 77 = skipped otherwise)"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

INTERVAL_S = 4.0
SNMP_PORT = 16161  # inside our own namespace: nothing else listens there
BURSTS = [(400, 1000), (1000, 200)]  # (datagrams, payload bytes) before polls 2 and 3
WIRE_OVERHEAD = 14 + 20 + 8  # Ethernet + IPv4 + UDP headers counted by the veth

ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(65535)
    s.sendto(data, peer)
"""

BLAST = r"""
import socket, sys
n, size, dst, port = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.settimeout(2.0)
got = 0
for i in range(n):
    s.sendto(bytes([i & 255]) * size, (dst, port))
    # Lockstep: one datagram in flight, so no queue anywhere can drop one.
    try:
        data, _ = s.recvfrom(65535)
        got += 1
    except socket.timeout:
        break
print(got)
"""


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def in_ns(ns, *args):
    return ["ip", "netns", "exec", ns] + list(args)


def dev_bytes(ns, dev):
    out = sh(*in_ns(ns, "cat", "/proc/net/dev")).stdout
    for line in out.splitlines():
        name, _, rest = line.partition(":")
        if name.strip() == dev:
            v = rest.split()
            return int(v[0]), int(v[8])
    raise RuntimeError(f"no {dev} in /proc/net/dev of {ns}")


def mac(ns, dev):
    out = sh("ip", "-n", ns, "link", "show", dev).stdout
    return re.search(r"link/ether ([0-9a-f:]{17})", out).group(1)


def remove_stale_namespaces():
    """Namespaces left by an earlier run that was killed hard."""
    out = sh("ip", "netns", "list", check=False).stdout
    for line in out.splitlines():
        m = re.match(r"(npsnmp[ab]-(\d+))\b", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            sh("ip", "netns", "del", m.group(1), check=False)


def main():
    agent = sys.argv[1]
    if os.geteuid() != 0:
        print("test_snmp_veth: SKIP: needs root for network namespaces")
        return 77
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    fails = helpers.Failures("test_snmp_veth")
    remove_stale_namespaces()
    pid = os.getpid()
    nsa, nsb = f"npsnmpa-{pid}", f"npsnmpb-{pid}"
    net = f"10.99.{pid % 250}"
    work = helpers.mkdtemp("np-snmpveth-")
    procs = []
    run = None
    try:
        for ns in (nsa, nsb):
            sh("ip", "netns", "add", ns)
            sh(*in_ns(ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                      "net.ipv6.conf.default.disable_ipv6=1"))
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", nsa, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
           "netns", nsb)
        sh("ip", "-n", nsa, "addr", "add", f"{net}.1/30", "dev", "veth0")
        sh("ip", "-n", nsb, "addr", "add", f"{net}.2/30", "dev", "veth1")
        sh("ip", "-n", nsa, "neigh", "replace", f"{net}.2", "lladdr", mac(nsb, "veth1"),
           "dev", "veth0", "nud", "permanent")
        sh("ip", "-n", nsb, "neigh", "replace", f"{net}.1", "lladdr", mac(nsa, "veth0"),
           "dev", "veth1", "nud", "permanent")
        sh("ip", "-n", nsa, "link", "set", "veth0", "up")
        sh("ip", "-n", nsb, "link", "set", "veth1", "up")

        conf = os.path.join(work, "snmpd.conf")
        with open(conf, "w") as f:
            f.write("rocommunity public 127.0.0.1\n")
        env = dict(os.environ, SNMP_PERSISTENT_DIR=work, MIBS="")
        procs.append(subprocess.Popen(in_ns(nsa, "snmpd", "-f", "-Lo", "-C", "-c", conf, "-p",
                                            os.path.join(work, "pid"),
                                            f"udp:127.0.0.1:{SNMP_PORT}"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      env=env))
        echo = subprocess.Popen(in_ns(nsb, sys.executable, "-c", ECHO, f"{net}.2", "9999"),
                                stdout=subprocess.PIPE, text=True)
        procs.append(echo)
        fails.eq(echo.stdout.readline().strip(), "ready", "echo server")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = subprocess.run(in_ns(nsa, "snmpget", "-v2c", "-c", "public", "-t", "1", "-r",
                                     "0", f"127.0.0.1:{SNMP_PORT}", "1.3.6.1.2.1.1.3.0"),
                               capture_output=True, text=True)
            if r.returncode == 0:
                break
            time.sleep(0.3)
        # Let snmpd's interface cache (filled by nothing yet, 3 s) be stale.
        time.sleep(0.5)

        cfg = (f"[snmp ns]\nhost = 127.0.0.1\nport = {SNMP_PORT}\ncommunity = public\n"
               "timeout = 1s\nretries = 1\ninterfaces = veth0\n")
        before = dev_bytes(nsa, "veth0")
        run = helpers.AgentRun(agent, cfg, work, 1 + len(BURSTS), f"{int(INTERVAL_S * 1000)}ms",
                               prefix=in_ns(nsa))
        reads = []  # /proc/net/dev after each burst (the link is quiet otherwise)
        polls = {}
        for k in range(1, 2 + len(BURSTS)):
            got = run.wait_poll(k, 1, timeout_s=INTERVAL_S * 3)
            polls[k] = got[0]
            now = dev_bytes(nsa, "veth0")
            if k == 1:
                fails.eq(now, before, "veth0 quiet around poll 1")
                reads.append(now)
            if k <= len(BURSTS):
                n, size = BURSTS[k - 1]
                r = subprocess.run(in_ns(nsa, sys.executable, "-c", BLAST, str(n), str(size),
                                         f"{net}.2", "9999"),
                                   capture_output=True, text=True, timeout=30)
                fails.eq(r.stdout.strip(), str(n), f"burst {k}: echoes received")
                reads.append(dev_bytes(nsa, "veth0"))
        rc, err = run.finish()
        fails.eq(rc, 0, f"agent exit status (stderr: {err})")

        for k in range(1, 2 + len(BURSTS)):
            l = polls[k]
            fails.eq(l["ifName"], "veth0", f"poll {k} ifName")
            fails.eq((l["inOctets"], l["outOctets"]), reads[k - 1],
                     f"poll {k} counters vs /proc/net/dev")
            if k == 1:
                fails.eq(l["rateStatus"], "first-poll", "poll 1 rateStatus")
                continue
            n, size = BURSTS[k - 2]
            wire = n * (size + WIRE_OVERHEAD)
            fails.eq(reads[k - 1][0] - reads[k - 2][0], wire, f"burst {k - 1} /proc rx delta")
            fails.eq(reads[k - 1][1] - reads[k - 2][1], wire, f"burst {k - 1} /proc tx delta")
            fails.eq(l["rateStatus"], "ok", f"poll {k} rateStatus")
            ms = l["intervalMs"] or 0
            fails.check(abs(ms - INTERVAL_S * 1000) < 250, f"poll {k} intervalMs {ms}")
            for key in ("inBps", "outBps"):
                exact = wire * 8000.0 / ms if ms else 0
                nominal = wire * 8 / INTERVAL_S
                v = l[key] or 0
                fails.check(abs(v - exact) <= 1e-6 * exact,
                            f"poll {k} {key} {v} != {exact} (delta x 8 / intervalMs)")
                fails.check(abs(v - nominal) <= 0.05 * nominal,
                            f"poll {k} {key} {v} not within 5 % of {nominal}")
            print(f"poll {k}: {wire} octets each way, inBps={l['inBps']:.0f} "
                  f"outBps={l['outBps']:.0f} over {ms} ms")
    except Exception as exc:  # noqa: BLE001 - report, clean up, fail
        fails.check(False, f"exception: {exc!r}")
    finally:
        if run:
            run.kill()
        for p in procs:
            helpers.stop_proc(p)
        for ns in (nsa, nsb):
            sh("ip", "netns", "del", ns, check=False)
        helpers.rmtree(work)
    return fails.done()


if __name__ == "__main__":
    sys.exit(main())
