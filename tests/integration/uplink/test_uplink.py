#!/usr/bin/env python3
"""Agent -> collector end to end: the real netpulse-agent polling a real snmpd
on loopback and uploading to the real netpulse-collector (TLS, self-signed
certificate made here, agent enrolled with the `netpulse` CLI).

  test_uplink.py AGENT COLLECTOR NETPULSE SCENARIO
    basic     batches arrive in order, acks delete spool segments, values in
              the RRDs, SIGTERM flushes and exits 0, restart continues the seqs
    outage    collector SIGKILLed, back 30 s later: the agent spools, then drains oldest
              first; every batch applied once, no hole in the RRD
    agentkill agent SIGKILLed mid-backlog and restarted: nothing lost
    overflow  tiny spool_max with the collector down: oldest dropped, the
              SPOOL_OVERFLOW event reaches the collector with its range, the
              spool stays within its bound
"""
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "snmp"))
import helpers  # noqa: E402  (start_snmpd, Failures, mkdtemp)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon_proc import Proc  # noqa: E402

AGENT, COLLECTOR, CLI, SCENARIO = sys.argv[1:5]
F = helpers.Failures("uplink." + SCENARIO)


def free_tcp_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port



class Setup:
    def __init__(self, work):
        self.work = work
        self.collector = None
        self.agent = None
        self.snmpd = None
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", f"{work}/key.pem", "-out", f"{work}/cert.pem"],
                       check=True, capture_output=True)
        self.cport = free_tcp_port()
        self.data = f"{work}/data"
        os.makedirs(self.data)
        self.cconf = f"{work}/collector.conf"
        with open(self.cconf, "w") as f:
            f.write(f"[collector]\nlisten = 127.0.0.1:{self.cport}\n"
                    f"tls_cert = {work}/cert.pem\ntls_key = {work}/key.pem\n"
                    f"data_dir = {self.data}\n"
                    "[dashboard]\npublic = yes\nmetrics_public = yes\n")
        r = subprocess.run([CLI, "-c", self.cconf, "agent", "enrol", "school-1"],
                           capture_output=True, text=True, check=True)
        self.token = r.stdout.strip().splitlines()[0]
        self.snmpd, self.sport = helpers.start_snmpd(
            work, "rocommunity public 127.0.0.1\n")
        self.spool = f"{work}/spool"

    def write_agent_conf(self, devices=1, **extra):
        opts = {"batch_interval": "1s", "drain_rate": "20", "retry_max": "2s",
                "timeout": "5s", "log_level": "debug"}
        opts.update(extra)
        with open(f"{self.work}/agent.conf", "w") as f:
            f.write("[agent]\nid = school-1\n"
                    f"collector = https://127.0.0.1:{self.cport}\n"
                    f"token = {self.token}\nca_file = {self.work}/cert.pem\n"
                    f"spool_dir = {self.spool}\n")
            for k, v in opts.items():
                f.write(f"{k} = {v}\n")
            for d in range(devices):
                name = "edge" if d == 0 else f"edge{d + 1}"
                f.write(f"\n[snmp {name}]\nhost = 127.0.0.1\nport = {self.sport}\n"
                        "version = 2c\ncommunity = public\ninterval = 1s\ntimeout = 300ms\n"
                        "retries = 1\ninterfaces = lo\ninclude_loopback = yes\n")

    def start_collector(self):
        argv = [COLLECTOR, "-c", self.cconf, "--foreground"]
        # Tests run as root in CI; newer collectors refuse that unless told.
        h = subprocess.run([COLLECTOR, "--help"], capture_output=True, text=True)
        if "--allow-root" in h.stdout + h.stderr:
            argv.append("--allow-root")
        self.collector = Proc(argv, "collector")
        if self.collector.wait_line(r"started port=", 20) is None:
            raise RuntimeError("collector did not start:\n" + self.collector.tail())

    def start_agent(self):
        self.agent = Proc([AGENT, "-c", f"{self.work}/agent.conf", "--foreground"], "agent")
        return self.agent

    def applied_seq(self):
        try:
            db = sqlite3.connect(f"file:{self.data}/state.db?mode=ro", uri=True, timeout=5)
            row = db.execute("SELECT seq FROM applied_batches WHERE agent_id = 'school-1'")\
                .fetchone()
            db.close()
            return row[0] if row else 0
        except sqlite3.Error:
            return -1

    def events(self, type_):
        db = sqlite3.connect(f"file:{self.data}/state.db?mode=ro", uri=True, timeout=5)
        rows = db.execute("SELECT start_ms, detail, batch_seq FROM events WHERE "
                          "site_id = 'school-1' AND type = ?", (type_,)).fetchall()
        db.close()
        return rows

    def wait_applied(self, seq, timeout_s=30):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.applied_seq() >= seq:
                return True
            time.sleep(0.2)
        return False

    def segments(self):
        if not os.path.isdir(self.spool):
            return []
        return sorted(n for n in os.listdir(self.spool) if n.startswith("seg-"))

    def spool_bytes(self):
        return sum(os.path.getsize(os.path.join(self.spool, n)) for n in self.segments())

    def rrd_rows(self, start, end):
        path = f"{self.data}/rrd/school-1/if+edge+lo.rrd"
        r = subprocess.run(["rrdtool", "fetch", path, "AVERAGE", "-r", "60", "-s", str(start),
                            "-e", str(end)], capture_output=True, text=True)
        rows = []
        for line in r.stdout.splitlines():
            m = re.match(r"\s*(\d+):\s+(\S+)\s+(\S+)", line)
            if m:
                rows.append((int(m.group(1)), m.group(2), m.group(3)))
        return rows

    def rrd_last(self):
        """(time, in_bps, out_bps) of the last update of lo's RRD, or None."""
        path = f"{self.data}/rrd/school-1/if+edge+lo.rrd"
        r = subprocess.run(["rrdtool", "lastupdate", path], capture_output=True, text=True)
        m = re.search(r"^(\d+):\s+(\S+)\s+(\S+)", r.stdout, re.M)
        return (int(m.group(1)), m.group(2), m.group(3)) if m else None

    def metric(self, name):
        import ssl
        import urllib.request
        import urllib.error
        ctx = ssl.create_default_context(cafile=f"{self.work}/cert.pem")
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.cport}/metrics", context=ctx,
                                        timeout=10) as r:
                text = r.read().decode()
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                return "auth"  # newer collectors put /metrics behind a login
            raise
        if True:
            for line in text.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == name:
                    return float(parts[1])
        return None

    def close(self):
        for p in (self.agent, self.collector):
            if p:
                p.stop(signal.SIGKILL)
        helpers.stop_proc(self.snmpd)


