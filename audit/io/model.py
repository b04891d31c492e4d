"""Load a model checkpoint safely, whatever form it was saved in.

Forms are told apart by the file's content, never by its name:

- ``"torchscript"``: a ``torch.jit.save`` archive, loaded with ``torch.jit.load``.
- ``"export"``: a ``torch.export.save`` program (``.pt2`` zip), loaded with ``torch.export.load(...).module()``
  after checking that it is in eval mode, takes a dynamic batch and passes gradients back to its inputs
  (Integrated Gradients needs input gradients).
- ``"state_dict"``: weights only (a dict of tensors, or a checkpoint dict holding one under ``state_dict``,
  ``model_state_dict`` or ``model``, such as a PyTorch Lightning ``.ckpt``), built with ``--arch module:callable``
  and loaded with ``strict=True``. A prefix shared by every key (``module.`` from ``nn.DataParallel``, ``model.``
  from a LightningModule attribute, ``_orig_mod.`` from ``torch.compile``) is removed when the keys then match.
- ``"pickle"``: a pickled full ``nn.Module``. Loading one runs code from the file, so it is refused unless the
  caller passes ``trust_model=True``; its classes are then imported as ``python -m`` would, with the working
  directory on the path. The first read of any ``torch.save`` file is always ``torch.load(weights_only=True)``,
  which never executes a pickle payload.

Every module is returned in eval mode; when a pickled or TorchScript model arrived with BatchNorm or Dropout
layers in train mode, :attr:`LoadedModel.notes` says that they were switched.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import pickle
import re
import sys
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from audit.errors import DataError, ModelLoadError, UsageError
from audit.hashing import sha256_file

__all__ = ["FORMS", "LoadedModel", "load_model", "model_dtype", "model_input_check"]

FORMS = ("torchscript", "export", "state_dict", "pickle")

# keys under which training loops usually store the state_dict inside a checkpoint dict
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
_LIST_MAX = 3  # missing / unexpected / mismatched keys named in one message
_REASON_MAX = 200  # characters of an underlying exception quoted in a message
_ARCH_EXAMPLE = "e.g. --arch mypkg.models:make_mlp or --arch torchvision.models:resnet18"
# prefixes that wrappers put on every state_dict key: nn.DataParallel / DDP, a LightningModule's attribute,
# torch.compile
_KEY_PREFIXES = ("module.", "model.", "_orig_mod.")
_LIGHTNING_MARK = "pytorch-lightning_version"  # a key every Lightning checkpoint has


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
    arch_parts = _parse_arch(arch) if arch is not None else None
    dev = _check_device(device)
    file = _check_file(path)
    name = file.name
    kind = _sniff(file)

    used_arch: str | None = None
    notes: list[str] = []
    if kind == "torchscript":
        module, form = _load_torchscript(file, dev, notes), "torchscript"
    elif kind == "export":
        module, form = _load_export(file, dev), "export"
    else:
        obj, trusted = _torch_load(file, dev, trust_model)
        module, form, used_arch = _module_from_object(obj, name, arch, arch_parts, dev, trusted, notes)
        module = module.to(dev)
        if form == "pickle":  # a network built by --arch starts in train mode by nn.Module's default: no news
            notes.extend(_train_mode_notes(module))
        module.eval()
    return LoadedModel(
        module=module,
        form=form,
        sha256=sha256_file(file),
        path=os.fspath(path),
        arch=used_arch,
        notes=tuple(notes),
    )


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
    return _param_dtype_device(module)[0]


def model_input_check(module: nn.Module, n_features: int) -> int:
    """Run a dummy batch ``torch.zeros(2, n_features)`` through a tabular model and count its outputs.

    The batch takes the module's dtype (:func:`model_dtype`: float64 for a ``model.double()``) and the device of
    its first floating-point parameter (float32 / CPU for a module without parameters).

    Parameters
    ----------
    module : torch.nn.Module
        The loaded model.
    n_features : int
        Number of feature columns the data has (>= 1).

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
    dtype, dev = _param_dtype_device(module)
    x = torch.zeros(2, n_features, dtype=dtype, device=dev)  # x: (2, n_features)
    try:
        with torch.no_grad():
            out = module(x)
    except Exception as e:  # a model can raise anything; we classify it for the reader
        reason = _short_reason(e)
        if _is_shape_error(reason):
            raise DataError(
                f"the model does not accept {n_features} features (it raised: {reason}); check --target-col/--drop "
                "so the data has the columns the model was trained on"
            ) from e
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


