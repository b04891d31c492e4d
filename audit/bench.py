"""Timing of our IG engine against Captum and against the plain forward+backward ceiling, in one run.

:func:`bench` times, on the same rows and step count, interleaved and repeated (best of ``repeats``):

- ``native``: :func:`audit.attribution.native.integrated_gradients` end to end, exactly as an audit runs it
  (independence probe, chunk sizing, path points, weighted sums, completeness);
- ``captum_best``: Captum at the fastest of several path-points-per-forward settings
  (:func:`audit.attribution.captum_ig.captum_attribute`, convergence delta included, as ours includes it);
- ``captum_default``: Captum with its default ``internal_batch_size=None`` (every point in one forward). It is
  slow and memory-hungry, so it runs once when one run takes more than ``slow_s`` seconds, and is skipped (None,
  with the reason in ``notes``) when its batch would need more than ``captum_default_max_mb``;
- ``ceiling``: the same number of path points per row as our engine pushes (with a rule that lacks the end
  points, the two extra points that give F(x) and F(x')), cut into the same passes as the engine's run of that
  round (rows per chunk, points of a row per pass) and laid out as the engine lays them (channels-last images
  on the CPU), each pass one forward and one backward of the sum of the explained outputs with respect to the
  points; only those passes are timed.

Every speed is rows/s at the given step count. :func:`default_model_and_rows` is the embedded default: the
96-256-128-1 ReLU MLP on 2,048 uniform rows, the configuration of the README figures.
"""

from __future__ import annotations

import copy
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch

from audit.attribution.base import batched_forward, model_dtype_device, resolve_device, select_output
from audit.attribution.captum_ig import captum_attribute, captum_version
from audit.attribution.memory import bytes_per_point
from audit.attribution.native import integrated_gradients
from audit.attribution.passes import points_per_row as engine_points_per_row
from audit.attribution.planning import use_channels_last
from audit.attribution.quadrature import METHODS, min_steps
from audit.errors import AttributionError

__all__ = ["bench", "default_model_and_rows", "format_table", "CAPTUM_CANDIDATES", "WIDE_SPREAD", "honesty_warnings"]

# path points per Captum forward tried for "Captum at its best" (plus n_rows: one step of every row per forward)
CAPTUM_CANDIDATES = (256, 512, 1024, 2048, 4096)
WIDE_SPREAD = 1.5  # largest over smallest per-round ratio beyond which the figures are called unreliable


def honesty_warnings(ratios: list[float], load: float | None, cores: int | None) -> list[str]:
    """What makes the timings untrustworthy: a machine busier than its cores (1-minute load average) or per-round
    ratios that disagree by more than :data:`WIDE_SPREAD` times."""
    out = []
    if load is not None and cores and load > cores:
        out.append(f"the machine is busy (load average {load:.1f} on {cores} cores): other work competes for the "
                   "CPUs and the ratios can be far off; rerun on an idle machine")
    if len(ratios) > 1 and min(ratios) > 0 and max(ratios) / min(ratios) > WIDE_SPREAD:
        out.append(f"the rounds disagree: native / Captum best ranged {min(ratios):.2f}x to {max(ratios):.2f}x; "
                   "trust the median, or rerun with more --repeats on a quieter machine")
    return out


def _load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):  # not on every platform
        return None


