#!/usr/bin/env python3
"""Dashboard end to end: a real collector (TLS) filled through ingest, its
access rules checked over HTTP, then headless Chromium (playwright-core)
walking the pages.

usage: run.py NETPULSE COLLECTOR MAKE_BATCH WEB_ROOT OUT_DIR [http|browser|all|serve]
OUT_DIR receives the screenshots (and the npm install of playwright-core)."""
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

NETPULSE, COLLECTOR, MAKE_BATCH, WEB_SRC, OUT = sys.argv[1:6]
PART = sys.argv[6] if len(sys.argv) > 6 else "all"
HERE = os.path.dirname(os.path.abspath(__file__))
FAILS = []
CTX = {}  # conf, tmp, now for admin_checks


def check(cond, what):
    print(("ok: " if cond else "FAIL: ") + what, flush=True)
    if not cond:
        FAILS.append(what)


class Client:
    def __init__(self, port):
        self.port = port
        self.ctx = ssl.create_default_context()
        self.ctx.check_hostname = False
        self.ctx.verify_mode = ssl.CERT_NONE

    def req(self, method, path, headers=None, body=None):
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=120)
        h = {"Host": "127.0.0.1:%d" % self.port}
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def main():
    tmp = tempfile.mkdtemp(prefix="np-dash.")
    proc = None
    try:
        proc = setup_and_run(tmp)
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(30)
                log = open(os.path.join(tmp, "collector.log")).read()
                check(rc == 0 and "Sanitizer" not in log,
                      "collector stopped cleanly (exit %d, no sanitizer report)" % rc)
            except subprocess.TimeoutExpired:
                proc.kill()
                check(False, "collector did not stop on SIGTERM")
        if FAILS:
            print("---- collector log (tail) ----")
            try:
                print("".join(open(os.path.join(tmp, "collector.log")).readlines()[-40:]))
            except OSError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)
    if FAILS:
        print("%d check(s) failed" % len(FAILS))
        sys.exit(1)


def die_with_parent():
    """The collector gets SIGTERM when this script dies (a ctest timeout kills
    it without running the finally clause)."""
    import ctypes
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def sh(*args, stdin=None):
    r = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("%s failed: %s" % (args, r.stderr))
    return r.stdout


