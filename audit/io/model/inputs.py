"""Input checks on a loaded model: the dtype it computes in, and a dummy tabular batch through it."""

from __future__ import annotations

import torch
from torch import nn

from audit.attribution.base import model_dtype_device
from audit.errors import DataError, ModelLoadError, UsageError
from audit.io.model.messages import short_reason

__all__ = ["model_dtype", "model_input_check", "model_input_width", "accepts_width"]

def model_dtype(module: nn.Module) -> torch.dtype:
    """The floating-point dtype a model computes in: the dtype its inputs should have.

    Parameters
    ----------
    module : torch.nn.Module
        The loaded model (any form, TorchScript included).

    Returns
    -------
    torch.dtype
        The dtype of the first floating-point parameter (e.g. ``torch.float64`` after ``model.double()``), else
        of the first floating-point buffer, else ``torch.float32`` (a model without floating tensors).
    """
    return model_dtype_device(module)[0]


def model_input_width(module: nn.Module) -> int | None:
    """How many input columns the model takes, when that can be read and confirmed: the ``in_features`` of its
    first linear layer, accepted by a dummy batch. None when there is none or it does not run."""
    for sub in module.modules():
        weight = getattr(sub, "weight", None)
        kind = getattr(sub, "original_name", type(sub).__name__)  # TorchScript keeps the class name here
        if kind == "Linear" and isinstance(weight, torch.Tensor) and weight.dim() == 2:
            width = int(weight.shape[1])
            return width if accepts_width(module, width) else None
    return None


def accepts_width(module: nn.Module, n_features: int) -> bool:
    """Whether a dummy batch ``zeros(2, n_features)`` runs through the model (in its dtype, on its device)."""
    dtype, dev = model_dtype_device(module)
    try:
        with torch.no_grad():
            module(torch.zeros(2, n_features, dtype=dtype, device=dev))
    except Exception:  # any failure: not this width
        return False
    return True


def model_input_check(module: nn.Module, n_features: int, *, extra: tuple[tuple[str, str], ...] = ()) -> int:
    """Run a dummy batch ``torch.zeros(2, n_features)`` through a tabular model and count its outputs.

    The batch takes the module's dtype (:func:`model_dtype`: float64 for a ``model.double()``) and the device of
    its first floating-point parameter (float32 / CPU for a module without parameters).

    Parameters
    ----------
    module : torch.nn.Module
        The loaded model.
    n_features : int
        Number of feature columns the data has (>= 1).
    extra : tuple of (column, option), default ()
        Columns of the file that are not among those features but could explain a mismatch, with the option
        that set them aside (``("segment", "--slice-col")``); the error names them.

    Returns
    -------
    int
        Number of outputs per row: 1 for an output of shape ``(2,)`` or ``(2, 1)``, ``k`` for ``(2, k)``.

    Raises
    ------
    UsageError
        ``n_features`` is not a positive integer.
    DataError
        The model rejects ``n_features`` input columns (a shape error).
    ModelLoadError
        The model fails for another reason, or returns something other than one tensor of shape
        ``(2,)`` / ``(2, k)``.
    """
    if isinstance(n_features, bool) or not isinstance(n_features, int) or n_features < 1:
        raise UsageError(f"n_features must be a positive integer, got {n_features!r}")
    dtype, dev = model_dtype_device(module)
    x = torch.zeros(2, n_features, dtype=dtype, device=dev)  # x: (2, n_features)
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as e:  # a model can raise anything; we classify it for the reader
        reason = short_reason(e)
        if _is_shape_error(reason):
            raise DataError(_width_message(module, n_features, extra, reason)) from e
        raise ModelLoadError(
            f"the model failed on a batch of 2 rows x {n_features} zero features ({reason}); check that it is a "
            "tabular model taking a (rows, features) float tensor"
        ) from e
    if not isinstance(out, torch.Tensor):
        raise ModelLoadError(
            f"the model returns a {type(out).__name__}, not a tensor; audit needs a model whose forward returns "
            "one tensor of shape (rows,) or (rows, outputs): wrap it to return the logits"
        )
    shape = tuple(out.shape)
    if len(shape) == 1 and shape[0] == 2:
        return 1
    if len(shape) == 2 and shape[0] == 2 and shape[1] >= 1:
        return int(shape[1])
    raise ModelLoadError(
        f"the model returns shape {shape} for a batch of 2 rows; audit needs (rows,) or (rows, outputs): "
        "wrap it so each row gives one score or one vector of class scores"
    )


_SHAPE_WORDS = ("shape", "size", "dimension", "mat1", "mat2", "expected input", "guard failed", "must match")


def _is_shape_error(reason: str) -> bool:
    low = reason.lower()
    return any(w in low for w in _SHAPE_WORDS)


def _width_message(module: nn.Module, n_features: int, extra: tuple[tuple[str, str], ...], reason: str) -> str:
    """The one line for a model that rejects ``n_features`` columns, naming the set-aside columns that explain it."""
    width = model_input_width(module)
    takes = f"the model takes {width} inputs" if width is not None else "the model does not accept them"
    head = f"{takes} and the file has {n_features} feature column{'s' if n_features != 1 else ''}"
    named = ", ".join(f"'{c}' ({o})" for c, o in extra)
    if extra and width is not None and width == n_features + len(extra):
        return (
            f"{head}; {named} {'is' if len(extra) == 1 else 'are'} not among them and would make up the difference: "
            "pass a model input as a plain column, or check --target-col/--drop"
        )
    if extra and width is not None and width < n_features:
        return (
            f"{head} ({named} set aside already; it raised: {reason}); leave out the columns the model was not "
            "trained on with --drop, or check --target-col"
        )
    hint = f" ({named} set aside)" if extra else ""
    return (
        f"{head}{hint} (it raised: {reason}); check --target-col/--drop so the data has the columns the model was "
        "trained on"
    )
