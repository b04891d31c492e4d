"""The Python API: objects in, objects out.

>>> import audit
>>> run = audit.run(model, df, target="label")     # doctest: +SKIP
>>> run.verdict, run.findings, run.features_frame()  # doctest: +SKIP
>>> run.save("reports/x")                          # doctest: +SKIP
>>> audit.load("reports/x/audit.json")             # doctest: +SKIP

``model`` is an ``nn.Module`` or a checkpoint path; ``data`` a pandas DataFrame, a 2-D ndarray or Tensor (with
``feature_names``), or a path (table or image folder). Every ``audit run`` option is a keyword argument with the
same meaning (``n_steps="auto"``, ``noise_features=["noise_*"]``, ``crosscheck_rows=0``, ...; ``target`` is
``--target-col``). Errors are the :class:`~audit.errors.AuditError` family and name parameters, not flags.
An in-memory model or data set is hashed for provenance (the state_dict's tensors, the array's bytes), so a run
from a notebook is as traceable as one from files.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from audit.config import AuditConfig, build_config
from audit.errors import AuditError, UsageError
from audit.results import AuditRun, load_run

__all__ = ["run", "load"]

# flags whose parameter name is not the flag with dashes turned into underscores
_FLAG_TO_PARAMETER = {"--target-col": "target", "--class": "class_index", "--format": "formats"}
_ALIASES = {"target": "target_col", "format": "formats"}


def load(path: str | Path) -> AuditRun:
    """A saved run back (``audit.json``), ready to inspect or re-render with :meth:`AuditRun.save`."""
    return load_run(path)


def run(
    model: Any,
    data: Any,
    *,
    target: str | Sequence[str] | None = None,
    feature_names: Sequence[str] | None = None,
    **options: Any,
) -> AuditRun:
    """Audit ``model`` on ``data`` and return the :class:`~audit.results.AuditRun`.

    Parameters
    ----------
    model : torch.nn.Module or path
        An in-memory module (audited on a copy in eval mode; the caller's module is not changed) or a checkpoint;
        an in-memory Hugging Face sequence classifier with ``tokenizer=`` (its tokenizer object, a
        ``tokenizers.Tokenizer`` or a ``tokenizer.json`` path) is a text audit.
    data : pandas.DataFrame, ndarray or Tensor of shape (n_rows, n_features), or path
        In-memory tables are audited in place (no file of yours is needed); a path may be a table or images.
    target : str or sequence of str, optional
        The target column(s) of a DataFrame or file (``--target-col``). With an array, pass ``y=...`` instead.
    feature_names : sequence of str, optional
        Column names for an array (default ``x0, x1, ...``).
    **options
        Any ``audit run`` option by its parameter name (``n_steps``, ``baseline``, ``task``, ``slice_col``,
        ``noise_features``, ``crosscheck_rows``, ``device``, ``seed``, ``thresholds={...}``, ...), and ``y`` (an
        array of targets for array data) and ``progress`` (a callable ``(stage, done, total)``).

    Returns
    -------
    AuditRun
        ``run.save(folder)`` writes ``audit.json`` and the reports; ``run.features_frame()`` is the ranking as a
        DataFrame; in Jupyter the run shows as a summary card.

    Raises
    ------
    UsageError, DataError, ModelLoadError
        One line naming the parameter and what to do.
    """
    progress = options.pop("progress", None)
    y = options.pop("y", None)
    try:
        with tempfile.TemporaryDirectory(prefix="audit-api-") as tmp:
            data_path, data_hash, data_label = _materialise_data(data, target, feature_names, y, Path(tmp))
            tokenizer = options.pop("tokenizer", None)
            if _is_hf_model(model):
                loaded, model_label = _loaded_text_model(model, tokenizer, options.get("device", "cpu"))
                options.setdefault("kind", "text")
            else:
                loaded, model_label = _loaded_model(model, options.get("device", "cpu"))
                if tokenizer is not None:
                    options["tokenizer"] = tokenizer
            flags = _flags(options)
            flags.update(model=model_label, data=data_path, target_col=_target(target, y))
            flags.setdefault("formats", "json")
            flags.setdefault("quiet", True)
            config = build_config(flags, None)
            from audit.pipeline import run_audit

            result = run_audit(config, progress=progress, model=loaded)
    except AuditError as err:
        raise type(err)(_parameters(str(err))) from None
    prov = result.provenance
    changes: dict[str, Any] = {}
    if data_hash is not None:
        changes.update(data_sha256=data_hash, data_path=data_label)
    if loaded is not None:
        changes.update(model_path=str(model_label))
    if changes:
        config_dict = dict(prov.config, data=changes.get("data_path", prov.config.get("data")),
                           model=str(model_label))  # fmt: skip
        result = dataclasses.replace(result, provenance=dataclasses.replace(prov, config=config_dict, **changes))
    return result


def _flags(options: dict[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(AuditConfig)}
    out: dict[str, Any] = {}
    for key, value in options.items():
        name = _ALIASES.get(key, key)
        if name not in known or name in ("model", "data", "target_col"):
            raise UsageError(
                f"unknown option '{key}' for audit.run; use the parameter names of 'audit run' "
                f"(e.g. n_steps, baseline, task, slice_col, crosscheck_rows)"
            )
        out[name] = value
    return out


def _target(target: str | Sequence[str] | None, y: Any) -> str | None:
    if y is not None:
        return "target" if target is None else target if isinstance(target, str) else ",".join(target)
    if target is None or isinstance(target, str):
        return target
    return ",".join(target)


def _materialise_data(
    data: Any, target: Any, feature_names: Sequence[str] | None, y: Any, tmp: Path
) -> tuple[Path, str | None, str]:
    """A path the modalities can open, the sha256 of in-memory data (None for a path) and a label for it."""
    if isinstance(data, (str, Path)):
        if y is not None:
            raise UsageError("y applies to array data; for a file, name its target column with target=")
        return Path(data), None, str(data)
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        frame = data
        if y is not None:
            frame = frame.assign(**{_target(target, y): np.asarray(y)})
    else:
        arr = data.detach().cpu().numpy() if hasattr(data, "detach") else np.asarray(data)
        if arr.ndim != 2:
            raise UsageError(
                f"data must be a DataFrame or a 2-D array of shape (rows, features), got shape {arr.shape}; save "
                "images in a folder and pass its path"
            )
        names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(arr.shape[1])]
        if len(names) != arr.shape[1]:
            raise UsageError(f"feature_names has {len(names)} names for {arr.shape[1]} columns; pass one per column")
        frame = pd.DataFrame(arr, columns=names)
        if y is not None:
            frame[_target(target, y)] = np.asarray(y)
        elif target is not None:
            raise UsageError("target names a column; with array data pass the targets as y=")
    path = tmp / "data.parquet"
    frame.to_parquet(path, index=False)
    digest = hashlib.sha256()
    for col in frame.columns:
        digest.update(str(col).encode())
        digest.update(np.ascontiguousarray(frame[col].to_numpy()).tobytes())
    label = f"<in-memory {type(data).__name__} of {frame.shape[0]:,} rows x {frame.shape[1]} columns>"
    return path, digest.hexdigest(), label


def _loaded_model(model: Any, device: str):
    """(LoadedModel, label) for an in-memory module, (None, path) for a checkpoint path."""
    if isinstance(model, (str, Path)):
        return None, Path(model)
    import torch

    from audit.io.model import LoadedModel

    if not isinstance(model, torch.nn.Module):
        raise UsageError(f"model must be a torch.nn.Module or a checkpoint path, got {type(model).__name__}")
    notes: tuple[str, ...] = ()
    if model.training:
        notes = ("the model was in train mode; audit used a copy in eval mode (model.eval()) so rows do not "
                 "interact and outputs are deterministic",)
    module = copy.deepcopy(model).eval().to(device)
    label = f"<in-memory {type(model).__name__}>"
    return LoadedModel(module=module, form="module", sha256=_state_sha256(model), path=label, arch=None,
                       notes=notes), Path(label)  # fmt: skip


def _is_hf_model(model: Any) -> bool:
    """A ``transformers`` model object (it has a config and input embeddings), not a plain ``nn.Module``."""
    return hasattr(model, "config") and callable(getattr(model, "get_input_embeddings", None))


def _loaded_text_model(model: Any, tokenizer: Any, device: str):
    """(TextModel, label) for an in-memory Hugging Face sequence classifier, audited on a copy in eval mode."""
    from audit.io.text import text_model_from_objects

    label = f"<in-memory {type(model).__name__}>"
    tm = text_model_from_objects(copy.deepcopy(model), tokenizer, device, sha256=_state_sha256(model), label=label)
    return tm, Path(label)


def _state_sha256(model: Any) -> str:
    """sha256 over a module's parameter and buffer names, dtypes, shapes and values."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return digest.hexdigest()


def _parameters(message: str) -> str:
    """The CLI's wording with flags turned into parameter names: '--n-steps 3' -> 'n_steps 3'."""

    def swap(m: re.Match[str]) -> str:
        flag = m.group(0)
        return _FLAG_TO_PARAMETER.get(flag, flag[2:].replace("-", "_"))

    return re.sub(r"--[a-z][a-z0-9-]*", swap, message)
