"""`audit run` end to end through the CLI: exit codes, one-line errors, planted findings, no half results."""

from __future__ import annotations

import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from audit.cli.main import app

runner = CliRunner()


class _Linear(torch.nn.Module):
    """y = x @ w + b, output shape (rows,)."""

    def __init__(self, w: list[float], b: float = 0.0) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([w]))
            self.lin.bias.fill_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).squeeze(-1)


def _script(model: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


def _invoke(*args: str):
    return runner.invoke(app, ["run", *args, "--quiet", "--format", "json", "--n-boot", "50"])


@pytest.fixture()
def linear_case(tmp_path: Path):
    """3 features: a, b carry signal (y = a + b), noise is pure noise. The model leans on noise with 1.2 (37.5% of
    the attribution, more than an average feature)."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(600, 3))
    df = pd.DataFrame(X, columns=["a", "b", "noise"])
    df["target"] = df.a + df.b
    data = tmp_path / "val.csv"
    df.to_csv(data, index=False)
    leaning = _script(_Linear([1.0, 1.0, 1.2]), tmp_path / "leaning.pt")
    clean = _script(_Linear([1.0, 1.0, 0.0005]), tmp_path / "clean.pt")
    return data, leaning, clean


def _findings(out: Path) -> dict[str, dict]:
    run = json.loads((out / "audit.json").read_text())
    return {f["code"]: f for f in run["findings"]}


def test_noise_leakage_is_caught_and_gates_the_exit_code(linear_case, tmp_path):
    data, leaning, _clean = linear_case
    out = tmp_path / "out"
    res = _invoke("--model", str(leaning), "--data", str(data), "--target-col", "target", "--out", str(out))
    found = _findings(out)
    assert "noise_leakage" in found, found.keys()
    assert "noise" in found["noise_leakage"]["features"]
    run = json.loads((out / "audit.json").read_text())
    assert run["verdict"] in ("warn", "fail")
    expected = 1 if run["verdict"] == "fail" else 0
    assert res.exit_code == expected, res.output
    # --fail-on warn turns any warning into a failing exit; --fail-on never never fails
    res_warn = _invoke("--model", str(leaning), "--data", str(data), "--target-col", "target", "--out",
                       str(tmp_path / "o2"), "--fail-on", "warn")
    assert res_warn.exit_code == 1
    res_never = _invoke("--model", str(leaning), "--data", str(data), "--target-col", "target", "--out",
                        str(tmp_path / "o3"), "--fail-on", "never")
    assert res_never.exit_code == 0


def test_declared_noise_route_without_target(linear_case, tmp_path):
    data, leaning, clean = linear_case
    out = tmp_path / "declared"
    _invoke("--model", str(leaning), "--data", str(data), "--drop", "target", "--noise-features", "nois*",
            "--out", str(out))
    assert "noise_leakage" in _findings(out)
    out2 = tmp_path / "declared_clean"
    res = _invoke("--model", str(clean), "--data", str(data), "--drop", "target", "--noise-features", "nois*",
                  "--out", str(out2))
    assert "noise_leakage" not in _findings(out2)
    assert res.exit_code == 0


def test_clean_model_is_quiet_and_attributions_match_closed_form(linear_case, tmp_path):
    data, _leaning, clean = linear_case
    out = tmp_path / "clean"
    res = _invoke("--model", str(clean), "--data", str(data), "--target-col", "target", "--out", str(out),
                  "--format", "json")
    assert res.exit_code == 0, res.output
    run = json.loads((out / "audit.json").read_text())
    assert "noise_leakage" not in _findings(out)
    assert [f["name"] for f in run["features"]][:2] in (["a", "b"], ["b", "a"])
    assert run["crosscheck"]["passed"] is True
    # per-row attributions: a linear model's IG against the default baseline (the data mean) is exactly
    # w * (x - E x)
    attr = pd.read_parquet(out / "attributions.parquet")
    df = pd.read_csv(data)
    assert run["baseline"] == "data mean" and run["baseline_default"] is True
    np.testing.assert_allclose(attr["a"].to_numpy(), df["a"].to_numpy() - df["a"].mean(), atol=1e-5)
    np.testing.assert_allclose(attr["noise"].to_numpy(), 0.0005 * (df["noise"] - df["noise"].mean()).to_numpy(),
                               atol=1e-6)
    for key in ("schema_version", "verdict", "task", "features", "convergence", "crosscheck", "findings",
                "provenance"):
        assert key in run
    assert run["convergence"]["max_rel_delta"] < 1e-3
    assert len(run["provenance"]["model_sha256"]) == 64


def test_target_leak_column_is_flagged(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(800, 3))
    y = X[:, 0] * 0.3 + rng.normal(0, 0.5, 800)
    df = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    df["leak"] = y + rng.normal(0, 0.01, 800)
    df["target"] = y
    data = tmp_path / "leak.csv"
    df.to_csv(data, index=False)
    model = _script(_Linear([0.05, 0.0, 0.0, 1.0]), tmp_path / "m.pt")
    out = tmp_path / "o"
    res = _invoke("--model", str(model), "--data", str(data), "--target-col", "target", "--out", str(out))
    found = _findings(out)
    assert found["target_leakage"]["severity"] == "fail"
    assert found["target_leakage"]["features"] == ["leak"]
    assert res.exit_code == 1


def _assert_clean_error(res, code: int, *words: str) -> None:
    assert res.exit_code == code, (res.exit_code, res.output)
    err = res.stderr if hasattr(res, "stderr") else res.output
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("audit: error: ")
    assert "Traceback" not in res.output
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_inputs_get_one_line_and_documented_codes(linear_case, tmp_path):
    data, leaning, _ = linear_case
    out = tmp_path / "bad"
    m, d = str(leaning), str(data)
    cases = [
        (("--model", m, "--data", str(tmp_path / "missing.csv")), 3, ("missing.csv",)),
        (("--model", str(tmp_path / "nope.pt"), "--data", d), 3, ("nope.pt",)),
        (("--model", m, "--data", d, "--target-col", "nope"), 2, ("nope",)),
        (("--model", m, "--data", d, "--method", "simpson"), 2, ("simpson",)),
        (("--model", m, "--data", d, "--n-steps", "-3"), 2, ("--n-steps",)),
        (("--model", m, "--data", d, "--n-steps", "many"), 2, ("--n-steps",)),
        (("--model", m, "--data", d, "--fail-on", "sometimes"), 2, ("--fail-on",)),
        (("--model", m, "--data", d, "--format", "docx"), 2, ("docx",)),
        (("--model", m, "--data", d, "--noise-features", "zzz*"), 2, ("zzz*",)),
        # the model wants 3 features; keeping the target as a feature gives 4
        (("--model", m, "--data", d), 3, ("feature",)),
    ]
    for args, code, words in cases:
        res = runner.invoke(app, ["run", *args, "--out", str(out), "--quiet"])
        _assert_clean_error(res, code, *words)
        assert not (out / "audit.json").exists()
        assert not out.exists() or not any(out.iterdir())
        assert not list(tmp_path.glob(".bad.staging-*")), "a failed run left its staging folder behind"


def test_text_and_nan_in_data_are_clear_errors(linear_case, tmp_path):
    data, leaning, _ = linear_case
    df = pd.read_csv(data)
    bad = df.copy().astype(object)
    bad.loc[6, "a"] = "abc"
    p = tmp_path / "text.csv"
    bad.to_csv(p, index=False)
    res = runner.invoke(app, ["run", "--model", str(leaning), "--data", str(p), "--target-col", "target",
                              "--out", str(tmp_path / "o"), "--quiet"])
    _assert_clean_error(res, 3, "'a'")
    nan = df.copy()
    nan.loc[3, "b"] = np.nan
    p2 = tmp_path / "nan.csv"
    nan.to_csv(p2, index=False)
    res = runner.invoke(app, ["run", "--model", str(leaning), "--data", str(p2), "--target-col", "target",
                              "--out", str(tmp_path / "o"), "--quiet"])
    _assert_clean_error(res, 3, "'b'")
    header_only = tmp_path / "header.csv"
    header_only.write_text("a,b,noise,target\n")
    res = runner.invoke(app, ["run", "--model", str(leaning), "--data", str(header_only), "--target-col",
                              "target", "--out", str(tmp_path / "o"), "--quiet"])
    _assert_clean_error(res, 3)
    assert not (tmp_path / "o" / "audit.json").exists()


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_unsafe_pickle_is_refused_without_trust(linear_case, tmp_path):
    data, _, _ = linear_case
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pt"
    torch.save({"weights": torch.zeros(3), "x": _Payload(str(marker))}, ckpt, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    res = runner.invoke(app, ["run", "--model", str(ckpt), "--data", str(data), "--target-col", "target",
                              "--out", str(tmp_path / "o"), "--quiet"])
    _assert_clean_error(res, 3, "--trust-model")
    assert not marker.exists()


def test_classifier_explains_predicted_class(tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 4)).astype(np.float32)
    y = (X[:, 0] + rng.normal(0, 0.5, 400) > 0).astype(int)  # f0 informs the label, not perfectly
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(4)])
    df["label"] = y
    data = tmp_path / "cls.csv"
    df.to_csv(data, index=False)
    lin = torch.nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-3.0, 0, 0, 0], [3.0, 0, 0, 0]]))
        lin.bias.zero_()
    model = _script(lin, tmp_path / "cls.pt")
    out = tmp_path / "o"
    res = _invoke("--model", str(model), "--data", str(data), "--target-col", "label", "--out", str(out))
    run = json.loads((out / "audit.json").read_text())
    assert res.exit_code == 0, run["findings"]
    assert run["task"] == "classification"
    assert run["features"][0]["name"] == "f0"
    assert set(run["class_features"]) == {"0", "1"}
    res = _invoke("--model", str(model), "--data", str(data), "--target-col", "label", "--out", str(out),
                  "--class", "7")
    _assert_clean_error(res, 2, "--class")


def test_slices_and_reference_drift_are_reported(tmp_path):
    rng = np.random.default_rng(4)
    n = 600
    X = rng.uniform(-1, 1, size=(n, 3))
    group = np.where(np.arange(n) < n // 2, "north", "south")
    X[group == "south", 0] *= 0.02  # in the south, feature a barely moves: its attribution vanishes there
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["region"] = group
    df["target"] = 2 * df.a + 0.5 * df.b + 0.1 * df.c
    data = tmp_path / "val.csv"
    df.to_csv(data, index=False)
    ref = df.drop(columns=["region"]).copy()
    ref["a"] = rng.uniform(2, 3, size=n)  # training data had a far elsewhere: drift on the top feature
    ref_path = tmp_path / "train.csv"
    ref.to_csv(ref_path, index=False)
    model = _script(_Linear([2.0, 0.5, 0.1]), tmp_path / "m.pt")
    out = tmp_path / "o"
    _invoke("--model", str(model), "--data", str(data), "--target-col", "target", "--slice-col", "region",
            "--reference", str(ref_path), "--out", str(out))
    run = json.loads((out / "audit.json").read_text())
    found = _findings(out)
    assert "slice_skew" in found and "drift_skew" in found, found.keys()
    groups = {s["group"]: s for s in run["slices"]}
    assert set(groups) == {"north", "south"}
    assert groups["north"]["top_features"][0] == "a" and groups["south"]["top_features"][0] == "b"
    drift = {d["name"]: d for d in run["drift"]}
    assert drift["a"]["ks"] == pytest.approx(1.0) and drift["b"]["ks"] < 0.2
