#!/usr/bin/env python3
"""Runs `netpulse-agent --pcap-file` on every capture in the test data folder
and compares its summary with tshark's ground truth on the same file:
packets, wire bytes, IPv4/IPv6 packets, packets and bytes per IP protocol and
per outer VLAN. Plus checks on particular captures (QinQ, SLL, snaplen-cut
QUIC, fuzzed frames, fragments), privacy of local addresses in every output,
snaplen emulation, sampling, and an unreadable file. Exit 1 on any failure."""
import argparse
import collections
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import time

LOCAL = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10"]
LOCAL_NETS = [ipaddress.ip_network(p) for p in LOCAL]
IPV6_EXT = {"0", "43", "44", "60", "51", "135", "139", "140", "253", "254"}
PROTO_NAMES = {"1": "icmp", "2": "igmp", "4": "ipip", "6": "tcp", "17": "udp", "41": "ipv6",
               "47": "gre", "50": "esp", "51": "ah", "58": "icmpv6", "89": "ospf",
               "103": "pim", "112": "vrrp", "132": "sctp"}
FIELDS = ["frame.len", "vlan.id", "ip.proto", "ipv6.nxt", "ipv6.hopopts.nxt",
          "ipv6.routing.nxt", "ipv6.fraghdr.nxt", "ipv6.dstopts.nxt", "frame.protocols",
          "ip.frag_offset", "ipv6.fraghdr.offset"]

failures = []


def fail(name, msg):
    failures.append(f"{name}: {msg}")
    print(f"FAIL {name}: {msg}", flush=True)


def first(v):
    return v.split(",")[0] if v else ""


def tshark_truth(path):
    out = subprocess.run(["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
                          "-E", "occurrence=a"] + sum([["-e", f] for f in FIELDS], []),
                         check=True, capture_output=True, text=True).stdout
    t = {"packets": 0, "bytes": 0, "ipv4": [0, 0], "ipv6": [0, 0],
         "proto": collections.defaultdict(lambda: [0, 0]),
         "vlan": collections.defaultdict(lambda: [0, 0]), "later_frags": 0}
    for line in out.splitlines():
        f = dict(zip(FIELDS, line.split("\t")))
        n = int(f["frame.len"])
        t["packets"] += 1
        t["bytes"] += n
        vlan = first(f.get("vlan.id", "")) or "untagged"
        t["vlan"][vlan][0] += 1
        t["vlan"][vlan][1] += n
        layers = f.get("frame.protocols", "").split(":")
        v4 = "ip" in layers
        v6 = "ipv6" in layers
        if v4 and v6:
            v4 = layers.index("ip") < layers.index("ipv6")
            v6 = not v4
        proto = None
        if v4 and f.get("ip.proto"):
            t["ipv4"][0] += 1
            t["ipv4"][1] += n
            proto = first(f["ip.proto"])
            if first(f.get("ip.frag_offset", "")) not in ("", "0"):
                t["later_frags"] += 1
        elif v6 and f.get("ipv6.nxt"):
            t["ipv6"][0] += 1
            t["ipv6"][1] += n
            proto = first(f["ipv6.nxt"])
            if proto in IPV6_EXT:
                for col in ("ipv6.hopopts.nxt", "ipv6.routing.nxt", "ipv6.fraghdr.nxt",
                            "ipv6.dstopts.nxt"):
                    v = first(f.get(col, ""))
                    if v and v not in IPV6_EXT:
                        proto = v
                        break
            if first(f.get("ipv6.fraghdr.offset", "")) not in ("", "0"):
                t["later_frags"] += 1
        if proto is not None:
            name = PROTO_NAMES.get(proto, proto)
            t["proto"][name][0] += 1
            t["proto"][name][1] += n
    return t


def run_agent(agent, conf, pcap, expect_rc=0):
    r = subprocess.run([agent, "-c", conf, "--pcap-file", pcap], capture_output=True, text=True)
    if r.returncode != expect_rc:
        raise RuntimeError(f"exit {r.returncode} (wanted {expect_rc}): {r.stderr.strip()}")
    return json.loads(r.stdout) if expect_rc == 0 else r


def write_conf(work, name, extra=""):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write("[agent]\nid = test-site\n\n[pcap wan]\ninterface = eth0\n"
                f"local_prefixes = {', '.join(LOCAL)}\n{extra}")
    return path


