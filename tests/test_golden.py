"""Golden files: the demo's audit.json, a tabular classifier's and an image audit's, as the code computes them
today. A refactor that moves code must not change what a run computes: the same JSON apart from timestamps,
durations, paths and library versions (floats within 1e-6 relative, for BLAS rounding on another machine).

Regenerate after a deliberate change of results: ``AUDIT_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py``.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from audit.cli.main import app

GOLDEN = Path(__file__).parent / "fixtures" / "golden"
runner = CliRunner()

# provenance fields that name this machine, this moment or this folder
# (a TorchScript file's bytes differ from one save to the next, so its sha256 does too)
_VOLATILE = {"created_at", "duration_s", "model_path", "data_path", "command", "versions", "model_sha256"}
_PATH_OPTIONS = {"model", "data", "out", "reference", "labels", "command", "arch"}  # arch names a file path


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _normalised(run: dict) -> dict:
    run = json.loads(json.dumps(run))
    prov = run.get("provenance", {})
    for key in _VOLATILE:
        prov.pop(key, None)
    for key in _PATH_OPTIONS:
        prov.get("config", {}).pop(key, None)
    run.pop("artifacts", None)
    return run


def _close(a, b, where: str = "") -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), f"{where}: keys differ: {sorted(set(a) ^ set(b))}"
        for k in a:
            _close(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), f"{where}: {a!r} != {b!r}"
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _check(name: str, audit_json: Path) -> None:
    got = _normalised(json.loads(audit_json.read_text()))
    path = GOLDEN / f"{name}.json"
    if os.environ.get("AUDIT_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    want = _normalised(json.loads(path.read_text()))
    # an option added later shows up in the recorded config; the options that were there must not change
    known = want.get("provenance", {}).get("config", {})
    cfg = got.get("provenance", {}).get("config", {})
    got["provenance"]["config"] = {k: v for k, v in cfg.items() if k in known}
    _close(got, want, name)


def _script(model: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


@pytest.mark.slow
def test_demo_json_is_unchanged(tmp_path: Path):
    out = tmp_path / "demo"
    res = runner.invoke(app, ["demo", "--rows", "300", "--train-rows", "1000", "--epochs", "5", "--format", "json",
                              "--quiet", "--out", str(out)])  # fmt: skip
    assert res.exit_code in (0, 1), res.output  # 5 epochs leave the model leaning on its noise columns
    _check("demo", out / "audit.json")


def test_tabular_classifier_json_is_unchanged(tmp_path: Path):
    """A 3-class MLP with a slice column, a reference file and a declared noise column: most stages run."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 5)).astype(np.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    with torch.no_grad():
        y = model(torch.from_numpy(X)).argmax(1).numpy()
    df = pd.DataFrame(X, columns=["a", "b", "c", "d", "noise_x"])
    df["site"] = np.where(rng.random(400) < 0.5, "north", "south")
    df["label"] = y
    df.to_csv(tmp_path / "val.csv", index=False)
    ref = df.drop(columns=["site", "label"]).copy()
    ref["a"] += 1.0
    ref.to_csv(tmp_path / "ref.csv", index=False)
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--model", str(_script(model, tmp_path / "m.pt")), "--data",
                              str(tmp_path / "val.csv"), "--target-col", "label", "--slice-col", "site",
                              "--reference", str(tmp_path / "ref.csv"), "--noise-features", "noise_*",
                              "--format", "json", "--quiet", "--out", str(out), "--n-boot", "50"])  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    _check("tabular_classifier", out / "audit.json")


def test_image_json_is_unchanged(tmp_path: Path):
    """An untrained (seeded) SmallCNN on 8 toy watermark images: the image path's numbers, not a verdict."""
    from image_toys import SmallCNN, make_toy_images, write_image_folder

    torch.manual_seed(0)
    state = tmp_path / "cnn.pt"
    torch.save(SmallCNN().state_dict(), state)
    x, y = make_toy_images(8, leak=True, seed=3)
    write_image_folder(tmp_path / "images", x, y, ("a", "b"))
    toys = str(Path(__file__).parent / "image_toys.py")
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--model", str(state), "--arch", f"{toys}:SmallCNN", "--data",
                              str(tmp_path / "images"), "--image-size", "32", "--resize", "0", "--normalize", "none",
                              "--format", "json", "--quiet", "--out", str(out), "--n-boot", "20",
                              "--crosscheck-rows", "2"])  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    _check("image", out / "audit.json")