def default_model_and_rows(n_rows: int = 2048, *, seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    """The embedded benchmark: a 96-256-128-1 ReLU MLP (seeded weights, eval mode) and ``n_rows`` rows drawn
    uniformly from [0, 1), shape (n_rows, 96)."""
    gen = torch.Generator().manual_seed(seed)
    sizes = (96, 256, 128, 1)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        lin = torch.nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen) / a**0.5)
            lin.bias.copy_(0.1 * torch.randn(b, generator=gen))
        layers += [lin] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    x = torch.rand(n_rows, sizes[0], generator=gen)  # (n_rows, 96)
    return torch.nn.Sequential(*layers).eval(), x


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def _ceiling_seconds(
    model: torch.nn.Module,
    x: torch.Tensor,
    target: torch.Tensor | None,
    points_per_row: int,
    chunk_rows: int,
    device: torch.device,
    points_per_pass: int | None = None,
    channels_last: bool = False,
) -> float:
    """Seconds spent in forward+backward alone for ``points_per_row`` points of every row of x (n, *fs),
    chunk by chunk, each chunk's points in passes of at most ``points_per_pass`` per row (all by default),
    laid out channels-last when the engine does so; building the points is not timed."""
    per_pass = points_per_row if points_per_pass is None else max(1, min(points_per_pass, points_per_row))
    layout = torch.channels_last if channels_last else torch.contiguous_format
    total = 0.0
    for start in range(0, x.shape[0], chunk_rows):
        xc = x[start : start + chunk_rows].to(device)  # (c, *fs)
        for a0 in range(0, points_per_row, per_pass):
            k = min(per_pass, points_per_row - a0)
            tc = None if target is None else target[start : start + chunk_rows].to(device).repeat(k)
            points = xc.repeat(k, *([1] * (x.dim() - 1))).contiguous(memory_format=layout)  # (k * c, *fs)
            points.requires_grad_(True)
            _sync(device)
            t0 = time.perf_counter()
            with torch.enable_grad():
                out = select_output(model(points), tc)  # (k * c,)
                torch.autograd.grad(out.sum(), points)
            _sync(device)
            total += time.perf_counter() - t0
    return total


