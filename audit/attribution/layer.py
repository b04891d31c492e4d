"""Layer Integrated Gradients for text models: IG in the embedding space of token ids, on our own engine.

Token ids are not a continuous input, so Integrated Gradients (Sundararajan, Taly, Yan, "Axiomatic Attribution
for Deep Networks", ICML 2017) integrates along the straight path in the output space of a layer instead,
usually the word embedding, as Captum's ``LayerIntegratedGradients`` does:

    IG_t(x) = sum_d (e(x)_td - e(x')_td) * integral_0^1 dF/de_td (e(x') + a (e(x) - e(x'))) da

where ``e`` is the layer's output, ``F`` the model with that output replaced by the path point (the input ids
and every other argument, the attention mask included, stay those of the row), and the sum over the embedding
dimension ``d`` gives one attribution per token ``t``. Completeness: ``sum_t IG_t(x) = F(x) - F(x')`` with
``F(x')`` the model on the row's ids with the baseline embedding.

How it runs on :func:`audit.attribution.native.integrated_gradients` rather than on a second engine: the layer's
outputs at the rows and at their baselines are computed once, and the engine explains a wrapper module whose
input is the flattened embedding plus one extra channel, the row's number, equal at the row and at its baseline
(so it stays constant along the path, gets exactly zero attribution and is dropped). The wrapper looks up the
row's ids and additional arguments by that number, runs the model with a forward hook on the layer that replaces
its output by the path point, and removes the hook when the forward ends, normally or not. ``n_steps="auto"``,
memory planning, the row-independence probe and out-of-memory handling are the engine's. The row number is
rounded and clamped to a valid row, so the engine's independence probe (which alters neighbouring rows) cannot
break a lookup.

Padding: rows are sorted by length (longest first) and, in each forward, the trailing positions that the
attention mask (the first additional argument of shape ``(n_rows, seq_len)``) masks in every row of that
forward are cut, with the ids, every ``(n_rows, seq_len, ...)`` argument and the path points. That is done only
when a probe shows that the model's output does not move when those positions are cut, even with noise in their
embeddings; otherwise every forward runs the full length and a note says why.

Memory: the layer's outputs at the rows and at their baselines are held for the whole call, ``2 * n_rows *
seq_len * dim`` numbers (8 MB for 256 rows of 64 tokens at dim 64 in float32): explain large data sets in
blocks of rows.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import torch

from audit.attribution.arguments import as_target, compute_dtype
from audit.attribution.base import IGResult, model_dtype_device
from audit.attribution.native import integrated_gradients
from audit.errors import AttributionError

__all__ = ["layer_integrated_gradients", "logits_of", "layer_name", "per_row_args", "TRIM_RTOL"]

# Rows per forward when the layer's outputs at the rows and their baselines are computed (the forward stops at
# the layer, so this is cheap whatever the model).
_CAPTURE_ROWS = 256

# The row's number travels as a float channel of the path points: exact in float32 up to 2**24.
_MAX_ROWS = 2**24

# Trailing padding is cut only when the model's output moves by at most this much, relative to 1 + max |output|,
# when it is cut (float32 rounding of a 2-layer BERT: ~1e-9 at length 20 -> 12).
TRIM_RTOL = 1e-5


def logits_of(out: object) -> torch.Tensor:
    """The tensor a model's forward returned: itself, ``.logits`` (Hugging Face outputs), or the first element
    of a tuple.

    Parameters
    ----------
    out : Tensor, object with ``.logits``, or tuple/list whose first element is a Tensor

    Returns
    -------
    Tensor of shape (m,), (m, 1) or (m, k)

    Raises
    ------
    AttributionError
        None of those.
    """
    if isinstance(out, torch.Tensor):
        return out
    logits = getattr(out, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise AttributionError(
        f"the model returned {type(out).__name__}; layer attribution needs logits: a tensor of shape (rows,) or "
        "(rows, classes), an output with .logits, or a tuple whose first element is that tensor"
    )


def layer_name(model: torch.nn.Module, layer: torch.nn.Module) -> str:
    """The qualified name of ``layer`` inside ``model`` (``"bert.embeddings.word_embeddings"``).

    Raises
    ------
    AttributionError
        ``layer`` is not a submodule of ``model``.
    """
    if not isinstance(layer, torch.nn.Module):
        raise AttributionError(f"layer must be a torch.nn.Module of the model, got {type(layer).__name__}")
    for name, module in model.named_modules(remove_duplicate=False):
        if module is layer:
            return name
    raise AttributionError(
        f"the layer {type(layer).__name__} is not a submodule of the model; pass the module itself, e.g. "
        "model.bert.embeddings.word_embeddings"
    )


def per_row_args(args: object, n_rows: int) -> tuple[object, ...]:
    """``additional_forward_args`` as a tuple, checked: tensors must have one entry per row.

    Parameters
    ----------
    args : Tensor, tuple, list or None
        Tensors of shape (n_rows, ...) (attention mask, token type ids) are taken per row; anything else that is
        not a tensor (None, a flag) is passed unchanged to every forward.
    n_rows : int

    Returns
    -------
    tuple

    Raises
    ------
    AttributionError
        A tensor whose leading dimension is not ``n_rows``.
    """
    if args is None:
        return ()
    args = (args,) if isinstance(args, torch.Tensor) or not isinstance(args, (tuple, list)) else tuple(args)
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor) and (a.dim() == 0 or a.shape[0] != n_rows):
            raise AttributionError(
                f"additional_forward_args[{i}] has shape {tuple(a.shape)}; pass per-row tensors of shape "
                f"({n_rows}, ...), one entry per row of input_ids"
            )
    return args


def _check_ids(ids: object, name: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """Integer ids of shape (n, L) (or ``shape``), on the CPU."""
    if not isinstance(ids, torch.Tensor) or ids.dtype.is_floating_point or ids.dtype.is_complex:
        raise AttributionError(f"{name} must be an integer torch.Tensor of shape (rows, seq_len) (token ids)")
    if ids.dtype == torch.bool:
        raise AttributionError(f"{name} must hold integer token ids, not booleans")
    if shape is None and (ids.dim() != 2 or ids.shape[0] < 1 or ids.shape[1] < 1):
        raise AttributionError(f"{name} must have shape (rows, seq_len) with at least one row, got {tuple(ids.shape)}")
    if shape is not None and tuple(ids.shape) != shape:
        if ids.dim() == 1 and ids.shape[0] == shape[1]:
            ids = ids.unsqueeze(0)
        if ids.dim() != 2 or ids.shape[1] != shape[1] or ids.shape[0] not in (1, shape[0]):
            raise AttributionError(
                f"{name} has shape {tuple(ids.shape)}; pass ({shape[1]},), (1, {shape[1]}) or {shape} like input_ids"
            )
        ids = ids.expand(*shape)
    return ids.detach().to("cpu", torch.long)


class _Captured(Exception):
    """Raised by the capture hook to stop a forward once the layer's output is known."""

    def __init__(self, out: object) -> None:
        super().__init__("layer output captured")
        self.out = out


