"""Text data: a CSV, TSV or Parquet file with one text column and, optionally, a label column.

:func:`read_texts` reads the two columns (nothing else is loaded), checks them and returns a :class:`TextData`.
Every problem is one :class:`~audit.errors.DataError` line (exit 3) that names the column, the first bad row
(1-based data rows, the header not counted) and what to do: a missing file or column, an empty text, a missing
label. Without ``--text-col`` the text column is the only column of text besides the label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from audit.errors import DataError, UsageError
from audit.hashing import sha256_file

__all__ = ["TextData", "TEXT_FORMATS", "read_texts", "parse_labels"]

TEXT_FORMATS = (".csv", ".tsv", ".parquet", ".pq")


@dataclass(frozen=True)
class TextData:
    """The audited texts.

    Attributes
    ----------
    texts : tuple of str
        One per data row, in file order.
    labels : ndarray of shape (n_rows,) or None
        The label column as given (ints or strings); None without ``--target-col``.
    text_col, target_col : str
    sha256 : str
    """

    texts: tuple[str, ...]
    labels: np.ndarray | None
    text_col: str
    target_col: str
    sha256: str


def _read_frame(path: Path, columns: list[str] | None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path, columns=columns)
        sep = "\t" if suffix == ".tsv" else ","
        return pd.read_csv(path, sep=sep, usecols=columns, dtype=str, keep_default_na=False, na_values=[])
    except (ValueError, OSError, pd.errors.ParserError) as e:
        reason = " ".join(str(e).split())[:200]
        raise DataError(f"cannot read '{path.name}' as a {suffix.lstrip('.')} table ({reason}); pass a CSV or "
                        "Parquet file with a header") from e


def _columns(path: Path) -> list[str]:
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as e:  # pyarrow raises several types for a file that is not Parquet
            raise DataError(f"'{path.name}' is not a readable Parquet file ({e}); pass a CSV or Parquet file") from e
    return list(_read_frame(path, None).columns) if path.stat().st_size else []


def read_texts(path: str | Path, *, text_col: str | None = None, target_col: str | None = None) -> TextData:
    """Read the text column (and the label column) of a CSV/TSV/Parquet file.

    Raises
    ------
    DataError
        Missing or unreadable file, a named column that is not there, no rows, an empty or missing text, a
        missing label.
    UsageError
        No ``text_col`` and several candidate text columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file '{path}' does not exist; check the path")
    if path.suffix.lower() not in TEXT_FORMATS:
        raise DataError(f"'{path.name}' is not a CSV, TSV or Parquet file; pass one with a text column")
    cols = _columns(path)
    if not cols:
        raise DataError(f"'{path.name}' is empty; pass a file with a header and rows")
    for flag, col in (("--text-col", text_col), ("--target-col", target_col)):
        if col is not None and col not in cols:
            raise DataError(f"{flag} '{col}' is not a column of '{path.name}' (columns: {', '.join(cols[:8])}); "
                            "pass one of those")
    if text_col is None:
        text_col = _guess_text_column(path, cols, target_col)
    wanted = [text_col] + ([target_col] if target_col else [])
    frame = _read_frame(path, wanted)
    if len(frame) == 0:
        raise DataError(f"'{path.name}' has a header but no rows; pass a file with data rows")
    texts = frame[text_col]
    bad = texts.isna().to_numpy() | texts.astype(str).str.strip().eq("").to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0]) + 1
        raise DataError(f"column '{text_col}' has {int(bad.sum())} empty text(s) (first at row {first}); fill or "
                        "drop those rows")
    labels = None
    if target_col:
        raw = frame[target_col]
        missing = raw.isna().to_numpy() | raw.astype(str).str.strip().eq("").to_numpy()
        if missing.any():
            first = int(np.flatnonzero(missing)[0]) + 1
            raise DataError(f"label column '{target_col}' has {int(missing.sum())} missing value(s) (first at row "
                            f"{first}); fill or drop those rows, or leave out --target-col")
        labels = raw.astype(str).str.strip().to_numpy()
    return TextData(tuple(texts.astype(str).tolist()), labels, text_col, target_col or "", sha256_file(path))


def _guess_text_column(path: Path, cols: list[str], target_col: str | None) -> str:
    rest = [c for c in cols if c != target_col]
    named = [c for c in rest if c.strip().lower() in ("text", "review", "sentence", "content", "document")]
    if len(named) == 1:
        return named[0]
    sample = _read_frame(path, rest).head(50)
    texty = [c for c in rest if sample[c].astype(str).str.contains(r"\s", regex=True).mean() > 0.5]
    if len(texty) == 1:
        return texty[0]
    raise UsageError(f"cannot tell which column of '{path.name}' holds the text (candidates: "
                     f"{', '.join(texty or rest) or 'none'}); pass --text-col")


def parse_labels(raw: np.ndarray, class_names: tuple[str, ...], n_classes: int, target_col: str) -> np.ndarray:
    """Labels as class indices 0..k-1: integers, or the model's class names (case-insensitive).

    Raises
    ------
    DataError
        A label that is neither a class index of the model nor one of its class names.
    """
    by_name = {c.strip().lower(): i for i, c in enumerate(class_names)}
    out = np.empty(len(raw), dtype=np.int64)
    for i, v in enumerate(raw):
        text = str(v).strip()
        try:
            k = int(float(text))
            ok = float(text) == k and 0 <= k < max(n_classes, 2)
        except ValueError:
            k, ok = by_name.get(text.lower(), -1), text.lower() in by_name
        if not ok:
            names = f" or one of {', '.join(class_names)}" if class_names else ""
            raise DataError(f"label column '{target_col}' has '{text}' at row {i + 1}, which is not a class of the "
                            f"model (0..{max(n_classes, 2) - 1}{names}); fix the labels or pass another --target-col")
        out[i] = k
    return out
