"""Exact counts: integer keys (:class:`Counts`) and a ``log10`` histogram (:class:`Log10Histogram`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from audit.analysis.convergence import HIST_BINS, HIST_LOG10_HIGH, HIST_LOG10_LOW
from audit.errors import UsageError

__all__ = ["Counts", "Log10Histogram"]

# ------------------------------------------------------------------------------------------------ Counts


class Counts:
    """Exact counts of integer keys (e.g. integration steps per row: ``{16: 800, 32: 120}``), mergeable.

    Parameters
    ----------
    counts : mapping of int to int, optional
        Initial counts.
    """

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self._c: dict[int, int] = {}
        for k, v in (counts or {}).items():
            if int(v) < 0:
                raise UsageError(f"counts must be >= 0, got {v!r} for key {k!r}")
            if int(v):
                self._c[int(k)] = self._c.get(int(k), 0) + int(v)

    def add(self, values: np.ndarray) -> None:
        """Count each value of ``values`` (ndarray of whole numbers, any shape)."""
        v = np.asarray(values)
        if v.size == 0:
            return
        whole = v.dtype.kind in "biu" or (
            v.dtype.kind == "f" and bool(np.all(np.isfinite(v))) and np.array_equal(v, np.round(v))
        )
        if not whole:
            raise UsageError(f"counts need whole numbers, got dtype {v.dtype} with non-integer values")
        keys, counts = np.unique(v.astype(np.int64).ravel(), return_counts=True)
        for k, c in zip(keys.tolist(), counts.tolist(), strict=True):
            self._c[k] = self._c.get(k, 0) + c

    def merge(self, other: Counts) -> Counts:
        """A new ``Counts`` with both counts added; inputs unchanged."""
        if not isinstance(other, Counts):
            raise UsageError(f"can only merge Counts with Counts, got {type(other).__name__}")
        out = Counts(self._c)
        for k, c in other._c.items():
            out._c[k] = out._c.get(k, 0) + c
        return out

    def as_dict(self) -> dict[int, int]:
        """``{key: count}`` in increasing key order (keys with count 0 left out)."""
        return {k: self._c[k] for k in sorted(self._c)}

    @property
    def total(self) -> int:
        """Sum of all counts."""
        return sum(self._c.values())

    def __getitem__(self, key: int) -> int:
        return self._c.get(int(key), 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Counts) and self._c == other._c

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Counts({self.as_dict()})"


# ------------------------------------------------------------------------------------------------ Log10Histogram


class Log10Histogram:
    """Exact counts of ``log10(v)`` for non-negative ``v`` in ``bins`` equal bins from ``low`` to ``high``.

    Binning is that of :func:`audit.analysis.convergence.summarize_convergence`: ``log10`` is clipped to
    ``[low, high]``, so 0 and values below ``10**low`` land in the first bin and values above ``10**high``
    (``inf`` included) in the last, which also holds its right edge. The exact ``max`` and ``n`` are kept too.

    Parameters
    ----------
    low, high : float
        log10 of the first and last edge; defaults -9 and 1 (:data:`~audit.analysis.convergence.HIST_LOG10_LOW`,
        :data:`~audit.analysis.convergence.HIST_LOG10_HIGH`).
    bins : int
        Number of bins, default 20.

    Attributes
    ----------
    edges : ndarray of float64, shape (bins + 1,)
        log10 bin edges.
    counts : ndarray of int64, shape (bins,)
    n : int
        Values added.
    max : float
        Largest value added (``-inf`` before any).
    """

    def __init__(self, low: float = HIST_LOG10_LOW, high: float = HIST_LOG10_HIGH, bins: int = HIST_BINS) -> None:
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise UsageError(f"need finite low < high, got low={low!r}, high={high!r}")
        if isinstance(bins, bool) or not isinstance(bins, int | np.integer) or bins < 1:
            raise UsageError(f"bins must be an integer >= 1, got {bins!r}")
        self.low, self.high, self.bins = float(low), float(high), int(bins)
        self.edges = np.linspace(self.low, self.high, self.bins + 1)
        self.counts = np.zeros(self.bins, dtype=np.int64)
        self.n = 0
        self.max = -math.inf

    def add(self, values: np.ndarray) -> None:
        """Add values (ndarray of shape (n,), ``>= 0``; ``inf`` allowed, NaN not)."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1:
            raise UsageError(f"expected a 1-D array of values, got shape {v.shape}")
        if v.size == 0:
            return
        if np.isnan(v).any():
            raise UsageError(f"value {int(np.flatnonzero(np.isnan(v))[0])} of the block is NaN; pass values >= 0")
        if (v < 0).any():
            raise UsageError(f"value {int(np.flatnonzero(v < 0)[0])} of the block is negative; pass values >= 0")
        with np.errstate(divide="ignore"):
            logs = np.clip(np.log10(v), self.low, self.high)  # (n,), 0 -> -inf -> low
        c, _ = np.histogram(logs, bins=self.edges)
        self.counts += c
        self.n += int(v.size)
        self.max = max(self.max, float(v.max()))

    def merge(self, other: Log10Histogram) -> Log10Histogram:
        """A new histogram of both; inputs unchanged."""
        if not isinstance(other, Log10Histogram):
            raise UsageError(f"can only merge Log10Histogram with Log10Histogram, got {type(other).__name__}")
        if (other.low, other.high, other.bins) != (self.low, self.high, self.bins):
            raise UsageError("cannot merge histograms with different edges; build them with the same low, high, bins")
        out = Log10Histogram(self.low, self.high, self.bins)
        out.counts = self.counts + other.counts
        out.n = self.n + other.n
        out.max = max(self.max, other.max)
        return out

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Log10Histogram)
            and (self.low, self.high, self.bins, self.n) == (other.low, other.high, other.bins, other.n)
            and np.array_equal(self.counts, other.counts)
            and (self.max == other.max)
        )

    __hash__ = None  # type: ignore[assignment]
