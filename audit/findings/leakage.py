"""Leakage detectors: the model leans on a column that would not exist, or mean nothing, at prediction time.

- ``target_leakage`` (fail): the feature alone predicts the target almost perfectly
  (:func:`audit.analysis.univariate_power` ``>= leak_univariate``) and carries real attribution
  (``share >= real_share_factor / n_features``, or rank 1).
- ``identifier_leakage`` (warn; fail when it is the top feature): the column looks like a row identifier
  (:func:`audit.analysis.identifier_like`) and has real attribution (``share >= real_share_factor / n_features``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.analysis.univariate import univariate_measure
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
) -> list[Finding]:
    """Flag features that alone predict the target almost perfectly and that the model draws on.

    "Draws on" is the real-attribution bar the other detectors use, ``share >= real_share_factor / n_features``
    (a quarter of the uniform share by default), or rank 1: a planted copy of the
    label that the model ranks second behind a legitimate feature is as much a leak as one it ranks first, and
    only a model that ignores the column (share below the bar) is left alone. False alarms are kept out by the
    univariate bar, not by the share: :func:`audit.analysis.univariate_power` is an R^2-scale score (the share
    of the target's variance, or of the label's Gini impurity, the feature explains alone), and no feature of
    scikit-learn's breast-cancer, wine, iris, digits or diabetes sets reaches 0.90 (iris petal width, which
    separates only setosa perfectly: 0.896), while a label plus N(0, 0.01) or N(0, 0.1 std) noise scores
    0.99-1.00.

    Parameters
    ----------
    stats : sequence of FeatureStat
        The global ranking.
    names : sequence of str of length n_features
        Feature names in column order (the order of ``univariate``).
    univariate : ndarray of shape (n_features,)
        :func:`audit.analysis.univariate_power` of each column, in [0, 1].
    reverse : ndarray of shape (n_features,), optional
        :func:`audit.analysis.univariate.target_explains` of the same columns (NaN elsewhere). When given, a column
        is flagged only if the target also explains it: a leak is derived from the target, so it is nearly a
        function of it, while a real feature that happens to separate the classes still varies within each.
    univariate_low : ndarray of shape (n_features,), optional
        :func:`audit.analysis.univariate.univariate_lower_bound` of the columns whose score reaches the bar (NaN
        elsewhere). When given, a column is flagged only if the lower bound reaches the bar too: a perfect
        separator keeps 1 in every resample, a strong real feature on few rows does not.
    thresholds : Thresholds
        Uses ``leak_univariate`` and ``real_share_factor``.
    task : str, default="regression"
        A task name of :func:`audit.analysis.univariate.univariate_power` or
        :data:`audit.analysis.task.TASK_NAMES`; names the score in the message.

    Returns
    -------
    list of Finding
        One ``fail`` per flagged feature, in rank order.
    """
    stats = check_stats(stats)
    power = _aligned(univariate, names, stats, "univariate power")
    low = None if univariate_low is None else _aligned(univariate_low, names, stats, "univariate lower bounds")
    rev = None if reverse is None else _aligned(reverse, names, stats, "reverse scores")
    measure = univariate_measure(task)
    bar = real_bar(thresholds.real_share_factor, len(stats))
    findings: list[Finding] = []
    for s in stats:
        u = float(power[s.name])
        draws = s.share >= bar or s.rank == 1
        lo = None if low is None else float(low[s.name])
        back = None if rev is None else float(rev[s.name])
        sure = lo is None or (np.isfinite(lo) and lo >= thresholds.leak_univariate)
        sure = sure and (back is None or (np.isfinite(back) and back >= thresholds.leak_univariate))
        if u >= thresholds.leak_univariate and sure and draws:
            findings.append(
                Finding(
                    code=TARGET_CODE,
                    severity=Severity.FAIL,
                    features=(s.name,),
                    message=(
                        f"'{s.name}' alone predicts the target almost perfectly ({measure} {u:.3f}, where 1 means "
                        f"it determines the target) and the model draws on it ({pct(s.share)} of all attribution, "
                        f"rank {s.rank}), so it is probably derived from the target and will not be there when "
                        "the model is used."
                    ),
                    evidence={
                        "univariate_power": num(u),
                        "univariate_ci_low": num(lo) if lo is not None else None,
                        "target_explains_feature": num(back) if back is not None else None,
                        "measure": measure,
                        "share": num(s.share),
                        "rank": s.rank,
                        "min_univariate_power": num(thresholds.leak_univariate),
                        "min_share": num(bar),
                    },
                )
            )
    return findings


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
) -> list[Finding]:
    """Both leakage detectors; each runs only when its input (``univariate`` / ``identifier``) is given."""
    out: list[Finding] = []
    if univariate is not None:
        out += detect_target_leakage(
            stats=stats, names=names, univariate=univariate, thresholds=thresholds, task=task,
            univariate_low=univariate_low, reverse=reverse,
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
    return detect_target_leakage(
        stats=inp.stats, names=inp.names, univariate=inp.univariate, thresholds=thresholds, task=inp.task,
        univariate_low=inp.univariate_low, reverse=inp.univariate_reverse,
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
