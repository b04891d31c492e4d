"""Bounded-memory helpers for data read in chunks: a uniform row sample and column statistics."""

from __future__ import annotations

import numpy as np

__all__ = ["Reservoir", "ColumnStats"]


class Reservoir:
    """A uniform random sample of at most ``capacity`` rows from a stream of chunks.

    Each row gets a random key; the sample is the rows with the ``capacity`` smallest keys, which is a uniform
    sample without replacement whatever the chunking (so results do not depend on the chunk size for a fixed
    seed and row order). Rows are stored as named arrays that share the first dimension.
    """

    def __init__(self, capacity: int, seed: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._rng = np.random.default_rng(seed)
        self._keys = np.empty(0)
        self._data: dict[str, np.ndarray] = {}
        self.seen = 0

    def add(self, **arrays: np.ndarray) -> None:
        """Offer one chunk: every array has the chunk's rows as its first dimension."""
        n = next(iter(arrays.values())).shape[0]
        keys = self._rng.random(n)
        self.seen += n
        if not self._data:
            self._data = {k: v[:0].copy() for k, v in arrays.items()}
        keys_all = np.concatenate([self._keys, keys])
        if keys_all.shape[0] <= self.capacity:
            keep = np.arange(keys_all.shape[0])
        else:
            keep = np.argpartition(keys_all, self.capacity - 1)[: self.capacity]
        keep.sort()  # keeps rows in file order
        self._keys = keys_all[keep]
        for k, v in arrays.items():
            self._data[k] = np.concatenate([self._data[k], v])[keep]

    @property
    def complete(self) -> bool:
        """True when every row seen is in the sample."""
        return self.seen <= self.capacity

    def get(self, name: str) -> np.ndarray:
        return self._data[name]


class ColumnStats:
    """Streaming per-column sum, sum of squares, min and max of a (n, F) float matrix, plus a sample for
    medians. Means are exact; the median is exact while all rows fit the sample, else estimated from it."""

    def __init__(self, n_features: int, *, sample_rows: int = 100_000, seed: int = 0) -> None:
        self.n = 0
        self.sum = np.zeros(n_features)
        self.sumsq = np.zeros(n_features)
        self._sample = Reservoir(sample_rows, seed)

    def add(self, X: np.ndarray) -> None:
        X64 = X.astype(np.float64, copy=False)  # (n, F)
        self.n += X.shape[0]
        self.sum += X64.sum(0)
        self.sumsq += (X64**2).sum(0)
        self._sample.add(X=X)

    def mean(self) -> np.ndarray:
        return self.sum / max(self.n, 1)

    def median(self) -> np.ndarray:
        return np.median(self._sample.get("X"), axis=0)
