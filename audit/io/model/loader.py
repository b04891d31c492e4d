"""The public loader: :func:`load_model` checks the path and device, sniffs the form and dispatches to it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from audit.errors import ModelLoadError, UsageError
from audit.hashing import sha256_file
from audit.io.model.arch import parse_arch
from audit.io.model.export import load_export, load_torchscript
from audit.io.model.messages import train_mode_notes
from audit.io.model.safe_load import module_from_object, sniff, torch_load

__all__ = ["FORMS", "LoadedModel", "load_model"]

FORMS = ("torchscript", "export", "state_dict", "pickle")


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to audit.

    Attributes
    ----------
    module : torch.nn.Module
        In eval mode, on the requested device.
    form : str
        One of :data:`FORMS`: how the file was saved.
    sha256 : str
        SHA-256 of the checkpoint file, for provenance.
    path : str
        The checkpoint path as given.
    arch : str or None
        The ``module:callable`` that built the network (state_dict form only; None for the other forms, which
        carry their own architecture).
    notes : tuple of str, default ()
        One sentence each about what the loader changed or assumed, for the report: BatchNorm / Dropout layers
        switched from train to eval mode, a key prefix removed from a state_dict.
    """

    module: nn.Module
    form: str
    sha256: str
    path: str
    arch: str | None
    notes: tuple[str, ...] = ()


def load_model(
    path: str | os.PathLike[str],
    *,
    arch: str | None = None,
    trust_model: bool = False,
    device: str = "cpu",
) -> LoadedModel:
    """Load a checkpoint in any supported form (see the module docstring), without running untrusted code.

    Parameters
    ----------
    path : str or PathLike
        The checkpoint file.
    arch : str or None, default None
        ``"module:callable"`` (or ``"path/to/file.py:callable"``) that builds the network for a state_dict.
        Dotted attributes work (``pkg.mod:Factory.build``). Torchvision builders get ``weights=None`` (nothing
        is downloaded) and, when the weights have a different number of outputs, ``num_classes=<inferred>``.
        Ignored for forms that carry their architecture.
    trust_model : bool, default False
        Allow unpickling a full pickled module. Only for files from a trusted source: it runs code.
    device : str, default "cpu"
        Where the module's parameters go (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).

    Returns
    -------
    LoadedModel
        The module in eval mode on ``device``, its form, the file's SHA-256, the arch used and notes.

    Raises
    ------
    UsageError
        Malformed ``arch`` (no colon, not an import path), arch module/attribute not found or not callable,
        unknown or unavailable ``device``.
    ModelLoadError
        Missing/empty/corrupt file, a pickled object without ``trust_model`` (including a Lightning checkpoint
        whose extra entries the safe loader refuses), a state_dict without ``arch`` or that does not fit the
        network, an export that cannot be differentiated or has a fixed batch size, or content that is not an
        ``nn.Module``.
    """
    arch_parts = parse_arch(arch) if arch is not None else None
    dev = _check_device(device)
    file = _check_file(path)
    name = file.name
    kind = sniff(file)

    used_arch: str | None = None
    notes: list[str] = []
    if kind == "torchscript":
        module, form = load_torchscript(file, dev, notes), "torchscript"
    elif kind == "export":
        module, form = load_export(file, dev), "export"
    else:
        obj, trusted = torch_load(file, dev, trust_model)
        module, form, used_arch = module_from_object(obj, name, arch, arch_parts, dev, trusted, notes)
        module = module.to(dev)
        if form == "pickle":  # a network built by --arch starts in train mode by nn.Module's default: no news
            notes.extend(train_mode_notes(module))
        module.eval()
    return LoadedModel(
        module=module,
        form=form,
        sha256=sha256_file(file),
        path=os.fspath(path),
        arch=used_arch,
        notes=tuple(notes),
    )


def _check_file(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise UsageError(f"the model path must be a string or path, got {type(path).__name__}")
    file = Path(path)
    if not file.exists():
        raise ModelLoadError(f"model file '{path}' does not exist; check the path")
    if file.is_dir():
        raise ModelLoadError(
            f"model path '{path}' is a directory; pass the checkpoint file itself (a .pt/.pth/.pt2 file)"
        )
    try:
        size = file.stat().st_size
    except OSError as e:
        raise ModelLoadError(f"cannot read model file '{path}' ({e.strerror}); check its permissions") from e
    if size == 0:
        raise ModelLoadError(f"model file '{path}' is empty (0 bytes); the save was probably interrupted: re-save it")
    return file


def _check_device(device: str) -> torch.device:
    if not isinstance(device, str):
        raise UsageError(f"--device must be a string such as cpu or cuda, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise UsageError(f"unknown --device '{device}'; use cpu, cuda, cuda:N or mps") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device} was asked for but no CUDA device is available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UsageError(
            f"--device {device} does not exist: {torch.cuda.device_count()} CUDA device(s) visible; "
            "use cuda:0 or cpu"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"--device {device} was asked for but MPS is not available; use --device cpu")
    return dev
