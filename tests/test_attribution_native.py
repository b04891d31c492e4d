"""Our IG engine: known answers, axioms as Hypothesis properties, baselines, auto steps, coupled rows, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import toy_models as tm
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.attribution.native import (
    AUTO_SCHEDULE,
    IGResult,
    integrated_gradients,
    rows_are_independent,
    select_output,
)
from audit.attribution.quadrature import METHODS
from audit.errors import AttributionError, AuditError

SETTINGS = settings(derandomize=True, max_examples=20, deadline=None)
F64 = torch.float64


def _rows(seed: int, n: int, d: int, scale: float = 2.0) -> torch.Tensor:
    return scale * torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


# --- known answers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_steps", [2, 10, 50])
def test_linear_model_ig_is_exactly_w_times_x_minus_baseline(method: str, n_steps: int) -> None:
    w = [1.5, -2.0, 0.0, 3.25]
    model = tm.linear(w, bias=0.7)
    x = _rows(0, 16, 4)
    base = _rows(1, 1, 4)[0]
    res = integrated_gradients(model, x, baselines=base, method=method, n_steps=n_steps)
    expected = torch.tensor(w) * (x - base)
    torch.testing.assert_close(res.attributions, expected, rtol=1e-5, atol=1e-5)
    assert res.rel_delta.max() < 1e-5  # textbook weights sum to 1: exact on a linear model, trapezoid included
    torch.testing.assert_close(res.f_x, model(x)[:, 0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(res.f_baseline, model(base.expand(16, 4))[:, 0], rtol=1e-6, atol=1e-6)


def test_ig_paper_example_gives_one_and_a_half_and_minus_one_half() -> None:
    # ReLU(ReLU(x1) - 1 - ReLU(x2)) at x = (3, 1), baseline 0 (Sundararajan et al. 2017, section 2)
    res = integrated_gradients(tm.IGPaperNet(), torch.tensor([[3.0, 1.0]]), n_steps=50)
    torch.testing.assert_close(res.attributions, torch.tensor([[1.5, -0.5]]), rtol=0, atol=1e-6)
    assert float(res.f_x[0]) == pytest.approx(1.0) and float(res.f_baseline[0]) == 0.0


def test_float64_reference_mode_is_exact_to_double_precision() -> None:
    model = tm.linear([1.0, 2.0, -3.0])
    x = _rows(2, 8, 3)
    res = integrated_gradients(model, x, dtype=F64, method="riemann_trapezoid", n_steps=7)
    assert res.attributions.dtype == F64
    assert res.rel_delta.max() < 1e-12
    assert next(model.parameters()).dtype == torch.float32  # the caller's model was copied, not converted


# --- axioms as properties -------------------------------------------------------------------------------------


def _smooth_mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).eval()


# steps at which each rule's completeness error is below 1% of the row's attribution mass on a smooth model
_STEPS_FOR_1PCT = {"gausslegendre": 16, "riemann_middle": 64, "riemann_trapezoid": 64, "riemann_left": 512,
                   "riemann_right": 512}  # fmt: skip


@SETTINGS
@given(seed=st.integers(0, 10_000), method=st.sampled_from(METHODS))
def test_completeness_within_tolerance(seed: int, method: str) -> None:
    model, x = _smooth_mlp(seed % 11), _rows(seed, 6, 5)
    res = integrated_gradients(model, x, method=method, n_steps=_STEPS_FOR_1PCT[method], dtype=F64)
    mass = res.attributions.abs().sum(1)  # >= |F(x) - F(x')| up to the error; no blow-up when F barely moves
    assert torch.all(res.delta.abs() <= 0.01 * mass + 1e-12)
    if method == "gausslegendre":  # spectral convergence on an analytic path
        assert torch.all(res.delta.abs() <= 1e-8 * mass + 1e-12)


@pytest.mark.parametrize(
    ("method", "order"),
    [("riemann_left", 1), ("riemann_right", 1), ("riemann_middle", 2), ("riemann_trapezoid", 2)],
)
def test_completeness_error_shrinks_at_the_rules_order(method: str, order: int) -> None:
    model, x = _smooth_mlp(0), _rows(0, 20, 5)
    errs = [integrated_gradients(model, x, method=method, n_steps=n, dtype=F64).delta.abs().sum() for n in (64, 128)]
    assert float(errs[0] / errs[1]) == pytest.approx(2.0**order, rel=0.1)


@SETTINGS
@given(seed=st.integers(0, 10_000), ignored=st.sets(st.integers(0, 5), min_size=1, max_size=3))
def test_a_feature_the_model_ignores_gets_exactly_zero(seed: int, ignored: set[int]) -> None:
    model = tm.mlp((6, 12, 1), seed=seed % 5, ignore=sorted(ignored))
    res = integrated_gradients(model, _rows(seed, 10, 6), n_steps=20)
    assert torch.all(res.attributions[:, sorted(ignored)] == 0.0)


@SETTINGS
@given(seed=st.integers(0, 10_000), a=st.floats(-3, 3), b=st.floats(-3, 3))
def test_linearity_ig_of_a_f_plus_b_g(seed: int, a: float, b: float) -> None:
    f, g = tm.mlp((4, 8, 1), seed=1), tm.mlp((4, 8, 1), seed=2)

    class Mix(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f, self.g = f, g

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return a * self.f(z) + b * self.g(z)

    x = _rows(seed, 5, 4)
    kw = dict(n_steps=16, dtype=F64)
    mix = integrated_gradients(Mix(), x, **kw).attributions
    parts = a * integrated_gradients(f, x, **kw).attributions + b * integrated_gradients(g, x, **kw).attributions
    torch.testing.assert_close(mix, parts, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(seed=st.integers(0, 10_000), v=st.floats(-3, 3), u=st.floats(-3, 3))
def test_symmetry_swapping_symmetric_features_swaps_attributions(seed: int, v: float, u: float) -> None:
    # F(x) = relu(x0 + x1 + 0.5 x2 - 0.3)^2 is symmetric in x0, x1: equal values get equal attributions
    class Sym(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.relu(z[:, 0] + z[:, 1] + 0.5 * z[:, 2] - 0.3) ** 2

    x = torch.tensor([[v, v, u], [v, u, 1.0]], dtype=F64)
    res = integrated_gradients(Sym(), x, n_steps=32)
    assert float(res.attributions[0, 0]) == float(res.attributions[0, 1])
    swapped = integrated_gradients(Sym(), x[:, [1, 0, 2]], n_steps=32).attributions
    torch.testing.assert_close(swapped[:, [1, 0, 2]], res.attributions, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(seed=st.integers(0, 10_000))
def test_implementation_invariance_two_networks_one_function(seed: int) -> None:
    net_a, net_b = tm.equivalent_pair(d=4, hidden=8, seed=seed % 3)
    x = _rows(seed, 8, 4)
    torch.testing.assert_close(net_a(x), net_b(x), rtol=1e-5, atol=1e-5)  # same function...
    ra = integrated_gradients(net_a, x, n_steps=24, dtype=F64)
    rb = integrated_gradients(net_b, x, n_steps=24, dtype=F64)
    torch.testing.assert_close(ra.attributions, rb.attributions, rtol=1e-9, atol=1e-9)  # ...same attributions


@settings(derandomize=True, max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.integers(1, 23), method=st.sampled_from(METHODS))
def test_results_do_not_depend_on_chunk_size_or_memory_budget(seed: int, chunk: int, method: str) -> None:
    model = tm.mlp((6, 16, 3), seed=seed % 4)
    x = _rows(seed, 23, 6)
    target = torch.arange(23) % 3
    kw = dict(target=target, method=method, n_steps=9, dtype=F64)
    whole = integrated_gradients(model, x, chunk_rows=23, **kw)
    chunked = integrated_gradients(model, x, chunk_rows=chunk, **kw)
    tiny_budget = integrated_gradients(model, x, memory_budget_mb=0.001, **kw)
    assert tiny_budget.chunk_rows == 1
    for other in (chunked, tiny_budget):
        torch.testing.assert_close(other.attributions, whole.attributions, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(other.delta, whole.delta, rtol=1e-9, atol=1e-12)


# --- baselines, targets, inputs --------------------------------------------------------------------------------


def test_every_baseline_form_means_what_it_says() -> None:
    w = torch.tensor([2.0, -1.0, 0.5])
    model = tm.linear(w.tolist())
    x = _rows(3, 5, 3)
    row = torch.tensor([0.1, 0.2, 0.3])
    per_row = _rows(4, 5, 3)
    cases = {
        "zero": torch.zeros(3),
        1.5: torch.full((3,), 1.5),
        "row": row,
        "(1, F)": row,
        "per row": per_row,
    }
    given_as = {"zero": "zero", 1.5: 1.5, "row": row, "(1, F)": row.unsqueeze(0), "per row": per_row}
    for key, base in cases.items():
        res = integrated_gradients(model, x, baselines=given_as[key], n_steps=4)
        torch.testing.assert_close(res.attributions, w * (x - base), rtol=1e-5, atol=1e-5)


def test_several_references_average_ig_and_completeness_holds_against_their_mean_output() -> None:
    model = tm.mlp((4, 16, 1), seed=3)
    x, refs = _rows(5, 6, 4), _rows(6, 5, 4)
    res = integrated_gradients(model, x, baselines=refs, references=True, n_steps=64, dtype=F64)
    singles = [integrated_gradients(model, x, baselines=r, n_steps=64, dtype=F64) for r in refs]
    torch.testing.assert_close(res.attributions, sum(s.attributions for s in singles) / 5, rtol=1e-12, atol=1e-12)
    mean_ref_out = model.double()(refs.double()).mean()
    torch.testing.assert_close(res.f_baseline, mean_ref_out.expand(6), rtol=1e-9, atol=1e-9)
    assert torch.all(res.delta.abs() <= 0.02 * (res.f_x - res.f_baseline).abs() + 1e-9)


def test_class_targets_explain_the_chosen_output() -> None:
    model = tm.linear([1.0, -1.0], n_outputs=3)  # output k has weights (k + 1) * w
    x = _rows(7, 4, 2)
    target = torch.tensor([0, 1, 2, 1])
    res = integrated_gradients(model, x, target=target, n_steps=3)
    scale = (target + 1).to(torch.float32).view(-1, 1)
    torch.testing.assert_close(res.attributions, scale * torch.tensor([1.0, -1.0]) * x, rtol=1e-5, atol=1e-5)
    by_int = integrated_gradients(model, x, target=2, n_steps=3)
    torch.testing.assert_close(by_int.attributions, 3 * torch.tensor([1.0, -1.0]) * x, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace's deprecation notice
def test_image_inputs_and_torchscript_models_work() -> None:
    model = tm.tiny_cnn()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    res = integrated_gradients(model, x, target=torch.tensor([0, 1, 2]), n_steps=64, dtype=F64)
    assert res.attributions.shape == (3, 3, 8, 8)
    assert torch.all(res.delta.abs() <= 0.01 * res.attributions.abs().sum(dim=(1, 2, 3)))
    scripted = torch.jit.trace(model, x)
    again = integrated_gradients(scripted, x, target=torch.tensor([0, 1, 2]), n_steps=64, dtype=F64)
    torch.testing.assert_close(again.attributions, res.attributions, rtol=1e-9, atol=1e-9)


def test_select_output_shapes() -> None:
    assert select_output(torch.arange(3.0), None).tolist() == [0.0, 1.0, 2.0]
    assert select_output(torch.arange(3.0).view(3, 1), None).tolist() == [0.0, 1.0, 2.0]
    out = torch.arange(6.0).view(3, 2)
    assert select_output(out, torch.tensor([1, 0, 1])).tolist() == [1.0, 2.0, 5.0]
    with pytest.raises(AttributionError, match="has 2 outputs; say which"):
        select_output(out, None)


# --- n_steps="auto" ------------------------------------------------------------------------------------------


def test_auto_steps_refine_only_rows_that_need_it_and_report_them() -> None:
    # a linear model converges at the first step count; a sharp ReLU bump needs more steps
    class Bump(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.relu(z[:, 0] - 0.37) * 40.0 + z[:, 1]

    x = torch.tensor([[0.2, 1.0], [1.0, 1.0], [0.0, 3.0]], dtype=F64)
    res = integrated_gradients(Bump(), x, n_steps="auto", method="riemann_left", tolerance=1e-3, max_steps=512)
    steps = res.steps.tolist()
    assert steps[0] == AUTO_SCHEDULE[0] and steps[2] == AUTO_SCHEDULE[0]  # smooth along their paths
    assert steps[1] > AUTO_SCHEDULE[0]  # the kink at 0.37 lies on row 1's path
    assert res.rel_delta[1] <= 1e-3 or steps[1] == 512
    assert res.n_steps == "auto"


def test_auto_steps_stop_at_the_cap_and_keep_the_cap_itself() -> None:
    class Bump(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return torch.relu(z[:, 0] - 0.3333) * 1e4

    x = torch.tensor([[1.0]], dtype=F64)
    res = integrated_gradients(Bump(), x, n_steps="auto", method="riemann_left", tolerance=1e-9, max_steps=100)
    assert res.steps.tolist() == [100]


# --- rows that interact ---------------------------------------------------------------------------------------


def test_rows_are_independent_probe() -> None:
    x = _rows(8, 6, 4)
    assert rows_are_independent(tm.mlp((4, 8, 1)), x)
    assert not rows_are_independent(tm.batchnorm_train(), x)


def test_batchnorm_in_train_mode_takes_the_exact_slow_path_and_leaves_the_model_alone() -> None:
    model = tm.batchnorm_train()
    x = _rows(9, 6, 4)
    before = copy.deepcopy(model.state_dict())
    res = integrated_gradients(model, x, n_steps=128, dtype=F64)
    assert not res.batch_independent
    assert any("depends on the other rows" in note for note in res.notes)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # running statistics restored
    # F(x) is the row's output in the real batch, and completeness holds for that function
    expected_fx = copy.deepcopy(model).double()(x.double())[:, 0]
    torch.testing.assert_close(res.f_x, expected_fx.detach(), rtol=1e-10, atol=1e-10)
    assert torch.all(res.delta.abs() <= 0.01 * res.attributions.abs().sum(1))
    # the batched path would be wrong here: it differs from the exact one
    batched = integrated_gradients(model, x, n_steps=128, dtype=F64, check_independence=False)
    assert (batched.attributions - res.attributions).abs().max() > 0.1


# --- bad arguments ---------------------------------------------------------------------------------------------

_MODEL = tm.mlp((3, 4, 2), seed=0)
_X = _rows(10, 4, 3)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_steps": -5}, "n_steps must be a whole number >= 1"),
        ({"n_steps": 0}, "n_steps must be a whole number >= 1"),
        ({"n_steps": "many"}, "n_steps must be a whole number or 'auto'"),
        ({"method": "riemann_trapezoid", "n_steps": 1}, "n_steps must be a whole number >= 2"),
        ({"method": "simpson"}, "unknown integration method 'simpson'"),
        ({"baselines": torch.zeros(2, 3)}, r"baseline of shape \(2, 3\) does not fit inputs of shape \(4, 3\)"),
        ({"baselines": torch.zeros(5)}, r"baseline of shape \(5,\) does not fit"),
        ({"baselines": "mean"}, "unknown baseline 'mean'"),
        ({"baselines": float("nan")}, "baseline value must be finite"),
        ({"target": 2}, "target index 2 is out of range for a model with 2 outputs; use 0..1"),
        ({"target": torch.tensor([0, 1, -1, 0])}, "target index -1 is out of range"),
        ({"target": torch.tensor([0, 1])}, "target has 2 entries for 4 rows"),
        ({"target": torch.tensor([0.5, 1, 0, 0])}, "whole-number class indices"),
        ({}, "the model has 2 outputs; say which to explain"),
        ({"target": 0, "tolerance": 0}, "tolerance must be a positive number"),
        ({"target": 0, "memory_budget_mb": 0}, "memory_budget_mb must be positive"),
        ({"target": 0, "chunk_rows": 0}, "chunk_rows must be at least 1"),
        ({"target": 0, "bf16": True}, "bf16 autocast needs a CUDA device"),
        ({"target": 0, "device": "tpu"}, "unknown device 'tpu'; use cpu or cuda"),
        ({"target": 0, "dtype": torch.float16}, "dtype must be float32 or float64"),
        ({"target": 0, "n_steps": "auto", "max_steps": 8}, "max_steps must be at least 16"),
    ],
)
def test_bad_arguments_raise_one_clear_attribution_error(kwargs: dict, match: str) -> None:
    with pytest.raises(AttributionError, match=match) as info:
        integrated_gradients(_MODEL, _X, **kwargs)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, AuditError)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when no GPU is visible")
def test_asking_for_cuda_without_a_gpu_says_so() -> None:
    with pytest.raises(AttributionError, match="no CUDA GPU is visible; use --device cpu"):
        integrated_gradients(_MODEL, _X, target=0, device="cuda")


def test_bad_inputs_and_models_raise_one_clear_error() -> None:
    with pytest.raises(AttributionError, match="inputs hold NaN"):
        integrated_gradients(_MODEL, torch.tensor([[1.0, float("nan"), 0.0]]), target=0)
    with pytest.raises(AttributionError, match=r"inputs must have shape \(rows, features...\)"):
        integrated_gradients(_MODEL, torch.zeros(3), target=0)
    with pytest.raises(AttributionError, match="must be a torch.Tensor"):
        integrated_gradients(_MODEL, np.zeros((2, 3)), target=0)  # type: ignore[arg-type]
    with pytest.raises(AttributionError, match="check that the data's features match the model's inputs"):
        integrated_gradients(_MODEL, torch.zeros(2, 5), target=0)
    dropout = torch.nn.Sequential(torch.nn.Linear(3, 64), torch.nn.Dropout(0.5), torch.nn.Linear(64, 1)).train()
    with pytest.raises(AttributionError, match="different outputs for the same input .* call model.eval"):
        integrated_gradients(dropout, _X)
    with pytest.raises(AttributionError, match="call model.eval\\(\\) or pass more than one row"):
        integrated_gradients(tm.batchnorm_train(d=3), _X[:1])
    # 700 coupled rows x 52 points would push 700 * 700 * 52 = 25.5M rows through the model: refused up front
    with pytest.raises(AttributionError, match="explain at most 620 rows at a time"):
        integrated_gradients(tm.batchnorm_train(d=3), _rows(11, 700, 3))


def test_result_record_is_complete() -> None:
    res = integrated_gradients(tm.mlp((3, 4, 1)), _X, n_steps=5)
    assert isinstance(res, IGResult)
    assert res.attributions.shape == _X.shape
    assert res.f_x.shape == res.f_baseline.shape == res.delta.shape == res.rel_delta.shape == (4,)
    assert res.steps.tolist() == [5] * 4 and res.method == "gausslegendre" and res.batch_independent
    torch.testing.assert_close(res.delta, res.attributions.sum(1) - (res.f_x - res.f_baseline))
