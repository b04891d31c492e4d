"""``small_sample`` (warn): too few rows audited for the verdict to be trusted.

Below ``small_sample_rows`` rows (any task), or for a classifier with labels below ``small_sample_class_rows``
rows in its smallest class, the detectors run but cannot see much, and a ``pass`` would read as a clean bill of
health. The message names the row count, what the detectors could and could not test at that size, and how wide
the ranking's intervals are (the median relative width ``(ci_high - ci_low) / mean_abs`` of the top 3 features'
95% bootstrap intervals; none below 2 rows).

Where the bars come from (``benchmarks/bench_small_sample.py``, 16 cases of the findings corpus x 2 seeds, the
validation split audited whole and on random subsets of rows in file order): the median relative interval
width of the top 3 features is 0.60 at 20 rows, 0.38 at 60, 0.23 at 200 and 0.21 on the whole split (133-300
rows), so below about 100 rows an interval spans a third or more of its estimate and neighbouring ranks are not
told apart; ``noise_leakage`` (neutralisation) caught 0 of 4 planted noise shortcuts at 20 rows, 3 of 4 at 60
and 2 of 2 at 200. Label leaks and identifiers of a file sorted by its target were caught at every size; an
identifier whose file was shuffled has no value pattern at any size, and ``identifier_like`` judges values only
from :data:`audit.analysis.identifiers.MIN_ROWS` (20) rows. The class bar equals ``slice_min_rows`` (30): the
rows a group needs before its profile is compared at all.
"""

from __future__ import annotations

import math

import numpy as np

from audit.analysis.identifiers import MIN_ROWS as ID_MIN_ROWS
from audit.analysis.ranking import MIN_BOOT_ROWS
from audit.config import Thresholds
from audit.findings._common import check_stats, num
from audit.findings.base import Detector, FindingsInput, fixed_title, is_tabular
from audit.results import FeatureStat, Finding, Severity

__all__ = ["detect_small_sample", "CODE", "DETECTOR", "TOP_WIDTH"]

CODE = "small_sample"
TOP_WIDTH = 3  # top features whose interval widths are summarised
_NOISE_ROWS = 60  # neutralisation caught 0/4 planted noise shortcuts at 20 rows, 3/4 at 60 (bench_small_sample)


def _median_width(stats: tuple[FeatureStat, ...]) -> float:
    """Median ``(ci_high - ci_low) / mean_abs`` over the top features with attribution; NaN without intervals."""
    w = [
        (s.ci_high - s.ci_low) / s.mean_abs
        for s in stats[:TOP_WIDTH]
        if s.mean_abs > 0 and math.isfinite(s.ci_low) and math.isfinite(s.ci_high)
    ]
    return float(np.median(w)) if w else float("nan")


def _limits(n_rows: int, smallest_class: int | None, thresholds: Thresholds) -> tuple[list[str], list[str]]:
    """What the detectors could and could not test on ``n_rows`` rows."""
    could, could_not = [], []
    if n_rows < MIN_BOOT_ROWS:
        could_not.append("any bootstrap interval (there is one row to resample)")
    if n_rows < ID_MIN_ROWS:
        could_not.append(f"identifier value patterns (they need {ID_MIN_ROWS} rows; only identifier names are read)")
    else:
        could.append("identifier value patterns")
    if n_rows < 2 * thresholds.slice_min_rows:
        could_not.append(f"slices (each group needs {thresholds.slice_min_rows} rows)")
    if smallest_class is not None and smallest_class < thresholds.slice_min_rows:
        could_not.append(f"per-class profiles with confidence (the smallest class has {smallest_class:,})")
    if n_rows < _NOISE_ROWS:
        could_not.append(f"noise shortcuts by neutralisation (it missed most planted ones below {_NOISE_ROWS} rows)")
    else:
        weak = n_rows < thresholds.small_sample_rows
        could.append("noise shortcuts by neutralisation" + (" (with little power)" if weak else ""))
    if n_rows >= 3:
        could.append("leakage scores" + (" (with wide bootstrap bounds)" if n_rows < thresholds.small_sample_rows
                                         else ""))
    return could, could_not


def detect_small_sample(
    *,
    stats: tuple[FeatureStat, ...],
    n_rows: int,
    thresholds: Thresholds,
    class_counts: tuple[int, ...] = (),
) -> list[Finding]:
    """Warn when too few rows (or too few rows of a class) were audited to trust the verdict.

    Parameters
    ----------
    stats : tuple of FeatureStat
        The global ranking (its intervals' widths go into the message).
    n_rows : int
        Rows audited.
    thresholds : Thresholds
        Uses ``small_sample_rows``, ``small_sample_class_rows`` and ``slice_min_rows``.
    class_counts : tuple of int, default ()
        Rows per class of a classifier's labels (or predictions without labels); () for other tasks.

    Returns
    -------
    list of Finding
        At most one ``small_sample`` warning.
    """
    stats = check_stats(stats)
    counts = tuple(int(c) for c in class_counts)
    smallest = min(counts) if counts else None
    few_rows = n_rows < thresholds.small_sample_rows
    few_class = smallest is not None and smallest < thresholds.small_sample_class_rows
    if not (few_rows or few_class):
        return []
    width = _median_width(stats)
    could, could_not = _limits(n_rows, smallest, thresholds)
    if few_rows:
        size = f"Only {n_rows:,} row was audited" if n_rows == 1 else f"Only {n_rows:,} rows were audited"
        if smallest is not None:
            size += f" (the smallest class has {smallest:,})"
    else:
        size = f"The smallest class has only {smallest:,} of the {n_rows:,} rows audited"
    bar = f"below {thresholds.small_sample_rows:,} rows" if few_rows else ""
    if few_class:
        bar += (" and " if bar else "") + f"below {thresholds.small_sample_class_rows:,} rows per class"
    spread = (
        "no ranking interval could be computed"
        if not math.isfinite(width)
        else f"the top features' 95% intervals span {100 * width:.0f}% of their estimates (median)"
    )
    tested = f"; tested: {', '.join(could)}" if could else ""
    advice = (
        "Audit more rows (the whole validation set) before relying on it."
        if few_rows
        else "Audit more rows of that class before relying on what the verdict says about it."
    )
    not_tested = f"; not tested: {'; '.join(could_not)}" if could_not else ""
    message = f"{size}, {bar}, so this verdict cannot be trusted: {spread}{not_tested}{tested}. {advice}"
    return [
        Finding(
            code=CODE,
            severity=Severity.WARN,
            features=(),
            message=message,
            evidence={
                "n_rows": int(n_rows),
                "rows_bar": int(thresholds.small_sample_rows),
                "smallest_class_rows": smallest,
                "class_rows_bar": int(thresholds.small_sample_class_rows),
                "median_relative_ci_width": num(width),
                "tested": could,
                "not_tested": could_not,
            },
        )
    ]


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect_small_sample(
        stats=inp.stats, n_rows=int(inp.n_rows or 0), thresholds=thresholds, class_counts=inp.class_counts
    )


DETECTOR = Detector(
    code=CODE,
    title=fixed_title("Too few rows to trust the verdict"),
    applies=lambda inp: is_tabular(inp) and inp.n_rows is not None,
    detect=_detect,
)
