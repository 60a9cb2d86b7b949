"""Reading what smtp_server.py stored: the messages (parsed, with their
envelopes) and the fields the alert tests check. Shared by run_alerts.py and
netns_cut.py."""
import email
import email.policy
import json
import os
import re


def read(folder):
    """[(message, envelope dict)] in the order the server accepted them."""
    out = []
    if not os.path.isdir(folder):
        return out
    for f in sorted(os.listdir(folder)):
        if f.endswith(".eml"):
            with open(os.path.join(folder, f), "rb") as fh:
                m = email.message_from_binary_file(fh, policy=email.policy.default)
            with open(os.path.join(folder, f[:-4] + ".json")) as fh:
                env = json.load(fh)
            out.append((m, env))
    return out


def kind(m):
    """The alert kind of a message (X-Netpulse-Alert)."""
    return str(m["X-Netpulse-Alert"])


def duration_s(subject):
    """The outage duration a recovery subject states ("after 1h 2m 3s"), s."""
    mm = re.search(r"after (?:(\d+)h )?(?:(\d+)m )?(\d+)s", subject)
    if not mm:
        return None
    h, mi, s = (int(x) if x else 0 for x in mm.groups())
    return h * 3600 + mi * 60 + s