# --------------------------------------------------------------------------------------------------- checks


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


def _sniff(file: Path) -> str:
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
                f"'{name}' is a truncated or corrupt zip archive ({_short_reason(e)}); re-save or re-download it"
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


# ---------------------------------------------------------------------------------------------------- forms


def _load_torchscript(file: Path, dev: torch.device, notes: list[str]) -> nn.Module:
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation notices
            module = torch.jit.load(str(file), map_location=dev)
    except Exception as e:  # the TorchScript loader raises RuntimeError or c10 errors for bad archives
        raise ModelLoadError(
            f"'{file.name}' looks like a TorchScript archive but could not be loaded ({_short_reason(e)}); "
            "re-save it with torch.jit.save"
        ) from e
    notes.extend(_train_mode_notes(module))
    module.eval()
    return module


_BATCHNORM_NAMES = re.compile(r"^(Sync|Lazy)?BatchNorm([123]d)?$")
_DROPOUT_NAMES = re.compile(r"^(Feature)?(Alpha)?Dropout([123]d)?$")


def _train_mode_notes(module: nn.Module) -> list[str]:
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


def _load_export(file: Path, dev: torch.device) -> nn.Module:
    name = file.name
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            program = torch.export.load(str(file))
        module = program.module()
    except Exception as e:
        raise ModelLoadError(
            f"'{name}' looks like a torch.export program but could not be loaded ({_short_reason(e)}); "
            "re-save it with torch.export.save, or save the model as TorchScript or a state_dict"
        ) from e
    _check_export_eval_mode(program, name)
    _check_export_dynamic_batch(program, name)
    module = module.to(dev)
    # exported modules refuse .eval(); the graph's train/eval behaviour is fixed at export time (checked above),
    # so only the flags are set for callers that read .training
    for sub in module.modules():
        sub.training = False
    _check_export_gradients(program, module, dev, name)
    return module


def _check_export_eval_mode(program: Any, name: str) -> None:
    for node in program.graph.nodes:
        if node.op != "call_function":
            continue
        target = str(node.target)
        if "dropout" in target:
            flag = node.args[2] if len(node.args) > 2 else node.kwargs.get("train")
        elif "batch_norm" in target:
            flag = node.args[5] if len(node.args) > 5 else node.kwargs.get("training")
        else:
            continue
        if flag is True:
            raise ModelLoadError(
                f"'{name}' was exported in training mode ({target} runs with training=True, so outputs are random "
                "or depend on the batch); call model.eval() before torch.export.export and save it again"
            )


def _user_input_nodes(program: Any) -> list[Any]:
    wanted = set(program.graph_signature.user_inputs)
    return [n for n in program.graph.nodes if n.op == "placeholder" and n.name in wanted]


def _check_export_dynamic_batch(program: Any, name: str) -> None:
    for node in _user_input_nodes(program):
        val = node.meta.get("val")
        if not isinstance(val, torch.Tensor) or val.dim() == 0:
            continue
        first = val.shape[0]
        if isinstance(first, int):
            shape = tuple(int(s) if isinstance(s, int) else -1 for s in val.shape)
            raise ModelLoadError(
                f"'{name}' was exported with a fixed batch size of {first} (input '{node.name}' has shape {shape}); "
                "audit runs the model on batches of other sizes: re-export with "
                f"dynamic_shapes={{'{node.name}': {{0: torch.export.Dim('batch')}}}} or save it as TorchScript"
            )


