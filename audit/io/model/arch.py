"""``--arch module:callable``: parse it, import the module (the working directory on the path, as ``python -m``
would), call the builder, and load a state_dict into the network with ``strict=True``, stripping a wrapper's key
prefix (``module.``, ``model.``, ``_orig_mod.``) when the keys then match.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audit.errors import ModelLoadError, UsageError
from audit.io.model.messages import short_reason

__all__ = ["build_from_arch", "parse_arch"]

_LIST_MAX = 3  # missing / unexpected / mismatched keys named in one message
_ARCH_EXAMPLE = "e.g. --arch mypkg.models:make_mlp or --arch torchvision.models:resnet18"
# prefixes that wrappers put on every state_dict key: nn.DataParallel / DDP, a LightningModule's attribute,
# torch.compile
_KEY_PREFIXES = ("module.", "model.", "_orig_mod.")


def parse_arch(arch: str) -> tuple[str, str]:
    """Split ``"module:callable"`` (or ``"path/to/file.py:callable"``) into (module, dotted attribute).

    Raises
    ------
    UsageError
        No colon, or a part that is not an import path.
    """
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
            raise ModelLoadError(f"importing '{module_name}' for --arch failed ({short_reason(e)}); fix it") from e
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
        raise ModelLoadError(f"importing '{module_name}' for --arch failed ({short_reason(e)}); fix it") from e


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
            f"building the network with --arch {arch}({shown}) failed ({short_reason(e)}); the callable must "
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


def build_from_arch(
    arch: str, parts: tuple[str, str], state_dict: Mapping[str, torch.Tensor], name: str, notes: list[str]
) -> nn.Module:
    """Build the network ``arch`` names and load ``state_dict`` into it with ``strict=True``.

    Parameters
    ----------
    arch : str
        As the caller wrote it, for messages.
    parts : tuple of (str, str)
        From :func:`parse_arch`.
    state_dict : mapping of str to Tensor
        The weights read from the file.
    name : str
        The checkpoint's file name, for messages.
    notes : list of str
        A note is appended when a wrapper's key prefix was removed.

    Returns
    -------
    torch.nn.Module
        The network with the weights loaded (in the builder's mode; the caller sets eval).

    Raises
    ------
    UsageError
        The module or attribute cannot be found or is not callable.
    ModelLoadError
        The builder fails or returns no module, or the weights do not fit the network.
    """
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
            f"loading the state_dict in '{name}' into --arch {arch} failed ({short_reason(e)}); check that --arch "
            "builds the architecture the weights were saved from"
        ) from e
    if prefix:
        notes.append(
            f"every key of the state_dict in '{name}' started with '{prefix}' (the wrapper the weights were saved "
            "from, e.g. nn.DataParallel, a LightningModule attribute or torch.compile); audit removed it to match "
            f"--arch {arch}"
        )
    return net