def setup_and_run(tmp):
    web = os.path.join(tmp, "web")
    shutil.copytree(WEB_SRC, web)
    # A symlink leading out of web_root must not be served.
    os.symlink("/etc/hostname", os.path.join(web, "leak.txt"))
    with open(os.path.join(tmp, "outside.txt"), "w") as f:
        f.write("secret outside web_root\n")
    os.symlink(os.path.join(tmp, "outside.txt"), os.path.join(web, "static", "leak2.txt"))
    sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
       "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", tmp + "/key.pem",
       "-out", tmp + "/cert.pem")
    conf = os.path.join(tmp, "collector.conf")
    with open(conf, "w") as f:
        f.write("[collector]\nlisten = 127.0.0.1:0\ntls_cert = %s/cert.pem\ntls_key = %s/key.pem\n"
                "data_dir = %s/data\nweb_root = %s\nallow_root = yes\nheartbeat_timeout = 1h\n[dashboard]\nmetrics_token = scrape-secret-1\n"
                "[alerts]\nenabled = no\n" % (tmp, tmp, tmp, web))
    os.makedirs(tmp + "/data")
    with open(tmp + "/sites.csv", "w") as f:
        f.write("id,name,school_type,circuit_rate,baseline_rate,baseline_year,contacts\n"
                "oak-es,Oak Elementary,elementary,100Mbps,20Mbps,2021,\n"
                "pine-hs,Pine High School,high,1Gbps,100Mbps,2021,\n"
                "elm-ms,Elm Middle,middle,200Mbps,,,\n")
    sh(NETPULSE, "-c", conf, "site", "import", tmp + "/sites.csv")
    tokens = {}
    for site in ("oak-es", "pine-hs"):
        tokens[site] = sh(NETPULSE, "-c", conf, "agent", "enrol", site).strip()
    sh(NETPULSE, "-c", conf, "user", "add", "admin", "--admin", "--password-stdin",
       stdin="admin-password-1\n")
    sh(NETPULSE, "-c", conf, "user", "add", "viewer", "--password-stdin", stdin="viewer-password-1\n")
    viewer_token = sh(NETPULSE, "-c", conf, "user", "token", "viewer").strip()
    check(viewer_token.startswith("npu_") and len(viewer_token) == 47, "user token printed")
    listing = sh(NETPULSE, "-c", conf, "user", "list")
    check("admin" in listing and "viewer" in listing, "user list shows both users")

    port_file = tmp + "/port"
    log = open(tmp + "/collector.log", "w")
    proc = subprocess.Popen([COLLECTOR, "-c", conf, "--foreground", "--port-file", port_file],
                            stderr=log, preexec_fn=die_with_parent)
    for _ in range(300):
        if os.path.exists(port_file):
            break
        time.sleep(0.05)
    if not os.path.exists(port_file):
        log.flush()
        print(open(tmp + "/collector.log").read())
        raise RuntimeError("collector did not start")
    port = int(open(port_file).read())
    cl = Client(port)

    # Data: half an hour of one-minute samples for two schools through ingest.
    now = int(time.time())
    now -= now % 60
    for site, base in (("oak-es", 30_000_000), ("pine-hs", 400_000_000)):
        for k in range(30):
            t = now - 1800 + 60 * (k + 1)
            path = "%s/b-%s-%d" % (tmp, site, k)
            sh(MAKE_BATCH, "batch", path, site, str(k + 1), str(t), "1",
               str(base + k * 100_000), str(base // 4 + k * 10_000))
            body = open(path, "rb").read()
            st, _, data = cl.req("POST", "/api/v1/ingest", {
                "Authorization": "Bearer " + tokens[site],
                "Content-Type": "application/x-protobuf"}, body)
            if st != 200:
                check(False, "ingest %s %d: %d %s" % (site, k, st, data[:100]))
                return proc
    time.sleep(1.0)  # applied to SQLite and RRD after the journal ack
    # Probe results: make_batch sends none, so two probe files of oak-es are
    # written with rrdtool in rrd_store.h's layout (a name needing escapes).
    probe_files(tmp + "/data/rrd/oak-es", now)
    flow_rows(tmp + "/data/state.db", now)

    if PART in ("http", "all"):
        CTX.update(conf=conf, tmp=tmp, now=now)
        http_checks(cl, viewer_token)
    if PART in ("browser", "all"):
        browser(port, viewer_token)
    if PART == "serve":  # by hand: look at the pages until interrupted
        print("serving https://127.0.0.1:%d token %s (admin/admin-password-1)" % (port, viewer_token),
              flush=True)
        def stop(*_):
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            proc.wait()
        except KeyboardInterrupt:
            pass
    return proc


PROBES = {"gw": (4.0, 0.0), "dns 1.1.1.1": (12.5, 0.02)}  # name: (rtt_ms, loss)


def probe_files(folder, now):
    for name, (rtt, loss) in PROBES.items():
        esc = "".join(c if c.isalnum() or c in "_-." else "%%%02X" % ord(c) for c in name)
        f = os.path.join(folder, "probe+%s.rrd" % esc)
        sh("rrdtool", "create", f, "--start", str(now - 1860), "--step", "60",
           "DS:rtt_ms:GAUGE:120:0:U", "DS:loss:GAUGE:120:0:1", "DS:up:GAUGE:120:0:1",
           "RRA:AVERAGE:0.5:1:1440", "RRA:MAX:0.5:1:1440")
        sh("rrdtool", "update", f,
           *["%d:%s:%s:1" % (now - 1800 + 60 * (k + 1), rtt + k % 3, loss) for k in range(30)])


# A flow summary as the agent sends it (state_db.h np_state_db_flows_put's
# JSON), privacy applied at the agent: school addresses as /24 prefixes.
# make_batch sends no flows, so the row goes into state.db directly.
FLOWS = {"source": "wan", "packets": 9000, "bytes": 7_500_000, "bytes_in": 6_000_000,
         "bytes_out": 1_500_000,
         "by_app": [{"name": "https", "bytes": 6_000_000, "packets": 6000},
                    {"name": "dns", "bytes": 1_000_000, "packets": 2000},
                    {"name": "other", "bytes": 500_000, "packets": 1000}],
         "by_protocol": [{"name": "tcp", "bytes": 6_500_000, "packets": 7000}],
         "top_talkers": [{"address": "10.20.30.0/24", "bytes": 5_000_000, "bytes_in": 4_200_000,
                          "bytes_out": 800_000, "packets": 5000},
                         {"address": "198.51.100.7", "bytes": 2_000_000, "bytes_in": 500_000,
                          "bytes_out": 1_500_000, "packets": 3000}],
         "top_flows": [], "decode_errors": []}


def flow_rows(db, now):
    import sqlite3
    c = sqlite3.connect(db, timeout=30)
    row = dict(FLOWS, start_ms=(now - 60) * 1000, end_ms=now * 1000)
    c.execute("INSERT INTO flow_summaries (site_id, source, start_ms, end_ms, summary) "
              "VALUES (?, ?, ?, ?, ?)", ("oak-es", "wan", row["start_ms"], row["end_ms"],
                                         json.dumps(row)))
    # And a settled outage of two days ago for the outage log (outage.h's
    # rows), at the school without data: its uptime stays put while the test
    # compares, where the others' would drift with the clock.
    c.execute("INSERT INTO outages (site_id, cause, state, start_ms, end_ms, updated_ms) "
              "VALUES ('elm-ms', 'link', 'confirmed', ?, ?, ?)",
              ((now - 2 * 86400) * 1000, (now - 2 * 86400 + 754) * 1000, now * 1000))
    c.commit()
    c.close()


def admin_checks(cl, viewer_token, cookies, csrf):
    """The admin actions of api.h: refused to readers and without the CSRF
    token, working with it; their effects seen through the API, the CLI and
    ingest. cookies, csrf: the sessions of "admin" and "viewer" (logins are
    slow: PBKDF2)."""
    conf, tmp, now = CTX["conf"], CTX["tmp"], CTX["now"]
    origin = "https://127.0.0.1:%d" % cl.port
    vtok = {"Authorization": "Bearer " + viewer_token}
    admin = {"Cookie": cookies["admin"], "X-CSRF-Token": csrf["admin"], "Origin": origin,
             "Content-Type": "application/json"}
    viewer = {"Cookie": cookies["viewer"], "X-CSRF-Token": csrf["viewer"], "Origin": origin,
              "Content-Type": "application/json"}
    nocsrf = {"Cookie": cookies["admin"], "Content-Type": "application/json"}
    win = json.dumps({"from": now + 86400, "to": now + 86400 + 7200, "reason": "switch upgrade"})
    mpath = "/api/v1/sites/oak-es/maintenance"
    actions = [("POST", mpath, win), ("DELETE", mpath + "/1", None),
               ("POST", "/api/v1/agents/elm-ms/enrol", ""),
               ("POST", "/api/v1/agents/oak-es/revoke", "")]
    for method, path, body in actions:
        for who, h in (("read-only session", viewer), ("read-only token", vtok),
                       ("admin without CSRF token", nocsrf)):
            st, _, _ = cl.req(method, path, h, body)
            check(st == 403, "%s: %s %s refused (%d)" % (who, method, path, st))
    st, _, body = cl.req("GET", mpath, vtok)
    check(st == 200 and json.loads(body) == [], "no window declared by the refused requests")

    # Maintenance windows.
    st, _, body = cl.req("POST", mpath, admin, win)
    check(st == 201, "admin declares a maintenance window (%d %s)" % (st, body[:80]))
    mid = json.loads(body)["id"] if st == 201 else -1
    st, _, body = cl.req("POST", mpath, admin, json.dumps(
        {"from": time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now + 3 * 86400)),
         "to": time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now + 3 * 86400 + 3600)),
         "reason": "fibre work"}))
    check(st == 201, "window with text times (%d %s)" % (st, body[:80]))
    mid2 = json.loads(body)["id"] if st == 201 else -1
    # Each refusal names the field (api_body.h).
    for bad, field in (({"from": now, "to": now - 60, "reason": "x"}, "to:"),
                       ({"from": now, "to": now + 60}, "reason:"),
                       ({"from": now, "to": now + 60, "reason": ""}, "reason:"),
                       ({"from": now, "to": now + 60, "reason": "a\nb"}, "reason:"),
                       ({"from": now, "to": now + 60, "reason": "x" * 501}, "reason:"),
                       ({"from": "2024-13-01", "to": now + 60, "reason": "x"}, "from:"),
                       ({"from": now, "to": now + 60, "reason": "x", "extra": 1}, "extra:"),
                       ("not json", "body:")):
        st, _, msg = cl.req("POST", mpath, admin, bad if isinstance(bad, str) else json.dumps(bad))
        check(st == 400 and msg.startswith(field.encode()),
              "bad window %s rejected (%d %s)" % (str(bad)[:60], st, msg[:60]))
    st, _, _ = cl.req("POST", "/api/v1/sites/nope/maintenance", admin, win)
    check(st == 404, "window of an unknown site is 404 (%d)" % st)
    st, _, body = cl.req("GET", mpath, vtok)
    got = json.loads(body) if st == 200 else []
    check(st == 200 and [m["id"] for m in got] == [mid, mid2] and got[0]["reason"] ==
          "switch upgrade" and got[0]["from"] == now + 86400 and got[0]["to"] == now + 86400 + 7200,
          "windows in GET (%s)" % got)
    listing = sh(NETPULSE, "-c", conf, "maintenance", "list", "oak-es")
    check("switch upgrade" in listing and "fibre work" in listing,
          "windows in `netpulse maintenance list`")
    st, _, _ = cl.req("DELETE", "/api/v1/sites/pine-hs/maintenance/%d" % mid2, admin)
    check(st == 404, "window of another site not deleted (%d)" % st)
    st, _, _ = cl.req("PUT", mpath, admin, win)
    check(st == 405, "PUT maintenance is 405 (%d)" % st)
    st, _, _ = cl.req("DELETE", "%s/%d" % (mpath, mid2), admin)
    check(st == 200, "admin deletes a window (%d)" % st)
    st, _, _ = cl.req("DELETE", "%s/%d" % (mpath, mid2), admin)
    check(st == 404, "deleted window is gone (%d)" % st)
    st, _, body = cl.req("GET", mpath, vtok)
    check(st == 200 and [m["id"] for m in json.loads(body)] == [mid], "GET after the delete")
    check("fibre work" not in sh(NETPULSE, "-c", conf, "maintenance", "list", "oak-es"),
          "CLI after the delete")

    # Enrolment and revocation; the token works for ingest until revoked.
    st, _, body = cl.req("POST", "/api/v1/agents/elm-ms/enrol", admin, "")
    tok = json.loads(body).get("token", "") if st == 201 else ""
    check(st == 201 and len(tok) > 20, "admin enrols elm-ms (%d)" % st)
    st, _, _ = cl.req("POST", "/api/v1/agents/elm-ms/enrol", admin, "")
    check(st == 409, "second enrolment refused while enrolled (%d)" % st)
    batch = "%s/b-elm" % tmp
    sh(MAKE_BATCH, "batch", batch, "elm-ms", "1", str(now), "1")
    ingest = lambda t: cl.req("POST", "/api/v1/ingest", {  # noqa: E731
        "Authorization": "Bearer " + t, "Content-Type": "application/x-protobuf"},
        open(batch, "rb").read())[0]
    check(ingest(tok) == 200, "the enrolled token is accepted by ingest")
    st, _, body = cl.req("POST", "/api/v1/agents/elm-ms/revoke", admin, "")
    check(st == 200 and json.loads(body).get("revoked") is True, "admin revokes elm-ms (%d)" % st)
    check(ingest(tok) == 401, "the revoked token is refused by ingest")
    st, _, _ = cl.req("POST", "/api/v1/agents/elm-ms/revoke", admin, "")
    check(st == 409, "revoking twice is 409 (%d)" % st)
    st, _, _ = cl.req("POST", "/api/v1/agents/nope/revoke", admin, "")
    check(st == 404, "revoking an unknown agent is 404 (%d)" % st)
    for p in ("/api/v1/agents/elm-ms/delete", "/api/v1/agents/..%2Fx/enrol", "/api/v1/agents/elm-ms",
              "/api/v1/agents/.x/enrol"):
        st, _, _ = cl.req("POST", p, admin, "")
        check(st in (404, 405), "POST %s refused (%d)" % (p, st))

    # Probes.
    st, _, body = cl.req("GET", "/api/v1/sites/oak-es/probes", vtok)
    check(st == 200 and json.loads(body)["probes"] == sorted(PROBES), "probe list (%s)" % body[:100])
    st, _, body = cl.req("GET", "/api/v1/sites/pine-hs/probes", vtok)
    check(st == 200 and json.loads(body)["probes"] == [], "site without probes (%d)" % st)
    st, _, _ = cl.req("GET", "/api/v1/sites/nope/probes", vtok)
    check(st == 404, "probes of an unknown site is 404 (%d)" % st)
    q = urllib.parse.urlencode({"probe": "dns 1.1.1.1", "from": now - 3600, "to": now})
    st, _, body = cl.req("GET", "/api/v1/sites/oak-es/series?" + q, vtok)
    pts = [p for p in json.loads(body)["series"][0]["points"] if p.get("rtt_ms") is not None] \
        if st == 200 else []
    check(len(pts) >= 20 and all(12.5 <= p["rtt_ms"] <= 14.5 and abs(p["loss"] - 0.02) < 1e-9
                                 for p in pts), "probe series (%d points)" % len(pts))


