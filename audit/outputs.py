"""Write a run's files into its output folder, all or nothing.

Everything is written into a staging folder beside the output folder and moved into place only once the
run and every requested format have succeeded, so a failed run never leaves an ``audit.json`` (or a report)
that looks like a result. Per-row attributions stream to Parquet as they are computed, so memory stays
bounded on large files.
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

__all__ = ["Staging", "staging", "ATTRIBUTIONS_FILE", "RUN_FILE"]

RUN_FILE = "audit.json"
ATTRIBUTIONS_FILE = "attributions.parquet"
HTML_FILE = "report.html"
PDF_FILE = "report.pdf"


class Staging:
    """A staging folder for one run. ``sink`` receives per-row attributions; :meth:`finish` writes the
    results and reports and moves everything into the output folder."""

    def __init__(self, out: Path, path: Path) -> None:
        self.out = out
        self.path = path
        self.files: dict[str, str] = {}
        self._writer: pq.ParquetWriter | None = None

    def sink(self, row_offset: int, names: list[str], attributions: np.ndarray, rel_delta: np.ndarray) -> None:
        """Append per-row attributions (n, F) and the relative completeness error (n,) to the Parquet file."""
        n = attributions.shape[0]
        cols = {"_row": pa.array(np.arange(row_offset, row_offset + n, dtype=np.int64))}
        for j, name in enumerate(names):
            cols[name] = pa.array(attributions[:, j])
        cols["_rel_delta"] = pa.array(rel_delta)
        table = pa.table(cols)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path / ATTRIBUTIONS_FILE, table.schema)
            self.files["attributions"] = ATTRIBUTIONS_FILE
        self._writer.write_table(table)

    def add_file(self, kind: str, name: str) -> Path:
        """Reserve ``name`` in the staging folder for an extra artefact (e.g. image heatmaps)."""
        self.files[kind] = name
        return self.path / name

    def finish(self, run: AuditRun, formats: tuple[str, ...]) -> dict[str, Path]:
        """Write the requested formats, then move every staged file into the output folder."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        run = _with_artifacts(run, self.files, formats)
        reports = {f: self.path / name for f, name in (("html", HTML_FILE), ("pdf", PDF_FILE)) if f in formats}
        if reports:
            from audit.report import write_reports

            write_reports(run, reports)  # renders the page once for both formats
        if "json" in formats:
            save_run(run, self.path / RUN_FILE)
        self.out.mkdir(parents=True, exist_ok=True)
        written: dict[str, Path] = {}
        # audit.json last, so a reader never sees it before the files it names
        for name in sorted(os.listdir(self.path), key=lambda n: n == RUN_FILE):
            os.replace(self.path / name, self.out / name)
            written[name] = self.out / name
        self.run = run
        return written

    def abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None
        shutil.rmtree(self.path, ignore_errors=True)


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
