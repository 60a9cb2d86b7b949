#!/usr/bin/env python3
"""netpulse-agent --once against Debian's snmpd started by the test on a
loopback port: v2c and v3 authPriv (SHA-256/AES-128) read counters of `lo`
that match /proc/net/dev read just before and just after the poll; wrong
community, wrong v3 password, unknown user, a port that never answers and a
port that answers garbage each give their documented error while the good
targets' results arrive on time.

usage: test_snmpd.py AGENT"""
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

TIMEOUT_MS = 700
RETRIES = 1


def lo_bytes():
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                v = rest.split()
                return int(v[0]), int(v[8])
    raise RuntimeError("no lo in /proc/net/dev")


def silent_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def garbage_responder(stop):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)

    def run():
        while not stop.is_set():
            try:
                data, peer = s.recvfrom(65535)
            except socket.timeout:
                continue
            # A BER SEQUENCE header with a length past the end, then noise.
            s.sendto(b"\x30\x82\xff\xff" + os.urandom(40), peer)
            s.sendto(b"not snmp at all", peer)

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return s, th


def main():
    agent = sys.argv[1]
    fails = helpers.Failures("test_snmpd")
    work = helpers.mkdtemp("np-snmpd-")
    port = helpers.free_udp_port()
    conf = os.path.join(work, "snmpd.conf")
    with open(conf, "w") as f:
        f.write("rocommunity public 127.0.0.1\n"
                "createUser npuser SHA-256 authpass-np1 AES-128 privpass-np1\n"
                "createUser npother SHA-256 authpass-np2 AES-128 privpass-np2\n"
                "rouser npuser priv\nrouser npother priv\n")
    env = dict(os.environ, SNMP_PERSISTENT_DIR=work, MIBS="")
    snmpd = subprocess.Popen(["snmpd", "-f", "-Lo", "-C", "-c", conf, "-p",
                              os.path.join(work, "pid"), f"udp:127.0.0.1:{port}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    stop = threading.Event()
    silent = silent_socket()
    garbage, gth = garbage_responder(stop)
    try:
        fails.check(helpers.wait_snmp(port, "public", 20), "snmpd answers")
        common = f"host = 127.0.0.1\ntimeout = {TIMEOUT_MS}ms\nretries = {RETRIES}\n"
        v3 = "version = 3\nauth_protocol = SHA-256\npriv_protocol = AES-128\n"
        cfg = (
            f"[snmp v2c]\n{common}port = {port}\ncommunity = public\n"
            "include_loopback = yes\ninterfaces = lo\n"
            f"[snmp v3]\n{common}port = {port}\n{v3}user = npuser\n"
            "auth_password = authpass-np1\npriv_password = privpass-np1\n"
            "include_loopback = yes\ninterfaces = lo\n"
            f"[snmp badcomm]\n{common}port = {port}\ncommunity = wrong\n"
            f"[snmp badpass]\n{common}port = {port}\n{v3}user = npother\n"
            "auth_password = wrong-password\npriv_password = privpass-np2\n"
            f"[snmp nouser]\n{common}port = {port}\n{v3}user = nosuchuser\n"
            "auth_password = authpass-np1\npriv_password = privpass-np1\n"
            f"[snmp dead]\n{common}port = {silent.getsockname()[1]}\ncommunity = public\n"
            f"[snmp garbage]\n{common}port = {garbage.getsockname()[1]}\ncommunity = public\n"
            f"[snmp deadv3]\n{common}port = {silent.getsockname()[1]}\n{v3}user = npuser\n"
            "auth_password = authpass-np1\npriv_password = privpass-np1\n"
        )
        # snmpd caches the interface table for 3 s (if-mib data access) and
        # may reload that cache on its own at any moment: what it answers can
        # be up to 3 s old. So the lower bound is /proc/net/dev read more than
        # 3 s before the poll, the upper bound right after it.
        before = lo_bytes()
        time.sleep(3.5)
        t_start_wall = time.time()
        rc, lines, err, elapsed = helpers.run_once(agent, cfg, work)
        after = lo_bytes()
        fails.eq(rc, 1, "exit status with failing targets")
        by_target = {l["target"]: l for l in lines}
        for name in ("v2c", "v3"):
            l = by_target.get(name)
            fails.check(l is not None, f"{name}: lo reported (stderr: {err.strip()})")
            if not l:
                continue
            fails.eq(l["ifName"], "lo", f"{name} ifName")
            fails.eq(l["counterBits"], 64, f"{name} counter width")
            # lo's counters moved only by the traffic between the two reads.
            fails.check(before[0] <= l["inOctets"] <= after[0],
                        f"{name} inOctets {l['inOctets']} within {before[0]}..{after[0]}")
            fails.check(before[1] <= l["outOctets"] <= after[1],
                        f"{name} outOctets {l['outOctets']} within {before[1]}..{after[1]}")
            fails.check(l["sysUpTime"] > 0, f"{name} sysUpTime")
            # Answered on time: well before the failing targets gave up.
            t = time.mktime(time.strptime(l["time"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
            fails.check(t - t_start_wall < 1.5, f"{name} answered {t - t_start_wall:.2f} s in")
        fails.eq(sorted(by_target), ["v2c", "v3"], "targets with output")
        want = {
            "badcomm": "timeout", "dead": "timeout", "garbage": "timeout",
            "deadv3": "timeout", "badpass": "authentication-failure",
            "nouser": "unknown-user",
        }
        for name, reason in want.items():
            fails.check(f"target={name} " in err and f"err={reason} " in
                        next((l for l in err.splitlines() if f"target={name} " in l), ""),
                        f"{name}: err={reason} in stderr:\n{err}")
        # All targets ran at once: the whole run is about one target's timeout budget.
        budget = TIMEOUT_MS / 1000 * (RETRIES + 1)
        fails.check(elapsed < budget + 1.5, f"run took {elapsed:.2f} s (budget {budget:.1f} s)")
        print(f"--once: {elapsed:.2f} s, stderr:\n{err}")
    finally:
        stop.set()
        snmpd.terminate()
        try:
            snmpd.wait(10)
        except subprocess.TimeoutExpired:
            snmpd.kill()
        silent.close()
        gth.join(2)
        garbage.close()
        helpers.rmtree(work)
    return fails.done()


if __name__ == "__main__":
    sys.exit(main())
