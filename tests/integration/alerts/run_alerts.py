"""Alert integration tests against the real netpulse-collector (plain HTTP on
loopback), a real SMTP server (aiosmtpd, STARTTLS required, AUTH) and a small
webhook receiver, with agents played by alert_feeder (real wire batches).

  run_alerts.py COLLECTOR NETPULSE FEEDER SCENARIO
    down_up      two sites cut and restored: exactly one DOWN and one UP e-mail
                 each (duration right), routing (district, school type, site
                 contacts), hostile site name and contacts add no header or
                 recipient, generic/Slack/Teams webhooks get well-formed JSON,
                 `netpulse alert test` and `alert list`
    digest       50 sites cut at once: one digest e-mail, then one recovery digest
    flap         a site flapping (3 s on / 4 s off, ~30 s): at most the documented
                 2 * flap_max + 2 messages, the last one the recovery
    smtp_outage  the SMTP server is down when the alert fires; the collector is
                 restarted; the server comes back: the e-mail arrives once
    events       events in an agent's batches: INTERFACE_DOWN, INTERFACE_UP and
                 SPOOL_OVERFLOW give exactly one e-mail each (interface name
                 shown, hostile ifName/ifAlias add no header or recipient);
                 POSTing the same batch again (same seq) changes nothing
    iface_restart an interface down notified, the collector restarted, the
                 interface up: exactly one recovery e-mail
    utilisation  1 s samples: the uplink measured against the site's circuit
                 rate in force (the last `circuit set` change begun, not the
                 inventory's, nor its 1 Gbps ifSpeed), a LAN port against its speed; a
                 dip restarts the wait; one UTIL_HIGH after utilisation_for,
                 none while hovering between utilisation_clear and the
                 threshold, one UTIL_OK after utilisation_clear_for below
    sla          a 5 s uplink cut (agent backlog) at a high school whose
                 target (99.9999 %) can no longer be met this month: one
                 sla_risk e-mail, still one after a restart; an elementary
                 school (99.5 %) with the same cut: none
Short settings (site_down_after = 3s etc.); the network-namespace link cut of
the issue is left to the end-to-end tests (agent + collector in namespaces).
"""
import http.server
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import maildir  # noqa: E402
from maildir import duration_s, kind  # noqa: E402
from smtp_server import SmtpServer  # noqa: E402

COLLECTOR, NETPULSE, FEEDER, SCENARIO = sys.argv[1:5]
T = tempfile.mkdtemp(prefix="np-alerts.")
MAILDIR = os.path.join(T, "mail")
procs = []


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)
    print("ok:", what, flush=True)


