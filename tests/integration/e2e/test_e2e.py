#!/usr/bin/env python3
"""End to end in network namespaces: the real netpulse-agent (with a real
snmpd) in namespace A, the real netpulse-collector in namespace C, joined by
a veth pair 10.96.0.1/30 (A) -- 10.96.0.2/30 (C). Both namespaces are made
here and deleted in a finally. The agent polls snmpd every 5 s and probes the
collector side (icmp 10.96.0.2 and tcp 10.96.0.2:8443) every 5 s.

  test_e2e.py SCENARIO AGENT COLLECTOR NETPULSE
    link   the link is cut on the collector side (`ip link set ... down`) for
           3 minutes. After it returns and the backlog drained: every batch
           the agent spooled during the cut was acknowledged and stored once
           (agent seqs vs the collector's applied seq and its ingest counters),
           the RRD rows of the cut (finest step) are known, with the probe RRD
           down; one confirmed link outage whose start and end are within one
           probe interval of the real cut; the uptime the API reports over a
           window around it matches that outage.
    agent  the agent is SIGKILLed with the link fine and restarted 60 s later:
           one confirmed agent outage (not link), from its last sign of life
           before the kill to the restart, each within one interval.
Exit 0 pass, 1 fail, 77 skipped (not root / no netns).

Also a module: other tests (tests/integration/alerts/netns_cut.py) call
configure() and reuse Net, Setup (collector_extra: more collector.conf) and
Proc."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from daemon_proc import Proc  # noqa: E402

SCEN = AGENT = COLLECTOR = CLI = None
PID = os.getpid()
NS_A = NS_C = VA = VC = None


def configure(scen, agent, collector, cli):
    """The scenario and the programs; names the namespaces and veths."""
    global SCEN, AGENT, COLLECTOR, CLI, NS_A, NS_C, VA, VC
    SCEN, AGENT, COLLECTOR, CLI = scen, agent, collector, cli
    NS_A, NS_C = f"npe{SCEN[0]}a{PID}", f"npe{SCEN[0]}c{PID}"
    VA, VC = f"vea{SCEN[0]}{PID % 100000}", f"vec{SCEN[0]}{PID % 100000}"

A_IP, C_IP = "10.96.0.1", "10.96.0.2"
CPORT, SPORT = 8443, 1161
INTERVAL = 5.0      # SNMP and probe interval, s
CUT_S = int(os.environ.get("NETPULSE_E2E_CUT_S", "180"))  # the brief: 3 minutes
STOP_S = 60
SITE = "school-e2e"
FAILS = []


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def check(cond, what):
    log(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)
    return cond


def sh(*args, ok_rc=(0,)):
    r = subprocess.run(list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode not in ok_rc:
        raise RuntimeError(f"{' '.join(args)}: rc={r.returncode} {r.stderr.strip()}")
    return r


def ts_of(line):
    """Wall time (s) of a daemon log line '2026-11-23T10:41:14.134Z ...'."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z", line)
    if not m:
        return None
    return datetime.fromisoformat(m.group(1) + "+00:00").timestamp()



class Net:
    def __init__(self):
        self.made = []

    def up(self):
        for ns in (NS_A, NS_C):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "link", "add", VA, "netns", NS_A, "type", "veth", "peer", "name", VC,
           "netns", NS_C)
        sh("ip", "-n", NS_A, "addr", "add", f"{A_IP}/30", "dev", VA)
        sh("ip", "-n", NS_C, "addr", "add", f"{C_IP}/30", "dev", VC)
        sh("ip", "-n", NS_A, "link", "set", VA, "up")
        sh("ip", "-n", NS_C, "link", "set", VC, "up")

    def cut(self, down):
        sh("ip", "-n", NS_C, "link", "set", VC, "down" if down else "up")

    def close(self):
        for ns in self.made:
            sh("ip", "netns", "pids", ns, ok_rc=(0, 1))
            for pid in sh("ip", "netns", "pids", ns, ok_rc=(0, 1)).stdout.split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            sh("ip", "netns", "del", ns, ok_rc=(0, 1))


