"""Reversed effects in slices (issue 16): a top feature whose local effect changes sign in one segment is flagged by
slice_skew; random segments of a healthy model stay quiet; --slice-col may name a model input."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from audit.analysis import global_ranking, slice_profiles
from audit.cli.main import app
from audit.config import Thresholds
from audit.findings import skew
from audit.results import AuditRun, SliceProfile, from_dict, to_dict

T = Thresholds()
runner = CliRunner()


def _linear_rows(n: int, seed: int, reverse: bool):
    """y = w . x with w_a = +1 in group A and (reverse) -0.8 in group B: IG with a zero baseline is w x per row,
    the gradient is w. Groups are random halves."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    groups = np.where(rng.random(n) < 0.5, "A", "B")
    w = np.tile([1.0, 0.6, 0.3, 0.05], (n, 1))
    if reverse:
        w[groups == "B", 0] = -0.8
    return X, w * X, w, groups  # X, attributions, gradients, groups


def _judge(X, A, G, groups):
    names = ["a", "b", "c", "d"]
    stats = global_ranking(A, names, n_boot=50, seed=0)
    profiles = slice_profiles(A, names, groups, min_rows=30, column="segment", X=X, G=G, seed=0)
    return skew.detect_slice_skew(slices=profiles, stats=stats, thresholds=T), profiles


def test_a_reversed_effect_is_flagged_with_both_directions_and_intervals():
    X, A, G, groups = _linear_rows(600, 0, reverse=True)
    findings, profiles = _judge(X, A, G, groups)
    # the ranking alone sees nothing: |attribution| of 'a' stays the largest in both groups
    assert all(p.top_features[0] == "a" and p.spearman_vs_all > 0.5 for p in profiles)
    (f,) = findings
    assert f.code == "slice_skew" and "a" in f.features
    rev = {r["group"]: r for r in f.evidence["reversed"]}
    assert set(rev) == {"A", "B"} and {r["feature"] for r in rev.values()} == {"a"}
    sd = X[:, 0].std()
    assert rev["B"]["effect"] == pytest.approx(-0.8 * sd, rel=1e-3)  # gradient -0.8 times the feature's sd
    assert rev["B"]["rest_effect"] == pytest.approx(1.0 * sd, rel=1e-3)
    assert rev["B"]["effect_ci"][1] < 0 < rev["B"]["rest_effect_ci"][0]
    assert "other way" in f.message
    assert skew.SLICE_DETECTOR.title(f.evidence) == "A feature's effect reverses in a slice"


@pytest.mark.parametrize("seed", range(5))
def test_random_slices_of_a_healthy_model_are_quiet(seed):
    X, A, G, groups = _linear_rows(600, seed, reverse=False)
    findings, profiles = _judge(X, A, G, groups)
    assert findings == []
    assert all(len(p.directions) == 4 for p in profiles)


def test_healthy_nonlinear_model_with_noisy_gradients_is_quiet_on_random_slices():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 3))
    G = np.column_stack([np.cos(X[:, 0]) + rng.normal(0, 0.5, 2000), np.ones(2000), 0.1 * X[:, 2]])
    A = G * X
    groups = rng.integers(0, 4, 2000)
    names = ["a", "b", "c"]
    stats = global_ranking(A, names, n_boot=50, seed=0)
    profiles = slice_profiles(A, names, groups, min_rows=30, X=X, G=G, seed=1)
    assert skew.detect_slice_skew(slices=profiles, stats=stats, thresholds=T) == []


def test_directions_compare_rows_that_explain_the_same_class():
    # class 0 rows have gradient -1 along 'a', class 1 rows +1; group A holds mostly class 0: pooled, A would
    # read "reversed"; within each class both sides agree
    rng = np.random.default_rng(0)
    n = 800
    X = rng.normal(size=(n, 2))
    groups = np.where(rng.random(n) < 0.5, "A", "B")
    cls = np.where(groups == "A", (rng.random(n) < 0.8).astype(int) * 0, (rng.random(n) < 0.8).astype(int))
    cls = np.where(rng.random(n) < 0.2, 1 - cls, cls)
    G = np.column_stack([np.where(cls == 0, -1.0, 1.0), np.full(n, 0.5)])
    A = G * X
    stats = global_ranking(A, ["a", "b"], n_boot=50, seed=0)
    pooled = slice_profiles(A, ["a", "b"], groups, min_rows=30, X=X, G=G)
    assert skew.detect_slice_skew(slices=pooled, stats=stats, thresholds=T)  # mixing classes misleads
    by_class = slice_profiles(A, ["a", "b"], groups, min_rows=30, X=X, G=G, classes=cls)
    assert skew.detect_slice_skew(slices=by_class, stats=stats, thresholds=T) == []
    assert {d.explained for p in by_class for d in p.directions} <= {"0", "1"}


def test_directions_round_trip_through_json_and_old_profiles_still_load():
    X, A, G, groups = _linear_rows(200, 0, reverse=True)
    (p, _) = slice_profiles(A, ["a", "b", "c", "d"], groups, min_rows=30, X=X, G=G)
    back = from_dict(SliceProfile, json.loads(json.dumps(to_dict(p))))
    assert back == p
    old = {k: v for k, v in to_dict(p).items() if k != "directions"}
    assert from_dict(SliceProfile, old).directions == ()


# --- end to end: a segment column that is a model input ---------------------------------------------------


