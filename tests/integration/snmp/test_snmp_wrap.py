#!/usr/bin/env python3
"""Counter wraps, device restarts, sysUpTime's own wrap and status events,
end to end: snmpd started by the test serves sysUpTime, ifTable and ifXTable
through a pass_persist script (ifmib_pass.py) from a state file this test
rewrites between the polls of one `netpulse-agent --polls 6` run.

  poll 1  first readings (no rate)
  poll 2  wrap32: ifInOctets 2^32-1000 -> 5000 (wrapped, 6000 octets)
          wrap64: ifHCInOctets 2^64-1000 -> 5000 (wrapped, 6000 octets)
          back32: 32-bit counter goes back 10^8 octets at 1 Gbps (went-back)
          steady: operStatus up -> down (event)
  poll 3  sysUpTime wrapped at 2^32 between polls 2 and 3: not a restart,
          every rate valid; disc: ifCounterDiscontinuityTime changed
          (discontinuity); steady: adminStatus up -> down (event)
  poll 4  steady rates (a restart right after the wrap would be ambiguous:
          uptime near zero either way)
  poll 5  device restart: sysUpTime back to zero, counters reset: no rate
  poll 6  rates again; steady: both statuses back up (two events)

Every valid rate must equal delta x 8 / interval; no line may carry a rate
above the interface speed (no spike); every event comes with the timestamp
of the poll that saw it, before that interface's line.

usage: test_snmp_wrap.py AGENT"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
INTERVAL_S = 2.0
POLLS = 6
W32 = 1 << 32
W64 = 1 << 64
GBPS = 1000

# Per interface: name -> list of (in, out) per poll.
COUNTERS = {
    "steady": [(10_000, 20_000), (260_000, 520_000), (510_000, 1_020_000),
               (760_000, 1_520_000), (1_000, 2_000), (251_000, 502_000)],
    "wrap32": [(W32 - 1000, W32 - 1000), (5000, 5000), (20_000, 20_000), (30_000, 30_000),
               (100, 100), (300, 300)],
    "wrap64": [(W64 - 1000, W64 - 1000), (5000, 5000), (20_000, 20_000), (30_000, 30_000),
               (100, 100), (300, 300)],
    "back32": [(1_000_000_000, 7), (900_000_000, 7), (900_001_000, 1007), (900_002_000, 2007),
               (100, 100), (300, 300)],
    "disc": [(50_000, 60_000), (60_000, 70_000), (1_000, 2_000), (2_000, 3_000), (100, 100),
             (300, 300)],
}
WIDTH = {"steady": 64, "wrap32": 32, "wrap64": 64, "back32": 32, "disc": 64}
# Status expected per poll (1-based index 0 unused).
EXPECT = {
    "steady": [None, "first-poll", "ok", "ok", "ok", "device-restart", "ok"],
    "wrap32": [None, "first-poll", "wrapped", "ok", "ok", "device-restart", "ok"],
    "wrap64": [None, "first-poll", "wrapped", "ok", "ok", "device-restart", "ok"],
    "back32": [None, "first-poll", "went-back", "ok", "ok", "device-restart", "ok"],
    "disc": [None, "first-poll", "ok", "discontinuity", "ok", "device-restart", "ok"],
}
# (oper, admin) of "steady" per poll.
STEADY_STATUS = [(1, 1), (2, 1), (2, 2), (2, 2), (2, 2), (1, 1)]


def state(poll, uptime):
    ifs = []
    for i, name in enumerate(COUNTERS, start=1):
        cin, cout = COUNTERS[name][poll - 1]
        itf = {"index": i, "descr": f"port {name}", "name": name, "alias": f"test {name}",
               "type": 6, "speed": GBPS * 1_000_000 if GBPS * 1_000_000 < W32 else W32 - 1,
               "admin": 1, "oper": 1}
        if WIDTH[name] == 64:
            itf.update(hcin=cin, hcout=cout, in32=cin % W32, out32=cout % W32, high=GBPS)
        else:
            itf.update(in32=cin, out32=cout)
        if name == "steady":
            itf["oper"], itf["admin"] = STEADY_STATUS[poll - 1]
        if name == "disc":
            itf["disc"] = 0 if poll < 3 else 12345
        ifs.append(itf)
    return {"uptime": uptime, "sys": {"name": "wrapdev", "descr": "pass_persist test device"},
            "ifs": ifs}


def write_state(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def main():
    agent = sys.argv[1]
    fails = helpers.Failures("test_snmp_wrap")
    work = helpers.mkdtemp("np-snmpwrap-")
    path = os.path.join(work, "state.json")
    # sysUpTime wraps 3 s after the agent starts: between poll 2 (~2 s) and
    # poll 3 (~4 s).
    t0 = time.time()
    write_state(path, state(1, {"base_cs": W32 - 300 - 150, "at": t0}))
    cmd = f"{sys.executable} {os.path.join(HERE, 'ifmib_pass.py')} {path}"
    conf = ("rocommunity public 127.0.0.1\n"
            f"pass_persist -p 1 .1.3.6.1.2.1.1.3 {cmd}\n"
            f"pass_persist -p 1 .1.3.6.1.2.1.2.2 {cmd}\n"
            f"pass_persist -p 1 .1.3.6.1.2.1.31.1.1 {cmd}\n")
    snmpd = run = None
    try:
        snmpd, port = helpers.start_snmpd(work, conf)
        # start_snmpd took some of the 1.5 s before the agent: rebase so the
        # wrap still falls 3 s after the agent starts.
        now = time.time()
        write_state(path, state(1, {"base_cs": W32 - 300, "at": now}))
        cfg = (f"[snmp wrapdev]\nhost = 127.0.0.1\nport = {port}\ncommunity = public\n"
               "timeout = 500ms\nretries = 1\n")
        run = helpers.AgentRun(agent, cfg, work, POLLS, f"{int(INTERVAL_S * 1000)}ms")
        polls = {}
        uptime = {"base_cs": W32 - 300, "at": now}
        for k in range(1, POLLS + 1):
            polls[k] = {l["ifName"]: l for l in run.wait_poll(k, len(COUNTERS))}
            if k == 4:
                # Device restart before poll 5: uptime from zero.
                uptime = {"base_cs": 0, "at": time.time()}
            if k < POLLS:
                write_state(path, state(k + 1, uptime))
        rc, err = run.finish()
        fails.eq(rc, 0, f"exit status (stderr: {err})")
        fails.eq(err.count("snmp: poll round="), POLLS, "one summary per round on stderr")

        up = {k: polls[k]["steady"]["sysUpTime"] for k in polls}
        fails.check(up[2] > W32 - 300 and up[3] < 1000,
                    f"sysUpTime wrapped between polls 2 and 3: {up}")
        fails.check(up[5] < up[4] < 1000, f"sysUpTime back after restart: {up}")

        for name in COUNTERS:
            for k in range(1, POLLS + 1):
                l = polls[k][name]
                where = f"poll {k} {name}"
                cin, cout = COUNTERS[name][k - 1]
                fails.eq(int(l["inOctets"]), cin, f"{where} inOctets")
                fails.eq(int(l["outOctets"]), cout, f"{where} outOctets")
                fails.eq(l["counterBits"], WIDTH[name], f"{where} counterBits")
                fails.eq(l["rateStatus"], EXPECT[name][k], f"{where} rateStatus")
                valid = EXPECT[name][k] in ("ok", "wrapped")
                fails.eq(l["rateValid"], valid, f"{where} rateValid")
                if not valid:
                    fails.check(l["inBps"] is None and l["outBps"] is None,
                                f"{where}: no rate without a valid delta")
                    continue
                ms = l["intervalMs"]
                fails.check(0.75 * INTERVAL_S * 1000 <= ms <= 1.25 * INTERVAL_S * 1000,
                            f"{where} intervalMs {ms}")
                mod = W32 if WIDTH[name] == 32 else W64
                pin, pout = COUNTERS[name][k - 2]
                for d, (now_v, prev_v), key in (("in", (cin, pin), "inBps"),
                                                ("out", (cout, pout), "outBps")):
                    delta = (now_v - prev_v) % mod
                    want = delta * 8000.0 / ms
                    fails.check(abs(l[key] - want) <= 1e-6 * want + 1e-9,
                                f"{where} {key} {l[key]} != {want} ({delta} octets / {ms} ms)")
                    fails.check(l[key] <= GBPS * 1e6 * 1.1, f"{where} {key} spike {l[key]}")

        # Events: exactly these four, at once, with their poll's timestamp.
        events = [l for l in run.lines if "event" in l]
        got = [(e["poll"], e["key"], e["event"], e["from"], e["to"]) for e in events]
        want = [(2, "steady", "operStatus", "up", "down"),
                (3, "steady", "adminStatus", "up", "down"),
                (6, "steady", "operStatus", "down", "up"),
                (6, "steady", "adminStatus", "down", "up")]
        fails.eq(got, want, "status events")
        for e in events:
            line = polls[e["poll"]]["steady"]
            fails.eq(e["time"], line["time"], f"event {e['event']} poll {e['poll']} timestamp")
            fails.check(run.lines.index(e) < run.lines.index(line),
                        f"event {e['event']} poll {e['poll']} before the interface line")
        print(f"polls at sysUpTime {up}; events {got}")
    except Exception as exc:  # noqa: BLE001 - report, clean up, fail
        fails.check(False, f"exception: {exc!r}")
    finally:
        if run:
            run.kill()
        helpers.stop_proc(snmpd)
        helpers.rmtree(work)
    return fails.done()


if __name__ == "__main__":
    sys.exit(main())