def _example_inputs(program: Any, dev: torch.device) -> tuple[tuple[Any, ...], dict[str, Any]]:
    example = getattr(program, "example_inputs", None)
    if example is not None:
        args, kwargs = example
    else:  # older archives have no sample inputs: zeros of the traced shapes, symbolic sizes set to 2
        args = tuple(
            torch.zeros(
                [s if isinstance(s, int) else 2 for s in n.meta["val"].shape], dtype=n.meta["val"].dtype
            )
            for n in _user_input_nodes(program)
        )
        kwargs = {}

    def prep(t: Any) -> Any:
        if not isinstance(t, torch.Tensor):
            return t
        t = t.detach().clone().to(dev)
        return t.requires_grad_(True) if t.is_floating_point() else t

    return tree_map(prep, tuple(args)), tree_map(prep, dict(kwargs))


def _check_export_gradients(program: Any, module: nn.Module, dev: torch.device, name: str) -> None:
    advice = (
        "IG needs gradients with respect to the inputs: save the model as TorchScript (torch.jit.save) or as a "
        "state_dict loaded with --arch"
    )
    args, kwargs = _example_inputs(program, dev)
    leaves = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    if not leaves:
        raise ModelLoadError(f"'{name}' is a torch.export program without a floating-point tensor input; {advice}")
    try:
        with torch.enable_grad():
            out = module(*args, **kwargs)
    except Exception as e:
        raise ModelLoadError(
            f"'{name}' is a torch.export program that fails on its own example inputs ({_short_reason(e)}); "
            "re-export it, or save the model as TorchScript or a state_dict"
        ) from e
    outs = [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and t.requires_grad]
    grads: tuple[torch.Tensor | None, ...] = ()
    reason = "its output does not require grad, e.g. it was traced under torch.no_grad() or detaches its input"
    if outs:
        try:
            total = torch.stack([o.sum() for o in outs]).sum()
            grads = torch.autograd.grad(total, leaves, allow_unused=True)
        except RuntimeError as e:
            reason = _short_reason(e)
        else:
            reason = "its output does not depend differentiably on its inputs (the input gradient is empty)"
    if not any(g is not None for g in grads):
        raise ModelLoadError(f"'{name}' is a torch.export program that cannot be differentiated ({reason}); {advice}")


def _torch_load(file: Path, dev: torch.device, trust_model: bool) -> tuple[Any, bool]:
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
                f"'{name}' is corrupt or not a PyTorch checkpoint ({_short_reason(e)}); re-save or re-download it"
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
            f"'{name}' is corrupt or not a PyTorch checkpoint ({_short_reason(e)}); re-save or re-download it"
        ) from e
    try:
        return _unpickle_with_cwd(file, dev), True
    except ModuleNotFoundError as e:
        raise ModelLoadError(
            f"'{name}' could not be unpickled even with --trust-model: its classes are defined in module "
            f"'{e.name}', which cannot be imported; run audit from the folder that holds {e.name}.py, or install it"
        ) from e
    except Exception as e:  # the pickle's own code can raise anything
        reason = _short_reason(e)
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
    ``--arch`` (see :func:`_import_with_cwd`), a module in the folder audit is run from is found as ``python -m``
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


def _module_from_object(
    obj: Any,
    name: str,
    arch: str | None,
    arch_parts: tuple[str, str] | None,
    dev: torch.device,
    trusted: bool,
    notes: list[str],
) -> tuple[nn.Module, str, str | None]:
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
        return _build_from_arch(arch, arch_parts, state_dict, name, notes), "state_dict", arch
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


# ----------------------------------------------------------------------------------------------------- arch


def _parse_arch(arch: str) -> tuple[str, str]:
    if not isinstance(arch, str) or ":" not in arch:
        raise UsageError(f"--arch '{arch}' must look like module:callable, {_ARCH_EXAMPLE}")
    module_name, _, attr = arch.rpartition(":")
    module_ok = module_name.endswith(".py") or all(p.isidentifier() for p in module_name.split("."))
    if not module_name or not attr or not module_ok or not all(p.isidentifier() for p in attr.split(".")):
        raise UsageError(f"--arch '{arch}' must look like module:callable, {_ARCH_EXAMPLE}")
    return module_name, attr