def _capture(model: torch.nn.Module, layer: torch.nn.Module, ids: torch.Tensor, args: tuple) -> torch.Tensor:
    """The layer's output for rows ``ids`` (n, L) with their ``args``: (n, *S) on the CPU, from forwards on the
    model's own device that stop at the layer."""

    def hook(_m: torch.nn.Module, _i: object, out: object) -> None:
        raise _Captured(out)

    device = model_dtype_device(model)[1]
    parts: list[torch.Tensor] = []
    n = ids.shape[0]
    handle = layer.register_forward_hook(hook)
    try:
        with torch.no_grad():
            for start in range(0, n, _CAPTURE_ROWS):
                rows = slice(start, min(n, start + _CAPTURE_ROWS))
                batch_args = [a[rows].to(device) if isinstance(a, torch.Tensor) else a for a in args]
                try:
                    model(ids[rows].to(device), *batch_args)
                except _Captured as got:
                    out = got.out
                except (RuntimeError, ValueError, IndexError, TypeError) as err:
                    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                    raise AttributionError(
                        f"the model failed on input_ids of shape {tuple(ids[rows].shape)} before reaching the layer "
                        f"({first}); check the ids against the vocabulary and the additional arguments"
                    ) from err
                else:
                    raise AttributionError(
                        "the model's forward never called the layer; pass the embedding module the model uses, e.g. "
                        "model.bert.embeddings.word_embeddings"
                    )
                if not isinstance(out, torch.Tensor) or not out.is_floating_point():
                    raise AttributionError(
                        f"the layer returned {type(out).__name__}; layer attribution needs a layer whose output is "
                        "one floating-point tensor (an nn.Embedding)"
                    )
                parts.append(out.detach().cpu())
    finally:
        handle.remove()
    return torch.cat(parts)


