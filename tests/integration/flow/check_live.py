#!/usr/bin/env python3
"""Live capture for real: two network namespaces joined by a veth pair, the
agent capturing on the host-side end (`netpulse-agent --capture-for`) while
tcpdump writes the same interface to a file as ground truth, and a known
traffic mix sent from the other namespace: UDP (plain, DNS, QUIC-port over
IPv6), one TCP transfer to port 80, ICMP and ICMPv6 echoes.

Checks, summed over the per-interval JSON lines:
  - packets, wire bytes, IPv4/IPv6, per IP protocol, direction in/out: equal to
    tshark's count of the tcpdump file;
  - the UDP and ICMP flows: exactly the packets and bytes sent, right direction
    and application class; every flow equal to the offline run of the same
    code path (`--pcap-file` on the tcpdump file);
  - the capture block (pcap_stats) is present in every line, no kernel drops;
  - exports arrive every interval, also quiet ones, numbered without gaps;
  - the loop's 50 ms timer kept ticking while capture ran (hand-off by
    uv_async never blocks the loop);
  - privacy: the local host address never appears in full.

Root only (ip netns); exits 77 (skipped) otherwise. Everything it creates is
removed on exit. Traffic stays inside the two namespaces."""
import argparse
import collections
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

SKIP = 77
DURATION_S = 6
INTERVAL_S = 1

# What the sender sends (payload sizes); wire length = 14 (Ethernet) + IP + L4 + payload.
UDP4 = [  # (sport, dport, count, payload)
    (40001, 9999, 400, 200),
    (40002, 53, 50, 60),
]
UDP6 = [(40003, 443, 100, 300)]
TCP_PORT = 80
TCP_BYTES = 200000
ICMP4_ECHOES = 20
ICMP6_ECHOES = 10
ICMP_PAYLOAD = 56
# Both captures use it: the kernel's own MLD reports (to ff02::16) come at
# moments neither capture controls, and one between tcpdump's start and the
# agent's would make the two windows differ.
FILTER = "not ip6 multicast"

failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL {msg}", flush=True)


def check(name, got, want):
    if got != want:
        fail(f"{name}: agent {got} != expected {want}")


def sh(*args, **kw):
    return subprocess.run(list(args), check=True, capture_output=True, text=True, **kw)


# ---------------------------------------------------------------- in-namespace roles

def serve(a):
    """Host side: sinks for the UDP ports and one TCP server reading to EOF."""
    socks = []
    for fam, addr, port in [(socket.AF_INET, a.v4, p) for _, p, _, _ in UDP4] + \
                           [(socket.AF_INET6, a.v6, p) for _, p, _, _ in UDP6]:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((addr, port))
        socks.append(s)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.v4, TCP_PORT))
    srv.listen(1)
    print("ready", flush=True)
    conn, _ = srv.accept()
    got = 0
    while True:
        b = conn.recv(65536)
        if not b:
            break
        got += len(b)
    conn.close()
    print(f"tcp {got}", flush=True)
    time.sleep(30)  # killed by the parent


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def send(a):
    """Sender side: the known mix, spread over about two export intervals."""
    for sport, dport, count, size in UDP4:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((a.src4, sport))
        for i in range(count):
            s.sendto(bytes([i & 0xff]) * size, (a.v4, dport))
            if i % 50 == 49:
                time.sleep(0.05)
        s.close()
    for sport, dport, count, size in UDP6:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind((a.src6, sport))
        for i in range(count):
            s.sendto(b"q" * size, (a.v6, dport))
        s.close()
    t = socket.create_connection((a.v4, TCP_PORT), source_address=(a.src4, 0))
    t.sendall(b"w" * TCP_BYTES)
    t.shutdown(socket.SHUT_WR)
    t.recv(1)  # the server's FIN
    t.close()
    ic = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ic.bind((a.src4, 0))
    for seq in range(ICMP4_ECHOES):
        hdr = struct.pack("!BBHHH", 8, 0, 0, 0x4e50, seq)
        payload = bytes(ICMP_PAYLOAD)
        c = checksum(hdr + payload)
        ic.sendto(struct.pack("!BBHHH", 8, 0, c, 0x4e50, seq) + payload, (a.v4, 0))
        time.sleep(0.01)
    i6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    i6.bind((a.src6, 0))
    for seq in range(ICMP6_ECHOES):  # the kernel fills in the ICMPv6 checksum
        i6.sendto(struct.pack("!BBHHH", 128, 0, 0, 0x4e50, seq) + bytes(ICMP_PAYLOAD),
                  (a.v6, 0))
        time.sleep(0.01)
    time.sleep(0.2)  # let the replies come back before the sockets go
    print("sent", flush=True)


# ---------------------------------------------------------------- the test

