"""Our Integrated Gradients engine: the path points of a chunk of rows in one forward and one backward per pass.

Integrated Gradients (Sundararajan, Taly, Yan, "Axiomatic Attribution for Deep Networks", ICML 2017):

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF/dx_i (x' + a (x - x')) da

approximated by a quadrature rule ``sum_s w_s * grad(x' + a_s (x - x'))``. Completeness says
``sum_i IG_i(x) = F(x) - F(x')``; the gap is each row's convergence diagnostic.

Why one backward is enough: in eval mode the rows of a batch do not interact, so the gradient of
``sum_r F(p_r)`` with respect to the stacked path points ``p`` holds each point's own gradient. Captum instead
asks autograd for ``grad(unbind(outputs))``, which slows sharply as the batch grows. The engine checks the
assumption on a small probe and, if the model couples rows (BatchNorm in train mode, attention across the
batch), falls back to a slower exact path and says so: row r's output is then the function the model computes
on the whole input batch with row r replaced by a path point, one forward and one backward per point.

The caller's model is never modified: dtype and device changes work on a copy, and buffers that a forward pass
in train mode updates (BatchNorm running statistics) are restored afterwards.

F(x) and F(x') come from the same passes: the end points a=0 and a=1 are added to the batch with weight 0 when
the rule does not already contain them.

How the points are cut into passes: a chunk of whole rows with all their points when that fits, else one row
whose points go through several passes, the weighted gradients summed across them (a resnet50 at 224x224 needs
~370 MB a point: one row of 52 points may not fit a GPU). The memory budget sets the largest pass; out of
memory halves the rows, then the points per pass, and only one point of one row that does not fit is an error.
On the CPU the fastest pass size is found by timing the first passes (:class:`_Tuner`), and image points go
channels-last. A row's result is the same whatever the cut, up to float rounding.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from audit.attribution.quadrature import METHODS, min_steps, rule
from audit.errors import AttributionError

__all__ = [
    "IGResult",
    "integrated_gradients",
    "select_output",
    "rows_are_independent",
    "resolve_device",
    "AUTO_SCHEDULE",
    "CPU_WORKING_SET_MB",
    "COUPLED_MAX_ROW_EVALS",
]

# On the CPU a chunk whose working set stays near the caches is faster than one huge batch. Measured on the
# 96-256-128-1 MLP, 2,048 rows x 52 points, 2 cores, one interleaved run (rows/s by rows per chunk):
#   idle machine:        32: 9,877  64: 9,730  129: 9,458  256: 8,726  512: 7,356  1,024: 5,994  2,048: 5,218
#   another job at 200%: 32:   441  64:   591  129: 1,109  256: 1,882  512: 1,992  1,024: 2,226  2,048: 2,090
# (under contention every op waits for a descheduled thread, so fewer, larger chunks win). 64 MB (129 rows
# here) is the idle optimum; memory_budget_mb still caps it lower. CUDA uses the budget and free memory.
# The best size also depends on the model (on one thread: ~8 points of a resnet18 at 224x224, ~700 MB; ~26 of
# the small test CNN at 64x64, ~38 MB), so on the CPU this is where the timed search (_Tuner) starts.
CPU_WORKING_SET_MB = 64

# The exact path for models that couple rows pushes n_rows whole batches of n_rows per path point; above this many
# rows in total (minutes for a small MLP) the engine refuses and says what to do instead.
COUPLED_MAX_ROW_EVALS = 20_000_000

# n_steps="auto": the step counts tried, in order, for rows still above tolerance
AUTO_SCHEDULE = (16, 32, 64, 128, 256, 512)

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class IGResult:
    """What :func:`integrated_gradients` returns; every tensor is on the CPU.

    Attributes
    ----------
    attributions : Tensor of shape (n_rows, *feature_shape)
    f_x : Tensor of shape (n_rows,)
        The explained output at the input.
    f_baseline : Tensor of shape (n_rows,)
        The explained output at the baseline (the mean over references when several are averaged).
    delta : Tensor of shape (n_rows,)
        Completeness error ``sum(attributions) - (f_x - f_baseline)``.
    rel_delta : Tensor of shape (n_rows,)
        ``|delta| / max(|f_x - f_baseline|, floor)``, with ``floor = 1e-6 * (1 + max(|f_x|, |f_baseline|))``
        so that rows whose output barely moves do not divide by zero.
    steps : Tensor of shape (n_rows,), int64
        Quadrature steps each row used (all equal unless ``n_steps="auto"``).
    chunk_rows : int
        Rows that shared a forward/backward at the first step count (at the end of the run).
    points_per_pass : int
        Path points of each of those rows per forward/backward: all of them (steps plus the end points the rule
        lacks) unless memory or speed cut a row's points into several passes. 1 on the exact path.
    """

    attributions: torch.Tensor
    f_x: torch.Tensor
    f_baseline: torch.Tensor
    delta: torch.Tensor
    rel_delta: torch.Tensor
    steps: torch.Tensor
    method: str
    n_steps: int | str
    batch_independent: bool
    chunk_rows: int
    notes: tuple[str, ...] = field(default_factory=tuple)
    points_per_pass: int = 0


# --- public helpers --------------------------------------------------------------------------------------


def select_output(out: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """The explained scalar per row.

    Parameters
    ----------
    out : Tensor of shape (m,), (m, 1) or (m, k)
    target : LongTensor of shape (m,) or None
        Output index per row; required when k > 1.

    Returns
    -------
    Tensor of shape (m,)
    """
    if out.dim() == 1:
        return out
    if out.dim() == 2 and out.shape[1] == 1 and target is None:
        return out[:, 0]
    if out.dim() != 2:
        raise AttributionError(
            f"the model returned output of shape {tuple(out.shape)}; audit explains (rows,) or (rows, classes) "
            "outputs: wrap the model so it returns one of those"
        )
    if target is None:
        raise AttributionError(
            f"the model has {out.shape[1]} outputs; say which to explain (a class index per row, or --class K)"
        )
    return out.gather(1, target.view(-1, 1)).squeeze(1)


def rows_are_independent(model: torch.nn.Module, x: torch.Tensor, *, rtol: float = 1e-4) -> bool:
    """Probe whether a row's output depends on the other rows of its batch.

    Runs the first row alone, with its neighbours, and with altered neighbours; all three outputs for that row
    must agree. ``x`` has shape (n_rows, *feature_shape); at least one row.
    """
    return _independence(model, x, rtol=rtol)[0]


def _independence(
    model: torch.nn.Module, x: torch.Tensor, *, rtol: float = 1e-4, with_neighbours: torch.Tensor | None = None
) -> tuple[bool, torch.Tensor | None]:
    """:func:`rows_are_independent`, reusing ``with_neighbours`` (the model's output on ``x[:4]``, when x has
    more than one row) if given; also returns the first row's output alone (1, ...), None if the model failed."""
    with torch.no_grad():
        x0 = x[:1]
        others = x[1:4] if x.shape[0] > 1 else x0.expand(3, *x0.shape[1:])
        gen = torch.Generator(device="cpu").manual_seed(1234)
        noise = torch.randn(others.shape, generator=gen, dtype=torch.float32).to(others.device, others.dtype)
        scale = x.detach().abs().amax().clamp(min=1.0)
        altered = others * 3.0 + noise * scale
        try:
            alone = model(x0)
            if with_neighbours is None or x.shape[0] == 1:
                with_neighbours = model(torch.cat([x0, others]))
            with_altered = model(torch.cat([x0, altered]))
        except (RuntimeError, ValueError):
            return False, None  # e.g. BatchNorm in train mode refuses a single row (ValueError)
        a = alone.reshape(alone.shape[0], -1)[0].double()
        b = with_neighbours.reshape(with_neighbours.shape[0], -1)[0].double()
        c = with_altered.reshape(with_altered.shape[0], -1)[0].double()
        tol = rtol * (1.0 + a.abs().max().item())
        return bool((a - b).abs().max().item() <= tol and (a - c).abs().max().item() <= tol), alone


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, checked: unknown names and CUDA without a visible GPU are one clear error,
    and a bare "cuda" gets the current index so that "cuda" and "cuda:0" compare equal."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise AttributionError(f"unknown device '{device}'; use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise AttributionError("device 'cuda' was asked for but no CUDA GPU is visible; use --device cpu")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


