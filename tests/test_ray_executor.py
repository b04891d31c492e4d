"""The Ray executor on one local Ray instance (``ray.init(num_cpus=2)``, no dashboard), shared by the module.

What is proved: on the same data, ``--executor ray`` with one or two workers gives the same ``audit.json`` as the
local loop (bit-equal here: the units are the local blocks) and the same per-row attributions, for a table in
Parquet part files and for an image folder; an actor killed mid-run has its units retried and the audit is the
same; a model that cannot load on the workers and a cluster that cannot be reached are one line and exit 3;
``import audit`` does not import Ray.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from ray_toys import import_ray, local_ray_instance  # noqa: E402
from typer.testing import CliRunner

ray = import_ray()


from audit.cli.main import app  # noqa: E402
from audit.results import to_dict  # noqa: E402

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
_VOLATILE = {"created_at", "duration_s"}
_EXECUTOR_OPTIONS = {"executor", "ray_address", "workers", "cpus_per_worker", "gpus_per_worker", "out", "command"}


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    yield from local_ray_instance(ray)


def _script(model: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> dict:
    """A 3-class MLP and 2,100 rows in three Parquet part files (row groups of 300), read 150 rows at a time."""
    tmp = tmp_path_factory.mktemp("ray_table")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2100, 6)).astype(np.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        y = model(torch.from_numpy(X)).argmax(1).numpy()
    df = pd.DataFrame(X, columns=["a", "b", "c", "d", "e", "noise_x"])
    df["site"] = np.where(rng.random(len(df)) < 0.5, "north", "south")
    df["label"] = y
    parts = tmp / "parts"
    parts.mkdir()
    for k in range(3):
        df.iloc[700 * k : 700 * (k + 1)].to_parquet(parts / f"part-{k:03d}.parquet", row_group_size=300, index=False)
    (tmp / "audit.toml").write_text("chunk-rows = 150\nn-boot = 30\n")
    return {"dir": tmp, "data": parts, "model": _script(model, tmp / "m.pt"), "toml": tmp / "audit.toml",
            "module": model}


def _cli(table: dict, out: Path, *extra: str) -> dict:
    args = ["run", "--model", str(table["model"]), "--data", str(table["data"]), "--target-col", "label",
            "--slice-col", "site", "--noise-features", "noise_*", "--config", str(table["toml"]), "--format", "json",
            "--quiet", "--out", str(out), *extra]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code in (0, 1), res.output
    return json.loads((out / "audit.json").read_text())


def _normalised(run: dict) -> dict:
    run = json.loads(json.dumps(run))
    for key in _VOLATILE:
        run["provenance"].pop(key, None)
    for key in _EXECUTOR_OPTIONS:
        run["provenance"]["config"].pop(key, None)
    run["provenance"].pop("command", None)
    return run


def _max_rel_diff(a, b, where: str = "") -> float:
    """Largest relative difference of the floats of two JSON values; anything else must be equal."""
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), where
        return max([_max_rel_diff(a[k], b[k], f"{where}.{k}") for k in a] or [0.0])
    if isinstance(a, list):
        assert len(a) == len(b), where
        return max([_max_rel_diff(x, y, f"{where}[{i}]") for i, (x, y) in enumerate(zip(a, b, strict=True))] or [0.0])
    if isinstance(a, float) or isinstance(b, float):
        if a == b:
            return 0.0
        return abs(a - b) / max(abs(a), abs(b), 1e-12)
    assert a == b, f"{where}: {a!r} != {b!r}"
    return 0.0


def _same(a: dict, b: dict) -> None:
    diff = _max_rel_diff(_normalised(a), _normalised(b))
    assert diff <= 1e-6, diff


@pytest.fixture(scope="module")
def local_run(table) -> dict:
    out = table["dir"] / "local"
    return {"json": _cli(table, out), "out": out}


def test_tabular_parts_two_workers_match_local(table, local_run):
    """Two actors of one CPU each on the 2-CPU instance: the 2-core case of the issue, which must not hang (this
    executor starts no read task that would wait for a third CPU)."""
    from audit.executors.ray import last_run

    out = table["dir"] / "ray2"
    got = _cli(table, out, "--executor", "ray", "--workers", "2", "--cpus-per-worker", "1")
    _same(local_run["json"], got)
    assert last_run.units == 15 and last_run.workers == 2 and last_run.cpus_per_worker == 1.0
    assert got["provenance"]["config"]["executor"] == "ray"
    assert got["artifacts"] == local_run["json"]["artifacts"]
    mine = pd.read_parquet(out / "attributions.parquet")  # a folder of part files, read as one table
    theirs = pd.read_parquet(local_run["out"] / "attributions.parquet")
    assert (out / "attributions.parquet").is_dir() and len(os.listdir(out / "attributions.parquet")) == 15
    pd.testing.assert_frame_equal(mine.reset_index(drop=True), theirs, rtol=1e-6)
    assert mine["_row"].tolist() == list(range(2100))


def test_more_workers_than_cpus_run_with_a_note(table, local_run):
    """--workers 3 on the 2-CPU instance: it runs (fractional actors), the same audit, and a note says why more
    actors than CPUs cannot help (the run used to say nothing)."""
    got = _cli(table, table["dir"] / "ray3", "--executor", "ray", "--workers", "3")
    _same(dict(local_run["json"], notes=[]), dict(got, notes=[]))
    note = [n for n in got["notes"] if n.startswith("--workers 3 on a Ray cluster with 2 CPUs")]
    assert len(note) == 1 and "more actors than CPUs are no faster, pass --workers 2 or fewer" in note[0], got["notes"]


def test_one_worker_matches_local_through_the_api_with_an_in_memory_model(table, local_run):
    """audit.run(module, ..., executor="ray"): the module travels pickled; one actor sized by default (1.5 CPUs of
    the 2)."""
    import audit
    from audit.executors.ray import last_run

    kwargs = {"target": "label", "slice_col": "site", "noise_features": ["noise_*"], "chunk_rows": 150, "n_boot": 30}
    got = to_dict(audit.run(table["module"], table["data"], executor="ray", workers=1, **kwargs))
    assert (last_run.workers, last_run.cpus_per_worker, len(set(last_run.pids))) == (1, 1.5, 1)
    want = to_dict(audit.run(table["module"], table["data"], **kwargs))
    _same(want, got)
    theirs = json.loads(json.dumps(local_run["json"]))
    for run in (theirs, got):  # the in-memory model is hashed from its tensors, the file from its bytes
        run["provenance"] = {k: v for k, v in run["provenance"].items() if not k.startswith("model")}
        run["provenance"]["config"].pop("model")
    _same(theirs | {"artifacts": want["artifacts"]}, got)


def test_a_killed_actor_is_replaced_and_the_audit_is_the_same(table, local_run):
    from audit.executors.ray import last_run

    killed: list[int] = []

    def progress(stage, done, total, **_):
        if stage == "attribution" and done and not killed:
            pid = last_run.pids[-1]
            os.kill(pid, signal.SIGKILL)  # the actor that just delivered a unit, while it works on the next ones
            killed.append(pid)

    from audit.api import run

    kwargs = {"target": "label", "slice_col": "site", "noise_features": ["noise_*"], "chunk_rows": 150, "n_boot": 30}
    got = to_dict(run(table["model"], table["data"], executor="ray", workers=2, progress=progress, **kwargs))
    assert killed
    assert len(set(last_run.pids)) >= 3  # a new actor process replaced the killed one and delivered units
    _same(local_run["json"] | {"artifacts": got["artifacts"]}, got)


def test_model_that_cannot_load_on_the_workers_is_one_error(table, tmp_path):
    """The driver loads the model; the workers cannot (here: the file is gone by then): ModelLoadError."""
    import dataclasses

    from audit.config import build_config
    from audit.errors import ModelLoadError
    from audit.executors.ray import run_ray
    from audit.modalities.tabular import TabularModality

    cfg = build_config({"model": table["model"], "data": table["data"], "target_col": "label", "slice_col": "site",
                        "chunk_rows": 700, "executor": "ray"}, None)  # fmt: skip
    modality = TabularModality(cfg)
    modality.open()
    modality.cfg = dataclasses.replace(cfg, model=tmp_path / "gone.pt")
    with pytest.raises(ModelLoadError, match="on a Ray worker"):
        run_ray(modality, modality.cfg, None)


def test_a_bad_value_in_a_unit_is_the_local_error(tmp_path, table):
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.standard_normal((400, 6)).astype(np.float32), columns=list("abcdef"))
    df.loc[333, "c"] = np.nan
    df.to_parquet(tmp_path / "bad.parquet", index=False)
    model = _script(torch.nn.Linear(6, 1), tmp_path / "lin.pt")
    (tmp_path / "audit.toml").write_text("chunk-rows = 100\n")
    codes, lines = [], []
    for extra in ((), ("--executor", "ray")):
        res = runner.invoke(app, ["run", "--model", str(model), "--data", str(tmp_path / "bad.parquet"), "--config",
                                  str(tmp_path / "audit.toml"), "--format", "json", "--quiet", "--out",
                                  str(tmp_path / "o"), *extra])  # fmt: skip
        codes.append(res.exit_code)
        lines.append(res.output.strip())
    assert codes == [3, 3]
    assert lines[1].startswith(lines[0].rsplit(";", 1)[0]) and "data row 334" in lines[1], lines


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    from image_toys import SmallCNN, make_toy_images, write_image_folder

    tmp = tmp_path_factory.mktemp("ray_images")
    torch.manual_seed(0)
    torch.save(SmallCNN().state_dict(), tmp / "cnn.pt")
    x, y = make_toy_images(36, leak=True, seed=3)
    write_image_folder(tmp / "images", x, y, ("a", "b"))
    return {"dir": tmp, "model": tmp / "cnn.pt", "arch": f"{Path(__file__).parent / 'image_toys.py'}:SmallCNN"}


def test_image_folder_matches_local(images):
    """Noise baselines: each batch's draws are seeded by its batch number, so units must be the local batches."""
    baseline = "noise"
    def go(out: str, *extra: str) -> dict:
        res = runner.invoke(app, ["run", "--model", str(images["model"]), "--arch", images["arch"], "--data",
                                  str(images["dir"] / "images"), "--image-size", "32", "--resize", "0",
                                  "--normalize", "none", "--baseline", baseline, "--format", "json", "--quiet",
                                  "--out", str(images["dir"] / out), "--n-boot", "20", "--crosscheck-rows", "2",
                                  "--n-steps", "16", *extra])  # fmt: skip
        assert res.exit_code in (0, 1), res.output
        return json.loads((images["dir"] / out / "audit.json").read_text())

    from audit.executors.ray import last_run

    want = go(f"local-{baseline}")
    got = go(f"ray-{baseline}", "--executor", "ray", "--workers", "2")
    assert last_run.units == 2
    _same(want, got)
    a = np.load(images["dir"] / f"local-{baseline}" / "heatmaps.npz")
    b = np.load(images["dir"] / f"ray-{baseline}" / "heatmaps.npz")
    for key in a.files:
        np.testing.assert_array_equal(a[key], b[key])