class Env:
    """Two namespaces and a veth pair between them; removed by close()."""

    def __init__(self):
        n = os.getpid() % 250
        self.tag = f"npfl{os.getpid() % 100000}"
        self.ns_h, self.ns_s = f"{self.tag}h", f"{self.tag}s"
        self.if_h, self.if_s = f"{self.tag}h0", f"{self.tag}s0"
        self.v4, self.src4 = f"10.98.{n}.1", f"10.98.{n}.130"
        self.v6, self.src6 = f"fd98:0:{n:x}::1", f"fd98:0:{n:x}:0:8000::130"
        self.local = [f"10.98.{n}.0/25", f"fd98:0:{n:x}::/65"]
        self.made = []

    def ip(self, *args):
        sh("ip", *args)

    def setup(self):
        for ns in (self.ns_h, self.ns_s):
            self.ip("netns", "add", ns)
            self.made.append(ns)
            # Nothing but our traffic on the link: no DAD, no router solicitations,
            # no automatic link-local address (and so no MLD reports).
            for k, v in [("accept_dad", 0), ("router_solicitations", 0), ("addr_gen_mode", 1)]:
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.default.{k}={v}")
        self.ip("link", "add", self.if_h, "netns", self.ns_h, "type", "veth", "peer", "name",
                self.if_s, "netns", self.ns_s)
        mac = {}
        for ns, ifc, a4, a6 in [(self.ns_h, self.if_h, self.v4, self.v6),
                                (self.ns_s, self.if_s, self.src4, self.src6)]:
            self.ip("-n", ns, "addr", "add", f"{a4}/24", "dev", ifc)
            self.ip("-n", ns, "addr", "add", f"{a6}/64", "dev", ifc, "nodad")
            self.ip("-n", ns, "link", "set", ifc, "up")
            self.ip("-n", ns, "link", "set", "lo", "up")
            mac[ns] = json.loads(sh("ip", "-j", "-n", ns, "link", "show", ifc).stdout)[0]["address"]
        # Static neighbours: no ARP or neighbour discovery to race the capture windows.
        for ns, ifc, peer4, peer6, peer in [
                (self.ns_h, self.if_h, self.src4, self.src6, self.ns_s),
                (self.ns_s, self.if_s, self.v4, self.v6, self.ns_h)]:
            for addr in (peer4, peer6):
                self.ip("-n", ns, "neigh", "replace", addr, "lladdr", mac[peer], "dev", ifc,
                        "nud", "permanent")

    def close(self):
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made = []


def wait_line(proc, pattern, timeout, stream="stderr"):
    """Reads proc's stream until a line matches; returns the lines read."""
    f = getattr(proc, stream)
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = f.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise RuntimeError(f"no {pattern!r} within {timeout}s: {''.join(lines)!r}")


TRUTH_FIELDS = ["frame.len", "ip.src", "ip.dst", "ip.proto", "ipv6.src", "ipv6.dst",
                "ipv6.nxt", "ipv6.hopopts.nxt", "tcp.srcport", "tcp.dstport"]
PROTO = {"1": "icmp", "6": "tcp", "17": "udp", "58": "icmpv6"}


def truth(path, local_nets):
    out = sh("tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
             "-E", "occurrence=f", *sum([["-e", f] for f in TRUTH_FIELDS], [])).stdout
    t = collections.Counter()
    for line in out.splitlines():
        f = dict(zip(TRUTH_FIELDS, line.split("\t")))
        n = int(f["frame.len"])
        t["packets"] += 1
        t["bytes"] += n
        fam = "ipv4" if f.get("ip.src") else "ipv6" if f.get("ipv6.src") else None
        if not fam:
            continue
        src = ipaddress.ip_address(f["ip.src"] or f["ipv6.src"])
        dst = ipaddress.ip_address(f["ip.dst"] or f["ipv6.dst"])
        nxt = f["ip.proto"] or f["ipv6.nxt"]
        if fam == "ipv6" and nxt == "0":  # hop-by-hop options (MLD reports carry one)
            nxt = f["ipv6.hopopts.nxt"]
        proto = PROTO.get(nxt, nxt)
        sl = any(src in net for net in local_nets)
        dl = any(dst in net for net in local_nets)
        d = "internal" if sl and dl else "out" if sl else "in" if dl else "external"
        for k in (fam, f"proto.{proto}", f"dir.{d}"):
            t[k + ".packets"] += 1
            t[k + ".bytes"] += n
        if proto == "tcp" and TCP_PORT in (int(f["tcp.srcport"] or 0), int(f["tcp.dstport"] or 0)):
            t["web.packets"] += 1
            t["web.bytes"] += n
    return t


