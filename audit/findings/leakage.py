"""Leakage detectors: the model leans on a column that would not exist, or mean nothing, at prediction time.

- ``target_leakage``: the feature (or feature group) alone determines the target, and the model draws on it.
  "Alone determines" is judged on its own terms, with a bound that knows how many rows it has:

  - classifiers: the best single-feature rule (:func:`audit.analysis.separation.rule_separation`: at most
    ``n_classes + 1`` intervals of the column's values, or one class per value of a column with few values) is
    right on nearly every row of *every* class: the lower bound of its worst class's recall reaches
    ``leak_separation`` (0.93). A perfect separator gets there from 36 rows in its smallest class; a rule
    that holds on 97% of every class from about 120 rows per class, 99% from about 50;
  - regressors: the neighbour R^2 of :func:`audit.analysis.univariate_power` (the share of the target's
    variance the feature explains alone) and its subsampling lower bound reach ``leak_univariate`` (0.95).

  ``fail`` when the model leans on it heavily (one of its top :data:`LEAK_FAIL_RANK` features, or
  ``share >= leak_fail_share_factor / n_features``),
  ``warn`` when it draws on it less (``share >= real_share_factor / n_features``). A feature that separates the
  audited rows perfectly (``>= leak_perfect``) while they are too few for the bound to reach the bar is an
  ``info`` that names it: 15 rows per class cannot tell a leak from a strong real feature (on some 45-row iris
  splits petal width separates all three classes), and ``small_sample`` is what says the verdict is weak. How
  much the target explains the feature (the reverse score: about 1 for a near-copy of the label, much less for
  a follow-up time that is 0 for one class and 1-120 days for the other) is reported as evidence, never used
  as a gate: a leak with spread within a class is still a leak.
- ``identifier_leakage`` (warn; fail when it is the top feature): the column looks like a row identifier
  (:func:`audit.analysis.identifier_like`) and has real attribution (``share >= real_share_factor / n_features``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.analysis.univariate import canonical_task, univariate_measure
from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings._common import check_stats, num, pct, real_bar
from audit.findings.base import Detector, FindingsInput, fixed_title, is_tabular
from audit.results import FeatureStat, Finding, Severity

__all__ = [
    "detect",
    "detect_target_leakage",
    "detect_identifier_leakage",
    "TARGET_CODE",
    "IDENTIFIER_CODE",
    "TARGET_DETECTOR",
    "IDENTIFIER_DETECTOR",
]

TARGET_CODE = "target_leakage"
LEAK_FAIL_RANK = 3  # a leak among the model's top 3 features (or above leak_fail_share_factor) fails
IDENTIFIER_CODE = "identifier_leakage"


def detect_target_leakage(
    *,
    stats: Sequence[FeatureStat],
    names: Sequence[str],
    univariate: np.ndarray,
    thresholds: Thresholds,
    task: str = "regression",
    univariate_low: np.ndarray | None = None,
    reverse: np.ndarray | None = None,
    separation: np.ndarray | None = None,
    separation_low: np.ndarray | None = None,
) -> list[Finding]:
    """Flag features that alone determine the target and that the model draws on (module notes).

    Parameters
    ----------
    stats : sequence of FeatureStat
        The ranking the features are judged by (the grouped ranking when the run has feature groups).
    names : sequence of str of length n_features
        Feature names in the order of the arrays.
    univariate : ndarray of shape (n_features,)
        :func:`audit.analysis.univariate_power` of each feature, in [0, 1]; the score for regressors, and for
        classifiers when ``separation`` is not given.
    univariate_low : ndarray of shape (n_features,), optional
        :func:`audit.analysis.univariate.univariate_lower_bound` where computed (NaN elsewhere); without it the
        point score stands for its bound.
    reverse : ndarray of shape (n_features,), optional
        :func:`audit.analysis.univariate.target_explains` (NaN elsewhere): evidence only.
    separation, separation_low : ndarray of shape (n_features,), optional
        :func:`audit.analysis.separation.rule_separation` (worst-class recall of the best rule and its lower
        bound; NaN where not computed): the score of classifiers.
    thresholds : Thresholds
        Uses ``leak_separation``, ``leak_univariate``, ``leak_perfect``, ``leak_fail_share_factor`` and
        ``real_share_factor``.
    task : str, default="regression"
        A task name of :func:`audit.analysis.univariate.univariate_power` or
        :data:`audit.analysis.task.TASK_NAMES`.

    Returns
    -------
    list of Finding
        One ``fail``, ``warn`` or ``info`` per flagged feature, in rank order.
    """
    stats = check_stats(stats)
    power = _aligned(univariate, names, stats, "univariate power")
    low = None if univariate_low is None else _aligned(univariate_low, names, stats, "univariate lower bounds")
    rev = None if reverse is None else _aligned(reverse, names, stats, "reverse scores")
    classes = "classification" in canonical_task(task) and separation is not None
    if classes:
        power = _aligned(separation, names, stats, "separation scores")
        low = None if separation_low is None else _aligned(separation_low, names, stats, "separation bounds")
        measure, bar = "worst-class recall of its best rule", thresholds.leak_separation
    else:
        measure, bar = univariate_measure(task), thresholds.leak_univariate
    real = real_bar(thresholds.real_share_factor, len(stats))
    heavy_bar = real_bar(thresholds.leak_fail_share_factor, len(stats))
    findings: list[Finding] = []
    for s in stats:
        u = float(power[s.name])
        if not np.isfinite(u):
            continue
        lo = u if low is None or not np.isfinite(low[s.name]) else float(low[s.name])
        back = None if rev is None else rev[s.name]
        draws = s.share >= real or s.rank == 1
        heavy = s.rank <= LEAK_FAIL_RANK or s.share >= heavy_bar
        sure = u >= bar and lo >= bar
        perfect = u >= thresholds.leak_perfect
        if not draws or not (sure or perfect):
            continue
        severity = (Severity.FAIL if heavy else Severity.WARN) if sure else Severity.INFO
        findings.append(Finding(
            code=TARGET_CODE,
            severity=severity,
            features=(s.name,),
            message=_leak_message(s, u, lo, bar, measure, sure, classes, back),
            evidence={
                "score": num(u),
                "score_ci_low": num(lo),
                "measure": measure,
                "min_score": num(bar),
                "univariate_power": num(float(univariate[list(names).index(s.name)])),
                "target_explains_feature": num(float(back)) if back is not None and np.isfinite(back) else None,
                "share": num(s.share),
                "rank": s.rank,
                "min_share": num(real),
                "fail_share": num(heavy_bar),
            },
        ))
    return findings


def _leak_message(s: FeatureStat, u: float, lo: float, bar: float, measure: str, sure: bool, classes: bool,
                  back: float | None) -> str:
    what = "tells the class on its own" if classes else "predicts the target on its own"
    lean = f"the model puts {pct(s.share)} of its attribution on it (rank {s.rank})"
    copy = ""
    if back is not None and np.isfinite(back):
        copy = (" It is close to a copy of the target (the target explains "
                f"{pct(back)} of it)." if back >= 0.95 else
                f" It varies within a class (the target explains {pct(back)} of it), as a value recorded after the "
                "outcome often does.")
    if not sure:
        return (f"'{s.name}' {what} on every audited row ({measure} {u:.3f}) and {lean}, but the rows are too few "
                f"to be sure it would on more (lower bound {lo:.3f}, below {bar:.2f}); check that it is known before "
                "the outcome, or audit more rows." + copy)
    return (f"'{s.name}' {what} ({measure} {u:.3f}, at least {lo:.3f} at 95% confidence) and {lean}, so it is "
            "probably recorded after the outcome or derived from it and will not be there when the model is used; "
            "drop it unless it is known at prediction time." + copy)


def detect_identifier_leakage(
    *,
    stats: Sequence[FeatureStat],
    names: Sequence[str],
    identifier: np.ndarray,
    thresholds: Thresholds,
) -> list[Finding]:
    """Flag identifier-like columns with real attribution.

    Parameters
    ----------
    stats : sequence of FeatureStat
        The global ranking.
    names : sequence of str of length n_features
        Feature names in column order (the order of ``identifier``).
    identifier : ndarray of bool, shape (n_features,)
        :func:`audit.analysis.identifier_like` of each column.
    thresholds : Thresholds
        Uses ``real_share_factor``.

    Returns
    -------
    list of Finding
        One per flagged column in rank order: ``fail`` for the top feature, ``warn`` otherwise.
    """
    stats = check_stats(stats)
    is_id = _aligned(identifier, names, stats, "identifier flags")
    bar = real_bar(thresholds.real_share_factor, len(stats))
    findings: list[Finding] = []
    for s in stats:
        if bool(is_id[s.name]) and s.share >= bar:
            findings.append(
                Finding(
                    code=IDENTIFIER_CODE,
                    severity=Severity.FAIL if s.rank == 1 else Severity.WARN,
                    features=(s.name,),
                    message=(
                        f"'{s.name}' looks like a row identifier (a different value in every row, named or spaced "
                        f"like a row number or key) yet carries {pct(s.share)} of all attribution (rank {s.rank}), "
                        "so the model may be keying on how the file was put together rather than on the rows "
                        "themselves."
                    ),
                    evidence={"share": num(s.share), "rank": s.rank, "real_share_bar": num(bar)},
                )
            )
    return findings


def detect(
    *,
    stats: Sequence[FeatureStat],
    names: Sequence[str],
    thresholds: Thresholds,
    univariate: np.ndarray | None = None,
    identifier: np.ndarray | None = None,
    task: str = "regression",
    univariate_low: np.ndarray | None = None,
    reverse: np.ndarray | None = None,
    separation: np.ndarray | None = None,
    separation_low: np.ndarray | None = None,
) -> list[Finding]:
    """Both leakage detectors; each runs only when its input (``univariate`` / ``identifier``) is given."""
    out: list[Finding] = []
    if univariate is not None:
        out += detect_target_leakage(
            stats=stats, names=names, univariate=univariate, thresholds=thresholds, task=task,
            univariate_low=univariate_low, reverse=reverse, separation=separation, separation_low=separation_low,
        )
    if identifier is not None:
        out += detect_identifier_leakage(stats=stats, names=names, identifier=identifier, thresholds=thresholds)
    return out


def _aligned(values: np.ndarray, names: Sequence[str], stats: tuple[FeatureStat, ...], what: str) -> dict:
    """Column-ordered per-feature values as ``{name: value}``, checked against the ranking's features."""
    arr = np.asarray(values)
    names = tuple(names)
    if arr.shape != (len(names),):
        raise UsageError(f"{what} must have one value per feature name ({len(names)}), got shape {arr.shape}")
    if set(names) != {s.name for s in stats}:
        raise UsageError(f"the feature names given with the {what} do not match the ranking's features")
    return dict(zip(names, arr.tolist(), strict=True))


def _detect_target(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    grouped = bool(inp.unit_stats)  # with feature groups the leak scores are per group / ungrouped column
    return detect_target_leakage(
        stats=inp.unit_stats if grouped else inp.stats, names=inp.unit_names if grouped else inp.names,
        univariate=inp.univariate, thresholds=thresholds, task=inp.task, univariate_low=inp.univariate_low,
        reverse=inp.univariate_reverse, separation=inp.separation, separation_low=inp.separation_low,
    )  # fmt: skip


def _detect_identifier(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect_identifier_leakage(stats=inp.stats, names=inp.names, identifier=inp.identifier, thresholds=thresholds)


TARGET_DETECTOR = Detector(
    code=TARGET_CODE,
    title=fixed_title("Possible target leakage"),
    applies=lambda inp: is_tabular(inp) and inp.univariate is not None,
    detect=_detect_target,
)
IDENTIFIER_DETECTOR = Detector(
    code=IDENTIFIER_CODE,
    title=fixed_title("An identifier-like column is used"),
    applies=lambda inp: is_tabular(inp) and inp.identifier is not None,
    detect=_detect_identifier,
)
