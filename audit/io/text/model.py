"""Loading a text classifier and its tokenizer, safely, into one :class:`TextModel`.

- A Hugging Face folder (``config.json``, the weights and the tokenizer files written by ``save_pretrained``):
  loaded with the transformers Auto classes, ``local_files_only=True`` (nothing is ever downloaded) and
  ``trust_remote_code=False`` (no code from the folder runs). ``--tokenizer tokenizer.json`` overrides the
  folder's tokenizer.
- A TorchScript archive, a ``torch.export`` program or a state_dict (with ``--arch``) that takes
  ``(input_ids, attention_mask)``, with ``--tokenizer tokenizer.json``; see :mod:`audit.io.text.scripted`.

The tokenizer must fit the model: a vocabulary larger than the embedding table (ids the model cannot look up), or
much smaller than it (below :data:`MIN_VOCAB_FRACTION` of its rows: another model's tokenizer) is one line and
exit 3, as is a folder that is not a model.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from audit.errors import ModelLoadError, UsageError
from audit.hashing import sha256_file
from audit.io.model import LoadedModel, load_model
from audit.io.model.export import load_torchscript
from audit.io.model.safe_load import sniff
from audit.io.text.extra import require
from audit.io.text.scripted import EagerTextModel, TableSwapModel, embedding_weight, find_embedding
from audit.io.text.tokenize import TextTokenizer, load_tokenizer_json

__all__ = [
    "TextModel", "load_text_model", "text_model_from_objects", "MIN_VOCAB_FRACTION", "MAX_LENGTH_CAP",
    "HF_SAFE_KWARGS",
]

MIN_VOCAB_FRACTION = 0.9  # embedding tables are often padded to a multiple of 64 or 128 rows, never by 10%
MAX_LENGTH_CAP = 512
HF_SAFE_KWARGS = {"local_files_only": True, "trust_remote_code": False}


@dataclass(frozen=True)
class TextModel:
    """A text classifier ready to audit.

    Attributes
    ----------
    module : nn.Module
        Eager, in eval mode: ``module(input_ids, attention_mask) -> logits (n, k)``.
    layer : nn.Module
        Its word embedding (a submodule of ``module``): where layer IG interpolates.
    tokenizer : TextTokenizer
    loaded : LoadedModel
        Form, sha256 and path, for provenance.
    n_outputs : int
    class_names : tuple of str
    max_positions : int
        Tokens per row the model takes (at most :data:`MAX_LENGTH_CAP`).
    embedding_rows : int
    """

    module: nn.Module
    layer: nn.Module
    tokenizer: TextTokenizer
    loaded: LoadedModel
    n_outputs: int
    class_names: tuple[str, ...]
    max_positions: int
    embedding_rows: int
    notes: tuple[str, ...] = ()


class _HFClassifier(nn.Module):
    """A Hugging Face sequence classifier called as ``(input_ids, attention_mask) -> logits``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _reason(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:200] or type(e).__name__)


def _folder_sha256(folder: Path) -> str:
    digest = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            digest.update(str(p.relative_to(folder)).encode() + b"\0" + sha256_file(p).encode())
    return digest.hexdigest()


@contextmanager
def _quiet(transformers) -> Iterator[None]:
    """No progress bars or info logs from transformers on stderr: errors reach people as one line."""
    hf_log = transformers.utils.logging
    bars, level = hf_log.is_progress_bar_enabled(), hf_log.get_verbosity()
    hf_log.disable_progress_bar()
    hf_log.set_verbosity_error()
    try:
        yield
    finally:
        hf_log.set_verbosity(level)
        if bars:
            hf_log.enable_progress_bar()


