"""The output folder holds one run's files: a later run removes the earlier run's outputs it does not rewrite,
never anything else, and an audit.json in the folder only ever names files of its own run that are there."""

from __future__ import annotations

import json
import os
import pathlib
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import REGRESSION_JSON

import audit.outputs
from audit.outputs import (
    ATTRIBUTIONS_FILE,
    HEATMAPS_FILE,
    HTML_FILE,
    OUTPUT_FILES,
    PDF_FILE,
    RUN_FILE,
    staging,
)
from audit.results import load_run

STALE = "stale bytes of an earlier run"


@pytest.fixture()
def run():
    return load_run(REGRESSION_JSON)


def _earlier_run(out: Path, names: tuple[str, ...]) -> None:
    """An earlier run's outputs in ``out``: an audit.json naming every one of ``names``, plus a user file."""
    out.mkdir(parents=True)
    for name in names:
        (out / name).write_text(STALE)
    kinds = {HTML_FILE: "html", PDF_FILE: "pdf", ATTRIBUTIONS_FILE: "attributions", HEATMAPS_FILE: "heatmaps"}
    arts = {kinds[n]: n for n in names if n in kinds} | {"json": RUN_FILE}
    (out / RUN_FILE).write_text(json.dumps({"stale": True, "artifacts": arts}))
    (out / "notes.txt").write_text("my notes")


def _sink_rows(st) -> None:
    st.rows(0, ["a", "b"], np.ones((3, 2), dtype=np.float32), np.zeros(3, dtype=np.float32))


def test_output_files_names_every_file_this_module_writes() -> None:
    assert set(OUTPUT_FILES) == {
        "audit.json", "report.html", "report.pdf", "attributions.parquet", "heatmaps.npz", "tokens.parquet"
    }


def test_an_html_run_removes_the_earlier_runs_outputs_and_nothing_else(tmp_path, run) -> None:
    out = tmp_path / "out"
    _earlier_run(out, (PDF_FILE, ATTRIBUTIONS_FILE, HEATMAPS_FILE, "tokens.parquet"))  # a text run's tokens too
    (out / "model.pt").write_text("a checkpoint")  # e.g. what `audit demo` keeps beside its audit
    with staging(out) as st:
        written = st.finish(run, ("html",))
    assert sorted(os.listdir(out)) == ["model.pt", "notes.txt", HTML_FILE]
    assert (out / "notes.txt").read_text() == "my notes" and (out / "model.pt").read_text() == "a checkpoint"
    assert "<html" in (out / HTML_FILE).read_text().lower()
    assert set(written) == {HTML_FILE}
    assert not list(tmp_path.glob(".out.staging-*"))


def test_a_json_run_names_only_files_that_are_there(tmp_path, run) -> None:
    out = tmp_path / "out"
    _earlier_run(out, (HTML_FILE, PDF_FILE, HEATMAPS_FILE))
    with staging(out) as st:
        _sink_rows(st)
        st.finish(run, ("json",))
    assert sorted(os.listdir(out)) == [ATTRIBUTIONS_FILE, RUN_FILE, "notes.txt"]
    saved = json.loads((out / RUN_FILE).read_text())
    assert "stale" not in saved
    assert saved["artifacts"] == {"attributions": ATTRIBUTIONS_FILE, "json": RUN_FILE}
    assert all((out / name).is_file() for name in saved["artifacts"].values())


def test_a_folder_with_an_output_name_is_left_alone(tmp_path, run) -> None:
    out = tmp_path / "out"
    (out / PDF_FILE).mkdir(parents=True)  # not a file this module wrote
    (out / PDF_FILE / "keep.txt").write_text("x")
    with staging(out) as st:
        st.finish(run, ("json",))
    assert (out / PDF_FILE / "keep.txt").read_text() == "x" and (out / RUN_FILE).is_file()


def test_audit_json_is_never_beside_files_of_another_run_or_missing_files(tmp_path, run, monkeypatch) -> None:
    """Check the folder after every rename and removal of finish(): an audit.json there is either the earlier
    one with the earlier files all present and untouched, or the new one with every file it names present."""
    out = tmp_path / "out"
    _earlier_run(out, (PDF_FILE, ATTRIBUTIONS_FILE, HEATMAPS_FILE, "tokens.parquet"))  # a text run's tokens too
    states: list[str] = []

    def check() -> None:
        index = out / RUN_FILE
        if not index.exists():
            states.append("none")
            return
        data = json.loads(index.read_text())
        names = data["artifacts"].values()
        assert all((out / n).is_file() for n in names), f"audit.json names a missing file: {sorted(os.listdir(out))}"
        if data.get("stale"):
            assert all((out / n).read_text() == STALE for n in names if n != RUN_FILE), "old index, new files"
            states.append("old")
        else:
            states.append("new")

    real_replace, real_unlink = os.replace, pathlib.Path.unlink

    def replace(src, dst):
        real_replace(src, dst)
        if Path(dst).parent == out:
            check()

    def unlink(self, missing_ok=False):
        real_unlink(self, missing_ok=missing_ok)
        if self.parent == out:
            check()

    monkeypatch.setattr(audit.outputs.os, "replace", replace)
    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    with staging(out) as st:
        _sink_rows(st)  # rewrites attributions.parquet: the old audit.json must be gone before that
        st.finish(run, ("json", "html"))
    assert states and states[-1] == "new"
    assert "old" not in states[states.index("none") :]  # once gone, the old index never comes back
    assert sorted(os.listdir(out)) == [ATTRIBUTIONS_FILE, RUN_FILE, "notes.txt", HTML_FILE]
