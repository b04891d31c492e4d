"""Tokenising texts with truncation counted: one interface over a ``tokenizers.Tokenizer`` (a ``tokenizer.json``
or the backend of a Hugging Face fast tokenizer) and over a slow Hugging Face tokenizer.

:meth:`TextTokenizer.encode` returns per row the ids (special tokens included, cut to ``max_length``), the
special-token mask (``[CLS]``/``[SEP]``: kept in the pad baseline), the token strings and whether the row was
truncated; padding is the caller's (rows of similar length are batched together).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audit.errors import DataError, ModelLoadError
from audit.io.text.extra import require

__all__ = ["Encoded", "TextTokenizer", "load_tokenizer_json", "PAD_NAMES"]

PAD_NAMES = ("[PAD]", "<pad>", "<|pad|>", "<PAD>", "[pad]")


@dataclass(frozen=True)
class Encoded:
    """Token ids of the rows, ragged: ``ids[i]`` (special tokens included), ``special[i]`` (1 = special token),
    ``tokens[i]`` (strings), ``truncated[i]`` and, when the tokenizer has a pre-tokenizer, ``word_ids[i]`` (the
    word of each piece, None for special tokens; :mod:`audit.analysis.words` groups pieces into words with it)."""

    ids: list[list[int]]
    special: list[list[int]]
    tokens: list[list[str]]
    truncated: list[bool]
    word_ids: list[list[int | None]] | None = None

    @property
    def n_truncated(self) -> int:
        return int(sum(self.truncated))


class TextTokenizer:
    """A tokenizer the text audit can use.

    Parameters
    ----------
    backend : tokenizers.Tokenizer, optional
        Used when given (``tokenizer.json``, or a fast Hugging Face tokenizer's ``backend_tokenizer``).
    hf : transformers tokenizer, optional
        A slow Hugging Face tokenizer (used only without ``backend``); also the source of the pad token.
    pad_id : int, optional
        The pad token id, when known from elsewhere (the model's config).
    """

    def __init__(self, backend: Any = None, hf: Any = None, pad_id: int | None = None) -> None:
        if backend is None and hf is None:
            raise ModelLoadError("no tokenizer was found; pass --tokenizer tokenizer.json")
        if backend is not None:
            tokenizers = require("tokenizers")
            backend = tokenizers.Tokenizer.from_str(backend.to_str())  # a copy: truncation is set per call
            backend.no_padding()
            backend.no_truncation()
        self.backend = backend
        self.hf = hf
        self.pad_id = self._pad_id(pad_id)

    def _pad_id(self, given: int | None) -> int | None:
        hf_pad = getattr(self.hf, "pad_token_id", None) if self.hf is not None else None
        if hf_pad is not None:
            return int(hf_pad)
        if self.backend is not None:
            for name in PAD_NAMES:
                found = self.backend.token_to_id(name)
                if found is not None:
                    return int(found)
        return None if given is None else int(given)

    @property
    def vocab_size(self) -> int:
        """Ids the tokenizer can produce (added tokens included)."""
        if self.backend is not None:
            return int(self.backend.get_vocab_size(with_added_tokens=True))
        return int(len(self.hf))

    def token(self, token_id: int) -> str:
        if self.backend is not None:
            return self.backend.id_to_token(int(token_id)) or f"<{token_id}>"
        return str(self.hf.convert_ids_to_tokens(int(token_id)))

    @property
    def pad_token(self) -> str:
        return "" if self.pad_id is None else self.token(self.pad_id)

    def encode(self, texts: list[str] | tuple[str, ...], max_length: int) -> Encoded:
        """Tokenise with special tokens, cutting each row to ``max_length`` ids (special tokens kept)."""
        if self.backend is not None:
            tok = self.backend
            tok.enable_truncation(max_length)
            try:
                encs = tok.encode_batch(list(texts))
            finally:
                tok.no_truncation()
            return Encoded(
                ids=[list(e.ids) for e in encs],
                special=[list(e.special_tokens_mask) for e in encs],
                tokens=[list(e.tokens) for e in encs],
                truncated=[bool(e.overflowing) for e in encs],
                # without a pre-tokenizer every piece has word id 0: the pieces' markers decide instead
                word_ids=[list(e.word_ids) for e in encs] if tok.pre_tokenizer is not None else None,
            )
        full = self.hf(list(texts), truncation=False, add_special_tokens=True)["input_ids"]
        cut = self.hf(list(texts), truncation=True, max_length=max_length, add_special_tokens=True,
                      return_special_tokens_mask=True)
        ids = [list(r) for r in cut["input_ids"]]
        return Encoded(
            ids=ids,
            special=[list(r) for r in cut["special_tokens_mask"]],
            tokens=[[str(t) for t in self.hf.convert_ids_to_tokens(r)] for r in ids],
            truncated=[len(f) > len(c) for f, c in zip(full, ids, strict=True)],
            word_ids=[list(cut.word_ids(i)) for i in range(len(ids))] if getattr(cut, "is_fast", False) else None,
        )

    def check_nonempty(self, enc: Encoded, text_col: str) -> None:
        """A row with no token besides the special ones is empty to the model: one line naming it."""
        for i, sp in enumerate(enc.special):
            if sp and all(sp):
                raise DataError(f"row {i + 1} of column '{text_col}' has no tokens besides special ones once "
                                "tokenised; fill or drop it")
            if not sp:
                raise DataError(f"row {i + 1} of column '{text_col}' gives no tokens; fill or drop it")


def load_tokenizer_json(path: str | Path) -> TextTokenizer:
    """A ``tokenizer.json`` (the tokenizers library's format) as a :class:`TextTokenizer`.

    Raises
    ------
    ModelLoadError
        Missing or unreadable file.
    """
    tokenizers = require("tokenizers")
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"tokenizer file '{path}' does not exist; pass the tokenizer.json the model was "
                             "trained with")
    try:
        backend = tokenizers.Tokenizer.from_file(str(path))
    except Exception as e:  # the Rust side raises a plain Exception for bad JSON
        reason = " ".join(str(e).split())[:160]
        raise ModelLoadError(f"'{path.name}' is not a tokenizers tokenizer.json ({reason}); save it with "
                             "Tokenizer.save") from e
    return TextTokenizer(backend=backend)
