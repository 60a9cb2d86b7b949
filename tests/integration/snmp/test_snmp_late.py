#!/usr/bin/env python3
"""A device that answers after the timeout: Debian's snmpd on a loopback port
behind two UDP proxies started by the test, which forward each request to
snmpd and hold its (valid) reply back:

  slow  holds replies for 40 % of the timeout: polled fine
  late  holds replies for timeout x tries + 300 ms, i.e. after the poll gave
        up; with polls 1 s apart the late replies to poll 1 arrive while
        poll 2 is waiting, and must not be taken for poll 2's answers

`netpulse-agent --polls 2` with a direct target, the slow one and the late
one: the late target is reported as a timeout in both polls, the others
deliver on time in both.

usage: test_snmp_late.py AGENT"""
import os
import select
import socket
import sys
import threading
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

TIMEOUT_MS = 400
RETRIES = 1
BUDGET_S = TIMEOUT_MS / 1000 * (RETRIES + 1)
INTERVAL_S = 1.0


class DelayProxy:
    """Forwards datagrams to 127.0.0.1:upstream and sends each reply back to
    the client delay_s after it came from upstream."""

    def __init__(self, upstream, delay_s):
        self.upstream = ("127.0.0.1", upstream)
        self.delay_s = delay_s
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.port = self.front.getsockname()[1]
        self.back = {}  # client address -> upstream socket
        self.pending = []  # (due, data, client)
        self.replayed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            socks = [self.front] + list(self.back.values())
            wait = 0.05
            if self.pending:
                wait = max(0.0, min(wait, min(p[0] for p in self.pending) - time.monotonic()))
            ready, _, _ = select.select(socks, [], [], wait)
            for s in ready:
                data, addr = s.recvfrom(65535)
                if s is self.front:
                    up = self.back.get(addr)
                    if up is None:
                        up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        up.connect(self.upstream)
                        self.back[addr] = up
                    up.send(data)
                else:
                    client = next(a for a, u in self.back.items() if u is s)
                    self.pending.append((time.monotonic() + self.delay_s, data, client))
            now = time.monotonic()
            due = [p for p in self.pending if p[0] <= now]
            self.pending = [p for p in self.pending if p[0] > now]
            for _, data, client in due:
                self.front.sendto(data, client)
                self.replayed += 1

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.front.close()
        for s in self.back.values():
            s.close()


def wall(iso):
    d = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    return d.replace(tzinfo=timezone.utc).timestamp()


def main():
    agent = sys.argv[1]
    fails = helpers.Failures("test_snmp_late")
    work = helpers.mkdtemp("np-snmplate-")
    snmpd = run = None
    proxies = []
    try:
        snmpd, port = helpers.start_snmpd(work, "rocommunity public 127.0.0.1\n")
        slow = DelayProxy(port, 0.4 * TIMEOUT_MS / 1000)
        late = DelayProxy(port, BUDGET_S + 0.3)
        proxies = [slow, late]
        common = (f"host = 127.0.0.1\ncommunity = public\ntimeout = {TIMEOUT_MS}ms\n"
                  f"retries = {RETRIES}\ninclude_loopback = yes\ninterfaces = lo\n")
        cfg = (f"[snmp direct]\nport = {port}\n{common}"
               f"[snmp slow]\nport = {slow.port}\n{common}"
               f"[snmp late]\nport = {late.port}\n{common}")
        t0 = time.time()
        run = helpers.AgentRun(agent, cfg, work, 2, f"{int(INTERVAL_S * 1000)}ms")
        rc, err = run.finish()
        elapsed = time.time() - t0
        # Let the last late replies go out (to an agent that has left).
        time.sleep(BUDGET_S + 0.4)
        fails.eq(rc, 1, "exit status with a failing target")
        lines = [l for l in run.lines if "event" not in l]
        for poll in (1, 2):
            got = {l["target"]: l for l in lines if l["poll"] == poll}
            fails.eq(sorted(got), ["direct", "slow"], f"poll {poll}: targets with output")
            start = t0 + (poll - 1) * INTERVAL_S
            for name in ("direct", "slow"):
                if name in got:
                    after = wall(got[name]["time"]) - start
                    fails.check(after < TIMEOUT_MS / 1000 + 0.4,
                                f"poll {poll} {name} answered {after:.2f} s after the round start")
            late_lines = [l for l in err.splitlines()
                          if "target=late " in l and "poll failed" in l]
            fails.check(len(late_lines) == 2 and all("err=timeout " in l for l in late_lines),
                        f"late: two err=timeout lines in stderr:\n{err}")
            fails.check(f"poll round={poll} targets=3 failed=1 " in err,
                        f"round {poll} summary in stderr:\n{err}")
        fails.check("target=direct " not in err and "target=slow " not in err,
                    f"no failure for direct/slow:\n{err}")
        fails.check(late.replayed >= 2, f"the late proxy replayed {late.replayed} replies")
        fails.check(elapsed < INTERVAL_S + BUDGET_S + 1.5, f"run took {elapsed:.2f} s")
        print(f"run {elapsed:.2f} s; late replies replayed {late.replayed}; stderr:\n{err}")
    except Exception as exc:  # noqa: BLE001 - report, clean up, fail
        fails.check(False, f"exception: {exc!r}")
    finally:
        if run:
            run.kill()
        for p in proxies:
            p.close()
        helpers.stop_proc(snmpd)
        helpers.rmtree(work)
    return fails.done()


if __name__ == "__main__":
    sys.exit(main())
