"""Per-chunk validation: a frame of rows becomes a :class:`Chunk` of finite numbers, or a :class:`DataError` that
names the column, the count, the first data row, the offending value and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from audit.errors import DataError
from audit.io.tabular.spec import Chunk, TableSpec

__all__ = ["BASELINE_HINTS", "DATA_HINTS", "Hints", "check_index", "frame_to_chunk"]

_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,(\d{1,2}|\d{4,})\s*$")  # '1,5': a number written with a decimal comma
_VALUE_MAX = 40  # characters of an offending cell quoted in a message
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Hints:
    """What to tell the person, depending on which file is being read. ``{col}`` is filled in."""

    what: str  # "column" or "baseline column"
    non_numeric: str
    missing: str
    infinite: str
    too_large: str


DATA_HINTS = Hints(
    what="column",
    non_numeric="pass --drop {col} or clean the file",
    missing="fill or drop them, or pass --drop {col}",
    infinite="replace them with finite numbers, or pass --drop {col}",
    too_large="rescale the column, or pass --drop {col}",
)
BASELINE_HINTS = Hints(
    what="baseline column",
    non_numeric="put a number there in the baseline file",
    missing="put a value there in the baseline file",
    infinite="put a finite number there in the baseline file",
    too_large="put a smaller number there in the baseline file",
)


def _n(count: int, noun: str) -> str:
    """'1 missing value', '3 missing values'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def check_index(series: pd.Series, col: str, name: str, offset: int) -> None:
    """The dropped index column must go on counting offset, offset + 1, ... in every chunk."""
    expected = np.arange(offset, offset + len(series), dtype=np.int64)  # expected: (n,)
    if pd.api.types.is_integer_dtype(series.dtype) and np.array_equal(series.to_numpy(), expected):
        return
    numeric = pd.to_numeric(series.astype(object), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    wrong = ~(numeric == expected)
    first = int(np.flatnonzero(wrong)[0]) if wrong.any() else 0
    shown = "'' (the empty header cell)" if col == "" else f"'{col}'"
    drop = "'Unnamed: 0'" if col == "" else f"'{col}'"
    value = series.iloc[first]
    held = "an empty cell" if pd.isna(value) else _show(value)
    raise DataError(
        f"the first column {shown} of '{name}' was left out as pandas' row index (its first rows count 0, 1, "
        f"2, ...), but data row {offset + first + 1} holds {held} instead of {offset + first}; "
        f"pass --drop {drop} to leave it out anyway, or clean the file"
    )


def frame_to_chunk(frame: pd.DataFrame, spec: TableSpec, offset: int, span: str, hints: Hints) -> Chunk:
    """Validate one frame of rows and convert it to a :class:`Chunk`.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
        The rows as read, holding at least the spec's features, targets and slice column.
    spec : TableSpec
    offset : int
        0-based index of the frame's first data row in the file.
    span : str
        ``""`` for a file read in one frame, else ``" in data rows a-b"``, put in messages.
    hints : Hints
        What messages tell the person to do.

    Raises
    ------
    DataError
        A non-numeric, missing, infinite or too-large feature value, a bad target, a missing slice label.
    """
    X = _feature_matrix(frame, spec.features, offset, span, hints)
    y = None
    if spec.extra_targets:
        y = np.column_stack([_target_vector(frame[c], c, offset, span).astype(np.float64) for c in spec.targets])
    elif spec.target_col:
        y = _target_vector(frame[spec.target_col], spec.target_col, offset, span)
    s = _slice_labels(frame[spec.slice_col], spec.slice_col, offset, span) if spec.slice_col else None
    return Chunk(X=X, y=y, slice_values=s, row_offset=offset)


def _is_plain_numeric(dtype: Any) -> bool:
    return (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
        and not isinstance(dtype, pd.CategoricalDtype)
    )


def _show(value: Any) -> str:
    text = str(value)
    return repr(text if len(text) <= _VALUE_MAX else text[: _VALUE_MAX - 3] + "...")


def _as_float64(series: pd.Series, label: str, offset: int, span: str, todo: str) -> np.ndarray:
    """A column as float64 with NaN for missing cells; text that is not a number raises DataError."""
    if _is_plain_numeric(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_datetime64_any_dtype(series.dtype) or pd.api.types.is_timedelta64_dtype(series.dtype):
        raise DataError(f"{label} holds dates or times, not numbers{span}; convert it to a number, or {todo}")
    raw = series.astype(object)
    converted = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(converted) & raw.notna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        if _DECIMAL_COMMA.match(str(raw.iloc[first])):
            todo = "it is written with a decimal comma: save the numbers with '.' as the decimal mark"
        raise DataError(
            f"{label} has {_n(int(bad.sum()), 'non-numeric value')}{span} (first at data row {offset + first + 1}, "
            f"value {_show(raw.iloc[first])}); {todo}"
        )
    return converted


def _feature_matrix(frame: pd.DataFrame, features: Sequence[str], offset: int, span: str, hints: Hints) -> np.ndarray:
    sub = frame.loc[:, list(features)]
    if all(_is_plain_numeric(dt) for dt in sub.dtypes):
        values = sub.to_numpy(dtype=np.float64, na_value=np.nan)  # values: (n, n_features)
    else:
        values = np.empty((len(sub), len(features)), dtype=np.float64)
        for j, col in enumerate(features):
            todo = hints.non_numeric.format(col=col)
            values[:, j] = _as_float64(sub.iloc[:, j], f"{hints.what} '{col}'", offset, span, todo)
    with np.errstate(over="ignore"):
        X = values.astype(np.float32)
    if not np.isfinite(X).all():
        _raise_non_finite(values, features, offset, span, hints)
    return X


def _raise_non_finite(values: np.ndarray, features: Sequence[str], offset: int, span: str, hints: Hints) -> None:
    for j, col in enumerate(features):
        column = values[:, j]  # column: (n,) float64
        checks = (  # mask, what the count counts, whether to quote the value, what to do
            (np.isnan(column), "missing value{s}", False, hints.missing),
            (np.isinf(column), "infinite value{s}", False, hints.infinite),
            (np.abs(column) > _FLOAT32_MAX, "value{s} too large for float32", True, hints.too_large),
        )
        for mask, noun, quote, todo in checks:
            if mask.any():
                count = int(mask.sum())
                first = int(np.flatnonzero(mask)[0])
                shown = f", value {column[first]:g}" if quote else ""
                raise DataError(
                    f"{hints.what} '{col}' has {count} {noun.format(s='' if count == 1 else 's')}{span} (first at "
                    f"data row {offset + first + 1}{shown}); {todo.format(col=col)}"
                )


def _target_vector(series: pd.Series, col: str, offset: int, span: str) -> np.ndarray:
    label = f"target column '{col}'"
    if not _is_plain_numeric(series.dtype) and not (
        pd.api.types.is_datetime64_any_dtype(series.dtype) or pd.api.types.is_timedelta64_dtype(series.dtype)
    ):
        raw = series.astype(object)
        numeric = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(numeric) & raw.notna().to_numpy()
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            examples = [str(v) for v in pd.unique(raw[bad])[:2]]
            mapping = ", ".join(f"{v}={i}" for i, v in enumerate(examples))
            raise DataError(
                f"{label} holds text labels{span} (first at data row {offset + first + 1}, value "
                f"{_show(raw.iloc[first])}); encode the labels as integers 0..k-1 in the file (e.g. {mapping})"
            )
    y = _as_float64(series, label, offset, span, "encode the labels as numbers")
    missing = np.isnan(y)
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{label} has {_n(int(missing.sum()), 'missing value')}{span} (first at data row {offset + first + 1}); "
            "fill them or drop those rows"
        )
    infinite = np.isinf(y)
    if infinite.any():
        first = int(np.flatnonzero(infinite)[0])
        raise DataError(
            f"{label} has {_n(int(infinite.sum()), 'infinite value')}{span} (first at data row {offset + first + 1}); "
            "replace them with finite numbers"
        )
    return y


def _slice_labels(series: pd.Series, col: str, offset: int, span: str) -> np.ndarray:
    missing = series.isna().to_numpy()
    if missing.any():
        first = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"slice column '{col}' has {_n(int(missing.sum()), 'missing value')}{span} (first at data row "
            f"{offset + first + 1}); fill them (e.g. with 'unknown') or choose another --slice-col"
        )
    return series.astype(str).to_numpy(dtype=object)
