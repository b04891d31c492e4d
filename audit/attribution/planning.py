"""How the path points of a run are cut into passes (forward + backward) and laid out in memory.

A chunk of whole rows with all their points when that fits, else one row whose points go through several
passes, the weighted gradients summed across them (a resnet50 at 224x224 needs ~370 MB a point: one row of 52
points may not fit a GPU). The memory budget sets the largest pass (:func:`audit.attribution.memory.bytes_per_point`);
out of memory halves the rows, then the points per pass (:meth:`PassSizes.shrink`). On the CPU the fastest pass
size is found by timing the first passes (:class:`Tuner`), and image points go channels-last
(:func:`use_channels_last`). A row's result is the same whatever the cut, up to float rounding.

:func:`plan_passes` makes the :class:`PassSizes` that :func:`audit.attribution.passes.run_fixed` follows.
"""

from __future__ import annotations

import weakref

import torch

from audit.attribution.memory import bytes_per_point
from audit.attribution.probes import buffers_restored

__all__ = ["CPU_WORKING_SET_MB", "Tuner", "PassSizes", "accepts_channels_last", "use_channels_last", "plan_passes"]


# On the CPU a chunk whose working set stays near the caches is faster than one huge batch. Measured on the
# 96-256-128-1 MLP, 2,048 rows x 52 points, 2 cores, one interleaved run (rows/s by rows per chunk):
#   idle machine:        32: 9,877  64: 9,730  129: 9,458  256: 8,726  512: 7,356  1,024: 5,994  2,048: 5,218
#   another job at 200%: 32:   441  64:   591  129: 1,109  256: 1,882  512: 1,992  1,024: 2,226  2,048: 2,090
# (under contention every op waits for a descheduled thread, so fewer, larger chunks win). 64 MB (129 rows
# here) is the idle optimum; memory_budget_mb still caps it lower. CUDA uses the budget and free memory.
# The best size also depends on the model (on one thread: ~8 points of a resnet18 at 224x224, ~700 MB; ~26 of
# the small test CNN at 64x64, ~38 MB), so on the CPU this is where the timed search (:class:`Tuner`) starts.
CPU_WORKING_SET_MB = 64


