"""Category columns looked up in nn.Embedding layers: IG in embedding space (audit.attribution.embedded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from audit.attribution.embedded import find_category_inputs
from audit.attribution.native import integrated_gradients
from audit.errors import ModelLoadError

# the TorchScript cases: torch.jit.script/save announce their deprecation
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class _Linear(torch.nn.Module):
    """F(x) = w_e . emb(x0) + w . x[1:], one embedding for column 0."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(5, 3)
        self.lin = torch.nn.Linear(3 + 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.cat([self.emb(x[:, 0].long()), x[:, 1:]], dim=1))


class _Mlp(torch.nn.Module):
    """Two category columns (0 and 3) in one shared embedding, looked up as (n, 2) ids, plus an MLP."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.emb = torch.nn.Embedding(7, 4)
        self.net = torch.nn.Sequential(torch.nn.Linear(8 + 2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.emb(x[:, [0, 3]].long()).flatten(1)  # (n, 8)
        return self.net(torch.cat([e, x[:, 1:3]], dim=1))


def _rows(n: int = 64, cats: tuple[int, ...] = (0,), width: int = 3, high: int = 5) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, width)).astype(np.float32)
    for j in cats:
        x[:, j] = rng.integers(0, high, n)
    return x


def test_linear_model_gets_the_closed_form_per_category_column():
    model = _Linear().eval()
    x = _rows()
    cats = find_category_inputs(model, x, ["c", "a", "b"])
    assert cats is not None and cats.columns == (0,)
    X = torch.from_numpy(x)
    base = torch.zeros(3)
    z, zb = cats.expand(model, X, base, cats.baseline_vectors(model, "zero", x, base.numpy()))
    res = integrated_gradients(cats.wrap(model), z, baselines=zb, n_steps=8)
    A = cats.collapse(res.attributions)  # (n, 3)
    w = model.lin.weight.detach()[0]  # (5,)
    emb = model.emb.weight.detach()[X[:, 0].long()]  # (n, 3)
    torch.testing.assert_close(A[:, 0], emb @ w[:3], atol=1e-5, rtol=1e-5)  # w_e . (e(c) - 0)
    torch.testing.assert_close(A[:, 1:], X[:, 1:] * w[3:], atol=1e-5, rtol=1e-5)
    # completeness against F(x) - F(x') with x' = (zero embedding, zero numbers)
    fb = model.lin.bias.detach()
    torch.testing.assert_close(A.sum(1), model(X)[:, 0].detach() - fb, atol=1e-5, rtol=1e-5)


def test_shared_embedding_for_two_columns_is_complete_and_matches_captum():
    model = _Mlp().eval()
    x = _rows(cats=(0, 3), width=4, high=7)
    cats = find_category_inputs(model, x, ["c1", "a", "b", "c2"])
    assert cats is not None and cats.columns == (0, 3)
    X = torch.from_numpy(x)
    base = torch.zeros(4)
    z, zb = cats.expand(model, X, base, cats.baseline_vectors(model, "mean", x, base.numpy()))
    target = model(X).argmax(1)
    wrapped = cats.wrap(model)
    res = integrated_gradients(wrapped, z, baselines=zb, target=target, n_steps=64)
    assert float(res.rel_delta.max()) < 1e-3
    ours = cats.collapse(res.attributions)
    theirs = IntegratedGradients(wrapped).attribute(z, baselines=zb, target=target, n_steps=64,
                                                    method="gausslegendre")
    torch.testing.assert_close(ours, cats.collapse(theirs.detach()), atol=1e-4, rtol=1e-3)
    assert (ours[:, 0].abs() > 0).all() and (ours[:, 3].abs() > 0).all()  # the categories carry attribution
    # the ids were never moved off the rows' own values: the wrapped model at z gives the model at x
    torch.testing.assert_close(wrapped(z), model(X))
    assert not model.emb._forward_hooks  # the caller's model is left unhooked


def test_without_embeddings_nothing_changes_and_torchscript_embeddings_are_refused():
    plain = torch.nn.Linear(3, 1).eval()
    assert find_category_inputs(plain, _rows(), ["a", "b", "c"]) is None
    scripted = torch.jit.script(_Linear().eval())
    with pytest.raises(ModelLoadError, match="--arch"):
        find_category_inputs(scripted, _rows(), ["c", "a", "b"])


def test_ids_that_match_no_column_are_refused_with_the_reason():
    class Offset(_Linear):
        def forward(self, x):
            return self.lin(torch.cat([self.emb((x[:, 0] + 1).clamp(max=4).long()), x[:, 1:]], dim=1))

    with pytest.raises(ModelLoadError, match="match no input column"):
        find_category_inputs(Offset().eval(), _rows(), ["c", "a", "b"])


def test_column_embeddings_looked_up_by_position_are_the_models_own():
    """FT-Transformer style: a learned embedding per column index (torch.arange(F)), not fed by the data."""

    class ColumnEmbedding(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.col = torch.nn.Embedding(3, 1)
            self.lin = torch.nn.Linear(3, 1)

        def forward(self, x):
            ids = torch.arange(x.shape[1]).expand(x.shape[0], -1)  # (n, 3): the same in every row
            return self.lin(x * self.col(ids)[..., 0])

    assert find_category_inputs(ColumnEmbedding().eval(), _rows(), ["a", "b", "c"]) is None
