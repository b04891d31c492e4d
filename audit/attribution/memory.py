"""How much memory one path point needs in a forward and backward: the engine's pass sizes start from it.

:func:`activation_elems_per_point` counts the outputs of every leaf module on a probe (forward hooks), or, where
hooks see no layer, the tensors autograd saves; :func:`bytes_per_point` turns that into bytes. The Captum adapter
sizes its ``internal_batch_size`` and the benchmarks their Captum settings with the same estimate.
"""

from __future__ import annotations

import contextlib
import math

import torch

from audit.attribution.probes import buffers_restored

__all__ = ["activation_elems_per_point", "bytes_per_point"]

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
        with buffers_restored(model):
            count(2)
            return max(0.0, (count(4) - count(2)) / 2)
    except (RuntimeError, ValueError):
        return 0.0


def activation_elems_per_point(model: torch.nn.Module, x1: torch.Tensor) -> int:
    """Elements held per path point: the outputs of every leaf module on a probe (forward hooks), per row.

    Where hooks see no layer (TorchScript modules take none, torch.export graph modules and models without
    submodules show only their output), the tensors autograd saves per row times ``_SAVED_TO_OUTPUTS`` (1.5);
    64x the input only when that counts nothing either. Train-mode buffers (BatchNorm statistics) are left as
    they were.

    Parameters
    ----------
    model : torch.nn.Module
    x1 : Tensor of shape (k, *feature_shape)
        A probe of one or a few rows, on the model's device and in its dtype.

    Returns
    -------
    int
        Elements per row, at least 1.
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
        with torch.no_grad(), buffers_restored(model):
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


def bytes_per_point(model: torch.nn.Module, x1: torch.Tensor, element_size: int) -> int:
    """Memory one path point needs in a forward and backward.

    Parameters
    ----------
    model : torch.nn.Module
    x1 : Tensor of shape (k, *feature_shape)
        A probe of one or a few rows, on the model's device and in its dtype.
    element_size : int
        Bytes per element of the compute dtype (4 for float32, 8 for float64).

    Returns
    -------
    int
        ``element_size * (2 * F + 3 * A)`` with ``F`` the elements of one input row and ``A`` those of
        :func:`activation_elems_per_point`.
    """
    act = activation_elems_per_point(model, x1)
    # points and their gradient (2x input), activations and their gradients (2x), autograd slack (1.5x)
    return element_size * (2 * x1[0].numel() + 3 * act)
