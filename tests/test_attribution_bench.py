"""`audit bench` and its timing core: the figures are there, consistent, and of the same computation."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import toy_models as tm
from typer.testing import CliRunner

from audit.bench import bench, default_model_and_rows, format_table
from audit.cli.main import app
from audit.errors import AttributionError

KEYS = ("native_rows_per_s", "captum_best_rows_per_s", "captum_default_rows_per_s", "ceiling_rows_per_s")


def test_bench_reports_every_contender_and_consistent_ratios() -> None:
    model, x = default_model_and_rows(24)
    res = bench(model, x, n_steps=4, repeats=2, captum_candidates=(8, 32))
    assert all(res[k] > 0 for k in KEYS)
    assert res["native_vs_ceiling"] == pytest.approx(res["native_rows_per_s"] / res["ceiling_rows_per_s"])
    assert res["native_vs_captum_best"] == pytest.approx(res["native_rows_per_s"] / res["captum_best_rows_per_s"])
    # "best" is the best of every setting tried, Captum's default (n_rows * n_steps points) included
    assert set(res["captum_by_internal_batch_size"]) == {"8", "24", "32", "96"}
    assert res["captum_best_rows_per_s"] == max(res["captum_by_internal_batch_size"].values())
    assert res["captum_best_rows_per_s"] >= res["captum_default_rows_per_s"]
    assert res["points_per_row"] == 6  # 4 Gauss-Legendre nodes + the end points that give F(x) and F(x')
    assert res["max_rel_diff_vs_captum"] < 1e-4  # both engines computed the same attributions
    assert res["rows"] == 24 and res["n_steps"] == 4 and res["device"] == "cpu"
    assert "native (ours)" in format_table(res) and "ceiling" in format_table(res)


def test_bench_takes_images_and_multi_output_models_and_skips_an_oversized_default() -> None:
    model = tm.tiny_cnn()
    x = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    res = bench(model, x, n_steps=3, method="riemann_trapezoid", repeats=1, captum_candidates=(),
                captum_default_max_mb=1e-6)  # fmt: skip
    assert res["feature_shape"] == [3, 8, 8]
    assert res["points_per_row"] == 3  # the trapezoid already holds both end points
    assert res["captum_default_rows_per_s"] is None
    assert any("would need about" in n for n in res["notes"])
    assert any("predicted class" in n for n in res["notes"])
    # Captum's trapezoid is (n-1)/n times ours: the bench shows that difference instead of hiding it
    assert res["max_rel_diff_vs_captum"] == pytest.approx(1 / 3, rel=1e-3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_steps": 0}, "n_steps must be a whole number >= 1"), ({"repeats": 0}, "repeats must be"),
     ({"method": "simpson"}, "unknown integration method"), ({"device": "tpu"}, "unknown device 'tpu'")],
)  # fmt: skip
def test_bench_bad_arguments(kwargs: dict, match: str) -> None:
    model, x = default_model_and_rows(4)
    with pytest.raises(AttributionError, match=match):
        bench(model, x, **kwargs)


def test_cli_bench_default_json_has_the_four_figures() -> None:
    result = CliRunner().invoke(app, ["bench", "--rows", "16", "--n-steps", "4", "--repeats", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert all(data[k] > 0 for k in KEYS) and data["rows"] == 16 and data["feature_shape"] == [96]


def test_cli_bench_loads_a_checkpoint_and_a_table(tmp_path) -> None:
    model = tm.mlp((3, 8, 1), seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(model, torch.zeros(2, 3)), str(tmp_path / "m.pt"))
    rows = "\n".join(f"{i},{i % 3},{i / 7:.3f},{i % 2}" for i in range(12))
    (tmp_path / "d.csv").write_text("a,b,c,y\n" + rows + "\n")
    args = ["bench", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "d.csv"), "--target-col", "y",
            "--n-steps", "3", "--repeats", "1", "--rows", "10"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "10 rows of shape (3,)" in result.stdout and "Captum, best internal_batch_size" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--model", "m.pt"], "pass both --model and --data"), (["--rows", "0"], "--rows must be at least 1"),
     (["--n-steps", "-2", "--rows", "4"], "n_steps must be a whole number >= 1")],
)  # fmt: skip
def test_cli_bench_errors_are_one_line_with_exit_code_2(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def _classifier_case(tmp_path) -> tuple[str, str]:
    """A 3-class TorchScript MLP on 4 features and a CSV of those 4 features plus a 'label' column."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model), str(tmp_path / "m.pt"))
    rows = "\n".join(f"{i / 10:.2f},{(i * 7) % 5 / 5:.2f},{-i / 9:.2f},{i % 3 - 1},{i % 3}" for i in range(24))
    (tmp_path / "d.csv").write_text("a,b,c,d,label\n" + rows + "\n")
    return str(tmp_path / "m.pt"), str(tmp_path / "d.csv")


FAST = ["--rows", "16", "--repeats", "1", "--n-steps", "4"]


def test_cli_bench_names_the_feature_mismatch_of_a_classifier_table(tmp_path) -> None:
    model, data = _classifier_case(tmp_path)
    result = CliRunner().invoke(app, ["bench", "--model", model, "--data", data, *FAST])
    assert result.exit_code == 3, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("audit: error: the model takes 4 inputs and the file has 5 feature columns")
    assert "--target-col" in lines[0] and "--drop" in lines[0]


def test_cli_bench_times_a_classifier_on_each_rows_predicted_class(tmp_path) -> None:
    model, data = _classifier_case(tmp_path)
    result = CliRunner().invoke(app, ["bench", "--model", model, "--data", data, "--target-col", "label", *FAST,
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    res = json.loads(result.stdout)
    assert res["rows"] == 16 and res["feature_shape"] == [4]
    assert any("predicted class" in n for n in res["notes"])
    assert res["max_rel_diff_vs_captum"] < 1e-4  # both engines explained the same class of each row


def test_bench_runs_a_float64_classifier_in_its_own_dtype() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)).double().eval()
    x = torch.rand(8, 4, generator=torch.Generator().manual_seed(0))  # float32 rows
    res = bench(model, x, n_steps=4, repeats=1, captum_candidates=(), captum_default=False)
    assert res["native_rows_per_s"] > 0 and res["max_rel_diff_vs_captum"] < 1e-6


def test_bench_prints_the_spread_of_interleaved_rounds_and_warns_when_busy(monkeypatch) -> None:
    """A busy machine once gave 29x where the README says ~5x: every round's ratio is kept, the spread printed,
    and a load average above the core count is a warning (no failure)."""
    import os

    import audit.bench as b

    model, x = default_model_and_rows(24)
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 64.0, 64.0))
    res = bench(model, x, n_steps=4, repeats=3, captum_candidates=(8, 32), captum_default=False)
    assert len(res["ratio_rounds"]) == 3 and res["ratio_min"] <= res["ratio_median"] <= res["ratio_max"]
    assert res["load_average"] == 64.0 and res["cores"] == os.cpu_count()
    table = format_table(res)
    assert "per round (3 interleaved): min" in table and "median" in table
    assert any(w.startswith("the machine is busy (load average 64.0 on") for w in res["warnings"])
    assert "warning: the machine is busy" in table
    assert b.honesty_warnings([4.0, 5.0, 9.0], 0.5, 2) == [
        "the rounds disagree: native / Captum best ranged 4.00x to 9.00x; trust the median, or rerun with more "
        "--repeats on a quieter machine"]
    assert b.honesty_warnings([4.8, 5.0, 5.2], 0.5, 2) == []  # a quiet machine, consistent rounds: nothing