def _even_share(total: int, most: int) -> int:
    """Size of each part when ``total`` items go into the fewest parts of at most ``most`` items, evenly."""
    parts = -(-total // max(1, most))
    return -(-total // parts)


class Tuner:
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

    Parameters
    ----------
    start : int
        Points per pass to time first (the engine starts at :data:`CPU_WORKING_SET_MB` worth of points).
    points_per_row : int
        ``S``: path points of one row (the rule's nodes plus the end points it lacks).
    cap : int
        Most points per pass that the memory budget allows; no step above it is tried.
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


class PassSizes:
    """How a chunk of path points is cut: (rows per chunk, points of each row per forward and backward).

    The memory budget gives ``points`` per pass: ``P >= S`` points (``S`` per row) make chunks of ``P // S``
    whole rows, fewer make one row whose points go through the fewest equal passes of at most ``P``. Given
    ``rows`` and/or ``per_row`` fix the cut instead. ``tuners`` (CPU) move ``P`` by timing the passes, one
    :class:`Tuner` per rule size, kept between calls. On out-of-memory :meth:`shrink` halves the rows, then the
    points per row, and the cut stays fixed from then on.

    Parameters
    ----------
    points : int
        ``P``: points per pass from the memory budget (the start of the timed search with ``tuners``).
    cap : int, optional
        Most points per pass that memory allows (the tuners' ceiling); ``points`` by default.
    rows : int, optional
        Fixed rows per chunk.
    per_row : int, optional
        Fixed most points of one row per pass (the row's points are cut into equal passes).
    tuners : dict of int to Tuner, optional
        Timed search per rule size ``S``, shared with later calls on the same model and input shape.

    Attributes
    ----------
    channels_last : bool
        Points of (n, C, H, W) inputs are laid out NHWC (set by :func:`plan_passes`).
    """

    def __init__(
        self,
        points: int,
        *,
        cap: int | None = None,
        rows: int | None = None,
        per_row: int | None = None,
        tuners: dict[int, Tuner] | None = None,
    ) -> None:
        self.points = max(1, int(points))
        self.cap = max(self.points, int(cap or self.points))
        self.rows = rows
        self.per_row = per_row
        self.tuners = tuners
        self._tuner: Tuner | None = None
        self.channels_last = False  # points of (n, C, H, W) inputs laid out NHWC (see use_channels_last)

    def begin(self, points_per_row: int, n_rows: int) -> None:
        """Start a run over ``n_rows`` rows with ``points_per_row`` points each."""
        self._tuner = None
        if self.tuners is None or self.rows is not None or self.per_row is not None:
            return
        S = points_per_row
        tuner = self.tuners.get(S)
        if tuner is None:
            hint = next((t.size(t.now) for t in self.tuners.values() if t.done), self.points)  # another rule's
            tuner = self.tuners[S] = Tuner(hint, S, self.cap)
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
        """One pass of ``points`` points took ``seconds``: the tuner of this run learns from it, if any."""
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


def accepts_channels_last(model: torch.nn.Module, x: torch.Tensor, plain: torch.Tensor | None = None) -> bool:
    """Whether the model gives the same outputs on images laid out channels-last (NHWC) as on them as they are.

    On the CPU oneDNN's convolutions run faster on NHWC inputs, and the layout carries through the network.
    Measured on one thread, forward+backward points/s, NCHW -> NHWC points: small CNN 32x32 ~5,000 -> 6,200,
    resnet18 64x64 ~98 -> 113, 224x224 ~9.5 -> 10.2. A model that calls ``.view`` on a layer's output
    refuses NHWC tensors: the probe catches that and the points stay NCHW.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (k, C, H, W)
        A few rows, on the model's device.
    plain : Tensor of shape (k, ...), optional
        The model's output on ``x`` as it is, when already known.

    Returns
    -------
    bool
        False also when the model fails on the NHWC rows or returns another shape.
    """
    try:
        with torch.no_grad(), buffers_restored(model):
            plain = model(x) if plain is None else plain
            nhwc = model(x.contiguous(memory_format=torch.channels_last))
    except (RuntimeError, ValueError):
        return False
    if not isinstance(nhwc, torch.Tensor) or nhwc.shape != plain.shape:
        return False
    a, b = plain.detach().double(), nhwc.detach().double()
    return bool((a - b).abs().max().item() <= 1e-4 * (1.0 + a.abs().max().item()))


def use_channels_last(
    model: torch.nn.Module, x: torch.Tensor, device: torch.device, plain: torch.Tensor | None = None
) -> bool:
    """Whether the engine lays the path points out channels-last: on the CPU, for images, when the model takes
    them (:func:`accepts_channels_last`).

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (k, *feature_shape)
        A few rows, on ``device``; only (k, C, H, W) images qualify.
    device : torch.device
        Where the passes run.
    plain : Tensor of shape (k, ...), optional
        The model's output on ``x``, when already known.

    Returns
    -------
    bool
    """
    return device.type == "cpu" and x.dim() == 4 and accepts_channels_last(model, x, plain)


# tuned pass sizes per model (weakly held), input shape, dtype, device, thread count and memory cap in points;
# per rule size (points per row) inside
_TUNERS: weakref.WeakKeyDictionary[torch.nn.Module, dict[tuple, dict[int, Tuner]]] = weakref.WeakKeyDictionary()


def plan_passes(
    callers_model: torch.nn.Module,
    model: torch.nn.Module,
    x: torch.Tensor,
    device: torch.device,
    dtype: torch.dtype,
    memory_budget_mb: float,
    chunk_rows: int | None,
    points_per_pass: int | None,
    alone: torch.Tensor | None = None,
) -> PassSizes:
    """The cut of path points into passes for rows that do not interact, and their memory layout.

    Fixed when ``chunk_rows`` or ``points_per_pass`` are given; else from the memory budget, and on the CPU
    timed from :data:`CPU_WORKING_SET_MB` on (:class:`Tuner`); on CUDA the budget is also capped by 60% of
    free memory.

    Parameters
    ----------
    callers_model : torch.nn.Module
        The model as the caller passed it: keys the tuned sizes kept between calls (weakly held).
    model : torch.nn.Module
        The model the passes run (may be a converted copy of ``callers_model``).
    x : Tensor of shape (n_rows, *feature_shape)
        The rows, on the CPU, in ``dtype``.
    device : torch.device
    dtype : torch.float32 or torch.float64
    memory_budget_mb : float
    chunk_rows, points_per_pass : int or None
        Fix the cut (no timing).
    alone : Tensor of shape (1, ...), optional
        The model's output on ``x[:1]`` when known (saves a forward of the channels-last probe).

    Returns
    -------
    PassSizes
    """
    per_row = None if points_per_pass is None else int(points_per_pass)
    probe = x[: min(x.shape[0], 2)].to(device)  # (1 or 2, *fs): BatchNorm in train mode wants two rows
    if chunk_rows is not None:
        sizes = PassSizes(1, rows=int(chunk_rows), per_row=per_row)
    else:
        budget = memory_budget_mb
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            budget = min(memory_budget_mb, 0.6 * free / 2**20)
        per_point = bytes_per_point(model, probe, 8 if dtype == torch.float64 else 4)
        cap = max(1, int(budget * 2**20 // per_point))  # points per pass the memory budget allows
        if device.type != "cpu":
            sizes = PassSizes(cap, per_row=per_row)
        elif per_row is not None:
            sizes = PassSizes(min(cap, max(1, int(CPU_WORKING_SET_MB * 2**20 // per_point))), per_row=per_row)
        else:
            key = (tuple(x.shape[1:]), dtype, str(device), torch.get_num_threads(), cap)
            try:
                tuners = _TUNERS.setdefault(callers_model, {}).setdefault(key, {})
            except TypeError:  # a model that cannot be weakly referenced: tune within this call only
                tuners = {}
            start = min(cap, max(1, int(CPU_WORKING_SET_MB * 2**20 // per_point)))
            sizes = PassSizes(start, cap=cap, tuners=tuners)
    sizes.channels_last = use_channels_last(model, probe[:1], device, alone)
    return sizes
