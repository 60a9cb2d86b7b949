#!/usr/bin/env python3
"""Synthetic leap year 2024 for the report test, known exactly.

Writes, under DIR: sites.csv, the uplink RRD of each school (through
`rrdtool create/update`, the layout of collector/rrd_store.c at a 300 s step),
events.sql (uplink_down outages as ingest records them, plus the devices and
interfaces rows that name each uplink), and expected.json with the figures
computed here from the same values (95th percentile by the classic method,
uptime to the second).

    make_data.py DIR
"""
import json
import math
import os
import subprocess
import sys

Y0 = 1704067200  # 2024-01-01T00:00:00Z
Y1 = 1735689600  # 2025-01-01T00:00:00Z
JUL = 1719792000  # 2024-07-01
STEP = 300
DAY = 86400


def level(t):
    """Diurnal and weekly pattern, 0..1 of the site's scale."""
    wd = ((t // DAY) + 3) % 7  # Monday 0
    hour = t % DAY // 3600
    minute = t % 3600 // 60
    if wd < 5 and 8 <= hour < 16:
        v = 0.40 + 0.01 * (hour - 8) + 0.0001 * minute
        if wd == 1 and hour == 10:
            v = 0.70 + 0.0002 * minute
        return v
    return 0.05 + 0.001 * hour


SITES = [
    # id, name, type, circuit now, baseline rate, baseline year
    ("elem-a", "Alder Elementary", "elementary", 1000e6, 100e6, 2021),
    ("high-b", "Birch High", "high", 500e6, 100e6, 2020),
    ("elem-c", "Cedar Elementary", "elementary", 200e6, None, None),
]


def scale(site, t):
    if site == "elem-a":  # circuit upgrade 100 -> 1000 Mbps on July 1
        return 60e6 if t < JUL else 600e6
    if site == "high-b":  # growing 5 % a month
        return 150e6 * math.pow(1.05, (t - Y0) / (30.4375 * DAY))
    return 80e6


def has_data(site, t):
    if site == "elem-c":
        return t >= JUL  # half a year of data
    if site == "high-b":  # a known 2-day hole in March
        return not (1709251200 <= t < 1709251200 + 2 * DAY)
    return True


def value(site, t):
    """The 5-minute average in bps of the row covering [t, t + 300)."""
    return round(scale(site, t) * level(t), 3)


# Outages (start, end) in seconds, recorded as uplink_down events.
OUTAGES = {
    "elem-a": [(1706783400, 1706785230),  # 2024-02-01 10:30:00 + 30 min 30 s
               (1714554000, 1714561200),  # 2024-05-01 09:00-11:00, half in maintenance
               (1727740800, 1727740917)],  # 2024-10-01 00:00:00 + 117 s
    "high-b": [(1705312800 + k * 7 * DAY, 1705312800 + k * 7 * DAY + 5400) for k in range(30)],
    "elem-c": [(1722470400, 1722470400 + 601)],  # 2024-08-01, 601 s
}
# Maintenance windows declared through the CLI (start, end) in seconds.
MAINT = {"elem-a": [(1714557600, 1714564800)]}  # 2024-05-01 10:00-12:00


def p95(vals):
    v = sorted(vals)
    if not v:
        return None
    return v[int(math.ceil(0.95 * len(v) - 1e-9)) - 1]


def clip_union(ivs, lo, hi):
    out = []
    for s, e in sorted((max(s, lo), min(e, hi)) for s, e in ivs):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out


def measure(ivs):
    return sum(e - s for s, e in ivs)


def minus(a, b):
    """Union a minus union b (both merged lists)."""
    res = []
    for s, e in a:
        cur = s
        for bs, be in b:
            if be <= cur or bs >= e:
                continue
            if bs > cur:
                res.append([cur, bs])
            cur = max(cur, be)
        if cur < e:
            res.append([cur, e])
    return res


def main():
    d = sys.argv[1]
    rrd_dir = os.path.join(d, "data", "rrd")
    with open(os.path.join(d, "sites.csv"), "w") as f:
        f.write("id,name,school_type,circuit_rate,baseline_rate,baseline_year,contacts\n")
        for sid, name, typ, rate, base, by in SITES:
            f.write("%s,%s,%s,%dMbps,%s,%s,it@example.org\n" % (
                sid, name, typ, rate / 1e6, "%dMbps" % (base / 1e6) if base else "",
                by or ""))
    expected = {}
    sql = ["BEGIN;"]
    for sid, name, typ, rate, base, by in SITES:
        sdir = os.path.join(rrd_dir, sid)
        os.makedirs(sdir, exist_ok=True)
        path = os.path.join(sdir, "if+edge+wan0.rrd")
        rows = (Y1 - Y0) // STEP + 10
        subprocess.run(["rrdtool", "create", path, "--step", str(STEP), "--start", str(Y0),
                        "DS:in_bps:GAUGE:600:0:U", "DS:out_bps:GAUGE:600:0:U",
                        "DS:oper:GAUGE:600:0:1",
                        "RRA:AVERAGE:0.5:1:%d" % rows, "RRA:MAX:0.5:1:%d" % rows,
                        "RRA:AVERAGE:0.5:12:%d" % (rows // 12 + 10),
                        "RRA:AVERAGE:0.5:288:%d" % 400], check=True)
        ins, outs, upd = [], [], []
        gap = False
        for t in range(Y0, Y1, STEP):
            if not has_data(sid, t):
                gap = True
                continue
            if gap and t > Y0:
                # A GAUGE value covers the time since the previous update:
                # after a gap, mark its end unknown first, so the row
                # [t, t + 300) keeps its value (as the agent's rates do).
                upd.append("%d:U:U:U" % t)
            gap = False
            vi = value(sid, t)
            vo = round(vi / 4, 3)
            ins.append(vi)
            outs.append(vo)
            # RRD stamps a row at its end: the update at t + 300 covers [t, t + 300).
            upd.append("%d:%r:%r:1" % (t + STEP, vi, vo))
        for k in range(0, len(upd), 4000):
            subprocess.run(["rrdtool", "update", path] + upd[k:k + 4000], check=True)
        # Uptime over the year, to the second: no data where the RRD has no
        # rows, maintenance first, outages are evidence (down) even there.
        lo, hi = Y0, Y1
        maint = clip_union(MAINT.get(sid, []), lo, hi)
        outs_u = clip_union(OUTAGES[sid], lo, hi)
        nodata = []
        t = Y0
        while t < Y1:
            if not has_data(sid, t):
                s = t
                while t < Y1 and not has_data(sid, t):
                    t += STEP
                nodata.append([s, t])
            else:
                t += STEP
        down = minus(outs_u, maint)
        nd = minus(minus(clip_union(nodata, lo, hi), maint), outs_u)
        period = hi - lo
        measured = period - measure(maint) - measure(nd)
        up = measured - measure(down)
        pin, pout = p95(ins), p95(outs)
        expected[sid] = {
            "period_ms": period * 1000, "maintenance_ms": measure(maint) * 1000,
            "no_data_ms": measure(nd) * 1000, "down_ms": measure(down) * 1000,
            "measured_ms": measured * 1000, "up_ms": up * 1000,
            "met": up * 1000000 >= measured * 995000,
            "p95_in_bps": pin, "p95_out_bps": pout,
            "max_in_bps": max(ins), "known": len(ins), "name": name,
        }
        sql.append("INSERT INTO devices (site_id, device, first_seen_ms, last_seen_ms) VALUES "
                   "('%s', 'edge', %d, %d);" % (sid, Y0 * 1000, Y1 * 1000))
        sql.append("INSERT INTO interfaces (site_id, device, iface, if_name, if_index, if_alias,"
                   " if_descr, speed_bps, oper_status, admin_status, first_seen_ms, last_seen_ms)"
                   " VALUES ('%s', 'edge', 'wan0', 'wan0', 1, 'uplink to district', 'wan0', %d,"
                   " 1, 1, %d, %d);" % (sid, int(rate), Y0 * 1000, Y1 * 1000))
        sql.append("INSERT INTO interfaces (site_id, device, iface, if_name, if_index, if_alias,"
                   " if_descr, speed_bps, oper_status, admin_status, first_seen_ms, last_seen_ms)"
                   " VALUES ('%s', 'edge', 'lan0', 'lan0', 2, 'classrooms', 'lan0', 10000000000,"
                   " 1, 1, %d, %d);" % (sid, Y0 * 1000, Y1 * 1000))
        for s, e in OUTAGES[sid]:
            sql.append("INSERT INTO events (site_id, type, start_ms, end_ms, state, agent_id)"
                       " VALUES ('%s', 'uplink_down', %d, %d, 'closed', '%s');"
                       % (sid, s * 1000, e * 1000, sid))
    sql.append("COMMIT;")
    with open(os.path.join(d, "events.sql"), "w") as f:
        f.write("\n".join(sql) + "\n")
    with open(os.path.join(d, "maint.txt"), "w") as f:
        for sid, ivs in MAINT.items():
            for s, e in ivs:
                f.write("%s @%d @%d\n" % (sid, s, e))
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)


if __name__ == "__main__":
    main()