def sent_seqs(agent):
    """seqs acknowledged by the collector, in the order the agent sent them."""
    return [int(m.group(1)) for m in agent.grep(r"uplink: sent seq=(\d+) ack=")]


def sent_seqs_until(agent, line_index):
    rx = re.compile(r"uplink: sent seq=(\d+) ack=")
    with agent.cond:
        lines = agent.lines[:line_index]
    return [int(m.group(1)) for m in (rx.search(l) for l in lines) if m]


def closed_seqs(agent):
    return [int(m.group(1)) for m in agent.grep(r"uplink: batch closed seq=(\d+)")]


def check_in_order(seqs, what):
    F.check(seqs == sorted(seqs) and len(seqs) == len(set(seqs)),
            f"{what}: batches not sent oldest first exactly once: {seqs}")


def scenario_basic(s):
    s.write_agent_conf()
    s.start_collector()
    a = s.start_agent()
    F.check(a.wait_line(r"uplink: sent seq=6 ", 30) is not None,
            "six batches not acknowledged:\n" + a.tail())
    F.check(s.wait_applied(6), f"collector applied seq {s.applied_seq()}, expected >= 6")
    check_in_order(sent_seqs(a), "live")
    # SIGHUP: a bad file is refused, a good one reloaded; uploads go on.
    conf = f"{s.work}/agent.conf"
    good = open(conf).read()
    with open(conf, "a") as f:
        f.write("bogus_key = 1\n")
    mark = len(a.lines)
    a.p.send_signal(signal.SIGHUP)
    F.check(a.wait_line(r"agent: reload refused", 10, mark) is not None, "bad reload not refused")
    with open(conf, "w") as f:
        f.write(good)
    a.p.send_signal(signal.SIGHUP)
    F.check(a.wait_line(r"agent: configuration reloaded", 10, mark) is not None, "no reload")
    n = max(sent_seqs(a))
    F.check(a.wait_line(rf"uplink: sent seq={n + 2} ", 10) is not None, "no upload after reload")
    # Acknowledged segments are deleted: at most the not yet acknowledged tail stays.
    time.sleep(1.5)
    segs = s.segments()
    F.check(len(segs) <= 3, f"acknowledged segments kept: {segs}")
    F.check(a.stop() == 0, "agent: SIGTERM did not exit 0:\n" + a.tail())
    last = max(closed_seqs(a))
    # Restart: numbering continues after the last spooled seq.
    a2 = s.start_agent()
    i = a2.wait_line(r"uplink: batch closed seq=(\d+)", 15)
    F.check(i is not None, "restarted agent closed no batch")
    if i is not None:
        first = int(re.search(r"seq=(\d+)", a2.lines[i]).group(1))
        F.eq(first, last + 1, "seq after restart")
    F.check(a2.wait_line(rf"uplink: sent seq={last + 3} ", 20) is not None,
            "restarted agent does not upload")
    F.check(a2.stop() == 0, "agent: second SIGTERM did not exit 0")
    F.check(s.wait_applied(last + 3), "collector did not apply the restarted agent's batches")
    # Values in the RRD: in/out bits per second of lo, updated just now.
    last = s.rrd_last()
    F.check(last is not None and abs(last[0] - time.time()) < 10 and "nan" not in last[1],
            f"RRD last update: {last}")
    F.check(s.events("agent_start"), "no agent_start event at the collector")


