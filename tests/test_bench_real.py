"""The real-table corpus (benchmarks/_real_corpus.py, issue 16), independent of the detectors.

Checks that the tables keep their raw scale, that the one-hot blocks and the missing-value handling are what the
docstring says, that every plant is what it says it is (in both splits), that the models are healthy, and that
the scoring gives known answers. Detector outcomes are not asserted here: they are what the benchmark measures.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "_real_corpus.py"
_spec = importlib.util.spec_from_file_location("_real_corpus", _PATH)
rc = importlib.util.module_from_spec(_spec)
sys.modules["_real_corpus"] = rc  # dataclasses look their module up here
_spec.loader.exec_module(rc)

S = rc.CaseSpec


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _corr(a, b) -> float:
    return float(np.corrcoef(np.asarray(a, float), np.asarray(b, float))[0, 1])


def _splits(d):
    return (d.train, d.val)


def test_corpus_module_does_not_import_audit():
    tree = ast.parse(_PATH.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "audit" for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert (node.module or "").split(".")[0] != "audit"


# --- tables: raw scale, one-hot, missing values ----------------------------------------------------------


def test_sklearn_tables_keep_their_raw_values():
    from sklearn import datasets as skd

    d = rc.build_case(S("breast_cancer", "std_mlp", 0))
    raw = skd.load_breast_cancer()
    full = pd.concat([d.train, d.val])
    assert len(full) == raw.data.shape[0]
    # the CSV holds the raw measurements: the sorted columns equal sklearn's
    assert np.allclose(np.sort(full["worst_area"]), np.sort(raw.data[:, list(raw.feature_names).index("worst area")]))
    assert full["worst_area"].max() > 1000 and full["mean_smoothness"].max() < 1  # scales 4 orders apart
    dia = pd.concat(_splits(rc.build_case(S("diabetes", "std_mlp", 0))))
    assert set(dia["sex"]) == {1.0, 2.0} and dia["age"].between(18, 80).all() and dia["target"].max() > 300


def test_penguins_one_hot_and_rows_with_missing_values_dropped():
    t = rc.load_table("penguins")
    assert t.meta["rows_raw"] == 344 and len(t.X) == 333 and t.meta["rows_dropped_na"] == 11
    assert not t.X.isna().any().any()
    assert t.onehot == {"island": ["island_Biscoe", "island_Dream", "island_Torgersen"],
                        "sex": ["sex_female", "sex_male"]}  # fmt: skip
    d = rc.build_case(S("penguins", "bn_mlp", 1))
    for frame in _splits(d):
        for cols in d.onehot.values():
            assert set(np.unique(frame[cols].to_numpy())) <= {0, 1}
            assert (frame[cols].sum(axis=1) == 1).all()  # one level per row
        assert frame["body_mass_g"].min() > 2000 and frame["year"].min() >= 2007  # raw grams, calendar years


def test_fair_one_hot_blocks_are_separate_and_the_target_is_any_affair():
    t = rc.load_table("fair")
    assert len(t.X) == rc.SUBSAMPLE
    assert t.onehot["occupation"] == [f"occupation_{i}" for i in range(1, 7)]
    assert t.onehot["occupation_husb"] == [f"occupation_husb_{i}" for i in range(1, 7)]
    for cols in t.onehot.values():
        assert (t.X[cols].sum(axis=1) == 1).all()
    assert 0.28 < t.y.mean() < 0.36  # affairs > 0 in 32% of the full table


def test_randhie_is_the_imbalanced_table():
    t = rc.load_table("randhie")
    assert t.task == "binary" and 0.10 <= t.y.mean() <= 0.20


# --- plants ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["fair", "randhie", "anes96"])
def test_followup_column_is_zero_for_exactly_one_class(dataset):
    d = rc.build_case(S(dataset, "std_mlp", 1, "followup"))
    assert d.planted_feature == "followup_days"
    event = d.meta["event_class"]
    for frame in _splits(d):
        f, y = frame["followup_days"], frame["target"]
        assert (f[y != event] == 0).all()  # missing for the other class, filled with 0
        days = f[y == event]
        assert days.between(*rc.FOLLOWUP_DAYS).all() and (days == days.round()).all()
        assert days.nunique() > 50  # spread within the class, not a copy of the label
    y = pd.concat(_splits(d))["target"]
    assert (y == event).mean() < 0.5  # the event is the rarer class


def test_label_noise_is_the_label_plus_the_stated_noise():
    d = rc.build_case(S("fair", "std_mlp", 0, "label_noise"))
    resid = pd.concat(_splits(d)).eval("score - target")
    assert abs(resid.std() - rc.NOISE_SIGMA) < 0.01 and abs(resid.mean()) < 0.01


@pytest.mark.parametrize(("dataset", "column"), [("diabetes", "exp_target"), ("fair", "status_code")])
def test_monotone_transform_orders_the_rows_as_the_target(dataset, column):
    d = rc.build_case(S(dataset, "std_mlp", 0, "monotone"))
    assert d.planted_feature == column
    for frame in _splits(d):
        if dataset == "diabetes":
            assert frame[column].corr(frame["target"], method="spearman") == pytest.approx(1.0)
            assert frame[column].max() / frame[column].min() > 20  # a strongly skewed transform
        else:
            lo = frame.loc[frame["target"] == 1, column].min()
            assert lo > frame.loc[frame["target"] == 0, column].max()  # separates the classes
            assert (frame[column] - rc.CODE_STEP * frame["target"]).abs().max() < 6 * rc.CODE_NOISE


@pytest.mark.parametrize(("twin", "share"), [("partial97", 0.97), ("partial99", 0.99)])
@pytest.mark.parametrize("dataset", ["fair", "penguins", "diabetes"])
def test_partial_leak_holds_on_the_stated_share_of_rows(twin, share, dataset):
    d = rc.build_case(S(dataset, "std_mlp", 2, twin))
    for frame in _splits(d):
        agree = (frame["label_copy"] == frame["target"]).to_numpy()
        assert abs(agree.mean() - share) <= 1.0 / len(frame) + 1e-12
        if d.task != "regression":
            assert set(np.unique(frame["label_copy"])) <= set(np.unique(frame["target"]))  # wrong rows: a class


@pytest.mark.parametrize("dataset", ["fair", "penguins", "wine"])
def test_categorical_leak_maps_one_level_to_one_class(dataset):
    d = rc.build_case(S(dataset, "raw_mlp", 0, "category"))
    cols = d.onehot["decision"]
    assert len(cols) == d.n_classes and d.planted_feature == cols[0]
    for frame in _splits(d):
        block = frame[cols].to_numpy()
        assert (block.sum(axis=1) == 1).all()
        assert np.array_equal(block.argmax(axis=1), frame["target"].to_numpy())


@pytest.mark.parametrize("dataset", ["fair", "diabetes"])
def test_shuffled_id_is_a_permutation_that_separates_the_classes(dataset):
    d = rc.build_case(S(dataset, "std_mlp", 1, "shuffled_id"))
    both = pd.concat(_splits(d))
    rec = both["record_no"].to_numpy()
    assert np.array_equal(np.sort(rec), rc.ID_START + np.arange(len(both)))  # unique, whole, contiguous
    for frame in _splits(d):
        r = frame["record_no"].to_numpy(np.float64)
        assert abs(_corr(np.arange(r.size), r)) < 0.2  # the file is shuffled: not in id order
        assert frame["record_no"].corr(frame["target"], method="spearman") > 0.8
        if d.task == "binary":
            g = frame.groupby("target")["record_no"]
            assert g.max()[0] < g.min()[1]  # the ids separate the classes exactly
        else:
            s = frame.sort_values("record_no")["target"].to_numpy()
            assert (np.diff(s) >= 0).all()  # sorted by id = sorted by outcome


@pytest.mark.parametrize("dataset", ["diabetes", "anes96", "fair"])
def test_reversed_slice_flips_the_top_features_effect(dataset):
    d = rc.build_case(S(dataset, "std_mlp", 0, "reversed_slice"))
    top = d.meta["mirrored"]
    assert d.slice_col == "segment" and "segment" not in d.names and "segment_b" in d.names and top in d.names
    train = d.train
    a, b = train[train["segment"] == "A"], train[train["segment"] == "B"]
    ra, rb = _corr(a[top], a["target"]), _corr(b[top], b["target"])
    assert ra * rb < 0 and min(abs(ra), abs(rb)) > 0.15  # same strength, opposite sign
    assert ((train["segment"] == "B").astype(int) == train["segment_b"]).all()
    raw = rc.load_table(dataset).X[top].to_numpy(np.float64)
    lo, hi = raw.min(), raw.max()
    both = pd.concat(_splits(d))
    seg_a = both.loc[both["segment"] == "A", top].to_numpy()
    seg_b = both.loc[both["segment"] == "B", top].to_numpy()
    assert np.isin(np.round(seg_a, 6), np.round(raw, 6)).all()  # A: the raw values, untouched
    assert np.isin(np.round(lo + hi - seg_b, 6), np.round(raw, 6)).all()  # B: mirrored within the raw range
    assert lo - 1e-9 <= both[top].min() and both[top].max() <= hi + 1e-9


def test_clean_slice_twin_has_a_random_segment_and_nothing_mirrored():
    d = rc.build_case(S("diabetes", "std_mlp", 0, "slice_clean"))
    assert d.slice_col == "segment" and "mirrored" not in d.meta and d.planted_feature is None
    a = d.train[d.train["segment"] == "A"]
    b = d.train[d.train["segment"] == "B"]
    assert _corr(a["bmi"], a["target"]) > 0.3 and _corr(b["bmi"], b["target"]) > 0.3


def test_strong_only_keeps_the_strong_feature_first():
    d = rc.build_case(S("iris", "std_mlp", 0, "strong_only"))
    assert d.names == ["petal_width_cm", "sepal_length_cm", "sepal_width_cm"] and d.meta["strong"] == d.names[0]
    p = rc.build_case(S("penguins", "std_mlp", 0, "strong_only"))
    assert p.onehot == {"sex": ["sex_female", "sex_male"]} and "island_Biscoe" not in p.names


def test_small_sample_cases_audit_nested_rows_of_their_base_case():
    base = rc.build_case(S("fair", "std_mlp", 0, "shuffled_id"))
    subsets = {n: rc.build_case(S("fair", "std_mlp", 0, "small_id", n)) for n in rc.SMALL_SIZES}
    for n, d in subsets.items():
        assert len(d.val) == n and d.train.equals(base.train) and d.planted_feature == "record_no"
        assert d.val["record_no"].isin(base.val["record_no"]).all()
    assert set(subsets[20].val["record_no"]) <= set(subsets[60].val["record_no"]) <= set(subsets[200].val["record_no"])
    clean = rc.build_case(S("breast_cancer", "std_mlp", 0))
    small = rc.build_case(S("breast_cancer", "std_mlp", 0, "small", 20))
    assert small.train.equals(clean.train) and small.spec.kind == "clean" and small.spec.base == clean.spec


# --- models -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "model", "minimum", "min_auc"),
    [
        ("breast_cancer", "std_mlp", 0.95, 0.98),
        ("breast_cancer", "raw_mlp", 0.88, 0.95),
        ("penguins", "bn_mlp", 0.95, None),
        ("diabetes", "std_linear", 0.35, None),
        ("fair", "std_linear", 0.68, 0.68),
    ],
)
def test_models_are_healthy(dataset, model, minimum, min_auc):
    d = rc.build_case(S(dataset, model, 0))
    t = rc.train_model(d)
    assert t.quality >= minimum, (dataset, model, t.metric, t.quality)
    if min_auc is not None:
        assert t.auc >= min_auc
    assert t.single_logit == (model == "std_linear" and d.task == "binary")


def test_model_kinds_normalise_as_stated(tmp_path):
    d = rc.build_case(S("wine", "std_mlp", 0))
    t = rc.train_model(d, max_epochs=3)
    X = d.train[d.names].to_numpy(np.float64)
    assert np.allclose(t.module.pre.mean.numpy(), X.mean(0), rtol=1e-5)
    assert np.allclose(t.module.pre.std.numpy(), X.std(0), rtol=1e-5)
    bn = rc.train_model(rc.build_case(S("wine", "bn_mlp", 0)), max_epochs=3).module
    assert isinstance(bn.pre, torch.nn.BatchNorm1d) and not bn.pre.training  # eval mode when audited
    raw = rc.train_model(rc.build_case(S("wine", "raw_mlp", 0)), max_epochs=3).module
    assert isinstance(raw.pre, torch.nn.Identity)
    # eval-mode BatchNorm: a row's output does not depend on the other rows in the batch
    x = torch.tensor(d.val[d.names].to_numpy(np.float32))
    with torch.no_grad():
        assert torch.allclose(bn(x)[:1], bn(x[:1]), atol=1e-5)


def test_saved_torchscript_reproduces_the_model_and_the_csv_is_raw(tmp_path):
    d = rc.build_case(S("penguins", "bn_mlp", 0, "category"))
    t = rc.train_model(d, max_epochs=5)
    w = rc.write_case(d, t, tmp_path)
    assert w["options"] == {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(w["model"]))
    val = pd.read_csv(w["data"])
    assert list(val.columns) == d.names + ["target"]
    assert np.allclose(val[d.names].to_numpy(), d.val[d.names].to_numpy())  # written as is, not standardised
    X = torch.tensor(val[d.names].to_numpy(np.float32))
    with torch.no_grad():
        assert torch.allclose(loaded(X), t.module(X), atol=1e-5)
    s = rc.build_case(S("diabetes", "std_mlp", 0, "reversed_slice"))
    ws = rc.write_case(s, rc.train_model(s, max_epochs=2), tmp_path / "slice")
    assert ws["options"] == {"slice_col": "segment"} and "segment" in pd.read_csv(ws["data"]).columns


def test_a_small_sample_case_reuses_its_base_model():
    base = rc.build_case(S("iris", "std_linear", 2))
    small = rc.build_case(S("iris", "std_linear", 2, "small", 20))
    a, b = rc.train_model(base, max_epochs=4), rc.train_model(small, max_epochs=4)
    assert a.module is b.module and len(small.val) == 20


# --- corpus and scoring ---------------------------------------------------------------------------------------


def test_corpus_covers_every_table_model_seed_and_twin():
    full = rc.corpus()
    clean = [s for s in full if s.twin is None]
    assert {(s.dataset, s.model) for s in clean} == {
        (t, m) for t in rc.DATASETS for m in rc.MODELS if (t, m) not in rc.EXCLUDED
    }
    assert {s.seed for s in full} == {0, 1, 2}
    twins = {s.twin for s in full if s.twin}
    assert twins == set(rc.PLANTS) | set(rc.QUIET)
    assert {s.n_audit for s in full if s.n_audit} == set(rc.SMALL_SIZES)
    assert len({s.label for s in full}) == len(full)
    for s in full:  # every small case has a base case in the corpus (its model is trained once)
        assert s.n_audit is None or s.base in set(full)
    quick = rc.corpus(quick=True)
    assert len(quick) < 30 and {s.twin for s in quick if s.twin} == twins


def test_wilson_known_answers():
    lo, hi = rc.wilson(0, 30)
    assert lo == 0.0 and hi == pytest.approx(0.1135, abs=5e-4)
    lo, hi = rc.wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=5e-4) and hi == pytest.approx(0.7634, abs=5e-4)


def _row(case, kind, verdict, findings, twin="", n=None, model="std_mlp"):
    return {"case": case, "kind": kind, "twin": twin, "n_audit": n, "verdict": verdict, "model": model, "dataset": "t",
            "findings": [{"code": c, "severity": s} for c, s in findings]}  # fmt: skip


def test_summarise_counts_severities_small_samples_and_targets():
    rows = [
        _row("c1", "clean", "pass", []),
        _row("c2", "clean", "warn", [("small_sample", "warn")], twin="small", n=20),
        _row("c3", "clean", "warn", [("target_leakage", "warn")], twin="strong_only"),
        _row("c4", "clean", "fail", [("not_converged", "fail")], model="raw_mlp"),
        _row("p1", "planted", "fail", [("target_leakage", "fail")], twin="followup"),
        _row("p2", "planted", "warn", [("target_leakage", "warn")], twin="followup"),  # warn: not a catch
        _row("p3", "planted", "fail", [("identifier_leakage", "fail")], twin="shuffled_id"),
        _row("p4", "planted", "warn", [("small_sample", "warn")], twin="small_id", n=20),
        _row("p5", "planted", "warn", [("slice_skew", "warn")], twin="reversed_slice"),
        {**_row("e1", "clean", "error", []), "error": "boom"},
    ]
    s = rc.summarise(rows, codes=["target_leakage"])
    assert (s["n_clean"], s["n_planted"], s["n_errors"], s["n_clean_counted"]) == (4, 5, 1, 3)
    assert s["verdicts_clean_counted"] == {"pass": 1, "warn": 1, "fail": 1}  # the small_sample case left out
    assert s["pass_rate_clean"]["k"] == 1 and s["pass_rate_clean"]["n"] == 3
    pp = s["per_plant"]
    assert (pp["followup"]["caught"]["k"], pp["followup"]["raised"]["k"], pp["followup"]["caught"]["n"]) == (1, 2, 2)
    assert pp["shuffled_id"]["caught"]["k"] == 1  # identifier_leakage counts for a shuffled id
    assert pp["small_id/n20"]["caught"]["k"] == 0 and pp["small_id/n20"]["small_sample"]["k"] == 1
    assert pp["reversed_slice"]["caught"]["k"] == 1  # warn is enough for a slice
    assert s["per_plant_table"]["followup/t/std_mlp"]["caught"] == pp["followup"]["caught"]
    tl = s["per_code"]["target_leakage"]
    assert tl["clean_warn"]["k"] == 1 and tl["clean_fail"]["k"] == 0
    assert (tl["planted_raised"]["k"], tl["planted_fail"]["k"], tl["planted_raised"]["n"]) == (2, 1, 4)
    assert s["quiet_twins"]["strong_only"]["alarm"]["k"] == 1 and s["quiet_twins"]["strong_only"]["fail"]["k"] == 0
    assert s["not_converged_fail_healthy"] == 1
    assert not any(s["targets"].values())
    assert set(s["targets"]) == {"no_fail_on_clean", "pass_rate_clean_ge_95", "every_leak_caught_as_fail",
                                 "not_converged_never_fail_on_healthy"}  # fmt: skip
    good = rc.summarise([_row("c", "clean", "pass", []),
                         _row("p", "planted", "fail", [("target_leakage", "fail")], twin="category")])  # fmt: skip
    assert all(good["targets"].values())
