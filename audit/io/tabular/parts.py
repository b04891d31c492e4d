"""Tables in several files: a file, a folder of part files or a glob (``data/part-*.parquet``), read as one table.

The parts are taken in sorted path order and must share their columns; rows are numbered globally (the rows of
the first part, then the second's, ...), so a row's id is the same whoever reads it: the local loop, which
streams the parts one after the other (:func:`iter_source`), or a distributed executor, which cuts the table
into :class:`TableUnit` row ranges on the driver (:func:`plan_units`: Parquet row counts come from the files'
metadata, CSV parts are counted once) and reads each unit on a worker (:func:`read_unit`) with the same
validation and the same messages as the local reader.

A single file is exactly what :func:`audit.io.tabular.inspect_table` makes of it (the same spec, the same hash).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from audit.errors import DataError
from audit.io.tabular.detect import one_line
from audit.io.tabular.reader import inspect_table, iter_chunks
from audit.io.tabular.spec import Chunk, TableSpec
from audit.io.tabular.validate import DATA_HINTS, check_index, frame_to_chunk

__all__ = ["TABLE_SUFFIXES", "TableSource", "TableUnit", "table_files", "is_table_source", "inspect_source",
           "with_slice_feature",
           "iter_source", "plan_units", "read_unit", "total_rows"]

TABLE_SUFFIXES = (".csv", ".tsv", ".gz", ".parquet", ".pq")
_GLOB_CHARS = set("*?[")


def _is_table_file(p: Path) -> bool:
    return p.is_file() and p.name.lower().endswith(TABLE_SUFFIXES) and not p.name.startswith((".", "_"))


def table_files(data: str | Path) -> list[Path]:
    """The files of a table source, sorted: ``[data]`` for a file, the table files of a folder (not recursive;
    names starting with ``.`` or ``_`` are skipped, as Spark and Dask markers), or the matches of a glob.

    Raises
    ------
    DataError
        A folder without table files, a glob that matches none.
    """
    text = str(data)
    p = Path(text)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if _is_table_file(f))
        if not files:
            raise DataError(f"folder '{p}' holds no table files ({', '.join(TABLE_SUFFIXES)}); check --data")
        return files
    if not p.exists() and _GLOB_CHARS & set(text):
        files = sorted(Path(f) for f in glob.glob(text) if _is_table_file(Path(f)))
        if not files:
            raise DataError(f"--data '{text}' matches no table file; check the pattern")
        return files
    return [p]


def is_table_source(data: str | Path) -> bool:
    """True for a table file, a folder of table files only, or a glob matching table files."""
    p = Path(data)
    if p.is_file():
        return p.name.lower().endswith(TABLE_SUFFIXES)
    if p.is_dir():
        entries = [e for e in p.iterdir() if not e.name.startswith((".", "_"))]
        return bool(entries) and all(_is_table_file(e) for e in entries)
    if _GLOB_CHARS & set(str(data)):
        return any(_is_table_file(Path(f)) for f in glob.glob(str(data)))
    return False


@dataclass(frozen=True)
class TableSource:
    """One table in one or more files.

    Attributes
    ----------
    spec : TableSpec
        The columns and options (the first part's spec; ``sha256`` hashes every part when there are several).
    parts : tuple of TableSpec
        Every part, in row order.
    """

    spec: TableSpec
    parts: tuple[TableSpec, ...]


@dataclass(frozen=True)
class TableUnit:
    """A range of rows one worker attributes: rows ``[start, stop)`` of part ``part`` (``stop`` None: to the end
    of the part), whose first row has the global id ``row_offset``; ``n_rows`` None when not counted."""

    index: int
    part: int
    start: int
    stop: int | None
    row_offset: int
    n_rows: int | None


def inspect_source(data: str | Path, **options) -> TableSource:
    """:func:`audit.io.tabular.inspect_table` over every part of ``data`` (same options).

    Raises
    ------
    DataError
        As :func:`inspect_table`, and a part whose columns differ from the first part's.
    """
    files = table_files(data)
    first = inspect_table(files[0], **options)
    if len(files) == 1:
        return TableSource(first, (first,))
    parts = [first]
    for f in files[1:]:
        spec = inspect_table(f, **options)
        if spec.columns != first.columns:
            raise DataError(
                f"part '{f.name}' has other columns than '{files[0].name}' (the first part); every part of a table "
                "needs the same columns in the same order"
            )
        parts.append(spec)
    digest = hashlib.sha256()
    for spec in parts:
        digest.update(f"{Path(spec.path).name}\t{spec.sha256}\n".encode())
    notes = tuple(dict.fromkeys(n for s in parts for n in s.notes))
    spec = dataclasses.replace(first, path=str(data), sha256=digest.hexdigest(), notes=notes)
    return TableSource(spec, tuple(parts))


def with_slice_feature(source: TableSource) -> TableSource:
    """The same source with its slice column also among the features (in file order): for a model that takes it
    as an input. The slice labels are still read from it."""
    col = source.spec.slice_col
    if col is None:
        raise DataError("with_slice_feature needs a source with a slice column")

    def widen(spec: TableSpec) -> TableSpec:
        keep = set(spec.features) | {col}
        return dataclasses.replace(spec, features=tuple(c for c in spec.columns if c in keep))

    return TableSource(widen(source.spec), tuple(widen(p) for p in source.parts))


def iter_source(source: TableSource, chunk_rows: int) -> Iterator[Chunk]:
    """The rows of every part in order, in chunks of at most ``chunk_rows``, with global ``row_offset``."""
    base = 0
    for part in source.parts:
        n = 0
        for chunk in iter_chunks(part, chunk_rows):
            n += chunk.n_rows
            yield chunk if base == 0 else dataclasses.replace(chunk, row_offset=base + chunk.row_offset)
        base += n


def _parquet_rows(spec: TableSpec) -> list[int]:
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(spec.path).metadata
    except Exception as e:
        raise DataError(f"'{Path(spec.path).name}' is not a readable Parquet file ({one_line(e)}); re-save it") from e
    return [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]


def _csv_rows(spec: TableSpec) -> int:
    n = 0
    for frame in pd.read_csv(spec.path, sep=spec.sep, compression=spec.compression, usecols=[0], dtype=str,
                             chunksize=1 << 20, keep_default_na=False):  # fmt: skip
        n += len(frame)
    return n


def plan_units(source: TableSource, chunk_rows: int) -> list[TableUnit]:
    """Cut the table into the blocks :func:`iter_source` yields: ``chunk_rows`` rows at a time from the start of
    each Parquet part (a unit may span row groups), one unit per CSV part (a delimited file cannot be entered in
    the middle without reading it up to there; its worker then reads it ``chunk_rows`` at a time). The cut is the
    local one on purpose: the engine's floats depend (in the last bits) on how rows are batched, so equal cuts give
    bit-equal attributions."""
    units: list[TableUnit] = []
    base = 0
    last = len(source.parts) - 1
    for k, part in enumerate(source.parts):
        if part.format == "parquet":
            total = sum(_parquet_rows(part))
            for start in range(0, total, chunk_rows):
                stop = min(total, start + chunk_rows)
                units.append(TableUnit(len(units), k, start, stop, base + start, stop - start))
        else:
            total = _csv_rows(part) if k < last else None
            units.append(TableUnit(len(units), k, 0, None, base, total))
        if total is not None:
            base += total
    return units


def read_unit(source: TableSource, unit: TableUnit, chunk_rows: int) -> Iterator[Chunk]:
    """The validated rows of one unit, in chunks of at most ``chunk_rows`` rows, with global ``row_offset``."""
    part = source.parts[unit.part]
    if part.format != "parquet":
        for chunk in iter_chunks(part, chunk_rows):
            yield dataclasses.replace(chunk, row_offset=unit.row_offset + chunk.row_offset)
        return
    import pyarrow.parquet as pq

    name = Path(part.path).name
    sizes = _parquet_rows(part)
    stop = unit.stop if unit.stop is not None else sum(sizes)
    groups, first_row, at = [], None, 0
    for g, size in enumerate(sizes):
        if at < stop and at + size > unit.start:
            groups.append(g)
            first_row = at if first_row is None else first_row
        at += size
    wanted = set(part.features) | set(part.targets) | {c for c in (part.slice_col, part.dropped_index) if c}
    try:
        with pq.ParquetFile(part.path, pre_buffer=False) as pf:
            table = pf.read_row_groups(groups, columns=[c for c in part.columns if c in wanted], use_threads=False)
    except (OSError, ValueError) as e:
        raise DataError(f"'{name}' could not be read at data row {unit.start} ({one_line(e)}); re-save it") from e
    table = table.slice(unit.start - (first_row or 0), stop - unit.start)
    for at in range(0, table.num_rows, chunk_rows):
        frame = table.slice(at, chunk_rows).to_pandas()
        offset = unit.start + at  # in the part: what messages name
        if part.dropped_index is not None:
            check_index(frame[part.dropped_index], part.dropped_index, name, offset)
        span = f" in data rows {offset + 1}-{offset + len(frame)}"
        chunk = frame_to_chunk(frame, part, offset, span, DATA_HINTS)
        yield dataclasses.replace(chunk, row_offset=unit.row_offset + at)


def total_rows(source: TableSource) -> int:
    """Rows over all parts from metadata (Parquet) or a count (CSV); for progress and unit sizes."""
    n = 0
    for part in source.parts:
        n += sum(_parquet_rows(part)) if part.format == "parquet" else _csv_rows(part)
    return n

