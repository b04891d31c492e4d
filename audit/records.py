"""Smaller records of an audit that :mod:`audit.results` holds and re-exports (kept apart so that module stays a
readable size): feature groups, the direction of an effect within a slice, the ranking under a second baseline.
Plain frozen dataclasses, no imports from the rest of the package."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FeatureGroup", "SliceDirection", "BaselineSensitivity"]


@dataclass(frozen=True)
class BaselineSensitivity:
    """The global ranking under the run's baseline against a second reasonable one, on a sample of rows.

    ``spearman`` is the rank correlation of the two mean-|attribution| rankings over the ``features_compared``
    features (those with real attribution under either baseline, at least 3), ``ci_low``/``ci_high`` its bootstrap
    95% interval over rows (the same resampled rows for both rankings). ``top_changed``: the two top features
    differ and each baseline's paired bootstrap interval of the share difference between them excludes 0.
    """

    chosen: str  # the run's baseline ("data mean", "zero", ...)
    second: str  # "expected gradients (8 data rows per row)", "data mean", ...
    spearman: float
    ci_low: float
    ci_high: float
    rows: int
    features_compared: int
    top_chosen: tuple[str, ...]  # top 5 under the chosen baseline
    top_second: tuple[str, ...]
    shares_chosen: tuple[float, ...]  # their shares of mean |attribution|, aligned with top_chosen
    shares_second: tuple[float, ...]
    top_changed: bool = False


@dataclass(frozen=True)
class FeatureGroup:
    """Columns ranked and judged as one feature (:mod:`audit.analysis.groups`)."""

    name: str
    members: tuple[str, ...]
    kind: str  # "one-hot" | "one-hot (a dropped level)" | "declared"


@dataclass(frozen=True)
class SliceDirection:
    """Which way one feature pushes the explained output within a slice and within the rest of the rows: its
    average local effect, the mean gradient of the output along the feature times the feature's standard
    deviation (the output's change per standard deviation of the feature), with a 95% bootstrap interval.
    Positive: larger values raise the output there; negative: they lower it. Classifiers explaining each row's
    class compare like with like: ``explained`` names the class whose rows both sides use ("" when every row
    explains one output)."""

    feature: str
    effect: float  # within the slice
    low: float
    high: float
    rows: int
    rest_effect: float  # within the other rows (of the same explained class)
    rest_low: float
    rest_high: float
    rest_rows: int
    explained: str = ""
