"""Shared by `audit run` and `audit demo`: stage, run, write, summarise, map the verdict to an exit code.

Two ways a run is stopped from outside end like Ctrl-C: the staging folder is removed (nothing half-written, no
``audit.json``), one line goes to stderr and the exit code says which signal it was:

- SIGINT (Ctrl-C): ``audit: interrupted``, exit 130 (128 + 2), mapped by :func:`audit.cli._common.guarded`;
- SIGTERM (what schedulers, ``timeout`` and Kubernetes send): ``audit: terminated (SIGTERM)``, exit 143
  (128 + 15), mapped here: while a run is in progress a SIGTERM raises :class:`Terminated` in the main thread.

The summary's time is the wall time of the run, up to the files written: for the `audit` command, since its process
started (interpreter start-up and the imports of torch and the pipeline take seconds, and `time audit run ...`
counts them); for an in-process call (a test, a notebook), since :func:`execute` was entered.
"""

from __future__ import annotations

import time

_IMPORT_STARTED = time.perf_counter()  # before the imports below: where /proc cannot say when the process started

import json  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

import typer  # noqa: E402

from audit.config import AuditConfig  # noqa: E402
from audit.errors import EXIT_GATE, EXIT_OK  # noqa: E402
from audit.outputs import staging  # noqa: E402
from audit.pipeline import run_audit  # noqa: E402
from audit.report.textwidth import pad_width, truncate_width  # noqa: E402
from audit.results import AuditRun, Verdict, to_dict  # noqa: E402

__all__ = ["EXIT_TERMINATED", "Terminated", "execute", "exit_code", "on_sigterm"]

EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process ended by SIGTERM
_GATE = {"never": 99, "warn": Verdict.WARN.order, "fail": Verdict.FAIL.order}
_first_call = True  # only the first execute() of an `audit` process counts from the process start


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM during a run. A BaseException, like KeyboardInterrupt, so that no
    ``except Exception`` on the way turns it into an error of the run."""


def exit_code(verdict: Verdict, fail_on: str) -> int:
    """0 while the verdict is below ``fail_on``, 1 at or above it (``never`` always gives 0)."""
    return EXIT_GATE if verdict.order >= _GATE[fail_on] else EXIT_OK


def _raise_terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the clean-up short
    raise Terminated()


@contextmanager
def on_sigterm(handler: Callable[[int, object], None] = _raise_terminated) -> Iterator[None]:
    """Within the block, SIGTERM calls ``handler`` (by default: raise :class:`Terminated`); the previous handler
    comes back afterwards. Outside the main thread (signals cannot be set there) the block runs unchanged."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _process_age() -> float | None:
    """Seconds since this process started (Linux: /proc), or None where that cannot be read."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22 (starttime), after "pid (comm) "
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _is_audit_command() -> bool:
    """Whether this process is the `audit` command (console script or ``python -m audit``), not a host program
    (a test session, a notebook) that calls the CLI in-process."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if spec is not None:  # python -m ...: which module
        return spec.name in ("audit", "audit.__main__")
    return bool(sys.argv) and Path(sys.argv[0]).stem == "audit"  # the console script


def _start_time() -> float:
    """When this run's clock starts (a ``perf_counter`` time): for the first run of an `audit` process, when the
    process started (interpreter start-up and imports included, as `time audit run ...` counts them); otherwise
    now."""
    global _first_call
    now = time.perf_counter()
    first, _first_call = _first_call, False
    if not (first and _is_audit_command()):
        return now
    age = _process_age()
    return now - age if age is not None else min(now, _IMPORT_STARTED)


def execute(config: AuditConfig, *, json_out: bool = False) -> tuple[AuditRun, int]:
    """Run the audit into a staging folder, move the files into ``config.out``, print the summary.

    Raises
    ------
    typer.Exit
        With code :data:`EXIT_TERMINATED` (143) when SIGTERM stopped the run; the staging folder is gone.
    """
    from audit.cli._progress import Progress

    started = _start_time()
    progress = Progress(quiet=config.quiet or json_out)
    try:
        with on_sigterm(), staging(config.out) as st:
            run = run_audit(config, progress=progress, outputs=st)
            if {"html", "pdf"} & set(config.formats):
                progress.step("rendering report")
            written = st.finish(run, config.formats)
            progress.close()
            run = st.run
    except Terminated:
        print("audit: terminated (SIGTERM); no results were written", file=sys.stderr, flush=True)
        raise typer.Exit(code=EXIT_TERMINATED) from None
    code = exit_code(run.verdict, config.fail_on)
    if json_out:
        typer.echo(json.dumps(to_dict(run), indent=2))
    elif not config.quiet:
        _summary(run, written, time.perf_counter() - started)
    return run, code


def _interval(lo: float, hi: float) -> str:
    """``[0.12, 0.34]``, or ``[no CI]`` when the ranking has no interval (NaN: too few rows to resample)."""
    if lo != lo or hi != hi:  # NaN
        return "[no CI: too few rows]"
    return f"[{lo:.4g}, {hi:.4g}]"


def _summary(run: AuditRun, written: dict, wall_s: float) -> None:
    out = sys.stdout
    badge = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}[run.verdict.value]
    out.write(f"\nverdict: {badge}   ({run.task}, {run.n_rows:,} rows, {run.n_features} features, "
              f"{wall_s:.1f} s)\n")
    out.write("top features (mean |attribution|, 95% CI, share):\n")
    for s in run.features[:5]:  # names padded by display width: a Chinese character takes two columns
        name = pad_width(truncate_width(s.name, 24), 24)
        out.write(f"  {s.rank:>3}. {name} {s.mean_abs:10.4g}  {_interval(s.ci_low, s.ci_high)}  "
                  f"{100 * s.share:5.1f}%\n")
    c = run.convergence
    out.write(f"convergence: {c.method}, {c.n_steps} steps, median rel. error {c.median_rel_delta:.2g}, "
              f"{c.n_not_converged} of {c.n_rows} rows above {c.tolerance:g}\n")
    x = run.crosscheck
    if x.skipped_reason:
        out.write(f"captum cross-check: skipped ({x.skipped_reason})\n")
    else:
        out.write(f"captum cross-check: {x.rows} rows, max abs diff {x.max_abs_diff:.2g}, rank agreement "
                  f"{x.rank_spearman:.3f}, {'passed' if x.passed else 'FAILED'}\n")
    if run.findings:
        out.write("findings:\n")
        for f in run.findings:
            out.write(f"  [{f.severity.value}] {f.code}: {f.message}\n")
    else:
        out.write("findings: none\n")
    for note in run.notes:
        out.write(f"note: {note}\n")
    out.write("wrote: " + ", ".join(str(p) for p in written.values()) + "\n")
    out.flush()  # now, not at the interpreter's exit (seconds later with torch loaded): CI logs show it in time
