"""Captum adapter and cross-check: native = Captum for every shared method, the trapezoid bias predicted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import toy_models as tm
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.attribution.captum_ig import POINTS_PER_FORWARD, best_internal_batch_size, captum_attribute
from audit.attribution.crosscheck import crosscheck, sample_rows, spearman
from audit.attribution.native import integrated_gradients
from audit.attribution.quadrature import METHODS
from audit.errors import AttributionError
from audit.results import Crosscheck, from_dict, to_dict

SETTINGS = settings(derandomize=True, max_examples=15, deadline=None)
SHARED = [m for m in METHODS if m != "riemann_trapezoid"]  # the rules Captum implements as textbook ones


def _rows(seed: int, n: int, d: int) -> torch.Tensor:
    return 2.0 * torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


# --- the adapter ----------------------------------------------------------------------------------------------


@settings(derandomize=True, max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), method=st.sampled_from(SHARED), n_steps=st.integers(2, 24),
       ibs=st.sampled_from([None, 1, 7, 64, 10_000]))  # fmt: skip
def test_native_equals_captum_for_every_shared_method(seed: int, method: str, n_steps: int, ibs: int | None) -> None:
    model = tm.mlp((5, 12, 3), seed=seed % 5)
    x, target = _rows(seed, 9, 5), torch.arange(9) % 3
    ours = integrated_gradients(model, x, target=target, method=method, n_steps=n_steps)
    attr, delta = captum_attribute(model, x, target=target, method=method, n_steps=n_steps, internal_batch_size=ibs)
    scale = ours.attributions.abs().amax(dim=1, keepdim=True)
    assert ((attr - ours.attributions).abs() <= 1e-4 * scale + 1e-6).all()
    torch.testing.assert_close(delta, ours.delta, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("n_steps", [2, 10, 50])
def test_captum_trapezoid_is_short_by_one_over_n_on_a_linear_model(n_steps: int) -> None:
    model, x = tm.linear([1.0, -2.0, 0.5]), _rows(0, 4, 3)
    ours = integrated_gradients(model, x, method="riemann_trapezoid", n_steps=n_steps)
    attr, delta = captum_attribute(model, x, method="riemann_trapezoid", n_steps=n_steps)
    torch.testing.assert_close(attr, ours.attributions * (n_steps - 1) / n_steps, rtol=1e-5, atol=1e-6)
    span = ours.f_x - ours.f_baseline
    torch.testing.assert_close(delta, -span / n_steps, rtol=1e-4, atol=1e-5)  # its completeness error: -1/n
    assert ours.rel_delta.max() < 1e-5  # ours: exact


def test_adapter_handles_1d_outputs_int_targets_and_per_row_baselines() -> None:
    model, x = tm.IGPaperNet(), torch.tensor([[3.0, 1.0], [2.0, 0.5]])
    attr, _ = captum_attribute(model, x, baselines=torch.zeros(2, 2), n_steps=50)
    torch.testing.assert_close(attr[0], torch.tensor([1.5, -0.5]), rtol=0, atol=1e-6)
    multi = tm.linear([1.0, 1.0], n_outputs=2)
    attr2, _ = captum_attribute(multi, x, target=1, baselines=0.5, n_steps=4)
    torch.testing.assert_close(attr2, 2.0 * (x - 0.5), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "simpson"}, "unknown integration method"),
        ({"n_steps": 0}, "n_steps must be at least 1"),
        ({"method": "riemann_left", "n_steps": 1}, "Captum's riemann_left needs n_steps at least 2"),
        ({"internal_batch_size": 0}, "internal_batch_size must be a positive whole number"),
        ({"target": None}, "the model has 2 outputs; say which"),
        ({"target": 5}, "target index 5 is out of range"),
        ({"baselines": torch.zeros(3, 2)}, "does not fit inputs"),
    ],
)
def test_adapter_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"target": 0, **kwargs}
    with pytest.raises(AttributionError, match=match):
        captum_attribute(tm.linear([1.0, 1.0], n_outputs=2), _rows(1, 4, 2), **args)


def test_best_internal_batch_size_is_capped_by_memory_and_points() -> None:
    model, x = tm.mlp((4, 8, 1)), _rows(2, 10, 4)
    assert best_internal_batch_size(model, x, n_steps=5) == 50  # never more than rows * steps
    assert best_internal_batch_size(model, _rows(2, 100, 4), n_steps=50) == POINTS_PER_FORWARD
    assert best_internal_batch_size(model, x, n_steps=50, memory_budget_mb=1e-4) < 50


# --- the cross-check -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", SHARED)
def test_crosscheck_passes_when_engines_agree(method: str) -> None:
    model, x = tm.mlp((6, 16, 1), seed=1), _rows(3, 40, 6)
    native = integrated_gradients(model, x, method=method, n_steps=20)
    xc = crosscheck(model, x, native=native, rows=25, seed=3, feature_names=list("abcdef"))
    assert isinstance(xc, Crosscheck)
    assert xc.passed and xc.rows == 25 and xc.captum_bias == "" and xc.skipped_reason == ""
    assert xc.max_rel_diff < 1e-4 and xc.rank_spearman == pytest.approx(1.0)
    assert xc.native_median_rel_delta == pytest.approx(float(native.rel_delta[sample_rows(40, 25, 3)].median()))
    assert "divided by the row's largest |attribution|" in xc.explanation
    assert from_dict(Crosscheck, to_dict(xc)) == xc


def test_crosscheck_reports_captums_trapezoid_bias_with_the_evidence() -> None:
    # the example: linear model, 10 steps -> Captum 10% completeness error, ours (and Gauss-Legendre) ~0
    model, x = tm.linear([1.0, -2.0, 0.5, 3.0]), _rows(4, 30, 4)
    trap = crosscheck(model, x, native=integrated_gradients(model, x, method="riemann_trapezoid", n_steps=10))
    assert not trap.passed
    assert trap.captum_median_rel_delta == pytest.approx(0.1, rel=1e-4)
    assert trap.native_median_rel_delta < 1e-6
    assert trap.max_rel_diff == pytest.approx(0.1, rel=1e-4)  # Captum = 0.9 x ours, row by row
    assert "weights sum to 0.9 = (10 - 1) / 10" in trap.captum_bias
    assert "predicted median relative completeness error 0.1" in trap.captum_bias
    gl = crosscheck(model, x, native=integrated_gradients(model, x, method="gausslegendre", n_steps=10))
    assert gl.passed and gl.captum_bias == "" and gl.captum_median_rel_delta < 1e-6


def test_a_real_disagreement_is_not_blamed_on_captum() -> None:
    # a native result for another model: the trapezoid scaling cannot explain the difference
    model, x = tm.mlp((4, 8, 1), seed=0), _rows(5, 12, 4)
    wrong = integrated_gradients(tm.mlp((4, 8, 1), seed=1), x, method="riemann_trapezoid", n_steps=10)
    xc = crosscheck(model, x, native=wrong)
    assert not xc.passed and xc.captum_bias == ""
    assert xc.max_rel_diff > 0.1


def test_crosscheck_averages_captum_over_references_and_follows_auto_steps() -> None:
    model, x, refs = tm.mlp((5, 12, 2), seed=2), _rows(6, 20, 5), _rows(7, 3, 5)
    target = torch.arange(20) % 2
    native = integrated_gradients(
        model, x, baselines=refs, references=True, target=target, n_steps="auto", max_steps=64, tolerance=0.03
    )
    assert len(set(native.steps.tolist())) > 1  # rows at different step counts
    xc = crosscheck(model, x, native=native, baselines=refs, references=True, target=target)
    assert xc.passed, xc.explanation
    assert "averaged over 3 references" in xc.explanation and "n_steps='auto'" in xc.explanation
    assert xc.n_steps == int(native.steps.max())


def test_crosscheck_runs_captum_in_the_engines_precision() -> None:
    model, x = tm.mlp((4, 8, 1), seed=0), _rows(8, 10, 4)
    native = integrated_gradients(model, x, dtype=torch.float64, n_steps=30)
    xc = crosscheck(model, x, native=native, tol_abs=0.0, tol_rel=1e-6)
    assert xc.passed and xc.max_rel_diff < 1e-6  # float32 Captum would differ by ~1e-7 too; see below
    assert xc.max_rel_diff > 0  # Captum rounds its quadrature weights to float32 even in float64


def test_crosscheck_skips_models_that_couple_rows_and_says_why() -> None:
    model, x = tm.batchnorm_train(), _rows(9, 5, 4)
    native = integrated_gradients(model, x, n_steps=4)
    xc = crosscheck(model, x, native=native)
    assert xc.rows == 0 and not xc.passed and "couples the rows" in xc.skipped_reason


def test_crosscheck_skips_a_one_step_riemann_rule_captum_cannot_run() -> None:
    model, x = tm.mlp((3, 4, 1)), _rows(9, 5, 3)
    xc = crosscheck(model, x, native=integrated_gradients(model, x, method="riemann_middle", n_steps=1))
    assert xc.rows == 0 and "needs at least 2 steps" in xc.skipped_reason


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "riemann_left"}, "the native result used gausslegendre"),
        ({"n_steps": 7}, "cross-check with the same method and steps"),
        ({"tol_abs": 0.0, "tol_rel": 0.0}, "tolerances must be >= 0 and not both 0"),
        ({"rows": 0}, "cross-check rows must be a whole number >= 1 or 'all'"),
        ({"rows": "some"}, "cross-check rows must be a whole number or 'all'"),
        ({"feature_names": ["a"]}, "1 feature names for 3 features"),
        ({"x": torch.zeros(4, 3)}, "do not match the native attributions"),
    ],
)
def test_crosscheck_bad_arguments(kwargs: dict, match: str) -> None:
    model, x = tm.mlp((3, 4, 1)), _rows(10, 5, 3)
    native = integrated_gradients(model, x, n_steps=5)
    args = {"x": x, **kwargs}
    with pytest.raises(AttributionError, match=match):
        crosscheck(model, native=native, **args)


# --- helpers -------------------------------------------------------------------------------------------------


def test_sample_rows_is_seeded_sorted_distinct_and_all_on_request() -> None:
    a, b = sample_rows(1000, 50, seed=7), sample_rows(1000, 50, seed=7)
    assert np.array_equal(a, b) and len(set(a.tolist())) == 50 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, sample_rows(1000, 50, seed=8))
    assert sample_rows(10, "all", 0).tolist() == list(range(10))
    assert sample_rows(10, 99, 0).tolist() == list(range(10))


def test_spearman_known_values() -> None:
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0])) == pytest.approx(1.0)
    assert spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0])) == pytest.approx(-1.0)
    # ties averaged: ranks (0.5, 0.5, 2) vs (0, 1, 2) -> 0.866...
    assert spearman(np.array([1.0, 1.0, 5.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(np.sqrt(3) / 2)
    assert spearman(np.zeros(4), np.zeros(4)) == 1.0
    assert spearman(np.zeros(3), np.array([1.0, 2.0, 3.0])) == 0.0
