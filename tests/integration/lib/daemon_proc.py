"""A daemon under test whose stderr is collected line by line (shared by the
e2e and uplink harnesses)."""
import re
import signal
import subprocess
import threading
import time


class Proc:
    """Starts argv (env: its environment, default inherited); `lines` grows as
    the daemon logs. Use wait_line() to wait for a line, grep() for matches."""

    def __init__(self, argv, name, env=None):
        self.name = name
        self.lines = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, errors="replace", env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.p.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()

    def wait_line(self, pattern, timeout_s=20, start=0):
        """Index of the first line from `start` matching pattern, or None on
        timeout or once the daemon has exited with no such line."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self.cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return i
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and i >= len(self.lines)):
                    return None
                self.cond.wait(min(left, 0.2))

    def grep(self, pattern):
        """re.Match of every line matching pattern (m.string: the line)."""
        rx = re.compile(pattern)
        with self.cond:
            return [m for m in (rx.search(l) for l in self.lines) if m]

    def stop(self, sig=signal.SIGTERM, timeout_s=15):
        """Sends sig (after SIGCONT, in case a test stopped it); its exit
        status, or None when it had to be killed."""
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.p.send_signal(sig)
        try:
            return self.p.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None

    def tail(self, n=30):
        with self.cond:
            return "\n".join(self.lines[-n:])