def _import_arch_module(module_name: str, arch: str) -> Any:
    if module_name.endswith(".py"):
        file = Path(module_name)
        if not file.is_file():
            raise UsageError(f"--arch {arch}: file '{module_name}' does not exist; check the path")
        spec = importlib.util.spec_from_file_location(f"_audit_arch_{file.stem}", file)
        if spec is None or spec.loader is None:
            raise UsageError(f"--arch {arch}: '{module_name}' cannot be imported as Python; check the file")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as e:
            raise ModelLoadError(f"importing '{module_name}' for --arch failed ({_short_reason(e)}); fix it") from e
        return module
    try:
        return _import_with_cwd(module_name)
    except ModuleNotFoundError as e:
        if e.name and (module_name == e.name or module_name.startswith(e.name + ".")):
            raise UsageError(
                f"--arch {arch}: no module named '{module_name}'; install it, or run audit from the folder that "
                "holds it"
            ) from e
        raise ModelLoadError(
            f"importing '{module_name}' for --arch failed: it needs '{e.name}', which is not installed; install it"
        ) from e
    except Exception as e:  # the module's own top-level code raised
        raise ModelLoadError(f"importing '{module_name}' for --arch failed ({_short_reason(e)}); fix it") from e


def _import_with_cwd(module_name: str) -> Any:
    """Import a module; when not found, retry with the working directory on sys.path, as `python -m` would."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError:
        cwd = os.getcwd()
        if cwd in sys.path or "" in sys.path:
            raise
    sys.path.insert(0, cwd)
    try:
        return importlib.import_module(module_name)
    finally:
        if cwd in sys.path:
            sys.path.remove(cwd)


def _resolve_arch(arch: str, parts: tuple[str, str]) -> Callable[..., Any]:
    module_name, attr = parts
    obj: Any = _import_arch_module(module_name, arch)
    owner = module_name
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None))]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            listed = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
            raise UsageError(
                f"--arch {arch}: '{owner}' has no attribute '{part}'; {hint}it has: {listed or 'no public callables'}"
            )
        obj = getattr(obj, part)
        owner = f"{owner}.{part}" if owner != module_name else f"{module_name}:{part}"
    if not callable(obj):
        raise UsageError(
            f"--arch {arch} names a {type(obj).__name__}, which is not callable; name a function or class that "
            "builds the network"
        )
    return obj


def _accepts(fn: Callable[..., Any], param: str) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == param or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _call_builder(fn: Callable[..., Any], kwargs: dict[str, Any], arch: str) -> nn.Module:
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        net = fn(**kwargs)
    except Exception as e:
        raise ModelLoadError(
            f"building the network with --arch {arch}({shown}) failed ({_short_reason(e)}); the callable must "
            "build the network without other required arguments"
        ) from e
    if not isinstance(net, nn.Module):
        raise ModelLoadError(
            f"--arch {arch}({shown}) returned a {type(net).__name__}, not an nn.Module; name the callable that "
            "builds the network"
        )
    return net


def _state_dict_diff(
    expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    mismatched = [
        f"{k} file {tuple(given[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in expected
        if k in given and isinstance(given[k], torch.Tensor) and tuple(given[k].shape) != tuple(expected[k].shape)
    ]
    return missing, unexpected, mismatched


def _final_layer(state_dict: Mapping[str, torch.Tensor]) -> tuple[str, int] | None:
    """The last weight matrix in file order and its number of outputs (rows)."""
    for key in reversed(list(state_dict)):
        value = state_dict[key]
        if key.endswith("weight") and isinstance(value, torch.Tensor) and value.dim() >= 2:
            return key, int(value.shape[0])
    return None


def _strip_key_prefix(
    state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor]
) -> tuple[Mapping[str, torch.Tensor], str]:
    """Remove a prefix that every key carries, when the keys then match the network's; returns the prefix too.

    Wrappers add one: ``module.`` (nn.DataParallel / DistributedDataParallel), ``model.`` (the attribute of a
    LightningModule that holds the network), ``_orig_mod.`` (torch.compile), or nestings of them. Any shared
    leading name is tried, one level at a time, and kept only if the key names then equal the network's exactly
    (shapes are compared later). Failing that, the known prefixes are removed anyway when the network lacks them,
    so the mismatch message names the keys as the network would.
    """
    wanted = set(expected)
    if set(state_dict) == wanted:
        return state_dict, ""
    current, prefix = dict(state_dict), ""
    for _ in range(4):
        heads = {k.partition(".")[0] + "." if "." in k else "" for k in current}
        if len(heads) != 1 or "" in heads:
            break
        head = heads.pop()
        current = {k[len(head) :]: v for k, v in current.items()}
        prefix += head
        if set(current) == wanted:
            return current, prefix
    current, prefix = dict(state_dict), ""
    while True:
        head = next((p for p in _KEY_PREFIXES if all(k.startswith(p) for k in current)), None)
        if head is None or all(k.startswith(head) for k in expected):
            break
        current = {k[len(head) :]: v for k, v in current.items()}
        prefix += head
    return current, prefix


def _build_from_arch(
    arch: str, parts: tuple[str, str], state_dict: Mapping[str, torch.Tensor], name: str, notes: list[str]
) -> nn.Module:
    fn = _resolve_arch(arch, parts)
    kwargs: dict[str, Any] = {}
    if parts[0].split(".")[0] == "torchvision" and _accepts(fn, "weights"):
        kwargs["weights"] = None  # build the bare network: never download pretrained weights
    net = _call_builder(fn, kwargs, arch)
    state_dict, prefix = _strip_key_prefix(state_dict, net.state_dict())
    missing, unexpected, mismatched = _state_dict_diff(net.state_dict(), state_dict)
    retried = ""
    final = _final_layer(state_dict)
    if mismatched and final is not None and _accepts(fn, "num_classes"):
        key, n_out = final
        current = net.state_dict().get(key)
        if current is not None and current.dim() >= 1 and int(current.shape[0]) != n_out:
            retry_kwargs = {**kwargs, "num_classes": n_out}
            try:
                retry_net = fn(**retry_kwargs)
            except Exception:  # the builder does not take num_classes after all: report the first mismatch
                retry_net = None
            if isinstance(retry_net, nn.Module):
                diff = _state_dict_diff(retry_net.state_dict(), state_dict)
                if not any(diff):
                    net, (missing, unexpected, mismatched) = retry_net, diff
                else:
                    retried = f" (also tried num_classes={n_out})"
    if missing or unexpected or mismatched:
        bits = []
        labelled = (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched))
        for label, items in labelled:
            if items:
                more = f", ... ({len(items)} in all)" if len(items) > _LIST_MAX else ""
                bits.append(f"{label}: {', '.join(items[:_LIST_MAX])}{more}")
        raise ModelLoadError(
            f"the state_dict in '{name}' does not fit the network built by --arch {arch}{retried}: "
            f"{'; '.join(bits)}; check that --arch builds the architecture the weights were saved from"
        )
    try:
        net.load_state_dict(state_dict, strict=True)
    except RuntimeError as e:
        raise ModelLoadError(
            f"loading the state_dict in '{name}' into --arch {arch} failed ({_short_reason(e)}); check that --arch "
            "builds the architecture the weights were saved from"
        ) from e
    if prefix:
        notes.append(
            f"every key of the state_dict in '{name}' started with '{prefix}' (the wrapper the weights were saved "
            "from, e.g. nn.DataParallel, a LightningModule attribute or torch.compile); audit removed it to match "
            f"--arch {arch}"
        )
    return net


# -------------------------------------------------------------------------------------------------- helpers


def _param_dtype_device(module: nn.Module) -> tuple[torch.dtype, torch.device]:
    for tensor in list(module.parameters()) + list(module.buffers()):
        if tensor.is_floating_point():
            return tensor.dtype, tensor.device
    return torch.float32, torch.device("cpu")


def _short_reason(exc: BaseException) -> str:
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


_SHAPE_WORDS = ("shape", "size", "dimension", "mat1", "mat2", "expected input", "guard failed", "must match")


def _is_shape_error(reason: str) -> bool:
    low = reason.lower()
    return any(w in low for w in _SHAPE_WORDS)
