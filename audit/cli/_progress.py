"""Progress on stderr for long work: a rewritten line on a terminal, a line every few seconds otherwise."""

from __future__ import annotations

import sys
import time


class Progress:
    """Callable as ``progress(stage, done, total)``; silent when ``quiet``."""

    def __init__(self, quiet: bool = False, stream=None, interval: float | None = None) -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.2 if self.tty else 5.0)
        self._stage: str | None = None
        self._t0 = time.perf_counter()
        self._last = 0.0

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        new_stage = stage != self._stage
        if new_stage:
            if self._stage is not None and self.tty:
                self.stream.write("\n")
            self._stage = stage
            self._t0 = now
        finished = total is not None and done >= total
        if not (new_stage or finished or now - self._last >= self.interval):
            return
        self._last = now
        rate = done / max(now - self._t0, 1e-9)
        amount = f"{done:,}/{total:,}" if total else f"{done:,}"
        line = f"audit: {stage}: {amount} rows" + (f" ({rate:,.0f} rows/s)" if done and not new_stage else "")
        if self.tty:
            self.stream.write("\r" + line.ljust(72))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet and self.tty and self._stage is not None:
            self.stream.write("\n")
            self.stream.flush()
