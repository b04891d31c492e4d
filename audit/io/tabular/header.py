"""Header and schema checks: read a table's column names (and a sample of its first column), check them against
the caller's options and decide which columns are features (:func:`inspect_spec`).
"""

from __future__ import annotations

import csv
import difflib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from audit.errors import DataError, UsageError
from audit.hashing import sha256_file
from audit.io.tabular.detect import (
    GZIP_ERRORS,
    bad_gzip,
    check_file,
    check_sep,
    detect_sep,
    format_of,
    not_utf8,
    one_line,
    open_text,
    sep_words,
)
from audit.io.tabular.spec import TableSpec

__all__ = ["LIST_COLUMNS", "inspect_spec"]

_INDEX_NAMES = ("", "Unnamed: 0")  # how pandas' to_csv() index column appears in a header
_INDEX_SAMPLE_ROWS = 1000  # first rows whose first cell must count 0, 1, 2, ... for the column to be an index
LIST_COLUMNS = 10  # columns named in a message listing columns (unknown column, missing baseline columns)


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


def inspect_spec(
    path: str | os.PathLike[str],
    *,
    target_col: str | Sequence[str] | None,
    drop: Sequence[str],
    slice_col: str | None,
    sep: str | None,
    lenient_unnamed: bool,
) -> TableSpec:
    """:func:`inspect_table`; ``lenient_unnamed`` lets an empty first header cell pass (a baseline ignores it)."""
    chosen_sep = check_sep(sep)
    file = check_file(path)
    fmt, default_sep, compression = format_of(file)
    name = file.name
    notes: list[str] = []
    pandas_index: tuple[str, ...] = ()
    if fmt == "csv":
        if chosen_sep is None:
            chosen_sep = detect_sep(file, compression, default_sep)
            if chosen_sep != default_sep:
                notes.append(
                    f"'{name}' was read as {sep_words(chosen_sep)}-separated (detected from its header); pass "
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


def _read_csv_header(file: Path, sep: str, compression: str | None) -> tuple[list[str], list[str]]:
    """The header row, and the first cell of each of the first _INDEX_SAMPLE_ROWS data rows."""
    first_values: list[str] = []
    try:
        with open_text(file, compression) as fh:
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
        raise DataError(not_utf8(file.name, e)) from e
    except GZIP_ERRORS as e:
        raise DataError(bad_gzip(file.name, e)) from e
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
        raise DataError(f"'{file.name}' is not a readable Parquet file ({one_line(e)}); re-save it") from e
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
    listed = ", ".join(c or "''" for c in columns[:LIST_COLUMNS])
    more = f", ... ({len(columns)} in all)" if len(columns) > LIST_COLUMNS else ""
    return f"unknown {option} column '{col}'; {hint}'{name}' has columns: {listed}{more}"
