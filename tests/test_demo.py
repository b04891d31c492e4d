"""The README's first command: `audit demo` trains the synthetic MLP and audits it end to end."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from audit.cli.main import app
from audit.demo import coefficients, make_synthetic


def test_synthetic_data_has_the_known_coefficients():
    df = make_synthetic(50, seed=3)
    coef = coefficients()
    assert list(df.columns[:-1]) == list(coef)
    assert len(coef) == 96 and coef["pos_00"] == 1 / 32 and coef["neg_31"] == -1.0 and coef["noise_05"] == 0.0
    X = df.drop(columns="target").to_numpy()
    assert X.min() >= -1 and X.max() <= 1
    np.testing.assert_allclose(df["target"], X @ np.array(list(coef.values())), rtol=1e-12)


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(app, ["demo", "--out", str(out), "--rows", "600", "--train-rows", "6000",
                                   "--epochs", "25", "--format", "json,html", "--quiet"])
    assert res.exit_code == 0, res.output
    for name in ("model.pt", "val.csv", "audit.json", "report.html", "attributions.parquet"):
        assert (out / name).is_file(), name
    run = json.loads((out / "audit.json").read_text())
    assert run["verdict"] == "pass", run["findings"]
    codes = {f["code"] for f in run["findings"]}
    assert "noise_leakage" not in codes and "engine_disagreement" not in codes
    assert run["crosscheck"]["passed"] and run["crosscheck"]["rows"] == 256
    # known answer: estimated attribution close to coefficient * (x - 0) per feature
    exp = {e["name"]: e for e in run["expected"]}
    assert len(exp) == 96
    err = [abs(e["estimated_mean_abs"] - e["expected_mean_abs"]) for e in exp.values()]
    assert max(err) < 0.03, max(err)
    # NOISE features carry almost nothing; the ranking follows |coefficient|
    shares = {f["name"]: f["share"] for f in run["features"]}
    assert sum(v for k, v in shares.items() if k.startswith("noise_")) < 0.02
    top10 = [f["name"] for f in run["features"][:10]]
    assert all(n.endswith(("_31", "_30", "_29", "_28", "_27", "_26")) for n in top10), top10
    assert run["declared_noise"] == [f"noise_{i:02d}" for i in range(32)]
