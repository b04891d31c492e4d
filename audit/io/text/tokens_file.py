"""The per-row token file, ``tokens.parquet`` next to ``audit.json``: per row its tokens and their attributions
(ragged lists), the prediction, the label and the completeness error.

The output sink's ``table(kind, name, pyarrow.Table)`` writes it into the staging folder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from audit.outputs import TOKENS_FILE

__all__ = ["TOKENS_FILE", "tokens_table", "write_tokens_parquet"]


def tokens_table(
    tokens: list[list[str]], token_ids: list[list[int]], attributions: list[np.ndarray], *, predicted: np.ndarray,
    target: np.ndarray, confidence: np.ndarray, rel_delta: np.ndarray, labels: np.ndarray | None,
    truncated: np.ndarray, word_index: list[np.ndarray] | None = None, words: list[list[str]] | None = None,
) -> pa.Table:
    """One row per data row: ``_row``, ``tokens`` (list of str: the tokenizer's pieces), ``token_ids`` (list of
    int32), ``attributions`` (list of float32, per piece), ``predicted``, ``target``, ``confidence``, ``label`` (-1
    when unknown), ``truncated``, ``_rel_delta``; with ``word_index`` also ``word_index`` (list of int32: the word
    of each piece, an index into ``words``) and ``words`` (list of str: the row's words, special tokens included;
    a word's attribution is the sum of its pieces')."""
    n = len(tokens)
    extra = {}
    if word_index is not None:
        extra["word_index"] = pa.array([np.asarray(w, dtype=np.int32) for w in word_index], type=pa.list_(pa.int32()))
        extra["words"] = pa.array(words, type=pa.list_(pa.string()))
    return pa.table({
        "_row": pa.array(np.arange(n, dtype=np.int64)),
        "tokens": pa.array(tokens, type=pa.list_(pa.string())),
        "token_ids": pa.array([np.asarray(t, dtype=np.int32) for t in token_ids], type=pa.list_(pa.int32())),
        "attributions": pa.array([np.asarray(a, dtype=np.float32) for a in attributions],
                                 type=pa.list_(pa.float32())),
        "predicted": pa.array(np.asarray(predicted, dtype=np.int64)),
        "target": pa.array(np.asarray(target, dtype=np.int64)),
        "confidence": pa.array(np.asarray(confidence, dtype=np.float32)),
        "label": pa.array(np.full(n, -1, np.int64) if labels is None else np.asarray(labels, dtype=np.int64)),
        "truncated": pa.array(np.asarray(truncated, dtype=bool)),
        "_rel_delta": pa.array(np.asarray(rel_delta, dtype=np.float32)),
        **extra,
    })  # fmt: skip


def write_tokens_parquet(sink: Any, table: pa.Table) -> bool:
    """Hand ``table`` to the output sink as ``tokens.parquet``; False without a sink."""
    if sink is None:
        return False
    sink.table("tokens", TOKENS_FILE, table)
    return True
