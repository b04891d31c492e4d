"""The findings benchmark's corpus and scoring (benchmarks/_findings_corpus.py), independent of the detectors.

Checks that the planted defects are what they say they are, that the models are healthy, and that the summary
arithmetic gives known answers. Detector outcomes are not asserted here (they are what the benchmark measures);
one end-to-end run only checks that the pipeline returns a verdict.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_findings_corpus.py"
_spec = importlib.util.spec_from_file_location("_findings_corpus", _PATH)
corpus = importlib.util.module_from_spec(_spec)
sys.modules["_findings_corpus"] = corpus  # dataclasses look their module up here
_spec.loader.exec_module(corpus)

CaseSpec = corpus.CaseSpec


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


# --- planted defects ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["breast_cancer", "diabetes", "digits"])
def test_leak_is_the_label_plus_small_noise(dataset):
    d = corpus.build_case(CaseSpec(dataset, "mlp", 0, "leak"))
    assert d.planted_feature == "leak" and "leak" in d.names
    for frame in (d.train, d.val):
        assert _corr(frame["leak"], frame["target"]) > 0.99


@pytest.mark.parametrize("dataset", ["digits", "pos_neg_noise", "friedman1"])
@pytest.mark.parametrize("seed", [0, 1])
def test_noise_column_is_a_train_shortcut_and_pure_noise_in_validation(dataset, seed):
    d = corpus.build_case(CaseSpec(dataset, "mlp", seed, "noise"))
    assert len(d.val) >= 300  # enough rows for |corr| < 0.1 to mean something
    assert abs(_corr(d.train["noise_0"], d.train["target"])) > corpus.NOISE_RHO - 0.05
    assert abs(_corr(d.val["noise_0"], d.val["target"])) < 0.1
    # same marginal in both splits (standardised with the train scaler)
    assert abs(d.val["noise_0"].std() - d.train["noise_0"].std()) < 0.15
    assert abs(d.val["noise_0"].mean()) < 0.15


@pytest.mark.parametrize("twin", ["id_raw", "id_scaled"])
@pytest.mark.parametrize("dataset", ["breast_cancer", "diabetes"])
def test_id_column_is_unique_and_ordered_by_target(twin, dataset):
    d = corpus.build_case(CaseSpec(dataset, "mlp", 1, twin))
    for frame in (d.train, d.val):
        ids = frame["row_id"].to_numpy(np.float64)
        assert np.unique(ids).size == ids.size
        assert (np.diff(ids) > 0).all()  # strictly increasing in file order
        assert (np.diff(frame["target"].to_numpy(np.float64)) >= 0).all()  # rows ordered by target
        whole = np.array_equal(ids, np.round(ids))
        assert whole == (twin == "id_raw")
    if twin == "id_raw":
        j = d.names.index("row_id")
        assert d.in_scale[j] > 1.0  # the model standardises the raw column inside itself


def test_slice_twin_flips_the_driving_feature():
    d = corpus.build_case(CaseSpec("diabetes", "mlp", 0, "slice"))
    assert d.slice_col == "group" and "group" not in d.names and "group_b" in d.names
    v = d.val
    assert set(v["group"]) == {"A", "B"}
    assert ((v["group"] == "B").astype(int) == v["group_b"]).all()
    f1, f2 = d.meta["f1"], d.meta["f2"]
    a, b = v[v["group"] == "A"], v[v["group"] == "B"]
    assert _corr(a[f1], a["target"]) > 0.95 and _corr(b[f2], b["target"]) > 0.95
    assert abs(_corr(a[f2], a["target"])) < 0.5 and abs(_corr(b[f1], b["target"])) < 0.5


def test_drift_reference_shifts_the_top_feature(tmp_path):
    d = corpus.build_case(CaseSpec("diabetes", "linear", 0, "drift"))
    t = corpus.train_model(d, max_epochs=30)
    w = corpus.write_case(d, t, tmp_path / "drift")
    ref = pd.read_csv(w["options"]["reference"])
    top = d.planted_feature
    assert top in d.names
    shift = ref[top].mean() - d.train[top].mean()
    assert shift == pytest.approx(corpus.DRIFT_SHIFT * d.train[top].std(), rel=1e-6)
    others = [n for n in d.names if n != top]
    assert np.allclose(ref[others].to_numpy(), d.train[others].to_numpy())
    # the clean twin's reference is the train split itself
    c = corpus.build_case(CaseSpec("diabetes", "linear", 0, "drift_clean"))
    wc = corpus.write_case(c, corpus.train_model(c, max_epochs=5), tmp_path / "clean")
    refc = pd.read_csv(wc["options"]["reference"])
    assert np.allclose(refc[c.names].to_numpy(), c.train[c.names].to_numpy())


# --- models ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "model", "minimum"),
    [
        ("breast_cancer", "mlp", 0.90),
        ("breast_cancer", "mlp_logit1", 0.90),
        ("diabetes", "linear", 0.30),
        ("make_regression", "mlp", 0.90),
    ],
)
def test_models_are_healthy(dataset, model, minimum):
    d = corpus.build_case(CaseSpec(dataset, model, 0))
    t = corpus.train_model(d)
    assert t.quality >= minimum, (dataset, model, t.metric, t.quality)


def test_saved_torchscript_reproduces_the_model(tmp_path):
    d = corpus.build_case(CaseSpec("breast_cancer", "mlp_logit1", 0, "id_raw"))
    t = corpus.train_model(d, max_epochs=5)
    w = corpus.write_case(d, t, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated in favour of torch.export
        loaded = torch.jit.load(str(w["model"]))
    val = pd.read_csv(w["data"])
    X = torch.tensor(val[d.names].to_numpy(np.float32))
    with torch.no_grad():
        assert torch.allclose(loaded(X), t.module(X), atol=1e-6)
    assert corpus.quality(loaded, val[d.names].to_numpy(), val["target"].to_numpy(), "binary", True) == (
        pytest.approx(t.quality)
    )


# --- corpus and scoring -----------------------------------------------------------------------------------


def test_corpus_covers_every_data_set_model_seed_and_twin():
    full = corpus.corpus()
    clean = [s for s in full if s.twin is None]
    assert {s.dataset for s in clean} == set(corpus.DATASETS)
    assert {s.seed for s in full} == {0, 1, 2}
    assert {s.twin for s in full if s.twin} == set(corpus.TWINS)
    assert all(s.model.endswith("logit1") is False or corpus.load_dataset(s.dataset).task == "binary" for s in full)
    assert len({s.label for s in full}) == len(full)
    quick = corpus.corpus(quick=True)
    assert len(quick) < 20 and {s.twin for s in quick if s.twin} == set(corpus.TWINS)


def test_wilson_known_answers():
    lo, hi = corpus.wilson(0, 30)
    assert lo == 0.0 and hi == pytest.approx(0.1135, abs=5e-4)
    lo, hi = corpus.wilson(30, 30)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.1135, abs=5e-4)
    lo, hi = corpus.wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=5e-4) and hi == pytest.approx(0.7634, abs=5e-4)
    assert corpus.wilson(0, 0) == (0.0, 1.0)


def _row(case, kind, verdict, findings, twin="", planted=None):
    return {
        "case": case, "kind": kind, "twin": twin, "planted_code": planted, "verdict": verdict,
        "findings": [{"code": c, "severity": s} for c, s in findings],
    }  # fmt: skip


def test_summarise_counts_false_alarms_detections_and_targets():
    rows = [
        _row("c1", "clean", "pass", []),
        _row("c2", "clean", "warn", [("noise_leakage", "warn"), ("noise_leakage", "info")]),
        _row("c3", "clean", "fail", [("noise_leakage", "fail"), ("noise_leakage", "warn"), ("not_converged", "warn")]),
        _row("c4", "clean", "pass", [("engine_disagreement", "info")], twin="drift_clean"),
        _row("p1", "planted", "fail", [("target_leakage", "fail")], twin="leak", planted="target_leakage"),
        _row("p2", "planted", "pass", [], twin="leak", planted="target_leakage"),
        _row("p3", "planted", "warn", [("drift_skew", "warn")], twin="drift", planted="drift_skew"),
        {**_row("e1", "clean", "error", []), "error": "boom"},
    ]
    s = corpus.summarise(rows, codes=["noise_leakage", "target_leakage"])
    assert s["n_clean"] == 4 and s["n_planted"] == 3 and s["n_errors"] == 1
    noise = s["per_code"]["noise_leakage"]
    assert (noise["clean_warn"]["k"], noise["clean_fail"]["k"], noise["clean_any"]["k"]) == (1, 1, 2)
    assert noise["clean_any"]["n"] == 4 and "caught" not in noise
    assert s["per_code"]["engine_disagreement"]["clean_any"]["k"] == 0  # info is not an alarm
    leak = s["per_code"]["target_leakage"]
    assert (leak["caught"]["k"], leak["caught"]["n"]) == (1, 2)
    assert s["per_code"]["drift_skew"]["caught"]["k"] == 1
    assert s["verdicts_clean"] == {"pass": 2, "warn": 1, "fail": 1}
    assert s["verdicts_clean_default_options"] == {"pass": 1, "warn": 1, "fail": 1}
    assert s["clean_fail_cases"] == [{"case": "c3", "codes": ["noise_leakage"]}]
    assert s["clean_twins_quiet"]["drift_clean"]["k"] == 0
    assert s["targets"] == {"no_fail_on_clean": False, "pass_rate_clean_ge_95": False, "every_planted_caught": False}
    good = corpus.summarise([_row("c", "clean", "pass", []), _row("p", "planted", "warn", [("x", "warn")],
                                                                   twin="t", planted="x")])  # fmt: skip
    assert all(good["targets"].values())


# --- end to end ---------------------------------------------------------------------------------------------


def test_run_audit_end_to_end_on_one_tiny_case(tmp_path):
    from audit.config import AuditConfig
    from audit.pipeline import run_audit

    d = corpus.build_case(CaseSpec("iris", "linear", 0))
    t = corpus.train_model(d, max_epochs=20)
    w = corpus.write_case(d, t, tmp_path)
    run = run_audit(AuditConfig(
        model=w["model"], data=w["data"], target_col="target", formats=("json",), quiet=True, out=tmp_path / "out",
    ))  # fmt: skip
    assert str(getattr(run.verdict, "value", run.verdict)) in ("pass", "warn", "fail")
    assert run.task == "classification"
