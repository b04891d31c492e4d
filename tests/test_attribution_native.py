"""Our IG engine: known answers, axioms as Hypothesis properties, baselines, auto steps, coupled rows, the cut of
path points into passes (memory, out-of-memory, timing on the CPU), the memory estimate, errors."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import toy_models as tm
from hypothesis import given, settings
from hypothesis import strategies as st
from image_toys import MemoryCappedCNN, SmallCNN

from audit.attribution.memory import activation_elems_per_point as _activation_elems_per_point
from audit.attribution.native import (
    AUTO_SCHEDULE,
    IGResult,
    integrated_gradients,
    rows_are_independent,
    select_output,
)
from audit.attribution.planning import Tuner as _Tuner
from audit.attribution.planning import accepts_channels_last as _accepts_channels_last
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


@settings(derandomize=True, max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    chunk=st.integers(1, 9),
    per_pass=st.integers(1, 12),
    method=st.sampled_from(METHODS),
    n_steps=st.sampled_from([2, 9, 16, "auto"]),
)
def test_results_do_not_depend_on_how_a_rows_points_are_cut_into_passes(
    seed: int, chunk: int, per_pass: int, method: str, n_steps: int | str
) -> None:
    # every row's points in one pass against rows and points cut every way (the end points included)
    model = tm.mlp((6, 16, 3), seed=seed % 4)
    x = _rows(seed, 9, 6)
    kw = dict(target=torch.arange(9) % 3, method=method, n_steps=n_steps, dtype=F64, tolerance=1e-3, max_steps=32)
    whole = integrated_gradients(model, x, chunk_rows=9, **kw)
    cut = integrated_gradients(model, x, chunk_rows=chunk, points_per_pass=per_pass, **kw)
    points_only = integrated_gradients(model, x, points_per_pass=per_pass, **kw)
    one_by_one = integrated_gradients(model, x, memory_budget_mb=1e-6, **kw)  # the budget fits one point
    assert (one_by_one.chunk_rows, one_by_one.points_per_pass) == (1, 1)
    assert cut.chunk_rows == chunk and cut.points_per_pass <= per_pass
    for other in (cut, points_only, one_by_one):
        torch.testing.assert_close(other.attributions, whole.attributions, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(other.f_x, whole.f_x, rtol=1e-14, atol=1e-14)  # end points in other batches
        torch.testing.assert_close(other.f_baseline, whole.f_baseline, rtol=1e-14, atol=1e-14)
        assert torch.equal(other.steps, whole.steps)


def test_a_row_whose_points_do_not_fit_is_split_and_the_cut_is_reported() -> None:
    x = torch.rand(5, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = SmallCNN().eval()
    whole = integrated_gradients(model, x, target=1, n_steps=30, chunk_rows=5, dtype=F64)
    assert (whole.chunk_rows, whole.points_per_pass) == (5, 32)  # 30 Gauss-Legendre nodes + the 2 end points
    split = integrated_gradients(model, x, target=1, n_steps=30, chunk_rows=2, points_per_pass=10, dtype=F64)
    assert (split.chunk_rows, split.points_per_pass) == (2, 8)  # 32 points in 4 equal passes of at most 10
    torch.testing.assert_close(split.attributions, whole.attributions, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(split.delta, whole.delta, rtol=1e-9, atol=1e-12)


def _capped(max_batch: int) -> MemoryCappedCNN:
    torch.manual_seed(0)
    model = MemoryCappedCNN().eval()
    model.max_batch = max_batch  # raises CUDA's out-of-memory message above this many inputs per forward
    return model


def test_out_of_memory_halves_the_rows_then_the_points_per_pass_and_gives_the_same_answer() -> None:
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    plain = SmallCNN().eval()
    want = integrated_gradients(plain, x, target=0, n_steps=16, dtype=F64)
    # 18 points a row: 6 rows -> 3 -> 1 (18 points, still over 7) -> 9 points a pass -> 6 (at most 4.5: 5 passes)
    got = integrated_gradients(_capped(7), x, target=0, n_steps=16, dtype=F64, chunk_rows=6)
    assert (got.chunk_rows, got.points_per_pass) == (1, 4)
    ran_out = [note for note in got.notes if note.startswith("memory ran out at")]
    assert ran_out[:2] == [
        "memory ran out at 6 rows x 18 points per pass; went on with 3 rows x at most 18 points",
        "memory ran out at 3 rows x 18 points per pass; went on with 1 rows x at most 18 points",
    ]
    assert any("at 1 rows x 18 points" in note for note in ran_out)
    torch.testing.assert_close(got.attributions, want.attributions, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(got.f_x, want.f_x, rtol=1e-12, atol=1e-12)
    # the budget's own cut (timed on the CPU) runs into the same wall and gets the same answer
    budget = integrated_gradients(_capped(7), x, target=0, n_steps=16, dtype=F64)
    assert budget.chunk_rows * budget.points_per_pass <= 7
    torch.testing.assert_close(budget.attributions, want.attributions, rtol=1e-10, atol=1e-12)


def test_out_of_memory_at_one_point_of_one_row_is_one_clear_error() -> None:
    class NoRoomForGradients(SmallCNN):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if torch.is_grad_enabled() and x.requires_grad:
                raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB (planted)")
            return super().forward(x)

    with pytest.raises(AttributionError, match="memory ran out with a single path point") as info:
        integrated_gradients(NoRoomForGradients().eval(), torch.rand(3, 3, 8, 8), target=0, n_steps=4)
    assert "\n" not in str(info.value) and isinstance(info.value, AuditError)


def test_other_runtime_errors_are_not_taken_for_out_of_memory() -> None:
    class Broken(SmallCNN):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.requires_grad:
                raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (planted)")
            return super().forward(x)

    with pytest.raises(RuntimeError, match="cannot be multiplied"):
        integrated_gradients(Broken().eval(), torch.rand(2, 3, 8, 8), target=0, n_steps=4)


def _climb(rate, start: int, *, S: int = 52, cap: int = 10_000, cold: float = 1.0) -> _Tuner:  # noqa: ANN001
    """Drive a tuner with planted pass rates ``rate(points)`` (points/s) until it settles; the first pass at each
    size is ``cold`` times slower."""
    tuner, seen = _Tuner(start, S, cap), set()
    for _ in range(200):
        if tuner.done:
            break
        size = tuner.size(tuner.now)
        slow = cold if size not in seen else 1.0
        seen.add(size)
        tuner.record(size, slow * size / rate(size))
    return tuner


@pytest.mark.parametrize(
    ("peak", "start"),
    [(104, 13), (104, 624), (7, 156), (26, 26), (6_656, 1_664), (52, 1), (1, 52)],
)
def test_the_cpu_tuner_climbs_to_the_fastest_pass_size_whatever_the_start(peak: int, start: int) -> None:
    # sizes for 52 points a row: ..., 7, 13, 26 (a row in 8, 4, 2 passes), 52, 104, 208 (1, 2, 4 rows), ...
    def rate(size: int) -> float:  # points/s, a single peak on a log scale
        return 1000.0 / (1.0 + abs(np.log2(size / peak)))

    for cold in (1.0, 1.8):  # with and without a slow first pass at each new shape
        tuner = _climb(rate, start, cold=cold)
        assert tuner.done and tuner.size(tuner.now) == peak, (cold, tuner.rates)


def test_the_cpu_tuner_keeps_to_the_memory_cap_and_to_the_rows_there_are() -> None:
    tuner = _climb(lambda size: float(size), 52, cap=300)  # bigger is always faster; memory allows 300 points
    assert tuner.shape() == (4, 52) and max(map(tuner.size, tuner.rates)) <= 300
    few_rows = _Tuner(52, 52, 10_000)
    few_rows.limit(3 * 52)  # a run of 3 rows: no trial of 4
    for _ in range(20):
        few_rows.record(few_rows.size(few_rows.now), 1.0)
    assert few_rows.done and few_rows.shape() == (2, 52)
    tiny = _climb(lambda size: 1.0 / size, 4, S=5)  # one point per pass is fastest; 5 points a row
    assert tiny.shape() == (1, 1)  # down the ladder 5 -> 3 -> 2 -> 1 points per pass


def test_timed_cuts_on_the_cpu_give_the_same_attributions_call_after_call() -> None:
    torch.manual_seed(3)
    model = SmallCNN().eval()
    x = torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    want = integrated_gradients(model, x, target=1, n_steps=20, chunk_rows=12, dtype=F64)
    for _ in range(3):  # the timing goes on across calls on the same model; the answer does not move
        got = integrated_gradients(model, x, target=1, n_steps=20, dtype=F64)
        torch.testing.assert_close(got.attributions, want.attributions, rtol=1e-10, atol=1e-12)
        assert got.chunk_rows >= 1 and 1 <= got.points_per_pass <= 22
    tight = integrated_gradients(model, x, target=1, n_steps=20, dtype=F64, memory_budget_mb=1e-6)
    assert (tight.chunk_rows, tight.points_per_pass) == (1, 1)  # a smaller budget is kept, whatever was timed
    torch.testing.assert_close(tight.attributions, want.attributions, rtol=1e-10, atol=1e-12)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit's deprecation notices
def test_torchscript_and_exported_models_get_a_memory_estimate_near_the_eager_ones() -> None:
    mlp = tm.mlp((96, 256, 128, 1), seed=0)
    x = _rows(12, 2, 96)
    eager = _activation_elems_per_point(mlp, x)
    assert eager == 256 + 256 + 128 + 128 + 1  # every leaf module's output, per row
    dim = torch.export.Dim("rows", min=1, max=4096)
    exported = torch.export.export(mlp, (x,), dynamic_shapes=({0: dim},)).module()
    for other in (torch.jit.script(mlp), torch.jit.trace(mlp, x), exported):
        estimate = _activation_elems_per_point(other, x)
        assert 0.7 * eager <= estimate <= 1.3 * eager, (type(other).__name__, estimate)  # was 64 x 96 = 6,144
    cnn, images = SmallCNN().eval(), torch.rand(2, 3, 32, 32)
    eager_cnn = _activation_elems_per_point(cnn, images)
    traced = _activation_elems_per_point(torch.jit.trace(cnn, images), images)
    assert 0.7 * eager_cnn <= traced <= 1.3 * eager_cnn


def test_image_points_go_channels_last_only_where_the_model_takes_them() -> None:
    class ViewsItsFeatures(torch.nn.Module):  # `.view` on a conv output refuses an NHWC layout
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.fc = torch.nn.Linear(4 * 8 * 8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = torch.tanh(self.conv(x))  # smooth: completeness is tight at 64 Gauss-Legendre steps
            return self.fc(h.view(h.shape[0], -1))

    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    assert _accepts_channels_last(SmallCNN().eval(), x)
    viewer = ViewsItsFeatures().eval()
    assert not _accepts_channels_last(viewer, x)
    res = integrated_gradients(viewer, x, target=1, n_steps=64, dtype=F64)  # works, NCHW
    assert torch.all(res.rel_delta < 1e-8)
    linear = tm.linear([0.5, -1.0, 2.0] * 64)  # on flattened 3x8x8 images: IG is exactly w * x
    flat = torch.nn.Sequential(torch.nn.Flatten(), linear).eval()
    res = integrated_gradients(flat, x, n_steps=4)
    torch.testing.assert_close(res.attributions, linear.weight[0].view(3, 8, 8) * x, rtol=1e-5, atol=1e-6)


def test_the_probes_before_the_passes_stay_few() -> None:
    # on a CPU image model the probes (determinism, independence, memory, channels-last) cost ~4% of a 4-image
    # resnet18 call at 224x224; they share their forwards so that no more than 16 rows go through without grads
    class Counting(SmallCNN):
        probe_rows = 0

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not torch.is_grad_enabled():
                type(self).probe_rows += x.shape[0]
            return super().forward(x)

    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(5))
    integrated_gradients(Counting().eval(), x, target=0, n_steps=8)
    assert Counting.probe_rows <= 16


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
        ({"target": 0, "points_per_pass": 0}, "points_per_pass must be at least 1"),
        ({"target": 0, "points_per_pass": 2.5}, "points_per_pass must be at least 1 \\(a whole number\\)"),
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