def sum_lines(lines):
    s = collections.Counter()
    flows = collections.Counter()
    for o in lines:
        s["packets"] += o["packets"]
        s["bytes"] += o["bytes"]
        for fam in ("ipv4", "ipv6"):
            s[fam + ".packets"] += o[fam]["packets"]
            s[fam + ".bytes"] += o[fam]["bytes"]
        for p, c in o["protocols"].items():
            s[f"proto.{p}.packets"] += c["packets"]
            s[f"proto.{p}.bytes"] += c["bytes"]
        for d, c in o["direction"].items():
            s[f"dir.{d}.packets"] += c["packets"]
            s[f"dir.{d}.bytes"] += c["bytes"]
        for a, c in o["applications"].items():
            s[f"{a}.packets"] += c["packets"]
            s[f"{a}.bytes"] += c["bytes"]
        for f in o["top_flows"]:
            k = (f["src"], f["dst"], f["sport"], f["dport"], f["proto"], f["app"], f["direction"])
            flows[k + ("packets",)] += f["packets"]
            flows[k + ("bytes",)] += f["bytes"]
    return s, flows


def run_test(a, env, work):
    conf = os.path.join(work, "live.conf")
    with open(conf, "w") as f:
        f.write(f"[agent]\nid = live-test\n\n[pcap wan]\ninterface = {env.if_h}\n"
                f"export_interval = {INTERVAL_S}s\nlocal_prefixes = {', '.join(env.local)}\n"
                f"top_n = 100\nfilter = {FILTER}\n")
    dump = os.path.join(work, "truth.pcap")
    me = os.path.abspath(__file__)
    nsx = ["ip", "netns", "exec"]
    common = ["--v4", env.v4, "--v6", env.v6, "--src4", env.src4, "--src6", env.src6]
    procs = []
    try:
        server = subprocess.Popen(nsx + [env.ns_h, sys.executable, me, "serve"] + common,
                                  stdout=subprocess.PIPE, text=True)
        procs.append(server)
        wait_line(server, "ready", 10, "stdout")
        tcpdump = subprocess.Popen(nsx + [env.ns_h, "tcpdump", "-n", "-i", env.if_h, "-U",
                                          "-Z", "root", "-w", dump, FILTER],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        procs.append(tcpdump)
        wait_line(tcpdump, "listening on", 10)
        t0 = time.monotonic()
        agent = subprocess.Popen(nsx + [env.ns_h, a.agent, "-c", conf, "--capture-for",
                                        f"{DURATION_S}s"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(agent)
        wait_line(agent, r"flow: capturing pcap=wan", 10)
        time.sleep(0.3)
        sender = sh(*nsx, env.ns_s, sys.executable, me, "send", *common, timeout=30)
        sent_at = time.monotonic() - t0
        out, err = agent.communicate(timeout=DURATION_S + 15)
        if agent.returncode != 0:
            raise RuntimeError(f"agent exit {agent.returncode}: {err.strip()}")
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.communicate(timeout=10)
        server.kill()
        server.wait()
        print(f"traffic sent within {sent_at:.1f}s of the agent's start ({sender.stdout.strip()})")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    print(f"{len(lines)} summaries; agent log: {err.strip().splitlines()[-1]}")
    local_nets = [ipaddress.ip_network(p) for p in env.local]
    t = truth(dump, local_nets)
    s, flows = sum_lines(lines)

    # Exports: every interval (quiet ones too), numbered 0.., each with pcap_stats.
    if len(lines) < DURATION_S // INTERVAL_S - 1:
        fail(f"{len(lines)} summaries in {DURATION_S}s at {INTERVAL_S}s intervals")
    check("interval numbers", [o.get("interval") for o in lines], list(range(len(lines))))
    if sum(1 for o in lines if o["packets"]) < 2:
        fail("traffic did not span two intervals: the hand-off between them is untested")
    for o in lines:
        cap = o.get("capture")
        if not cap or set(cap) != {"received", "kernel_dropped", "if_dropped"}:
            fail(f"interval {o.get('interval')}: capture block {cap}")
    received = sum(o.get("capture", {}).get("received", 0) for o in lines)
    kdrop = sum(o.get("capture", {}).get("kernel_dropped", 0) for o in lines)
    check("capture.kernel_dropped", kdrop, 0)
    check("capture.received", received, s["packets"])
    check("pcap", {o.get("pcap") for o in lines}, {"wan"})

    # The loop kept running: a 50 ms timer ticked throughout.
    m = re.search(r"capture done exports=(\d+) timer_ticks=(\d+) max_timer_gap_ms=(\d+) "
                  r"duration_ms=(\d+)", err)
    if not m:
        fail(f"no loop figures in the agent log: {err!r}")
    else:
        exports, ticks, gap, dur = map(int, m.groups())
        check("exports logged", exports, len(lines))
        if ticks < 0.8 * dur / 50 or gap > 250:
            fail(f"loop held up: {ticks} ticks in {dur} ms, longest gap {gap} ms")
        print(f"loop: {ticks} timer ticks in {dur} ms, longest gap {gap} ms")

    # Totals against tshark on tcpdump's file of the same interface.
    keys = ["packets", "bytes", "ipv4.packets", "ipv4.bytes", "ipv6.packets", "ipv6.bytes",
            "dir.in.packets", "dir.in.bytes", "dir.out.packets", "dir.out.bytes",
            "web.packets", "web.bytes"]
    keys += sorted(k for k in set(t) | {k for k in s if k.startswith("proto.")}
                   if k.startswith("proto."))
    for k in keys:
        if s[k] != t[k]:
            fail(f"{k}: agent {s[k]} != tcpdump/tshark {t[k]}")
    print(f"totals: {s['packets']} packets {s['bytes']} bytes; "
          f"{len(keys)} figures compared with tshark")

    # Against what was sent.
    hostname4 = f"{ipaddress.ip_network(env.v4 + '/24', strict=False).network_address}/24"
    hostname6 = f"{ipaddress.ip_network(env.v6 + '/64', strict=False).network_address}/64"
    apps = {9999: "other", 53: "dns", 443: "quic"}
    for fam, src, dst, rows in [(4, env.src4, hostname4, UDP4), (6, env.src6, hostname6, UDP6)]:
        for sport, dport, count, size in rows:
            wire = 14 + (20 if fam == 4 else 40) + 8 + size
            k = (src, dst, sport, dport, "udp", apps[dport], "in")
            check(f"flow udp {sport}->{dport}", (flows[k + ("packets",)], flows[k + ("bytes",)]),
                  (count, count * wire))
            if apps[dport] != "other":
                check(f"applications.{apps[dport]}",
                      (s[f"{apps[dport]}.packets"], s[f"{apps[dport]}.bytes"]),
                      (count, count * wire))
    for fam, proto, n in [(4, "icmp", ICMP4_ECHOES), (6, "icmpv6", ICMP6_ECHOES)]:
        wire = 14 + (20 if fam == 4 else 40) + 8 + ICMP_PAYLOAD
        got = tuple(sum(v for kk, v in flows.items()
                        if kk[4] == proto and kk[6] == d and kk[7] == unit)
                    for d in ("in", "out") for unit in ("packets", "bytes"))
        check(f"{proto} echoes in, replies out", got, (n, n * wire, n, n * wire))
        check(f"protocols.{proto}", (s[f"proto.{proto}.packets"], s[f"proto.{proto}.bytes"]),
              (2 * n, 2 * n * wire))
    tcp_in = sum(v for kk, v in flows.items()
                 if kk[4] == "tcp" and kk[3] == TCP_PORT and kk[6] == "in" and kk[7] == "bytes")
    if tcp_in < TCP_BYTES:
        fail(f"tcp to port {TCP_PORT}: {tcp_in} wire bytes in < {TCP_BYTES} payload bytes sent")

    # Same code path offline: every flow of the live run, summed over its
    # intervals, equals the flow of --pcap-file on tcpdump's file.
    r = sh(a.agent, "-c", conf, "--pcap-file", dump)
    off = json.loads(r.stdout)
    _, off_flows = sum_lines([off])
    if off_flows != flows:
        diff = {k: (flows.get(k), off_flows.get(k)) for k in set(flows) | set(off_flows)
                if flows.get(k) != off_flows.get(k)}
        fail(f"live flows differ from the offline run of the same file: {diff}")
    check("offline packets", off["packets"], s["packets"])

    # Privacy: the local host's full address is never printed.
    for full in (env.v4, env.v6):
        if re.search(re.escape(full) + r"(?![0-9/])", out):
            fail(f"local address {full} appears in full")
    print(f"{len(flows) // 2} flows equal the offline run")


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("serve", "send"):
        ap = argparse.ArgumentParser()
        ap.add_argument("role")
        for k in ("--v4", "--v6", "--src4", "--src6"):
            ap.add_argument(k, required=True)
        a = ap.parse_args()
        serve(a) if a.role == "serve" else send(a)
        return 0
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("skipped: needs root for ip netns", file=sys.stderr)
        return SKIP
    for tool in ("ip", "tcpdump", "tshark"):
        if not shutil.which(tool):
            print(f"{tool} not installed: run packaging/deps.sh", file=sys.stderr)
            return 1
    os.makedirs(a.work, exist_ok=True)
    work = tempfile.mkdtemp(prefix="live-", dir=a.work)
    env = Env()
    old = {s: signal.signal(s, lambda *_: sys.exit(1)) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        env.setup()
        run_test(a, env, work)
    except (RuntimeError, subprocess.SubprocessError, json.JSONDecodeError) as e:
        fail(str(e))
    finally:
        env.close()
        for s, h in old.items():
            signal.signal(s, h)
    if failures:
        print(f"{len(failures)} failure(s); files in {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("live capture checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
