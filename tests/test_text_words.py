"""Words, not wordpieces: the token table, the ``spurious_token`` finding and the shaded rows name whole words
(a word's attribution the sum of its pieces'), while ``tokens.parquet`` keeps the pieces with the word of each."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from audit.analysis.words import join_pieces, piece_scheme, word_index, word_view
from audit.cli.main import app
from audit.report.sections._evidence import present
from audit.synthetic_text import PLANTED_TOKEN, wordpiece_tokenizer
from tests.text_toys import trained, write_case


def test_wordpiece_pieces_join_into_words():
    toks = ["[CLS]", "f", "##e", "##at", "##ur", "##e", "film", "z", "##q", "##x", "[SEP]"]
    sp = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert piece_scheme([toks]) == "wordpiece"
    assert word_index(toks, sp).tolist() == [0, 1, 1, 1, 1, 1, 2, 3, 3, 3, 4]
    assert join_pieces(toks[1:6]) == "feature"
    attr = np.arange(11, dtype=float)
    wv = word_view([toks, ["[CLS]", "feature", "[SEP]"]], [sp, [1, 0, 1]], [attr, np.ones(3)])
    assert wv.texts(0) == ["[CLS]", "feature", "film", "zqx", "[SEP]"]
    assert wv.attributions[0].tolist() == [0.0, 1 + 2 + 3 + 4 + 5, 6.0, 7 + 8 + 9, 10.0]  # sums of the pieces
    assert math.isclose(wv.attributions[0].sum(), attr.sum())  # completeness holds for words
    assert wv.keys[0][1] == wv.keys[1][1]  # "feature" in pieces and whole is one word
    assert wv.special[0].tolist() == [True, False, False, False, True] and wv.merged


def test_sentencepiece_and_byte_level_markers():
    sp_toks = ["<s>", "\u2581fe", "at", "ure", "\u2581film", "</s>"]
    assert piece_scheme([sp_toks]) == "sentencepiece"
    assert word_index(sp_toks, [1, 0, 0, 0, 0, 1]).tolist() == [0, 1, 1, 1, 2, 3]
    assert join_pieces(sp_toks[1:4], "sentencepiece") == "feature"
    bpe = ["<s>", "fe", "ature", "\u0120film", "</s>"]
    assert piece_scheme([bpe]) == "bytelevel"
    assert word_index(bpe, [1, 0, 0, 0, 1], scheme="bytelevel").tolist() == [0, 1, 1, 2, 3]
    # "Ġæ", "ĸĩ": the UTF-8 bytes of 文 as GPT-2's byte alphabet spells them; and the word at the text start
    # (no Ġ) and after a space are one word to a reader
    wv = word_view([["<s>", "great", "\u0120great", "\u0120\u00e6\u0138\u0129", "</s>"]], [[1, 0, 0, 0, 1]],
                   [np.ones(5)])
    assert wv.texts(0) == ["<s>", "great", "great", "文", "</s>"] and wv.keys[0][1] == wv.keys[0][2]


def test_tokenizer_word_ids_decide_over_markers():
    enc = wordpiece_tokenizer().encode("the zqx, film")
    assert enc.tokens == ["[CLS]", "the", "z", "##q", "##x", "[UNK]", "film", "[SEP]"]
    idx = word_index(enc.tokens, enc.special_tokens_mask, enc.word_ids)
    assert idx.tolist() == [0, 1, 2, 2, 2, 3, 4, 5]


def test_spurious_token_evidence_reads_in_words():
    ev = {"token": "zqx", "share": 0.11, "share_ci_low": 0.09, "rows": 141, "n_rows": 300, "towards": "positive",
          "shift": 0.5, "shift_ci_low": 0.44, "shift_ci_high": 0.55, "flip_rate": 0.53, "flip_ci_low": 0.45,
          "flip_ci_high": 0.61, "labelled": True, "label_rate": 0.52, "label_rate_without": 0.48, "info": 0.03,
          "info_ci_low": -0.08, "info_ci_high": 0.14, "benefit": -0.9, "benefit_ci_low": -1.0,
          "benefit_ci_high": -0.7, "max_benefit": 0.2, "min_shift": 0.05}  # fmt: skip
    lines = dict(present("spurious_token", ev))
    assert len(lines) == 7 and lines["Word"] == "zqx"
    assert lines["Rows containing it"].startswith("141 of the 300 audited rows (47.0%)")
    assert "lower end is at least 0.05" in lines["Drop in P(positive) when masked"]
    assert "flagged when the upper end is below 0.2" in lines["Benefit ratio"]
    assert not any(k.startswith(("Rest", "Info")) for k in lines)
    assert present("noise_leakage", {"x": 1}) is None


@pytest.fixture(scope="module")
def planted_pieces():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield trained(True, pieces=True)
    finally:
        torch.set_num_threads(n)


def test_table_finding_and_shading_name_whole_words(planted_pieces, tmp_path):
    hf, val = write_case(tmp_path, planted_pieces)
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["run", "--model", str(hf), "--data", str(val), "--target-col", "label", "--out",
                                   str(out), "--format", "json,html", "--n-boot", "50", "--crosscheck-rows", "16",
                                   "--quiet"])  # fmt: skip
    run = json.loads((out / "audit.json").read_text())
    assert res.exit_code == (1 if run["verdict"] == "fail" else 0), res.output
    names = [t["token"] for t in run["text"]["tokens"]]
    assert not any(n.startswith("##") for n in names) and names[0] == PLANTED_TOKEN  # z ##q ##x as one word
    assert {"delightful", "enjoyable", "terrible", "disappointing"} & set(names)  # split words come back whole
    spurious = [f for f in run["findings"] if f["code"] == "spurious_token"]
    assert [f["features"] for f in spurious] == [[PLANTED_TOKEN]] and spurious[0]["severity"] in ("warn", "fail")
    assert run["text"]["settings"]["unit"] == "word"
    for ex in run["text"]["most_confident"] + run["text"]["misclassified"]:
        assert not any(t.startswith("##") for t in ex["tokens"])
    tokens = pq.read_table(out / "tokens.parquet").to_pandas()
    row = tokens[tokens.tokens.map(lambda t: "##q" in list(t))].iloc[0]  # the pieces are kept
    pieces, index, words = list(row.tokens), list(row.word_index), list(row.words)
    assert len(index) == len(pieces) == len(row.attributions) and index[-1] == len(words) - 1
    z = pieces.index("z")
    assert pieces[z : z + 3] == ["z", "##q", "##x"] and index[z] == index[z + 1] == index[z + 2]
    assert words[index[z]] == PLANTED_TOKEN
    html = (out / "report.html").read_text()
    assert "##q" not in html and "Rest CI high" not in html and "Rows containing it" in html
