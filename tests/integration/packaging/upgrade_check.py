#!/usr/bin/env python3
"""Read-only looks at netpulse data for upgrade.sh.

  upgrade_check.py spool DIR               acked seq, then the seqs held and not acked
  upgrade_check.py db-dump DB OUT.json     user_version, tables, columns, rows (a copy
                                           of DB and its WAL is read: nothing is written
                                           beside DB)
  upgrade_check.py db-compare OLD NEW      every row of OLD still in NEW (by primary
                                           key; columns that never change compared too)
  upgrade_check.py tree DIR                path uid gid mode sha256 of DIR and everything in it

The spool layout is common/include/netpulse/spool.h's: segments seg-*.spool of
records (32-byte header, little-endian: magic "NPSR", version u16, flags u16,
length u32, seq u64, created_ms i64, crc32 u32) and a state file (acked seq u64
at offset 8)."""
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import sys
import tempfile

REC_MAGIC = 0x5253504E
HDR = 32

# Columns that change as the collector runs (last contact, latest status, the
# applied seq): compared by presence of the row only.
MUTABLE = {
    "last_seen_ms", "updated_ms", "seq", "applied_ms", "end_ms", "state", "oper_status",
    "admin_status", "speed_bps", "sys_name", "sys_descr", "sys_object_id", "detail", "target_ms",
    "lag_ms", "if_alias", "if_descr", "if_name", "if_index", "notified", "since_ms", "attempts",
    "next_ms", "sent_ms", "last_code", "last_error", "n_sites", "suppressed", "cause",
}


def spool(d):
    acked = 0
    try:
        with open(os.path.join(d, "state"), "rb") as f:
            acked = struct.unpack_from("<Q", f.read(), 8)[0]
    except FileNotFoundError:
        pass
    seqs = []
    for name in sorted(os.listdir(d)):
        if not (name.startswith("seg-") and name.endswith(".spool")):
            continue
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        off = 0
        while off + HDR <= len(data):
            magic, _ver, _flags, length, seq = struct.unpack_from("<IHHIQ", data, off)
            if magic != REC_MAGIC:
                break
            seqs.append(seq)
            off += HDR + length
    print(acked, *[s for s in seqs if s > acked])


def db_dump(path, out):
    tmp = tempfile.mkdtemp()
    try:
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                shutil.copyfile(path + suffix, os.path.join(tmp, "db" + suffix))
        con = sqlite3.connect(os.path.join(tmp, "db"))
        dump = {"user_version": con.execute("PRAGMA user_version").fetchone()[0], "tables": {}}
        for (name,) in con.execute(
                "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").fetchall():
            info = con.execute(f'PRAGMA table_info("{name}")').fetchall()
            cols = [c[1] for c in info]
            pk = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5] > 0] or cols
            rows = [[v.hex() if isinstance(v, bytes) else v for v in r]
                    for r in con.execute(f'SELECT * FROM "{name}"')]
            dump["tables"][name] = {"cols": cols, "pk": pk, "rows": rows}
        con.close()
    finally:
        shutil.rmtree(tmp)
    with open(out, "w") as f:
        json.dump(dump, f)


def db_compare(old_path, new_path):
    old = json.load(open(old_path))
    new = json.load(open(new_path))
    bad = 0
    for name, t in old["tables"].items():
        n = new["tables"].get(name)
        if n is None:
            print(f"table {name} is gone ({len(t['rows'])} rows)")
            bad += 1
            continue
        idx = [n["cols"].index(c) if c in n["cols"] else None for c in t["cols"]]
        if None in idx:
            print(f"table {name} lost columns {[c for c, i in zip(t['cols'], idx) if i is None]}")
            bad += 1
            continue
        key = lambda row, cols: tuple(row[cols.index(c)] for c in t["pk"])
        newrows = {key(r, n["cols"]): r for r in n["rows"]}
        for r in t["rows"]:
            m = newrows.get(key(r, t["cols"]))
            if m is None:
                print(f"{name}: row {dict(zip(t['cols'], r))} is gone")
                bad += 1
                continue
            for c, v, i in zip(t["cols"], r, idx):
                if c not in MUTABLE and m[i] != v:
                    print(f"{name}: {c} of {key(r, t['cols'])} changed: {v!r} -> {m[i]!r}")
                    bad += 1
        print(f"{name}: {len(t['rows'])} rows before, {len(n['rows'])} after")
    sys.exit(1 if bad else 0)


def tree(d):
    st = os.lstat(d)
    print(".", st.st_uid, st.st_gid, oct(st.st_mode & 0o7777), "-")
    for root, dirs, files in os.walk(d):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(root, name)
            st = os.lstat(p)
            h = "-"
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
            print(os.path.relpath(p, d), st.st_uid, st.st_gid, oct(st.st_mode & 0o7777), h)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"spool": spool, "db-dump": db_dump, "db-compare": db_compare, "tree": tree}[cmd](*args)