class Setup:
    def __init__(self, work, collector_extra=""):
        self.work = work
        self.data = f"{work}/data"
        os.makedirs(self.data)
        self.snmpd = self.collector = self.agent = None
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-nodes", "-days", "2", "-subj", "/CN=collector",
           "-addext", f"subjectAltName=IP:{C_IP}", "-keyout", f"{work}/key.pem",
           "-out", f"{work}/cert.pem")
        self.cconf = f"{work}/collector.conf"
        with open(self.cconf, "w") as f:
            f.write(f"[collector]\nlisten = {C_IP}:{CPORT}\ntls_cert = {work}/cert.pem\n"
                    f"tls_key = {work}/key.pem\ndata_dir = {self.data}\n"
                    "heartbeat_timeout = 6s\nallow_root = yes\n" + collector_extra)
        self.token = self.np("agent", "enrol", SITE).stdout.strip().splitlines()[0]
        self.api_token = None
        if self.np("user", "list", check=False).returncode == 0:
            self.np("user", "add", "e2e", "--password-stdin", input="an e2e test password\n")
            self.api_token = self.np("user", "token", "e2e").stdout.strip().splitlines()[0]
        with open(f"{work}/agent.conf", "w") as f:
            f.write(f"[agent]\nid = {SITE}\ncollector = https://{C_IP}:{CPORT}\n"
                    f"token = {self.token}\nca_file = {work}/cert.pem\n"
                    f"spool_dir = {work}/spool\nbatch_interval = 2s\ndrain_rate = 20\n"
                    "retry_max = 4s\ntimeout = 5s\nlog_level = debug\n\n"
                    f"[snmp edge]\nhost = 127.0.0.1\nport = {SPORT}\nversion = 2c\n"
                    "community = public\ninterval = 5s\ntimeout = 1s\nretries = 1\n"
                    "include_loopback = yes\n\n"
                    f"[probe icmp]\ntype = icmp\ntarget = {C_IP}\ninterval = 5s\ntimeout = 2s\n\n"
                    f"[probe tcp]\ntype = tcp\ntarget = {C_IP}:{CPORT}\ninterval = 5s\n"
                    "timeout = 2s\n\n[uplink]\nquorum = 1\n")
        with open(f"{work}/snmpd.conf", "w") as f:
            f.write("rocommunity public 127.0.0.1\n")

    def np(self, *args, check=True, input=None):
        r = subprocess.run([CLI, "-c", self.cconf, *args], capture_output=True, text=True,
                           input=input)
        if check and r.returncode != 0:
            raise RuntimeError(f"netpulse {' '.join(args)}: {r.stderr.strip()}")
        return r

    def start(self):
        env = dict(os.environ, SNMP_PERSISTENT_DIR=self.work, MIBS="")
        self.snmpd = subprocess.Popen(
            ["ip", "netns", "exec", NS_A, "snmpd", "-f", "-Lo", "-C", "-c",
             f"{self.work}/snmpd.conf", "-p", f"{self.work}/snmpd.pid", f"udp:127.0.0.1:{SPORT}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        for _ in range(100):
            r = sh("ip", "netns", "exec", NS_A, "snmpget", "-v2c", "-c", "public", "-t", "0.3",
                   "-r", "0", f"127.0.0.1:{SPORT}", "1.3.6.1.2.1.1.3.0", ok_rc=(0, 1, 2))
            if r.returncode == 0:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("snmpd in the agent's namespace does not answer")
        self.collector = Proc(["ip", "netns", "exec", NS_C, COLLECTOR, "-c", self.cconf,
                               "--foreground"], "collector")
        if self.collector.wait_line(r"started port=", 20) is None:
            raise RuntimeError("collector did not start:\n" + self.collector.tail())
        self.t_agent = time.time()  # before this, the site has no data (not up, not down)
        self.agent = Proc(["ip", "netns", "exec", NS_A, AGENT, "-c", f"{self.work}/agent.conf",
                           "--foreground"], "agent")

    def api(self, path):
        """GET path from the collector (inside its namespace, via curl)."""
        argv = ["ip", "netns", "exec", NS_C, "curl", "-sS", "--max-time", "15", "--cacert",
                f"{self.work}/cert.pem", "-w", "\n%{http_code}"]
        if self.api_token:
            argv += ["-H", f"Authorization: Bearer {self.api_token}"]
        r = sh(*argv, f"https://{C_IP}:{CPORT}{path}", ok_rc=(0, 7, 28, 35, 52, 56))
        body, _, code = r.stdout.rpartition("\n")
        if code != "200":
            raise RuntimeError(f"GET {path}: {code} {body[:200]}")
        return body

    def api_json(self, path):
        return json.loads(self.api(path))

    def metric(self, name):
        for line in self.api("/metrics").splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == name:
                return float(parts[1])
        return None

    def applied_seq(self):
        return self.api_json(f"/api/v1/sites/{SITE}")["agent"]["applied_seq"]

    def outages(self):
        return self.api_json(f"/api/v1/sites/{SITE}/outages")

    def wait_outages(self, pred, timeout_s):
        deadline = time.monotonic() + timeout_s
        got = None
        while time.monotonic() < deadline:
            try:
                got = self.outages()
                if pred(got):
                    return got
            except (RuntimeError, ValueError):
                pass
            time.sleep(1)
        return got

    def rrd_rows(self, name, start, end, step=60):
        path = f"{self.data}/rrd/{SITE}/{name}.rrd"
        r = sh("rrdtool", "fetch", path, "AVERAGE", "-r", str(step), "-s", str(start), "-e",
               str(end))
        lines = r.stdout.splitlines()
        names = lines[0].split()
        rows = []
        for line in lines[1:]:
            m = re.match(r"\s*(\d+):\s+(.*)", line)
            if m:
                rows.append((int(m.group(1)), dict(zip(names, m.group(2).split()))))
        return rows

    def close(self):
        for p in (self.agent, self.collector):
            if p:
                p.stop(signal.SIGKILL, 5)
        if self.snmpd and self.snmpd.poll() is None:
            self.snmpd.kill()
            self.snmpd.wait()


def sent_seqs(agent):
    return [int(m.group(1)) for m in agent.grep(r"uplink: sent seq=(\d+) ack=")]


def closed(agent):
    """[(seq, wall time, samples)] of the batches the agent closed."""
    return [(int(m.group(1)), ts_of(m.string), int(m.group(2)))
            for m in agent.grep(r"uplink: batch closed seq=(\d+) items=\d+ samples=(\d+)")]


def wait_drained(s, timeout_s=60):
    """Waits until every closed batch up to now is acknowledged and applied."""
    last = max(q for q, _, _ in closed(s.agent))
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        acked = max(sent_seqs(s.agent), default=0)
        try:
            applied = s.applied_seq()
        except (RuntimeError, ValueError):
            applied = -1
        if acked >= last and applied >= last:
            return last
        time.sleep(0.5)
    return None


def scenario_link(s):
    a = s.agent
    check(a.wait_line(r"uplink: sent seq=5 ", 40) is not None, "agent uploads:\n" + a.tail())
    check(a.wait_line(r"probe: uplink up", 1) is not None, "agent's uplink up before the cut")
    time.sleep(10)
    t0 = time.time()
    s.net.cut(True)
    t1 = time.time()
    t_cut = (t0 + t1) / 2
    log(f"link cut at {t_cut:.3f}")
    time.sleep(25)
    got = s.outages()
    check(any(o["state"] == "suspected" for o in got),
          f"suspected outage while the agent is silent: {got}")
    spooled = a.grep(r"uplink: spooled seq=\d+ bytes=\d+ backlog=(\d+)")
    check(spooled and int(spooled[-1].group(1)) >= 5,
          f"agent spools during the cut: {spooled[-1].string if spooled else None}")
    time.sleep(max(0.0, t_cut + CUT_S - time.time()))
    t0 = time.time()
    s.net.cut(False)
    t1 = time.time()
    t_up = (t0 + t1) / 2
    log(f"link back at {t_up:.3f} after {t_up - t_cut:.1f} s")
    mark = len(a.lines)
    time.sleep(INTERVAL + 3)  # a good probe round and its batch
    last = wait_drained(s, 90)
    check(last is not None, "backlog drained and applied:\n" + a.tail())
    drained_at = time.time()
    log(f"drained up to seq {last} {drained_at - t_up:.1f} s after the link returned")
    check(a.wait_line(r"collector reachable", 1, mark) is not None, "agent logged its recovery")

    # Every batch closed during the cut was acknowledged and stored once.
    cl = closed(a)
    during = [q for q, t, _ in cl if t_cut < t < t_up]
    check(len(during) >= (CUT_S / 2) * 0.8,
          f"agent closed {len(during)} batches during the {CUT_S} s cut (batch interval 2 s)")
    seqs = sent_seqs(a)
    check(sorted(set(seqs)) == list(range(1, max(seqs) + 1)),
          "every seq from 1 acknowledged, none skipped")
    check(all(q in set(seqs) for q in during), "every batch of the cut acknowledged")
    applied = s.applied_seq()
    check(applied >= max(during), f"collector applied seq {applied} >= {max(during)}")
    resent = len(seqs) - len(set(seqs))
    log(f"cut batches seq {min(during)}..{max(during)}; {resent} sent twice")
    rejected = s.collector.grep(r"ingest: rejected")
    check(not rejected, f"collector rejected nothing: {[m.string for m in rejected[:2]]}")

    # RRD rows of the cut at the finest step: known; the probes were down.
    step = 60
    first = (int(t_cut) // step + 1) * step + step  # end of the first full row
    lastrow = int(t_up) // step * step
    rows = s.rrd_rows("if+edge+lo", first - step, lastrow)
    cut_rows = [(t, v) for t, v in rows if first <= t <= lastrow]
    check(len(cut_rows) >= 2, f"{len(cut_rows)} full RRD rows inside the cut")
    unknown = [t for t, v in cut_rows if "nan" in v.get("in_bps", "nan").lower()]
    check(not unknown, f"interface RRD rows of the cut all known (unknown at {unknown})")
    # A probe result stands for the interval (5 s) before its time, so the
    # first one after the link returns may fill up to 5 s of the row before:
    # only rows ending a probe interval before the return must read down.
    plast = int(t_up - 5) // step * step
    prow = [(t, v) for t, v in s.rrd_rows("probe+tcp", first - step, plast)
            if first <= t <= plast]
    check(prow and all(v.get("up") not in (None,) and "nan" not in v["up"].lower()
                       and float(v["up"]) == 0.0 for _, v in prow),
          f"tcp probe RRD down (0) through the cut: {[v.get('up') for _, v in prow]}")

    # One confirmed link outage within one probe interval of the real cut.
    got = s.wait_outages(lambda d: d and all(o["state"] == "confirmed" for o in d), 30)
    log(f"outages: {got}")
    links = [o for o in got or [] if o["cause"] == "link" and o["state"] == "confirmed"]
    check(len(got or []) == 1 and len(links) == 1, "exactly one outage, confirmed, cause link")
    if links:
        o = links[0]
        ds, de = o["start_ms"] / 1000 - t_cut, o["end_ms"] / 1000 - t_up
        log(f"outage start {ds:+.2f} s from the cut, end {de:+.2f} s from the return")
        check(-0.5 <= ds <= INTERVAL + 0.5, f"outage start within one probe interval ({ds:+.2f} s)")
        check(-0.5 <= de <= INTERVAL + 0.5, f"outage end within one probe interval ({de:+.2f} s)")
        # Uptime over a window around the run: (window - outage) / window.
        # The window starts once the agent runs: t_start is taken before
        # snmpd and the collector start, and the time before the agent's
        # process started is no data, which the formula does not allow for.
        f_s, t_s = int(s.t_agent) + 1, int(time.time()) - 1
        try:
            up = s.api_json(f"/api/v1/sites/{SITE}/uptime?from={f_s}&to={t_s}")
            log("uptime: " + json.dumps(up)[:600])
            site = up["sites"][0] if "sites" in up else up
            pct = site.get("uptime_percent")
            want = 100.0 * (1 - (o["end_ms"] - o["start_ms"]) / 1000 / (t_s - f_s))
            if pct is None or abs(pct - want) >= 0.5:
                time.sleep(3)  # not a race with the outage's settling?
                again = s.api_json(f"/api/v1/sites/{SITE}/uptime?from={f_s}&to={t_s}")
                log("uptime again: " + json.dumps(again)[:900])
            check(pct is not None and abs(pct - want) < 0.5,
                  f"uptime {pct} % over {t_s - f_s} s, the outage implies {want:.2f} %")
        except RuntimeError as e:
            log(f"no /uptime endpoint: {e}")

    if s.api_token:
        # The ledger, with the agent stopped (nothing in flight): a fresh
        # collector applied seqs 1..applied, each batch and its samples once.
        check(a.stop() == 0, "agent: SIGTERM exits 0")
        time.sleep(1)
        cl = closed(a)
        per = {q: n for q, _, n in cl}
        applied = s.applied_seq()
        b = s.metric("netpulse_ingest_batches_total")
        n = s.metric("netpulse_ingest_samples_total")
        want_n = sum(per.get(q, 0) for q in range(1, applied + 1))
        check(b == float(applied), f"collector stored {b} batches for seqs 1..{applied} "
              "(each exactly once)")
        check(n == float(want_n), f"collector stored {n} samples, the agent's batches "
              f"1..{applied} hold {want_n}")


def scenario_agent(s):
    a = s.agent
    check(a.wait_line(r"uplink: sent seq=5 ", 40) is not None, "agent uploads:\n" + a.tail())
    time.sleep(6)
    t_stop = time.time()
    a.stop(signal.SIGKILL)
    log("agent SIGKILLed, link fine")
    time.sleep(20)
    got = s.outages()
    check(any(o["state"] == "suspected" for o in got), f"suspected outage: {got}")
    time.sleep(max(0.0, t_stop + STOP_S - time.time()))
    t_cont = time.time()
    s.agent = a = Proc(["ip", "netns", "exec", NS_A, AGENT, "-c", f"{s.work}/agent.conf",
                        "--foreground"], "agent")
    log(f"agent restarted after {t_cont - t_stop:.1f} s")
    check(a.wait_line(r"uplink: sent seq=", 30) is not None, "restarted agent uploads")
    time.sleep(INTERVAL + 3)
    check(wait_drained(s, 60) is not None, "agent caught up")
    got = s.wait_outages(lambda d: d and all(o["state"] == "confirmed" for o in d), 30)
    log(f"outages: {got}")
    ag = [o for o in got or [] if o["cause"] == "agent" and o["state"] == "confirmed"]
    check(len(got or []) == 1 and len(ag) == 1, "exactly one outage, confirmed, cause agent")
    check(not [o for o in got or [] if o["cause"] == "link"], "no link outage")
    if ag:
        o = ag[0]
        ds, de = o["start_ms"] / 1000 - t_stop, o["end_ms"] / 1000 - t_cont
        log(f"agent outage start {ds:+.2f} s from the kill, end {de:+.2f} s from the restart")
        check(-INTERVAL - 0.5 <= ds <= 0.5,
              f"start: the last sign of life before the kill ({ds:+.2f} s)")
        check(-0.5 <= de <= INTERVAL + 0.5, f"end within one interval of the restart ({de:+.2f} s)")


def main():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("snmpd"):
        print("skipped: needs root, iproute2 and snmpd")
        return 77
    # Namespaces left by an earlier run that was killed (ctest timeout).
    for line in sh("ip", "netns", "list").stdout.splitlines():
        m = re.match(r"(npe[la][ac](\d+))\b", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            sh("ip", "netns", "del", m.group(1), ok_rc=(0, 1))
    work = tempfile.mkdtemp(prefix=f"np-e2e-{SCEN}-")
    net = Net()
    s = None
    t_begin = time.monotonic()
    try:
        net.up()
        s = Setup(work)
        s.net = net
        s.t_start = time.time()
        s.start()
        {"link": scenario_link, "agent": scenario_agent}[SCEN](s)
        if s.agent.p.poll() is None:
            check(s.agent.stop() == 0, "agent: SIGTERM exits 0")
        check(s.collector.stop() == 0, "collector: SIGTERM exits 0")
    except Exception as e:  # a broken setup is a failure, with its reason
        check(False, f"{type(e).__name__}: {e}")
    finally:
        if FAILS and s:
            for p in (s.agent, s.collector):
                if p:
                    print(f"---- {p.name} (tail) ----\n{p.tail(40)}", file=sys.stderr)
        if s:
            s.close()
        net.close()
        if os.environ.get("NETPULSE_E2E_KEEP") == "1":
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    log(f"{SCEN}: {len(FAILS)} failures in {time.monotonic() - t_begin:.0f} s")
    return 1 if FAILS else 0


if __name__ == "__main__":
    configure(*sys.argv[1:5])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # ctest timeout: clean up
    sys.exit(main())
