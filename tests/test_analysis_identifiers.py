"""identifier_like: planted row ids (ordered, shuffled, reversed, named) are found; measurements are not."""

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