def http_checks(cl, viewer_token):
    auth = {"Authorization": "Bearer " + viewer_token}
    st, h, _ = cl.req("GET", "/healthz")
    check(st == 200, "healthz is public")
    check("default-src 'self'" in h.get("content-security-policy", "") and
          "frame-ancestors 'none'" in h.get("content-security-policy", ""), "CSP header")
    check(h.get("x-content-type-options") == "nosniff", "nosniff header")
    # Unauthenticated: pages redirect to the login, API/graphs/metrics 401.
    for p in ("/", "/sites/oak-es", "/district", "/index.html", "/static/overview.js"):
        st, h, _ = cl.req("GET", p)
        check(st in (303, 401), "unauthenticated %s refused (%d)" % (p, st))
    st, h, _ = cl.req("GET", "/sites/oak-es")
    check(st == 303 and h.get("location", "").startswith("/login.html?next=/sites/oak-es"),
          "page redirects to login with next")
    for p in ("/api/v1/sites", "/api/v1/sites/oak-es/series", "/graph/site/oak-es/traffic.png",
              "/metrics", "/api/v1/report?year=2024&format=csv", "/api/v1/district/summary"):
        st, _, _ = cl.req("GET", p)
        check(st == 401, "unauthenticated %s is 401 (%d)" % (p, st))
    st, _, _ = cl.req("GET", "/api/v1/sites", {"Authorization": "Bearer npu_" + "A" * 43})
    check(st == 401, "unknown API token refused")
    st, _, _ = cl.req("GET", "/login.html")
    check(st == 200, "login page is public")
    # Tokens.
    st, _, body = cl.req("GET", "/api/v1/sites", auth)
    check(st == 200 and b"oak-es" in body, "API with a user token")
    st, _, body = cl.req("GET", "/metrics", {"Authorization": "Bearer scrape-secret-1"})
    check(st == 200 and b"netpulse_ingest_batches_total" in body, "metrics with metrics_token")
    # The Grafana dashboard uses only metric names /metrics exports.
    import re
    graf = json.load(open(os.path.join(WEB_SRC, "..", "grafana", "netpulse.json")))
    names = set(re.findall(r"netpulse_[a-z_]+", json.dumps(graf["panels"])))
    missing = [n for n in sorted(names) if n.encode() not in body]
    check(names and not missing, "grafana metric names exported (missing: %s)" % missing)
    st, _, _ = cl.req("GET", "/metrics", {"Authorization": "Bearer scrape-secret-2"})
    check(st == 401, "metrics with a wrong token refused")
    # Graphs.
    st, h, body = cl.req("GET", "/graph/site/oak-es/traffic.png?range=day", auth)
    check(st == 200 and body[:8] == b"\x89PNG\r\n\x1a\n" and h.get("content-type") == "image/png",
          "traffic.png renders (%d)" % st)
    st, h, body = cl.req("GET", "/graph/site/pine-hs/traffic.svg?range=week&width=600&height=200",
                         auth)
    check(st == 200 and b"<svg" in body[:400] and "svg" in h.get("content-type", ""),
          "traffic.svg renders (%d)" % st)
    st, _, _ = cl.req("GET", "/graph/site/elm-ms/traffic.png", auth)
    check(st == 404, "graph of a site without data is 404 (%d)" % st)
    st, _, _ = cl.req("GET", "/graph/site/nope/traffic.png", auth)
    check(st == 404, "graph of an unknown site is 404 (%d)" % st)
    bad = [
        "range=day%0ADEF:x=/etc/passwd:a:AVERAGE", "range=day:DEF", "range=decade",
        "width=1:2", "width=100000", "height=-5", "width=800&width=900", "from=1&to=2",
        "from=1700000000", "from=1700000000&to=1600000000", "range=day&from=1700000000&to=1700086400",
        "foo=bar", "device=edge", "device=edge%0A&iface=eth0", "range=%",
        "range=day%00", "width=8%3A00", "COMMENT:x=1",
    ]
    for q in bad:
        st, _, body = cl.req("GET", "/graph/site/oak-es/traffic.png?" + q, auth)
        check(st == 400, "graph ?%s rejected with 400 (%d)" % (q, st))
    for p in ("/graph/site/..%2F..%2Fetc/traffic.png", "/graph/site/oak-es/traffic.gif",
              "/graph/site/oak-es:DEF/traffic.png", "/graph/site/.hidden/traffic.png",
              "/graph/site/oak-es/../pine-hs/traffic.pngx"):
        st, _, _ = cl.req("GET", p, auth)
        check(st in (400, 404), "graph path %s refused (%d)" % (p, st))
    st, _, _ = cl.req("GET", "/graph/site/oak-es/traffic.png?device=edge&iface=eth9", auth)
    check(st == 404, "graph of an unknown interface is 404 (%d)" % st)
    # Static files: types, ETag, traversal, symlinks out.
    st, h, body = cl.req("GET", "/static/style.css", auth)
    check(st == 200 and h.get("content-type", "").startswith("text/css") and "etag" in h,
          "style.css served with type and ETag")
    st2, _, _ = cl.req("GET", "/static/style.css", dict(auth, **{"If-None-Match": h.get("etag", "")}))
    check(st2 == 304, "If-None-Match gives 304 (%d)" % st2)
    st, h, _ = cl.req("GET", "/static/chart.js", auth)
    check(st == 200 and h.get("content-type", "").startswith("text/javascript"), "js type")
    for p in ("/../../etc/passwd", "/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd",
              "/%2e%2e/collector.conf", "/leak.txt", "/static/leak2.txt", "/.hidden.html",
              "/static//style.css", "/static/style.css%00.html", "/static\\..\\x.html"):
        st, _, body = cl.req("GET", p, auth)
        check(st in (400, 404) and b"secret" not in body and b"root:" not in body,
              "static %s refused (%d)" % (p, st))
    # Login, cookies, CSRF.
    form = urllib.parse.urlencode({"user": "admin", "password": "wrong-password", "next": "/"})
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    st, h, _ = cl.req("POST", "/login", ctype, form)
    check(st == 303 and "error" in h.get("location", "") and "set-cookie" not in h,
          "wrong password refused")
    st, _, _ = cl.req("POST", "/login", dict(ctype, Origin="https://evil.example"),
                      form.replace("wrong-password", "admin-password-1"))
    check(st == 403, "cross-origin login refused (%d)" % st)
    cookies = {}
    for user in ("admin", "viewer"):
        form = urllib.parse.urlencode({"user": user, "password": user + "-password-1",
                                       "next": "/district"})
        st, h, _ = cl.req("POST", "/login", dict(ctype, Origin="https://127.0.0.1:%d" % cl.port),
                          form)
        sc = h.get("set-cookie", "")
        check(st == 303 and h.get("location") == "/district", "%s logs in" % user)
        check("HttpOnly" in sc and "SameSite=Strict" in sc and "Secure" in sc,
              "session cookie flags: %s" % sc.split(";", 1)[-1])
        cookies[user] = sc.split(";", 1)[0]
    st, _, body = cl.req("GET", "/api/v1/session", {"Cookie": cookies["admin"]})
    sess = json.loads(body)
    check(st == 200 and sess["user"] == "admin" and sess["admin"] and sess["csrf"],
          "session endpoint")
    csrf = sess["csrf"]
    target = "/api/v1/sites/oak-es/maintenance"
    st, _, _ = cl.req("POST", target, {"Cookie": cookies["admin"]}, "{}")
    check(st == 403, "POST without CSRF token refused (%d)" % st)
    st, _, _ = cl.req("POST", target, {"Cookie": cookies["admin"], "X-CSRF-Token": ("y" if csrf[0] == "x" else "x") + csrf[1:]},
                      "{}")
    check(st == 403, "POST with a wrong CSRF token refused (%d)" % st)
    st, _, _ = cl.req("POST", target, {"Cookie": cookies["admin"], "X-CSRF-Token": csrf,
                                       "Origin": "https://evil.example"}, "{}")
    check(st == 403, "POST with the token from another origin refused (%d)" % st)
    st, _, _ = cl.req("POST", target, {"Cookie": cookies["admin"], "X-CSRF-Token": csrf,
                                       "Origin": "https://127.0.0.1:%d" % cl.port}, "{}")
    check(st not in (401, 403), "admin POST with token passes the guard (%d)" % st)
    _, _, vb = cl.req("GET", "/api/v1/session", {"Cookie": cookies["viewer"]})
    vcsrf = json.loads(vb)["csrf"]
    st, _, _ = cl.req("POST", target, {"Cookie": cookies["viewer"], "X-CSRF-Token": vcsrf}, "{}")
    check(st == 403, "read-only user cannot POST (%d)" % st)
    st, _, _ = cl.req("POST", target, auth, "{}")
    check(st == 403, "read-only token cannot POST (%d)" % st)
    admin_checks(cl, viewer_token, cookies, {"admin": csrf, "viewer": vcsrf})
    st, _, _ = cl.req("DELETE", "/api/v1/sites/oak-es", {"Cookie": cookies["admin"]})
    check(st == 403, "DELETE without CSRF token refused (%d)" % st)
    st, _, _ = cl.req("POST", "/logout", {"Cookie": cookies["viewer"]})
    check(st == 403, "logout without CSRF token refused (%d)" % st)
    st, _, _ = cl.req("POST", "/logout", {"Cookie": cookies["viewer"], "X-CSRF-Token": vcsrf})
    check(st == 303, "logout with the token (%d)" % st)
    st, _, _ = cl.req("GET", "/api/v1/sites", {"Cookie": cookies["viewer"]})
    check(st == 401, "session ended by logout (%d)" % st)
    # The annual report download.
    year = time.gmtime().tm_year
    st, h, body = cl.req("GET", "/api/v1/report?year=%d&format=csv" % year, auth)
    check(st == 200 and "text/csv" in h.get("content-type", "") and b"oak-es" in body and
          "attachment" in h.get("content-disposition", ""), "report CSV download (%d)" % st)
    for q in ("year=20x4&format=csv", "year=2024&format=pdf", "year=2024;rm", "format=csv"):
        st, _, _ = cl.req("GET", "/api/v1/report?" + q, auth)
        check(st == 400, "report ?%s rejected (%d)" % (q, st))


def browser(port, viewer_token):
    node_dir = os.path.join(OUT, "node")
    if not os.path.isdir(os.path.join(node_dir, "node_modules", "playwright-core")):
        os.makedirs(node_dir, exist_ok=True)
        r = subprocess.run(["npm", "install", "--prefix", node_dir, "--no-audit", "--no-fund",
                            "--loglevel=error", "playwright-core@1"],
                           capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            check(False, "npm install playwright-core: " + r.stderr[-500:])
            return
    env = dict(os.environ, NODE_PATH=os.path.join(node_dir, "node_modules"))
    shots = os.path.join(OUT, "screenshots")
    os.makedirs(shots, exist_ok=True)
    r = subprocess.run(["node", os.path.join(HERE, "browser.mjs"), "https://127.0.0.1:%d" % port,
                        shots, "admin", "admin-password-1", viewer_token,
                        os.path.join(node_dir, "node_modules", "playwright-core", "index.mjs")],
                       capture_output=True, text=True, timeout=380, env=env)
    sys.stdout.write(r.stdout)
    sys.stdout.write(r.stderr)
    check(r.returncode == 0, "browser walk (exit %d)" % r.returncode)


if __name__ == "__main__":
    main()
