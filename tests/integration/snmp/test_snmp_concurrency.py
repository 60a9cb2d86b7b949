#!/usr/bin/env python3
"""The poller's concurrency cap and its per-poll sessions.

1. snmpsim serves 30 copies of one recording and a bound UDP port never
   answers; with [agent] snmp_max_concurrent = 4, `--polls 2` must never have
   more than 4 polls in progress (the round summary's in_flight_max), must
   queue the rest, must poll every live device in every round, and the dead
   device (first in the queue) must hold only its own slot: every live
   device's reply arrives before the dead one's timeout ends.
2. snmpd with a v3 authPriv user, `--polls 3`: each poll opens and closes its
   own session, yet the engine is discovered once (discoveries=1 in round 1,
   0 after): the engine ID and time are kept across sessions.

usage: test_snmp_concurrency.py AGENT SNMPREC_DIR"""
import datetime
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

DEVICES = 30
CAP = 4
DEAD_TIMEOUT_S = 8
RECORDING = "routeros_rb750gr3.snmprec"


def rounds_of(err):
    return [dict(re.findall(r"(\w+)=(\d+)", l)) for l in err.splitlines()
            if l.startswith("snmp: poll round=")]


def wall_s(iso):
    return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def run(agent, work, conf, polls):
    path = os.path.join(work, "agent.conf")
    with open(path, "w") as f:
        f.write(conf)
    t_start = time.time()
    r = subprocess.run([agent, "-c", path, "--polls", str(polls), "--interval", "1ms"],
                       capture_output=True, text=True, timeout=120)
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    return r.returncode, lines, r.stderr, t_start


def cap_part(agent, recdir, work, fails):
    names = [f"dev{i:02d}" for i in range(DEVICES)]
    sim, port = helpers.start_snmpsim(work, [(n, os.path.join(recdir, RECORDING)) for n in names])
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        fails.check(helpers.wait_snmp(port, names[0], 60), "snmpsim answers")
        conf = (f"[agent]\nid = test-site\nsnmp_max_concurrent = {CAP}\n"
                f"[snmp dead]\nhost = 127.0.0.1\nport = {silent.getsockname()[1]}\n"
                f"community = public\ntimeout = {DEAD_TIMEOUT_S}s\nretries = 0\n")
        for n in names:
            conf += (f"[snmp {n}]\nhost = 127.0.0.1\nport = {port}\ncommunity = {n}\n"
                     "timeout = 3s\nretries = 1\n")
        rc, lines, err, t_start = run(agent, work, conf, 2)
        fails.eq(rc, 1, "exit status with a dead target")
        rounds = rounds_of(err)
        fails.eq(len(rounds), 2, f"round summaries in stderr:\n{err}")
        for r in rounds:
            k = r.get("round")
            fails.eq(r.get("max_concurrent"), str(CAP), f"round {k} cap")
            fails.eq(r.get("in_flight_max"), str(CAP), f"round {k} most polls in flight")
            fails.check(int(r.get("queued_max", 0)) > DEVICES - CAP,
                        f"round {k} queued {r.get('queued_max')}")
            fails.eq(r.get("targets"), str(DEVICES + 1), f"round {k} targets done")
            fails.eq(r.get("failed"), "1", f"round {k} failed targets")
        fails.eq(len([l for l in err.splitlines() if "target=dead " in l and "err=timeout" in l]),
                 2, f"dead target times out each round:\n{err}")
        # Rounds follow each other at once: round 2 starts when round 1 ends.
        starts = [t_start, t_start + int(rounds[0].get("wall_ms", 0)) / 1000 if rounds else 0]
        for poll in (1, 2):
            got = [l for l in lines if l.get("poll") == poll and "event" not in l]
            per = {}
            for l in got:
                per.setdefault(l["target"], []).append(l)
            fails.eq(sorted(per), names, f"poll {poll}: every live device delivered")
            counts = {len(v) for v in per.values()}
            fails.check(len(counts) == 1 and counts != {0},
                        f"poll {poll}: same interface count everywhere: {counts}")
            if not got:
                continue
            # The dead device went first and holds one slot for its timeout;
            # the three others carry all live devices meanwhile.
            last = max(wall_s(l["time"]) for l in got) - starts[poll - 1]
            fails.check(last < DEAD_TIMEOUT_S,
                        f"poll {poll}: last live device answered {last:.2f} s into the round, "
                        f"not within the dead device's {DEAD_TIMEOUT_S} s timeout")
            print(f"poll {poll}: {len(per)} live devices within {last:.2f} s")
        print(err.strip())
    finally:
        helpers.stop_proc(sim)
        silent.close()


def v3_part(agent, work, fails):
    v3dir = os.path.join(work, "v3")
    os.mkdir(v3dir)
    snmpd, port = helpers.start_snmpd(
        v3dir, "rocommunity public 127.0.0.1\n"
        "createUser npuser SHA-256 authpass-np1 AES-128 privpass-np1\nrouser npuser priv\n")
    try:
        conf = ("[agent]\nid = test-site\n"
                f"[snmp v3]\nhost = 127.0.0.1\nport = {port}\nversion = 3\nuser = npuser\n"
                "auth_protocol = SHA-256\nauth_password = authpass-np1\n"
                "priv_protocol = AES-128\npriv_password = privpass-np1\n"
                "include_loopback = yes\ninterfaces = lo\ntimeout = 2s\nretries = 1\n")
        rc, lines, err, _ = run(agent, v3dir, conf, 3)
        fails.eq(rc, 0, f"v3 exit status (stderr: {err.strip()})")
        for poll in (1, 2, 3):
            fails.eq([l["ifName"] for l in lines if l.get("poll") == poll], ["lo"],
                     f"v3 poll {poll} delivers lo")
        fails.eq([r.get("discoveries") for r in rounds_of(err)], ["1", "0", "0"],
                 f"v3 engine discoveries per round:\n{err}")
    finally:
        helpers.stop_proc(snmpd)


def main():
    agent, recdir = sys.argv[1], sys.argv[2]
    fails = helpers.Failures("test_snmp_concurrency")
    work = helpers.mkdtemp("np-snmpconc-")
    try:
        cap_part(agent, recdir, work, fails)
        v3_part(agent, work, fails)
    finally:
        helpers.rmtree(work)
    return fails.done()


if __name__ == "__main__":
    sys.exit(main())
