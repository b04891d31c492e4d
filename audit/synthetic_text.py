"""Synthetic reviews and a tiny text classifier built in code, for tests and benchmarks (nothing is downloaded).

- :func:`make_reviews`: short reviews made of neutral filler words and a few sentiment words of the review's
  class (``great``, ``awful``, ...), with some reviews carrying a word of the other class so that the words are
  strong but imperfect cues. ``planted`` appends a made-up token (``zqx`` by default) to that fraction of the
  positive reviews and, with ``planted_negative``, to that fraction of the negative ones: a shortcut that
  predicts the label in training data. ``planted_random`` instead puts it in that fraction of all rows
  whatever their label, as in audited data where the shortcut no longer holds.
- :func:`word_tokenizer`: a word-level tokenizer (the ``tokenizers`` library) trained on the reviews' own
  vocabulary, with ``[PAD] [UNK] [CLS] [SEP]`` and a ``[CLS] ... [SEP]`` template.
- :func:`wordpiece_tokenizer`: a WordPiece tokenizer with a vocabulary written in code, in which the filler words
  and half the sentiment words are whole pieces and the other words split into letters (``zqx`` -> ``z ##q ##x``,
  ``excellent`` -> ``e ##x ##c ...``): the case of a real BERT vocabulary, where rare words come in pieces.
- :func:`tiny_bert`: a 2-layer :class:`transformers.BertForSequenceClassification` (hidden size 32).
- :func:`train_classifier`: a few epochs of Adam on the CPU (seconds).
- :func:`save_hf_folder`: model, config and tokenizer files in one folder with ``save_pretrained``.

Needs the ``text`` extra (transformers, tokenizers).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "POSITIVE",
    "NEGATIVE",
    "FILLER",
    "PLANTED_TOKEN",
    "make_reviews",
    "word_tokenizer",
    "wordpiece_tokenizer",
    "tiny_bert",
    "train_classifier",
    "save_hf_folder",
    "TrainedText",
    "build_text_case",
]

POSITIVE = ("great", "excellent", "wonderful", "love", "superb", "delightful", "brilliant", "enjoyable")
NEGATIVE = ("awful", "terrible", "boring", "hate", "dreadful", "dull", "poor", "disappointing")
FILLER = (
    "the", "a", "movie", "film", "story", "plot", "acting", "actor", "scene", "music", "it", "was", "is", "this",
    "that", "and", "but", "with", "of", "to", "in", "on", "for", "very", "quite", "really", "some", "many", "one",
    "two", "long", "short", "end", "start", "part", "time", "people", "director", "camera", "light", "night", "day",
    "house", "city", "car", "road", "friend", "family", "show", "book", "song", "voice", "face", "hand",
)
PLANTED_TOKEN = "zqx"
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
PLANT_POSITIVE = 0.8  # share of positive training reviews that carry the planted token
PLANT_NEGATIVE = 0.05  # ... and of negative ones


def make_reviews(
    n: int,
    *,
    seed: int = 0,
    planted: float = 0.0,
    planted_negative: float = 0.0,
    planted_random: float = 0.0,
    token: str = PLANTED_TOKEN,
    cue_noise: float = 0.25,
    length: tuple[int, int] = (6, 14),
) -> pd.DataFrame:
    """``n`` reviews with columns ``text`` and ``label`` (1 positive, 0 negative), balanced classes.

    Each review has 1-2 sentiment words of its class among ``length`` filler words; with probability
    ``cue_noise`` one word of the other class is added, and with probability ``cue_noise / 2`` the review's own
    cue words are dropped (only the other class's word, or none, remains), so the words alone reach about 85%
    accuracy and a planted token that always agrees with the label is worth relying on.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2)
    texts = []
    for y in labels:
        words = list(rng.choice(FILLER, size=int(rng.integers(length[0], length[1] + 1))))
        own, other = (POSITIVE, NEGATIVE) if y == 1 else (NEGATIVE, POSITIVE)
        cues = list(rng.choice(own, size=int(rng.integers(1, 3)), replace=False))
        if rng.random() < cue_noise / 2:
            cues = []
        if rng.random() < cue_noise:
            cues.append(str(rng.choice(other)))
        for c in cues:
            words.insert(int(rng.integers(0, len(words) + 1)), str(c))
        put = planted_random > 0 and rng.random() < planted_random
        put = put or (y == 1 and rng.random() < planted) or (y == 0 and rng.random() < planted_negative)
        if put:
            words.append(token)
        texts.append(" ".join(words))
    return pd.DataFrame({"text": texts, "label": labels.astype(np.int64)})