# --- argument checking -----------------------------------------------------------------------------------


def _check_steps(method: str, n_steps: int | str, max_steps: int) -> None:
    if method not in METHODS:
        raise AttributionError(f"unknown integration method '{method}'; use one of {', '.join(METHODS)}")
    if isinstance(n_steps, str):
        if n_steps != "auto":
            raise AttributionError(f"n_steps must be a whole number or 'auto', got '{n_steps}'")
        if max_steps < AUTO_SCHEDULE[0]:
            raise AttributionError(f"max_steps must be at least {AUTO_SCHEDULE[0]} with n_steps='auto'")
        return
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < min_steps(method):
        raise AttributionError(
            f"n_steps must be a whole number >= {min_steps(method)} for {method}, got {n_steps!r}; "
            "50 is a good default"
        )


def _as_baseline(baselines: object, x: torch.Tensor, references: bool) -> torch.Tensor:
    """Baselines as a tensor of shape (n_rows, *fs) or, with ``references``, (n_refs, *fs)."""
    fs = tuple(x.shape[1:])
    if baselines is None or (isinstance(baselines, str) and baselines == "zero"):
        return torch.zeros((1, *fs), dtype=x.dtype)
    if isinstance(baselines, str):
        raise AttributionError(f"unknown baseline '{baselines}'; pass 'zero', a number or a tensor")
    if isinstance(baselines, (int, float)) and not isinstance(baselines, bool):
        if not math.isfinite(float(baselines)):
            raise AttributionError(f"the baseline value must be finite, got {baselines}")
        return torch.full((1, *fs), float(baselines), dtype=x.dtype)
    b = torch.as_tensor(baselines).to(dtype=x.dtype, device="cpu")
    if not torch.isfinite(b).all():
        raise AttributionError("the baseline holds NaN or infinite values; pass finite numbers")
    if tuple(b.shape) == fs:
        return b.unsqueeze(0)
    if b.dim() == len(fs) + 1 and tuple(b.shape[1:]) == fs:
        if references:
            if b.shape[0] < 1:
                raise AttributionError("pass at least one reference row")
            return b
        if b.shape[0] in (1, x.shape[0]):
            return b
    want = f"{fs}, (1, *{fs}) or ({x.shape[0]}, *{fs})"
    if references:
        want = f"(n_refs, *{fs})"
    raise AttributionError(
        f"baseline of shape {tuple(b.shape)} does not fit inputs of shape {tuple(x.shape)}; pass a baseline of "
        f"shape {want}"
    )


def _as_target(target: object, n_rows: int, device: torch.device) -> torch.Tensor | None:
    if target is None:
        return None
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return torch.full((n_rows,), int(target), dtype=torch.long, device=device)
    t = torch.as_tensor(target)
    if t.dtype.is_floating_point or t.dtype == torch.bool:
        raise AttributionError("target must hold whole-number class indices")
    t = t.to(torch.long).reshape(-1)
    if t.numel() != n_rows:
        raise AttributionError(f"target has {t.numel()} entries for {n_rows} rows; pass one index per row or one int")
    return t.to(device)


def _check_target_range(target: torch.Tensor | None, n_outputs: int) -> None:
    if target is None:
        return
    lo, hi = int(target.min()), int(target.max())
    if lo < 0 or hi >= n_outputs:
        bad = lo if lo < 0 else hi
        raise AttributionError(
            f"target index {bad} is out of range for a model with {n_outputs} outputs; use 0..{n_outputs - 1}"
        )


# --- memory budget and pass sizes ------------------------------------------------------------------------------

# Where forward hooks see no layers (TorchScript, torch.export graph modules, a model without submodules), the
# tensors autograd saves for the backward pass are counted instead and scaled to the hooks' units (leaf-module
# outputs). Leaf outputs / saved elements per row, measured: 1.60 on the 96-256-128-1 MLP, 1.32 on the small CNN
# of the image tests, 1.40 on resnet18.
_SAVED_TO_OUTPUTS = 1.5


