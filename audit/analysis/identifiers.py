"""Columns that look like row identifiers (a row number, a key, a saved pandas index) rather than measurements.

A model that draws on such a column has learnt something about how the file was put together (row order, key
assignment), not about the rows themselves.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from audit.analysis._checks import _as_matrix, _check_names

__all__ = ["identifier_like", "ID_NAME_PATTERN", "MIN_ROWS"]

# names that say "identifier" (any case): id, idx, index, row, rowid, row_number, "Unnamed: 0" (the index pandas
# writes with to_csv), and suffixes such as user_id, order-idx, account.key
ID_NAME_PATTERN = re.compile(
    r"^(?:id|idx|index|row|rowid|row_?(?:num|number|no)|unnamed: ?0|.+[_ .-](?:id|idx|key))$", re.IGNORECASE
)
# camelCase suffixes (userId, customerID): case-sensitive, so "paid" or "valid" do not match
_CAMEL_ID = re.compile(r"^.*[a-z0-9](?:Id|ID)$")

# below this many rows, value patterns (unique, monotone integers) arise by chance too easily
MIN_ROWS = 20


def identifier_like(X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Which columns look like row identifiers.

    A column is identifier-like when its values are whole numbers, all different, and either

    - ordered like the rows (strictly increasing or strictly decreasing in row order), or
    - an arithmetic progression once sorted (a shuffled row number: 0, 1, 2, ... in any order), or
    - the column's name says identifier (``id``, ``*_id``, ``index``, ``row``, ``Unnamed: 0``, ``userId``, ...).

    The value-only routes need at least :data:`MIN_ROWS` rows; the name route needs two.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
        Feature matrix in file row order. Non-finite values make a column not identifier-like.
    names : sequence of str of length n_features
        Column names.

    Returns
    -------
    ndarray of bool, shape (n_features,)
    """
    X = _as_matrix(X, "feature matrix")
    n, n_features = X.shape
    names = _check_names(names, n_features, "feature matrix")
    out = np.zeros(n_features, dtype=bool)
    if n < 2:
        return out
    for j in range(n_features):
        x = X[:, j].astype(np.float64)  # (n_rows,)
        if not np.isfinite(x).all() or not np.array_equal(x, np.round(x)):
            continue
        s = np.sort(x)
        gaps = np.diff(s)  # (n_rows - 1,)
        if (gaps == 0).any():
            continue  # not unique per row
        if _is_id_name(names[j]):
            out[j] = True
            continue
        if n < MIN_ROWS:
            continue
        steps = np.diff(x)
        monotone = bool((steps > 0).all() or (steps < 0).all())
        progression = bool((gaps == gaps[0]).all())
        out[j] = monotone or progression
    return out


def _is_id_name(name: str) -> bool:
    name = name.strip()
    return bool(ID_NAME_PATTERN.match(name) or _CAMEL_ID.match(name))
