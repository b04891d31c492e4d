"""Progress lines: every stage ends with a line that states its final count (or that it is done), steps that
are not counts say what runs, a known total gives an ETA, and quiet prints nothing."""

from __future__ import annotations

import io

import pytest

from audit.cli._progress import Progress, format_seconds


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _log(**kwargs) -> tuple[Progress, io.StringIO, Clock]:
    stream, clock = io.StringIO(), Clock()
    return Progress(stream=stream, clock=clock, **kwargs), stream, clock


def _lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_unknown_total_ends_with_a_line_that_states_the_final_count() -> None:
    p, stream, clock = _log()
    p("attribution", 0, None)
    for done in (500, 1000, 1500, 2000):
        clock.t += 0.4  # faster than the 5 s interval: no line in between
        p("attribution", done, None)
    p.step("bootstrap intervals")  # the next stage ends the count
    assert _lines(stream) == [
        "audit: attribution: starting",
        "audit: attribution: 2,000 rows done (1,250 rows/s, 1.6 s)",
        "audit: bootstrap intervals ...",
    ]


def test_close_ends_the_last_stage_with_its_count() -> None:
    p, stream, clock = _log()
    p("baseline", 0, None)
    clock.t += 2.0
    p("baseline", 4096, None)
    p.close()
    p.close()  # twice is harmless
    assert _lines(stream)[-1] == "audit: baseline: 4,096 rows done (2,048 rows/s, 2.0 s)"
    assert len(_lines(stream)) == 2


def test_a_known_total_gives_an_eta_and_a_final_line_with_the_total() -> None:
    p, stream, clock = _log(interval=5.0)
    p("cross-check", 0, 1000)
    clock.t += 6.0
    p("cross-check", 300, 1000)  # 50 rows/s, 700 to go
    clock.t += 6.0
    p("cross-check", 1000, 1000)
    p("cross-check", 1000, 1000)  # the same final report again prints nothing
    p.close()
    assert _lines(stream) == [
        "audit: cross-check: starting (1,000 rows)",
        "audit: cross-check: 300/1,000 rows (50 rows/s, ETA 14 s)",
        "audit: cross-check: 1,000/1,000 rows done (83 rows/s, 12 s)",
    ]


def test_steps_say_what_runs_and_how_long_it_took() -> None:
    p, stream, clock = _log()
    p.step("bootstrap intervals")
    clock.t += 0.8
    p.step("findings")
    clock.t += 75
    p("rendering report", 0, None, unit="pages")
    clock.t += 1
    p("rendering report", 2, None, unit="pages")
    p.close()
    assert _lines(stream) == [
        "audit: bootstrap intervals ...",
        "audit: bootstrap intervals: done (0.8 s)",
        "audit: findings ...",
        "audit: findings: done (1 min 15 s)",
        "audit: rendering report: starting",
        "audit: rendering report: 2 pages done (2 pages/s, 1.0 s)",
    ]


def test_a_terminal_gets_one_rewritten_line_per_stage_with_an_eta() -> None:
    stream, clock = FakeTty(), Clock()
    p = Progress(stream=stream, clock=clock)
    p("attribution", 0, 2000)
    clock.t += 1.0
    p("attribution", 500, 2000)
    clock.t += 1.0
    p("attribution", 1200, 2000)
    p.step("bootstrap")
    clock.t += 0.5
    p.close()
    text = stream.getvalue()
    lines = text.split("\n")
    assert lines[-1] == ""  # the terminal is left on a fresh line
    attribution, bootstrap = lines[0], lines[1]
    shown = [part.rstrip() for part in attribution.split("\r") if part]
    assert shown == [
        "audit: attribution: starting (2,000 rows)",
        "audit: attribution: 500/2,000 rows (500 rows/s, ETA 3.0 s)",
        "audit: attribution: 1,200/2,000 rows (600 rows/s, ETA 1.3 s)",
        "audit: attribution: 1,200/2,000 rows done (600 rows/s, 2.0 s)",
    ]
    assert [part.rstrip() for part in bootstrap.split("\r") if part] == [
        "audit: bootstrap ...",
        "audit: bootstrap: done (0.5 s)",
    ]
    # each rewrite pads over the longer line it replaces
    parts = [part for part in attribution.split("\r") if part]
    assert all(len(b) >= len(a.rstrip()) for a, b in zip(parts, parts[1:], strict=False))


def test_quiet_prints_nothing() -> None:
    for stream in (io.StringIO(), FakeTty()):
        p = Progress(quiet=True, stream=stream, clock=Clock())
        p("attribution", 0, 10)
        p("attribution", 10, 10)
        p.step("bootstrap")
        p("baseline", 5, None)
        p.close()
        assert stream.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.04, "0.0 s"), (1.55, "1.6 s"), (12.4, "12 s"), (125, "2 min 05 s"), (3900, "1 h 05 min")]
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