def scenario_outage(s):
    s.write_agent_conf()
    s.start_collector()
    a = s.start_agent()
    F.check(a.wait_line(r"uplink: sent seq=5 ", 30) is not None, "no upload:\n" + a.tail())
    # SIGKILL: whatever it acknowledged must come back from its journal.
    F.check(s.collector.stop(signal.SIGKILL) == -signal.SIGKILL, "collector: not killed")
    time.sleep(30)
    backlog = max(int(m.group(1)) for m in a.grep(r"uplink: spooled seq=\d+ bytes=\d+ backlog=(\d+)"))
    F.check(backlog >= 20, f"agent did not spool during the outage: backlog {backlog}")
    mark = len(a.lines)
    s.start_collector()
    t_back = time.time()
    last_closed = max(closed_seqs(a))
    F.check(a.wait_line(rf"uplink: sent seq={last_closed} ", 30, mark) is not None,
            "backlog not drained:\n" + a.tail())
    F.check(a.wait_line(r"collector reachable", 1, mark) is not None, "no recovery notice")
    drained = time.time() - t_back
    F.check(s.wait_applied(last_closed), f"collector applied {s.applied_seq()} < {last_closed}")
    F.check(a.stop() == 0, "agent: SIGTERM did not exit 0")
    seqs = sent_seqs(a)
    check_in_order(seqs, "outage")
    F.eq(sorted(set(seqs)), list(range(1, max(seqs) + 1)), "every seq acknowledged")
    # Every batch the restarted collector took was stored with all its samples:
    # its sample count equals the samples of the batches first acknowledged
    # after the restart (the agent logs what each batch holds).
    per_batch = {int(m.group(1)): int(m.group(2))
                 for m in a.grep(r"uplink: batch closed seq=(\d+) items=\d+ samples=(\d+)")}
    before = set(sent_seqs_until(a, mark))
    # The agent may stop with a batch in flight that the collector took (and
    # counted) but whose answer it never logged: the batches taken are the
    # seqs after `before` up to the collector's applied seq, once it settles.
    last = s.applied_seq()
    for _ in range(40):
        time.sleep(0.25)
        now = s.applied_seq()
        if now == last:
            break
        last = now
    F.check(last >= max(seqs), f"collector applied {last} < the agent's last ack {max(seqs)}")
    after = list(range(max(before) + 1, last + 1))
    expect = sum(per_batch.get(q, 0) for q in after)
    got = s.metric("netpulse_ingest_samples_total")
    F.eq(got, float(expect), f"samples stored by the restarted collector for {after[:3]}..")
    F.eq(s.metric("netpulse_ingest_batches_total"), float(len(after)), "batches stored")
    last = s.rrd_last()
    F.check(last is not None and last[0] >= int(t_back) - 2, f"RRD not updated after: {last}")
    print(f"outage: backlog of {backlog} batches, drained in {drained:.1f}s, "
          f"{len(seqs)} batches acknowledged")


