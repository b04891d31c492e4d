"""Tabular models with category columns in nn.Embedding layers, end to end (issue 10: layer mode for tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import audit
from audit.errors import ModelLoadError

# the TorchScript cases: torch.jit.script/save announce their deprecation
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class _CategoryNet(torch.nn.Module):
    """Column 'shop' (ids 0..5) through an embedding, 'a' and 'b' as numbers."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(6, 3)
        self.net = torch.nn.Sequential(torch.nn.Linear(3 + 2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([self.emb(x[:, 0].long()), x[:, 1:]], dim=1))


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(0)
    n = 1200
    shop = rng.integers(0, 6, n)
    a, b = rng.normal(size=n), rng.normal(size=n)
    effect = np.array([-1.5, -0.5, 0.0, 0.5, 1.0, 2.0])[shop]
    y = effect + 0.8 * a + 0.05 * rng.normal(size=n)  # 'b' is unused
    df = pd.DataFrame({"shop": shop, "a": a, "b": b, "y": y})
    torch.manual_seed(0)
    model = _CategoryNet()
    X = torch.tensor(df[["shop", "a", "b"]].to_numpy(), dtype=torch.float32)
    t = torch.tensor(y, dtype=torch.float32)[:, None]
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(X), t).backward()
        opt.step()
    return model.eval(), df


def test_category_column_gets_its_embedding_attribution_and_the_audit_is_clean(case):
    model, df = case
    run = audit.run(model, df.iloc[:600], target="y", formats=("json",), n_boot=50)
    share = {s.name: s.share for s in run.features}
    assert share["shop"] > 0.3 and share["a"] > 0.2 and share["b"] < 0.05  # the truth: shop and a, not b
    assert run.convergence.n_not_converged == 0  # completeness holds with the ids held fixed
    assert run.crosscheck.passed
    assert run.verdict.value == "pass", [f.message for f in run.findings]
    assert any("embedding space" in n for n in run.notes)


def test_a_torchscript_model_with_embeddings_is_refused_with_what_to_do(case, tmp_path):
    model, df = case
    path = tmp_path / "m.pt"
    torch.jit.save(torch.jit.script(model), str(path))
    with pytest.raises(ModelLoadError, match="state_dict with arch"):  # the API names parameters, not flags
        audit.run(path, df.iloc[:200], target="y", formats=("json",))


def test_the_default_baseline_takes_the_mean_embedding_vectors_and_the_sensitivity_check_runs(case):
    model, df = case
    run = audit.run(model, df.iloc[:300], target="y", formats=("json",), n_boot=50, crosscheck_rows=0)
    assert run.baseline == "data mean" and run.baseline_default
    assert any("baseline vectors: mean" in n for n in run.notes)  # not the zero vector of the old default
    s = run.baseline_sensitivity  # expected gradients with each reference row's own embedding vectors
    assert s.second.startswith("expected gradients") and s.top_chosen[:2] == s.top_second[:2]
    assert set(s.top_chosen[:2]) == {"shop", "a"} and s.ci_high > 0.8
    assert all(f.code != "baseline_sensitive" for f in run.findings)
