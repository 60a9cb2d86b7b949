#!/usr/bin/env python3
"""netpulse uptime / capacity / report end to end on a synthetic leap year.

make_data.py writes RRD files (rrdtool) and outage events; the inventory,
maintenance windows and circuit upgrades go in through the netpulse CLI. The
figures of `netpulse uptime/capacity --json` must equal the ones computed by
make_data.py from the same values (uptime to the millisecond, 95th percentile
exactly); the HTML report is printed to PDF by headless Chromium and each page
checked with pdftotext: the summary first, then exactly one school per page,
its figures equal to `netpulse capacity --json`, its graph present.

The same figures through the collector's API (/api/v1/sites/{id}/uptime,
/capacity, /api/v1/district/summary) from the real daemon on loopback.

    check_report.py PATH/TO/netpulse PATH/TO/netpulse-collector
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
fails = []
# [targets]: high schools get their own uptime target (uptime_high). Birch
# High's 99.485 % misses the district's 99.5 % but meets 99.4 %.
TARGETS = "[targets]\nuptime = 99.5%\nuptime_high = 99.4%\n"
TARGET_PPM = {"elem-a": 995000, "high-b": 994000, "elem-c": 995000}


def fail(msg):
    print("FAIL:", msg, file=sys.stderr)
    fails.append(msg)


def check_eq(what, got, want):
    if got != want:
        fail("%s: got %r, want %r" % (what, got, want))


def run(cmd, want=0, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, **kw)
    if p.returncode != want:
        fail("%s exited %d, want %d: %s" % (" ".join(cmd), p.returncode, want, p.stderr))
    return p


def main():
    np_bin, collector = sys.argv[1], sys.argv[2]
    tmp = tempfile.mkdtemp(prefix="np_report.")
    try:
        up, cap = body(np_bin, tmp)
        if up:
            api(collector, tmp, up, cap, np_bin)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if fails:
        print("%d failure(s)" % len(fails), file=sys.stderr)
        sys.exit(1)
    print("report: all checks passed")


def body(np_bin, tmp):
    subprocess.run([sys.executable, os.path.join(HERE, "make_data.py"), tmp], check=True)
    conf = os.path.join(tmp, "collector.conf")
    with open(conf, "w") as f:
        f.write("[collector]\nlisten = 127.0.0.1:8443\nplain_http = yes\ndata_dir = %s/data\n"
                % tmp + TARGETS)
    NP = [np_bin, "-c", conf]
    run(NP + ["site", "import", os.path.join(tmp, "sites.csv")])
    for sid in ("elem-a", "high-b", "elem-c"):  # as in a district: every school has an agent
        run(NP + ["agent", "enrol", sid])
    # What ingest would have recorded: the uplink interfaces and the outages.
    run(["sqlite3", os.path.join(tmp, "data", "state.db")],
        stdin=open(os.path.join(tmp, "events.sql")))
    for line in open(os.path.join(tmp, "maint.txt")):
        site, a, b = line.split()
        run(NP + ["maintenance", "add", site, a, b, "router firmware"])
    # A window added and deleted again must not count.
    wid = run(NP + ["maintenance", "add", "elem-a", "2024-03-01", "2024-03-02", "oops"]).stdout
    run(NP + ["maintenance", "delete", wid.strip()])
    run(NP + ["maintenance", "delete", wid.strip()], want=1)
    run(NP + ["maintenance", "add", "nosuch", "2024-03-01", "2024-03-02", "x"], want=1)
    run(NP + ["maintenance", "add", "elem-a", "2024-03-02", "2024-03-01", "x"], want=2)
    lst = run(NP + ["maintenance", "list", "elem-a"]).stdout
    if "router firmware" not in lst or "oops" in lst:
        fail("maintenance list: %s" % lst)
    # The mid-year circuit upgrade of elem-a.
    run(NP + ["circuit", "set", "elem-a", "2024-01-01", "100Mbps"])
    run(NP + ["circuit", "set", "elem-a", "2024-07-01", "1Gbps"])
    run(NP + ["uptime", "--year", "2024", "--month", "2024-01"], want=2)
    run(NP + ["uptime", "--from", "2024-02-01"], want=2)
    run(NP + ["uptime", "--site", "nosuch", "--year", "2024"], want=2)

    exp = json.load(open(os.path.join(tmp, "expected.json")))
    up = json.loads(run(NP + ["uptime", "--year", "2024", "--json"]).stdout)
    cap = json.loads(run(NP + ["capacity", "--year", "2024", "--json"]).stdout)
    up = {o["site"]: o for o in up}
    cap = {o["site"]: o for o in cap}
    check_eq("sites", sorted(up), sorted(exp))
    for sid, e in exp.items():
        u = up[sid]["ms"]
        for k in ("period", "maintenance", "no_data", "down", "measured", "up"):
            check_eq("%s uptime %s" % (sid, k), u[k], e[k + "_ms"])
        ppm = TARGET_PPM[sid]
        check_eq("%s target" % sid, up[sid]["target_percent"], ppm / 10000)
        check_eq("%s met" % sid, up[sid]["met"], e["up_ms"] * 1000000 >= e["measured_ms"] * ppm)
        c = cap[sid]
        check_eq("%s p95 in" % sid, c["in"]["p95_bps"], e["p95_in_bps"])
        check_eq("%s p95 out" % sid, c["out"]["p95_bps"], e["p95_out_bps"])
        check_eq("%s max in" % sid, c["in"]["max_bps"], e["max_in_bps"])
        check_eq("%s known" % sid, c["in"]["known"], e["known"])
        check_eq("%s uplink" % sid, c["uplink"], {"device": "edge", "iface": "wan0"})
    # The per-type target decides: missed at 99.5 %, met at high schools' 99.4 %.
    check_eq("high-b met at 99.5 %", exp["high-b"]["met"], False)
    check_eq("high-b met at 99.4 %", up["high-b"]["met"], True)
    # The upgrade: utilisation against the rate in force (about the same
    # level before and after), not against today's 1 Gbps.
    a = cap["elem-a"]
    check_eq("elem-a rate changes", a["rate_bps"]["changes"], 1)
    check_eq("elem-a first rate", a["rate_bps"]["first"], 100000000)
    if not 0.25 < a["in"]["util_p95"] < 0.30:
        fail("elem-a util_p95 %r" % a["in"]["util_p95"])
    check_eq("elem-a busiest", a["busiest_hours"][0]["hour"], "Tue 10:00")
    # Half a year of data: the first six months labelled missing, not zero.
    c = cap["elem-c"]
    for m in c["months"][:6]:
        if m["p95_in_bps"] is not None or m["known_in"] != 0:
            fail("elem-c %s not labelled missing: %r" % (m["month"], m))
    check_eq("elem-c months", len(c["months"]), 12)
    if c["growth"]["provisioned"] is not None:
        fail("elem-c has no baseline: growth must be null")
    # Growth of the high school: +400 % since 2020, behind the +900 % path.
    g = cap["high-b"]["growth"]["provisioned"]
    check_eq("high-b on track", g["on_track"], False)
    if abs(g["needed_yearly"] - 1.0) > 1e-9:
        fail("high-b needed_yearly %r" % g["needed_yearly"])

    # CSV and JSON reports.
    run(NP + ["report", "--year", "2024", "--format", "json", "-o", tmp + "/r.json"])
    rj = json.load(open(tmp + "/r.json"))
    check_eq("json report schools", rj["summary"]["schools"], 3)
    for s in rj["sites"]:
        check_eq("json report p95 %s" % s["capacity"]["site"], s["capacity"]["in"]["p95_bps"],
                 cap[s["capacity"]["site"]]["in"]["p95_bps"])
    run(NP + ["report", "--year", "2024", "--format", "csv", "-o", tmp + "/r.csv"])
    rows = open(tmp + "/r.csv", newline="").read().strip().split("\r\n")
    check_eq("csv rows", len(rows), 4)
    run(NP + ["report", "--year", "2024", "--format", "pdf", "-o", tmp + "/r.x"], want=2)

    # HTML -> PDF with headless Chromium, pages checked with pdftotext.
    html = tmp + "/report.html"
    run(NP + ["report", "--year", "2024", "--format", "html", "-o", html])
    text = open(html).read()
    check_eq("embedded graphs", text.count("data:image/png;base64,"), 3)
    if "http://" in text or "https://" in text or "<link" in text:
        fail("the HTML is not self-contained")
    pdf = tmp + "/report.pdf"
    prof = tempfile.mkdtemp(prefix="np_chromium.")
    try:
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", "--no-first-run", "--user-data-dir=" + prof,
                        "--no-pdf-header-footer", "--print-to-pdf=" + pdf, "file://" + html],
                       capture_output=True, timeout=60)
    finally:
        shutil.rmtree(prof, ignore_errors=True)
    if not os.path.exists(pdf):
        fail("chromium wrote no PDF")
        return up, cap
    info = run(["pdfinfo", pdf]).stdout
    pages = int([l for l in info.splitlines() if l.startswith("Pages:")][0].split()[1])
    check_eq("pages (summary + one per school)", pages, 4)
    page = [run(["pdftotext", "-f", str(p), "-l", str(p), pdf, "-"]).stdout
            for p in range(1, pages + 1)]
    if "District summary" not in page[0] or "School:" in page[0]:
        fail("page 1 is not the summary: %s" % page[0][:300])
    if "Meeting the uptime target" not in page[0]:
        fail("summary lacks the uptime count")
    seen = []
    for p in page[1:]:
        heads = [l for l in p.splitlines() if l.startswith("School: ")]
        if len(heads) != 1:
            fail("a page with %d school headings: %r" % (len(heads), heads))
            continue
        sid = heads[0].rsplit("(", 1)[1].rstrip(")")
        seen.append(sid)
        c, u = cap[sid], up[sid]
        want = ["%.3f %%" % u["uptime_percent"],
                "%.1f Mbit/s / %.1f Mbit/s" % (c["in"]["p95_bps"] / 1e6,
                                               c["out"]["p95_bps"] / 1e6),
                "%.1f Mbit/s" % (c["rate_bps"]["last"] / 1e6),
                "Recommendation:"]
        flat = " ".join(p.split())
        for w in want:
            if w not in flat:
                fail("page of %s lacks %r" % (sid, w))
    check_eq("schools in the PDF", sorted(seen), sorted(exp))
    imgs = run(["pdfimages", "-list", pdf]).stdout.splitlines()[2:]
    check_eq("graphs in the PDF", len(imgs), 3)
    check_eq("one graph per school page", sorted(int(l.split()[0]) for l in imgs), [2, 3, 4])
    return up, cap


def api(collector, tmp, up, cap, np_bin):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    conf = os.path.join(tmp, "api.conf")
    with open(conf, "w") as f:
        f.write("[collector]\nlisten = 127.0.0.1:%d\nplain_http = yes\ndata_dir = %s/data\n"
                % (port, tmp) + TARGETS)
    # The API wants a user's token (web_auth.h).
    NP = [np_bin, "-c", conf]
    run(NP + ["user", "add", "reporter", "--password-stdin"], input="a long test password\n")
    token = run(NP + ["user", "token", "reporter"]).stdout.strip()
    log = open(os.path.join(tmp, "collector.log"), "w")
    # CI runs as root; the collector refuses that unless told.
    env = dict(os.environ, NETPULSE_ALLOW_ROOT="1")
    proc = subprocess.Popen([collector, "-c", conf], stdout=log, stderr=subprocess.STDOUT,
                            env=env)
    try:
        base = "http://127.0.0.1:%d" % port
        deadline = time.time() + 20
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    fail("collector did not start: %s" % open(log.name).read()[-2000:])
                    return
                time.sleep(0.1)

        def get(path, want=200):
            try:
                rq = urllib.request.Request(base + path,
                                            headers={"Authorization": "Bearer " + token})
                r = urllib.request.urlopen(rq, timeout=30)
                code, body = r.status, r.read()
            except urllib.error.HTTPError as e:
                code, body = e.code, e.read()
            except OSError as e:
                log.flush()
                fail("GET %s: %s; collector log: %s" % (path, e, open(log.name).read()[-3000:]))
                return None
            if code != want:
                fail("GET %s: %d, want %d: %r" % (path, code, want, body[:200]))
                return None
            return json.loads(body) if code == 200 else None

        for sid in up:
            u = get("/api/v1/sites/%s/uptime?year=2024" % sid)
            c = get("/api/v1/sites/%s/capacity?from=1704067200&to=1735689600" % sid)
            if u:
                check_eq("api uptime %s" % sid, u["ms"], up[sid]["ms"])
                check_eq("api outages %s" % sid, u["outages"], up[sid]["outages"])
                check_eq("api target %s" % sid, u["target_percent"], up[sid]["target_percent"])
                check_eq("api met %s" % sid, u["met"], up[sid]["met"])
            if c:
                for k in ("in", "out", "months", "busiest_hours", "growth", "rate_bps"):
                    check_eq("api capacity %s %s" % (sid, k), c[k], cap[sid][k])
        d = get("/api/v1/district/summary?year=2024")
        if d:
            check_eq("api summary schools", d["summary"]["schools"], 3)
            check_eq("api summary uptime", d["summary"]["uptime"],
                     {"met": 3, "missed": 0, "no_data": 0})
            check_eq("api summary high-b met",
                     [x["uptime_met"] for x in d["sites"] if x["site"] == "high-b"], [True])
            check_eq("api summary sites", sorted(x["site"] for x in d["sites"]), sorted(up))
        get("/api/v1/sites/nosuch/uptime?year=2024", 404)
        get("/api/v1/sites/elem-a/uptime?year=24", 400)
        get("/api/v1/sites/elem-a/capacity?from=5", 400)
        get("/api/v1/district/summary?month=2024-02&year=2024", 400)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


if __name__ == "__main__":
    main()