class _Reversed(torch.nn.Module):
    """Columns a, b, segment, c, d (fixed width 5): the output is a (1 - 1.5 segment) + 0.5 b + 0.1 c."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(5, 5)
        with torch.no_grad():
            self.lin.weight.copy_(torch.eye(5))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lin(x)
        return x[:, 0] * (1.0 - 1.5 * x[:, 2]) + 0.5 * x[:, 1] + 0.1 * x[:, 3]


def _script(model: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(model.eval()), str(path))
    return path


@pytest.fixture()
def segment_case(tmp_path: Path):
    rng = np.random.default_rng(0)
    n = 400
    X = rng.normal(size=(n, 4))
    seg = rng.integers(0, 2, n)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df.insert(2, "segment", seg)
    df["target"] = X[:, 0] * np.where(seg == 1, -0.5, 1.0) + 0.5 * X[:, 1]
    data = tmp_path / "seg.csv"
    df.to_csv(data, index=False)
    return data, tmp_path


def _run(*args: str):
    return runner.invoke(app, ["run", *args, "--quiet", "--format", "json", "--n-boot", "50"])


def test_slice_col_naming_a_model_input_stays_a_feature_and_the_reversal_is_flagged(segment_case):
    data, tmp = segment_case
    model = _script(_Reversed(), tmp / "rev.pt")
    res = _run("--model", str(model), "--data", str(data), "--target-col", "target", "--slice-col", "segment",
               "--out", str(tmp / "out"))
    assert res.exit_code == 0, res.output
    run = from_dict(AuditRun, json.loads((tmp / "out" / "audit.json").read_text()))
    assert {s.name for s in run.features} == {"a", "b", "segment", "c", "d"}
    assert any("also a model input" in n for n in run.notes)
    assert sorted(p.group for p in run.slices) == ["0", "1"]
    (f,) = [f for f in run.findings if f.code == "slice_skew"]
    assert {r["feature"] for r in f.evidence["reversed"]} == {"a"}
    # the segment column is constant within each group: it gets no direction of its own
    assert all("segment" not in {d.feature for d in p.directions} for p in run.slices)


def test_slice_col_that_is_not_an_input_is_still_a_slice(segment_case):
    data, tmp = segment_case
    lin = torch.nn.Linear(4, 1)
    model = _script(lin, tmp / "lin4.pt")
    res = _run("--model", str(model), "--data", str(data), "--target-col", "target", "--slice-col", "segment",
               "--out", str(tmp / "out"))
    assert res.exit_code == 0, res.output
    run = json.loads((tmp / "out" / "audit.json").read_text())
    assert [s["name"] for s in run["features"]] and "segment" not in {s["name"] for s in run["features"]}
    assert sorted(p["group"] for p in run["slices"]) == ["0", "1"]


def test_a_width_mismatch_names_the_slice_column(segment_case):
    data, tmp = segment_case
    model = _script(torch.nn.Linear(3, 1), tmp / "lin3.pt")
    res = runner.invoke(app, ["run", "--model", str(model), "--data", str(data), "--target-col", "target",
                              "--slice-col", "segment", "--out", str(tmp / "out"), "--quiet"])
    assert res.exit_code == 3, res.output
    line = res.stderr.strip()
    assert line.startswith("audit: error: the model takes 3 inputs and the file has 4 feature columns")
    assert "'segment' (--slice-col)" in line and "\n" not in line and "Traceback" not in res.output


def test_the_report_shows_each_slices_direction_and_marks_a_reversal():
    from report_fixtures import make_regression_run

    from audit.report.sections import slices as slices_section

    X, A, G, groups = _linear_rows(600, 0, reverse=True)
    profiles = slice_profiles(A, ["a", "b", "c", "d"], groups, min_rows=30, column="segment", X=X, G=G)
    import dataclasses

    run = dataclasses.replace(make_regression_run(), slices=profiles)
    built = slices_section.build(run)
    assert built["has_directions"]
    by_group = {r["group"]: r for r in built["rows"]}
    assert by_group["B"]["reversed"] and by_group["B"]["directions"][0]["reversed"]
    assert by_group["B"]["directions"][0]["text"].startswith("a −0.8")  # a typographic minus
    from audit.report import render_html

    html = render_html(run)
    assert "Direction: effect of +1 sd here" in html and "reversed</span>" in html


def test_slices_are_attributed_against_their_own_mean_so_a_switch_on_the_segment_is_seen():
    """out = (1 - s) x1 + s x2 with s the 0/1 segment column: within segment 0 only x1 matters, within 1 only x2.
    From the data mean (s = 0.5) both segments' paths cross the switch and their profiles mixed x1 and x2; against
    each segment's own mean the profiles are the known answer."""
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    import audit

    class Switch(nn.Module):
        def __init__(self):
            super().__init__()
            self.inputs = nn.Linear(4, 4, bias=False)  # the identity: says the model takes all 4 columns
            with torch.no_grad():
                self.inputs.weight.copy_(torch.eye(4))

        def forward(self, x):
            x = self.inputs(x)
            s = x[:, 0]
            return ((1 - s) * x[:, 1] + s * x[:, 2])[:, None]

    rng = np.random.default_rng(0)
    n = 400
    seg = (rng.random(n) < 0.5).astype(float)
    df = pd.DataFrame({"seg": seg, "x1": rng.normal(0, 1, n), "x2": rng.normal(0, 1, n), "x3": rng.normal(0, 1, n)})
    df["y"] = (1 - seg) * df.x1 + seg * df.x2
    torch.manual_seed(0)
    run = audit.run(Switch(), df, target="y", slice_col="seg", formats=("json",), crosscheck_rows=16, n_boot=50)
    prof = {p.group: p for p in run.slices}
    assert prof["0.0"].shares["x2"] < 0.01 < 0.9 < prof["0.0"].shares["x1"]
    assert prof["1.0"].shares["x1"] < 0.01 < 0.9 < prof["1.0"].shares["x2"]
    assert any(f.code == "slice_skew" for f in run.findings)
