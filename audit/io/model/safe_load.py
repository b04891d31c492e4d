"""Form sniffing and safe loading: tell a checkpoint's form from its bytes, read a ``torch.save`` file with
``weights_only=True`` first (full unpickling only when trusted), and turn what it holds into a module.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import sys
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audit.errors import ModelLoadError
from audit.io.model.arch import build_from_arch
from audit.io.model.messages import short_reason

__all__ = ["module_from_object", "sniff", "torch_load"]

# keys under which training loops usually store the state_dict inside a checkpoint dict
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
_LIGHTNING_MARK = "pytorch-lightning_version"  # a key every Lightning checkpoint has


def sniff(file: Path) -> str:
    """Tell the form from the bytes: 'torchscript', 'export', 'torch_zip' or 'pickle'."""
    with open(file, "rb") as fh:
        head = fh.read(4)
    name = file.name
    if head[:2] == b"PK":
        try:
            with zipfile.ZipFile(file) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
            raise ModelLoadError(
                f"'{name}' is a truncated or corrupt zip archive ({short_reason(e)}); re-save or re-download it"
            ) from e
        leaves = {n.rsplit("/", 1)[-1] for n in names}
        if (
            "archive_format" in leaves
            or any("serialized_exported_program" in n for n in names)
            or any(re.search(r"(^|/)models/[^/]+\.json$", n) for n in names)
        ):
            return "export"
        if "constants.pkl" in leaves or any("/code/__torch__/" in n or n.startswith("code/") for n in names):
            return "torchscript"
        if "data.pkl" in leaves:
            return "torch_zip"
        raise ModelLoadError(
            f"'{name}' is a zip archive but not one written by torch.save, torch.jit.save or torch.export.save "
            "(no data.pkl, TorchScript code or export program inside); pass a PyTorch checkpoint"
        )
    if head[:1] == b"\x80":  # pickle PROTO opcode: legacy torch.save or a plain pickle
        return "pickle"
    raise ModelLoadError(
        f"'{name}' is not a PyTorch checkpoint (it starts with bytes {head.hex(' ')}); pass a file written by "
        "torch.save, torch.jit.save or torch.export.save"
    )


def torch_load(file: Path, dev: torch.device, trust_model: bool) -> tuple[Any, bool]:
    """Always try the safe loader first; fall back to full unpickling only when trusted.

    Returns the loaded object and whether the unsafe loader was used.
    """
    name = file.name
    try:
        with warnings.catch_warnings():
            # plain pickles (protocol 4/5) make the safe loader warn before it refuses them: noise for the reader
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(file, map_location=dev, weights_only=True), False
    except pickle.UnpicklingError as e:
        message = str(e)
        if not re.search(r"Unsupported (global|operand)", message):
            raise ModelLoadError(
                f"'{name}' is corrupt or not a PyTorch checkpoint ({short_reason(e)}); re-save or re-download it"
            ) from e
        if not trust_model:
            if _is_lightning_file(file):
                found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
                blocked = found.group(1) if found else "Python objects"
                raise ModelLoadError(
                    f"'{name}' is a PyTorch Lightning checkpoint whose extra entries (hyperparameters, callbacks) "
                    f"hold {blocked}, which the safe loader refuses; pass --trust-model only if you trust its source, "
                    "or save the weights alone with torch.save(module.state_dict(), path)"
                ) from None
            raise ModelLoadError(
                f"'{name}' is a pickled Python object (a full nn.Module or other object{_blocked_global(message)}); "
                "loading it can run arbitrary code: pass --trust-model only if you trust its source, or re-save it as "
                "TorchScript / a state_dict"
            ) from None
        # reached only when the safe loader refused: the caller said the file is trusted
    except Exception as e:  # truncated archives, wrong magic numbers, bad storage records...
        raise ModelLoadError(
            f"'{name}' is corrupt or not a PyTorch checkpoint ({short_reason(e)}); re-save or re-download it"
        ) from e
    try:
        return _unpickle_with_cwd(file, dev), True
    except ModuleNotFoundError as e:
        raise ModelLoadError(
            f"'{name}' could not be unpickled even with --trust-model: its classes are defined in module "
            f"'{e.name}', which cannot be imported; run audit from the folder that holds {e.name}.py, or install it"
        ) from e
    except Exception as e:  # the pickle's own code can raise anything
        reason = short_reason(e)
        if "__main__" in reason:
            raise ModelLoadError(
                f"'{name}' could not be unpickled even with --trust-model ({reason}): the model's class was defined "
                "in the training script itself; move the class into a module (e.g. mods.py) in the folder you run "
                "audit from and save again, or save it as TorchScript / a state_dict"
            ) from e
        raise ModelLoadError(
            f"'{name}' could not be unpickled even with --trust-model ({reason}); import the code that "
            "defines its classes, or re-save it as TorchScript / a state_dict"
        ) from e


def _unpickle_with_cwd(file: Path, dev: torch.device) -> Any:
    """Full unpickling (trusted files only); classes not found are looked up in the working directory too.

    A model saved with ``torch.save(model, path)`` refers to its class by module name (``mods.Net``); as with
    ``--arch`` (see :mod:`audit.io.model.arch`), a module in the folder audit is run from is found as ``python -m``
    would find it.
    """
    try:
        return torch.load(file, map_location=dev, weights_only=False)
    except ModuleNotFoundError:
        cwd = os.getcwd()
        if cwd in sys.path or "" in sys.path:
            raise
    sys.path.insert(0, cwd)
    importlib.invalidate_caches()
    try:
        return torch.load(file, map_location=dev, weights_only=False)
    finally:
        if cwd in sys.path:
            sys.path.remove(cwd)


def _is_lightning_file(file: Path) -> bool:
    """Whether a torch.save zip holds a Lightning checkpoint, read from its pickle bytes without running them."""
    try:
        with zipfile.ZipFile(file) as zf:
            member = next((n for n in zf.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"), None)
            return member is not None and _LIGHTNING_MARK.encode() in zf.read(member)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def _blocked_global(message: str) -> str:
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    if m:
        return f"; it refers to {m.group(1)}"
    m = re.search(r"Unsupported operand (\d+)", message)
    if m:
        return "; it is a plain pickle, not a torch.save file"
    return ""


def module_from_object(
    obj: Any,
    name: str,
    arch: str | None,
    arch_parts: tuple[str, str] | None,
    dev: torch.device,
    trusted: bool,
    notes: list[str],
) -> tuple[nn.Module, str, str | None]:
    """The module held by what :func:`torch_load` returned: (module, form, arch used).

    A full module (or, when ``trusted``, one under ``"model"``) is the ``"pickle"`` form; a state_dict (bare or
    under a checkpoint key) is built with ``arch`` (:func:`audit.io.model.arch.build_from_arch`), the
    ``"state_dict"`` form. The module is not moved to ``dev`` or switched to eval here.

    Raises
    ------
    ModelLoadError
        A state_dict without ``arch``, weights that do not fit, or an object that is neither.
    """
    if isinstance(obj, nn.Module):
        return obj, "pickle", None
    if trusted and isinstance(obj, Mapping) and isinstance(obj.get("model"), nn.Module):
        return obj["model"], "pickle", None
    state_dict = _find_state_dict(obj)
    if state_dict is not None:
        if arch is None or arch_parts is None:
            if isinstance(obj, Mapping) and _LIGHTNING_MARK in obj:
                raise ModelLoadError(
                    f"'{name}' is a PyTorch Lightning checkpoint (weights only, under 'state_dict'); pass --arch "
                    "module:callable that builds the network the LightningModule holds, e.g. --arch "
                    "mypkg.models:make_mlp"
                )
            raise ModelLoadError(
                f"'{name}' is a state_dict (weights only); pass --arch module:callable that builds the network, "
                "e.g. --arch mypkg.models:make_mlp"
            )
        return build_from_arch(arch, arch_parts, state_dict, name, notes), "state_dict", arch
    raise ModelLoadError(
        f"'{name}' holds {_describe(obj)}, not an nn.Module or a state_dict; save the model with torch.jit.save, "
        "torch.export.save, or torch.save(model.state_dict())"
    )


def _is_tensor_dict(obj: Any) -> bool:
    if not isinstance(obj, Mapping) or not obj:
        return False
    return all(
        isinstance(k, str) and (isinstance(v, torch.Tensor) or k.endswith("_extra_state")) for k, v in obj.items()
    ) and any(isinstance(v, torch.Tensor) for v in obj.values())


def _find_state_dict(obj: Any) -> Mapping[str, torch.Tensor] | None:
    if _is_tensor_dict(obj):
        return obj
    if isinstance(obj, Mapping):
        for key in _STATE_DICT_KEYS:
            if key in obj and _is_tensor_dict(obj[key]):
                return obj[key]
    return None


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        keys = [str(k) for k in list(obj)[:5]]
        more = ", ..." if len(obj) > 5 else ""
        return f"a dict with keys {', '.join(keys)}{more} (no dict of tensors under {'/'.join(_STATE_DICT_KEYS)})"
    if isinstance(obj, list | tuple):
        return f"a {type(obj).__name__} of {len(obj)} item{'' if len(obj) == 1 else 's'}"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor of shape {tuple(obj.shape)}"
    return f"a {type(obj).__name__}"
