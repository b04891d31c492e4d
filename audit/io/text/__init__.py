"""Text data and text classifiers: Hugging Face folders loaded safely, TorchScript/export/state_dict models with a
``tokenizer.json``, CSV/Parquet text columns, tokenising with truncation counts, and the per-row token file.

- :mod:`~audit.io.text.extra`: the optional ``text`` extra (transformers, tokenizers), one line when missing.
- :mod:`~audit.io.text.data`: :func:`read_texts`, :func:`parse_labels`.
- :mod:`~audit.io.text.tokenize`: :class:`TextTokenizer` (truncation counted), :func:`load_tokenizer_json`.
- :mod:`~audit.io.text.scripted`: making TorchScript/exported models hookable at the embedding.
- :mod:`~audit.io.text.model`: :func:`load_text_model`, :func:`text_model_from_objects` (the Python API),
  :class:`TextModel`.
- :mod:`~audit.io.text.tokens_file`: :func:`write_tokens_parquet` (``tokens.parquet`` next to ``audit.json``).

Importing this package imports torch but neither transformers nor tokenizers (they load on first use).
"""

from __future__ import annotations

from audit.io.text.data import TEXT_FORMATS, TextData, parse_labels, read_texts
from audit.io.text.extra import EXTRA_MESSAGE, require
from audit.io.text.model import HF_SAFE_KWARGS, MAX_LENGTH_CAP, TextModel, load_text_model, text_model_from_objects
from audit.io.text.tokenize import Encoded, TextTokenizer, load_tokenizer_json
from audit.io.text.tokens_file import TOKENS_FILE, tokens_table, write_tokens_parquet

__all__ = [
    "TEXT_FORMATS",
    "TextData",
    "parse_labels",
    "read_texts",
    "EXTRA_MESSAGE",
    "require",
    "HF_SAFE_KWARGS",
    "MAX_LENGTH_CAP",
    "TextModel",
    "load_text_model",
    "text_model_from_objects",
    "Encoded",
    "TextTokenizer",
    "load_tokenizer_json",
    "TOKENS_FILE",
    "tokens_table",
    "write_tokens_parquet",
]
