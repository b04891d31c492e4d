"""Without Ray: tables in part files (a folder, a glob) read as one table with global row ids, the units a
distributed executor plans are exactly the local blocks, and the output folder takes a parts folder in place of
``attributions.parquet`` (and back)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from audit.config import build_config
from audit.errors import DataError
from audit.io.tabular import inspect_source, iter_source, plan_units, read_unit, table_files
from audit.outputs import ATTRIBUTIONS_FILE, PartWriter, staging
from audit.pipeline import choose_modality, run_audit
from audit.results import AuditRun, to_dict


@pytest.fixture()
def parts(tmp_path) -> dict:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((900, 4)).astype(np.float32), columns=list("abcd"))
    df["y"] = df.a - df.b
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, (lo, hi) in enumerate(((0, 250), (250, 600), (600, 900))):
        df.iloc[lo:hi].to_parquet(folder / f"part-{k}.parquet", row_group_size=100, index=False)
    (folder / "_SUCCESS").write_text("")  # a marker file, as Spark writes: not a part
    df.to_parquet(tmp_path / "whole.parquet", index=False)
    df.to_csv(tmp_path / "p0.csv", index=False)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model.eval()), str(tmp_path / "m.pt"))
    return {"dir": tmp_path, "folder": folder, "df": df, "model": tmp_path / "m.pt"}


def _run(model: Path, data, out: Path | None = None, **flags) -> AuditRun:
    cfg = build_config({"model": model, "data": data, "target_col": "y", "formats": "json", "quiet": True,
                        "n_boot": 20, "chunk_rows": 128, **({"out": out} if out else {}), **flags}, None)  # fmt: skip
    if out is None:
        return run_audit(cfg)
    with staging(out) as st:
        run = run_audit(cfg, outputs=st)
        st.finish(run, ("json",))
    return run


def test_folder_and_glob_list_the_parts_in_order(parts):
    folder = parts["folder"]
    want = [folder / f"part-{k}.parquet" for k in range(3)]
    assert table_files(folder) == want
    assert table_files(str(folder / "part-*.parquet")) == want
    assert table_files(parts["dir"] / "whole.parquet") == [parts["dir"] / "whole.parquet"]
    with pytest.raises(DataError, match="matches no table file"):
        table_files(str(folder / "nothing-*.parquet"))


def test_parts_are_one_table_with_global_row_ids(parts):
    source = inspect_source(parts["folder"], target_col="y")
    chunks = list(iter_source(source, 128))
    X = np.concatenate([c.X for c in chunks])
    np.testing.assert_array_equal(X, parts["df"][list("abcd")].to_numpy())
    assert [c.row_offset for c in chunks][:4] == [0, 128, 250, 378]  # each part cut from its own start
    units = plan_units(source, 128)
    from_units = [c for u in units for c in read_unit(source, u, 128)]
    assert [(c.row_offset, c.n_rows) for c in from_units] == [(c.row_offset, c.n_rows) for c in chunks]
    for a, b in zip(from_units, chunks, strict=True):
        np.testing.assert_array_equal(a.X, b.X)
        np.testing.assert_array_equal(a.y, b.y)


def test_a_folder_of_parts_audits_like_the_whole_file(parts):
    """Same sample, same numbers: only the data hash and path differ (blocks are cut per part, so floats may
    differ in the last bits)."""
    assert choose_modality(build_config({"model": parts["model"], "data": parts["folder"]}, None)).kind == "tabular"
    a = to_dict(_run(parts["model"], parts["folder"]))
    b = to_dict(_run(parts["model"], str(parts["folder"] / "part-*.parquet")))
    c = to_dict(_run(parts["model"], parts["dir"] / "whole.parquet"))
    assert a["features"] == b["features"]
    for f, g in zip(a["features"], c["features"], strict=True):
        assert f["name"] == g["name"]
        for key in ("mean_abs", "mean", "share", "ci_low", "ci_high"):
            assert f[key] == pytest.approx(g[key], rel=1e-6)
    assert [x["code"] for x in a["findings"]] == [x["code"] for x in c["findings"]]
    assert a["provenance"]["data_sha256"] != c["provenance"]["data_sha256"]


def test_a_part_with_other_columns_is_refused(parts):
    parts["df"].rename(columns={"d": "z"}).iloc[:10].to_parquet(parts["folder"] / "part-9.parquet", index=False)
    with pytest.raises(DataError, match="part 'part-9.parquet' has other columns"):
        inspect_source(parts["folder"], target_col="y")


def test_csv_parts_get_offsets_from_a_count(parts):
    folder = parts["dir"] / "csvs"
    folder.mkdir()
    parts["df"].iloc[:300].to_csv(folder / "a.csv", index=False)
    parts["df"].iloc[300:].to_csv(folder / "b.csv", index=False)
    source = inspect_source(folder, target_col="y")
    units = plan_units(source, 128)
    assert [(u.part, u.row_offset, u.n_rows) for u in units] == [(0, 0, 300), (1, 300, None)]
    got = [c.row_offset for u in units for c in read_unit(source, u, 128)]
    assert got == [c.row_offset for c in iter_source(source, 128)]


def test_parts_folder_replaces_an_attributions_file_and_back(parts, tmp_path):
    out = tmp_path / "out"
    _run(parts["model"], parts["folder"], out)
    assert (out / ATTRIBUTIONS_FILE).is_file()
    first = json.loads((out / "audit.json").read_text())
    with staging(out) as st:  # what a distributed run leaves: part files written by workers
        for unit, offset in ((0, 0), (1, 5)):
            w = PartWriter(st.parts_folder(), unit)
            w.rows(offset, ["a"], np.ones((5, 1), np.float32), np.zeros(5, np.float32))
            assert w.close()
        st.finish(_run(parts["model"], parts["folder"]), ("json",))
    assert (out / ATTRIBUTIONS_FILE).is_dir()
    assert pd.read_parquet(out / ATTRIBUTIONS_FILE)["_row"].tolist() == list(range(10))
    assert json.loads((out / "audit.json").read_text())["artifacts"] == first["artifacts"]
    _run(parts["model"], parts["folder"], out)  # and a local run puts a file back
    assert (out / ATTRIBUTIONS_FILE).is_file()
