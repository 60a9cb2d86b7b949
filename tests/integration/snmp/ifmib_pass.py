#!/usr/bin/env python3
"""snmpd pass_persist backend for the SNMP tests: serves sysDescr, sysObjectID,
sysUpTime, sysName, ifTable and ifXTable from a JSON state file that the test
rewrites (atomically, by rename) between polls, so counters, statuses and the
device uptime change exactly as the test wants.

State file:
  {"uptime": {"base_cs": N, "at": WALL_S},   # sysUpTime = base + 100 x (now - at), mod 2^32
   "sys": {"descr": "...", "name": "..."},
   "ifs": [{"index": 1, "descr": "...", "name": "...", "alias": "...", "type": 6,
            "speed": N, "high": N, "admin": 1, "oper": 1, "in32": N, "out32": N,
            "hcin": N, "hcout": N, "disc": N}, ...]}
A key left out of an interface leaves that column out (e.g. no hcin/hcout: a
device with 32-bit counters only).

usage (snmpd.conf): pass_persist -p 1 .1.3.6.1.2.1 /usr/bin/python3 ifmib_pass.py STATE"""
import json
import os
import sys
import time

IFT = (1, 3, 6, 1, 2, 1, 2, 2, 1)
IFX = (1, 3, 6, 1, 2, 1, 31, 1, 1, 1)
COLUMNS = [  # (column OID, state key, pass_persist type)
    (IFT + (1,), "index", "integer"), (IFT + (2,), "descr", "string"),
    (IFT + (3,), "type", "integer"), (IFT + (5,), "speed", "gauge"),
    (IFT + (7,), "admin", "integer"), (IFT + (8,), "oper", "integer"),
    (IFT + (10,), "in32", "counter"), (IFT + (16,), "out32", "counter"),
    (IFX + (1,), "name", "string"), (IFX + (6,), "hcin", "counter64"),
    (IFX + (10,), "hcout", "counter64"), (IFX + (15,), "high", "gauge"),
    (IFX + (18,), "alias", "string"), (IFX + (19,), "disc", "timeticks"),
]
UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)


class State:
    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.data = {}
        self.rows = []

    def load(self):
        try:
            st = os.stat(self.path)
        except OSError:
            return
        if st.st_mtime_ns == self.mtime:
            return
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            return  # half-written: keep the previous state
        self.mtime = st.st_mtime_ns
        self.data = data
        rows = [((1, 3, 6, 1, 2, 1, 1, 1, 0), "string", data.get("sys", {}).get("descr", "test")),
                ((1, 3, 6, 1, 2, 1, 1, 2, 0), "objectid", ".1.3.6.1.4.1.8072.3.2.10"),
                (UPTIME, "timeticks", None),
                ((1, 3, 6, 1, 2, 1, 1, 5, 0), "string", data.get("sys", {}).get("name", "test")),
                ((1, 3, 6, 1, 2, 1, 2, 1, 0), "integer", len(data.get("ifs", [])))]
        for col, key, typ in COLUMNS:
            for itf in data.get("ifs", []):
                if key in itf:
                    rows.append((col + (itf["index"],), typ, itf[key]))
        rows.sort(key=lambda r: r[0])
        self.rows = rows

    def value(self, row):
        oid, typ, val = row
        if oid == UPTIME:
            u = self.data.get("uptime", {})
            val = int(u.get("base_cs", 0) + (time.time() - u.get("at", time.time())) * 100)
            val %= 1 << 32
        return oid, typ, val


def parse(text):
    return tuple(int(x) for x in text.strip().strip(".").split(".") if x)


def main():
    state = State(sys.argv[1])
    out = sys.stdout
    while True:
        cmd = sys.stdin.readline()
        if not cmd:
            return
        cmd = cmd.strip()
        if cmd == "PING":
            out.write("PONG\n")
        elif cmd in ("get", "getnext"):
            want = parse(sys.stdin.readline())
            state.load()
            found = None
            for row in state.rows:
                if (cmd == "get" and row[0] == want) or (cmd == "getnext" and row[0] > want):
                    found = state.value(row)
                    break
            if found:
                oid, typ, val = found
                out.write(".%s\n%s\n%s\n" % (".".join(map(str, oid)), typ, val))
            else:
                out.write("NONE\n")
        elif cmd == "set":
            sys.stdin.readline()
            sys.stdin.readline()
            out.write("not-writable\n")
        else:
            out.write("NONE\n")
        out.flush()


if __name__ == "__main__":
    main()
