"""small_sample (issue 16): too few rows never read as a silent PASS, and one row gives no "95% CI"."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from findings_planted import stats_from_shares
from typer.testing import CliRunner

from audit.analysis import global_ranking
from audit.cli.main import app
from audit.config import Thresholds
from audit.findings import registry, sample
from audit.results import Severity

T = Thresholds()
runner = CliRunner()


def test_few_rows_warn_with_the_count_what_was_not_tested_and_the_interval_width():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(20, 4)) * [3, 2, 1, 0.5]
    stats = global_ranking(A, ["a", "b", "c", "d"], n_boot=100, seed=0)
    (f,) = sample.detect_small_sample(stats=stats, n_rows=20, thresholds=T)
    assert (f.code, f.severity) == ("small_sample", Severity.WARN)
    assert "Only 20 rows were audited" in f.message and "below 100 rows" in f.message
    assert "slices (each group needs 30 rows)" in f.message
    width = f.evidence["median_relative_ci_width"]
    expected = np.median([(s.ci_high - s.ci_low) / s.mean_abs for s in stats[:3]])
    assert width == pytest.approx(expected, rel=1e-3) and width > 0.2
    assert f"{100 * width:.0f}%" in f.message
    assert "identifier value patterns" in f.evidence["tested"]


def test_one_row_says_there_is_no_interval():
    stats = global_ranking(np.array([[39.0, 1.0]]), ["a", "b"], n_boot=100, seed=0)
    (f,) = sample.detect_small_sample(stats=stats, n_rows=1, thresholds=T)
    assert "Only 1 row was audited" in f.message and "no ranking interval could be computed" in f.message
    assert f.evidence["median_relative_ci_width"] is None
    assert any("bootstrap" in t for t in f.evidence["not_tested"])


def test_enough_rows_are_quiet_and_a_rare_class_is_not():
    stats = stats_from_shares([0.5, 0.3, 0.2])
    assert sample.detect_small_sample(stats=stats, n_rows=100, thresholds=T) == []
    assert sample.detect_small_sample(stats=stats, n_rows=5000, thresholds=T, class_counts=(4000, 1000)) == []
    (f,) = sample.detect_small_sample(stats=stats, n_rows=5000, thresholds=T, class_counts=(4988, 12))
    assert "smallest class has 12" in f.message and "below 30 rows per class" in f.message
    assert f.evidence["smallest_class_rows"] == 12
    assert registry.detector("small_sample") is sample.DETECTOR


def _script(model: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


def _linear(w: list[float], n_out: int = 1) -> torch.nn.Module:
    lin = torch.nn.Linear(len(w), n_out)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([w] * n_out) * torch.tensor([[1.0 if k == 0 else -1.0] for k in range(n_out)]))
        lin.bias.zero_()
    return lin


def test_one_row_cli_run_warns_and_prints_no_ci(tmp_path):
    df = pd.DataFrame({"a": [0.4], "b": [-1.0], "c": [2.0], "target": [1]})
    df.to_csv(tmp_path / "one.csv", index=False)
    model = _script(_linear([1.0, 0.5, 0.2], n_out=2), tmp_path / "m.pt")
    res = runner.invoke(app, ["run", "--model", str(model), "--data", str(tmp_path / "one.csv"), "--target-col",
                              "target", "--out", str(tmp_path / "out"), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert "verdict: WARN" in res.stdout and "small_sample" in res.stdout
    assert "no CI" in res.stdout and "[0.4, 0.4]" not in res.stdout
    run = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert run["verdict"] == "warn"
    assert all(s["ci_low"] is None and s["ci_high"] is None for s in run["features"])


@pytest.mark.parametrize("n", [20, 60])
@pytest.mark.parametrize("shuffled", [False, True])
def test_a_planted_sorted_id_on_few_rows_is_not_a_silent_pass(tmp_path, n, shuffled):
    # record numbers assigned after sorting by outcome; the model leans on them. A file left sorted shows the
    # pattern (identifier_leakage from 20 rows); a shuffled one has none, and small_sample says why not to trust it
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + rng.normal(0, 0.5, n) > 0).astype(int)
    order = np.lexsort((rng.random(n), y))
    record = np.empty(n, dtype=np.int64)
    record[order] = np.arange(n) * 7 + 1000
    df = pd.DataFrame(X, columns=["a", "b", "c"])
    df["record"] = record
    df["target"] = y
    df = df.sample(frac=1.0, random_state=0) if shuffled else df.iloc[order]
    df.to_csv(tmp_path / "d.csv", index=False)
    model = _script(_linear([0.2, 0.1, 0.1, 0.01], n_out=1), tmp_path / "m.pt")
    res = runner.invoke(app, ["run", "--model", str(model), "--data", str(tmp_path / "d.csv"), "--target-col",
                              "target", "--out", str(tmp_path / "out"), "--format", "json", "--quiet",
                              "--n-boot", "50"])
    assert res.exit_code in (0, 1), res.output
    run = json.loads((tmp_path / "out" / "audit.json").read_text())
    codes = {f["code"] for f in run["findings"]}
    assert run["verdict"] != "pass" and "small_sample" in codes
    if not shuffled:
        assert "identifier_leakage" in codes
