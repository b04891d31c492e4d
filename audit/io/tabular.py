"""Tabular data: CSV, TSV or Parquet, read in bounded chunks and validated as it streams.

:func:`inspect_table` reads only the header (CSV) or schema (Parquet), plus a small sample of the first rows, and
decides which columns are features. :func:`iter_chunks` then streams the rows ``chunk_rows`` at a time, so memory
stays bounded by the chunk size whatever the file size, and checks every chunk: non-numeric, missing or infinite
feature values, values too large for float32, a non-numeric target, missing slice labels and ragged CSV rows each
raise a :class:`DataError` that names the column, the count, the first data row and what to do.

Delimited text is read as people save it: comma-, tab- or semicolon-separated (the separator is detected from
the header, or given as ``sep``), plain or gzip-compressed (``.csv``, ``.tsv``, ``.csv.gz``, ``.tsv.gz``; gzip is
recognised from the bytes and decompressed while streaming). The unnamed row-number column that pandas'
``DataFrame.to_csv()`` writes by default is recognised and left out of the features.

Row numbers in messages are 1-based *data rows* (the header is not counted), as a person counts rows in a
spreadsheet under the header; ragged-row messages name the physical *line* of the file instead.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import gzip
import io
import os
import re
import warnings
import zlib
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from audit.errors import DataError, UsageError
from audit.hashing import sha256_file

__all__ = [
    "TABLE_FORMATS",
    "TableSpec",
    "Chunk",
    "inspect_table",
    "iter_chunks",
    "read_table",
    "read_baseline_row",
]

TABLE_FORMATS = ("csv", "parquet")
# suffix -> (format, separator used when the header cannot tell: a one-column file); longest suffixes first
_EXTENSIONS = (
    (".csv.gz", "csv", ","),
    (".tsv.gz", "csv", "\t"),
    (".csv", "csv", ","),
    (".tsv", "csv", "\t"),
    (".parquet", "parquet", ","),
    (".pq", "parquet", ","),
)
_SEPARATORS = (",", "\t", ";")  # the separators detection chooses from
_SEP_ALIASES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";"}
_SNIFF_ROWS = 20  # data rows looked at, after the header, to decide between separators
_SNIFF_CHARS = 1 << 22  # at most this much text is read for that
_INDEX_NAMES = ("", "Unnamed: 0")  # how pandas' to_csv() index column appears in a header
_INDEX_SAMPLE_ROWS = 1000  # first rows whose first cell must count 0, 1, 2, ... for the column to be an index
_GZIP_MAGIC = b"\x1f\x8b"
_DECIMAL_COMMA = re.compile(r"^\s*[+-]?\d+,(\d{1,2}|\d{4,})\s*$")  # '1,5': a number written with a decimal comma
_LIST_COLUMNS = 10  # available columns named in an "unknown column" message
_VALUE_MAX = 40  # characters of an offending cell quoted in a message
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class TableSpec:
    """What :func:`inspect_table` learned from a file's header or schema.

    Attributes
    ----------
    path : str
        The file as given.
    format : str
        ``"csv"`` (delimited text: CSV, TSV or semicolon-separated, see ``sep``) or ``"parquet"``.
    columns : tuple of str
        All columns, in file order, as the header spells them (an empty header cell is ``""``).
    features : tuple of str
        ``columns`` minus the target, dropped, slice and index columns, in file order. The model's input columns.
    target_col : str or None
        The label column, if any.
    slice_col : str or None
        The column whose values group rows into slices, if any.
    sha256 : str
        SHA-256 of the file's bytes (compressed bytes for a ``.gz`` file), for provenance.
    sep : str, default ","
        The field separator of a ``"csv"`` file: ``","``, ``"\\t"``, ``";"`` (detected) or what the caller passed.
        Unused for Parquet.
    compression : str or None, default None
        ``"gzip"`` for a gzip-compressed text file (recognised from its bytes), else None.
    dropped_index : str or None, default None
        The first column when it was recognised as the row index pandas' ``to_csv()`` writes (header ``""`` or
        ``"Unnamed: 0"``, values 0, 1, 2, ... in order) and left out of the features; every chunk checks that it
        keeps counting. None when there is no such column or the caller named it in ``drop``.
    notes : tuple of str, default ()
        One sentence each about choices made for the caller (a dropped index column, a detected separator that
        differs from the extension's), for the report.
    extra_targets : tuple of str, default ()
        Target columns after ``target_col`` for a multi-output regression (``target_col="a,b,c"``); chunks then
        carry ``y`` of shape (n, 1 + len(extra_targets)).
    """

    path: str
    format: str
    columns: tuple[str, ...]
    features: tuple[str, ...]
    target_col: str | None
    slice_col: str | None
    sha256: str
    sep: str = ","
    compression: str | None = None
    dropped_index: str | None = None
    notes: tuple[str, ...] = ()
    extra_targets: tuple[str, ...] = ()  # further target columns (multi-output regression), after target_col

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target column, in the order given: () without a target."""
        return ((self.target_col,) if self.target_col is not None else ()) + self.extra_targets


@dataclass(frozen=True, eq=False)
class Chunk:
    """A block of consecutive data rows.

    Attributes
    ----------
    X : ndarray of shape (n_rows, n_features), float32
        Feature values, columns in ``TableSpec.features`` order. All finite.
    y : ndarray of shape (n_rows,), float64, or None
        Target values (None without a target column). All finite.
    slice_values : ndarray of shape (n_rows,), object (str), or None
        Slice labels as text (None without a slice column).
    row_offset : int
        0-based index of the chunk's first data row in the file.
    """

    X: np.ndarray
    y: np.ndarray | None
    slice_values: np.ndarray | None
    row_offset: int

    @property
    def n_rows(self) -> int:
        """Number of rows in the chunk."""
        return int(self.X.shape[0])


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
    return _inspect(path, target_col=target_col, drop=drop, slice_col=slice_col, sep=sep, lenient_unnamed=False)


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
    return _chunks(spec, chunk_rows, _DATA_HINTS)


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
    spec = _inspect(path, target_col=None, drop=(), slice_col=None, sep=None, lenient_unnamed=True)
    file_name = Path(spec.path).name
    missing = [f for f in features if f not in spec.columns]
    if missing:
        more = f", ... ({len(missing)} in all)" if len(missing) > _LIST_COLUMNS else ""
        raise DataError(
            f"baseline file '{file_name}' lacks the feature column(s) {', '.join(missing[:_LIST_COLUMNS])}{more}; "
            "add them with one baseline value each"
        )
    spec = dataclasses.replace(spec, features=tuple(features), target_col=None, slice_col=None)
    chunks = _chunks(spec, 2, _BASELINE_HINTS)
    try:
        first = next(chunks)
    finally:
        chunks.close()
    if first.n_rows > 1:
        raise DataError(
            f"baseline file '{file_name}' has more than one data row; keep exactly one row of baseline values"
        )
    return first.X[0].copy()


# --------------------------------------------------------------------------------------------- header checks


def _split_targets(target_col: str | Sequence[str] | None, columns: Sequence[str]) -> tuple[str, ...]:
    """The target columns: one name, a sequence, or a comma list "a,b,c" (multi-output regression) unless the
    whole text is a column name of its own."""
    if target_col is None:
        return ()
    if not isinstance(target_col, str):
        return tuple(target_col)
    if target_col in columns or "," not in target_col:
        return (target_col,)
    return tuple(p.strip() for p in target_col.split(",") if p.strip())


def _inspect(
    path: str | os.PathLike[str],
    *,
    target_col: str | Sequence[str] | None,
    drop: Sequence[str],
    slice_col: str | None,
    sep: str | None,
    lenient_unnamed: bool,
) -> TableSpec:
    """:func:`inspect_table`; ``lenient_unnamed`` lets an empty first header cell pass (a baseline ignores it)."""
    chosen_sep = _check_sep(sep)
    file = _check_file(path)
    fmt, default_sep, compression = _format_of(file)
    name = file.name
    notes: list[str] = []
    pandas_index: tuple[str, ...] = ()
    if fmt == "csv":
        if chosen_sep is None:
            chosen_sep = _detect_sep(file, compression, default_sep)
            if chosen_sep != default_sep:
                notes.append(
                    f"'{name}' was read as {_sep_words(chosen_sep)}-separated (detected from its header); pass "
                    "--sep to choose another separator"
                )
        columns, first_values = _read_csv_header(file, chosen_sep, compression)
    else:
        chosen_sep = ","
        columns, first_values, pandas_index = _read_parquet_schema(file)
    _check_column_names(columns, name)

    drop_cols = (drop,) if isinstance(drop, str) else tuple(drop)
    targets = _split_targets(target_col, columns)
    target_col = targets[0] if targets else None
    # pandas calls an empty first header cell 'Unnamed: 0': accept that name for it
    first = columns[0] if columns else None
    if first == "" and "Unnamed: 0" not in columns:
        drop_cols = tuple("" if c == "Unnamed: 0" else c for c in drop_cols)
    for option, names in (("--target-col", targets), ("--drop", drop_cols), ("--slice-col", (slice_col,))):
        for col in names:
            if col is not None and col not in columns:
                raise UsageError(_unknown_column(option, col, columns, name))
    if slice_col is not None and slice_col in targets:
        raise UsageError(f"--slice-col '{slice_col}' is also the --target-col; slice by another column")
    if len(set(targets)) != len(targets):
        raise UsageError("--target-col names a column twice; list each target column once")

    named = set(drop_cols) | set(targets) | {c for c in (slice_col,) if c is not None}
    dropped_index = None
    if first in _INDEX_NAMES and first not in named and len(columns) > 1 and _counts_from_zero(first_values):
        dropped_index = first
        shown = "'' (an empty header cell)" if first == "" else f"'{first}'"
        notes.append(
            f"dropped the first column {shown} of '{name}': its values count 0, 1, 2, ..., the row index pandas' "
            "to_csv() writes unless index=False; pass --drop to leave out other columns"
        )
    implicit = [c for c in pandas_index if c not in named]
    if implicit:
        notes.append(
            f"left out {', '.join(repr(c) for c in implicit)}: the DataFrame index that pandas stored in '{name}'; "
            "reset_index() before to_parquet to keep it as a column"
        )
    if first == "" and first not in named and dropped_index is None and not lenient_unnamed:
        raise DataError(
            f"column 1 of '{name}' has no name in the header and its values are not the row numbers 0, 1, 2, ... "
            "that pandas' to_csv() writes as an index; name it, or pass --drop 'Unnamed: 0' to leave it out"
        )

    excluded = named | set(implicit) | ({dropped_index} if dropped_index is not None else set())
    features = tuple(c for c in columns if c not in excluded)
    if lenient_unnamed:
        features = tuple(c for c in features if c != "")
    if not features:
        removed = ", ".join(c or "''" for c in columns if c in excluded)
        raise DataError(
            f"no feature columns left in '{name}' after removing {removed}; keep at least one column the model "
            "reads (check --target-col, --drop and --slice-col)"
        )
    return TableSpec(
        path=os.fspath(path),
        format=fmt,
        columns=tuple(columns),
        features=features,
        target_col=target_col,
        slice_col=slice_col,
        sha256=sha256_file(file),
        extra_targets=tuple(targets[1:]),
        sep=chosen_sep,
        compression=compression,
        dropped_index=dropped_index,
        notes=tuple(notes),
    )


def _check_sep(sep: str | None) -> str | None:
    if sep is None:
        return None
    if not isinstance(sep, str):
        raise UsageError(f"--sep must be one character such as ',' ';' or '\\t', got {type(sep).__name__}")
    value = _SEP_ALIASES.get(sep.lower(), sep)
    if len(value) != 1 or value in "\"\r\n" or value.isalnum() or value == ".":
        raise UsageError(f"--sep must be one character such as ',' ';' or '\\t' (tab), got {sep!r}")
    return value


def _sep_words(sep: str) -> str:
    return {",": "comma", "\t": "tab", ";": "semicolon"}.get(sep, repr(sep))


def _sep_option(sep: str) -> str:
    return "--sep '\\t'" if sep == "\t" else f"--sep '{sep}'"


def _check_file(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise UsageError(f"the data path must be a string or path, got {type(path).__name__}")
    file = Path(path)
    if not file.exists():
        raise DataError(f"data file '{path}' does not exist; check the path")
    if file.is_dir():
        raise DataError(f"data path '{path}' is a directory; pass a CSV or Parquet file")
    if file.stat().st_size == 0:
        raise DataError(f"data file '{path}' is empty (0 bytes); pass a file with a header and data rows")
    return file


def _format_of(file: Path) -> tuple[str, str, str | None]:
    """(format, default separator, compression) from the name and the first bytes."""
    lower = file.name.lower()
    match = next(((ext, fmt, sep) for ext, fmt, sep in _EXTENSIONS if lower.endswith(ext)), None)
    if match is None:
        suffix = "".join(file.suffixes[-2:]) if file.suffix.lower() == ".gz" else file.suffix
        raise DataError(
            f"'{file.name}' has an unsupported extension '{suffix or '(none)'}'; save the data as CSV (.csv), "
            "TSV (.tsv), either gzip-compressed (.csv.gz, .tsv.gz), or Parquet (.parquet)"
        )
    ext, fmt, default_sep = match
    with open(file, "rb") as fh:
        magic = fh.read(4)
    if fmt == "parquet" and magic != b"PAR1":
        raise DataError(
            f"'{file.name}' is named {ext} but is not a Parquet file (it does not start with PAR1); "
            "re-save it with pandas.DataFrame.to_parquet or rename it to its real format"
        )
    if fmt == "csv" and magic == b"PAR1":
        raise DataError(f"'{file.name}' is named {ext} but is a Parquet file; rename it to .parquet")
    compression = "gzip" if fmt == "csv" and magic[:2] == _GZIP_MAGIC else None
    return fmt, default_sep, compression


def _open_text(file: Path, compression: str | None, errors: str = "strict") -> IO[str]:
    """The file as text (BOM skipped), decompressing gzip as it is read."""
    if compression == "gzip":
        return gzip.open(file, "rt", encoding="utf-8-sig", newline="", errors=errors)
    return open(file, newline="", encoding="utf-8-sig", errors=errors)  # noqa: SIM115


def _bad_gzip(name: str, error: BaseException) -> str:
    reason = _one_line(error)
    return f"'{name}' is not a readable gzip file ({reason}); re-compress it with gzip or save it uncompressed"


_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def _read_head(file: Path, compression: str | None) -> tuple[str, bool]:
    """The text of the first non-blank lines (header + up to _SNIFF_ROWS), and whether it is the whole file."""
    lines: list[str] = []
    size = 0
    complete = False
    try:
        with _open_text(file, compression) as fh:
            while True:
                line = fh.readline()
                if not line:
                    complete = True
                    break
                if not line.strip():
                    continue
                lines.append(line)
                size += len(line)
                if len(lines) > _SNIFF_ROWS or size > _SNIFF_CHARS:
                    break
    except UnicodeDecodeError as e:
        raise DataError(_not_utf8(file.name, e)) from e
    except _GZIP_ERRORS as e:
        raise DataError(_bad_gzip(file.name, e)) from e
    return "".join(lines), complete


def _detect_sep(file: Path, compression: str | None, default: str) -> str:
    """Comma, tab or semicolon: the one that splits the header, or, if several do, the one the first rows agree with.

    A header that none of them splits is a one-column file: ``default`` (the extension's separator).
    """
    text, complete = _read_head(file, compression)
    parsed: dict[str, list[list[str]]] = {}
    for sep in _SEPARATORS:
        try:
            rows = [row for row in csv.reader(io.StringIO(text), delimiter=sep) if row]
        except csv.Error:
            rows = []
        if not complete and len(rows) > 1:
            rows = rows[:-1]  # the last line read may be cut short inside a quoted field
        parsed[sep] = rows
    splitting = [sep for sep, rows in parsed.items() if rows and len(rows[0]) > 1]
    if not splitting:
        return default
    if len(splitting) == 1:
        return splitting[0]
    if all(len(parsed[sep]) < 2 for sep in splitting):
        return splitting[0]  # header only: the header check reports that, whatever the separator
    consistent = [sep for sep in splitting if all(len(row) == len(parsed[sep][0]) for row in parsed[sep][1:])]
    if len(consistent) == 1:
        return consistent[0]
    candidates = consistent or splitting
    listed = " and ".join(_sep_words(s) for s in candidates)
    raise DataError(
        f"cannot tell the separator of '{file.name}': its header and first rows split evenly on both {listed}; "
        f"pass {' or '.join(_sep_option(s) for s in candidates)}"
    )


def _read_csv_header(file: Path, sep: str, compression: str | None) -> tuple[list[str], list[str]]:
    """The header row, and the first cell of each of the first _INDEX_SAMPLE_ROWS data rows."""
    first_values: list[str] = []
    try:
        with _open_text(file, compression) as fh:
            rows = (row for row in csv.reader(fh, delimiter=sep) if row)  # blank lines are skipped, as pandas does
            header = next(rows, None)
            if header is None:
                raise DataError(f"data file '{file.name}' is empty (blank lines only); pass a file with a header")
            try:
                for row in rows:
                    first_values.append(row[0])
                    if len(first_values) >= _INDEX_SAMPLE_ROWS:
                        break
            except csv.Error:
                pass  # a quoting problem further down: iter_chunks reports it with its line
            if not first_values:
                raise DataError(
                    f"data file '{file.name}' has a header but no rows; pass a file with at least one data row"
                )
    except UnicodeDecodeError as e:
        raise DataError(_not_utf8(file.name, e)) from e
    except _GZIP_ERRORS as e:
        raise DataError(_bad_gzip(file.name, e)) from e
    except csv.Error as e:
        raise DataError(f"'{file.name}' is not a readable CSV file ({e}); check that it is plain text CSV") from e
    return header, first_values


def _read_parquet_schema(file: Path) -> tuple[list[str], list[str], tuple[str, ...]]:
    """Column names, the first values of the first column as text, and the columns pandas stored as the index."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(file)
        schema = pf.schema_arrow
        names = list(schema.names)
        n_rows = pf.metadata.num_rows
        index = tuple(c for c in (schema.pandas_metadata or {}).get("index_columns", []) if isinstance(c, str))
        first_values: list[str] = []
        if n_rows and names and names[0] in _INDEX_NAMES:
            batch = next(pf.iter_batches(batch_size=_INDEX_SAMPLE_ROWS, columns=[names[0]], use_threads=False))
            column = batch.column(0)
            if _pa_is_integer(column.type):
                first_values = [str(v) for v in column.to_pylist()]
        pf.close()
    except Exception as e:  # pyarrow raises ArrowInvalid / OSError for corrupt or truncated files
        raise DataError(f"'{file.name}' is not a readable Parquet file ({_one_line(e)}); re-save it") from e
    if n_rows == 0:
        raise DataError(f"data file '{file.name}' has a header but no rows; pass a file with at least one data row")
    return names, first_values, tuple(c for c in index if c in names)


def _pa_is_integer(dtype: Any) -> bool:
    import pyarrow.types as pat

    return bool(pat.is_integer(dtype))


def _counts_from_zero(values: Sequence[str]) -> bool:
    """True when the cells read exactly 0, 1, 2, ... (as pandas writes a default RangeIndex)."""
    return bool(values) and all(v.strip() == str(i) for i, v in enumerate(values))


def _check_column_names(columns: Sequence[str], name: str) -> None:
    for i, col in enumerate(columns):
        if not col.strip() and not (i == 0 and col == ""):  # an empty first cell may be pandas' index
            raise DataError(f"column {i + 1} of '{name}' has no name in the header; name it or remove the column")
    seen: dict[str, list[int]] = {}
    for i, col in enumerate(columns):
        seen.setdefault(col, []).append(i + 1)
    for col, where in seen.items():
        if len(where) > 1:
            positions = ", ".join(str(p) for p in where)
            raise DataError(
                f"column name '{col}' appears {len(where)} times in '{name}' (columns {positions}); rename them so "
                "every column has a unique name"
            )


def _unknown_column(option: str, col: str, columns: Sequence[str], name: str) -> str:
    close = difflib.get_close_matches(col, list(columns), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    listed = ", ".join(c or "''" for c in columns[:_LIST_COLUMNS])
    more = f", ... ({len(columns)} in all)" if len(columns) > _LIST_COLUMNS else ""
    return f"unknown {option} column '{col}'; {hint}'{name}' has columns: {listed}{more}"


# ------------------------------------------------------------------------------------------------- streaming


@dataclass(frozen=True)
class _Hints:
    """What to tell the person, depending on which file is being read. ``{col}`` is filled in."""

    what: str  # "column" or "baseline column"
    non_numeric: str
    missing: str
    infinite: str
    too_large: str


_DATA_HINTS = _Hints(
    what="column",
    non_numeric="pass --drop {col} or clean the file",
    missing="fill or drop them, or pass --drop {col}",
    infinite="replace them with finite numbers, or pass --drop {col}",
    too_large="rescale the column, or pass --drop {col}",
)
_BASELINE_HINTS = _Hints(
    what="baseline column",
    non_numeric="put a number there in the baseline file",
    missing="put a value there in the baseline file",
    infinite="put a finite number there in the baseline file",
    too_large="put a smaller number there in the baseline file",
)


def _n(count: int, noun: str) -> str:
    """'1 missing value', '3 missing values'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _chunks(spec: TableSpec, chunk_rows: int, hints: _Hints) -> Generator[Chunk, None, None]:
    file = Path(spec.path)
    name = file.name
    if not file.is_file():
        raise DataError(f"data file '{spec.path}' does not exist any more; check the path")
    frames = _csv_frames(spec, chunk_rows) if spec.format == "csv" else _parquet_frames(spec, chunk_rows)
    offset = 0
    for frame, is_last in frames:
        n = len(frame)
        if n == 0:
            continue
        if spec.dropped_index is not None:
            _check_index(frame[spec.dropped_index], spec.dropped_index, name, offset)
        span = "" if (offset == 0 and is_last) else f" in data rows {offset + 1}-{offset + n}"
        yield _frame_to_chunk(frame, spec, offset, span, hints)
        offset += n
    if offset == 0:
        raise DataError(f"data file '{name}' has a header but no rows; pass a file with at least one data row")


def _check_index(series: pd.Series, col: str, name: str, offset: int) -> None:
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


def _csv_frames(spec: TableSpec, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, bool]]:
    file = Path(spec.path)
    name = file.name
    now = _header_now(file, spec.sep, spec.compression)
    if now is not None and now != spec.columns:
        raise DataError(f"the columns of '{name}' changed since it was inspected; inspect the file again")
    scanner = _RowScanner(file, len(spec.columns), spec.sep, spec.compression)
    dtype = {spec.slice_col: str} if spec.slice_col is not None else None
    offset = 0
    try:
        try:
            # the header was checked above; names= keeps the header's own spelling (pandas would rename an empty
            # cell 'Unnamed: 0' and mangle a later 'Unnamed: 0' into 'Unnamed: 0.1')
            reader = pd.read_csv(
                file,
                sep=spec.sep,
                compression=spec.compression,
                header=0,
                names=list(spec.columns),
                chunksize=chunk_rows,
                index_col=False,
                dtype=dtype,
                encoding="utf-8",
            )
        except pd.errors.ParserError as e:  # the parser reads ahead while opening
            raise DataError(_ragged_message(name, scanner, None, e)) from e
        with reader:
            while True:
                try:
                    with warnings.catch_warnings():
                        # a first data row longer than the header would silently lose fields: make it an error
                        warnings.simplefilter("error", pd.errors.ParserWarning)
                        frame = next(reader)
                except StopIteration:
                    return
                except (pd.errors.ParserError, pd.errors.ParserWarning) as e:
                    raise DataError(_ragged_message(name, scanner, None, e)) from e
                except UnicodeDecodeError as e:
                    raise DataError(_not_utf8(name, e)) from e
                except _GZIP_ERRORS as e:
                    raise DataError(_bad_gzip(name, e)) from e
                # a row with too few fields leaves NaN in the last column: look for one in the raw lines
                if frame.iloc[:, -1].isna().any():
                    found = scanner.first_ragged(upto=offset + len(frame))
                    if found is not None:
                        raise DataError(_ragged_message(name, scanner, found, None))
                offset += len(frame)
                yield frame, len(frame) < chunk_rows
    except pd.errors.EmptyDataError as e:
        raise DataError(f"data file '{name}' is empty; pass a file with a header and data rows") from e
    except UnicodeDecodeError as e:
        raise DataError(_not_utf8(name, e)) from e
    except _GZIP_ERRORS as e:
        raise DataError(_bad_gzip(name, e)) from e
    finally:
        scanner.close()


def _header_now(file: Path, sep: str, compression: str | None) -> tuple[str, ...] | None:
    """The file's header as it is now (None when it cannot be read: the reader then reports why)."""
    try:
        with _open_text(file, compression, errors="replace") as fh:
            row = next((r for r in csv.reader(fh, delimiter=sep) if r), None)
    except (csv.Error, OSError, EOFError, zlib.error):
        return None
    return None if row is None else tuple(row)


def _parquet_frames(spec: TableSpec, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, bool]]:
    import pyarrow.parquet as pq

    name = Path(spec.path).name
    wanted = set(spec.features) | set(spec.targets) | {
        c for c in (spec.slice_col, spec.dropped_index) if c is not None
    }
    try:
        # no pre-buffering and one decoding thread: measured on 1M x 21, this keeps Arrow's pool near one row group
        # (~100 MiB instead of ~270 MiB) at the same speed
        pf = pq.ParquetFile(spec.path, pre_buffer=False)
    except Exception as e:
        raise DataError(f"'{name}' is not a readable Parquet file ({_one_line(e)}); re-save it") from e
    if tuple(pf.schema_arrow.names) != spec.columns:
        raise DataError(f"the columns of '{name}' changed since it was inspected; inspect the file again")
    total = pf.metadata.num_rows
    offset = 0
    try:
        columns = [c for c in spec.columns if c in wanted]
        for batch in pf.iter_batches(batch_size=chunk_rows, columns=columns, use_threads=False):
            frame = batch.to_pandas()
            offset += len(frame)
            yield frame, offset >= total
    except (OSError, ValueError) as e:  # pyarrow.ArrowInvalid is a ValueError; truncated files raise OSError
        raise DataError(f"'{name}' could not be read after data row {offset} ({_one_line(e)}); re-save it") from e
    finally:
        pf.close()


