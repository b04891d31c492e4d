"""The records of the tabular reader: :class:`TableSpec` (what a file's header says) and :class:`Chunk` (rows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["TABLE_FORMATS", "Chunk", "TableSpec"]

TABLE_FORMATS = ("csv", "parquet")


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
