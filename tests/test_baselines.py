"""The data-centred default baseline for tables, the baseline sensitivity check and not_converged on raw-scale
tables, end to end through ``audit.run``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from baseline_toys import bump_case, raw_scale_case, shifted_linear_case

import audit

FAST = dict(formats=("json",), crosscheck_rows=0, n_boot=50)


def _severity(run, code):
    s = [f.severity.value for f in run.findings if f.code == code]
    return s[0] if s else None


def test_default_table_baseline_is_the_data_mean_and_audit_json_says_so(tmp_path):
    model, df, _ = shifted_linear_case()
    run = audit.run(model, df, target="target", **FAST)
    assert run.baseline == "data mean" and run.baseline_default is True
    run.save(tmp_path, formats=("json",))
    saved = json.loads((tmp_path / "audit.json").read_text())
    assert saved["baseline"] == "data mean" and saved["baseline_default"] is True
    assert audit.load(tmp_path / "audit.json").baseline_default is True
    explicit = audit.run(model, df, target="target", baseline="zero", **FAST)
    assert explicit.baseline == "zero" and explicit.baseline_default is False


def test_linear_model_ig_at_default_options_is_w_times_x_minus_the_mean():
    """The exact interventional answer w_j (x_j - E x_j), on columns with offsets up to 1000."""
    model, df, w = shifted_linear_case()
    run = audit.run(model, df, target="target", **FAST)
    X = df[[f"x{j}" for j in range(5)]].to_numpy(np.float64)
    mean = X.mean(axis=0).astype(np.float32).astype(np.float64)
    exact = w * (X - mean)  # (n, 5)
    by_name = {s.name: s for s in run.features}
    for j in range(5):
        assert by_name[f"x{j}"].mean_abs == pytest.approx(np.abs(exact[:, j]).mean(), rel=1e-4, abs=1e-6)
    for s in run.signed:  # per row: (value, attribution) pairs of the top features
        j = int(s.name[1:])
        want = w[j] * (np.asarray(s.values) - mean[j])
        np.testing.assert_allclose(s.attributions, want, rtol=1e-4, atol=2e-5)
    # and not the zero baseline's w_j x_j: x0 (offset 1000) would dominate
    assert [s.name for s in run.features[:2]] == ["x2", "x1"]


def test_raw_scale_model_passes_at_default_options_and_zero_warns_with_the_cause():
    model, df = raw_scale_case()
    default = audit.run(model, df, target="target", **FAST)
    assert default.verdict.value == "pass", [(f.code, f.severity.value, f.message) for f in default.findings]
    assert _severity(default, "not_converged") in (None, "info")

    zero = audit.run(model, df, target="target", baseline="zero", **FAST)
    (nc,) = [f for f in zero.findings if f.code == "not_converged"]
    assert nc.severity.value == "warn"  # it was fail (exit 1) on 22% of rows before
    assert nc.evidence["cause"] == "baseline_outside_data" and nc.evidence["columns_outside"] == 6
    assert "the zero baseline lies outside the data on 6 column(s)" in nc.message and "'c" in nc.message
    assert "--baseline mean" in nc.message and nc.evidence["fixed_by_mean"] >= 0.9
    # the zero baseline also moves the ranking: the sensitivity check says so, with the data mean as second
    (bs,) = [f for f in zero.findings if f.code == "baseline_sensitive"]
    assert bs.severity.value == "warn" and bs.evidence["second"] == "data mean"
    assert bs.evidence["ci_high"] < 0.8

    followed = audit.run(model, df, target="target", baseline="mean", **FAST)  # the advice, followed
    assert _severity(followed, "not_converged") in (None, "info")


def test_baseline_sensitive_fires_when_the_ranking_depends_on_the_baseline():
    model, df = bump_case()
    run = audit.run(model, df, target="target", **FAST)
    s = run.baseline_sensitivity
    assert s.chosen == "data mean" and s.second.startswith("expected gradients")
    assert s.top_chosen[0] == "x0" and s.top_second[0] == "x1" and s.top_changed
    (f,) = [f for f in run.findings if f.code == "baseline_sensitive"]
    assert f.severity.value == "warn" and set(f.features) == {"x0", "x1"}
    assert "top feature changes from 'x0' to 'x1'" in f.message and "x0 (" in f.message


def test_baseline_sensitive_is_quiet_on_a_healthy_linear_model():
    model, df, _ = shifted_linear_case()
    run = audit.run(model, df, target="target", **FAST)
    s = run.baseline_sensitivity
    assert s is not None and s.rows == 256 and s.spearman > 0.95 and not s.top_changed
    assert _severity(run, "baseline_sensitive") is None


def test_sensitivity_check_can_be_switched_off():
    model, df, _ = shifted_linear_case(n=120)
    run = audit.run(model, df, target="target", thresholds={"baseline_sensitivity_rows": 0}, **FAST)
    assert run.baseline_sensitivity is None