def _saved_elems_per_row(model: torch.nn.Module, x0: torch.Tensor) -> float:
    """Elements of the tensors autograd saves for the backward pass, per row, for the row ``x0`` (1, *fs).

    The difference between probes of 4 and 2 copies of the row, so that parameters and constants cancel; a
    warm-up call comes first (TorchScript's profiling executor saves other tensors on its first call). A
    storage shared by several saved tensors counts once. 0 when the probe fails.
    """

    def count(k: int) -> int:
        seen: dict[int, int] = {}

        def pack(t: torch.Tensor) -> torch.Tensor:
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes() // max(1, t.element_size())
            return t

        p = x0.expand(k, *x0.shape[1:]).clone().requires_grad_(True)  # (k, *fs)
        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(p)
        return sum(seen.values())

    try:
        with _buffers_restored(model):
            count(2)
            return max(0.0, (count(4) - count(2)) / 2)
    except (RuntimeError, ValueError):
        return 0.0


def _activation_elems_per_point(model: torch.nn.Module, x1: torch.Tensor) -> int:
    """Elements held per path point: the outputs of every leaf module on a probe of one or a few rows ``x1``
    (forward hooks), per row.

    Where hooks see no layer (TorchScript modules take none, torch.export graph modules and models without
    submodules show only their output), the tensors autograd saves per row times :data:`_SAVED_TO_OUTPUTS`;
    64x the input only when that counts nothing either. Train-mode buffers (BatchNorm statistics) are left as
    they were.
    """
    counted = 0

    def hook(_m: torch.nn.Module, _i: object, out: object) -> None:
        nonlocal counted
        if isinstance(out, torch.Tensor):
            counted += out.numel()

    handles = []
    has_layers = next(iter(model.children()), None) is not None
    if has_layers and not isinstance(model, torch.jit.ScriptModule):
        for m in model.modules():
            if next(iter(m.children()), None) is None:
                with contextlib.suppress(RuntimeError, AttributeError):
                    handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad(), _buffers_restored(model):
            model(x1)
    finally:
        for h in handles:
            h.remove()
    if counted > 0:
        return max(1, counted // x1.shape[0])
    saved = _saved_elems_per_row(model, x1[:1])
    if saved > 0:
        return max(1, math.ceil(_SAVED_TO_OUTPUTS * saved))
    return 64 * x1[0].numel()


def _bytes_per_point(model: torch.nn.Module, x1: torch.Tensor, element_size: int) -> int:
    """Memory one path point needs in a forward and backward, estimated on a probe of a few rows ``x1``."""
    act = _activation_elems_per_point(model, x1)
    # points and their gradient (2x input), activations and their gradients (2x), autograd slack (1.5x)
    return element_size * (2 * x1[0].numel() + 3 * act)


def _is_oom(err: BaseException) -> bool:
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return True
    msg = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def _even_share(total: int, most: int) -> int:
    """Size of each part when ``total`` items go into the fewest parts of at most ``most`` items, evenly."""
    parts = -(-total // max(1, most))
    return -(-total // parts)


class _Tuner:
    """Points per pass for one rule size on the CPU, chosen by timing the real passes (results do not depend
    on the cut, so measuring on real work costs only the passes that ran at a slower size).

    The sizes form a ladder of steps ``g``: ``g >= 0`` is a chunk of ``2**g`` whole rows of ``S`` points,
    ``g < 0`` one row in passes of ``ceil(S / 2**-g)`` points, down to one point. A hill climb on it: the start
    (the largest step within ``start`` points) is timed on :attr:`SAMPLES` passes; then a neighbour of the
    fastest step so far (one up first, then one down) is timed on as many passes, alternating with passes at the
    fastest step, so that both are timed under the same conditions: the first pass at a new shape pays for
    allocations and kernel selection (40-60% slower on the small CNN), a process's first passes are slower
    still, and passes vary by ~5%. Each step's fastest pass counts; a trial within :attr:`CLOSE` of the fastest
    is timed three times as long, and one whose first pass is below half the best rate is dropped at once. It
    stops when no untried neighbour of the fastest step is left.

    Measured by hand, points per pass that do best on one CPU thread (50 steps, 52 points a row, NHWC points):
    small CNN 32x32 104-312, 64x64 26; resnet18 64x64 52-104, 224x224 8; the 96-256-128-1 MLP ~6,700.
    """

    SAMPLES = 3  # passes timed per step; the fastest counts
    CLOSE = 0.05  # a trial within 5% of the fastest step gets 3x the passes (both keep alternating)

    def __init__(self, start: int, points_per_row: int, cap: int) -> None:
        self.S = points_per_row
        self.cap = max(1, cap)  # points per pass that memory allows
        self.most = self.cap  # points in all the rows of this run
        self.now = self.trial = self.step(min(max(1, start), self.cap))  # the next pass's step; the timed one
        self.best: int | None = None  # the fastest step so far (None while timing the start)
        self.rates: dict[int, float] = {}  # step -> best points/s
        self.counts: dict[int, int] = {}
        self.done = False

    def step(self, points: int) -> int:
        """The largest step whose passes hold at most ``points`` points (the smallest step when none does)."""
        if points >= self.S:
            return (points // self.S).bit_length() - 1
        parts = -(-self.S // points)
        return -min((parts - 1).bit_length(), (self.S - 1).bit_length())

    def size(self, g: int) -> int:
        """Points in one pass at step ``g``."""
        return self.S << g if g >= 0 else -(-self.S // (1 << -g))

    def shape(self) -> tuple[int, int]:
        """(rows per chunk, points of each row per pass) at the current step."""
        return (1 << self.now, self.S) if self.now >= 0 else (1, self.size(self.now))

    def limit(self, most: int) -> None:
        """This run has ``most`` points in all (rows x points per row): no trial of larger passes in it. Passes
        that come out smaller than planned (the last rows) are not timed."""
        self.most = max(1, most)

    def record(self, points: int, seconds: float) -> None:
        """One pass of ``points`` points took ``seconds``; passes of another size than planned are ignored."""
        g = self.now
        if self.done or points != self.size(g) or seconds <= 0.0:
            return
        self.rates[g] = max(self.rates.get(g, 0.0), points / seconds)
        self.counts[g] = self.counts.get(g, 0) + 1
        if g != self.trial:  # a pass at the fastest step, between two of the trial's
            self.now = self.trial
            return
        best_rate = self.rates[self.best] if self.best is not None else 0.0
        close = abs(self.rates[g] - best_rate) < self.CLOSE * best_rate  # then time both longer
        if self.counts[g] < self.SAMPLES * (3 if close else 1) and self.rates[g] >= 0.5 * best_rate:
            self.now = self.trial if self.best is None else self.best
            return
        self.best = max(self.rates, key=self.rates.__getitem__)
        for candidate in (self.best + 1, self.best - 1):
            fits = self.size(candidate) <= min(self.cap, self.most) and -candidate <= (self.S - 1).bit_length()
            if fits and candidate not in self.rates:
                self.now = self.trial = candidate
                return
        self.now = self.trial = self.best
        self.done = True


class _PassSizes:
    """How a chunk of path points is cut: (rows per chunk, points of each row per forward and backward).

    The memory budget gives ``points`` per pass: ``P >= S`` points (``S`` per row) make chunks of ``P // S``
    whole rows, fewer make one row whose points go through the fewest equal passes of at most ``P``. Given
    ``rows`` and/or ``per_row`` fix the cut instead. ``tuners`` (CPU) move ``P`` by timing the passes, one
    :class:`_Tuner` per rule size, kept between calls. On out-of-memory :meth:`shrink` halves the rows, then the
    points per row, and the cut stays fixed from then on.
    """

    def __init__(
        self,
        points: int,
        *,
        cap: int | None = None,
        rows: int | None = None,
        per_row: int | None = None,
        tuners: dict[int, _Tuner] | None = None,
    ) -> None:
        self.points = max(1, int(points))
        self.cap = max(self.points, int(cap or self.points))
        self.rows = rows
        self.per_row = per_row
        self.tuners = tuners
        self._tuner: _Tuner | None = None
        self.channels_last = False  # points of (n, C, H, W) inputs laid out NHWC (see _use_channels_last)

    def begin(self, points_per_row: int, n_rows: int) -> None:
        """Start a run over ``n_rows`` rows with ``points_per_row`` points each."""
        self._tuner = None
        if self.tuners is None or self.rows is not None or self.per_row is not None:
            return
        S = points_per_row
        tuner = self.tuners.get(S)
        if tuner is None:
            hint = next((t.size(t.now) for t in self.tuners.values() if t.done), self.points)  # another rule's
            tuner = self.tuners[S] = _Tuner(hint, S, self.cap)
        tuner.limit(n_rows * S)
        self._tuner = tuner

    def shape(self, points_per_row: int) -> tuple[int, int]:
        """(rows per chunk, points of each row per pass) for rows of ``points_per_row`` points."""
        S = points_per_row
        if self.rows is not None or self.per_row is not None:
            per_row = _even_share(S, min(S, self.per_row or S))
            rows = self.rows if self.rows is not None else max(1, self.points // per_row)
            return rows, per_row
        tuner = None if self.tuners is None else self.tuners.get(S)
        if tuner is not None:
            return tuner.shape()
        return (self.points // S, S) if self.points >= S else (1, _even_share(S, self.points))

    def record(self, points: int, seconds: float) -> None:
        if self._tuner is not None:
            self._tuner.record(points, seconds)

    def shrink(self, rows: int, per_row: int) -> tuple[int, int] | None:
        """After out-of-memory at ``rows`` x ``per_row`` points: half the rows, or else half the points per
        row; None at one row and one point."""
        if rows > 1:
            self.rows, self.per_row = rows // 2, per_row
        elif per_row > 1:
            self.rows, self.per_row = 1, per_row // 2
        else:
            return None
        self.tuners, self._tuner = None, None
        return self.rows, self.per_row


def _accepts_channels_last(model: torch.nn.Module, x: torch.Tensor, plain: torch.Tensor | None = None) -> bool:
    """Whether the model gives the same outputs on a few rows ``x`` (k, C, H, W) laid out channels-last (NHWC)
    as on them as they are (``plain``, computed if not given).

    On the CPU oneDNN's convolutions run faster on NHWC inputs, and the layout carries through the network.
    Measured on one thread, forward+backward points/s, NCHW -> NHWC points: small CNN 32x32 ~5,000 -> 6,200,
    resnet18 64x64 ~98 -> 113, 224x224 ~9.5 -> 10.2. A model that calls ``.view`` on a layer's output
    refuses NHWC tensors: the probe catches that and the points stay NCHW.
    """
    try:
        with torch.no_grad(), _buffers_restored(model):
            plain = model(x) if plain is None else plain
            nhwc = model(x.contiguous(memory_format=torch.channels_last))
    except (RuntimeError, ValueError):
        return False
    if not isinstance(nhwc, torch.Tensor) or nhwc.shape != plain.shape:
        return False
    a, b = plain.detach().double(), nhwc.detach().double()
    return bool((a - b).abs().max().item() <= 1e-4 * (1.0 + a.abs().max().item()))


def _use_channels_last(
    model: torch.nn.Module, x: torch.Tensor, device: torch.device, plain: torch.Tensor | None = None
) -> bool:
    """Whether the engine lays the path points of inputs ``x`` (k, *fs) on ``device`` out channels-last: on the
    CPU, for (k, C, H, W) images, when the model takes them (:func:`_accepts_channels_last`)."""
    return device.type == "cpu" and x.dim() == 4 and _accepts_channels_last(model, x, plain)


# tuned pass sizes per model (weakly held), input shape, dtype, device, thread count and memory cap in points;
# per rule size (points per row) inside
_TUNERS: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, dict[int, _Tuner]]] = weakref.WeakKeyDictionary()


def _plan_passes(
    callers_model: torch.nn.Module,
    model: torch.nn.Module,
    x: torch.Tensor,
    device: torch.device,
    dtype: torch.dtype,
    memory_budget_mb: float,
    chunk_rows: int | None,
    points_per_pass: int | None,
    alone: torch.Tensor | None = None,
) -> _PassSizes:
    """The cut of path points into passes for rows that do not interact, and their memory layout.

    Fixed when ``chunk_rows`` or ``points_per_pass`` are given; else from the memory budget, and on the CPU
    timed from :data:`CPU_WORKING_SET_MB` on (:class:`_Tuner`). ``callers_model`` keys the tuned sizes kept
    between calls (``model`` may be a converted copy of it). x : (n, *fs) on the CPU; ``alone``, if known, the
    model's output on x[:1].
    """
    per_row = None if points_per_pass is None else int(points_per_pass)
    probe = x[: min(x.shape[0], 2)].to(device)  # (1 or 2, *fs): BatchNorm in train mode wants two rows
    if chunk_rows is not None:
        sizes = _PassSizes(1, rows=int(chunk_rows), per_row=per_row)
    else:
        budget = memory_budget_mb
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            budget = min(memory_budget_mb, 0.6 * free / 2**20)
        per_point = _bytes_per_point(model, probe, 8 if dtype == torch.float64 else 4)
        cap = max(1, int(budget * 2**20 // per_point))  # points per pass the memory budget allows
        if device.type != "cpu":
            sizes = _PassSizes(cap, per_row=per_row)
        elif per_row is not None:
            sizes = _PassSizes(min(cap, max(1, int(CPU_WORKING_SET_MB * 2**20 // per_point))), per_row=per_row)
        else:
            key = (tuple(x.shape[1:]), dtype, str(device), torch.get_num_threads(), cap)
            try:
                tuners = _TUNERS.setdefault(callers_model, {}).setdefault(key, {})
            except TypeError:  # a model that cannot be weakly referenced: tune within this call only
                tuners = {}
            start = min(cap, max(1, int(CPU_WORKING_SET_MB * 2**20 // per_point)))
            sizes = _PassSizes(start, cap=cap, tuners=tuners)
    sizes.channels_last = _use_channels_last(model, probe[:1], device, alone)
    return sizes


# --- the core pass -----------------------------------------------------------------------------------------


def _with_end_points(alphas: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Append a=0 and a=1 with weight 0 when the rule lacks them; return their positions too."""
    a, w = list(alphas), list(weights)
    i0 = next((i for i, v in enumerate(a) if v == 0.0), None)
    if i0 is None:
        a.append(0.0)
        w.append(0.0)
        i0 = len(a) - 1
    i1 = next((i for i, v in enumerate(a) if v == 1.0), None)
    if i1 is None:
        a.append(1.0)
        w.append(0.0)
        i1 = len(a) - 1
    return np.asarray(a), np.asarray(w), i0, i1


def _pass_batched(
    model: torch.nn.Module,
    x: torch.Tensor,
    b: torch.Tensor,
    diff: torch.Tensor,
    target: torch.Tensor | None,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    autocast: bool,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward and one backward over the path points ``alphas`` of every row of a chunk.

    x, b, diff = x - b : (n, *fs); alphas, weights : (k,). Returns the weighted gradient sum
    ``sum_s weights[s] * grad F(b + alphas[s] * diff)`` (n, *fs) and the outputs at the points (k, n).
    ``channels_last`` lays (n, C, H, W) points out as NHWC in memory (same values, faster convolutions on CPU).
    """
    n, fs = x.shape[0], tuple(x.shape[1:])
    k = alphas.shape[0]
    a = alphas.view(k, 1, *([1] * len(fs)))
    points = torch.addcmul(b.unsqueeze(0), a, diff.unsqueeze(0)).reshape(k * n, *fs)  # (k * n, *fs), one kernel
    if channels_last:
        points = points.contiguous(memory_format=torch.channels_last)
    points.requires_grad_(True)
    tgt = None if target is None else target.repeat(k)  # (k * n,)
    ctx = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    with torch.enable_grad(), ctx:
        out = model(points)
    sel = select_output(out, tgt).float() if autocast else select_output(out, tgt)  # (k * n,)
    (grads,) = torch.autograd.grad(sel.sum(), points)  # grads: (k * n, *fs)
    grads = grads.reshape(k, n * int(np.prod(fs, dtype=np.int64)))  # (k, n * F)
    wsum = (weights.to(grads.dtype) @ grads).reshape(n, *fs)  # (n, *fs)
    return wsum, sel.detach().reshape(k, n)


def _pass_coupled(
    model: torch.nn.Module,
    context: torch.Tensor,
    pos: int,
    b: torch.Tensor,
    target: torch.Tensor | None,
    alphas: torch.Tensor,
    weights: torch.Tensor,
    i0: int,
    i1: int,
    autocast: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact path for models that couple rows: the output of row ``pos`` of ``context`` as a function of that
    row alone, the other rows held at their values. One forward and one backward per path point.

    context : (n, *fs), the whole input batch; b : (*fs,), the row's baseline; target : (1,) or None.
    Returns the row's attributions (*fs,), F(x) and F(x') as 0-d tensors.
    """
    xr = context[pos]
    diff = xr - b  # (*fs,)
    total = torch.zeros_like(xr)
    f = [torch.zeros((), dtype=context.dtype, device=context.device) for _ in range(2)]
    ctx = torch.autocast(device_type="cuda", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    for s in range(alphas.shape[0]):
        p = (b + alphas[s] * diff).unsqueeze(0).requires_grad_(True)  # (1, *fs)
        batch = torch.cat([context[:pos], p, context[pos + 1 :]])  # (n, *fs)
        with torch.enable_grad(), ctx:
            out = model(batch)
        sel = select_output(out[pos : pos + 1], target)  # (1,)
        sel = sel.float() if autocast else sel
        (g,) = torch.autograd.grad(sel.sum(), p)  # (1, *fs)
        total += weights[s].to(total.dtype) * g[0].to(total.dtype)
        if s == i0:
            f[0] = sel.detach()[0].to(context.dtype)
        if s == i1:
            f[1] = sel.detach()[0].to(context.dtype)
    return diff * total, f[1], f[0]


def _rel(delta: torch.Tensor, fx: torch.Tensor, fb: torch.Tensor, delta_floor: float = 0.0) -> torch.Tensor:
    """|delta| / max(|F(x) - F(x')|, delta_floor, 1e-6 (1 + max(|F(x)|, |F(x')|)))."""
    span = (fx - fb).abs()
    floor = (1e-6 * (1.0 + torch.maximum(fx.abs(), fb.abs()))).clamp(min=float(delta_floor))
    return delta.abs() / torch.maximum(span, floor)


def _run_fixed(
    model: torch.nn.Module,
    x: torch.Tensor,
    b: torch.Tensor,
    target: torch.Tensor | None,
    method: str,
    n_steps: int,
    *,
    device: torch.device,
    sizes: _PassSizes,
    autocast: bool,
    progress: ProgressFn | None,
    progress_offset: int,
    progress_total: int,
    notes: list[str],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IG at a fixed step count over rows that do not interact, chunk by chunk, each chunk's path points in one
    or more passes as ``sizes`` says; when memory runs out the cut shrinks and the work goes on.

    x : (n, *fs) and b : (1 or n, *fs) on the CPU. Returns attributions (n, *fs), F(x) (n,), F(x') (n,) on the
    CPU. A row's result is the same sum whatever the cut, up to float rounding.
    """
    al, wt, i0, i1 = _with_end_points(*rule(method, n_steps))
    S = len(al)
    alphas = torch.as_tensor(al, dtype=x.dtype, device=device)
    weights = torch.as_tensor(wt, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32, device=device)
    n = x.shape[0]
    attr = torch.empty_like(x)
    fx = torch.empty(n, dtype=x.dtype)
    fb = torch.empty(n, dtype=x.dtype)
    sizes.begin(S, n)
    start = 0
    while start < n:
        stop = min(n, start + sizes.shape(S)[0])
        c = stop - start
        xc = x[start:stop].to(device, non_blocking=True)  # (c, *fs)
        bc = (b if b.shape[0] == 1 else b[start:stop]).to(device, non_blocking=True).expand_as(xc)
        tc = None if target is None else target[start:stop].to(device)
        diff = xc - bc  # (c, *fs)
        total = torch.zeros_like(diff)  # weighted gradients summed over the passes: (c, *fs)
        f_ends: dict[int, torch.Tensor] = {}  # i0, i1 -> outputs (c,)
        a0 = 0
        while a0 < S:
            rows, per_row = sizes.shape(S)
            if rows < c:  # memory ran out: this chunk starts again with fewer rows
                break
            a1 = min(S, a0 + per_row)
            t0 = time.perf_counter()
            try:
                wsum, f = _pass_batched(
                    model, xc, bc, diff, tc, alphas[a0:a1], weights[a0:a1], autocast, sizes.channels_last
                )
            except (RuntimeError, torch.cuda.OutOfMemoryError) as err:
                if not _is_oom(err):
                    raise
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                smaller = sizes.shrink(c, a1 - a0)
                if smaller is None:
                    raise AttributionError(
                        f"memory ran out with a single path point of one input of shape {tuple(x.shape[1:])} per "
                        f"forward and backward on {device}; free memory there, use smaller inputs or another device"
                    ) from err
                notes.append(
                    f"memory ran out at {c} rows x {a1 - a0} points per pass; went on with {smaller[0]} rows x "
                    f"at most {smaller[1]} points"
                )
                continue
            sizes.record(c * (a1 - a0), time.perf_counter() - t0)
            total += wsum
            for i in (i0, i1):
                if a0 <= i < a1:
                    f_ends[i] = f[i - a0]
            a0 = a1
        if a0 < S:
            continue
        attr[start:stop] = (diff * total).detach().cpu()
        fx[start:stop] = f_ends[i1].to(x.dtype).cpu()
        fb[start:stop] = f_ends[i0].to(x.dtype).cpu()
        start = stop
        if progress is not None:
            progress(progress_offset + start, progress_total)
    return attr, fx, fb


def _run_coupled(
    model: torch.nn.Module,
    context: torch.Tensor,
    rows: torch.Tensor,
    b: torch.Tensor,
    target: torch.Tensor | None,
    method: str,
    n_steps: int,
    *,
    device: torch.device,
    autocast: bool,
    progress: ProgressFn | None,
    progress_offset: int,
    progress_total: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """IG at a fixed step count for rows that interact: :func:`_pass_coupled` row by row.

    context : (n, *fs), the whole input batch on the CPU; rows : (m,) positions in it; b : (1 or m, *fs);
    target : (m,) or None. Returns attributions (m, *fs), F(x) (m,), F(x') (m,) on the CPU.
    """
    al, wt, i0, i1 = _with_end_points(*rule(method, n_steps))
    alphas = torch.as_tensor(al, dtype=context.dtype, device=device)
    weights = torch.as_tensor(wt, dtype=context.dtype, device=device)
    ctx = context.to(device)
    m = rows.shape[0]
    attr = torch.empty((m, *context.shape[1:]), dtype=context.dtype)
    fx = torch.empty(m, dtype=context.dtype)
    fb = torch.empty(m, dtype=context.dtype)
    for k in range(m):
        bk = (b[0] if b.shape[0] == 1 else b[k]).to(device)
        tk = None if target is None else target[k : k + 1].to(device)
        a_k, fx_k, fb_k = _pass_coupled(model, ctx, int(rows[k]), bk, tk, alphas, weights, i0, i1, autocast)
        attr[k], fx[k], fb[k] = a_k.cpu(), fx_k.cpu(), fb_k.cpu()
        if progress is not None:
            progress(progress_offset + k + 1, progress_total)
    return attr, fx, fb


def _auto_schedule(max_steps: int) -> list[int]:
    """The step counts n_steps="auto" tries: :data:`AUTO_SCHEDULE` below ``max_steps``, then ``max_steps``."""
    return [s for s in AUTO_SCHEDULE if s < max_steps] + [int(max_steps)]


@contextlib.contextmanager
def _buffers_restored(model: torch.nn.Module) -> Iterator[None]:
    """Put back every buffer a forward pass in train mode may update (BatchNorm running statistics)."""
    if not any(m.training for m in model.modules()):
        yield
        return
    saved = [(buf, buf.detach().clone()) for buf in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buf, value in saved:
                buf.copy_(value)


def _probe_outputs(model: torch.nn.Module, xp: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Run the model twice on a few rows ``xp`` (k, *fs): check that its output is deterministic and fits the
    target; return the output (k, ...). Failures become one clear AttributionError."""
    try:
        with torch.no_grad():
            out1 = model(xp)
            out2 = model(xp)
    except (RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = (
            "call model.eval() or pass more than one row"
            if xp.shape[0] == 1 and any(m.training for m in model.modules())
            else "check that the data's features match the model's inputs"
        )
        raise AttributionError(f"the model failed on inputs of shape {tuple(xp.shape)} ({first}); {hint}") from err
    if not isinstance(out1, torch.Tensor):
        raise AttributionError(
            f"the model returned {type(out1).__name__}, not a tensor; wrap it so it returns (rows,) or "
            "(rows, classes)"
        )
    a, b = out1.detach().double(), out2.detach().double()
    if a.shape == b.shape and (a - b).abs().max().item() > 1e-4 * (1.0 + a.abs().max().item()):
        raise AttributionError(
            "the model returns different outputs for the same input (dropout in train mode?); call model.eval() "
            "before computing attributions"
        )
    n_outputs = 1 if out1.dim() == 1 else int(out1.shape[-1])
    _check_target_range(target, n_outputs)
    select_output(out1, None if target is None else target[: xp.shape[0]].to(out1.device))  # shape checks
    return out1.detach()


def integrated_gradients(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    baselines: object = "zero",
    references: bool = False,
    target: object = None,
    method: str = "gausslegendre",
    n_steps: int | str = 50,
    tolerance: float = 0.01,
    max_steps: int = 256,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    bf16: bool = False,
    memory_budget_mb: float = 1024,
    chunk_rows: int | None = None,
    points_per_pass: int | None = None,
    check_independence: bool = True,
    delta_floor: float = 0.0,
    progress: ProgressFn | None = None,
) -> IGResult:
    """Integrated Gradients for a batch of rows.

    Parameters
    ----------
    model : torch.nn.Module or torch.jit.ScriptModule
        Maps (m, *feature_shape) to (m,), (m, 1) or (m, k). Put it in eval mode first. It is not modified.
    x : Tensor of shape (n_rows, *feature_shape)
    baselines : "zero", float, or Tensor
        ``"zero"`` (default) or a number: that constant everywhere; a tensor of shape ``feature_shape`` or
        ``(1, *feature_shape)``: one row for all (e.g. the data mean); ``(n_rows, *feature_shape)``: one per row.
    references : bool, default False
        Treat ``baselines`` of shape ``(n_refs, *feature_shape)`` as reference rows and average IG over them
        (expected-gradients style). Completeness then holds against the mean reference output.
    target : None, int, or LongTensor of shape (n_rows,)
        Output index to explain per row; ``None`` for single-output models.
    method : str, default "gausslegendre"
        One of :data:`audit.attribution.quadrature.METHODS`.
    n_steps : int or "auto", default 50
        Quadrature steps. ``"auto"`` starts at 16 and doubles only for rows whose relative completeness error
        is above ``tolerance``, up to ``max_steps`` (the last try uses ``max_steps`` itself).
    tolerance : float, default 0.01
        Relative completeness error a row must reach with ``n_steps="auto"``.
    max_steps : int, default 256
        Cap for ``n_steps="auto"``; at least 16.
    device : "cpu", "cuda" or torch.device
    dtype : torch.float32 or torch.float64, optional
        Compute precision; float64 is the reference mode (the model is copied and converted).
    bf16 : bool, default False
        bf16 autocast on CUDA for the forward pass; gradients and sums stay float32.
    memory_budget_mb : float, default 1024
        Caps the path points in one forward/backward: as many whole rows as fit, or, when one row's points do
        not fit, one row in several passes. On the CPU the engine starts at :data:`CPU_WORKING_SET_MB` and
        times its first passes to find the fastest size within the budget (kept for later calls on the same
        model and input shape); on CUDA the budget is also capped by 60% of free memory. When memory runs out
        anyway, the rows per chunk halve, then the points per pass, down to one point of one row. Results do
        not depend on the cut, up to float rounding.
    chunk_rows : int, optional
        Overrides the budget with a fixed number of rows per chunk (all their points in one pass unless
        ``points_per_pass`` says otherwise); no timing.
    points_per_pass : int, optional
        Fixes how many path points of each row go through one forward/backward (at most; a row's points are cut
        into equal passes); no timing.
    check_independence : bool, default True
        Probe whether rows interact within a batch; if they do, use the slow exact per-point path.
    delta_floor : float, default 0.0
        Floor of the denominator of the relative completeness error, ``|delta| / max(|F(x) - F(x')|,
        delta_floor)``: rows whose output barely moves are judged on their absolute error against this typical
        change (the pipeline passes a fraction of the data set's median ``|F(x) - F(x')|``).
    progress : callable(done_rows, total_rows), optional

    Returns
    -------
    IGResult
        Attributions of shape (n_rows, *feature_shape), per-row F(x), F(x'), completeness errors and steps.

    Raises
    ------
    AttributionError
        One line naming the problem and what to do: bad steps, method, baseline shape, target index, dtype,
        device or budget; a model that fails on the inputs, is not deterministic (dropout in train mode), or
        couples rows over more than :data:`COUPLED_MAX_ROW_EVALS` rows of exact-path work.
    """
    _check_steps(method, n_steps, max_steps)
    if not isinstance(x, torch.Tensor):
        raise AttributionError("inputs must be a torch.Tensor of shape (rows, features...)")
    if x.dim() < 2 or x.shape[0] < 1:
        raise AttributionError(
            f"inputs must have shape (rows, features...) with at least one row, got {tuple(x.shape)}"
        )
    if not x.dtype.is_floating_point:
        x = x.float()
    if not torch.isfinite(x).all():
        raise AttributionError("inputs hold NaN or infinite values; clean the data first")
    if not (math.isfinite(delta_floor) and delta_floor >= 0):
        raise AttributionError(f"delta_floor must be a finite number >= 0, got {delta_floor}")
    if not (0 < tolerance < 1e3):
        raise AttributionError(f"tolerance must be a positive number, got {tolerance}")
    dev = resolve_device(device)
    if bf16 and dev.type != "cuda":
        raise AttributionError("bf16 autocast needs a CUDA device; drop --bf16 or use --device cuda")
    if memory_budget_mb <= 0:
        raise AttributionError(f"memory_budget_mb must be positive, got {memory_budget_mb}")
    for name, value in (("chunk_rows", chunk_rows), ("points_per_pass", points_per_pass)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
            raise AttributionError(f"{name} must be at least 1 (a whole number), got {value!r}")

    work_dtype = dtype or (torch.float64 if x.dtype == torch.float64 else torch.float32)
    if work_dtype not in (torch.float32, torch.float64):
        raise AttributionError(f"dtype must be float32 or float64, got {work_dtype}")
    model_param = next(iter(model.parameters()), None)
    model_dtype = model_param.dtype if model_param is not None else torch.float32
    model_device = model_param.device if model_param is not None else dev
    callers_model = model
    if work_dtype != model_dtype or model_device != dev:
        with warnings.catch_warnings():  # ScriptModule copies warn about .grad of non-leaf parameters
            warnings.simplefilter("ignore")
            model = copy.deepcopy(model).to(dev, work_dtype)  # a copy: the caller's model stays as it was
    x = x.detach().to("cpu", work_dtype)
    n = x.shape[0]
    refs = _as_baseline(baselines, x, references).to(work_dtype)
    tgt = _as_target(target, n, torch.device("cpu"))
    notes: list[str] = []

    with _buffers_restored(model):
        xp = x[: min(n, 4)].to(dev)  # (k, *fs)
        out_p = _probe_outputs(model, xp, tgt)
        independent, alone = True, None  # alone: the model's output on x[:1] (1, ...)
        if check_independence:
            independent, alone = _independence(model, xp, with_neighbours=out_p)
            if not independent:
                notes.append(
                    "the model's output for a row depends on the other rows of its batch (BatchNorm in train mode "
                    "or cross-row attention?); each row was attributed with the other rows held at their values, "
                    "one forward and backward per path point, which is exact but slow"
                )

        steps_list = _auto_schedule(max_steps) if n_steps == "auto" else [int(n_steps)]
        points_per_row = steps_list[0] + 2
        evals = n * n * points_per_row * len(refs if references else [refs])  # rows through the model, exact path
        if not independent and evals > COUPLED_MAX_ROW_EVALS:
            k_max = int(math.sqrt(COUPLED_MAX_ROW_EVALS / (evals / (n * n))))
            raise AttributionError(
                f"the model's output for a row depends on the other rows of its batch (BatchNorm in train mode?) "
                f"and the exact path for {n} rows would push {evals:,} rows through it; call model.eval() if the "
                f"model is used that way, or explain at most {k_max} rows at a time"
            )
        sizes = None  # the exact path for coupled rows takes one point of one row at a time
        if independent:
            sizes = _plan_passes(
                callers_model, model, x, dev, work_dtype, memory_budget_mb, chunk_rows, points_per_pass, alone
            )

        def run(
            rows: torch.Tensor | None, b: torch.Tensor, steps: int, k: int, report: bool
        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            """IG for x[rows] (all rows when None) against baselines b (1 or len(rows), *fs)."""
            t = tgt if tgt is None or rows is None else tgt[rows]
            prog = dict(progress=progress if report else None, progress_offset=k * n, progress_total=n * n_refs)
            if sizes is not None:
                xs = x if rows is None else x[rows]
                return _run_fixed(
                    model, xs, b, t, method, steps, device=dev, sizes=sizes, autocast=bf16, notes=notes, **prog
                )
            idx = torch.arange(n) if rows is None else rows
            return _run_coupled(model, x, idx, b, t, method, steps, device=dev, autocast=bf16, **prog)

        # Step counts outermost, references inside: every reference of a row uses the same steps.
        ref_rows = list(refs) if references else [refs]
        n_refs = len(ref_rows)
        attributions = torch.zeros_like(x)
        fx = torch.zeros(n, dtype=work_dtype)
        fb = torch.zeros(n, dtype=work_dtype)
        steps_used = torch.full((n,), steps_list[0], dtype=torch.long)
        todo: torch.Tensor | None = None  # rows still to refine; None = all
        for level, s in enumerate(steps_list):
            m = n if todo is None else todo.numel()
            attr_s = torch.zeros((m, *x.shape[1:]), dtype=work_dtype)
            fb_s = torch.zeros(m, dtype=work_dtype)
            abs_delta_s = torch.zeros(m, dtype=work_dtype)  # sum over references of |delta_k|
            abs_span_s = torch.zeros(m, dtype=work_dtype)  # sum over references of |F(x) - F(ref_k)|
            for k, ref in enumerate(ref_rows):
                b = ref.unsqueeze(0) if references else ref  # (1 or n, *fs)
                b = b if todo is None or b.shape[0] == 1 else b[todo]
                a, fx_k, fb_k = run(todo, b, s, k, level == 0)
                attr_s += a
                fb_s += fb_k
                abs_delta_s += (a.sum(dim=tuple(range(1, a.dim()))) - (fx_k - fb_k)).abs()
                abs_span_s += (fx_k - fb_k).abs()
            rows = slice(None) if todo is None else todo
            attributions[rows] = attr_s / n_refs
            fx[rows] = fx_k
            fb[rows] = fb_s / n_refs
            steps_used[rows] = s
            # a row is done when the averaged completeness error is within tolerance and so is the error
            # without cancellation between references (sum |delta_k| / sum |span_k|; the same for one reference)
            avg_delta = attributions[rows].sum(dim=tuple(range(1, x.dim()))) - (fx[rows] - fb[rows])
            no_cancel = _rel(abs_delta_s, abs_span_s, torch.zeros_like(abs_span_s), delta_floor * n_refs)
            worst = torch.maximum(_rel(avg_delta, fx[rows], fb[rows], delta_floor), no_cancel)
            left = torch.nonzero(worst > tolerance).flatten()  # positions within this level's rows
            if left.numel() == 0:
                break
            todo = left if todo is None else todo[left]
    delta = attributions.sum(dim=tuple(range(1, attributions.dim()))) - (fx - fb)
    first_rule = len(_with_end_points(*rule(method, steps_list[0]))[0])  # points per row at the first step count
    chunk, per_row = sizes.shape(first_rule) if sizes is not None else (1, 1)
    return IGResult(
        attributions=attributions,
        f_x=fx,
        f_baseline=fb,
        delta=delta,
        rel_delta=_rel(delta, fx, fb, delta_floor),
        steps=steps_used,
        method=method,
        n_steps=n_steps,
        batch_independent=independent,
        chunk_rows=min(chunk, n),
        points_per_pass=per_row,
        notes=tuple(dict.fromkeys(notes)),
    )
