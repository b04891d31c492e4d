"""Write a run's files into its output folder, all or nothing.

Everything is written into a staging folder beside the output folder and moved into place only once the
run and every requested format have succeeded, so a failed run never leaves an ``audit.json`` (or a report)
that looks like a result. Per-row attributions stream to Parquet as they are computed, so memory stays
bounded on large files.

An output folder holds only one run's files: :meth:`Staging.finish` removes the outputs of an earlier run that
this run does not rewrite (an old ``report.pdf`` beside a new html-only run). It removes only the names in
:data:`OUTPUT_FILES`, the files this module writes, and never any other file of the folder (a demo's
``model.pt`` and ``val.csv``, a user's notes).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from audit.errors import UsageError
from audit.results import AuditRun, save_run

__all__ = [
    "Staging",
    "staging",
    "ATTRIBUTIONS_FILE",
    "RUN_FILE",
    "HTML_FILE",
    "PDF_FILE",
    "HEATMAPS_FILE",
    "TOKENS_FILE",
    "OUTPUT_FILES",
    "save_outputs",
    "PartWriter",
    "rows_table",
]

RUN_FILE = "audit.json"
ATTRIBUTIONS_FILE = "attributions.parquet"
HTML_FILE = "report.html"
PDF_FILE = "report.pdf"
HEATMAPS_FILE = "heatmaps.npz"
TOKENS_FILE = "tokens.parquet"  # text runs: each row's tokens and their attributions
# every name a run may leave in its output folder; finish() removes the ones a later run does not rewrite
OUTPUT_FILES = (RUN_FILE, HTML_FILE, PDF_FILE, ATTRIBUTIONS_FILE, HEATMAPS_FILE, TOKENS_FILE)


class Staging:
    """A staging folder for one run, and the run's output sink (:class:`audit.modalities.base.OutputSink`):
    :meth:`rows` receives per-row attributions, :meth:`arrays` per-image arrays; :meth:`finish` writes the
    results and reports and moves everything into the output folder."""

    def __init__(self, out: Path, path: Path) -> None:
        self.out = out
        self.path = path
        self.files: dict[str, str] = {}
        self._writer: pq.ParquetWriter | None = None

    def rows(self, row_offset: int, names: list[str], attributions: np.ndarray, rel_delta: np.ndarray) -> None:
        """Append per-row attributions (n, F) and the relative completeness error (n,) to the Parquet file."""
        table = rows_table(row_offset, names, attributions, rel_delta)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path / ATTRIBUTIONS_FILE, table.schema)
            self.files["attributions"] = ATTRIBUTIONS_FILE
        self._writer.write_table(table)

    def parts_folder(self) -> Path:
        """The folder distributed workers write per-row attributions into, one Parquet part file per unit of work
        (:class:`PartWriter`, which creates it); it becomes ``attributions.parquet`` in the output folder, a
        Parquet data set that ``pandas.read_parquet`` and ``pyarrow.parquet.read_table`` read as one table, rows in
        order. Workers on other machines need the output folder on a filesystem they share with the driver."""
        return self.path / ATTRIBUTIONS_FILE

    def arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Per-image heatmaps and predictions into ``heatmaps.npz`` (float16: they are display data, and it halves
        the file)."""
        packed = {k: (v.astype(np.float16) if v.dtype.kind == "f" else v) for k, v in arrays.items()}
        np.savez_compressed(self.add_file("heatmaps", HEATMAPS_FILE), **packed)

    def table(self, kind: str, name: str, table: pa.Table) -> None:
        """A whole Parquet table saved next to ``audit.json`` (a text run's ``tokens.parquet``)."""
        pq.write_table(table, self.add_file(kind, name))

    def add_file(self, kind: str, name: str) -> Path:
        """Reserve ``name`` in the staging folder for an extra artefact (e.g. image heatmaps)."""
        self.files[kind] = name
        return self.path / name

    def finish(self, run: AuditRun, formats: tuple[str, ...]) -> dict[str, Path]:
        """Write the requested formats, move every staged file into the output folder and remove the earlier
        run's outputs that this run did not rewrite (only names in :data:`OUTPUT_FILES`); audit.json goes
        first and comes back last (see the steps below)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if (self.path / ATTRIBUTIONS_FILE).is_dir():
            self.files["attributions"] = ATTRIBUTIONS_FILE  # parts written by distributed workers
        run = _with_artifacts(run, self.files, formats)
        reports = {f: self.path / name for f, name in (("html", HTML_FILE), ("pdf", PDF_FILE)) if f in formats}
        if reports:
            from audit.report import write_reports

            write_reports(run, reports)  # renders the page once for both formats
        if "json" in formats:
            save_run(run, self.path / RUN_FILE)
        self.out.mkdir(parents=True, exist_ok=True)
        new = set(os.listdir(self.path))
        # The order keeps the folder honest for a reader at every moment: an audit.json in it only ever names
        # files of its own run, all present.
        # 1. the earlier audit.json goes first: from here to step 4 the folder has no audit.json, so nothing
        #    claims to be a result while files are replaced or removed (a crash in between leaves no result,
        #    as a failed run does);
        # 2. the new files (all but audit.json) move in, replacing their earlier namesakes;
        # 3. earlier outputs this run did not rewrite are removed (only the names in OUTPUT_FILES);
        # 4. the new audit.json moves in last, when every file it names is in place.
        self._remove(RUN_FILE)
        written: dict[str, Path] = {}
        for name in sorted(new - {RUN_FILE}):
            if name in OUTPUT_FILES and ((self.path / name).is_dir() or (self.out / name).is_dir()):
                self._remove(name)  # os.replace cannot put a parts folder over a file or over a folder
            os.replace(self.path / name, self.out / name)
            written[name] = self.out / name
        for name in OUTPUT_FILES:
            if name not in new:
                self._remove(name)
        if RUN_FILE in new:
            os.replace(self.path / RUN_FILE, self.out / RUN_FILE)
            written[RUN_FILE] = self.out / RUN_FILE
        self.run = run
        return written

    def _remove(self, name: str) -> None:
        """Remove the earlier run's output ``name`` from the output folder, if it is a file there."""
        target = self.out / name
        if target.is_dir() and not target.is_symlink() and _is_parts_folder(target):
            shutil.rmtree(target, ignore_errors=True)  # per-row parts a distributed run wrote
            return
        if not (target.is_file() or target.is_symlink()):
            return  # absent, or a folder of that name that is not ours: not ours to delete
        try:
            target.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise UsageError(
                f"cannot remove the earlier run's '{target}' ({e.strerror}); delete it or pass another --out folder"
            ) from None

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None
        shutil.rmtree(self.path, ignore_errors=True)


