"""A text audit on Ray actors (``--executor ray``, two workers on one local Ray instance) gives the local run's
token table, ranking, convergence and findings: the text modality's work protocol
(:mod:`audit.modalities.text_units`). About 40-55 s on 2 cores (Ray start-up and transformers imported in each
actor), hence ``slow``."""

from __future__ import annotations

import json

import pytest
import torch
from ray_toys import import_ray, local_ray_instance  # noqa: E402
from typer.testing import CliRunner

from audit.cli.main import app
from audit.synthetic_text import make_reviews, save_hf_folder, tiny_bert, word_tokenizer

ray = import_ray()



@pytest.fixture(scope="module", autouse=True)
def local_ray():
    yield from local_ray_instance(ray)


@pytest.mark.slow
def test_text_audit_on_ray_matches_local(tmp_path):
    df = make_reviews(150, seed=3, planted_random=0.5)
    tok = word_tokenizer(df["text"])
    torch.manual_seed(0)
    hf = save_hf_folder(tiny_bert(tok.get_vocab_size(), pad_id=tok.token_to_id("[PAD]")).eval(), tok, tmp_path / "hf")
    df.to_csv(tmp_path / "val.csv", index=False)
    runs = {}
    for ex in ("local", "ray"):
        out = tmp_path / ex
        res = CliRunner().invoke(app, [
            "run", "--model", str(hf), "--data", str(tmp_path / "val.csv"), "--target-col", "label", "--out", str(out),
            "--format", "json", "--quiet", "--n-boot", "20", "--crosscheck-rows", "4", "--executor", ex,
            "--workers", "2",
        ])  # fmt: skip
        assert res.exit_code in (0, 1), res.output
        runs[ex] = json.loads((out / "audit.json").read_text())
    a, b = runs["local"], runs["ray"]
    for key in ("features", "convergence", "findings", "crosscheck"):
        assert a[key] == b[key], key
    assert a["text"]["tokens"] == b["text"]["tokens"] and a["text"]["most_confident"] == b["text"]["most_confident"]
