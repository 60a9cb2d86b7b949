#!/usr/bin/env python3
"""SNMP poller benchmark (run through bench_snmp.sh).

Generates DEVICES snmpsim recordings of IFACES interfaces (bench_snmp_gen.py)
into a temporary folder and serves them from SIMULATORS snmpsimd processes on
loopback ports (device d on simulator d % SIMULATORS: snmpsim is one Python
process, so one of them caps the whole run). Then, RUNS times each:

  agent     netpulse-agent --polls 3 --interval 1ms: every target due at
            once (at most [agent] snmp_max_concurrent in flight, default 32;
            SNMP_MAX_CONCURRENT in the environment overrides it), three rounds
            back to back; per round it reports wall time, its own CPU time
            (getrusage), peak RSS (VmHWM) and the present RSS split into
            anonymous and file-backed pages (RssAnon/RssFile) on stderr.
            JSON lines go to /dev/null (still formatted: the work --once does).
  seq       snmpbulkwalk -Cr25 of ifTable and of ifXTable (the same columns:
            the recordings hold only what the poller reads), device by device
  par       the same walks, 32 at a time

and for each, the CPU the simulators spent (/proc/PID/stat), to tell whether
the simulator is the bottleneck. Prints medians; never fails on time.

usage: bench_snmp.py AGENT DEVICES IFACES RUNS SIMULATORS"""
import concurrent.futures
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TABLES = ["1.3.6.1.2.1.2.2", "1.3.6.1.2.1.31.1.1"]
CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_cpu_s(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK


def children_cpu_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def walk(dev, port):
    n = 0
    for table in TABLES:
        r = subprocess.run(["snmpbulkwalk", "-v2c", "-c", dev, "-Cr25", "-t", "30", "-r", "1",
                            "-On", "-Oq", f"127.0.0.1:{port}", table],
                           capture_output=True, text=True)
        n += r.stdout.count("\n")
    return n


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    agent, devices, ifaces, runs, nsim = (sys.argv[1], int(sys.argv[2]), int(sys.argv[3]),
                                          int(sys.argv[4]), max(1, int(sys.argv[5])))
    work = tempfile.mkdtemp(prefix="np-bench-snmp-")
    os.chmod(work, 0o755)
    sims = []
    try:
        data = os.path.join(work, "data")
        subprocess.run([sys.executable, os.path.join(HERE, "bench_snmp_gen.py"), data,
                        str(devices), str(ifaces)], check=True)
        for root, dirs, files in os.walk(work):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)
        ports = []
        for i in range(nsim):
            cache = os.path.join(work, f"cache{i}")
            os.mkdir(cache)
            if os.geteuid() == 0:
                shutil.chown(cache, "nobody", "nogroup")
            port = free_port()
            ports.append(port)
            cmd = ["snmpsimd", f"--data-dir={data}", f"--agent-udpv4-endpoint=127.0.0.1:{port}",
                   f"--cache-dir={cache}", "--logging-method=null"]
            if os.geteuid() == 0:
                cmd += ["--process-user=nobody", "--process-group=nogroup"]
            sims.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL))
        names = [f"dev{d:03d}" for d in range(devices)]
        port_of = {n: ports[d % nsim] for d, n in enumerate(names)}
        # Wait until every simulator has indexed and answers.
        deadline = time.monotonic() + 120
        for n in names[:nsim]:
            while time.monotonic() < deadline:
                r = subprocess.run(["snmpget", "-v2c", "-c", n, "-t", "2", "-r", "0",
                                    f"127.0.0.1:{port_of[n]}", "1.3.6.1.2.1.1.3.0"],
                                   capture_output=True, text=True)
                if r.returncode == 0:
                    break
                time.sleep(0.5)
        conf = os.path.join(work, "agent.conf")
        with open(conf, "w") as f:
            f.write("[agent]\nid = bench\n")
            if os.environ.get("SNMP_MAX_CONCURRENT"):
                f.write(f"snmp_max_concurrent = {os.environ['SNMP_MAX_CONCURRENT']}\n")
            for n in names:
                f.write(f"[snmp {n}]\nhost = 127.0.0.1\nport = {port_of[n]}\ncommunity = {n}\n"
                        "timeout = 30s\nretries = 1\ninterval = 5m\n")
        # One warm-up walk per device so the simulators' caches are hot for all.
        with concurrent.futures.ThreadPoolExecutor(32) as ex:
            list(ex.map(lambda n: walk(n, port_of[n]), names))

        pids = [s.pid for s in sims]
        res = {"agent": [], "agent_round1": [], "seq": [], "par": []}
        for run in range(runs):
            # agent
            sim0, c0, t0 = proc_cpu_s(pids), children_cpu_s(), time.monotonic()
            r = subprocess.run([agent, "-c", conf, "--polls", "3", "--interval", "1ms"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            wall, cpu, sim = time.monotonic() - t0, children_cpu_s() - c0, proc_cpu_s(pids) - sim0
            rounds = [dict(re.findall(r"(\w+)=([\d.]+)", l)) for l in r.stderr.splitlines()
                      if l.startswith("snmp: poll round=")]
            if not rounds:
                print(f"agent exited {r.returncode} without a round:\n{r.stderr[-2000:]}")
            failed = sum(int(x["failed"]) for x in rounds)
            for x in rounds:
                row = {"wall_s": float(x["wall_ms"]) / 1000, "cpu_s": float(x["cpu_ms"]) / 1000,
                       "rss_mib": int(x["rss_kib"]) / 1024, "ifs": int(x["interfaces"]),
                       "anon_mib": int(x.get("rss_anon_kib", 0)) / 1024,
                       "file_mib": int(x.get("rss_file_kib", 0)) / 1024,
                       "in_flight": int(x.get("in_flight_max", 0)),
                       "sim_cpu_s": sim / max(1, len(rounds)), "failed": failed,
                       "proc_cpu_s": cpu / max(1, len(rounds)), "proc_wall_s": wall}
                res["agent_round1" if x["round"] == "1" else "agent"].append(row)
            print(f"run {run + 1}: agent {wall:.2f} s for {len(rounds)} rounds, "
                  f"process CPU {cpu:.2f} s, simulators CPU {sim:.2f} s, failed polls {failed}",
                  flush=True)
            for mode, workers in (("seq", 1), ("par", 32)):
                sim0, c0, t0 = proc_cpu_s(pids), children_cpu_s(), time.monotonic()
                with concurrent.futures.ThreadPoolExecutor(workers) as ex:
                    vbs = sum(ex.map(lambda n: walk(n, port_of[n]), names))
                wall = time.monotonic() - t0
                row = {"wall_s": wall, "cpu_s": children_cpu_s() - c0,
                       "sim_cpu_s": proc_cpu_s(pids) - sim0, "varbinds": vbs}
                res[mode].append(row)
                print(f"run {run + 1}: snmpbulkwalk {mode}: {wall:.2f} s, {vbs} varbinds",
                      flush=True)

        a, a1 = res["agent"], res["agent_round1"]
        print(f"\nSNMP poll cycle: {devices} devices x {ifaces} interfaces = "
              f"{devices * ifaces} interfaces, {nsim} snmpsimd process(es), "
              f"{os.cpu_count()} CPUs, medians of {runs} runs")
        print(f"{'':34}{'wall s':>9}{'CPU s':>9}{'RSS MiB':>9}{'sim CPU s':>11}")
        print(f"{'netpulse-agent (rounds 2-3)':34}{med([x['wall_s'] for x in a]):9.2f}"
              f"{med([x['cpu_s'] for x in a]):9.3f}{max([x['rss_mib'] for x in a] or [0]):9.1f}"
              f"{med([x['sim_cpu_s'] for x in a]):11.2f}")
        print(f"{'netpulse-agent (round 1)':34}{med([x['wall_s'] for x in a1]):9.2f}"
              f"{med([x['cpu_s'] for x in a1]):9.3f}{'':9}{'':11}")
        print(f"{'  whole process / round':34}{'':9}{med([x['proc_cpu_s'] for x in a]):9.3f}")
        for mode, label in (("seq", "snmpbulkwalk sequential"), ("par", "snmpbulkwalk 32 parallel")):
            xs = res[mode]
            print(f"{label:34}{med([x['wall_s'] for x in xs]):9.2f}"
                  f"{med([x['cpu_s'] for x in xs]):9.3f}{'':9}"
                  f"{med([x['sim_cpu_s'] for x in xs]):11.2f}")
        print(f"agent RSS after a round (median): {med([x['anon_mib'] for x in a]):.1f} MiB "
              f"anonymous (heap, stacks, relocated library data) + "
              f"{med([x['file_mib'] for x in a]):.1f} MiB file-backed (library code and "
              f"data); most polls in flight: {max([x['in_flight'] for x in a] or [0])}")
        ifs = med([x["ifs"] for x in a])
        print(f"interfaces per agent round (median): {ifs:.0f}; failed polls in all runs: "
              f"{sum(x['failed'] for x in a1)}")
        sim_share = med([x["sim_cpu_s"] / x["wall_s"] for x in a if x["wall_s"] > 0])
        print(f"simulator CPU / agent cycle wall: {sim_share:.2f} of {nsim} process(es) -> "
              + ("the simulator is the bottleneck" if sim_share > 0.8 * nsim
                 else "the simulator is not saturated"))
    finally:
        for s in sims:
            s.terminate()
        for s in sims:
            try:
                s.wait(10)
            except subprocess.TimeoutExpired:
                s.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