def _cut(a: object, L: int, cut: int) -> object:
    """A per-position argument (m, L, ...) cut to its first ``cut`` positions; anything else as it is."""
    return a[:, :cut] if isinstance(a, torch.Tensor) and a.dim() >= 2 and a.shape[1] == L else a


class _LayerPath(torch.nn.Module):
    """``g(z)``: the model with the layer's output replaced by the embedding channels of ``z``.

    ``z`` : (m, F + 1) with ``F = prod(S)``: the flattened layer output of shape ``S = (L, ...)`` and the row's
    number. The row's ids and arguments are looked up by that number; with ``trim`` the trailing positions that
    every row of the forward has beyond its length are cut. Returns the model's logits (m, ...).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        name: str,
        shape: tuple[int, ...],
        ids: torch.Tensor,
        args: tuple,
        lengths: torch.Tensor | None,
    ) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.shape = shape  # S: the layer's output per row, (L, ...)
        self.n_feat = math.prod(shape)
        self.ids = ids  # (n, L), int64, CPU
        self.args = args  # per-row tensors (n, ...) and constants
        self.lengths = lengths  # (n,) int64 or None: positions up to the last unmasked one
        self.trim = lengths is not None
        self._on: dict[str, tuple[torch.Tensor, tuple]] = {}  # device -> ids and args there

    def _rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, list]:
        key = str(rows.device)
        if key not in self._on:
            moved = tuple(a.to(rows.device) if isinstance(a, torch.Tensor) else a for a in self.args)
            self._on[key] = (self.ids.to(rows.device), moved)
        ids, args = self._on[key]
        return ids[rows], [a[rows] if isinstance(a, torch.Tensor) else a for a in args]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        m = z.shape[0]
        emb = z[:, : self.n_feat].reshape(m, *self.shape)  # (m, L, ...), a view: gradients reach z
        rows = z[:, self.n_feat].detach().round().long().clamp_(0, self.ids.shape[0] - 1)  # (m,)
        ids, args = self._rows(rows)  # (m, L), per-row args (m, ...)
        if self.trim and self.lengths is not None:
            L = self.ids.shape[1]
            cut = max(1, int(self.lengths[rows.cpu()].max()))
            if cut < L:
                emb, ids = emb[:, :cut], ids[:, :cut]
                args = [_cut(a, L, cut) for a in args]
        calls = 0

        def replace(_m: torch.nn.Module, _i: object, out: object) -> torch.Tensor:
            nonlocal calls
            calls += 1
            if calls > 1:
                raise AttributionError(
                    "the layer is called more than once per forward; layer attribution replaces one output, pass "
                    "a layer the model calls once (the word embedding)"
                )
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(emb.shape):
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise AttributionError(
                    f"the layer returned {got} where {tuple(emb.shape)} was expected; the layer's output must keep "
                    "its shape for the same rows"
                )
            return emb if emb.dtype == out.dtype else emb.to(out.dtype)

        handle = self.model.get_submodule(self.name).register_forward_hook(replace)
        try:
            out = logits_of(self.model(ids, *args))
        finally:
            handle.remove()
        return out


def _lengths(ids: torch.Tensor, args: tuple) -> torch.Tensor | None:
    """Per row, 1 + the position of the last unmasked token in the attention mask: the first additional
    argument of the shape of ``ids``; None without one."""
    mask = next((a for a in args if isinstance(a, torch.Tensor) and tuple(a.shape) == tuple(ids.shape)), None)
    if mask is None:
        return None
    pos = torch.arange(1, ids.shape[1] + 1).expand_as(ids)  # (n, L)
    return torch.where(mask.detach().cpu() != 0, pos, torch.zeros_like(pos)).amax(dim=1).clamp(min=1)  # (n,)


def _trim_is_exact(path: _LayerPath, z: torch.Tensor, lengths: torch.Tensor) -> tuple[bool, float]:
    """Whether cutting trailing masked positions leaves the output as it is: the (up to) 4 padded rows with the
    most padding, noise in the embeddings of their padding, each row cut to its own length against all of them
    at the full length. Returns (exact, largest change / (1 + max|F|))."""
    L = path.ids.shape[1]
    probe = torch.argsort(lengths, stable=True)[: min(4, int((lengths < L).sum()))]  # (k,), padded rows only
    dtype, device = model_dtype_device(path.model)
    zp = z[probe].to(device, dtype)  # (k, F + 1), a copy
    emb = zp[:, : path.n_feat].view(len(probe), *path.shape)  # (k, L, ...), a view of zp
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(emb.shape, generator=gen, dtype=torch.float32).to(emb.device, emb.dtype)
    padded = (torch.arange(L)[None] >= lengths[probe][:, None]).to(emb.device)  # (k, L)
    emb += noise * padded.view(*padded.shape, *[1] * (emb.dim() - 2)) * emb.abs().amax().clamp(min=1.0)
    try:
        with torch.no_grad():
            path.trim = False
            full = path(zp).double()
            path.trim = True
            cut_out = torch.cat([path(zp[i : i + 1]) for i in range(len(probe))]).double()
    except (RuntimeError, ValueError, IndexError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AttributionError(f"the model failed on its inputs in layer mode ({first})") from err
    change = float((full - cut_out).abs().max()) / (1.0 + float(full.abs().max()))
    return change <= TRIM_RTOL, change


def layer_integrated_gradients(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    *,
    layer: torch.nn.Module,
    baseline_ids: torch.Tensor | None = None,
    additional_forward_args: Sequence[object] | torch.Tensor | None = (),
    target: object = None,
    trim_padding: bool = True,
    **engine_kwargs: object,
) -> IGResult:
    """Layer Integrated Gradients of a text model, one attribution per token (Sundararajan et al. 2017, in the
    output space of ``layer`` as Captum's ``LayerIntegratedGradients``).

    Parameters
    ----------
    model : torch.nn.Module
        Called as ``model(input_ids, *additional_forward_args)``; returns logits of shape (m,), (m, 1) or (m, k),
        or an output with ``.logits`` (Hugging Face), or a tuple whose first element is the logits. Put it in
        eval mode first. It is not modified (hooks are added per forward and always removed).
    input_ids : LongTensor of shape (n_rows, seq_len)
        Never cast to float for the model: each forward gets the rows' own ids.
    layer : torch.nn.Module
        The submodule of ``model`` whose output is interpolated, called once per forward, with an output of
        shape (m, seq_len, ...): the word embedding (``model.bert.embeddings.word_embeddings``).
    baseline_ids : LongTensor of shape (n_rows, seq_len), (1, seq_len) or (seq_len,), optional
        Ids whose layer output (with the rows' own additional arguments) is the baseline ``e(x')``: every token
        replaced by the pad id with the special tokens kept, say (building it is the caller's job). None: the
        zero embedding.
    additional_forward_args : tuple, default ()
        Further arguments of the forward: tensors of shape (n_rows, ...) (the attention mask (n_rows, seq_len),
        token type ids) go with their rows and stay constant along the path; anything else is passed as it is.
    target : None, int, or LongTensor of shape (n_rows,)
        Output index to explain per row; None for single-output models.
    trim_padding : bool, default True
        Sort rows by length and cut the trailing positions that the attention mask (the first additional
        argument of shape (n_rows, seq_len)) masks in every row of a forward, when a probe shows that the model's
        output does not change by more than :data:`TRIM_RTOL` by it. Results do not depend on it beyond float
        rounding; cut positions get exactly zero attribution.
    **engine_kwargs
        As :func:`audit.attribution.native.integrated_gradients` takes them (``method``, ``n_steps`` including
        ``"auto"``, ``tolerance``, ``max_steps``, ``device``, ``dtype``, ``bf16``, ``memory_budget_mb``,
        ``delta_floor``, ``progress``, ...): callers pass ``EngineSettings.kwargs()``. Not ``baselines`` nor
        ``references``.

    Returns
    -------
    IGResult
        ``attributions`` of shape (n_rows, seq_len): the layer attributions summed over the other dimensions of
        the layer's output; ``f_x``, ``f_baseline``, ``delta``, ``rel_delta`` and ``steps`` per row as the engine
        gives them, completeness holding against ``F(x) - F(x')``.

    Raises
    ------
    AttributionError
        Ids that are not integer (n_rows, seq_len) tensors, a layer that is not part of the model or not called
        by its forward, arguments that are not per row, a model that fails on the inputs, and everything the
        engine refuses.
    """
    for key in ("baselines", "references"):
        if key in engine_kwargs:
            raise AttributionError(f"layer attribution takes baseline_ids, not {key}; drop the {key} argument")
    if not isinstance(model, torch.nn.Module) or isinstance(model, torch.jit.ScriptModule):
        raise AttributionError("layer attribution needs an eager torch.nn.Module (hooks on its layer); not TorchScript")
    ids = _check_ids(input_ids, "input_ids")
    n, L = ids.shape
    if n > _MAX_ROWS:
        raise AttributionError(f"{n:,} rows in one call; explain at most {_MAX_ROWS:,} rows at a time")
    bids = None if baseline_ids is None else _check_ids(baseline_ids, "baseline_ids", (n, L))
    args = per_row_args(additional_forward_args, n)
    name = layer_name(model, layer)
    tgt = as_target(target, n, torch.device("cpu"))

    e_x = _capture(model, layer, ids, args)  # (n, L, ...)
    if e_x.dim() < 2 or e_x.shape[0] != n or e_x.shape[1] != L:
        raise AttributionError(
            f"the layer's output has shape {tuple(e_x.shape)} for input_ids of shape {(n, L)}; pass a layer whose "
            "output is (rows, seq_len, ...) (the word embedding)"
        )
    e_b = torch.zeros_like(e_x) if bids is None else _capture(model, layer, bids, args)  # (n, L, ...)
    work = compute_dtype(e_x.dtype, engine_kwargs.get("dtype"))  # type: ignore[arg-type]
    row_no = torch.arange(n, dtype=work).unsqueeze(1)  # (n, 1): exact in float32 below 2**24 rows
    z = torch.cat([e_x.to(work).reshape(n, -1), row_no], dim=1)  # (n, F + 1)
    zb = torch.cat([e_b.to(work).reshape(n, -1), row_no], dim=1)  # (n, F + 1)

    lengths = _lengths(ids, args) if trim_padding else None
    path = _LayerPath(model, name, tuple(e_x.shape[1:]), ids, args, lengths)
    notes: list[str] = []
    try:
        with torch.no_grad():
            path.trim = False
            logits_of(path(z[:2].to(model_dtype_device(model)[1], e_x.dtype)))
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AttributionError(
            f"the model failed on input_ids of shape {(min(n, 2), L)} with the layer's output replaced ({first}); "
            "check the additional arguments"
        ) from err
    perm = None
    if lengths is not None and int(lengths.min()) < L:
        exact, change = _trim_is_exact(path, z, lengths)
        path.trim = exact
        if exact:
            perm = torch.argsort(lengths, descending=True, stable=True)  # longest rows first
        else:
            notes.append(
                f"masked trailing padding was not cut per batch: the model's output changed by {change:.2g} "
                "(relative) when it was, so every forward ran the full length"
            )
    else:
        path.trim = False

    if perm is not None:
        z, zb, tgt = z[perm], zb[perm], None if tgt is None else tgt[perm]
    res = integrated_gradients(path, z, baselines=zb, target=tgt, **engine_kwargs)  # type: ignore[arg-type]
    attr = res.attributions[:, :-1].reshape(n, *e_x.shape[1:])  # (n, L, ...): the row-number channel is 0
    attr = attr.sum(dim=tuple(range(2, attr.dim()))) if attr.dim() > 2 else attr  # (n, L)
    fields = {"attributions": attr, "notes": tuple(dict.fromkeys((*res.notes, *notes)))}
    if perm is not None:
        inv = torch.argsort(perm)
        fields["attributions"] = attr[inv]
        for key in ("f_x", "f_baseline", "delta", "rel_delta", "steps"):
            fields[key] = getattr(res, key)[inv]
    return dataclasses.replace(res, **fields)