def _predicted_class(model: torch.nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    """Predicted class per row (n,) for a model with several outputs, as an audit explains it (the argmax of
    the row's outputs); None for a single-output model ((m,) or (m, 1))."""
    with torch.no_grad():
        out = model(x[:2].to(device))
        if out.dim() <= 1 or (out.dim() == 2 and out.shape[1] == 1):
            return None
    out = batched_forward(model, x, batch=256, device=device, dtype=x.dtype)  # (n, k)
    return out.reshape(out.shape[0], -1).argmax(1)


def bench(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    target: object = None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    device: str = "cpu",
    repeats: int = 3,
    captum_candidates: tuple[int, ...] = CAPTUM_CANDIDATES,
    captum_default: bool = True,
    captum_default_max_mb: float = 4096,
    slow_s: float = 10.0,
) -> dict[str, Any]:
    """Time our engine, Captum at its best and at its default, and the forward+backward ceiling.

    Parameters
    ----------
    model : torch.nn.Module
        Maps (m, *feature_shape) to (m,), (m, 1) or (m, k); put in eval mode. Not modified.
    x : Tensor of shape (n_rows, *feature_shape)
        Any shape: tabular rows or (n, C, H, W) images.
    target : None, int, or LongTensor of shape (n_rows,)
        Output to explain; for a model with several outputs None means the predicted class of each row.
    n_steps : int, default 50
    method : str, default "gausslegendre"
    device : "cpu" or "cuda"
    repeats : int, default 3
        Rounds; every timing is the best of its rounds. The rounds interleave the contenders.
    captum_candidates : tuple of int
        Path points per Captum forward to try for "Captum at its best" (``n_rows`` is always tried too).
    captum_default : bool, default True
        Also time Captum with ``internal_batch_size=None``.
    captum_default_max_mb : float, default 4096
        Skip Captum's default when its single batch would need more memory than this (estimated).
    slow_s : float, default 10
        A contender whose run takes longer than this is not repeated.

    Returns
    -------
    dict
        ``native_rows_per_s``, ``captum_best_rows_per_s``, ``captum_best_internal_batch_size`` (points per
        forward; the default counts as ``n_rows * n_steps``), ``captum_default_rows_per_s`` (None when
        skipped), ``ceiling_rows_per_s``, ``native_vs_captum_best``, ``native_vs_ceiling``,
        ``captum_by_internal_batch_size``, ``rows``, ``feature_shape``, ``n_steps``, ``method``,
        ``points_per_row``, ``chunk_rows`` and ``points_per_pass`` (the engine's cut in its last round),
        ``repeats``, ``device``, ``threads``, ``torch_version``, ``captum_version``, ``max_rel_diff_vs_captum``,
        ``ratio_rounds`` (native / Captum best in each interleaved round) with ``ratio_min``, ``ratio_median``,
        ``ratio_max``, ``load_average`` (1-minute, the larger of before and after; None where unknown),
        ``cores``, ``notes`` and ``warnings`` (:func:`honesty_warnings`).
    """
    if method not in METHODS:
        raise AttributionError(f"unknown integration method '{method}'; use one of {', '.join(METHODS)}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < min_steps(method):
        raise AttributionError(f"n_steps must be a whole number >= {min_steps(method)} for {method}, got {n_steps!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise AttributionError(f"repeats must be a whole number >= 1, got {repeats!r}")
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[0] < 1:
        raise AttributionError("bench needs inputs of shape (rows, features...) with at least one row")
    dev = resolve_device(device)
    p = next(iter(model.parameters()), None)
    if p is not None and p.device != dev:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = copy.deepcopy(model).to(dev)  # the caller's model stays where it is
    x = x.detach().to(model_dtype_device(model)[0]).cpu()  # rows in the model's dtype (a float64 model: float64)
    n = x.shape[0]
    notes: list[str] = []
    tgt: object = target
    if target is None:
        tgt = _predicted_class(model, x, dev)
        if tgt is not None:
            notes.append("the model has several outputs: each row's predicted class is explained")
    tgt_t = None if tgt is None else torch.as_tensor(tgt, dtype=torch.long).reshape(-1).expand(n).contiguous()

    def native() -> Any:
        return integrated_gradients(model, x, target=tgt_t, method=method, n_steps=n_steps, device=dev)

    warm = integrated_gradients(model, x[: min(n, 8)], target=None if tgt_t is None else tgt_t[:8],
                                method=method, n_steps=n_steps, device=dev)  # fmt: skip
    del warm
    res = native()  # warm-up at full size (on the CPU the engine also times its pass sizes here)
    points_per_row = engine_points_per_row(method, n_steps)
    nhwc = use_channels_last(model, x[: min(n, 2)].to(dev), dev)  # the engine's layout of the points
    ibs_list = sorted({int(c) for c in captum_candidates if 0 < c < n * n_steps} | {n})

    default_mb = n * n_steps * bytes_per_point(model, x[: min(n, 2)].to(dev), 4) / 2**20
    run_default = captum_default
    if captum_default and default_mb > captum_default_max_mb:
        run_default = False
        notes.append(
            f"Captum's default (all {n * n_steps:,} points in one forward) would need about {default_mb:,.0f} MB, "
            f"over the {captum_default_max_mb:,.0f} MB limit; it was not timed"
        )

    best: dict[str, float] = {}
    rounds: dict[str, list[float]] = {}  # every round's seconds, for the spread
    load_before = _load()

    def record(key: str, seconds: float) -> None:
        best[key] = min(best.get(key, float("inf")), seconds)
        rounds.setdefault(key, []).append(seconds)

    slow: set[str] = set()
    captum_best_attr: dict[int, torch.Tensor] = {}
    for _round in range(repeats):
        s, res = _timed(native, dev)
        record("native", s)
        record(
            "ceiling",
            _ceiling_seconds(model, x, tgt_t, points_per_row, res.chunk_rows, dev, res.points_per_pass, nhwc),
        )
        for ibs in ibs_list:
            key = f"captum_{ibs}"
            if key in slow:
                continue
            s, (attr, _d) = _timed(
                lambda ibs=ibs: captum_attribute(
                    model, x, target=tgt_t, method=method, n_steps=n_steps, internal_batch_size=ibs
                ),
                dev,
            )
            record(key, s)
            captum_best_attr[ibs] = attr
            if s > slow_s:
                slow.add(key)
        if run_default and "captum_default" not in slow:
            s, (attr, _d) = _timed(
                lambda: captum_attribute(model, x, target=tgt_t, method=method, n_steps=n_steps), dev
            )
            record("captum_default", s)
            captum_best_attr[n * n_steps] = attr
            if s > slow_s:
                slow.add("captum_default")

    rate = {k: n / v for k, v in best.items()}
    by_ibs = {ibs: rate[f"captum_{ibs}"] for ibs in ibs_list}
    if "captum_default" in rate:  # the default is the setting n_rows * n_steps; it may be the best one
        by_ibs[n * n_steps] = rate["captum_default"]
    best_ibs = max(by_ibs, key=lambda k: by_ibs[k])
    nat = res.attributions.reshape(n, -1).double()
    cap = captum_best_attr[best_ibs].reshape(n, -1).double()
    scale = nat.abs().amax(dim=1).clamp(min=1e-30)
    max_rel = float(((nat - cap).abs().amax(dim=1) / scale).max())
    if slow:
        notes.append(f"run once (slower than {slow_s:g} s per run): {', '.join(sorted(slow))}")
    key = "captum_default" if best_ibs == n * n_steps and "captum_default" in rate else f"captum_{best_ibs}"
    ratios = [c / t for t, c in zip(rounds["native"], rounds[key], strict=False)]  # per round, interleaved
    loads = [v for v in (load_before, _load()) if v is not None]
    load = max(loads) if loads else None
    return {
        "native_rows_per_s": rate["native"],
        "captum_best_rows_per_s": by_ibs[best_ibs],
        "captum_best_internal_batch_size": int(best_ibs),
        "captum_default_rows_per_s": rate.get("captum_default"),
        "ceiling_rows_per_s": rate["ceiling"],
        "native_vs_captum_best": rate["native"] / by_ibs[best_ibs],
        "native_vs_ceiling": rate["native"] / rate["ceiling"],
        "captum_by_internal_batch_size": {str(k): v for k, v in by_ibs.items()},
        "rows": n,
        "feature_shape": list(x.shape[1:]),
        "n_steps": n_steps,
        "method": method,
        "points_per_row": points_per_row,
        "chunk_rows": int(res.chunk_rows),
        "points_per_pass": int(res.points_per_pass),
        "repeats": repeats,
        "device": str(dev),
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "captum_version": captum_version(),
        "max_rel_diff_vs_captum": max_rel,
        "ratio_rounds": ratios,
        "ratio_min": min(ratios), "ratio_median": statistics.median(ratios), "ratio_max": max(ratios),
        "load_average": load,
        "cores": os.cpu_count(),
        "notes": notes,
        "warnings": honesty_warnings(ratios, load, os.cpu_count()),
    }


def _cut(r: dict[str, Any]) -> str:
    """The engine's cut in words: "chunks of 129 rows" or "1 row, 8 of its points per pass"."""
    per_pass = r.get("points_per_pass") or r["points_per_row"]
    if per_pass >= r["points_per_row"]:
        return f"chunks of {r['chunk_rows']} rows"
    return f"chunks of {r['chunk_rows']} rows, {per_pass} points of each per pass"


def format_table(result: dict[str, Any]) -> str:
    """The result of :func:`bench` as a plain-text table (rows/s and ratios)."""
    r = result
    n_steps, rows = r["n_steps"], r["rows"]

    def line(name: str, value: float | None, extra: str = "") -> str:
        shown = "skipped" if value is None else f"{value:>12,.0f}"
        return f"{name:<34}{shown:>12}  {extra}".rstrip()

    out = [
        f"audit bench: {rows:,} rows of shape {tuple(r['feature_shape'])}, {r['method']} with {n_steps} steps, "
        f"{r['device']}, {r['threads']} threads, best of {r['repeats']}",
        f"{'':<34}{'rows/s':>12}",
        line("native (ours)", r["native_rows_per_s"], f"{r['points_per_row']} points/row, {_cut(r)}"),
        line(
            "Captum, best internal_batch_size", r["captum_best_rows_per_s"],
            f"{r['captum_best_internal_batch_size']:,} points per forward",
        ),
        line("Captum, default (None)", r["captum_default_rows_per_s"], "all points in one forward"),
        line("ceiling: forward+backward only", r["ceiling_rows_per_s"], "same points, same chunks"),
        "",
        f"native / Captum best: {r['native_vs_captum_best']:.2f}x (best rounds)    native / ceiling: "
        f"{r['native_vs_ceiling']:.0%}    largest difference to Captum: {r['max_rel_diff_vs_captum']:.2g} of the "
        "row's largest |attribution|",
        f"native / Captum best per round ({len(r['ratio_rounds'])} interleaved): min {r['ratio_min']:.2f}x, median "
        f"{r['ratio_median']:.2f}x, max {r['ratio_max']:.2f}x"
        + ("" if r["load_average"] is None else f"    load average {r['load_average']:.1f} on {r['cores']} cores"),
    ]
    out += [f"note: {note}" for note in r["notes"]]
    out += [f"warning: {w}" for w in r.get("warnings", ())]
    return "\n".join(out)
