"""Archives that carry their own graph: TorchScript (``torch.jit.save``) and ``torch.export.save`` programs, the
latter checked for eval mode, a dynamic batch dimension and gradients back to the inputs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten, tree_map

from audit.errors import ModelLoadError
from audit.io.model.messages import short_reason, train_mode_notes

__all__ = ["load_export", "load_torchscript"]

def load_torchscript(file: Path, dev: torch.device, notes: list[str]) -> nn.Module:
    """Load a ``torch.jit.save`` archive onto ``dev`` in eval mode; a train-mode note is appended to ``notes``.

    Raises
    ------
    ModelLoadError
        The archive cannot be loaded.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation notices
            module = torch.jit.load(str(file), map_location=dev)
    except Exception as e:  # the TorchScript loader raises RuntimeError or c10 errors for bad archives
        raise ModelLoadError(
            f"'{file.name}' looks like a TorchScript archive but could not be loaded ({short_reason(e)}); "
            "re-save it with torch.jit.save"
        ) from e
    notes.extend(train_mode_notes(module))
    module.eval()
    return module


def load_export(file: Path, dev: torch.device) -> nn.Module:
    """Load a ``torch.export.save`` program as a module on ``dev``, its flags set to eval.

    Raises
    ------
    ModelLoadError
        The program cannot be loaded, was exported in training mode, has a fixed batch size, or cannot be
        differentiated with respect to its inputs.
    """
    name = file.name
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            program = torch.export.load(str(file))
        module = program.module()
    except Exception as e:
        raise ModelLoadError(
            f"'{name}' looks like a torch.export program but could not be loaded ({short_reason(e)}); "
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
            f"'{name}' is a torch.export program that fails on its own example inputs ({short_reason(e)}); "
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
            reason = short_reason(e)
        else:
            reason = "its output does not depend differentiably on its inputs (the input gradient is empty)"
    if not any(g is not None for g in grads):
        raise ModelLoadError(f"'{name}' is a torch.export program that cannot be differentiated ({reason}); {advice}")
