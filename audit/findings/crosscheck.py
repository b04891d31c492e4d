"""``engine_disagreement``: our Integrated Gradients engine and Captum's do not agree within tolerance.

- skipped (``skipped_reason`` set): ``info``, saying why.
- passed: nothing.
- failed with a known Captum-side bias (``captum_bias`` set): ``info``, naming the bias and comparing both
  engines' completeness errors, since the disagreement is explained and ours is the more complete one.
- failed otherwise: ``warn``; ``fail`` when the rankings disagree too (``rank_spearman <
  crosscheck_min_spearman``), because then the conclusions, not just the digits, depend on the engine.
"""

from __future__ import annotations

import math

from audit.config import Thresholds
from audit.findings._common import fmt, num
from audit.findings.base import Detector, FindingsInput, fixed_title
from audit.results import Crosscheck, Finding, Severity

__all__ = ["detect", "CODE", "DETECTOR"]

CODE = "engine_disagreement"


def detect(*, crosscheck: Crosscheck, thresholds: Thresholds) -> list[Finding]:
    """Report the outcome of the native-vs-Captum cross-check when it is not a clean pass.

    Parameters
    ----------
    crosscheck : Crosscheck
        The cross-check record.
    thresholds : Thresholds
        Uses ``crosscheck_min_spearman``.

    Returns
    -------
    list of Finding
        At most one ``engine_disagreement`` finding.
    """
    c = crosscheck
    if c.skipped_reason:
        return [
            Finding(
                code=CODE,
                severity=Severity.INFO,
                features=(),
                message=f"The cross-check against Captum did not run: {c.skipped_reason.rstrip('.')}.",
                evidence={"skipped_reason": c.skipped_reason},
            )
        ]
    if c.passed:
        return []
    evidence = {
        "rows": int(c.rows),
        "max_abs_diff": num(c.max_abs_diff),
        "max_rel_diff": num(c.max_rel_diff),
        "rank_spearman": num(c.rank_spearman),
        "tol_abs": num(c.tol_abs),
        "tol_rel": num(c.tol_rel),
        "native_median_rel_delta": num(c.native_median_rel_delta),
        "captum_median_rel_delta": num(c.captum_median_rel_delta),
        "method": c.method,
        "n_steps": int(c.n_steps),
    }
    if c.captum_bias:
        return [
            Finding(
                code=CODE,
                severity=Severity.INFO,
                features=(),
                message=(
                    f"Our engine and Captum differ by up to {fmt(c.max_rel_diff)} (relative) on {c.rows} rows, "
                    f"a known bias on Captum's side (its {c.method} weights do not sum to 1; see captum_bias in "
                    f"the evidence): our median completeness error is {fmt(c.native_median_rel_delta)} against "
                    f"Captum's {fmt(c.captum_median_rel_delta)}."
                ),
                evidence={**evidence, "captum_bias": c.captum_bias},
            )
        ]
    rho = float(c.rank_spearman)
    ranks_differ = math.isfinite(rho) and rho < thresholds.crosscheck_min_spearman
    return [
        Finding(
            code=CODE,
            severity=Severity.FAIL if ranks_differ else Severity.WARN,
            features=(),
            message=(
                f"Our engine and Captum disagree on the {c.rows} cross-checked rows (largest difference "
                f"{fmt(c.max_abs_diff)}, {fmt(c.max_rel_diff)} relative; feature rankings agree with Spearman "
                f"{rho:.2f}), so treat these attributions with caution and rerun with --dtype float64."
            ),
            evidence={**evidence, "min_rank_spearman": num(thresholds.crosscheck_min_spearman)},
        )
    ]


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect(crosscheck=inp.crosscheck, thresholds=thresholds)


DETECTOR = Detector(
    code=CODE,
    title=fixed_title("The native engine and Captum disagree"),
    applies=lambda inp: inp.crosscheck is not None,
    detect=_detect,
)
