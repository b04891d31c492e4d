"""identifier_like: planted row ids (ordered, shuffled, reversed, named, rescaled) are found; measurements are not."""

from __future__ import annotations

import numpy as np
import pytest

from audit.analysis import identifier_like
from audit.analysis.identifiers import MIN_ROWS
from audit.errors import UsageError

N = 200


def _flags(columns: dict[str, np.ndarray]) -> dict[str, bool]:
    X = np.column_stack(list(columns.values()))
    return dict(zip(columns, identifier_like(X, list(columns)).tolist(), strict=True))


def test_planted_identifiers_are_found():
    rng = np.random.default_rng(0)
    flags = _flags(
        {
            "a": np.arange(N, dtype=float),  # row number in file order
            "b": rng.permutation(N) * 3.0 + 1000,  # shuffled arithmetic progression
            "c": np.arange(N)[::-1] * 7.0,  # decreasing with the rows
            "d": np.cumsum(rng.integers(1, 50, N)).astype(float),  # increasing keys with gaps
            "customer_id": rng.choice(10**6, N, replace=False).astype(float),  # random unique keys, named
            "Unnamed: 0": rng.permutation(N) + 0.0,  # the index pandas writes with to_csv
            "userId": rng.choice(10**6, N, replace=False).astype(float),
        }
    )
    assert all(flags.values()), flags


def test_measurements_are_not_identifiers():
    rng = np.random.default_rng(1)
    flags = _flags(
        {
            "amount": rng.choice(10**6, N, replace=False).astype(float),  # unique integers, unordered, no id name
            "age": rng.integers(18, 90, N).astype(float),  # integers with repeats
            "score": rng.standard_normal(N),  # not whole numbers
            "paid": rng.choice(10**6, N, replace=False).astype(float),  # ends in "id", but is not an id name
            "valid": rng.choice(10**6, N, replace=False).astype(float),
            "order_id": rng.integers(0, 5, N).astype(float),  # id name, but values repeat
            "sorted_float": np.sort(rng.standard_normal(N)),  # monotone but not integer
        }
    )
    assert not any(flags.values()), flags


def _standardise(a: np.ndarray) -> np.ndarray:
    """What StandardScaler does to a column."""
    return (a - a.mean()) / a.std()


@pytest.mark.parametrize("n", [MIN_ROWS, N, 200_000])
def test_rescaled_identifiers_are_found(n):
    """A row number or key after StandardScaler, min-max scaling or any affine map, in float64 and float32."""
    rng = np.random.default_rng(2)
    row = np.arange(n, dtype=float)
    columns = {
        "a": _standardise(row),  # ordered row number
        "b": _standardise(rng.permutation(n).astype(float)),  # shuffled row number
        "c": (row[::-1] / (n - 1)) * 3.7 - 1.2,  # reversed, min-max scaled and shifted
        "d": _standardise(np.cumsum(np.r_[1, rng.integers(1, 4, n - 1)]).astype(float)),  # keys with gaps
        "e": -0.001 * rng.permutation(n) + 42.0,  # shuffled, negative scale
    }
    flags = _flags(columns)
    assert all(flags.values()), flags
    # float32 resolves a standardised lattice of up to ~500,000 steps (keys with gaps span more at 200,000 rows)
    names = ["a", "b", "c", "e"] if n > 100_000 else list(columns)
    X32 = np.column_stack([columns[k] for k in names]).astype(np.float32)
    assert identifier_like(X32, names).all()


@pytest.mark.parametrize("n", [MIN_ROWS, N, 20_000])
def test_scaled_measurements_are_not_identifiers(n):
    """Unique per row and even sorted in row order, but not evenly spaced nor on a lattice: not an identifier."""
    rng = np.random.default_rng(3)
    columns = {
        "sorted_normal": np.sort(rng.standard_normal(n)),  # a file sorted by a continuous measurement
        "measured_time": _standardise(np.cumsum(rng.exponential(1.0, n))),  # arrival times, in row order
        "reversed_uniform": np.sort(rng.uniform(size=n))[::-1],
        "scaled_unique_ints": _standardise(rng.choice(10**9, n, replace=False).astype(float)),  # unordered
        "scaled_uniform": _standardise(rng.uniform(size=n)),
    }
    flags = _flags(columns)
    assert not any(flags.values()), flags
    X32 = np.column_stack(list(columns.values())).astype(np.float32)
    assert not identifier_like(X32, list(columns)).any()


def test_scaled_named_identifier_is_found_by_name():
    rng = np.random.default_rng(4)
    keys = _standardise(rng.choice(10**6, N, replace=False).astype(float))  # random keys: no value pattern
    X = np.column_stack([keys, keys])
    assert identifier_like(X, ["customer_id", "customer"]).tolist() == [True, False]


def test_value_route_needs_enough_rows_but_name_route_does_not():
    n = MIN_ROWS - 1
    X = np.column_stack([np.arange(n, dtype=float), np.arange(n, dtype=float)])
    assert identifier_like(X, ["counter", "row_id"]).tolist() == [False, True]
    X = np.column_stack([np.arange(MIN_ROWS, dtype=float)])
    assert identifier_like(X, ["counter"]).tolist() == [True]


def test_missing_values_and_single_row():
    X = np.column_stack([np.r_[np.arange(30.0), np.nan]])
    assert identifier_like(X, ["id"]).tolist() == [False]
    assert identifier_like(np.array([[1.0]]), ["id"]).tolist() == [False]


def test_bad_names():
    with pytest.raises(UsageError, match="2 features but 1 names"):
        identifier_like(np.ones((5, 2)), ["a"])
