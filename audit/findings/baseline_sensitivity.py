"""``baseline_sensitive``: the global ranking depends on the choice of baseline.

Integrated Gradients explains ``F(x) - F(x')``; two reasonable baselines can rank the features differently when
the model is far from linear between them. :mod:`audit.analysis.baseline_sensitivity` recomputes the ranking of
a sample of rows under a second baseline (expected gradients over data rows when the run used the data mean, the
data mean otherwise). ``warn`` when the two rankings disagree beyond sampling noise:

- the upper end of the bootstrap 95% interval of their Spearman correlation (over the features with real
  attribution under either baseline) is below ``baseline_sensitivity_spearman``; or
- the top feature changes and each baseline's paired bootstrap interval of the share difference between the two
  top features excludes 0 (a clear leader under each, not a near-tie).

A linear model's attributions against the mean and its expected gradients agree in expectation
(``w_j (x_j - E x_j)``), so this stays quiet on it.
"""

from __future__ import annotations

from audit.config import Thresholds
from audit.findings._common import num, pct
from audit.findings.base import Detector, FindingsInput, fixed_title, is_tabular
from audit.results import BaselineSensitivity, Finding, Severity

__all__ = ["detect", "CODE", "DETECTOR"]

CODE = "baseline_sensitive"


def _listed(names: tuple[str, ...], shares: tuple[float, ...]) -> str:
    return ", ".join(f"{n} ({pct(s)})" for n, s in zip(names, shares, strict=True))


def detect(*, sensitivity: BaselineSensitivity, thresholds: Thresholds) -> list[Finding]:
    """Warn when the ranking under the run's baseline and under the second one disagree beyond their intervals.

    Parameters
    ----------
    sensitivity : BaselineSensitivity
        From :func:`audit.analysis.baseline_sensitivity.baseline_sensitivity`.
    thresholds : Thresholds
        Uses ``baseline_sensitivity_spearman``.

    Returns
    -------
    list of Finding
        At most one ``baseline_sensitive`` warning.
    """
    s = sensitivity
    bar = thresholds.baseline_sensitivity_spearman
    low_rho = s.ci_high == s.ci_high and s.ci_high < bar
    if not (low_rho or s.top_changed):
        return []
    why = []
    if low_rho:
        why.append(
            f"their rank correlation is {s.spearman:.2f} (95% CI {s.ci_low:.2f} to {s.ci_high:.2f}, below {bar:.2f}) "
            f"over {s.features_compared} features"
        )
    if s.top_changed:
        why.append(f"the top feature changes from '{s.top_chosen[0]}' to '{s.top_second[0]}' beyond its intervals")
    return [
        Finding(
            code=CODE,
            severity=Severity.WARN,
            features=tuple(dict.fromkeys((s.top_chosen[0], s.top_second[0]))),
            message=(
                f"The ranking depends on the baseline: on {s.rows:,} rows, {' and '.join(why)}. With the "
                f"{s.chosen} baseline the top features are {_listed(s.top_chosen, s.shares_chosen)}; with "
                f"{s.second} they are {_listed(s.top_second, s.shares_second)}. Read the ranking as an answer to "
                "'compared with which reference?' and check the features that move before acting on them."
            ),
            evidence={
                "chosen": s.chosen,
                "second": s.second,
                "spearman": num(s.spearman),
                "ci_low": num(s.ci_low),
                "ci_high": num(s.ci_high),
                "spearman_threshold": num(bar),
                "rows": s.rows,
                "features_compared": s.features_compared,
                "top_changed": bool(s.top_changed),
                "top_chosen": ", ".join(s.top_chosen),
                "top_second": ", ".join(s.top_second),
            },
        )
    ]


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect(sensitivity=inp.baseline_sensitivity, thresholds=thresholds)


DETECTOR = Detector(
    code=CODE,
    title=fixed_title("The ranking depends on the baseline"),
    applies=lambda inp: inp.baseline_sensitivity is not None and is_tabular(inp),
    detect=_detect,
)
