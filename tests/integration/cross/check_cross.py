#!/usr/bin/env python3
"""The cross-built agent under qemu-user against the native agent, same inputs:

- `--pcap-file` on every capture in PCAP_DIR, with a config without [pcap]
  and one with local prefixes, hashed addresses (HMAC) and 50 top entries:
  the JSON summaries must be identical (they carry no wall-clock field; the
  start/end times come from the capture).
- `--once` against an snmpsim serving iosxe.snmprec (static values, 64-bit
  counters past 2^32): identical lines apart from `time`.
- `--once` against Debian's snmpd on a loopback port, v2c and v3 authPriv
  (SHA-256/AES-128, so the arm64 OpenSSL and net-snmp USM do real work), run
  between two native polls: identical interface lists and descriptions, and
  counters and sysUpTime between the native values read before and after.

usage: check_cross.py --native AGENT --cross AGENT --emulator "qemu-aarch64 -L /"
                      --pcap-dir DIR --snmprec FILE --work DIR"""
import argparse
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "snmp"))
import helpers  # noqa: E402

PCAP_CONFIGS = {
    "plain": "",
    "hashed": ("[pcap wan]\ninterface = lo\n"
               "local_prefixes = 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7, "
               "2001:db8::/32\nprivacy = hash\nprivacy_secret = cross-check-secret-0412\n"
               "top_n = 50\n"),
}
SNMPD_CONF = ("rocommunity public 127.0.0.1\n"
              "createUser npuser SHA-256 authpass-np1 AES-128 privpass-np1\n"
              "rouser npuser priv\n")
# Fields of an --once line that move between two polls of a live snmpd.
LIVE = ("inOctets", "outOctets", "sysUpTime", "time")


def first_difference(a, b, path="$"):
    """Where two JSON values first differ, as a path, or None."""
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'native' if k in a else 'cross'}"
            d = first_difference(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} != {len(b)} entries"
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


def write_conf(work, name, text):
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write("[agent]\nid = cross-test\n" + text)
    return path


def run(cmd, timeout_s=300):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    return r.returncode, r.stdout, r.stderr


def check_pcaps(args, emulator, fails):
    pcaps = sorted(glob.glob(os.path.join(args.pcap_dir, "*.pcap*")))
    fails.check(len(pcaps) >= 5, f"captures found in {args.pcap_dir}: {len(pcaps)}")
    for cname, text in PCAP_CONFIGS.items():
        conf = write_conf(args.work, f"pcap-{cname}.conf", text)
        for p in pcaps:
            name = f"{os.path.basename(p)} ({cname})"
            out = []
            for cmd in ([args.native], emulator + [args.cross]):
                rc, stdout, stderr = run(cmd + ["-c", conf, "--pcap-file", p])
                fails.eq(rc, 0, f"{name}: {cmd[0]} exit status (stderr: {stderr.strip()})")
                out.append(json.loads(stdout) if rc == 0 else None)
            if None in out:
                continue
            fails.check(out[0].get("packets", 0) > 0, f"{name}: packets counted")
            d = first_difference(out[0], out[1])
            fails.check(d is None, f"{name}: native and arm64 summaries differ at {d}")
    print(f"pcap: {len(pcaps)} captures x {len(PCAP_CONFIGS)} configs compared")


def once(cmd, conf, fails, what):
    rc, stdout, stderr = run(cmd + ["-c", conf, "--once"], 120)
    fails.eq(rc, 0, f"{what}: exit status (stderr: {stderr.strip()})")
    lines = [json.loads(l) for l in stdout.splitlines() if l.strip()]
    return {(l["target"], l["ifIndex"]): l for l in lines}


def check_snmpsim(args, emulator, fails):
    community = os.path.basename(args.snmprec)[:-len(".snmprec")]
    proc, port = helpers.start_snmpsim(args.work, [(community, args.snmprec)])
    try:
        if not helpers.wait_snmp(port, community, 60):
            fails.check(False, "snmpsim answers")
            return
        conf = write_conf(args.work, "snmpsim.conf",
                          f"[snmp sim]\nhost = 127.0.0.1\nport = {port}\ncommunity = {community}\n"
                          "include_loopback = yes\ntimeout = 3s\nretries = 2\n")
        native = once([args.native], conf, fails, "snmpsim native")
        cross = once(emulator + [args.cross], conf, fails, "snmpsim arm64")
        fails.check(len(native) >= 10, f"snmpsim: interfaces polled: {len(native)}")
        fails.eq(sorted(cross), sorted(native), "snmpsim: interface list")
        big = 0
        for key in sorted(set(native) & set(cross)):
            n, c = dict(native[key]), dict(cross[key])
            fails.check(n.pop("time", "").endswith("Z") and c.pop("time", "").endswith("Z"),
                        f"snmpsim {key}: time")
            d = first_difference(n, c)
            fails.check(d is None, f"snmpsim {key}: native and arm64 differ at {d}")
            big += n.get("inOctets") is not None and n["inOctets"] >= 1 << 32
        fails.check(big > 0, "snmpsim: some counter past 2^32 compared")
        print(f"snmpsim: {len(native)} interfaces compared, {big} with counters past 2^32")
    finally:
        helpers.stop_proc(proc)


def check_snmpd(args, emulator, fails):
    work = os.path.join(args.work, "snmpd")
    os.makedirs(work)
    proc, port = helpers.start_snmpd(work, SNMPD_CONF)
    try:
        common = f"host = 127.0.0.1\nport = {port}\ninclude_loopback = yes\ntimeout = 3s\n"
        conf = write_conf(args.work, "snmpd.conf",
                          f"[snmp v2]\n{common}community = public\n"
                          f"[snmp v3]\n{common}version = 3\nuser = npuser\n"
                          "auth_protocol = SHA-256\nauth_password = authpass-np1\n"
                          "priv_protocol = AES-128\npriv_password = privpass-np1\n")
        before = once([args.native], conf, fails, "snmpd native before")
        cross = once(emulator + [args.cross], conf, fails, "snmpd arm64")
        after = once([args.native], conf, fails, "snmpd native after")
        fails.check(any(k[0] == "v3" for k in cross), "snmpd: v3 authPriv lines")
        fails.eq(sorted(cross), sorted(before), "snmpd: interface list")
        for key in sorted(set(before) & set(cross) & set(after)):
            b, c, a = before[key], cross[key], after[key]
            for f in set(b) | set(c):
                if f not in LIVE:
                    fails.eq(c.get(f, "<absent>"), b.get(f, "<absent>"), f"snmpd {key} {f}")
            for f in LIVE[:3]:
                lo, v, hi = b.get(f), c.get(f), a.get(f)
                fails.check(None not in (lo, v, hi) and lo <= v <= hi,
                            f"snmpd {key} {f}: arm64 {v} not between native {lo} and {hi}")
        print(f"snmpd: {len(cross)} interface lines (v2c and v3 authPriv) compared")
    finally:
        helpers.stop_proc(proc)


def main():
    ap = argparse.ArgumentParser()
    for a in ("native", "cross", "emulator", "pcap-dir", "snmprec", "work"):
        ap.add_argument(f"--{a}", required=True)
    args = ap.parse_args()
    emulator = shlex.split(args.emulator)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    os.chmod(args.work, 0o755)
    fails = helpers.Failures("check_cross")
    check_pcaps(args, emulator, fails)
    check_snmpsim(args, emulator, fails)
    check_snmpd(args, emulator, fails)
    return fails.done()


if __name__ == "__main__":
    sys.exit(main())
