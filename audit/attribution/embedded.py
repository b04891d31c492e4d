"""Tabular models that look category columns up in ``nn.Embedding`` layers: Integrated Gradients in embedding
space, so a category column gets the attribution of the vector the model reads for it.

A category id is not a quantity: on the straight line from the baseline row to the row, an id column would run
through fractional values that the model truncates (``x[:, j].long()``), its gradient is zero, and completeness
fails by the whole effect of the category. Captum's answer for text is ``LayerIntegratedGradients``: integrate in
the embedding layer's output space instead. Here the same is done for tables, together with the numeric columns:
the path runs from (numeric baseline, baseline embeddings) to (numeric values, the rows' embeddings), so
completeness holds against F(x) - F(x') for the whole row (Sundararajan, Taly, Yan 2017, Remark on
embeddings), and a category column's attribution is the sum over its embedding dimensions.

How: :func:`find_category_inputs` runs the model once with forward hooks on its embedding layers and matches
each lookup's ids against the whole-number columns of the input. :class:`CategoryInputs` then turns rows
``x`` (n, F) into extended rows ``z`` (n, F + sum of embedding widths): the numeric columns, the category
columns (kept at the row's own ids along the whole path, so they get no attribution of their own) and the
embedding vectors. :meth:`CategoryInputs.wrap` is a plain float model of ``z`` that runs the original model with
its embedding outputs replaced by the vectors of ``z``: the engine, the Captum cross-check and every other IG
call take it unchanged. :meth:`CategoryInputs.collapse` folds the attributions back to the F columns.

Ids go to the model as they came in the data (whole numbers in a float column, exact up to 2**24); the ids are
never interpolated or rounded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from audit.errors import ModelLoadError

__all__ = ["CategoryInputs", "Lookup", "find_category_inputs"]

_MAX_EXACT_ID = 2**24  # float32 holds every whole number up to this exactly


@dataclass(frozen=True)
class Lookup:
    """One embedding lookup of a forward pass.

    Attributes
    ----------
    layer : str
        The embedding module's name in the model (``model.get_submodule(layer)``).
    call : int
        Which call of that module in one forward (a shared embedding is looked up once per column).
    columns : tuple of int
        The input column of each id the lookup reads: one for ids of shape (n,), k for ids of shape (n, k).
    width : int
        The embedding dimension D.
    flat : bool
        The ids have shape (n,) (output (n, D)) rather than (n, k) (output (n, k, D)).
    """

    layer: str
    call: int
    columns: tuple[int, ...]
    width: int
    flat: bool

    @property
    def size(self) -> int:
        """Extended columns this lookup adds: k * D."""
        return len(self.columns) * self.width


def _embedding_layers(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    return [(n, m) for n, m in module.named_modules() if isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag))]


def find_category_inputs(module: torch.nn.Module, x: np.ndarray, names: list[str]) -> CategoryInputs | None:
    """The model's embedding lookups of input columns, or None when it has no embedding layers.

    Parameters
    ----------
    module : torch.nn.Module
        The model as the engine will explain it, in eval mode.
    x : ndarray of shape (n, F)
        A few data rows (the first chunk); each lookup's ids are matched against its whole-number columns.
    names : list of str
        Column names, for the messages.

    Raises
    ------
    ModelLoadError
        A TorchScript model with embedding layers (its lookups cannot be hooked), an ``EmbeddingBag``, or an
        embedding that reads one id per row matching no single input column. Lookups whose ids are the same in
        every row (column or position embeddings, ``torch.arange(F)``) are the model's own and left alone.
    """
    if isinstance(module, torch.jit.ScriptModule):
        if any(getattr(m, "original_name", "") in ("Embedding", "EmbeddingBag") for m in module.modules()):
            raise ModelLoadError(
                "this TorchScript model looks inputs up in an nn.Embedding, which TorchScript does not let audit "
                "hook to attribute in embedding space; pass the state_dict with --arch module:callable"
            )
        return None
    layers = _embedding_layers(module)
    if not layers:
        return None
    for name, layer in layers:
        if isinstance(layer, torch.nn.EmbeddingBag):
            raise ModelLoadError(
                f"the model's layer '{name}' is an nn.EmbeddingBag, which audit cannot attribute per input column; "
                "use nn.Embedding per category column"
            )
    rows = torch.from_numpy(np.ascontiguousarray(x[:256], dtype=np.float32))  # (m, F)
    seen: list[tuple[str, int, torch.Tensor, torch.Tensor]] = []
    calls: dict[str, int] = {}
    handles = []

    def capture(name: str):
        def hook(_mod, inputs, output):
            k = calls.get(name, 0)
            calls[name] = k + 1
            seen.append((name, k, inputs[0].detach(), output.detach()))

        return hook

    try:
        for name, layer in layers:
            handles.append(layer.register_forward_hook(capture(name)))
        with torch.no_grad():
            module(rows)
    finally:
        for h in handles:
            h.remove()
    if not seen:
        return None  # embeddings the forward never reaches from these inputs
    whole = np.all(x[:256] == np.round(x[:256]), axis=0)  # (F,)
    lookups: list[Lookup] = []
    for name, call, ids, out in seen:
        if ids.dim() == 0 or ids.shape[0] != rows.shape[0]:
            continue  # not one id per row (a lookup of column or position ids): the model's own, not an input
        ids2 = ids.reshape(ids.shape[0], -1) if ids.dim() > 1 else ids[:, None]  # (m, k)
        if rows.shape[0] > 1 and bool((ids2 == ids2[:1]).all()):
            continue  # the same ids in every row (torch.arange(F) expanded): no input column feeds it
        cols = []
        for p in range(ids2.shape[1]):
            match = [j for j in range(x.shape[1]) if whole[j] and np.array_equal(x[:256, j], ids2[:, p].numpy())]
            if len(match) != 1:
                what = "no input column" if not match else f"several columns ({', '.join(names[j] for j in match)})"
                raise ModelLoadError(
                    f"the model's embedding '{name}' reads ids that match {what} of the data; audit attributes "
                    "embeddings only when each lookup reads one category column (check the column order)"
                )
            cols.append(match[0])
        for j in cols:
            if np.abs(x[:, j]).max() >= _MAX_EXACT_ID:
                raise ModelLoadError(
                    f"column '{names[j]}' holds category ids above 2**24, which float32 cannot hold exactly; "
                    "re-number the categories"
                )
        lookups.append(Lookup(name, call, tuple(cols), int(out.shape[-1]), flat=ids.dim() == 1))
    return CategoryInputs(tuple(lookups), x.shape[1]) if lookups else None


@dataclass(frozen=True)
class CategoryInputs:
    """The embedding lookups of a model's category columns; the extension of rows into embedding space.

    Attributes
    ----------
    lookups : tuple of Lookup
    n_features : int
        F, the data's columns.
    """

    lookups: tuple[Lookup, ...]
    n_features: int

    @property
    def columns(self) -> tuple[int, ...]:
        """Every category column, in lookup order."""
        return tuple(j for lk in self.lookups for j in lk.columns)

    @property
    def width(self) -> int:
        """F + the embedding columns: the extended row's length."""
        return self.n_features + sum(lk.size for lk in self.lookups)

    def names(self, names: list[str]) -> list[str]:
        """Names of the extended columns: the F column names, then ``name[d]`` per embedding dimension."""
        out = list(names)
        for lk in self.lookups:
            out.extend(f"{names[j]}[{d}]" for j in lk.columns for d in range(lk.width))
        return out

    def vectors(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        """The embedding vectors the model reads for rows ``x`` (n, F): (n, sum of k * D)."""
        parts = self._capture(module, x)
        return torch.cat([p.reshape(p.shape[0], -1) for p in parts], dim=1) if parts else x[:, :0]

    def expand(
        self, module: torch.nn.Module, x: torch.Tensor, baseline: torch.Tensor, baseline_vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Extended rows and their baselines.

        Parameters
        ----------
        module : torch.nn.Module
        x : Tensor of shape (n, F)
        baseline : Tensor of shape (F,)
            The numeric baseline row (its values in category columns are not used).
        baseline_vectors : Tensor of shape (sum of k * D,)
            The baseline's embedding vectors (:meth:`baseline_vectors`).

        Returns
        -------
        z, z_baseline : Tensors of shape (n, width)
            The category columns of ``z_baseline`` are the rows' own ids, so they stay fixed along the path.
        """
        n = x.shape[0]
        emb = self.vectors(module, x).to(x.dtype)  # (n, S)
        zb_x = baseline.to(x.dtype).reshape(1, -1).repeat(n, 1)  # (n, F)
        cols = list(self.columns)
        zb_x[:, cols] = x[:, cols]
        zb_e = baseline_vectors.to(x.dtype).reshape(1, -1).expand(n, -1)  # (n, S)
        return torch.cat([x, emb], dim=1), torch.cat([zb_x, zb_e], dim=1)

    def baseline_vectors(self, module: torch.nn.Module, kind: str, x: np.ndarray, baseline: np.ndarray) -> torch.Tensor:
        """The baseline in embedding space: the zero vector for the zero baseline, the mean of the vectors of
        rows ``x`` for the mean baseline, else the vectors of the baseline row's own ids."""
        if kind == "zero":
            return torch.zeros(self.width - self.n_features)
        rows = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        if kind == "mean":
            return self.vectors(module, rows).mean(dim=0)
        row = torch.from_numpy(np.asarray(baseline, dtype=np.float32)).reshape(1, -1).clone()
        row[:, list(self.columns)] = torch.round(row[:, list(self.columns)])
        try:
            return self.vectors(module, row)[0]
        except (IndexError, RuntimeError):
            return torch.zeros(self.width - self.n_features)  # ids outside the embeddings: the zero vector

    def collapse(self, attributions: torch.Tensor) -> torch.Tensor:
        """(n, width) attributions of extended rows -> (n, F): each category column gets its vector's sum."""
        out = attributions[:, : self.n_features].clone()
        at = self.n_features
        for lk in self.lookups:
            block = attributions[:, at : at + lk.size].reshape(attributions.shape[0], len(lk.columns), lk.width)
            for p, j in enumerate(lk.columns):
                out[:, j] += block[:, p].sum(dim=1)
            at += lk.size
        return out

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """A float model of extended rows (m, width) with the outputs of ``module``."""
        return _Embedded(module, self)

    def _capture(self, module: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
        want = {(lk.layer, lk.call): i for i, lk in enumerate(self.lookups)}
        got: list[torch.Tensor | None] = [None] * len(self.lookups)
        calls: dict[str, int] = {}
        handles = []

        def capture(name: str):
            def hook(_mod, _inputs, output):
                k = calls.get(name, 0)
                calls[name] = k + 1
                i = want.get((name, k))
                if i is not None:
                    got[i] = output.detach()

            return hook

        try:
            for name in {lk.layer for lk in self.lookups}:
                handles.append(_submodule(module, name).register_forward_hook(capture(name)))
            with torch.no_grad():
                module(x)
        finally:
            for h in handles:
                h.remove()
        return [g for g in got if g is not None]


def _submodule(module: torch.nn.Module, name: str) -> torch.nn.Module:
    """``module.get_submodule(name)``, also when ``module`` wraps the model the name was found in (as ``.module``
    or deeper): the one submodule whose dotted name ends with ``name``."""
    try:
        return module.get_submodule(name)
    except AttributeError:
        hits = [m for n, m in module.named_modules() if n.endswith("." + name)]
        if len(hits) != 1:
            raise
        return hits[0]


class _Embedded(torch.nn.Module):
    """``module`` as a function of extended rows: the embedding outputs are taken from the row, not looked up.

    The hooks live only for the length of one forward (registered on this copy's own submodules), so the caller's
    model is never left hooked and copies of this wrapper (the engine's dtype/device copies) stay independent.
    """

    def __init__(self, module: torch.nn.Module, cats: CategoryInputs) -> None:
        super().__init__()
        self.module = module
        self.cats = cats

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # z: (m, width)
        F = self.cats.n_features
        x = z[:, :F]
        parts: dict[tuple[str, int], torch.Tensor] = {}
        at = F
        for lk in self.cats.lookups:
            block = z[:, at : at + lk.size]  # (m, k * D)
            shape = (z.shape[0], lk.width) if lk.flat else (z.shape[0], len(lk.columns), lk.width)
            parts[(lk.layer, lk.call)] = block.reshape(shape)
            at += lk.size
        calls: dict[str, int] = {}

        def replace(name: str):
            def hook(_mod, _inputs, output):
                k = calls.get(name, 0)
                calls[name] = k + 1
                part = parts.get((name, k))
                return output if part is None else part.to(output.dtype)

            return hook

        handles = []
        try:
            for name in {lk.layer for lk in self.cats.lookups}:
                handles.append(_submodule(self.module, name).register_forward_hook(replace(name)))
            return self.module(x)
        finally:
            for h in handles:
                h.remove()