def _load_hf(folder: Path, tokenizer: Path | None, device: str) -> TextModel:
    transformers = require("transformers")
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"'{folder}' is not a Hugging Face model folder (no config.json); save the model with "
                             "save_pretrained, or pass a TorchScript/state_dict file with --tokenizer tokenizer.json")
    with warnings.catch_warnings(), _quiet(transformers):
        warnings.simplefilter("ignore")
        try:
            config = transformers.AutoConfig.from_pretrained(str(folder), **HF_SAFE_KWARGS)
            model = transformers.AutoModelForSequenceClassification.from_pretrained(str(folder), **HF_SAFE_KWARGS)
        except Exception as e:  # transformers raises OSError, ValueError, KeyError ... for a broken folder
            raise ModelLoadError(f"'{folder}' could not be loaded as a Hugging Face sequence classifier "
                                 f"({_reason(e)}); save it with save_pretrained") from e
        if tokenizer is not None:
            tok = load_tokenizer_json(tokenizer)
        else:
            try:
                hf_tok = transformers.AutoTokenizer.from_pretrained(str(folder), **HF_SAFE_KWARGS)
            except Exception as e:
                raise ModelLoadError(f"'{folder}' has no usable tokenizer files ({_reason(e)}); save the tokenizer "
                                     "into the folder with save_pretrained, or pass --tokenizer tokenizer.json") from e
            backend = getattr(hf_tok, "backend_tokenizer", None) if getattr(hf_tok, "is_fast", False) else None
            tok = TextTokenizer(backend=backend, hf=hf_tok, pad_id=getattr(config, "pad_token_id", None))
    return _hf_text_model(model, config, tok, device, sha256=_folder_sha256(folder), path=os.fspath(folder))


