"""Words from subword pieces: the unit a reader sees in the token table, the ``spurious_token`` finding and the
shaded examples.

Tokenizers split words into pieces in three common ways: WordPiece (BERT) marks a *continuation* with ``##``
(``f ##e ##at ##ur ##e``); SentencePiece marks a *word start* with ``▁`` and byte-level BPE (GPT-2, RoBERTa) with
``Ġ`` (its pieces are bytes mapped to printable characters). Pieces are grouped into words by the tokenizer's own
word ids when it has them (the ``word_ids`` of a ``tokenizers`` Encoding, one per pre-tokenized word), else by
those markers. Special tokens (``[CLS]``, ``<s>``) are words of their own. A word's attribution is the sum of its
pieces' (layer IG is additive over positions, so completeness holds for words as for pieces).

Words are keyed by their text and whether they are special: ``great`` at the start of a GPT-2 text (no ``Ġ``)
and ``Ġgreat`` after a space are different ids to the model but one word to a reader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

__all__ = ["WordView", "piece_scheme", "word_index", "join_pieces", "word_view"]

_CONTINUE = "##"  # WordPiece continuation prefix
_SP_START = "\u2581"  # SentencePiece word start: ▁
_BPE_START = "\u0120"  # byte-level BPE word start (the byte 0x20 mapped to a printable character): Ġ


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character alphabet for the 256 bytes, inverted (Radford et al. 2019, ``encoder.py``)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs = list(bs)
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def piece_scheme(tokens: Sequence[Sequence[str]]) -> str:
    """How the pieces of these rows mark words: ``"bytelevel"`` (``Ġ``), ``"sentencepiece"`` (``▁``) or
    ``"wordpiece"`` (``##`` continuations; also right for word-level tokenizers, which have none)."""
    seen_sp = False
    for row in tokens:
        for t in row:
            if t.startswith(_BPE_START):
                return "bytelevel"
            seen_sp = seen_sp or t.startswith(_SP_START)
    return "sentencepiece" if seen_sp else "wordpiece"


def word_index(tokens: Sequence[str], special: Sequence[int], word_ids: Sequence[int | None] | None = None,
               scheme: str | None = None) -> np.ndarray:
    """The word of each piece of one row.

    Parameters
    ----------
    tokens, special : sequences of length L
        The row's piece strings and special-token flags.
    word_ids : sequence of length L, optional
        The tokenizer's word id per piece (None for special tokens); markers decide without it.
    scheme : str, optional
        From :func:`piece_scheme` (of all rows); by default that of this row.

    Returns
    -------
    ndarray of int64, shape (L,)
        0, 0, 1, 2, 2, ...: pieces of one word share an index; indices count up from 0 with no gaps.
    """
    scheme = piece_scheme([tokens]) if scheme is None else scheme
    out = np.zeros(len(tokens), dtype=np.int64)
    w = -1
    for i, t in enumerate(tokens):
        joins = i > 0 and not special[i] and not special[i - 1]
        if joins and word_ids is not None:
            joins = word_ids[i] is not None and word_ids[i] == word_ids[i - 1]
        elif joins and scheme == "wordpiece":
            joins = t.startswith(_CONTINUE) and len(t) > len(_CONTINUE)
        elif joins:
            joins = not t.startswith(_SP_START if scheme == "sentencepiece" else _BPE_START)
        w += 0 if joins else 1
        out[i] = w
    return out


def join_pieces(pieces: Sequence[str], scheme: str = "wordpiece") -> str:
    """The text of one word from its pieces: markers dropped, byte-level pieces decoded to UTF-8."""
    if scheme == "wordpiece":
        return "".join(p[len(_CONTINUE):] if k and p.startswith(_CONTINUE) else p for k, p in enumerate(pieces))
    s = "".join(pieces)
    if scheme == "sentencepiece":
        return s.replace(_SP_START, " ").strip() or s
    dec = _byte_decoder()
    if all(c in dec for c in s):
        text = bytes(dec[c] for c in s).decode("utf-8", errors="replace").strip()
    else:
        text = s.replace(_BPE_START, " ").strip()
    return text or s


@dataclass(frozen=True)
class WordView:
    """The rows as words.

    Attributes
    ----------
    index : list of ndarray of shape (L_i,)
        Per row, the word of each piece (:func:`word_index`).
    keys : list of ndarray of shape (W_i,)
        Per row, each word's key into ``names`` (the same word text in any row has the same key).
    attributions : list of ndarray of shape (W_i,)
        Per row, each word's attribution: the sum of its pieces'.
    special : list of ndarray of bool, shape (W_i,)
    names : list of str
        Key -> word text (unique: a non-special word spelt like a special token gets a ``#key`` suffix).
    scheme : str
    """

    index: list[np.ndarray]
    keys: list[np.ndarray]
    attributions: list[np.ndarray]
    special: list[np.ndarray]
    names: list[str]
    scheme: str

    def texts(self, i: int) -> list[str]:
        """The words of row ``i``."""
        return [self.names[k] for k in self.keys[i]]

    @property
    def merged(self) -> bool:
        """Whether any word has more than one piece."""
        return any(len(k) < len(x) for k, x in zip(self.keys, self.index, strict=True))


def word_view(tokens: Sequence[Sequence[str]], special: Sequence[Sequence[int]], attributions: Sequence[np.ndarray],
              word_ids: Sequence[Sequence[int | None]] | None = None) -> WordView:
    """Group every row's pieces into words (see the module notes).

    Parameters
    ----------
    tokens, special : per row, sequences of length L_i
        Piece strings and special-token flags.
    attributions : per row, ndarray of shape (L_i,)
        Piece attributions.
    word_ids : per row, sequences of length L_i, optional
        The tokenizer's word ids.
    """
    scheme = piece_scheme(tokens)
    vocab: dict[tuple[str, bool], int] = {}
    names: list[str] = []
    index, keys, attrs, specials = [], [], [], []
    for i, row in enumerate(tokens):
        sp = [int(s) for s in special[i]]
        idx = word_index(row, sp, None if word_ids is None else word_ids[i], scheme)
        n_words = int(idx[-1]) + 1 if idx.size else 0
        starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]]) if idx.size else np.zeros(0, dtype=np.int64)
        ends = np.r_[starts[1:], idx.size]
        row_keys = np.zeros(n_words, dtype=np.int64)
        row_sp = np.zeros(n_words, dtype=bool)
        for w, (s, e) in enumerate(zip(starts, ends, strict=True)):
            is_sp = bool(sp[s])
            text = row[s] if is_sp else join_pieces(row[s:e], scheme)
            key = vocab.get((text, is_sp))
            if key is None:
                key = vocab[(text, is_sp)] = len(names)
                names.append(text)
            row_keys[w], row_sp[w] = key, is_sp
        a = np.asarray(attributions[i], dtype=np.float64)
        index.append(idx)
        keys.append(row_keys)
        attrs.append(np.bincount(idx, a, minlength=n_words) if idx.size else np.zeros(0))
        specials.append(row_sp)
    seen: dict[str, int] = {}
    for (text, _sp), key in vocab.items():  # the first seen keeps its spelling
        if text in seen and seen[text] != key:
            names[key] = f"{text}#{key}"
        seen.setdefault(text, key)
    return WordView(index, keys, attrs, specials, names, scheme)
