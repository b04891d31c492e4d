"""``not_converged``: rows whose attributions do not add up to the change in the model's output.

By completeness (Sundararajan, Taly & Yan, ICML 2017) a row's attributions sum to ``F(x) - F(x')``; a row whose
relative error exceeds the tolerance has an integral that was not resolved with the steps used. ``info`` while
fewer than ``not_converged_warn_fraction`` of the rows are above tolerance, ``warn`` from there, ``fail`` when at
least ``not_converged_fail_fraction`` of the rows are.
"""

from __future__ import annotations

from audit.config import Thresholds
from audit.findings._common import num, pct
from audit.findings.base import Detector, FindingsInput, fixed_title
from audit.results import Convergence, Finding, Severity

__all__ = ["detect", "CODE", "DETECTOR"]

CODE = "not_converged"


def detect(*, convergence: Convergence, thresholds: Thresholds) -> list[Finding]:
    """Flag rows above the completeness tolerance.

    Parameters
    ----------
    convergence : Convergence
        From :func:`audit.analysis.summarize_convergence` (its ``tolerance`` and ``n_not_converged`` are used,
        so the count matches what the report shows).
    thresholds : Thresholds
        Uses ``not_converged_fail_fraction``.

    Returns
    -------
    list of Finding
        At most one ``not_converged`` finding.
    """
    n_bad, n = int(convergence.n_not_converged), int(convergence.n_rows)
    if n_bad <= 0 or n <= 0:
        return []
    frac = n_bad / n
    if convergence.n_steps == "auto":
        advice = "raise the step limit or try another --method"
    else:
        advice = f"use --n-steps auto or more than {convergence.n_steps} steps"
    worst = convergence.max_rel_delta
    worst_txt = pct(worst) if worst < 1e4 else "far more"
    return [
        Finding(
            code=CODE,
            severity=_severity(frac, thresholds),
            features=(),
            message=(
                f"Integrated Gradients did not converge on {n_bad:,} of {n:,} rows ({pct(frac)}): their "
                f"attributions miss the change in the model's output by more than {pct(convergence.tolerance)} "
                f"(worst {worst_txt}), so {advice}."
            ),
            evidence={
                "rows_not_converged": n_bad,
                "rows": n,
                "not_converged_fraction": num(frac),
                "warn_fraction": num(thresholds.not_converged_warn_fraction),
                "fail_fraction": num(thresholds.not_converged_fail_fraction),
                "tolerance": num(convergence.tolerance),
                "max_rel_delta": num(worst),
                "p95_rel_delta": num(convergence.p95_rel_delta),
                "method": convergence.method,
                "n_steps": convergence.n_steps,
            },
        )
    ]


def _severity(frac: float, thresholds: Thresholds) -> Severity:
    if frac >= thresholds.not_converged_fail_fraction:
        return Severity.FAIL
    if frac >= thresholds.not_converged_warn_fraction:
        return Severity.WARN
    return Severity.INFO


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect(convergence=inp.convergence, thresholds=thresholds)


DETECTOR = Detector(
    code=CODE,
    title=fixed_title("Attributions did not converge"),
    applies=lambda inp: inp.convergence is not None,
    detect=_detect,
)