# ---- webhook receiver -------------------------------------------------------
hooks = []


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n)
        hooks.append((self.path, self.headers.get("Content-Type"), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


hook_srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
threading.Thread(target=hook_srv.serve_forever, daemon=True).start()
HOOK = "http://127.0.0.1:%d" % hook_srv.server_address[1]

# ---- SMTP server ------------------------------------------------------------
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", os.path.join(T, "smtp-key.pem"), "-out", os.path.join(T, "smtp.pem")],
               check=True, capture_output=True)
smtp = SmtpServer(MAILDIR, os.path.join(T, "smtp.pem"), os.path.join(T, "smtp-key.pem"),
                  "netpulse", "s3cret pass")


def mails():
    return maildir.read(MAILDIR)


def of_kind(k):
    return [x for x in mails() if kind(x[0]) == k]


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise Fail("timed out waiting for " + what)


# ---- collector ----------------------------------------------------------------
SETTINGS = {
    "site_down_after": "3s", "hold_down": "2s", "settle_wait": "6s", "digest_window": "2s",
    "digest_min": "3", "poll": "500ms", "retry_initial": "1s", "retry_max": "2s",
    "flap_max": "3", "flap_window": "1h", "flap_stable": "15m",
}


def write_config(extra, targets=None):
    s = dict(SETTINGS)
    s.update(extra)
    conf = os.path.join(T, "collector.conf")
    with open(conf, "w") as f:
        f.write("[collector]\nlisten = 127.0.0.1:0\nplain_http = yes\n"
                "allow_root = yes\ndata_dir = %s\nheartbeat_timeout = 2s\nlog_level = debug\n\n" % os.path.join(T, "data"))
        if targets:
            f.write("[targets]\n" + "".join("%s = %s\n" % kv for kv in targets.items()) + "\n")
        f.write("[smtp]\nurl = smtp://127.0.0.1:%d\nfrom = netpulse@district.example\n"
                "to = noc@district.example\nuser = netpulse\npassword = s3cret pass\n"
                "ca_file = %s\ntimeout = 10s\n\n" % (smtp.port, os.path.join(T, "smtp.pem")))
        f.write("[alerts]\ndashboard_url = https://np.district.example/\n"
                "to_high = high-schools@district.example\n")
        for k, v in s.items():
            f.write("%s = %s\n" % (k, v))
        for name, fmt in (("generic", "generic"), ("slack", "slack"), ("teams", "teams")):
            f.write("\n[webhook %s]\nurl = %s/%s\nformat = %s\n" % (name, HOOK, name, fmt))
    return conf


collector = None
port = None


def start_collector(conf):
    global collector, port
    pf = os.path.join(T, "port")
    if os.path.exists(pf):
        os.unlink(pf)
    log = open(os.path.join(T, "collector.log"), "ab")
    collector = subprocess.Popen([COLLECTOR, "-c", conf, "--foreground", "--port-file", pf],
                                 stderr=log, stdout=log)
    procs.append(collector)
    port = int(wait_for(lambda: os.path.exists(pf) and open(pf).read().strip(), 15,
                        "the collector's port"))


def stop_collector():
    collector.send_signal(signal.SIGTERM)
    rc = collector.wait(20)
    check(rc == 0, "collector exits 0 on SIGTERM")


def cli(conf, *args):
    return subprocess.run([NETPULSE, "-c", conf] + list(args), capture_output=True, text=True,
                          timeout=60)


def setup_sites(conf, rows):
    """rows: (id, name, type, contacts). Imported, enrolled; tokens file."""
    os.makedirs(os.path.join(T, "data"), exist_ok=True)
    csvp = os.path.join(T, "sites.csv")
    with open(csvp, "w") as f:
        f.write("id,name,school_type,contacts\n")
        for r in rows:
            f.write("%s,%s,%s,%s\n" % (r[0], "Site " + r[0], r[2], ""))
    r = cli(conf, "site", "import", csvp)
    check(r.returncode == 0, "site import (%s)" % r.stderr.strip())
    with open(os.path.join(T, "tokens"), "w") as f:
        for row in rows:
            r = cli(conf, "agent", "enrol", row[0])
            if r.returncode != 0:
                raise Fail("enrol %s: %s" % (row[0], r.stderr))
            f.write("%s %s\n" % (row[0], r.stdout.strip()))
    # names and contacts written straight into the database: data the CSV import
    # would refuse (control characters) must be harmless anyway
    db = sqlite3.connect(os.path.join(T, "data", "state.db"))
    for row in rows:
        db.execute("UPDATE sites SET name = ?, contacts = ? WHERE id = ?", (row[1], row[3], row[0]))
    db.commit()
    db.close()


class Feeder:
    def __init__(self):
        self.p = subprocess.Popen([FEEDER, "http://127.0.0.1:%d/api/v1/ingest" % port,
                                   os.path.join(T, "tokens")], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        procs.append(self.p)
        self.lock = threading.Lock()
        self.live = set()
        self.stop = False
        self.round_s = 0
        self.t = threading.Thread(target=self.loop, daemon=True)

    def cmd(self, line):
        with self.lock:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
            ans = self.p.stdout.readline().strip()
        if ans != "ok":
            raise Fail("feeder: %s -> %s" % (line, ans))

    def cmds(self, *lines):
        """Several commands with no heartbeat in between ("again" repeats the
        batch of the command before it)."""
        with self.lock:
            for line in lines:
                self.p.stdin.write(line + "\n")
                self.p.stdin.flush()
                ans = self.p.stdout.readline().strip()
                if ans != "ok":
                    raise Fail("feeder: %s -> %s" % (line, ans))

    def loop(self):
        while not self.stop:
            live = sorted(self.live)
            if live:
                try:
                    t0 = time.time()
                    self.cmd("beat " + " ".join(live))
                    self.round_s = time.time() - t0
                    if self.round_s >= 1:
                        continue
                except (Fail, OSError) as e:
                    print("feeder:", e, flush=True)
                    return
            time.sleep(1)

    def hangup(self):
        """Quiet, with no connection open: the collector can be stopped."""
        self.live = set()
        time.sleep(1.2)
        self.cmd("hangup")

    def reconnect(self, sites):
        """To the restarted collector (new port), sequence numbers going on."""
        self.cmd("url http://127.0.0.1:%d/api/v1/ingest" % port)
        self.live = set(sites)

    def start(self, sites):
        self.live = set(sites)
        self.t.start()

    def close(self):
        self.stop = True
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.flush()
        except OSError:
            pass
        self.p.wait(10)


def now_ms():
    return int(time.time() * 1000)


ALLOWED_HEADERS = {"from", "to", "subject", "date", "message-id", "mime-version",
                   "auto-submitted", "x-netpulse-alert", "x-netpulse-severity",
                   "x-netpulse-site", "content-type"}


def check_message(m, env, rcpts, link=None):
    keys = [k.lower() for k in m.keys()]
    check(set(keys) <= ALLOWED_HEADERS and len(keys) == len(set(keys)),
          "only our headers, once each: %s" % keys)
    to = sorted(a.addr_spec for a in m["To"].addresses)
    check(to == sorted(rcpts), "To is %s" % to)
    check(sorted(env["rcpt_tos"]) == sorted(rcpts), "envelope recipients %s" % env["rcpt_tos"])
    check(env["tls"] and env["auth"] == "netpulse", "delivered over STARTTLS with AUTH")
    check(m["From"].addresses[0].addr_spec == "netpulse@district.example", "From")
    check("\n" not in str(m["Subject"]) and "\r" not in str(m["Subject"]), "Subject one line")
    check(m["Date"].datetime is not None and m["Date"].datetime.utcoffset().total_seconds() == 0,
          "Date in UTC")
    check(re.fullmatch(r"<[0-9a-f]{16}\.[0-9a-f]{16}@district\.example>", str(m["Message-ID"])),
          "Message-ID")
    check(m.get_content_type() == "multipart/alternative", "multipart/alternative")
    parts = [p.get_content_type() for p in m.iter_parts()]
    check(parts == ["text/plain", "text/html"], "text and HTML parts: %s" % parts)
    if link:
        for p in m.iter_parts():
            check(link in p.get_content(), "%s links %s" % (p.get_content_type(), link))


# ---- scenarios ----------------------------------------------------------------
HOSTILE_NAME = ("Lincoln \u00c9cole High\r\nBcc: evil@evil.example\r\n\r\n"
                "--=_np0000000000000000_00000000\r\nContent-Type: text/html\r\n\r\n"
                "<script>x</script>" + "x" * 3000)


def scenario_down_up():
    conf = write_config({})
    smtp.start()
    setup_sites(conf, [("school-1", HOSTILE_NAME, "high", "head@school1.example, Bad <x@y.z>"),
                       ("school-2", "Oak Elementary", "elementary",
                        "head@school2.example;\r\nBcc: evil@evil.example")])
    start_collector(conf)
    f = Feeder()
    f.start({"school-1", "school-2"})
    time.sleep(5)
    check(not mails(), "no e-mail while the sites beat")
    f.live = set()
    time.sleep(1.2)
    cut_from = now_ms() - 1200
    got = wait_for(lambda: len(mails()) >= 2 and mails(), 15, "two DOWN e-mails")
    t_down = time.time()
    time.sleep(10 - (time.time() - cut_from / 1000))
    cut_to = now_ms()
    f.cmd("backlog %d %d school-1 school-2" % (cut_from, cut_to))
    f.live = {"school-1", "school-2"}
    got = wait_for(lambda: len(mails()) >= 4 and mails(), 20, "two UP e-mails")
    time.sleep(4)
    got = mails()
    check(len(got) == 4, "exactly 4 e-mails (2 down, 2 up): %d" % len(got))
    by = {}
    for m, env in got:
        by.setdefault((str(m["X-Netpulse-Site"]), kind(m)), []).append((m, env))
    for s in ("school-1", "school-2"):
        check(len(by.get((s, "site_down"), [])) == 1, "%s: one DOWN" % s)
        check(len(by.get((s, "site_up"), [])) == 1, "%s: one UP" % s)
    print("first DOWN %.1f s after the last heartbeat" % (t_down - cut_from / 1000))
    for s, rc in (("school-1", ["noc@district.example", "high-schools@district.example",
                                "head@school1.example"]),
                  ("school-2", ["noc@district.example"])):
        for k in ("site_down", "site_up"):
            m, env = by[(s, k)][0]
            check_message(m, env, rc, "https://np.district.example/sites/" + s)
    m = by[("school-1", "site_down")][0][0]
    subj = str(m["Subject"])
    check("Lincoln \u00c9cole High" in subj and "Bcc: evil" in subj, "hostile name shown: %r" % subj)
    check("evil" not in str(m["To"]), "no recipient from the name")
    for s in ("school-1", "school-2"):
        up = str(by[(s, "site_up")][0][0]["Subject"])
        d = duration_s(up)
        real = (cut_to - cut_from) / 1000
        check(d is not None and abs(d - real) <= 4, "%s UP duration %s s, cut %.1f s" % (s, d, real))
    # webhooks: 4 alerts x 3 formats
    wait_for(lambda: len(hooks) >= 12, 10, "12 webhook posts")
    for path, ctype, body in hooks:
        check(ctype == "application/json", "webhook content type")
        j = json.loads(body)
        if path == "/generic":
            check(j["source"] == "netpulse" and j["kind"] in ("site_down", "site_up") and
                  j["site"] in ("school-1", "school-2") and j["link"].endswith(j["site"]) and
                  j["severity"] in ("critical", "info") and j["title"] and j["text"],
                  "generic webhook %s %s" % (j["kind"], j["site"]))
        elif path == "/slack":
            check(set(j) == {"text"} and "[netpulse]" in j["text"], "slack webhook")
        else:
            check(j["@type"] == "MessageCard" and j["title"] and j["text"] and
                  j["potentialAction"][0]["targets"][0]["uri"].startswith(
                      "https://np.district.example/sites/"), "teams webhook")
    check(len(hooks) == 12, "no more webhook posts than alerts x webhooks")
    r = cli(conf, "alert", "list")
    rows = [ln for ln in r.stdout.splitlines()[1:] if ln.strip()]
    check(r.returncode == 0 and len(rows) == 4 and all(" sent " in ln for ln in rows),
          "alert list: 4 alerts sent\n" + r.stdout)
    r = cli(conf, "alert", "test", "--to", "ops@district.example")
    check(r.returncode == 0 and "smtp_code=250" in r.stdout, "alert test: " + r.stdout.strip())
    m, env = wait_for(lambda: [x for x in mails() if kind(x[0]) == "test"], 10, "the test e-mail")[0]
    check(env["rcpt_tos"] == ["ops@district.example"], "test e-mail to --to")
    r = cli(conf, "alert", "test", "--to", "ops@district.example\r\nBcc: evil@evil.example")
    check(r.returncode == 2, "alert test refuses a hostile --to")
    f.close()
    stop_collector()


def scenario_digest():
    # Ingest takes about 10 batches/s on the test machines, so a round of 50
    # heartbeats takes ~5 s and the last heartbeats before the cut spread over
    # that much (as real agents' spread over their batch interval): the
    # settings leave room for it (digest_window > the spread).
    conf = write_config({"site_down_after": "8s", "digest_window": "7s", "settle_wait": "8s"})
    smtp.start()
    ids = ["school-%02d" % i for i in range(50)]
    setup_sites(conf, [(i, "School %s" % i, "elementary", "") for i in ids])
    start_collector(conf)
    f = Feeder()
    f.start(set(ids))
    time.sleep(11)
    f.live = set()
    cut_from = now_ms()
    print("cut at", cut_from, "beat round of 50 sites took %.2f s" % f.round_s, flush=True)
    got = wait_for(lambda: mails(), 30, "the digest")
    time.sleep(4)
    got = mails()
    check(len(got) == 1, "one e-mail for 50 sites down: %d" % len(got))
    m = got[0][0]
    check(kind(m) == "site_down" and "50 sites unreachable" in str(m["Subject"]),
          "digest: " + str(m["Subject"]))
    text = m.get_body(("plain",)).get_content()
    check(all(("- School %s (%s)" % (i, i)) in text for i in ids), "digest lists every site")
    check_message(m, got[0][1], ["noc@district.example"])
    cut_to = now_ms() - 500
    f.cmd("backlog %d %d %s" % (cut_from, cut_to, " ".join(ids)))
    f.live = set(ids)
    wait_for(lambda: len(mails()) >= 2, 40, "the recovery digest")
    time.sleep(3)
    got = mails()
    check(len(got) == 2 and kind(got[1][0]) == "site_up" and
          "50 sites reachable again" in str(got[1][0]["Subject"]),
          "one recovery digest: %s" % [str(x[0]["Subject"]) for x in got])
    f.close()
    stop_collector()


def scenario_flap():
    flap_max = 2
    conf = write_config({"hold_down": "1s", "settle_wait": "1s", "digest_window": "0",
                         "flap_max": str(flap_max), "flap_window": "10m", "flap_stable": "8s"})
    smtp.start()
    setup_sites(conf, [("flappy", "Flappy Middle", "middle", "")])
    start_collector(conf)
    f = Feeder()
    f.start({"flappy"})
    time.sleep(3)
    t0 = time.time()
    while time.time() - t0 < 28:  # 4 s silent (> site_down_after), 3 s heard
        f.live = set()
        time.sleep(4)
        f.live = {"flappy"}
        time.sleep(3)
    wait_for(lambda: mails() and kind(mails()[-1][0]) == "site_up" and
             "flapping" in mails()[-1][0].get_body(("plain",)).get_content() and mails(),
             20, "the recovery once stable")
    time.sleep(2)
    got = mails()
    kinds = [kind(m) for m, _ in got]
    print("messages:", kinds)
    check(len(got) <= 2 * flap_max + 2, "at most 2 * flap_max + 2 = %d messages: %d"
          % (2 * flap_max + 2, len(got)))
    check(kinds.count("site_flapping") == 1, "one flapping notice")
    check(kinds[-1] == "site_up", "last message: the recovery")
    f.close()
    stop_collector()


def scenario_smtp_outage():
    conf = write_config({})
    setup_sites(conf, [("school-9", "Pine High", "high", "")])
    start_collector(conf)
    f = Feeder()
    f.start({"school-9"})
    time.sleep(4)
    f.live = set()

    def pending():
        r = cli(conf, "alert", "list")
        rows = [ln for ln in r.stdout.splitlines()[1:] if "site_down" in ln]
        return rows and " pending " in rows[0] and rows

    rows = wait_for(pending, 20, "a pending DOWN with failed attempts")
    print("while the server is down:", rows[0])
    time.sleep(2)
    stop_collector()
    start_collector(conf)
    time.sleep(3)
    check(not mails(), "nothing delivered while the server is down")
    smtp.start()
    wait_for(mails, 20, "the DOWN e-mail once the server is back")
    time.sleep(6)
    got = mails()
    check(len(got) == 1 and kind(got[0][0]) == "site_down", "the alert arrived once: %d" % len(got))
    r = cli(conf, "alert", "list")
    rows = [ln for ln in r.stdout.splitlines()[1:] if ln.strip()]
    check(len(rows) == 1 and " sent " in rows[0], "one alert, sent:\n" + r.stdout)
    f.close()
    stop_collector()


HOSTILE_IF = "Gi0/1\r\nBcc: evil@evil.example\r\nX-Injected: 1"
HOSTILE_ALIAS = ("Uplink to district\r\nBcc: evil@evil.example\r\n\r\n"
                 "--=_np0000000000000000_00000000\r\nContent-Type: text/html\r\n\r\n"
                 "<script>x</script>")


def scenario_events():
    conf = write_config({"interface_hold": "1s"})
    smtp.start()
    setup_sites(conf, [("school-5", "Maple Middle", "middle", "")])
    start_collector(conf)
    f = Feeder()
    f.start({"school-5"})
    time.sleep(3)
    check(not mails(), "no e-mail while the site beats")
    ifn, alias = HOSTILE_IF.encode().hex(), HOSTILE_ALIAS.encode().hex()
    t_down = now_ms() - 5000  # down 5 s ago: past interface_hold when learned
    f.cmds("ifevent school-5 down %d core-sw %s %s" % (t_down, ifn, alias), "again school-5")
    wait_for(lambda: of_kind("iface_down"), 15, "the interface-down e-mail")
    t_up = now_ms()
    f.cmds("ifevent school-5 up %d core-sw %s %s" % (t_up, ifn, alias), "again school-5")
    wait_for(lambda: of_kind("iface_up"), 15, "the interface-up e-mail")
    lost_from, lost_to = now_ms() - 3600000, now_ms() - 1800000
    f.cmds("overflow school-5 %d %d" % (lost_from, lost_to), "again school-5")
    wait_for(lambda: of_kind("spool_dropped"), 15, "the spool-overflow e-mail")
    # the same three batches once more (duplicates: acknowledged, not applied)
    f.cmds("ifevent school-5 down %d core-sw %s %s" % (t_down, ifn, alias))
    time.sleep(4)
    got = mails()
    kinds = sorted(kind(m) for m, _ in got)
    # each batch POSTed twice, and a new batch repeating the DOWN (same agent
    # time: the same alert by its idempotency key): one e-mail each
    check(kinds == ["iface_down", "iface_up", "spool_dropped"], "e-mails: %s" % kinds)
    for m, env in got:
        check_message(m, env, ["noc@district.example"], "https://np.district.example/sites/school-5")
        subj = str(m["Subject"])
        check(str(m["X-Netpulse-Site"]) == "school-5", "site header")
        check("evil" not in str(m["To"]) and "evil" not in " ".join(env["rcpt_tos"]),
              "no recipient from the interface")
        check(m["X-Injected"] is None, "no injected header")
        if kind(m).startswith("iface"):
            check("Maple Middle" in subj and "core-sw/Gi0/1" in subj, "interface named: %r" % subj)
            text = m.get_body(("plain",)).get_content()
            check("core-sw/Gi0/1" in text, "interface named in the text")
            html = m.get_body(("html",)).get_content()
            check("<script>" not in html, "no markup from the interface")
    r = cli(conf, "alert", "list")
    rows = [ln for ln in r.stdout.splitlines()[1:] if ln.strip()]
    check(r.returncode == 0 and len(rows) == 3, "alert list: 3 alerts\n" + r.stdout)
    f.close()
    stop_collector()


def scenario_iface_restart():
    conf = write_config({"interface_hold": "1s"})
    smtp.start()
    setup_sites(conf, [("school-6", "Birch Middle", "middle", "")])
    start_collector(conf)
    f = Feeder()
    f.start({"school-6"})
    time.sleep(2)
    ifn, alias = b"Gi0/2".hex(), b"Library switch".hex()
    t_down = now_ms() - 5000
    f.cmd("ifevent school-6 down %d core-sw %s %s" % (t_down, ifn, alias))
    wait_for(lambda: of_kind("iface_down"), 15, "the interface-down e-mail")
    f.hangup()
    stop_collector()
    start_collector(conf)
    f.reconnect({"school-6"})
    time.sleep(1)
    t_up = now_ms()
    f.cmd("ifevent school-6 up %d core-sw %s %s" % (t_up, ifn, alias))
    wait_for(lambda: of_kind("iface_up"), 15, "the interface-up e-mail after the restart")
    time.sleep(3)
    kinds = sorted(kind(m) for m, _ in mails())
    check(kinds == ["iface_down", "iface_up"], "one down, one recovery e-mail: %s" % kinds)
    m = of_kind("iface_up")[0][0]
    check("core-sw/Gi0/2" in str(m["Subject"]), "recovery names the interface: %s" % m["Subject"])
    f.close()
    stop_collector()


def scenario_utilisation():
    conf = write_config({"utilisation": "90%", "utilisation_for": "4s",
                         "utilisation_clear": "80%", "utilisation_clear_for": "3s"})
    smtp.start()
    setup_sites(conf, [("school-7", "Cedar High", "high", "")])
    db = sqlite3.connect(os.path.join(T, "data", "state.db"))
    # The inventory says 1 Gbps; the rate in force is the last `circuit set`
    # change that has started (100 Mbps), not the one still ahead (10 Gbps).
    db.execute("UPDATE sites SET circuit_bps = 1000000000 WHERE id = 'school-7'")
    db.commit()
    db.close()
    for when, rate in (("2020-01-01", "100Mbps"), ("2099-01-01", "10Gbps")):
        r = cli(conf, "circuit", "set", "school-7", when, rate)
        check(r.returncode == 0, "circuit set %s %s: %s" % (when, rate, r.stderr))
    start_collector(conf)
    f = Feeder()
    f.start({"school-7"})

    def second(wan_mbps, lan_mbps=95):
        t0 = time.time()
        # wan0: 1 Gbps port on a 100 Mbps circuit; lan1: 100 Mbps port, its speed counts
        f.cmds("util school-7 wan0 %d 1000000 1000000000 0 1000" % (wan_mbps * 1e6),
               "util school-7 lan1 1000 %d 1000000000 0 1000" % (lan_mbps * 1e6))
        time.sleep(max(0.0, 1 - (time.time() - t0)))

    for v in (95, 95, 95, 85, 95, 95, 95):  # a dip: never 4 s high in a row
        second(v)
    check(not of_kind("util_high"), "no notice before utilisation_for in a row")
    for v in (95, 96, 97, 95):
        second(v)
    wait_for(lambda: of_kind("util_high"), 10, "the high-utilisation e-mail")
    for v in (85, 84, 86, 85, 85):  # between clear and threshold: still high
        second(v)
    check(not of_kind("util_ok"), "no all-clear while above utilisation_clear")
    for v in (50, 50, 50, 50, 50):
        second(v)
    wait_for(lambda: of_kind("util_ok"), 10, "the all-clear e-mail")
    time.sleep(2)
    got = mails()
    kinds = [kind(m) for m, _ in got]
    check(sorted(kinds) == ["util_high", "util_ok"], "e-mails: %s" % kinds)
    for m, env in got:
        check("edge/wan0" in str(m["Subject"]), "the uplink named: %s" % m["Subject"])
        # the all-clear goes to whoever had the warning
        check_message(m, env, ["noc@district.example", "high-schools@district.example"],
                      "https://np.district.example/sites/school-7")
    text = of_kind("util_high")[0][0].get_body(("plain",)).get_content()
    check(re.search(r"Utilisation 9[5-7]\.\d % \(threshold 90\.0 %\)", text),
          "of the circuit rate: " + text.splitlines()[0])
    r = cli(conf, "alert", "list")
    check(r.returncode == 0 and "util_high" in r.stdout and "util_ok" in r.stdout,
          "alert list shows them:\n" + r.stdout)
    f.close()
    stop_collector()


def scenario_sla():
    conf = write_config({"sla_interval": "1s"}, {"uptime_high": "99.9999%"})
    smtp.start()
    setup_sites(conf, [("school-h", "Elm High", "high", ""),
                       ("school-e", "Ash Elementary", "elementary", "")])
    start_collector(conf)
    f = Feeder()
    f.start({"school-h", "school-e"})
    time.sleep(3)
    check(not mails(), "nothing while the sites beat")
    cut_to = now_ms() - 1000
    f.cmd("backlog %d %d school-h school-e" % (cut_to - 5000, cut_to))
    wait_for(lambda: of_kind("sla_risk"), 15, "the SLA e-mail")
    time.sleep(3)
    got = of_kind("sla_risk")
    check(len(got) == 1 and str(got[0][0]["X-Netpulse-Site"]) == "school-h",
          "one SLA e-mail, for the high school: %d" % len(got))
    text = got[0][0].get_body(("plain",)).get_content()
    check("against the target 99.9999 %" in text.replace("99.999900", "99.9999")
          or "99.999" in text, "target named: " + text.splitlines()[0])
    f.hangup()
    stop_collector()
    start_collector(conf)
    f.reconnect({"school-h", "school-e"})
    time.sleep(5)
    kinds = [kind(m) for m, _ in mails()]
    check(kinds == ["sla_risk"], "once per site and month, across a restart: %s" % kinds)
    r = cli(conf, "alert", "list")
    check(r.returncode == 0 and "sla_risk" in r.stdout, "alert list shows it:\n" + r.stdout)
    f.close()
    stop_collector()


def main():
    rc = 0
    try:
        {"down_up": scenario_down_up, "digest": scenario_digest, "flap": scenario_flap,
         "smtp_outage": scenario_smtp_outage, "events": scenario_events,
         "iface_restart": scenario_iface_restart, "utilisation": scenario_utilisation,
         "sla": scenario_sla}[SCENARIO]()
        print("PASS", SCENARIO)
    except (Fail, subprocess.TimeoutExpired, KeyError, ValueError, OSError) as e:
        rc = 1
        print("FAIL (%s): %s" % (SCENARIO, e), file=sys.stderr)
        try:
            with open(os.path.join(T, "collector.log"), "rb") as fh:
                tail = fh.read().decode(errors="replace").splitlines()[-40:]
            print("---- collector log (tail) ----\n" + "\n".join(tail), file=sys.stderr)
        except OSError:
            pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        smtp.stop()
        hook_srv.shutdown()
        if os.environ.get("NP_KEEP_TMP"):
            print("kept", T, file=sys.stderr)
        else:
            shutil.rmtree(T, ignore_errors=True)
    return rc


sys.exit(main())
