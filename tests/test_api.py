"""audit.run / audit.load: objects in, objects out; errors name parameters; in-memory inputs are hashed; the
README's notebook example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import audit
from audit.errors import UsageError

README = Path(__file__).resolve().parents[1] / "README.md"


def _model_and_frame(seed: int = 0) -> tuple[torch.nn.Module, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 3)).astype(np.float32)
    model = torch.nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -0.5, 0.0]]))
        model.bias.zero_()
    df = pd.DataFrame(X, columns=["a", "b", "unused"])
    df["y"] = X[:, 0] - 0.5 * X[:, 1]
    return model, df


def test_run_an_in_memory_model_on_a_dataframe(tmp_path: Path):
    model, df = _model_and_frame()
    model.train()
    run = audit.run(model, df, target="y", crosscheck_rows=16, n_boot=50)
    assert model.training  # the caller's module is left as it was; a copy was audited in eval mode
    assert run.verdict.value == "pass" and run.task == "regression"
    frame = run.features_frame()
    assert list(frame["name"]) == ["a", "b", "unused"] and frame["share"].iloc[-1] < 1e-6
    assert run.provenance.model_form == "module" and run.provenance.data_path.startswith("<in-memory DataFrame")
    again = audit.run(model, df, target="y", crosscheck_rows=0, n_boot=0)
    assert again.provenance.data_sha256 == run.provenance.data_sha256
    assert again.provenance.model_sha256 == run.provenance.model_sha256
    other = audit.run(model, df.assign(a=df.a + 1), target="y", crosscheck_rows=0, n_boot=0)
    assert other.provenance.data_sha256 != run.provenance.data_sha256
    written = run.save(tmp_path / "x", formats=("json", "html"))
    assert set(written) == {"audit.json", "report.html"}
    back = audit.load(tmp_path / "x" / "audit.json")
    assert back.features == run.features and back.verdict == run.verdict
    card = run._repr_html_()
    assert "PASS" in card and "<script" not in card and "unused" in card


def test_run_on_an_array_with_names_and_y():
    model, df = _model_and_frame()
    X = df[["a", "b", "unused"]].to_numpy()
    run = audit.run(model, X, y=df["y"].to_numpy(), feature_names=["a", "b", "unused"], crosscheck_rows=0, n_boot=0)
    assert run.features[0].name == "a" and run.target_col == "target"
    assert run.provenance.data_path.startswith("<in-memory ndarray of 300 rows x 4 columns>")


def test_errors_name_parameters_not_flags():
    model, df = _model_and_frame()
    with pytest.raises(UsageError, match=r"n_steps must be at least 2") as e:
        audit.run(model, df, target="y", n_steps=1)
    assert "--n-steps" not in str(e.value)
    with pytest.raises(UsageError, match="unknown option 'steps' for audit.run"):
        audit.run(model, df, target="y", steps=3)
    with pytest.raises(UsageError, match="target"):
        audit.run(model, df, target="nope")
    with pytest.raises(UsageError, match="2-D array"):
        audit.run(model, np.zeros((2, 3, 4)))


def test_the_readme_notebook_example_runs(tmp_path: Path, monkeypatch):
    text = README.read_text(encoding="utf-8")
    section = text.split("## In a notebook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - the README's own example
    run = namespace["run"]
    assert run.verdict.value in ("pass", "warn", "fail")
    assert (tmp_path / "reports" / "notebook" / "audit.json").is_file()
