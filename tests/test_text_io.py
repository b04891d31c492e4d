"""Text inputs: each bad input is one line, exit 3 and nothing written; Hugging Face folders load with
local_files_only and no remote code; a TorchScript model with --tokenizer tokenizer.json is audited (and agrees
with Captum); the text section round-trips through audit.json while other runs' JSON has no text key."""

from __future__ import annotations

import json
import warnings

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from audit.cli.main import app
from audit.io.text import EXTRA_MESSAGE, HF_SAFE_KWARGS, load_text_model, require
from audit.results import AuditRun, from_dict, load_run, to_dict
from audit.synthetic_text import make_reviews, save_hf_folder, tiny_bert, word_tokenizer

runner = CliRunner()


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An untrained tiny BERT in a HF folder (loading and validation need no training) and its data."""
    root = tmp_path_factory.mktemp("text_io")
    df = make_reviews(40, seed=1)
    tok = word_tokenizer(df["text"])
    model = tiny_bert(tok.get_vocab_size(), pad_id=tok.token_to_id("[PAD]")).eval()
    hf = save_hf_folder(model, tok, root / "hf")
    df.to_csv(root / "val.csv", index=False)
    return root, hf, tok, model


def _fails(args, out, needle):
    res = runner.invoke(app, ["run", *args, "--out", str(out), "--quiet", "--crosscheck-rows", "0"])
    err = res.stderr.strip().splitlines()
    assert res.exit_code == 3, res.output
    assert len(err) == 1 and err[0].startswith("audit: error:") and needle in err[0], err
    assert not out.exists() or not any(out.iterdir())
    return err[0]


def test_empty_text_is_one_line(untrained, tmp_path):
    root, hf, _, _ = untrained
    df = pd.read_csv(root / "val.csv")
    df.loc[3, "text"] = "   "
    df.to_csv(tmp_path / "bad.csv", index=False)
    _fails(["--model", str(hf), "--data", str(tmp_path / "bad.csv")], tmp_path / "out",
           "empty text(s) (first at row 4)")


def test_missing_column_is_one_line(untrained, tmp_path):
    root, hf, _, _ = untrained
    _fails(["--model", str(hf), "--data", str(root / "val.csv"), "--text-col", "review"], tmp_path / "out",
           "--text-col 'review' is not a column")


def test_vocabulary_mismatch_is_one_line(untrained, tmp_path):
    root, _, tok, _ = untrained
    small = tiny_bert(20).eval()  # an embedding table of 20 rows for a tokenizer of ~90 tokens
    hf = save_hf_folder(small, tok, tmp_path / "hf")
    _fails(["--model", str(hf), "--data", str(root / "val.csv")], tmp_path / "out", "do not belong together")


def test_folder_that_is_not_a_model_is_one_line(untrained, tmp_path):
    root, _, _, _ = untrained
    folder = tmp_path / "notamodel"
    folder.mkdir()
    (folder / "readme.txt").write_text("hello")
    _fails(["--model", str(folder), "--data", str(root / "val.csv"), "--kind", "text"], tmp_path / "out",
           "is not a Hugging Face model folder")


def test_missing_text_extra_is_one_line(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "transformers":
            raise ImportError("no transformers")
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(Exception) as err:
        require("transformers")
    assert EXTRA_MESSAGE in str(err.value) and getattr(err.value, "exit_code", None) == 3


def test_hf_folder_loads_locally_without_remote_code(untrained, monkeypatch):
    import transformers

    _, hf, _, _ = untrained
    seen = []
    for cls in (transformers.AutoConfig, transformers.AutoModelForSequenceClassification, transformers.AutoTokenizer):
        real = cls.from_pretrained

        def spy(*args, _real=real, _name=cls.__name__, **kwargs):
            seen.append((_name, kwargs.get("local_files_only"), kwargs.get("trust_remote_code")))
            return _real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tm = load_text_model(hf)
    assert {n for n, _, _ in seen} == {"AutoConfig", "AutoModelForSequenceClassification", "AutoTokenizer"}
    assert all(lf is True and trc is False for _, lf, trc in seen), seen
    assert HF_SAFE_KWARGS == {"local_files_only": True, "trust_remote_code": False}
    assert tm.n_outputs == 2 and tm.class_names == ("negative", "positive") and tm.loaded.form == "huggingface"


class _BagOfEmbeddings(torch.nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 8, padding_idx=0)
        self.mix = torch.nn.Linear(8, 8)
        self.out = torch.nn.Linear(8, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        e = torch.tanh(self.mix(self.emb(input_ids)))  # (n, L, 8)
        m = attention_mask.unsqueeze(-1).to(e.dtype)
        return self.out((e * m).sum(1) / m.sum(1).clamp(min=1.0))


def test_torchscript_model_with_tokenizer_json(untrained, tmp_path):
    root, _, tok, _ = untrained
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(_BagOfEmbeddings(tok.get_vocab_size()).eval())
        torch.jit.save(scripted, str(tmp_path / "model.pt"))
    tok.save(str(tmp_path / "tokenizer.json"))
    out = tmp_path / "out"
    res = runner.invoke(app, [
        "run", "--model", str(tmp_path / "model.pt"), "--tokenizer", str(tmp_path / "tokenizer.json"), "--data",
        str(root / "val.csv"), "--target-col", "label", "--out", str(out), "--format", "json", "--quiet",
        "--n-boot", "20", "--crosscheck-rows", "8",
    ])  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    run = json.loads((out / "audit.json").read_text())
    assert run["task"] == "text_classification" and run["provenance"]["model_form"] == "torchscript"
    assert run["crosscheck"]["passed"] is True and run["convergence"]["n_not_converged"] == 0
    assert run["text"]["n_rows"] == 40 and run["text"]["tokens"]


def test_checkpoint_without_tokenizer_is_a_usage_error(untrained, tmp_path):
    root, _, tok, _ = untrained
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(_BagOfEmbeddings(tok.get_vocab_size())), str(tmp_path / "m.pt"))
    res = runner.invoke(app, ["run", "--model", str(tmp_path / "m.pt"), "--data", str(root / "val.csv"),
                              "--kind", "text", "--out", str(tmp_path / "out"), "--quiet"])
    assert res.exit_code == 2 and "--tokenizer" in res.stderr


def test_text_section_round_trips_and_other_runs_have_no_text_key(untrained, tmp_path):
    root, hf, _, _ = untrained
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", "--model", str(hf), "--data", str(root / "val.csv"), "--target-col", "label",
                              "--out", str(out), "--format", "json", "--quiet", "--n-boot", "10",
                              "--crosscheck-rows", "0"])
    assert res.exit_code in (0, 1), res.output
    run = load_run(out / "audit.json")
    assert run.text is not None and run.text.tokens and run.text.most_confident
    again = from_dict(AuditRun, json.loads(json.dumps(to_dict(run))))
    assert to_dict(again) == to_dict(run)
    from dataclasses import replace

    assert "text" not in to_dict(replace(run, text=None))


def test_exported_program_with_tokenizer_json(untrained, tmp_path):
    root, _, tok, _ = untrained
    torch.manual_seed(0)
    model = _BagOfEmbeddings(tok.get_vocab_size()).eval()
    ids, mask = torch.randint(1, 10, (3, 7)), torch.ones(3, 7, dtype=torch.long)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.export.export(model, (ids, mask), dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}))
        torch.export.save(program, str(tmp_path / "model.pt2"))
    tok.save(str(tmp_path / "tokenizer.json"))
    out = tmp_path / "out"
    res = runner.invoke(app, [
        "run", "--model", str(tmp_path / "model.pt2"), "--tokenizer", str(tmp_path / "tokenizer.json"), "--data",
        str(root / "val.csv"), "--out", str(out), "--format", "json", "--quiet", "--n-boot", "10",
        "--crosscheck-rows", "4",
    ])  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    run = json.loads((out / "audit.json").read_text())
    assert run["provenance"]["model_form"] == "export" and run["crosscheck"]["passed"] is True


@pytest.mark.parametrize(("extra", "needle"), [
    (["--baseline", "mean"], "does not apply to text"),
    (["--class", "all"], "--class all is for tabular audits"),
    (["--slice-col", "label"], "--slice-col does not apply to text"),
    (["--group", "g=g_*"], "--group does not apply to text"),
    (["--max-length", "4096"], "beyond what the model takes"),
])  # fmt: skip
def test_options_that_cannot_work_for_text_are_usage_errors(untrained, tmp_path, extra, needle):
    root, hf, _, _ = untrained
    res = runner.invoke(app, ["run", "--model", str(hf), "--data", str(root / "val.csv"), "--out",
                              str(tmp_path / "out"), "--quiet", *extra])
    assert res.exit_code == 2 and needle in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_parquet_text_column_is_found_without_text_col(untrained, tmp_path):
    root, hf, _, _ = untrained
    df = pd.read_csv(root / "val.csv").rename(columns={"text": "body"})
    df["id"] = range(len(df))
    df.to_parquet(tmp_path / "val.parquet")
    res = runner.invoke(app, ["run", "--model", str(hf), "--data", str(tmp_path / "val.parquet"), "--target-col",
                              "label", "--out", str(tmp_path / "out"), "--format", "json", "--quiet", "--n-boot",
                              "10", "--crosscheck-rows", "0"])
    assert res.exit_code in (0, 1), res.output
    run = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert run["text"]["text_col"] == "body" and run["text"]["n_rows"] == 40
