"""A small plain-text progress bar for stderr (no dependencies).

On a terminal it redraws one line (``\\r``) at most every ``interval`` seconds; otherwise (a
log file, ``nohup``) it prints a new line at most every ``log_interval`` seconds, so logs stay
short. ``update(n, **fields)`` advances it and sets the fields shown after the counter.
"""

import sys
import time

__all__ = ["Progress"]


def _fmt_time(s):
    s = int(max(0, s))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class Progress:
    """Progress over ``total`` items (images, batches ...) labelled ``desc``."""

    def __init__(self, total, desc="", unit="img", stream=None, interval=0.25, log_interval=30.0,
                 enabled=True, width=24):
        self.total = max(int(total), 0)
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self.enabled = enabled
        self.width = width
        self.n = 0
        self.fields = {}
        self.start = time.monotonic()
        self._last = -1e9
        self._closed = False

    def line(self):
        elapsed = time.monotonic() - self.start
        frac = self.n / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        rate = self.n / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else 0.0
        extra = "".join(f" {k} {v}" for k, v in self.fields.items())
        return (f"{self.desc} [{'#' * filled}{'.' * (self.width - filled)}] {self.n}/{self.total} "
                f"{100 * frac:3.0f}% {rate:.0f} {self.unit}/s {_fmt_time(elapsed)}<{_fmt_time(eta)}"
                f"{extra}")

    def _write(self, final=False):
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.line() + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def update(self, n=1, **fields):
        self.n += n
        self.fields.update(fields)
        now = time.monotonic()
        if now - self._last >= self.interval and self.n < self.total:
            self._last = now
            self._write()

    def close(self, **fields):
        """Print the final state once (a newline on a terminal)."""
        if self._closed:
            return
        self.fields.update(fields)
        self._closed = True
        self._write(final=True)

    @property
    def elapsed(self):
        return time.monotonic() - self.start

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.close()
        elif self.tty and self.enabled:
            self.stream.write("\n")
        return False