def scenario_agentkill(s):
    s.write_agent_conf(drain_rate="2")
    s.start_collector()
    a = s.start_agent()
    F.check(a.wait_line(r"uplink: sent seq=3 ", 30) is not None, "no upload:\n" + a.tail())
    # SIGKILL: whatever it acknowledged must come back from its journal.
    F.check(s.collector.stop(signal.SIGKILL) == -signal.SIGKILL, "collector: not killed")
    time.sleep(12)
    s.start_collector()
    # Mid-backlog (2 per second): kill the agent after a few were acknowledged.
    mark = len(a.lines)
    ok = a.wait_line(r"uplink: sent seq=", 20, mark) is not None
    F.check(ok, "backlog did not start draining:\n" + a.tail())
    time.sleep(1.2)
    a.stop(signal.SIGKILL)
    closed = closed_seqs(a)
    acked_before = max(sent_seqs(a))
    last = max(closed)
    F.check(acked_before < last, f"backlog already drained before the kill ({acked_before})")
    a2 = s.start_agent()
    F.check(a2.wait_line(rf"uplink: sent seq={last + 2} ", 40) is not None,
            "restarted agent did not drain:\n" + a2.tail())
    F.check(a2.stop() == 0, "agent: SIGTERM did not exit 0")
    seqs = sent_seqs(a) + sent_seqs(a2)
    # At most the batch in flight at the kill is sent twice (and stored once).
    resent = len(seqs) - len(set(seqs))
    F.check(resent <= 1, f"{resent} batches sent twice")
    F.eq(sorted(set(seqs)), list(range(1, max(seqs) + 1)), "every seq acknowledged")
    F.check(s.wait_applied(max(seqs)), "collector did not apply everything")
    dup = [int(m.group(1)) for m in s.collector.grep(r"ingest: rejected status=(\d+)")]
    F.eq(dup, [], "collector rejects")


def scenario_overflow(s):
    # Collector down from the start; 4 KiB of spool holds about ten batches of
    # four samples (four devices).
    s.write_agent_conf(devices=4, spool_max="4KiB")
    a = s.start_agent()
    worst = 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        worst = max(worst, s.spool_bytes())
        time.sleep(0.1)
    F.check(worst <= 4096, f"spool grew to {worst} bytes, bound 4096")
    F.check(a.wait_line(r"uplink: spool full, oldest data dropped", 1) is not None,
            "no drop logged:\n" + a.tail())
    s.start_collector()
    last = max(closed_seqs(a))
    F.check(a.wait_line(rf"uplink: sent seq={last + 2} ", 30) is not None,
            "no upload after the collector came up:\n" + a.tail())
    F.check(s.wait_applied(last + 2), "collector did not apply")
    ev = s.events("spool_overflow")
    F.check(ev, "no spool_overflow event at the collector")
    for start_ms, detail, _seq in ev:
        m = re.search(r"seq (\d+)\.\.(\d+)", detail)
        F.check(m and int(m.group(1)) >= 1 and int(m.group(2)) >= int(m.group(1)),
                f"overflow event without its range: {detail}")
        F.check(" from 20" in detail and " to 20" in detail, f"no time range: {detail}")
        print(f"overflow event: {detail}")
    F.check(a.stop() == 0, "agent: SIGTERM did not exit 0")
    F.check(s.spool_bytes() <= 4096, "spool over its bound at exit")


def main():
    work = helpers.mkdtemp("np-uplink-")
    s = None
    try:
        s = Setup(work)
        {"basic": scenario_basic, "outage": scenario_outage, "agentkill": scenario_agentkill,
         "overflow": scenario_overflow}[SCENARIO](s)
    except Exception as e:  # a broken setup is a failure, with its reason
        F.check(False, f"{type(e).__name__}: {e}")
    finally:
        if s:
            if F.n and s.agent:
                print("---- agent (tail) ----\n" + s.agent.tail(40), file=sys.stderr)
            if F.n and s.collector:
                print("---- collector (tail) ----\n" + s.collector.tail(20), file=sys.stderr)
            s.close()
        helpers.rmtree(work)
    return F.done()


if __name__ == "__main__":
    sys.exit(main())