class _RowScanner:
    """Walks the raw CSV lines with the csv module, only when a ragged row is suspected.

    It keeps its place between calls, so scanning costs at most one pass over the file in total.
    """

    def __init__(self, file: Path, n_fields: int, sep: str = ",", compression: str | None = None) -> None:
        self._file = file
        self.n_fields = n_fields
        self._sep = sep
        self._compression = compression
        self._fh: Any = None
        self._reader: Any = None
        self._data_row = 0  # data rows consumed so far

    def _open(self) -> None:
        # kept open between calls (the scan resumes where it stopped); close() releases it
        self._fh = _open_text(self._file, self._compression, errors="replace")
        self._reader = csv.reader(self._fh, delimiter=self._sep)
        for row in self._reader:
            if row:  # the header
                break

    def first_ragged(self, upto: int | None) -> tuple[int, int, int] | None:
        """First (data row, line, field count) with the wrong field count, among data rows <= ``upto``."""
        if self._reader is None:
            self._open()
        while upto is None or self._data_row < upto:
            try:
                row = next(self._reader)
            except (StopIteration, csv.Error, EOFError, OSError, zlib.error):
                return None
            if not row:
                continue
            self._data_row += 1
            if len(row) != self.n_fields:
                return self._data_row, self._reader.line_num, len(row)
        return None

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def _ragged_message(
    name: str, scanner: _RowScanner, found: tuple[int, int, int] | None, error: BaseException | None
) -> str:
    reason = _one_line(error) if error is not None else ""
    field_count_problem = error is None or isinstance(error, pd.errors.ParserWarning) or "fields in line" in reason
    if found is None and field_count_problem:
        found = scanner.first_ragged(upto=None)
    if found is not None:
        _, line, n = found
        return (
            f"'{name}' line {line} has {n} fields but the header has {scanner.n_fields} (a ragged row); fix that "
            f"line so every row has {scanner.n_fields} fields"
        )
    m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", reason)
    if m:
        return (
            f"'{name}' line {m.group(2)} has {m.group(3)} fields but {m.group(1)} were expected (a ragged row); "
            "fix that line"
        )
    reason = reason.replace("Error tokenizing data. C error: ", "")
    return f"'{name}' could not be parsed as CSV ({reason}); check the quoting and delimiters there"


# --------------------------------------------------------------------------------------------- validation


def _frame_to_chunk(frame: pd.DataFrame, spec: TableSpec, offset: int, span: str, hints: _Hints) -> Chunk:
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


def _feature_matrix(frame: pd.DataFrame, features: Sequence[str], offset: int, span: str, hints: _Hints) -> np.ndarray:
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


def _raise_non_finite(values: np.ndarray, features: Sequence[str], offset: int, span: str, hints: _Hints) -> None:
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


# ---------------------------------------------------------------------------------------------------- misc


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


def _not_utf8(name: str, error: UnicodeDecodeError) -> str:
    byte = error.object[error.start : error.start + 1].hex() if error.object else "??"
    return f"'{name}' is not UTF-8 text (byte 0x{byte} cannot be decoded); re-save it as UTF-8"


def _one_line(error: BaseException) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    text = lines[0] if lines else type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."
