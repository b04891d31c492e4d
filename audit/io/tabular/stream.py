"""Chunk streaming: the CSV and Parquet frame readers behind :func:`audit.io.tabular.iter_chunks`, and the
ragged-row scan that names the line of a CSV row with the wrong number of fields.
"""

from __future__ import annotations

import csv
import re
import warnings
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from audit.errors import DataError
from audit.io.tabular.detect import GZIP_ERRORS, bad_gzip, not_utf8, one_line, open_text
from audit.io.tabular.spec import Chunk, TableSpec
from audit.io.tabular.validate import Hints, check_index, frame_to_chunk

__all__ = ["stream_chunks"]

def stream_chunks(spec: TableSpec, chunk_rows: int, hints: Hints) -> Generator[Chunk, None, None]:
    """:func:`audit.io.tabular.iter_chunks` without its argument checks, with the messages' advice in ``hints``.

    Raises
    ------
    DataError
        As :func:`audit.io.tabular.iter_chunks`.
    """
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
            check_index(frame[spec.dropped_index], spec.dropped_index, name, offset)
        span = "" if (offset == 0 and is_last) else f" in data rows {offset + 1}-{offset + n}"
        yield frame_to_chunk(frame, spec, offset, span, hints)
        offset += n
    if offset == 0:
        raise DataError(f"data file '{name}' has a header but no rows; pass a file with at least one data row")


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
                    raise DataError(not_utf8(name, e)) from e
                except GZIP_ERRORS as e:
                    raise DataError(bad_gzip(name, e)) from e
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
        raise DataError(not_utf8(name, e)) from e
    except GZIP_ERRORS as e:
        raise DataError(bad_gzip(name, e)) from e
    finally:
        scanner.close()


def _header_now(file: Path, sep: str, compression: str | None) -> tuple[str, ...] | None:
    """The file's header as it is now (None when it cannot be read: the reader then reports why)."""
    try:
        with open_text(file, compression, errors="replace") as fh:
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
        raise DataError(f"'{name}' is not a readable Parquet file ({one_line(e)}); re-save it") from e
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
        raise DataError(f"'{name}' could not be read after data row {offset} ({one_line(e)}); re-save it") from e
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
        self._fh = open_text(self._file, self._compression, errors="replace")
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
    reason = one_line(error) if error is not None else ""
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