def _is_parts_folder(folder: Path) -> bool:
    """A folder holding only ``part-*.parquet`` files (what :class:`PartWriter` writes)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return all(n.startswith("part-") and n.endswith(".parquet") for n in names)


def rows_table(row_offset: int, names: list[str], attributions: np.ndarray, rel_delta: np.ndarray) -> pa.Table:
    """The per-row table: ``_row`` (global row id), one column per feature, ``_rel_delta``."""
    n = attributions.shape[0]
    cols = {"_row": pa.array(np.arange(row_offset, row_offset + n, dtype=np.int64))}
    for j, name in enumerate(names):
        cols[name] = pa.array(attributions[:, j])
    cols["_rel_delta"] = pa.array(rel_delta)
    return pa.table(cols)


class PartWriter:
    """An output sink (:class:`audit.modalities.base.OutputSink`) for one unit of work on a worker: its rows go to
    ``part-<unit>.parquet`` in ``folder``, written under a temporary name and renamed when :meth:`close` is
    called, so a unit retried after a worker died replaces, never doubles, its part.

    Parameters
    ----------
    folder : Path
        From :meth:`Staging.parts_folder`.
    unit : int
        The unit's index (part files sort in data order).
    """

    def __init__(self, folder: Path, unit: int) -> None:
        self.final = Path(folder) / f"part-{unit:06d}.parquet"
        self.tmp = Path(folder) / f".part-{unit:06d}.{os.getpid()}.tmp"
        self._writer: pq.ParquetWriter | None = None

    def rows(self, row_offset: int, names: list[str], attributions: np.ndarray, rel_delta: np.ndarray) -> None:
        table = rows_table(row_offset, names, attributions, rel_delta)
        if self._writer is None:
            self.tmp.parent.mkdir(exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, table.schema)
        self._writer.write_table(table)

    def arrays(self, arrays: dict[str, np.ndarray]) -> None:
        raise UsageError("named arrays are saved by the driver, not by a worker's part writer")

    def abort(self) -> None:
        """Drop a part left half-written by a failed unit."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.tmp.unlink(missing_ok=True)

    def close(self) -> bool:
        """Move the part into place; False when the unit had no rows."""
        if self._writer is None:
            return False
        self._writer.close()
        self._writer = None
        os.replace(self.tmp, self.final)
        return True


def _with_artifacts(run: AuditRun, files: dict[str, str], formats: tuple[str, ...]) -> AuditRun:
    import dataclasses

    arts = dict(files)
    if "html" in formats:
        arts["html"] = HTML_FILE
    if "pdf" in formats:
        arts["pdf"] = PDF_FILE
    if "json" in formats:
        arts["json"] = RUN_FILE
    return dataclasses.replace(run, artifacts=arts)


def save_outputs(run: AuditRun, out: Path, formats: tuple[str, ...]) -> dict[str, Path]:
    """Write a finished run's ``audit.json`` and reports into ``out`` through a staging folder (no per-row
    attributions: those stream only while a run is computed)."""
    bad = [f for f in formats if f not in ("json", "html", "pdf")]
    if bad or not formats:
        raise UsageError(f"unknown format '{','.join(bad)}'; use json, html and/or pdf")
    with staging(out) as st:
        return st.finish(run, formats)


@contextmanager
def staging(out: Path) -> Iterator[Staging]:
    """Create a staging folder next to ``out``; remove it whatever happens."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{out}' is a file; pass a folder for the audit's files")
    parent = out.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f".{out.name}.staging-", dir=parent))
    except OSError as e:
        raise UsageError(f"cannot write to '{parent}' ({e.strerror}); pass a writable --out folder") from None
    st = Staging(out, path)
    try:
        yield st
    finally:
        st.abort()
