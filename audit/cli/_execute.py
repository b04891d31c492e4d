"""Shared by `audit run` and `audit demo`: stage, run, write, summarise, map the verdict to an exit code."""

from __future__ import annotations

import json
import sys

import typer

from audit.config import AuditConfig
from audit.errors import EXIT_GATE, EXIT_OK
from audit.outputs import staging
from audit.pipeline import run_audit
from audit.report.textwidth import pad_width, truncate_width
from audit.results import AuditRun, Verdict, to_dict

_GATE = {"never": 99, "warn": Verdict.WARN.order, "fail": Verdict.FAIL.order}


def exit_code(verdict: Verdict, fail_on: str) -> int:
    """0 while the verdict is below ``fail_on``, 1 at or above it (``never`` always gives 0)."""
    return EXIT_GATE if verdict.order >= _GATE[fail_on] else EXIT_OK


def execute(config: AuditConfig, *, json_out: bool = False) -> tuple[AuditRun, int]:
    """Run the audit into a staging folder, move the files into ``config.out``, print the summary."""
    from audit.cli._progress import Progress

    progress = Progress(quiet=config.quiet or json_out)
    with staging(config.out) as st:
        run = run_audit(config, progress=progress, outputs=st)
        if {"html", "pdf"} & set(config.formats):
            progress.step("rendering report")
        written = st.finish(run, config.formats)
        progress.close()
        run = st.run
    code = exit_code(run.verdict, config.fail_on)
    if json_out:
        typer.echo(json.dumps(to_dict(run), indent=2))
    elif not config.quiet:
        _summary(run, written, config)
    return run, code


def _summary(run: AuditRun, written: dict, config: AuditConfig) -> None:
    out = sys.stdout
    badge = {"pass": "PASS", "warn": "WARN", "fail": "FAIL"}[run.verdict.value]
    out.write(f"\nverdict: {badge}   ({run.task}, {run.n_rows:,} rows, {run.n_features} features, "
              f"{run.provenance.duration_s:.1f} s)\n")
    out.write("top features (mean |attribution|, 95% CI, share):\n")
    for s in run.features[:5]:  # names padded by display width: a Chinese character takes two columns
        name = pad_width(truncate_width(s.name, 24), 24)
        out.write(f"  {s.rank:>3}. {name} {s.mean_abs:10.4g}  [{s.ci_low:.4g}, {s.ci_high:.4g}]  "
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
