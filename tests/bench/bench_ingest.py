#!/usr/bin/env python3
"""Ingest benchmark (run through bench_ingest.sh): the collector against
collectd on the same samples, same machine, same run.

Per round, four cases on fresh data folders:
  netpulse direct     netpulse-collector writing RRD with librrd
  netpulse rrdcached  netpulse-collector through an rrdcached started here
  collectd rrdtool    collectd: network plugin receiving, rrdtool plugin writing
  collectd rrdcached  collectd: network plugin receiving, rrdcached plugin writing

Load: AGENTS enrolled agents (ingest_load post: libcurl multi, HTTP/2 over
TLS, one connection and one batch in flight per agent), IFACES interfaces
each, batches of PER_BATCH samples (IFACES x PER_BATCH/IFACES consecutive 60 s
polls, valid rates). A warm-up batch per agent creates every file first
(creation is not what is measured); then BATCHES batches per agent. collectd
gets the same samples (same files, times and values) from ingest_load's
collectd sender: its network protocol over UDP (collectd-tg only sends "now").

Figures per case:
  samples/s   samples of the measured phase / (first request .. durable):
              netpulse direct: apply queue empty (every sample written by
              librrd); netpulse rrdcached: apply queue empty, then rrdcached
              FLUSHALL done (QueueLength 0) -- both points are printed;
              collectd: sender start .. collectd idle (receive queue drained)
              .. SIGTERM exit (its rrdtool cache written) or rrdcached flushed.
  durable     values present in the RRD files afterwards (rrdtool fetch, rows
              with a known in_bps), against what was sent
  p99 ms      client-side ingest latency (netpulse only; collectd is UDP)
  RSS MiB     VmHWM of the daemon (/proc/PID/status)
Medians over ROUNDS rounds, printed as a table with ratios.
"""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import ssl

BUILD = sys.argv[1]
ROUNDS = int(os.environ.get("ROUNDS", "3"))
AGENTS = int(os.environ.get("AGENTS", "20"))
IFACES = int(os.environ.get("IFACES", "50"))
PER_BATCH = int(os.environ.get("PER_BATCH", "1000"))
BATCHES = int(os.environ.get("BATCHES", "30"))
CASES = os.environ.get("CASES", "np-direct,np-rrdcached,cd-rrdtool,cd-rrdcached").split(",")
PERF = os.environ.get("PERF", "")  # "np-direct" etc.: perf record that case in round 1
KEEP = os.environ.get("KEEP", "")
# UTILISATION=0%: the collector's [alerts] utilisation (default: its own, 90%),
# to measure what the utilisation alert costs at ingest.
UTILISATION = os.environ.get("UTILISATION", "")
# The collector refuses to run as root unless told (CI and this bench run as root).
os.environ["NETPULSE_ALLOW_ROOT"] = "1"

