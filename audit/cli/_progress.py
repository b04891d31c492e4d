"""Progress on stderr for long work: a rewritten line on a terminal, a line every few seconds otherwise.

Two kinds of stage:

- a **count** stage, reported as ``progress(stage, done, total)`` (``total`` None when unknown, ``unit``
  "rows" unless told): its lines carry the count, the rate and, when the total is known, an ETA;
- a **step** (``progress.step("bootstrap intervals")``), work that is not a count: one line saying what runs,
  then, when it ends, how long it took.

A stage ends at the next stage or step, at :meth:`Progress.close`, or (count with a known total) when ``done``
reaches ``total``; its last line always states the final count, the rate and the time taken, e.g.
``audit: attribution: 2,000 rows done (1,234 rows/s, 1.6 s)``. Outside a terminal every line is a new line
(start, one every ``interval`` seconds, the end); on a terminal one line is rewritten in place and ended with a
newline when the stage ends. ``quiet`` prints nothing at all.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_seconds"]


def format_seconds(s: float) -> str:
    """A duration for people: "0.4 s", "12 s", "4 min 05 s", "1 h 07 min"."""
    s = max(0.0, float(s))
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        m, sec = divmod(int(round(s)), 60)
        return f"{m} min {sec:02d} s"
    h, rest = divmod(int(round(s)), 3600)
    return f"{h} h {rest // 60:02d} min"


class Progress:
    """Callable as ``progress(stage, done, total)`` (the pipeline's protocol), plus :meth:`step` for work
    that is not a count and :meth:`close` at the end. Silent when ``quiet``.

    Parameters
    ----------
    quiet : bool
        Print nothing.
    stream : text stream, default sys.stderr
        A terminal (``isatty()`` true) gets one rewritten line; anything else gets plain lines.
    interval : float, optional
        Least seconds between two lines of one stage (the first and the last line are always printed).
        Default 0.2 on a terminal, 5 otherwise.
    clock : callable, default time.perf_counter
        Seconds; injectable for tests.
    """

    def __init__(
        self,
        quiet: bool = False,
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self._clock = clock
        self._kind: str | None = None  # "count", "step" or None (nothing open)
        self._stage: str | None = None
        self._unit = "rows"
        self._total: int | None = None
        self._t0 = 0.0
        self._done0 = 0  # the count at the stage's first report: the rate counts what came after it
        self._done = 0
        self._last = 0.0  # when the last line was printed
        self._width = 0  # length of the line now shown on a terminal

    # --- the protocol ------------------------------------------------------------------------------------

    def __call__(self, stage: str, done: int, total: int | None, *, unit: str = "rows") -> None:
        """Report that ``done`` of ``total`` (None: unknown) ``unit`` of ``stage`` are done.

        The first report of a stage starts it (report ``done=0`` before the work begins for an exact rate
        and duration); a report with ``done >= total`` ends it.
        """
        if self.quiet:
            return
        now = self._clock()
        if self._kind != "count" or stage != self._stage:
            if self._kind is None and stage == self._stage and done == self._done:
                return  # the same final report again: the stage has already ended
            self._end(now)
            self._kind, self._stage, self._unit, self._total = "count", stage, unit, total
            self._t0, self._done0, self._done = now, done, done
            if total is not None and done >= total:
                self._end(now)
                return
            self._emit(self._count_line(now, start=True), now)
            return
        self._done, self._total = done, total
        if total is not None and done >= total:
            self._end(now)
        elif now - self._last >= self.interval:
            self._emit(self._count_line(now), now)

    def step(self, text: str) -> None:
        """Start a piece of work that is not a count, e.g. ``step("bootstrap intervals")``: one line
        ``audit: bootstrap intervals ...`` now and ``audit: bootstrap intervals: done (0.8 s)`` when the next
        stage or step begins, or at :meth:`close`."""
        if self.quiet:
            return
        now = self._clock()
        self._end(now)
        self._kind, self._stage, self._t0 = "step", text, now
        self._emit(f"audit: {text} ...", now)

    def close(self) -> None:
        """End the open stage (its final line) and leave the terminal on a fresh line. Safe to call twice."""
        if self.quiet:
            return
        self._end(self._clock())

    # --- lines -------------------------------------------------------------------------------------------

    def _rate(self, now: float) -> float | None:
        elapsed = now - self._t0
        moved = self._done - self._done0
        return moved / elapsed if moved > 0 and elapsed > 0 else None

    def _amount(self) -> str:
        if self._total is None:
            return f"{self._done:,} {self._unit}"
        return f"{self._done:,}/{self._total:,} {self._unit}"

    def _count_line(self, now: float, start: bool = False) -> str:
        head = f"audit: {self._stage}: "
        if start and self._done == 0:
            return head + ("starting" if self._total is None else f"starting ({self._total:,} {self._unit})")
        line = head + self._amount()
        rate = None if start else self._rate(now)
        if rate is None:
            return line
        extra = [f"{rate:,.0f} {self._unit}/s"]
        if self._total is not None:
            extra.append(f"ETA {format_seconds(max(self._total - self._done, 0) / rate)}")
        return f"{line} ({', '.join(extra)})"

    def _final_line(self, now: float) -> str:
        elapsed = format_seconds(now - self._t0)
        if self._kind == "step":
            return f"audit: {self._stage}: done ({elapsed})"
        rate = self._rate(now)
        extra = ([f"{rate:,.0f} {self._unit}/s"] if rate is not None else []) + [elapsed]
        return f"audit: {self._stage}: {self._amount()} done ({', '.join(extra)})"

    def _end(self, now: float) -> None:
        """Print the open stage's final line (a terminal then moves to a fresh line) and close it."""
        if self._kind is None:
            return
        self._emit(self._final_line(now), now)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0
        self._kind = None

    def _emit(self, line: str, now: float) -> None:
        self._last = now
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
