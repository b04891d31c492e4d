"""Helpers shared by the detectors: rounding for evidence, wording of numbers, the real-attribution bar.

A private module (nothing outside :mod:`audit.findings` imports it) with public names, so the detector modules
import no other module's ``_private`` names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from audit.errors import UsageError
from audit.results import FeatureStat

__all__ = ["num", "pct", "fmt", "real_bar", "check_stats"]


def num(x: float, digits: int = 4) -> float | None:
    """A float rounded to ``digits`` significant digits for evidence; None when not finite (JSON has no NaN)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def pct(x: float) -> str:
    """0.0412 -> '4.1%' (two decimals below 1%, so tiny shares do not read as 0.0%)."""
    p = 100.0 * float(x)
    return f"{p:.2f}%" if abs(p) < 1 else f"{p:.1f}%"


def fmt(x: float) -> str:
    """A number for a sentence: 3 significant digits, plain notation where that reads well."""
    x = float(x)
    if not math.isfinite(x):
        return "undefined"
    if abs(x) < 1e-12:
        return "0"  # rounding residue of an exact zero (e.g. a loss of 6e-33)
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.2e}"
    return f"{x:.3g}"


def real_bar(thresholds_factor: float, n_features: int) -> float:
    """The smallest share that counts as real attribution: ``real_share_factor / n_features``."""
    return thresholds_factor / n_features


def check_stats(stats: Sequence[FeatureStat]) -> tuple[FeatureStat, ...]:
    """The ranking checked (non-empty, FeatureStat records) and sorted by rank."""
    stats = tuple(stats)
    if not stats:
        raise UsageError("detectors need the global ranking (at least one FeatureStat); run global_ranking first")
    if not all(isinstance(s, FeatureStat) for s in stats):
        raise UsageError("stats must be FeatureStat records from global_ranking")
    return tuple(sorted(stats, key=lambda s: s.rank))