ADDR_RE = re.compile(r"^([0-9a-fA-F:.]+)(?:/(\d+))?$")


def check_privacy(name, out):
    """No full local address anywhere in the report: local ones appear only as
    their /24 or /64 network."""
    seen = 0
    rows = out.get("top_flows", []) + out.get("top_talkers", [])
    for row in rows:
        for key in ("src", "dst", "host"):
            v = row.get(key)
            if v is None:
                continue
            m = ADDR_RE.match(v)
            if not m:
                fail(name, f"unparsable address {v!r}")
                continue
            addr = ipaddress.ip_address(m.group(1))
            local = any(addr in net for net in LOCAL_NETS)
            if not local:
                if m.group(2):
                    fail(name, f"outside address {v!r} shortened")
                continue
            seen += 1
            want = 24 if addr.version == 4 else 64
            if m.group(2) != str(want) or ipaddress.ip_network(v, strict=False).network_address != addr:
                fail(name, f"local address {v!r} not reported as its /{want}")
    return seen


def compare(name, out, t):
    checks = [("packets", out["packets"], t["packets"]), ("bytes", out["bytes"], t["bytes"]),
              ("ipv4.packets", out["ipv4"]["packets"], t["ipv4"][0]),
              ("ipv4.bytes", out["ipv4"]["bytes"], t["ipv4"][1]),
              ("ipv6.packets", out["ipv6"]["packets"], t["ipv6"][0]),
              ("ipv6.bytes", out["ipv6"]["bytes"], t["ipv6"][1])]
    protos = set(t["proto"]) | set(out["protocols"])
    for p in sorted(protos):
        mine = out["protocols"].get(p, {"packets": 0, "bytes": 0})
        checks.append((f"protocols.{p}", (mine["packets"], mine["bytes"]), tuple(t["proto"][p])))
    for v in sorted(set(t["vlan"]) | set(out["vlans"])):
        mine = out["vlans"].get(v, {"packets": 0, "bytes": 0})
        checks.append((f"vlans.{v}", (mine["packets"], mine["bytes"]), tuple(t["vlan"][v])))
    bad = [(k, a, b) for k, a, b in checks if a != b]
    for k, a, b in bad:
        fail(name, f"{k}: agent {a} != tshark {b}")
    return len(checks), len(bad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--agent", required=True)
    ap.add_argument("--pcap-dir", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    if not shutil.which("tshark"):
        print("tshark not installed: run packaging/deps.sh", file=sys.stderr)
        return 1
    os.makedirs(a.work, exist_ok=True)
    conf = write_conf(a.work, "agent.conf")
    captures = sorted(f for f in os.listdir(a.pcap_dir) if f.endswith((".pcap", ".pcapng")))
    if not captures:
        print(f"no captures in {a.pcap_dir}", file=sys.stderr)
        return 1
    outs = {}
    for cap in captures:
        path = os.path.join(a.pcap_dir, cap)
        t0 = time.monotonic()
        try:
            out = run_agent(a.agent, conf, path)
        except (RuntimeError, json.JSONDecodeError) as e:
            fail(cap, str(e))
            continue
        outs[cap] = out
        t = tshark_truth(path)
        n, bad = compare(cap, out, t)
        nlocal = check_privacy(cap, out)
        later = out["fragments"]["matched"] + out["fragments"]["unmatched"]
        # A malformed fragment is a drop, not a fragment: only clean captures must match.
        if later != t["later_frags"] and (out["drops"]["packets"] == 0 or later > t["later_frags"]):
            fail(cap, f"later fragments: agent {out['fragments']} tshark {t['later_frags']}")
        print(f"{'ok  ' if not bad else 'FAIL'} {cap}: {out['packets']} packets "
              f"{out['bytes']} bytes, {n - bad}/{n} figures equal tshark, drops "
              f"{out['drops']['packets']}, {nlocal} local addresses masked "
              f"({time.monotonic() - t0:.2f}s)", flush=True)

    # Particular captures.
    z = outs.get("zoom.pcap")
    if z and z["vlans"].get("3394", {}).get("packets") != 81:
        fail("zoom.pcap", f"QinQ outer VLAN 3394: {z['vlans'].get('3394')} (want 81 frames)")
    k = outs.get("KakaoTalk_talk.pcap")
    if k and (k.get("link_type") != "LINUX_SLL" or k["drops"]["packets"] != 0
              or k["ipv4"]["packets"] == 0):
        fail("KakaoTalk_talk.pcap", f"SLL: link {k.get('link_type')} drops {k['drops']}")
    q = outs.get("quic_handshake_truncated.pcap")
    if q:
        if q["applications"]["quic"]["packets"] != 18 or q["drops"]["packets"] != 0:
            fail("quic_handshake_truncated.pcap",
                 f"quic {q['applications']['quic']} drops {q['drops']}")
        if q["applications"]["quic"]["bytes"] != q["bytes"]:
            fail("quic_handshake_truncated.pcap", "QUIC bytes are not the wire bytes")
    fz = outs.get("fuzz-2006-06-26-2594.pcap")
    if fz and fz["drops"]["packets"] == 0:
        fail("fuzz-2006-06-26-2594.pcap", "no malformed frames counted")
    d = outs.get("dns_fragmented.pcap")
    if d and (d["fragments"]["matched"] == 0 or d["fragments"]["unmatched"] != 0):
        fail("dns_fragmented.pcap", f"fragments not attributed: {d['fragments']}")

    # Snaplen 64: bytes stay wire lengths.
    short = write_conf(a.work, "snap.conf", "snaplen = 64\n")
    path = os.path.join(a.pcap_dir, "test.pcap")
    if os.path.exists(path):
        s = run_agent(a.agent, short, path)
        full = outs.get("test.pcap")
        if full and (s["bytes"] != full["bytes"] or s["ipv4"] != full["ipv4"]):
            fail("snaplen=64", f"bytes {s['bytes']} ipv4 {s['ipv4']} vs {full['ipv4']}")

    # Sampling 1-in-10: packet estimate within 25 % (about 3.5 standard errors here).
    path = os.path.join(a.pcap_dir, "netflix.pcap")
    if os.path.exists(path):
        s = run_agent(a.agent, write_conf(a.work, "sample.conf", "sample = 10\n"), path)
        full = outs.get("netflix.pcap")
        est, real = s["ipv4"]["packets"], full["ipv4"]["packets"] if full else 0
        if s["packets"] != (full or {}).get("packets") or not (0.75 * real <= est <= 1.25 * real):
            fail("sample=10", f"estimate {est} vs {real}, total {s['packets']}")

    # Hash privacy: no local prefix either, only h: names.
    path = os.path.join(a.pcap_dir, "zoom.pcap")
    if os.path.exists(path):
        h = run_agent(a.agent, write_conf(a.work, "hash.conf",
                                          "privacy = hash\nprivacy_secret = 0123456789abcdef-site\n"),
                      path)
        text = json.dumps(h)
        if "192.168.1." in text or '"h:' not in text:
            fail("privacy=hash", "local address or no hash in output")

    # Unreadable file: non-zero exit and a message naming it.
    try:
        r = run_agent(a.agent, conf, os.path.join(a.work, "missing.pcap"), expect_rc=1)
        if "missing.pcap" not in r.stderr:
            fail("unreadable", f"message: {r.stderr!r}")
    except RuntimeError as e:
        fail("unreadable", str(e))

    # Cut mid-record: the frames before the cut, and libpcap's error (met by
    # the reader thread) in the summary and the log; exit 0.
    full = outs.get("netflix.pcap")
    if full:
        cut = os.path.join(a.work, "cut.pcap")
        with open(os.path.join(a.pcap_dir, "netflix.pcap"), "rb") as f_in, open(cut, "wb") as f_out:
            f_out.write(f_in.read(300000))
        r = subprocess.run([a.agent, "-c", conf, "--pcap-file", cut], capture_output=True, text=True)
        c = json.loads(r.stdout) if r.returncode == 0 else {}
        if (not 0 < c.get("packets", 0) < full["packets"]
                or "truncated" not in c.get("read_error", "") or "read error" not in r.stderr):
            fail("cut.pcap", f"exit {r.returncode} packets {c.get('packets')} "
                 f"read_error {c.get('read_error')!r}")

    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all flow pcap checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
