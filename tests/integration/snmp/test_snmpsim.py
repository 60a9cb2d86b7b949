#!/usr/bin/env python3
"""netpulse-agent --once against snmpsim serving every recording in
../shared/testdata/snmprec: each device's interface list, names, aliases,
descriptions, types, speeds, statuses, counters and sysUpTime must come out
exactly as recorded. Expected values are computed here from the .snmprec
files themselves.

usage: test_snmpsim.py AGENT SNMPREC_DIR"""
import glob
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

IFT = "1.3.6.1.2.1.2.2.1."
IFX = "1.3.6.1.2.1.31.1.1.1."
COLS = {  # column OID -> field
    IFT + "2": "descr", IFT + "3": "type", IFT + "5": "speed", IFT + "7": "admin",
    IFT + "8": "oper", IFT + "10": "in32", IFT + "16": "out32", IFX + "1": "name",
    IFX + "6": "hcin", IFX + "10": "hcout", IFX + "15": "high", IFX + "18": "alias",
    IFX + "19": "disc",
}
TAG_OK = {  # the SNMP type the poller accepts in each column
    "descr": "4", "name": "4", "alias": "4", "type": "2", "admin": "2", "oper": "2",
    "speed": "66", "high": "66", "in32": "65", "out32": "65", "hcin": "70", "hcout": "70",
    "disc": "67",
}
STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
          7: "lowerLayerDown"}


def text(tag, val):
    b = bytes.fromhex(val) if tag.endswith("x") else val.encode("latin-1")
    b = b.rstrip(b"\0")
    return "".join(chr(c) if 0x20 <= c < 0x7F else "?" for c in b)


def expected(path):
    rows = {}
    uptime = None
    with open(path, encoding="latin-1") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if not line:
                continue
            oid, tag, val = line.split("|", 2)
            if oid == "1.3.6.1.2.1.1.3.0":
                uptime = int(val)
                continue
            base, _, idx = oid.rpartition(".")
            field = COLS.get(base)
            if not field or not idx.isdigit() or int(idx) == 0:
                continue
            row = rows.setdefault(int(idx), {})
            if tag.rstrip("x") != TAG_OK[field]:
                continue  # wrong type: ignored by the poller, counted as a row though
            row[field] = text(tag, val) if TAG_OK[field] == "4" else int(val)
    out = {}
    for idx, r in rows.items():
        if "hcin" in r and "hcout" in r:
            bits, i, o = 64, r["hcin"], r["hcout"]
        elif "in32" in r and "out32" in r:
            bits, i, o = 32, r["in32"], r["out32"]
        else:
            bits, i, o = None, None, None

        def num(v):
            return v if v is None or v < 2**63 else str(v)

        speed = None
        if r.get("high"):
            speed = r["high"] * 1000000
        elif "speed" in r:
            speed = r["speed"] or None
        out[idx] = {
            "ifIndex": idx, "ifName": r.get("name", ""), "ifAlias": r.get("alias", ""),
            "ifDescr": r.get("descr", ""), "ifType": r.get("type"),
            "ifHighSpeed": r.get("high"), "speedBps": speed,
            "operStatus": STATUS.get(r.get("oper"), r.get("oper")),
            "adminStatus": STATUS.get(r.get("admin"), r.get("admin")),
            "counterBits": bits, "inOctets": num(i), "outOctets": num(o), "sysUpTime": uptime,
        }
    return out, uptime


def main():
    agent, recdir = sys.argv[1], sys.argv[2]
    fails = helpers.Failures("test_snmpsim")
    work = helpers.mkdtemp("np-snmpsim-")
    recs = sorted(glob.glob(os.path.join(recdir, "*.snmprec")))
    fails.check(len(recs) >= 8, f"recordings found: {len(recs)}")
    if os.geteuid() == 0:
        shutil.chown(work, "nobody", "nogroup")
    sim, port = helpers.start_snmpsim(
        work, [(os.path.basename(r)[:-len(".snmprec")], r) for r in recs])
    try:
        names = [os.path.basename(r)[:-len(".snmprec")] for r in recs]
        for n in names:
            fails.check(helpers.wait_snmp(port, n, 60), f"snmpsim answers community {n}")
        conf = ""
        for n in names:
            conf += (f"[snmp {n}]\nhost = 127.0.0.1\nport = {port}\ncommunity = {n}\n"
                     "include_loopback = yes\ntimeout = 3s\nretries = 2\n")
        rc, lines, err, elapsed = helpers.run_once(agent, conf, work)
        fails.eq(rc, 0, f"exit status (stderr: {err.strip()})")
        got = {}
        for l in lines:
            got.setdefault(l["target"], {})[l["ifIndex"]] = l
        for n, r in zip(names, recs):
            want, _ = expected(r)
            have = got.get(n, {})
            fails.eq(sorted(have), sorted(want), f"{n}: interface list")
            for idx in sorted(want):
                if idx not in have:
                    continue
                h = dict(have[idx])
                fails.check(h.pop("target") == n and h.pop("time", "").endswith("Z"),
                            f"{n}.{idx} target/time")
                for k, v in want[idx].items():
                    fails.eq(h.get(k, "<absent>"), v, f"{n} ifIndex {idx} {k}")
            print(f"{n}: {len(have)} interfaces")
        print(f"--once over {len(names)} simulated devices: {elapsed:.2f} s")
    finally:
        sim.terminate()
        try:
            sim.wait(10)
        except subprocess.TimeoutExpired:
            sim.kill()
        helpers.rmtree(work)
    return fails.done()


if __name__ == "__main__":
    sys.exit(main())