COLLECTOR = os.path.join(BUILD, "collector/netpulse-collector")
CLI = os.path.join(BUILD, "collector/netpulse")
LOAD = os.path.join(BUILD, "tests/bench/ingest_load")
POLLS_PER_BATCH = PER_BATCH // IFACES
TOTAL_POLLS = (BATCHES + 1) * POLLS_PER_BATCH


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def vmhwm(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return int(parts[11]) + int(parts[12])


def wait_idle(pid, quiet_s=1.0, timeout_s=600):
    """Waits until pid has used no CPU for quiet_s; returns the time it went quiet."""
    last = cpu_ticks(pid)
    since = time.time()
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        time.sleep(0.1)
        now = cpu_ticks(pid)
        if now != last:
            last = now
            since = time.time()
        elif time.time() - since >= quiet_s:
            return since
    raise RuntimeError("process %d never went idle" % pid)


def rrdcached_cmd(sock_path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall((cmd + "\n").encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        lines = data.decode(errors="replace").split("\n")
        head = lines[0].split(" ", 1)
        try:
            n = int(head[0])
        except ValueError:
            break
        if n < 0 or len(lines) - 1 > n:
            break
    s.close()
    return data.decode(errors="replace")


def rrdcached_flush(sock_path):
    """FLUSHALL, then waits for an empty queue; returns stats."""
    rrdcached_cmd(sock_path, "FLUSHALL")
    while True:
        st = {}
        for line in rrdcached_cmd(sock_path, "STATS").split("\n")[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                st[k.strip()] = int(v.strip())
        if st.get("QueueLength", 1) == 0:
            return st
        time.sleep(0.05)


def start_rrdcached(tmp, base):
    os.makedirs(os.path.join(tmp, "rrdj"), exist_ok=True)
    sock_path = os.path.join(tmp, "rrdcached.sock")
    # -w 3600: values stay queued until FLUSHALL (as a busy server would
    # batch them); -t 4 writer threads (the default).
    # -p: its own pid file (the default /var/run/rrdcached.pid is shared).
    p = subprocess.Popen(["rrdcached", "-g", "-p", os.path.join(tmp, "rrdcached.pid"),
                          "-l", "unix:" + sock_path, "-b", base, "-B",
                          "-j", os.path.join(tmp, "rrdj"), "-w", "3600", "-f", "7200", "-t", "4"],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "rrdcached.log"), "w"))
    for _ in range(100):
        if os.path.exists(sock_path):
            return p, sock_path
        time.sleep(0.05)
    raise RuntimeError("rrdcached did not start")


def count_values(files, t0, daemon=None):
    """Rows with a known first DS, summed over files (one rrdtool process)."""
    end = t0 + (TOTAL_POLLS + 2) * 60
    p = subprocess.Popen(["rrdtool", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    cmds = []
    for f in files:
        c = "fetch %s AVERAGE -r 60 -s %d -e %d" % (f, t0 - 120, end)
        if daemon:
            c += " --daemon unix:" + daemon
        cmds.append(c)
    out, _ = p.communicate("\n".join(cmds) + "\n")
    n = 0
    for line in out.split("\n"):
        if ":" in line and not line.startswith("OK"):
            head, _, rest = line.partition(":")
            vals = rest.split()
            if head.strip().isdigit() and vals and "nan" not in vals[0].lower():
                n += 1
    return n


def metrics(port, ctx):
    with urllib.request.urlopen("https://127.0.0.1:%d/metrics" % port, context=ctx, timeout=10) as r:
        m = {}
        for line in r.read().decode().split("\n"):
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                m[k] = float(v)
        return m


def run_netpulse(mode, rnd, t0):
    tmp = tempfile.mkdtemp(prefix="np-bench-")
    data = os.path.join(tmp, "data")
    os.makedirs(os.path.join(data, "rrd"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", tmp + "/key.pem",
                    "-out", tmp + "/cert.pem"], check=True, stderr=subprocess.DEVNULL)
    rrdc = None
    sock_path = ""
    if mode == "rrdcached":
        rrdc, sock_path = start_rrdcached(tmp, os.path.join(data, "rrd"))
    conf = os.path.join(tmp, "collector.conf")
    with open(conf, "w") as f:
        f.write("[collector]\nlisten = 127.0.0.1:0\ntls_cert = %s/cert.pem\ntls_key = %s/key.pem\n"
                "data_dir = %s\nrrdcached = %s\nlog_level = notice\nheartbeat_timeout = 1h\n"
                # /metrics is read without a token (the figures come from it)
                "[dashboard]\nmetrics_public = yes\n"
                % (tmp, tmp, data, "unix:" + sock_path if sock_path else ""))
        if UTILISATION:
            f.write("[alerts]\nutilisation = %s\n" % UTILISATION)
    with open(os.path.join(tmp, "tokens"), "w") as f:
        for a in range(AGENTS):
            agent = "bench-%04d" % a
            tok = subprocess.run([CLI, "-c", conf, "agent", "enrol", agent], check=True,
                                 capture_output=True, text=True).stdout.split()[-1]
            f.write("%s %s\n" % (agent, tok))
    clog = open(os.path.join(tmp, "collector.log"), "w")
    coll = subprocess.Popen([COLLECTOR, "-c", conf, "--foreground", "--port-file", tmp + "/port"],
                            stderr=clog)
    for _ in range(200):
        if os.path.exists(tmp + "/port"):
            break
        time.sleep(0.05)
    port = int(open(tmp + "/port").read())
    url = "https://127.0.0.1:%d/api/v1/ingest" % port
    ctx = ssl.create_default_context(cafile=tmp + "/cert.pem")

    def drained(expect_batches):
        while True:
            m = metrics(port, ctx)
            if (m.get("netpulse_ingest_batches_total", 0) >= expect_batches and
                    m.get('netpulse_queue_depth{queue="apply"}', 1) == 0 and
                    m.get('netpulse_queue_depth{queue="journal"}', 1) == 0):
                return time.time(), m
            time.sleep(0.02)

    # Warm-up: seq 1 of every agent creates every file.
    w = subprocess.run([LOAD, "post", url, tmp + "/cert.pem", tmp + "/tokens", str(IFACES),
                        str(PER_BATCH), "1", "1", str(t0)], capture_output=True, text=True)
    if w.returncode != 0:
        raise RuntimeError("warm-up failed: " + w.stdout + w.stderr)
    drained(AGENTS)
    if sock_path:
        rrdcached_flush(sock_path)
    perf = None
    if PERF == "np-" + mode and rnd == 0:
        perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", "/tmp/np-bench-perf.data",
                                 "-p", str(coll.pid)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    r = subprocess.run([LOAD, "post", url, tmp + "/cert.pem", tmp + "/tokens", str(IFACES),
                        str(PER_BATCH), "2", str(BATCHES), str(t0)], capture_output=True, text=True)
    if r.returncode != 0:
        log(r.stderr)
    load = json.loads(r.stdout)
    t_drained, m = drained(AGENTS * (BATCHES + 1))
    t_flushed = t_drained
    if sock_path:
        rrdcached_flush(sock_path)
        t_flushed = time.time()
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    rss = vmhwm(coll.pid)
    coll.send_signal(signal.SIGTERM)
    coll.wait(timeout=60)
    files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(data, "rrd")) for f in fs
             if f.endswith(".rrd")]
    durable = count_values(files, t0)
    if rrdc:
        rrdc.send_signal(signal.SIGTERM)
        rrdc.wait(timeout=120)
    sent = AGENTS * BATCHES * PER_BATCH
    res = {
        "case": "netpulse " + mode,
        "samples": sent,
        "seconds": t_flushed - load["t_start_wall"],
        "seconds_applied": t_drained - load["t_start_wall"],
        "p99_ms": load["p99_ms"],
        "p50_ms": load["p50_ms"],
        "client_samples_per_s": load["samples_per_s"],
        "rss_mib": rss,
        "durable": durable,
        "expected_durable": AGENTS * IFACES * TOTAL_POLLS,
        "files": len(files),
        "retries_503": load["retries_503"],
        "samples_total_metric": m.get("netpulse_ingest_samples_total"),
        "rrd_write_s_sum": m.get("netpulse_rrd_write_seconds_sum"),
    }
    res["samples_per_s"] = sent / res["seconds"]
    res["applied_per_s"] = sent / res["seconds_applied"]
    if not KEEP:
        shutil.rmtree(tmp)
    return res


COLLECTD_TYPES = "netpulse_if in_bps:GAUGE:0:U, out_bps:GAUGE:0:U, oper:GAUGE:0:1\n"


def run_collectd(mode, rnd, t0):
    tmp = tempfile.mkdtemp(prefix="cd-bench-")
    rrd = os.path.join(tmp, "rrd")
    os.makedirs(rrd)
    with open(tmp + "/types.db", "w") as f:
        f.write(COLLECTD_TYPES)
    rrdc = None
    sock_path = ""
    if mode == "rrdcached":
        rrdc, sock_path = start_rrdcached(tmp, rrd)
        writer = ('LoadPlugin rrdcached\n<Plugin rrdcached>\n  DaemonAddress "unix:%s"\n'
                  '  DataDir "%s"\n  CreateFiles true\n  StepSize 60\n  HeartBeat 120\n'
                  '</Plugin>\n' % (sock_path, rrd))
    else:
        # The cache spans 20 polls of a file (CacheTimeout in value time), the
        # same number of values per rrd_update call netpulse makes per batch.
        writer = ('LoadPlugin rrdtool\n<Plugin rrdtool>\n  DataDir "%s"\n  CacheTimeout %d\n'
                  '  CacheFlush 36000\n  WritesPerSecond 0\n  StepSize 60\n  HeartBeat 120\n'
                  '</Plugin>\n' % (rrd, POLLS_PER_BATCH * 60))
    port = 25826 + 10 * rnd + (1 if mode == "rrdcached" else 0)
    with open(tmp + "/collectd.conf", "w") as f:
        # WriteThreads 1: several write threads reorder the values of one
        # file, and RRD (and collectd's cache) refuse a value older than the
        # last one ("Value too old").
        f.write('Hostname "bench-collectd"\nFQDNLookup false\nInterval 10\nWriteThreads 1\n'
                'BaseDir "%s"\nPIDFile "%s/pid"\n'
                'TypesDB "/usr/share/collectd/types.db" "%s/types.db"\n'
                'LoadPlugin network\n<Plugin network>\n  Listen "127.0.0.1" "%d"\n</Plugin>\n%s'
                % (tmp, tmp, tmp, port, writer))
    cd = subprocess.Popen(["collectd", "-f", "-C", tmp + "/collectd.conf"],
                          stdout=subprocess.DEVNULL, stderr=open(tmp + "/collectd.log", "w"))
    time.sleep(1.0)

    def send(first, n):
        r = subprocess.run([LOAD, "collectd", "127.0.0.1", str(port), str(AGENTS), str(IFACES),
                            str(PER_BATCH), str(first), str(n), str(t0), "400000"],
                           capture_output=True, text=True, check=True)
        return json.loads(r.stdout)

    send(1, 1)  # warm-up: creates the files
    wait_idle(cd.pid)
    perf = None
    if PERF == "cd-" + mode and rnd == 0:
        perf = subprocess.Popen(["perf", "record", "-F", "499", "-g", "-o", "/tmp/cd-bench-perf.data",
                                 "-p", str(cd.pid)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
    t_start = time.time()
    s = send(2, BATCHES)
    t_idle = wait_idle(cd.pid)
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait()
    rss = vmhwm(cd.pid)
    t_term = time.time()
    cd.send_signal(signal.SIGTERM)
    cd.wait(timeout=300)
    t_done = time.time()
    if sock_path:
        rrdcached_flush(sock_path)
        t_done = time.time()
    # The quiet second wait_idle needs to see it idle is not collectd's work.
    seconds = (t_idle - t_start) + (t_done - t_term)
    files = [os.path.join(d, f) for d, _, fs in os.walk(rrd) for f in fs
             if f.startswith("netpulse_if")]
    durable = count_values(files, t0)
    if rrdc:
        rrdc.send_signal(signal.SIGTERM)
        rrdc.wait(timeout=120)
    sent = AGENTS * BATCHES * PER_BATCH
    res = {
        "case": "collectd " + mode,
        "samples": sent,
        "seconds": seconds,
        "seconds_applied": t_idle - t_start,
        "p99_ms": float("nan"),
        "rss_mib": rss,
        "durable": durable,
        "expected_durable": AGENTS * IFACES * TOTAL_POLLS,
        "files": len(files),
        "sender_s": s["seconds"],
    }
    res["samples_per_s"] = sent / res["seconds"]
    res["applied_per_s"] = sent / res["seconds_applied"]
    if not KEEP:
        shutil.rmtree(tmp)
    return res


def table(results):
    def med(case, key):
        vals = [r[key] for r in results[case] if r.get(key) is not None]
        return statistics.median(vals) if vals else float("nan")

    for rs in results.values():
        for r in rs:
            # Values written in the measured phase (the warm-up wrote one
            # batch per agent before), per second of the case.
            warm = AGENTS * IFACES * POLLS_PER_BATCH
            r["written_per_s"] = (r["durable"] - warm) / r["seconds"]
    n = len(next(iter(results.values())))
    print("\ningest benchmark: medians of %d rounds; %d agents x %d interfaces, %d-sample batches "
          "(%d polls/file/batch), %d samples sent per case\n"
          % (n, AGENTS, IFACES, PER_BATCH, POLLS_PER_BATCH, AGENTS * BATCHES * PER_BATCH))
    print("%-20s %11s %11s %11s %8s %8s %8s %17s" % (
        "case", "written/s", "sent/s", "applied/s", "p50 ms", "p99 ms", "RSS MiB",
        "durable/expected"))
    for case in results:
        print("%-20s %11.0f %11.0f %11.0f %8.1f %8.1f %8.1f %8d/%d" % (
            case, med(case, "written_per_s"), med(case, "samples_per_s"),
            med(case, "applied_per_s"), med(case, "p50_ms"), med(case, "p99_ms"),
            med(case, "rss_mib"), med(case, "durable"), results[case][0]["expected_durable"]))
    print()
    pairs = [("netpulse direct", "collectd rrdtool"), ("netpulse rrdcached", "collectd rrdcached"),
             ("netpulse rrdcached", "collectd rrdtool"), ("netpulse rrdcached", "netpulse direct")]
    for a, b in pairs:
        if a in results and b in results:
            print("ratio %-20s / %-20s %6.2fx (written/s)" % (
                a, b, med(a, "written_per_s") / med(b, "written_per_s")))
    print("\nwritten/s: values found in the RRD files afterwards (rrdtool fetch, measured phase "
          "only) / seconds from the first request (collectd: first packet) until durable: "
          "netpulse: apply queue empty, and with rrdcached its FLUSHALL done; collectd: its exit "
          "after SIGTERM wrote its cache, or rrdcached flushed.\nsent/s: samples sent / the same "
          "seconds. applied/s: samples sent / seconds until the daemon is done (netpulse: apply "
          "queue empty; collectd: idle), before any final flush. p50/p99: client-side ingest "
          "latency per 1000-sample batch (netpulse; collectd is UDP, no acknowledgement).")


def main():
    if len(sys.argv) > 3 and sys.argv[2] == "--table-from":
        results = {}
        for line in open(sys.argv[3]):
            if line.startswith("round "):
                r = json.loads(line.split(": ", 1)[1])
                results.setdefault(r["case"], []).append(r)
        table(results)
        return
    for p in (COLLECTOR, CLI, LOAD):
        if not os.access(p, os.X_OK):
            sys.exit("bench_ingest: %s not built (configure with -DNETPULSE_BENCH=ON)" % p)
    now = int(time.time())
    t0 = (now - TOTAL_POLLS * 60 - 3600) // 60 * 60
    results = {}
    log("bench_ingest: %d agents x %d interfaces, batches of %d samples (%d polls per file per "
        "batch), %d measured batches per agent (%d samples), %d rounds"
        % (AGENTS, IFACES, PER_BATCH, POLLS_PER_BATCH, BATCHES, AGENTS * BATCHES * PER_BATCH, ROUNDS))
    for rnd in range(ROUNDS):
        for case in CASES:
            who, mode = case.split("-", 1)
            r = run_netpulse(mode, rnd, t0) if who == "np" else run_collectd(mode, rnd, t0)
            # Other work on the machine shows here (the figures are not alone).
            r["loadavg_1m"] = os.getloadavg()[0]
            log("round %d: %s" % (rnd + 1, json.dumps(r)))
            results.setdefault(r["case"], []).append(r)

    table(results)


main()