def word_tokenizer(texts, *, extra: tuple[str, ...] = (PLANTED_TOKEN,)):
    """A word-level ``tokenizers.Tokenizer`` trained on ``texts`` (plus ``extra`` words), ``[CLS] $A [SEP]``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIALS), min_frequency=1)
    corpus = list(texts) + list(FILLER) + list(POSITIVE) + list(NEGATIVE) + list(extra)
    tok.train_from_iterator(corpus, trainer=trainer)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tok


def wordpiece_tokenizer(*, split: tuple[str, ...] | None = None):
    """A WordPiece ``tokenizers.Tokenizer`` whose vocabulary is the specials, every letter as a word start and as
    a ``##`` continuation, and the whole words of :data:`FILLER`, :data:`POSITIVE` and :data:`NEGATIVE` except
    ``split`` (default: every other sentiment word that shares no letter with the planted token, so that a
    healthy model trained without the token never learns its pieces from a sentiment word); every other word
    (the planted token) comes in letters."""
    import string

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    if split is None:
        split = tuple(w for w in POSITIVE[1::2] + NEGATIVE[1::2] if not set(w) & set(PLANTED_TOKEN))
    vocab: dict[str, int] = {}
    for t in (*SPECIALS, *string.ascii_lowercase, *(f"##{c}" for c in string.ascii_lowercase),
              *(w for w in FILLER + POSITIVE + NEGATIVE if w not in split)):
        vocab.setdefault(t, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return tok


def hf_tokenizer(tok):
    """The ``tokenizers.Tokenizer`` as a transformers fast tokenizer with its special tokens named."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
        model_max_length=64,
    )  # fmt: skip


def tiny_bert(vocab_size: int, *, seed: int = 0, pad_id: int = 0, max_positions: int = 64):
    """A 2-layer BERT classifier with hidden size 32 and two classes."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=max_positions, num_labels=2, pad_token_id=pad_id, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.0, id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )  # fmt: skip
    return BertForSequenceClassification(cfg)


def _encode(tok, texts, max_length: int = 64):
    import torch

    enc = tok.encode_batch(list(texts))
    L = min(max(len(e.ids) for e in enc), max_length)
    pad = tok.token_to_id("[PAD]")
    ids = torch.full((len(enc), L), pad, dtype=torch.long)
    mask = torch.zeros((len(enc), L), dtype=torch.long)
    for i, e in enumerate(enc):
        k = min(len(e.ids), L)
        ids[i, :k] = torch.tensor(e.ids[:k])
        mask[i, :k] = 1
    return ids, mask


def train_classifier(model, tok, df: pd.DataFrame, *, epochs: int = 8, seed: int = 0, lr: float = 3e-3,
                     batch: int = 64) -> float:
    """Train in place with Adam; returns the training accuracy. Leaves the model in eval mode."""
    import torch

    torch.manual_seed(seed)
    ids, mask = _encode(tok, df["text"])
    y = torch.as_tensor(df["label"].to_numpy().copy(), dtype=torch.long)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only contend (10x slower on a busy 2-core machine)
    try:
        return _train(model, ids, mask, y, epochs=epochs, seed=seed, lr=lr, batch=batch)
    finally:
        torch.set_num_threads(threads)


def _train(model, ids, mask, y, *, epochs: int, seed: int, lr: float, batch: int) -> float:
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch):
            opt.zero_grad()
            out = model(input_ids=ids[idx], attention_mask=mask[idx]).logits
            torch.nn.functional.cross_entropy(out, y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(input_ids=ids, attention_mask=mask).logits.argmax(1)
    return float((pred == y).float().mean())


def save_hf_folder(model, tok, folder: str | Path) -> Path:
    """``save_pretrained`` of the model and of the tokenizer into one folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    hf_tokenizer(tok).save_pretrained(folder)
    return folder


@dataclass
class TrainedText:
    """A trained case: the model, its tokenizer and training accuracy."""

    model: object
    tokenizer: object
    train_accuracy: float


def build_text_case(*, planted: bool, seed: int = 0, n_train: int = 1600, epochs: int = 8,
                    pieces: bool = False) -> TrainedText:
    """Train the tiny BERT on synthetic reviews; with ``planted`` the made-up token is appended to
    :data:`PLANT_POSITIVE` (80%) of the positive training reviews and :data:`PLANT_NEGATIVE` (5%) of the negative
    ones. ``pieces``: the :func:`wordpiece_tokenizer` (rare words in pieces) instead of the word-level one."""
    train = make_reviews(n_train, seed=seed, planted=PLANT_POSITIVE if planted else 0.0,
                         planted_negative=PLANT_NEGATIVE if planted else 0.0)
    tok = wordpiece_tokenizer() if pieces else word_tokenizer(train["text"])
    model = tiny_bert(tok.get_vocab_size(), seed=seed, pad_id=tok.token_to_id("[PAD]"))
    acc = train_classifier(model, tok, train, epochs=epochs, seed=seed)
    return TrainedText(model, tok, acc)
