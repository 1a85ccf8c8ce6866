"""The console progress line: in place on a terminal, plain lines now and then elsewhere."""
import io

from audiogen.progress import ProgressLine, clock_time


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_plain_lines_in_a_log_every_interval_and_a_summary():
    clock, log = Clock(), io.StringIO()
    line = ProgressLine("Generating", "samples", stream=log, log_interval=10, clock=clock)
    clock.now += 5
    line.update(1000, 100_000)      # the first chunk (compiled): no rate yet
    for done in range(4000, 28_000, 3000):      # then 1,000 samples/s, an update every 3 s
        clock.now += 3
        line.update(done, 100_000)
    clock.now += 3
    line.update(100_000, 100_000)
    lines = log.getvalue().splitlines()
    assert lines == [
        "Generating: 1,000/100,000 samples (1%)",
        "Generating: 13,000/100,000 samples (13%), 1,000 samples/s, 1:27 left",     # 12 s on
        "Generating: 25,000/100,000 samples (25%), 1,000 samples/s, 1:15 left",
        "Generating: 100,000 samples in 0:32, 3,125 samples/s",
    ]
    line.update(100_000, 100_000)   # after the end: nothing more
    assert log.getvalue().splitlines() == lines


def test_a_terminal_line_is_redrawn_in_place():
    clock, term = Clock(), Terminal()
    line = ProgressLine("Generating", "samples", stream=term, interval=0.5, clock=clock)
    line.update(0, 4000)
    clock.now += 1
    line.update(2000, 4000)
    clock.now += 0.1
    line.update(2100, 4000)        # within the interval: not drawn
    clock.now += 1
    line.update(4000, 4000)
    text = term.getvalue()
    assert "\n" not in text[:-1] and text.endswith("\n")
    drawn = text.split("\r")[1:]
    assert len(drawn) == 3
    assert drawn[0].startswith("Generating [" + " " * 24 + "] 0/4,000 samples (0%)")
    assert drawn[1].startswith("Generating [" + "=" * 12 + " " * 12 + "] 2,000/4,000 samples "
                               "(50%), 2,000 samples/s, 0:01 left")
    assert drawn[2].startswith("Generating: 4,000 samples in 0:02, 1,905 samples/s")
    assert len(drawn[2].rstrip("\n")) >= len(drawn[1])      # covers the line before


def test_clock_time():
    assert clock_time(0) == "0:00"
    assert clock_time(59.6) == "1:00"
    assert clock_time(3599) == "59:59"
    assert clock_time(3600 * 2 + 61) == "2:01:01"
