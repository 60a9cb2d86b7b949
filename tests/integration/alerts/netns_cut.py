#!/usr/bin/env python3
"""The issue's alert test over a real link cut: the real agent (with snmpd) in
one network namespace, the real collector in another, a veth pair between
them (the harness of tests/integration/e2e/test_e2e.py, imported), and the
SMTP server of smtp_server.py (STARTTLS, AUTH) run inside the collector's
namespace. The link is cut for CUT_S seconds.

  netns_cut.py AGENT COLLECTOR NETPULSE

Passes when exactly two e-mails arrive: one site_down within 2 minutes of the
cut, one site_up whose stated duration is the cut's within one probe
interval (the agent's probes, every 5 s, settle the outage), and nothing
else. Short settings: site_down_after 6 s (three 2 s batch intervals);
hold_down 10 s, so a duration measured up to the notice instead of the
outage's end would be off by more than the tolerance (one probe interval).
Exit 0 pass, 1 fail, 77 skipped (not root / no netns)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import maildir  # noqa: E402
import test_e2e as e2e  # noqa: E402

CUT_S = 35
SITE_DOWN_AFTER_S = 6


def smtp_start(work):
    """aiosmtpd in the collector's namespace; returns (process, port)."""
    e2e.sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-nodes", "-days", "2", "-subj", "/CN=localhost",
           "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
           "-keyout", f"{work}/smtp-key.pem", "-out", f"{work}/smtp.pem")
    pf = f"{work}/smtp.port"
    p = subprocess.Popen(["ip", "netns", "exec", e2e.NS_C, sys.executable,
                          os.path.join(HERE, "smtp_server.py"), "--dir", f"{work}/mail",
                          "--cert", f"{work}/smtp.pem", "--key", f"{work}/smtp-key.pem",
                          "--user", "netpulse", "--password", "s3cret pass", "--port-file", pf],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if os.path.exists(pf):
            return p, int(open(pf).read())
        time.sleep(0.1)
    p.kill()
    raise RuntimeError("the SMTP server did not start")


def alert_conf(work, port):
    return ("\n[smtp]\nurl = smtp://127.0.0.1:%d\nfrom = netpulse@district.example\n"
            "to = noc@district.example\nuser = netpulse\npassword = s3cret pass\n"
            "ca_file = %s/smtp.pem\ntimeout = 10s\n\n"
            "[alerts]\nsite_down_after = %ds\nhold_down = 10s\nsettle_wait = 30s\n"
            "digest_window = 0\npoll = 500ms\nretry_initial = 1s\nretry_max = 2s\n"
            % (port, work, SITE_DOWN_AFTER_S))


def run(s, mail):
    a = s.agent
    check = e2e.check
    check(a.wait_line(r"uplink: sent seq=3 ", 40) is not None, "agent uploads:\n" + a.tail())
    check(a.wait_line(r"probe: uplink up", 10) is not None, "agent's uplink up before the cut")
    time.sleep(3)
    check(not maildir.read(mail), "no e-mail before the cut")
    t_cut = time.time()
    s.net.cut(True)
    e2e.log("link cut")
    seen = {}  # message file -> when it was first seen
    deadline = t_cut + CUT_S
    while time.time() < deadline:
        for f in os.listdir(mail) if os.path.isdir(mail) else []:
            seen.setdefault(f, time.time())
        time.sleep(0.2)
    s.net.cut(False)
    t_up = time.time()
    cut = t_up - t_cut
    e2e.log(f"link back after {cut:.1f} s")
    end = time.time() + 60
    while time.time() < end and not any(maildir.kind(m) == "site_up"
                                        for m, _ in maildir.read(mail)):
        time.sleep(0.5)
    time.sleep(5)  # anything more would come now
    got = maildir.read(mail)
    kinds = [maildir.kind(m) for m, _ in got]
    e2e.log(f"e-mails: {kinds}")
    check(kinds == ["site_down", "site_up"], f"exactly one down and one recovery e-mail: {kinds}")
    if kinds != ["site_down", "site_up"]:
        return
    down_at = seen.get("0000.eml")
    check(down_at is not None and down_at - t_cut <= 120,
          "down e-mail within 2 minutes of the cut: %s s"
          % (None if down_at is None else round(down_at - t_cut, 1)))
    subject = str(got[1][0]["Subject"])
    d = maildir.duration_s(subject)
    check(d is not None and abs(d - cut) <= e2e.INTERVAL,
          f"recovery states {d} s for a {cut:.1f} s cut: {subject!r}")
    check(all(env["tls"] and env["auth"] == "netpulse" for _, env in got),
          "delivered over STARTTLS with AUTH")
    text = got[1][0].get_body(("plain",)).get_content()
    check("Cause: link" in text, "recovery gives the cause the agent's probes settled: link")


def main():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("snmpd"):
        print("skipped: needs root, iproute2 and snmpd")
        return 77
    e2e.configure("mail", *sys.argv[1:4])
    for line in e2e.sh("ip", "netns", "list").stdout.splitlines():  # left by a killed run
        m = re.match(r"(npem[ac](\d+))\b", line)
        if m and not os.path.exists(f"/proc/{m.group(2)}"):
            e2e.sh("ip", "netns", "del", m.group(1), ok_rc=(0, 1))
    work = tempfile.mkdtemp(prefix="np-alert-netns-")
    net = e2e.Net()
    s = smtp = None
    t0 = time.monotonic()
    try:
        net.up()
        smtp, port = smtp_start(work)
        s = e2e.Setup(work, alert_conf(work, port))
        s.net = net
        s.start()
        run(s, f"{work}/mail")
        e2e.check(s.collector.stop() == 0, "collector: SIGTERM exits 0")
    except Exception as e:  # a broken setup is a failure, with its reason
        e2e.check(False, f"{type(e).__name__}: {e}")
    finally:
        if e2e.FAILS and s:
            for p in (s.agent, s.collector):
                if p:
                    print(f"---- {p.name} (tail) ----\n{p.tail(40)}", file=sys.stderr)
        if s:
            s.close()
        if smtp:
            smtp.kill()
            smtp.wait()
        net.close()
        shutil.rmtree(work, ignore_errors=True)
    e2e.log(f"alert netns cut: {len(e2e.FAILS)} failures in {time.monotonic() - t0:.0f} s")
    return 1 if e2e.FAILS else 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # ctest timeout: clean up
    sys.exit(main())
