"""A progress report for long work on the console: done / total, the rate and the time left.

On a terminal, one line redrawn in place (a bar, the counts, the rate, the time left); elsewhere
(a log file, a pipe), a plain line now and then, so that a log stays short and readable.
"""
import sys
import time

BAR_WIDTH = 24


class ProgressLine:
    """Progress of `total` units of work, written to `stream`.

    Args:
        label: str, what is being done (`"Generating"`).
        unit: str, what is counted (`"samples"`).
        stream: a text file (default `sys.stdout`), redrawn in place when it is a terminal.
        interval: float, seconds between redraws on a terminal.
        log_interval: float, seconds between plain lines elsewhere.
        clock: `() -> float` seconds (default `time.monotonic`).

    `update(done, total)` after each piece of work; at `done == total` the report ends with a
    line of the whole time and rate. The rate counts from the first update on, whose piece of
    work may have had one-off costs (compiling), and is shown from the second update.
    """

    def __init__(self, label, unit, stream=None, interval=0.2, log_interval=15.0, clock=None):
        self.label, self.unit = label, unit
        self.stream = stream if stream is not None else sys.stdout
        self.clock = clock or time.monotonic
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if self.tty else log_interval
        self.began = self.clock()
        self.first = None            # (time, done) of the first update
        self.shown = None            # time of the last line written
        self.finished = False
        self.width = 0               # of the line on a terminal, which the next one overwrites

    def update(self, done, total):
        if self.finished:
            return
        now = self.clock()
        if self.first is None:
            self.first = (now, done)
        if done >= total:
            self.finished = True
            self._write(self._summary(done, now), end=True)
        elif self.shown is None or now - self.shown >= self.interval:
            self._write(self._line(done, total, now), end=False)
        else:
            return
        self.shown = now

    def _line(self, done, total, now):
        counts = f"{done:,}/{total:,} {self.unit}"
        since, done_then = self.first
        rate = (done - done_then) / (now - since) if now > since and done > done_then else None
        text = counts + f" ({100 * done / total:.0f}%)"
        if rate:
            text += f", {rate:,.0f} {self.unit}/s, {clock_time((total - done) / rate)} left"
        if not self.tty:
            return f"{self.label}: {text}"
        filled = int(BAR_WIDTH * done / total)
        return f"{self.label} [{'=' * filled}{' ' * (BAR_WIDTH - filled)}] {text}"

    def _summary(self, done, now):
        took = now - self.began
        rate = f", {done / took:,.0f} {self.unit}/s" if took > 0 else ""
        return f"{self.label}: {done:,} {self.unit} in {clock_time(took)}{rate}"

    def _write(self, text, end):
        if self.tty:
            self.stream.write("\r" + text.ljust(self.width) + ("\n" if end else ""))
            self.width = 0 if end else len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def clock_time(seconds):
    """`seconds` as `m:ss` or `h:mm:ss`."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
