"""A one-line progress bar on stderr, drawn only for a person watching (a terminal), so logs, pipes and
--json output never see it."""

import sys
import time


class Progress:
    """`update()` once per item; `close()` ends the line. Redraws at most ten times a second."""

    def __init__(self, total, label="", stream=None, enabled=None, width=30):
        self.total, self.label, self.width = max(int(total), 0), label, width
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
        fraction = self.done / self.total if self.total else 1.0
        filled = int(round(fraction * self.width))
        rate = self.done / elapsed if elapsed > 0 else 0.0
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} "
                f"{rate:.1f} img/s")

    def close(self):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
