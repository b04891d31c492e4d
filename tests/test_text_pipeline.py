"""`audit run` on a Hugging Face text classifier: the planted shortcut token is flagged, the healthy twin stays
quiet, the outputs (audit.json's text section, tokens.parquet, the shaded report) land next to each other."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from audit.cli.main import app
from audit.synthetic_text import PLANTED_TOKEN
from tests.text_toys import trained, write_case

runner = CliRunner()


@pytest.fixture(scope="module")
def planted():
    return trained(True)


@pytest.fixture(scope="module")
def healthy():
    return trained(False)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _run(args):
    return runner.invoke(app, ["run", *args, "--n-boot", "50", "--crosscheck-rows", "16", "--quiet"])


def test_planted_token_is_flagged_end_to_end(planted, tmp_path):
    hf, val = write_case(tmp_path, planted)
    out = tmp_path / "out"
    res = _run(["--model", str(hf), "--data", str(val), "--target-col", "label", "--out", str(out),
                "--format", "json,html,pdf"])
    run = json.loads((out / "audit.json").read_text())
    assert res.exit_code == (1 if run["verdict"] == "fail" else 0), res.output
    assert run["task"] == "text_classification"
    spurious = [f for f in run["findings"] if f["code"] == "spurious_token"]
    assert [f["features"] for f in spurious] == [[PLANTED_TOKEN]]
    assert spurious[0]["severity"] in ("warn", "fail")
    assert spurious[0]["evidence"]["benefit_ci_high"] < 0.2
    text = run["text"]
    assert text["text_col"] == "text" and text["n_rows"] == 300 and text["baseline"] == "pad"
    assert text["tokens"][0]["token"] == PLANTED_TOKEN
    assert {"occurrences", "rows", "mean_abs", "share", "ci_low", "ci_high"} <= set(text["tokens"][0])
    assert set(text["class_tokens"]) <= {"negative", "positive"}
    assert run["crosscheck"]["passed"] is True
    tokens = pq.read_table(out / "tokens.parquet").to_pandas()
    assert len(tokens) == 300 and run["artifacts"]["tokens"] == "tokens.parquet"
    assert len(tokens.tokens[0]) == len(tokens.attributions[0]) and tokens.tokens[0][0] == "[CLS]"
    html = (out / "report.html").read_text()
    assert 'id="text"' in html and 'class="tok" style="background-color:rgba(' in html
    assert "Misclassified rows" in html and (out / "report.pdf").stat().st_size > 10_000


def test_healthy_model_stays_quiet(healthy, tmp_path):
    hf, val = write_case(tmp_path, healthy)
    out = tmp_path / "out"
    res = _run(["--model", str(hf), "--data", str(val), "--target-col", "label", "--out", str(out),
                "--format", "json"])
    run = json.loads((out / "audit.json").read_text())
    bad = [f for f in run["findings"] if f["severity"] != "info"]
    assert bad == [] and res.exit_code == 0, res.output
    assert not any(f["code"] == "spurious_token" for f in run["findings"])
    assert run["crosscheck"]["passed"] is True and run["crosscheck"]["rows"] == 16
    assert run["convergence"]["n_not_converged"] == 0
    top = [t["token"] for t in run["text"]["tokens"][:12]]
    assert {"great", "awful"} & set(top) or {"love", "boring"} & set(top)  # real sentiment words lead


def test_planted_without_labels_warns_on_reliance(planted, tmp_path):
    hf, val = write_case(tmp_path, planted, labels=False)
    out = tmp_path / "out"
    res = _run(["--model", str(hf), "--data", str(val), "--out", str(out), "--format", "json", "--baseline",
                "zero"])
    run = json.loads((out / "audit.json").read_text())
    spurious = [f for f in run["findings"] if f["code"] == "spurious_token"]
    assert res.exit_code == 0, res.output  # warn does not gate by default
    assert [f["severity"] for f in spurious] == ["warn"] and "no labels" in spurious[0]["message"]
    assert run["text"]["baseline"] == "zero" and run["baseline"] == "zero embedding"


def test_max_length_truncation_is_counted(healthy, tmp_path):
    hf, val = write_case(tmp_path, healthy, n_val=60)
    out = tmp_path / "out"
    res = _run(["--model", str(hf), "--data", str(val), "--out", str(out), "--format", "json", "--max-length", "10"])
    assert res.exit_code in (0, 1), res.output
    run = json.loads((out / "audit.json").read_text())
    import pandas as pd

    lengths = [len(t.split()) + 2 for t in pd.read_csv(val)["text"]]  # word level, with [CLS] and [SEP]
    want = sum(n > 10 for n in lengths)
    assert want > 0 and run["text"]["n_truncated"] == want and run["text"]["max_length"] == 10
    assert any(f"{want:,} of 60 rows were longer than 10 tokens" in n for n in run["notes"])
    tokens = pq.read_table(out / "tokens.parquet").to_pandas()
    assert tokens.tokens.map(len).max() == 10 and int(tokens.truncated.sum()) == want


def test_in_memory_hf_model_and_tokenizer_through_the_api(planted):
    """audit.run(hf_model, df, tokenizer=...) from a notebook: the same audit as from the saved folder, and the
    caller's model is left as it was (train mode, no hooks)."""
    import audit
    from audit.errors import UsageError
    from audit.synthetic_text import hf_tokenizer, make_reviews

    model = planted.model.train()
    val = make_reviews(200, seed=7, planted_random=0.5)
    run = audit.run(model, val, target="label", text_col="text", tokenizer=hf_tokenizer(planted.tokenizer),
                    crosscheck_rows=8)
    assert run.task == "text_classification" and run.provenance.model_path.startswith("<in-memory Bert")
    assert "spurious_token" in {f.code for f in run.findings}  # the planted case, as from the folder
    assert run.crosscheck.passed
    assert model.training and not model.get_input_embeddings()._forward_hooks
    raw = audit.run(model, val, target="label", text_col="text", tokenizer=planted.tokenizer, crosscheck_rows=0)
    assert [t.token for t in raw.text.tokens[:3]] == [t.token for t in run.text.tokens[:3]]  # tokenizers.Tokenizer
    with pytest.raises(UsageError, match="tokenizer="):
        audit.run(model, val, target="label", text_col="text")
