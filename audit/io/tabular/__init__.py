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

The package is split by concern (its public surface is ``__all__`` below, re-exported from these modules):

- :mod:`~audit.io.tabular.spec`: the :class:`TableSpec` and :class:`Chunk` records.
- :mod:`~audit.io.tabular.detect`: path checks, format and gzip detection, separator detection, text opening.
- :mod:`~audit.io.tabular.header`: header / schema reading and the feature split behind :func:`inspect_table`.
- :mod:`~audit.io.tabular.stream`: the CSV and Parquet frame readers behind :func:`iter_chunks`, ragged rows.
- :mod:`~audit.io.tabular.validate`: per-chunk checks and their messages.
- :mod:`~audit.io.tabular.reader`: the public functions.
- :mod:`~audit.io.tabular.parts`: a table in several part files (a folder or a glob), global row ids, and the
  row-range units a distributed executor reads.

Nothing here imports torch.
"""

from __future__ import annotations

from audit.io.tabular.parts import (
    TableSource,
    TableUnit,
    inspect_source,
    is_table_source,
    iter_source,
    plan_units,
    read_unit,
    table_files,
    total_rows,
    with_slice_feature,
)
from audit.io.tabular.reader import inspect_table, iter_chunks, read_baseline_row, read_table
from audit.io.tabular.spec import TABLE_FORMATS, Chunk, TableSpec

__all__ = [
    "TABLE_FORMATS",
    "TableSpec",
    "Chunk",
    "inspect_table",
    "iter_chunks",
    "read_table",
    "read_baseline_row",
    "TableSource",
    "TableUnit",
    "inspect_source",
    "is_table_source",
    "iter_source",
    "plan_units",
    "read_unit",
    "table_files",
    "total_rows",
    "with_slice_feature",
]
