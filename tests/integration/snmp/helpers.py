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


def start_snmpd(work, conf_text, community="public", wait_s=20):
    """Starts Debian's snmpd on a free loopback port with conf_text as its
    only configuration; returns (Popen, port). Stop it with stop_proc()."""
    port = free_udp_port()
    conf = os.path.join(work, "snmpd.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    env = dict(os.environ, SNMP_PERSISTENT_DIR=work, MIBS="")
    proc = subprocess.Popen(["snmpd", "-f", "-Lo", "-C", "-c", conf, "-p",
                             os.path.join(work, "snmpd.pid"), f"udp:127.0.0.1:{port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    if not wait_snmp(port, community, wait_s):
        stop_proc(proc)
        raise RuntimeError("snmpd did not answer")
    return proc, port


def start_snmpsim(work, recordings):
    """Starts snmpsimd on a free loopback port serving recordings, a list of
    (community, path to a .snmprec) pairs, from folders under work; returns
    (Popen, port). As root it runs as nobody. Stop it with stop_proc()."""
    data, cache = os.path.join(work, "sim-data"), os.path.join(work, "sim-cache")
    os.makedirs(data)
    os.makedirs(cache)
    for community, path in recordings:
        dst = os.path.join(data, community + ".snmprec")
        shutil.copy(path, dst)
        os.chmod(dst, 0o644)
    os.chmod(data, 0o755)
    port = free_udp_port()
    cmd = ["snmpsimd", f"--data-dir={data}", f"--agent-udpv4-endpoint=127.0.0.1:{port}",
           f"--cache-dir={cache}", "--logging-method=null"]
    if os.geteuid() == 0:
        shutil.chown(cache, "nobody", "nogroup")
        cmd += ["--process-user=nobody", "--process-group=nogroup"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), port


def stop_proc(proc, wait_s=10):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class AgentRun:
    """`netpulse-agent --polls N` running in the background; its JSON lines
    are collected by a thread so the test can act between polls."""

    def __init__(self, agent, conf_text, workdir, polls, interval, prefix=()):
        import queue
        import threading
        conf = os.path.join(workdir, "agent.conf")
        with open(conf, "w") as f:
            f.write("[agent]\nid = test-site\n" + conf_text)
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(list(prefix) + [agent, "-c", conf, "--polls", str(polls),
                                                     "--interval", interval],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.err = queue.SimpleQueue()

        def read_out():
            for line in self.proc.stdout:
                if line.strip():
                    obj = json.loads(line)
                    obj["_seen"] = time.monotonic()
                    with self.cond:
                        self.lines.append(obj)
                        self.cond.notify_all()

        def read_err():
            for line in self.proc.stderr:
                self.err.put(line)

        self.threads = [threading.Thread(target=read_out, daemon=True),
                        threading.Thread(target=read_err, daemon=True)]
        for t in self.threads:
            t.start()

    def wait_poll(self, poll, n_interfaces, timeout_s=15):
        """Waits until n_interfaces interface lines of poll `poll` arrived;
        returns them (events excluded)."""
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while True:
                got = [l for l in self.lines if l.get("poll") == poll and "event" not in l]
                if len(got) >= n_interfaces:
                    return got
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and len(got) < n_interfaces:
                    raise RuntimeError(f"poll {poll}: {len(got)} of {n_interfaces} lines")
                self.cond.wait(min(left, 0.2))

    def finish(self, timeout_s=30):
        rc = self.proc.wait(timeout_s)
        for t in self.threads:
            t.join(5)
        err = []
        while not self.err.empty():
            err.append(self.err.get())
        return rc, "".join(err)

    def kill(self):
        stop_proc(self.proc)
