"""The public entry points of :mod:`audit.io.tabular`: inspect a table, stream it, read it whole, read a baseline."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Generator, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from audit.errors import DataError, UsageError
from audit.io.tabular.header import LIST_COLUMNS, inspect_spec
from audit.io.tabular.spec import Chunk, TableSpec
from audit.io.tabular.stream import stream_chunks
from audit.io.tabular.validate import BASELINE_HINTS, DATA_HINTS

__all__ = ["inspect_table", "iter_chunks", "read_baseline_row", "read_table"]

def inspect_table(
    path: str | os.PathLike[str],
    *,
    target_col: str | Sequence[str] | None = None,
    drop: Sequence[str] = (),
    slice_col: str | None = None,
    sep: str | None = None,
) -> TableSpec:
    """Read a table's header (CSV) or schema (Parquet) and split its columns into features and the rest.

    No data rows are converted. A delimited file is read up to its first few rows to choose the separator and
    up to its first 1000 rows to recognise a pandas index column; a Parquet file's first 1000 values of its
    first column are read for the same reason.

    Parameters
    ----------
    path : str or PathLike
        A ``.csv``, ``.tsv``, ``.csv.gz``, ``.tsv.gz``, ``.parquet`` or ``.pq`` file.
    target_col : str, sequence of str or None, default None
        The label column; excluded from the features. Several columns (a sequence, or a comma list "a,b,c" that
        is not itself a column name) are the targets of a multi-output regression.
    drop : sequence of str, default ()
        Columns to ignore (identifiers, free text, leaky columns). An empty first header cell can be named
        ``""`` or ``"Unnamed: 0"`` (as pandas calls it).
    slice_col : str or None, default None
        A column that groups rows for per-slice analysis; excluded from the features.
    sep : str or None, default None
        Field separator of a delimited file: one character such as ``","``, ``";"`` or ``"\\t"`` (``"\\\\t"``
        and ``"tab"`` also mean a tab). None detects it from the header among comma, tab and semicolon.
        Ignored for Parquet.

    Returns
    -------
    TableSpec
        With ``sep``, ``compression``, ``dropped_index`` and ``notes`` filled in.

    Raises
    ------
    DataError
        Missing, empty or header-only file, unsupported extension, a file whose content does not match its
        extension, a separator that cannot be decided from the header, duplicate or empty column names, no
        feature columns left.
    UsageError
        ``target_col``, ``drop`` or ``slice_col`` names a column the file does not have, the target is also
        the slice column, or ``sep`` is not one character.
    """
    return inspect_spec(path, target_col=target_col, drop=drop, slice_col=slice_col, sep=sep, lenient_unnamed=False)


def iter_chunks(spec: TableSpec, chunk_rows: int = 65536) -> Generator[Chunk, None, None]:
    """Stream a table as validated chunks of at most ``chunk_rows`` rows.

    Delimited text is parsed with ``pandas.read_csv(chunksize=..., sep=spec.sep)`` (gzip decompressed as it
    streams), Parquet with ``pyarrow.parquet.ParquetFile.iter_batches``. Peak memory is a few chunks (and, for
    Parquet, one row group).

    Parameters
    ----------
    spec : TableSpec
        From :func:`inspect_table`.
    chunk_rows : int, default 65536
        Rows per chunk (>= 1). Parquet chunks can be shorter at row-group boundaries.

    Yields
    ------
    Chunk
        ``X`` of shape (n, n_features) float32, ``y`` of shape (n,) float64 or None, ``slice_values`` of
        shape (n,) or None, and ``row_offset``.

    Raises
    ------
    UsageError
        ``chunk_rows`` is not a positive integer, or ``spec`` is not a TableSpec. Raised at the call, before
        any row is read.
    DataError
        While iterating: a bad value (non-numeric, missing, infinite or too large for float32) in a feature,
        a non-numeric or missing target, a missing slice label, a ragged CSV row, a file that is not UTF-8 or
        a corrupt gzip stream, a file that changed since :func:`inspect_table`, a dropped index column
        (``spec.dropped_index``) that stops counting 0, 1, 2, ..., or no data rows at all.
    """
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
        raise UsageError(f"chunk_rows must be a positive integer, got {chunk_rows!r}; the default is 65536")
    if not isinstance(spec, TableSpec):
        raise UsageError(f"iter_chunks needs a TableSpec from inspect_table, got {type(spec).__name__}")
    return stream_chunks(spec, chunk_rows, DATA_HINTS)


def read_table(spec: TableSpec, max_rows: int | None = None) -> Chunk:
    """Read a whole table (or its first ``max_rows`` rows) into one chunk. For small files.

    Parameters
    ----------
    spec : TableSpec
        From :func:`inspect_table`.
    max_rows : int or None, default None
        Stop after this many data rows (>= 1); None reads everything.

    Returns
    -------
    Chunk
        ``X`` of shape (n_rows, n_features) float32 and the rest as in :func:`iter_chunks`, ``row_offset`` 0.

    Raises
    ------
    UsageError
        ``max_rows`` is not None or a positive integer.
    DataError
        As :func:`iter_chunks`, for the rows read.
    """
    if max_rows is not None and (isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1):
        raise UsageError(f"max_rows must be a positive integer or None, got {max_rows!r}")
    chunk_rows = 65536 if max_rows is None else min(65536, max_rows)
    chunks = iter_chunks(spec, chunk_rows)
    try:
        return _concat(_take(chunks, max_rows), spec)
    finally:
        chunks.close()  # release the file now when max_rows stopped early


def read_baseline_row(path: str | os.PathLike[str], features: Sequence[str]) -> np.ndarray:
    """Read a baseline: a one-row CSV/TSV (or Parquet) holding a value for every feature.

    The baseline's separator is detected from its own header (it need not match the data's), and a pandas
    index column (``df.to_csv()`` without ``index=False``) is ignored like any other extra column.

    Parameters
    ----------
    path : str or PathLike
        The baseline file. Columns beyond ``features`` are ignored; order does not matter.
    features : sequence of str
        The data's feature columns, in model order.

    Returns
    -------
    ndarray of shape (n_features,), float32
        The baseline values in ``features`` order.

    Raises
    ------
    UsageError
        ``features`` is empty or not a sequence of strings.
    DataError
        The file is missing/empty/malformed, lacks some features (they are listed), has more than one data
        row, or holds a non-numeric, missing or infinite value.
    """
    if isinstance(features, str) or not all(isinstance(f, str) for f in features) or not features:
        raise UsageError("read_baseline_row needs the data's feature names as a non-empty list of strings")
    spec = inspect_spec(path, target_col=None, drop=(), slice_col=None, sep=None, lenient_unnamed=True)
    file_name = Path(spec.path).name
    missing = [f for f in features if f not in spec.columns]
    if missing:
        more = f", ... ({len(missing)} in all)" if len(missing) > LIST_COLUMNS else ""
        raise DataError(
            f"baseline file '{file_name}' lacks the feature column(s) {', '.join(missing[:LIST_COLUMNS])}{more}; "
            "add them with one baseline value each"
        )
    spec = dataclasses.replace(spec, features=tuple(features), target_col=None, slice_col=None)
    chunks = stream_chunks(spec, 2, BASELINE_HINTS)
    try:
        first = next(chunks)
    finally:
        chunks.close()
    if first.n_rows > 1:
        raise DataError(
            f"baseline file '{file_name}' has more than one data row; keep exactly one row of baseline values"
        )
    return first.X[0].copy()


def _take(chunks: Iterable[Chunk], max_rows: int | None) -> Iterator[Chunk]:
    got = 0
    for chunk in chunks:
        if max_rows is not None and got + chunk.n_rows >= max_rows:
            keep = max_rows - got
            yield Chunk(
                X=chunk.X[:keep],
                y=None if chunk.y is None else chunk.y[:keep],
                slice_values=None if chunk.slice_values is None else chunk.slice_values[:keep],
                row_offset=chunk.row_offset,
            )
            return
        got += chunk.n_rows
        yield chunk


def _concat(chunks: Iterable[Chunk], spec: TableSpec) -> Chunk:
    parts = list(chunks)
    return Chunk(
        X=np.concatenate([c.X for c in parts], axis=0) if parts else np.empty((0, len(spec.features)), np.float32),
        y=np.concatenate([c.y for c in parts]) if spec.target_col and parts else None,
        slice_values=np.concatenate([c.slice_values for c in parts]) if spec.slice_col and parts else None,
        row_offset=0,
    )
