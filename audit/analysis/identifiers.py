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

# below this many rows, value patterns (unique, monotone, evenly spaced) arise by chance too easily
MIN_ROWS = 20

# the gaps between sorted values must be whole multiples of the smallest gap within this share of it ...
_STEP_TOL = 0.01
# ... widened by the rounding of the stored values (8 ulps of the largest magnitude, in units of the smallest gap);
# when that makes the tolerance wider than this, the values are too fine for their precision to show a pattern
_MAX_TOL = 0.25


def identifier_like(X: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Which columns look like row identifiers, on any scale (a row number after StandardScaler still counts).

    A column is identifier-like when its values are all different (unique per row) and

    - its name says identifier (``id``, ``*_id``, ``index``, ``row``, ``Unnamed: 0``, ``userId``, ...), whatever
      the values, or
    - sorted, it is an arithmetic progression: every gap equals the smallest one (a row number in any order:
      ``0, 1, 2, ...`` shuffled, or that after any affine rescale ``a + b k``), or
    - it is strictly monotone in row order (increasing or decreasing) and its values lie on a lattice
      ``a + b k`` with whole ``k``: every gap between sorted values is a whole multiple of the smallest gap
      ``b`` (increasing keys with gaps, such as an auto-increment column after deletions, on any scale), or
      its values are whole numbers (the lattice of step 1, as before rescaling).

    Gaps are compared within :data:`_STEP_TOL` (1%) of the smallest gap, widened by the float rounding of the
    stored values (8 ulps of the column's largest magnitude); a column whose precision cannot resolve its own
    smallest gap to within a quarter step is not judged by its values (float32 resolves a standardised lattice of
    up to about 500,000 steps, float64 any realistic one).

    Why these routes: uniqueness alone says nothing, as almost every continuous measurement is unique per row; nor
    does monotone alone, as a file sorted by a measured time would make that time monotone. A monotone continuous
    column has gaps that are no multiples of its smallest gap (the chance that 19 such gaps all land within 1% of a
    multiple is about ``0.02^19``), so the lattice keeps it out while keeping row numbers and keys, whatever their
    scale (measured: none of 6,000 columns of sorted normal values, exponential arrival times, uniform values and
    unordered unique integers, 20 to 200 rows, was flagged). What stays flagged, by design: a file sorted by a
    whole-number (or fixed-decimal) column with no repeats, such as Unix seconds, which then works as a row counter;
    a rank- or quantile-transformed feature, which cannot be told from a shuffled row number by its values. A
    shuffled row number seen through a random sample of the rows (files larger than the analysed sample) is no
    longer a progression; its name, or its order when the sample keeps file order, still finds it. Rescaled keys
    whose smallest gap is not their unit (gaps of 2 and 3, none of 1) are missed; unscaled they are whole numbers.

    The value routes need at least :data:`MIN_ROWS` rows; the name route needs two.

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
    eps = float(np.finfo(X.dtype).eps) if np.issubdtype(X.dtype, np.floating) else 0.0
    for j in range(n_features):
        x = X[:, j].astype(np.float64)  # (n_rows,)
        if not np.isfinite(x).all():
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
        lattice, progression = _lattice(gaps, max(abs(s[0]), abs(s[-1])), eps)
        if monotone and not lattice:
            lattice = bool(np.array_equal(x, np.round(x)))  # whole numbers: the lattice of step 1
        out[j] = progression or (monotone and lattice)
    return out


def _lattice(gaps: np.ndarray, magnitude: float, eps: float) -> tuple[bool, bool]:
    """Whether sorted values with these gaps (n_rows - 1,) lie on ``a + b k`` (b the smallest gap, k whole),
    and whether they are an arithmetic progression (every k step 1)."""
    unit = float(gaps.min())
    tol = _STEP_TOL + 8.0 * eps * magnitude / unit  # in units of the smallest gap
    if tol > _MAX_TOL:
        return False, False  # too fine for the values' precision to tell
    k = gaps / unit  # each gap in smallest gaps
    whole = np.round(k)
    if np.any(np.abs(k - whole) > tol):
        return False, False
    return True, bool((whole == 1).all())


def _is_id_name(name: str) -> bool:
    name = name.strip()
    return bool(ID_NAME_PATTERN.match(name) or _CAMEL_ID.match(name))
