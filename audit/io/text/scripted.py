"""Text models that are not Hugging Face folders: TorchScript, ``torch.export`` programs and state_dicts (with
``--arch``), called as ``model(input_ids, attention_mask)``, with ``--tokenizer tokenizer.json``.

Layer attribution replaces the output of the word embedding with path points through a forward hook, which
TorchScript and exported graphs do not allow. :class:`TableSwapModel` makes such a model hookable without
changing what it computes: an eager lookup (its ``embeddings`` submodule, the layer to attribute) computes the
rows' embeddings ``e = W[ids]`` of shape (n, L, D); for the forward the model's own table is swapped for one
whose rows are those ``n * L`` vectors (after ``padding_idx + 1`` unused rows, so no looked-up row is the
padding row, whose gradient an embedding zeroes) and the model is called on ids that point at them. The
model's graph then computes exactly what it computes on ``ids``, but from ``e``, so a hook on ``embeddings`` can
replace ``e`` by a path point and gradients flow back to it. The table is put back when the forward returns
(the autograd graph keeps the swapped one).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from audit.errors import ModelLoadError

__all__ = ["TableSwapModel", "EagerTextModel", "find_embedding", "embedding_weight"]


def embedding_weight(module: nn.Module) -> torch.Tensor | None:
    """The (rows, dim) table of an ``nn.Embedding`` or a TorchScript ``Embedding``; None for anything else."""
    is_emb = isinstance(module, nn.Embedding) or getattr(module, "original_name", "") == "Embedding"
    w = getattr(module, "weight", None) if is_emb else None
    return w if isinstance(w, torch.Tensor) and w.dim() == 2 else None


def _graph_embeddings(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The owners of the tables an exported graph's ``aten.embedding`` calls read (``emb.weight`` -> ``emb``)."""
    if not isinstance(model, torch.fx.GraphModule):
        return []
    found = []
    for node in model.graph.nodes:
        if node.op != "call_function" or "embedding" not in str(node.target) or not node.args:
            continue
        w = node.args[0]
        if getattr(w, "op", "") == "get_attr" and str(w.target).endswith(".weight"):
            owner = str(w.target)[: -len(".weight")]
            try:
                found.append((owner, model.get_submodule(owner)))
            except AttributeError:
                continue
    return found


def find_embedding(model: nn.Module, vocab_size: int | None) -> tuple[str, nn.Module]:
    """The word embedding of ``model``: ``get_input_embeddings()`` when it has one, else the embedding whose
    rows match the tokenizer's vocabulary, else the largest embedding that is not a position embedding.

    Raises
    ------
    ModelLoadError
        The model has no embedding table.
    """
    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter) and not isinstance(model, torch.jit.ScriptModule):
        emb = getter()
        for name, sub in model.named_modules():
            if sub is emb:
                return name, sub
    found = [(n, m, embedding_weight(m)) for n, m in model.named_modules()]
    found = [(n, m, w) for n, m, w in found if w is not None]
    found += [(n, m, m.weight) for n, m in _graph_embeddings(model) if getattr(m, "weight", None) is not None]
    if not found:
        raise ModelLoadError("the model has no embedding layer (nn.Embedding) to attribute at; a text model must "
                             "look up its token ids in an embedding table")
    exact = [f for f in found if vocab_size is not None and f[2].shape[0] == vocab_size]
    words = [f for f in found if "position" not in f[0].lower() and "token_type" not in f[0].lower()]
    name, mod, _ = exact[0] if exact else max(words or found, key=lambda f: int(f[2].shape[0]))
    return name, mod


class _Lookup(nn.Module):
    """``ids -> table[ids]``: the hookable stand-in for a graph's embedding lookup."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("weight", weight.detach(), persistent=False)
        self.num_embeddings = int(weight.shape[0])

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(ids, self.weight)


@contextmanager
def _swapped(owner: nn.Module, table: torch.Tensor) -> Iterator[None]:
    old = owner.weight
    param = isinstance(owner, nn.Module) and not isinstance(owner, torch.jit.ScriptModule) and (
        "weight" in owner._parameters)
    if param:
        del owner._parameters["weight"]
    try:
        if param:
            object.__setattr__(owner, "weight", table)
        else:
            owner.weight = table
        yield
    finally:
        if param:
            object.__delattr__(owner, "weight")
            owner._parameters["weight"] = old
        else:
            owner.weight = old


class TableSwapModel(nn.Module):
    """A TorchScript or exported text model with a hookable embedding (see the module notes).

    Parameters
    ----------
    inner : nn.Module
        ``inner(input_ids, attention_mask) -> logits``.
    owner : nn.Module
        Its embedding submodule (whose ``weight`` is the token table).
    """

    def __init__(self, inner: nn.Module, owner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self._owner = [owner]  # a list: not registered twice as a submodule
        self.embeddings = _Lookup(owner.weight)
        pad = getattr(owner, "padding_idx", None)
        self.offset = int(pad) + 1 if isinstance(pad, int) and pad >= 0 else 0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        e = self.embeddings(input_ids)  # (n, L, D): a hook may replace it by a path point
        n, L, D = e.shape
        table = torch.cat([e.new_zeros(self.offset, D), e.reshape(n * L, D)])  # (offset + n * L, D)
        ids = self.offset + torch.arange(n * L, device=input_ids.device).reshape(n, L)
        with _swapped(self._owner[0], table):
            out = self.inner(ids, attention_mask)
        return out


class EagerTextModel(nn.Module):
    """An eager model built by ``--arch`` and called as ``model(input_ids, attention_mask)``: returned as it is,
    with its embedding named for the engine."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids, attention_mask)
