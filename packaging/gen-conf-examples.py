#!/usr/bin/env python3
"""Writes packaging/agent.conf.example and packaging/collector.conf.example
from the option tables the programs print with --help, so the shipped
/etc/netpulse/*.conf list every option with its default and stay in sync.

    packaging/gen-conf-examples.py BUILD_DIR [OUT_DIR]

Every option is commented out (the built-in default applies); the main
section header stays active, and the settings a packaged install needs
(user, paths) are set. tests/integration/packaging checks the committed
files match what this prints."""
import subprocess
import sys
import textwrap

HEADERS = {
    "agent": """\
# /etc/netpulse/agent.conf: netpulse-agent configuration (INI), see
# netpulse-agent.conf(5) and netpulse-agent(8).
#
# Every option is listed with its default, commented out; a value carries
# its unit (500ms 10s 5m 1h 7d, 64KiB 256MiB, 100Mbps 1Gbps, 99.5%%). A secret
# (token, community, passwords) may be given inline or as KEY_file = PATH.
# To start: set id, collector and token_file below, add one section per
# device ([snmp NAME]), WAN interface ([pcap NAME]) and probe ([probe NAME]),
# check with `netpulse-agent -c /etc/netpulse/agent.conf --check`, then
# `systemctl enable --now netpulse-agent`.
""",
    "collector": """\
# /etc/netpulse/collector.conf: netpulse-collector and netpulse
# configuration (INI), see netpulse-collector.conf(5), netpulse-collector(8)
# and netpulse(1).
#
# Every option is listed with its default, commented out; a value carries
# its unit (500ms 10s 5m 1h 7d, 64KiB 256MiB, 100Mbps 1Gbps, 99.5%%). A secret
# may be given inline or as KEY_file = PATH.
# To start: put the TLS certificate and key at tls_cert and tls_key (readable
# by the netpulse group), check with
# `netpulse-collector -c /etc/netpulse/collector.conf --check`, then
# `systemctl enable --now netpulse-collector`; enrol agents with
# `netpulse agent enrol SITE-ID`.
""",
}
# Settings the package sets (active) rather than leaving at the default.
ACTIVE = {
    "agent": {"agent": {"user": "netpulse"}},
    "collector": {},
}
MAIN = {"agent": "agent", "collector": "collector"}


def convert(kind, help_text):
    out = [HEADERS[kind].replace("%%", "%")]
    lines = help_text.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("["))
    section = None
    for line in lines[start:]:
        if not line.strip():
            out.append("")
            continue
        head, _, doc = line.partition(" ; ")
        head, doc = head.rstrip(), doc.strip()
        if head.startswith("["):
            section = head.strip("[]").split()[0]
            out.append("")
            out.extend(textwrap.wrap(doc, 76, initial_indent="# ", subsequent_indent="# "))
            out.append(head if section == MAIN[kind] else "; " + head)
            continue
        key = head.split("=", 1)[0].strip()
        out.extend(textwrap.wrap(doc, 76, initial_indent="# ", subsequent_indent="#   "))
        value = ACTIVE[kind].get(section, {}).get(key)
        if value is not None:
            out.append(f"{key} = {value}")
        else:
            out.append("; " + head)
    text = "\n".join(out)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.rstrip() + "\n"


def main():
    build = sys.argv[1]
    outdir = sys.argv[2] if len(sys.argv) > 2 else None
    for kind, exe in (("agent", "agent/netpulse-agent"),
                      ("collector", "collector/netpulse-collector")):
        text = subprocess.run([f"{build}/{exe}", "--help"], check=True,
                              capture_output=True, text=True).stdout
        conf = convert(kind, text)
        if outdir:
            with open(f"{outdir}/{kind}.conf.example", "w") as f:
                f.write(conf)
        else:
            sys.stdout.write(conf)


main()
