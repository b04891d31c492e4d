"""What the engine asks a model before it integrates: does it run, is it deterministic, do its rows interact.

- :func:`probe_outputs` -- two forwards on a few rows: failures, non-determinism (dropout in train mode) and
  output shapes that do not fit the target become one clear error.
- :func:`rows_are_independent` / :func:`probe_independence` -- whether a row's output depends on the other rows
  of its batch (BatchNorm in train mode, attention across the batch). One backward of the summed outputs holds
  every path point's own gradient only when it does not.
- :func:`buffers_restored` -- every probe and every pass runs inside it, so that a model in train mode leaves with
  the BatchNorm statistics it came with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from audit.attribution.arguments import check_target_range
from audit.attribution.base import select_output
from audit.errors import AttributionError

__all__ = ["buffers_restored", "probe_outputs", "probe_independence", "rows_are_independent"]


@contextlib.contextmanager
def buffers_restored(model: torch.nn.Module) -> Iterator[None]:
    """Put back every buffer a forward pass in train mode may update (BatchNorm running statistics).

    Parameters
    ----------
    model : torch.nn.Module
        A model none of whose modules is in train mode is left alone (nothing is copied).

    Yields
    ------
    None
        On exit, normal or not, every buffer holds the value it had on entry.
    """
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


def probe_outputs(model: torch.nn.Module, xp: torch.Tensor, target: torch.Tensor | None) -> torch.Tensor:
    """Run the model twice on a few rows: check that it works, is deterministic and fits the target.

    Parameters
    ----------
    model : torch.nn.Module
    xp : Tensor of shape (k, *feature_shape)
        The first few rows, on the model's device.
    target : LongTensor of shape (n_rows,) or None
        The whole run's target; its first ``k`` entries go with ``xp``.

    Returns
    -------
    Tensor of shape (k, ...)
        The model's output on ``xp``, detached.

    Raises
    ------
    AttributionError
        The model fails on ``xp``, returns no tensor or different outputs for the same input, or its outputs do
        not fit ``target`` (index out of range, several outputs and no target, an unusable shape).
    """
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
    check_target_range(target, n_outputs)
    select_output(out1, None if target is None else target[: xp.shape[0]].to(out1.device))  # shape checks
    return out1.detach()


def rows_are_independent(model: torch.nn.Module, x: torch.Tensor, *, rtol: float = 1e-4) -> bool:
    """Probe whether a row's output depends on the other rows of its batch.

    Runs the first row alone, with its neighbours, and with altered neighbours; all three outputs for that row
    must agree.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (n_rows, *feature_shape)
        At least one row, on the model's device.
    rtol : float, default 1e-4
        Tolerance relative to ``1 + max |output|`` of the row alone.

    Returns
    -------
    bool
        False also when the model fails on one of the probes (BatchNorm in train mode refuses a single row).
    """
    return probe_independence(model, x, rtol=rtol)[0]


def probe_independence(
    model: torch.nn.Module, x: torch.Tensor, *, rtol: float = 1e-4, with_neighbours: torch.Tensor | None = None
) -> tuple[bool, torch.Tensor | None]:
    """:func:`rows_are_independent`, also returning the first row's output alone.

    Parameters
    ----------
    model : torch.nn.Module
    x : Tensor of shape (n_rows, *feature_shape)
        At least one row, on the model's device.
    rtol : float, default 1e-4
    with_neighbours : Tensor of shape (min(n_rows, 4), ...), optional
        The model's output on ``x[:4]`` when already known (:func:`probe_outputs`); used when x has more than
        one row, saving a forward.

    Returns
    -------
    independent : bool
    alone : Tensor of shape (1, ...) or None
        The model's output on ``x[:1]``; None when the model failed on a probe.
    """
    with torch.no_grad():
        x0 = x[:1]
        others = x[1:4] if x.shape[0] > 1 else x0.expand(3, *x0.shape[1:])  # (3 or fewer, *fs)
        gen = torch.Generator(device="cpu").manual_seed(1234)
        noise = torch.randn(others.shape, generator=gen, dtype=torch.float32).to(others.device, others.dtype)
        scale = x.detach().abs().amax().clamp(min=1.0)
        altered = others * 3.0 + noise * scale
        if x.dim() == 2 and x.shape[0] > 1 and x.is_floating_point():
            # columns of whole numbers (category ids fed to an nn.Embedding, counts) get other rows' values of the
            # same column instead: scaled noise would push an id out of the embedding's range and make the model
            # fail, which reads as "couples rows"
            whole = (x == x.round()).all(dim=0)  # (F,)
            if bool(whole.any()):
                shifted = torch.roll(x, shifts=1, dims=0)[1:4]  # (3 or fewer, F): each row gets another's values
                altered = torch.where(whole, shifted, altered)
        try:
            alone = model(x0)
            if with_neighbours is None or x.shape[0] == 1:
                with_neighbours = model(torch.cat([x0, others]))
            with_altered = model(torch.cat([x0, altered]))
        except (RuntimeError, ValueError, IndexError):
            return False, None  # e.g. BatchNorm in train mode refuses a single row (ValueError)
        a = alone.reshape(alone.shape[0], -1)[0].double()
        b = with_neighbours.reshape(with_neighbours.shape[0], -1)[0].double()
        c = with_altered.reshape(with_altered.shape[0], -1)[0].double()
        tol = rtol * (1.0 + a.abs().max().item())
        return bool((a - b).abs().max().item() <= tol and (a - c).abs().max().item() <= tol), alone