def text_model_from_objects(model: Any, tokenizer: Any, device: str, *, sha256: str, label: str) -> TextModel:
    """A :class:`TextModel` from an in-memory Hugging Face sequence classifier (the Python API; it is used as
    given: pass a copy) and its tokenizer: a ``transformers`` tokenizer, a ``tokenizers.Tokenizer`` or the path
    of a ``tokenizer.json``."""
    if isinstance(tokenizer, (str, Path)):
        tok = load_tokenizer_json(tokenizer)
    elif tokenizer is not None and hasattr(tokenizer, "encode_batch") and hasattr(tokenizer, "token_to_id"):
        tok = TextTokenizer(backend=tokenizer)
    elif tokenizer is not None and hasattr(tokenizer, "convert_tokens_to_ids"):
        backend = getattr(tokenizer, "backend_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
        tok = TextTokenizer(backend=backend, hf=tokenizer, pad_id=getattr(tokenizer, "pad_token_id", None))
    else:
        raise UsageError("an in-memory text model needs tokenizer=: its transformers tokenizer, a "
                         "tokenizers.Tokenizer or the path of a tokenizer.json")
    tm = _hf_text_model(model, model.config, tok, device, sha256=sha256, path=label)
    _check_vocab(tm)
    if tm.tokenizer.pad_id is None:
        raise UsageError("the tokenizer has no pad token and the model's config names none; set pad_token_id")
    return tm


def _hf_text_model(model: Any, config: Any, tok: TextTokenizer, device: str, *, sha256: str, path: str) -> TextModel:
    """The loaded classifier, its tokenizer and its limits as a :class:`TextModel`."""
    if tok.pad_id is None and getattr(config, "pad_token_id", None) is not None:
        tok.pad_id = int(config.pad_token_id)
    model = model.to(device).eval()
    module = _HFClassifier(model).eval()
    layer = model.get_input_embeddings()
    n_out = int(getattr(config, "num_labels", 2))
    id2label = getattr(config, "id2label", None) or {}
    names = tuple(str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(max(n_out, 2)))
    limits = [int(getattr(config, "max_position_embeddings", 0) or 0),
              int(getattr(getattr(tok, "hf", None), "model_max_length", 0) or 0)]
    limits = [v for v in limits if 0 < v < 100_000]
    rows = int(layer.weight.shape[0])
    loaded = LoadedModel(module=module, form="huggingface", sha256=sha256, path=path, arch=type(model).__name__)
    return TextModel(module, layer, tok, loaded, n_out, names, min(limits + [MAX_LENGTH_CAP]), rows)


def _load_other(path: Path, tokenizer: Path | None, arch: str | None, trust_model: bool, device: str) -> TextModel:
    if tokenizer is None:
        raise UsageError(f"'{path.name}' is a checkpoint file, which brings no tokenizer; pass --tokenizer "
                         "tokenizer.json (or a Hugging Face model folder)")
    tok = load_tokenizer_json(tokenizer)
    if not path.is_file():
        raise ModelLoadError(f"model file '{path}' does not exist; check the path")
    notes: list[str] = []
    kind = sniff(path)
    if kind == "torchscript":
        inner = load_torchscript(path, torch.device(device), notes)
        loaded = LoadedModel(inner, "torchscript", sha256_file(path), os.fspath(path), None, tuple(notes))
    elif kind == "export":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                inner = torch.export.load(str(path)).module().to(device)
            except Exception as e:
                raise ModelLoadError(f"'{path.name}' looks like a torch.export program but could not be loaded "
                                     f"({_reason(e)}); re-save it with torch.export.save") from e
        loaded = LoadedModel(inner, "export", sha256_file(path), os.fspath(path), None)
    else:
        loaded = load_model(path, arch=arch, trust_model=trust_model, device=device)
        inner = loaded.module
    name, emb = find_embedding(inner, tok.vocab_size)
    weight = getattr(emb, "weight", None)
    if not (isinstance(weight, torch.Tensor) and weight.dim() == 2):
        raise ModelLoadError(f"'{path.name}': the layer '{name}' is not an embedding table; a text model must look "
                             "up its token ids in an nn.Embedding")
    if isinstance(inner, torch.jit.ScriptModule) or kind == "export":
        module: nn.Module = TableSwapModel(inner, emb)
        for sub in module.modules():  # exported graphs refuse .eval(); their mode was fixed at export time
            sub.training = False
        layer = module.embeddings
    else:
        module, layer = EagerTextModel(inner).eval(), emb
    positions = [int(w.shape[0]) for n, m in inner.named_modules() if "position" in n.lower()
                 and (w := embedding_weight(m)) is not None]
    max_pos = min(positions + [MAX_LENGTH_CAP])
    return TextModel(module, layer, tok, loaded, 0, (), max_pos, int(weight.shape[0]), tuple(loaded.notes))


def _check_vocab(tm: TextModel) -> None:
    v, rows = tm.tokenizer.vocab_size, tm.embedding_rows
    if v > rows or v < MIN_VOCAB_FRACTION * rows:
        what = "larger" if v > rows else "much smaller"
        raise ModelLoadError(f"the tokenizer's vocabulary ({v:,} tokens) is {what} than the model's embedding table "
                             f"({rows:,} rows): they do not belong together; pass the tokenizer the model was "
                             "trained with")


def load_text_model(path: str | Path, *, tokenizer: str | Path | None = None, arch: str | None = None,
                    trust_model: bool = False, device: str = "cpu") -> TextModel:
    """Load a text classifier and its tokenizer (see the module notes).

    Raises
    ------
    ModelLoadError
        A folder that is not a model, files that cannot be loaded, a tokenizer that does not fit the model, the
        text extra missing.
    UsageError
        A checkpoint file without ``--tokenizer``.
    """
    path = Path(path)
    tok_path = None if tokenizer is None else Path(tokenizer)
    if not path.exists():
        raise ModelLoadError(f"model '{path}' does not exist; pass a Hugging Face model folder or a checkpoint file")
    tm = _load_hf(path, tok_path, device) if path.is_dir() else _load_other(path, tok_path, arch, trust_model, device)
    _check_vocab(tm)
    if tm.tokenizer.pad_id is None:
        raise ModelLoadError("the tokenizer has no pad token and the model's config names none; add one (e.g. "
                             "[PAD]) to the tokenizer")
    return tm
