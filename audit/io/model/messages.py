"""Text the model loader puts in its errors and notes: an exception as one short line, and the note about
BatchNorm / Dropout layers that arrived in train mode.
"""

from __future__ import annotations

import re

from torch import nn

__all__ = ["short_reason", "train_mode_notes"]

_REASON_MAX = 200  # characters of an underlying exception quoted in a message


def short_reason(exc: BaseException) -> str:
    """One line from an exception: TorchScript errors put the useful line last, others first."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:  # the safe loader's real reason follows a long preamble
        text = text.split("WeightsUnpickler error:", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    text = lines[-1] if "TorchScript" in lines[0] or "Traceback" in lines[0] else lines[0]
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    text = re.sub(r"^(builtins\.)?\w+Error: ", "", text)
    return text if len(text) <= _REASON_MAX else text[: _REASON_MAX - 3] + "..."


_BATCHNORM_NAMES = re.compile(r"^(Sync|Lazy)?BatchNorm([123]d)?$")
_DROPOUT_NAMES = re.compile(r"^(Feature)?(Alpha)?Dropout([123]d)?$")


def train_mode_notes(module: nn.Module) -> list[str]:
    """A note when BatchNorm or Dropout layers are in train mode (they are about to be switched to eval)."""
    n_norm = n_drop = 0
    for sub in module.modules():
        if not sub.training:
            continue
        kind = str(getattr(sub, "original_name", type(sub).__name__))  # TorchScript keeps the Python class name
        if isinstance(sub, nn.modules.batchnorm._BatchNorm) or _BATCHNORM_NAMES.match(kind):
            n_norm += 1
        elif isinstance(sub, nn.modules.dropout._DropoutNd) or _DROPOUT_NAMES.match(kind):
            n_drop += 1
    if not n_norm and not n_drop:
        return []
    parts = [f"{n} {what}" for n, what in ((n_norm, "BatchNorm"), (n_drop, "Dropout")) if n]
    layers = "layer" if n_norm + n_drop == 1 else "layers"
    them = "it" if n_norm + n_drop == 1 else "them"
    return [
        f"the model had {' / '.join(parts)} {layers} in train mode; audit switched {them} to eval mode (model.eval()) "
        "so rows do not interact and outputs are deterministic"
    ]