def test_unreachable_cluster_is_one_line_and_exit_3(table, tmp_path):
    """In a fresh process: one line on stderr, exit 3, in seconds, and no Ray warnings."""
    t0 = time.perf_counter()
    env = dict(os.environ, RAY_ADDRESS="")
    proc = subprocess.run(
        [sys.executable, "-m", "audit", "run", "--model", str(table["model"]), "--data", str(table["data"]),
         "--target-col", "label", "--slice-col", "site", "--executor", "ray", "--ray-address", "127.0.0.1:1",
         "--format", "json",
         "--quiet", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audit: error: cannot reach the Ray cluster at 127.0.0.1:1"), lines
    assert time.perf_counter() - t0 < 60
    assert not (tmp_path / "o" / "audit.json").exists()


def test_import_audit_does_not_import_ray():
    code = "import sys, audit, audit.pipeline, audit.executors; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_resources_are_sized_so_nothing_waits():
    from audit.errors import ExecutorError
    from audit.executors.ray import plan_resources

    assert plan_resources(2, 0, None, None, 0, 100) == (2, 0.75, 1)  # 2 cores: fractions, half a CPU spare
    assert plan_resources(16, 0, 2, None, 0, 100) == (2, 7.5, 7)
    assert plan_resources(2, 0, None, None, 0, 1) == (1, 1.5, 1)  # never more actors than units
    assert plan_resources(4, 0, None, 1, 0, 100) == (4, 1.0, 1)
    with pytest.raises(ExecutorError, match="need 3 CPUs but the Ray cluster has 2"):
        plan_resources(2, 0, 3, 1, 0, 100)
    with pytest.raises(ExecutorError, match="GPUs"):
        plan_resources(2, 0, None, None, 1, 100)
