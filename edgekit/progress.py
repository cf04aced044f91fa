"""A one-line progress bar on stderr, drawn only for a person watching (a terminal), so logs, pipes and
--json output never see it. Calibration and evaluation both draw it."""

import sys
import time


class Progress:
    """`update()` once per item; `close()` ends the line. Redraws at most ten times a second; with a `unit`
    ("img") the line ends with the rate."""

    def __init__(self, total, label="", stream=None, enabled=None, unit=None, width=30):
        self.total, self.label, self.unit, self.width = max(int(total), 0), label, unit, width
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done, self.start, self.drawn = 0, time.perf_counter(), 0.0

    def update(self, count=1):
        self.done += count
        now = time.perf_counter()
        if self.enabled and (now - self.drawn >= 0.1 or self.done >= self.total):
            self.drawn = now
            self.stream.write("\r" + self.line(now - self.start))
            self.stream.flush()

    def line(self, elapsed):
        filled = int(self.width * min(self.done, self.total) / self.total) if self.total else self.width
        text = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total}"
        if self.unit:
            rate = self.done / elapsed if elapsed > 0 else 0.0
            text += f" {rate:.1f} {self.unit}/s"
        return text

    def close(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
