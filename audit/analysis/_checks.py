"""Input checks shared by the analysis modules. Each failure is one line that says what to do."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.errors import AttributionError, DataError, UsageError

__all__: list[str] = []  # private helpers only


def _as_matrix(a: object, what: str, *, finite: str | None = None) -> np.ndarray:
    """``a`` as a 2-D float array of shape (n_rows, n_features), with at least one row.

    ``finite`` names the exception family for non-finite values: ``"attribution"`` raises
    :class:`AttributionError`, ``"data"`` raises :class:`DataError`, ``None`` skips the check.
    """
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise UsageError(f"{what} must be a 2-D array (rows, features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise UsageError(f"{what} has no rows; pass at least one row")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise UsageError(f"{what} must hold real numbers, got dtype {arr.dtype}")
    if finite is not None:
        _check_finite(arr, what, finite)
    return arr


def _check_finite(arr: np.ndarray, what: str, kind: str, names: Sequence[str] | None = None) -> None:
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    first = np.argwhere(bad)[0]
    where = f"row {first[0]}" + (f", column {first[1]}" if arr.ndim == 2 else "")
    if names is not None and arr.ndim == 2:
        where = f"row {first[0]}, feature '{names[first[1]]}'"
    if kind == "attribution":
        raise AttributionError(
            f"{what} has {int(bad.sum())} non-finite values (first at {where}); the model output is NaN or "
            "infinite there: check the model, or try --dtype float64"
        )
    raise DataError(f"{what} has {int(bad.sum())} missing or infinite values (first at {where}); clean the data first")


def _check_names(names: Sequence[str], n_features: int, what: str) -> tuple[str, ...]:
    out = tuple(str(n) for n in names)
    if len(out) != n_features:
        raise UsageError(f"{what} has {n_features} features but {len(out)} names were given; pass one name per column")
    if len(set(out)) != len(out):
        seen: set[str] = set()
        dup = next(n for n in out if n in seen or seen.add(n))
        raise UsageError(f"feature name '{dup}' appears more than once; feature names must be unique")
    return out


def _as_rng(seed: int | np.random.Generator) -> np.random.Generator:
    """A generator from an int seed, or the generator itself (the caller owns its state)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer or a numpy Generator, got {seed!r}")
    return np.random.default_rng(int(seed))
