#!/usr/bin/env python3
"""Writes DEVICES snmpsim recordings (dev000.snmprec ...) of IFACES interfaces
each into DIR: the system scalars the poller reads, and the ifTable/ifXTable
columns it walks, with varied but valid values.

usage: bench_snmp_gen.py DIR DEVICES IFACES"""
import os
import random
import sys

IFT = "1.3.6.1.2.1.2.2.1."
IFX = "1.3.6.1.2.1.31.1.1.1."


def oid_key(line):
    return tuple(int(x) for x in line.split("|", 1)[0].split("."))


def main():
    out, devices, ifaces = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rnd = random.Random(4)
    os.makedirs(out, exist_ok=True)
    for d in range(devices):
        rows = [
            "1.3.6.1.2.1.1.1.0|4|bench switch %d" % d,
            "1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.9.1.2066",
            # snmpsim's numeric variation: sysUpTime advances 100 ticks a second
            # (a static one would read as a device restart at every poll).
            "1.3.6.1.2.1.1.3.0|67:numeric|rate=100,initial=%d" % rnd.randrange(1, 1 << 31),
            "1.3.6.1.2.1.1.5.0|4|sw-%03d" % d,
            "1.3.6.1.2.1.2.1.0|2|%d" % ifaces,
        ]
        for i in range(1, ifaces + 1):
            hin, hout = rnd.randrange(1 << 40), rnd.randrange(1 << 40)
            rows += [
                f"{IFT}1.{i}|2|{i}",
                f"{IFT}2.{i}|4|GigabitEthernet1/0/{i}",
                f"{IFT}3.{i}|2|6",
                f"{IFT}5.{i}|66|1000000000",
                f"{IFT}7.{i}|2|1",
                f"{IFT}8.{i}|2|{1 if i % 5 else 2}",
                f"{IFT}10.{i}|65|{hin % (1 << 32)}",
                f"{IFT}16.{i}|65|{hout % (1 << 32)}",
                f"{IFX}1.{i}|4|Gi1/0/{i}",
                f"{IFX}6.{i}|70|{hin}",
                f"{IFX}10.{i}|70|{hout}",
                f"{IFX}15.{i}|66|1000",
                f"{IFX}18.{i}|4|room {100 + i} wall jack",
                f"{IFX}19.{i}|67|0",
            ]
        rows.sort(key=oid_key)
        with open(os.path.join(out, "dev%03d.snmprec" % d), "w") as f:
            f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
