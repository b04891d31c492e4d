"""Layer mode (Integrated Gradients in the output space of a text model's embedding): known answers,
completeness with padding on a tiny BERT, native = Captum's LayerIntegratedGradients, arguments passed through,
the zero-embedding baseline, float64, padding cut per batch, the caller's model left alone, errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from audit.attribution.layer import layer_integrated_gradients
from audit.attribution.layer_crosscheck import captum_layer_attribute, layer_crosscheck
from audit.errors import AttributionError

F64 = torch.float64


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread, and far faster than on two when the machine is busy."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class BagOfEmbeddings(nn.Module):
    """``F(ids, mask) = w . mean_t e(ids_t) + b`` over the unmasked tokens (all of them without a mask):
    layer IG of token t is exactly ``m_t w . (e(x_t) - e(x'_t)) / sum_t m_t``."""

    def __init__(self, vocab: int = 50, dim: int = 6, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.emb = nn.Embedding(vocab, dim)
        self.out = nn.Linear(dim, 1)
        with torch.no_grad():
            self.emb.weight.copy_(torch.randn(vocab, dim, generator=gen))
            self.out.weight.copy_(torch.randn(1, dim, generator=gen))
            self.out.bias.fill_(0.3)
        self.eval()

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        e = self.emb(ids)  # (m, L, D)
        m = torch.ones(ids.shape, dtype=e.dtype) if mask is None else mask.to(e.dtype)
        pooled = (e * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)  # (m, D)
        return self.out(pooled)[:, 0]  # (m,)


def _expected(model: BagOfEmbeddings, ids: torch.Tensor, bids: torch.Tensor | None, mask: torch.Tensor | None):
    e = model.emb(ids).detach().double()
    eb = torch.zeros_like(e) if bids is None else model.emb(bids).detach().double()
    m = torch.ones(ids.shape, dtype=F64) if mask is None else mask.double()
    w = model.out.weight.detach().double()[0]
    return ((e - eb) @ w) * m / m.sum(1, keepdim=True)  # (n, L)


def _ids(n: int, L: int, vocab: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, vocab, (n, L), generator=torch.Generator().manual_seed(seed))


# --- known answers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_bag_of_embeddings_known_answer(method: str) -> None:
    model = BagOfEmbeddings()
    ids, bids = _ids(5, 7, 50), torch.zeros(5, 7, dtype=torch.long)
    res = layer_integrated_gradients(model, ids, layer=model.emb, baseline_ids=bids, n_steps=4, method=method)
    assert res.attributions.shape == (5, 7)
    torch.testing.assert_close(res.attributions.double(), _expected(model, ids, bids, None), rtol=1e-5, atol=1e-6)
    assert res.rel_delta.max() < 1e-5


def test_zero_embedding_baseline_known_answer_and_masked_mean() -> None:
    model = BagOfEmbeddings(seed=1)
    ids = _ids(4, 6, 50, seed=1)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 2 + [0] * 4, [1] * 5 + [0]])
    res = layer_integrated_gradients(model, ids, layer=model.emb, additional_forward_args=(mask,), n_steps=3)
    torch.testing.assert_close(res.attributions.double(), _expected(model, ids, None, mask), rtol=1e-5, atol=1e-6)
    assert (res.attributions[mask == 0] == 0).all()  # masked tokens: no gradient, and cut from the passes
    # F(x') is the model on the rows' ids and mask with the zero embedding: the bias alone
    torch.testing.assert_close(res.f_baseline, torch.full((4,), 0.3), rtol=0, atol=1e-6)


def test_float64() -> None:
    model = BagOfEmbeddings(seed=2)
    ids, bids = _ids(3, 5, 50, seed=2), torch.ones(5, dtype=torch.long)  # one baseline row for all
    res = layer_integrated_gradients(model, ids, layer=model.emb, baseline_ids=bids, n_steps=2, dtype=F64)
    assert res.attributions.dtype == F64 and res.f_x.dtype == F64
    exp = _expected(model, ids, bids.expand(3, 5), None)
    torch.testing.assert_close(res.attributions, exp, rtol=1e-12, atol=1e-12)
    assert res.rel_delta.max() < 1e-12
    assert model.emb.weight.dtype == torch.float32  # the caller's model was not converted


# --- arguments pass through ----------------------------------------------------------------------------------


class Recorder(BagOfEmbeddings):
    """Checks every forward: ids stay int64 and each row's mask and token types are that row's own (the row is
    known by its first token, unique per row); records what it saw."""

    def __init__(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> None:
        super().__init__(vocab=60)
        self.by_key = {int(r[0]): (m.clone(), t.clone()) for r, m, t in zip(ids, mask, types, strict=True)}
        self.seen: list[tuple[torch.dtype, torch.dtype, int]] = []
        self.flag_seen: list[object] = []

    def forward(self, ids, mask=None, types=None, flag=None):  # type: ignore[override]
        self.seen.append((ids.dtype, mask.dtype, ids.shape[1]))
        self.flag_seen.append(flag)
        L = ids.shape[1]
        for r in range(ids.shape[0]):
            m, t = self.by_key[int(ids[r, 0])]
            if not (torch.equal(mask[r], m[:L]) and torch.equal(types[r], t[:L])):
                raise AssertionError("a row got another row's arguments")
        return super().forward(ids, mask) + types.sum(1).to(torch.float32) * 0.0


def test_additional_args_pass_through_unchanged() -> None:
    n, L = 6, 8
    ids = _ids(n, L, 60, seed=3)
    ids[:, 0] = torch.arange(10, 10 + n)  # the row's key
    lengths = torch.tensor([8, 3, 5, 8, 2, 6])
    mask = (torch.arange(L)[None] < lengths[:, None]).to(torch.int32)
    types = (torch.arange(L)[None] >= 2).long().expand(n, L).clone()
    model = Recorder(ids, mask, types)
    res = layer_integrated_gradients(
        model, ids, layer=model.emb, additional_forward_args=(mask, types, "flag"), n_steps="auto", tolerance=1e-3
    )
    assert {s[:2] for s in model.seen} == {(torch.int64, torch.int32)}  # ids never cast, the mask's dtype kept
    assert set(model.flag_seen) == {"flag"}  # a non-tensor argument is passed as it is
    assert min(s[2] for s in model.seen) < L  # masked trailing padding was cut in some passes
    torch.testing.assert_close(res.attributions.double(), _expected(model, ids, None, mask), rtol=1e-4, atol=1e-6)


# --- a tiny BERT -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bert():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=64, num_labels=3, initializer_range=0.3,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg).eval()
    n, L = 6, 12
    ids = _ids(n, L, 100, seed=4)
    ids[:, 0] = 2  # [CLS]
    lengths = torch.tensor([12, 5, 9, 3, 12, 7])
    mask = (torch.arange(L)[None] < lengths[:, None]).long()
    ids = ids * mask  # pad id 0
    bids = torch.where(mask.bool(), torch.ones_like(ids), ids)  # every real token -> 1, [CLS] and pads kept
    bids[:, 0] = 2
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    return model, model.bert.embeddings.word_embeddings, ids, bids, mask, target


def test_bert_completeness_per_row_and_padding_gets_zero(bert) -> None:
    model, layer, ids, bids, mask, target = bert
    res = layer_integrated_gradients(
        model, ids, layer=layer, baseline_ids=bids, additional_forward_args=(mask,), target=target, n_steps=32
    )
    assert res.attributions.shape == ids.shape
    assert res.rel_delta.max() < 1e-3  # completeness per row
    span = res.f_x - res.f_baseline
    torch.testing.assert_close(res.attributions.sum(1), span, rtol=1e-3, atol=1e-5)
    assert (res.attributions[mask == 0] == 0).all()  # the baseline keeps the pads: e(x) = e(x') there
    assert res.attributions[:, 0].abs().max() == 0  # [CLS] kept too
    with torch.no_grad():  # F(x) is the model's own output on the ids and mask
        want = model(ids, mask).logits.gather(1, target[:, None])[:, 0]
    torch.testing.assert_close(res.f_x, want, rtol=1e-5, atol=1e-6)


def test_bert_zero_baseline_pads_get_no_attribution(bert) -> None:
    model, layer, ids, _, mask, target = bert
    res = layer_integrated_gradients(
        model, ids, layer=layer, additional_forward_args=(mask,), target=target, n_steps=16, trim_padding=False
    )
    assert res.attributions[mask == 0].abs().max() < 1e-6 * res.attributions.abs().max()  # masked: no gradient
    assert res.rel_delta.max() < 1e-2


@pytest.mark.parametrize("n_steps", [8, "auto"])
@pytest.mark.parametrize("zero", [False, True])
def test_bert_native_equals_captum(bert, n_steps, zero: bool) -> None:
    model, layer, ids, bids, mask, target = bert
    b = None if zero else bids
    res = layer_integrated_gradients(
        model, ids, layer=layer, baseline_ids=b, additional_forward_args=(mask,), target=target, n_steps=n_steps,
        tolerance=1e-3,
    )  # fmt: skip
    check = layer_crosscheck(
        model, ids, layer=layer, native=res, baseline_ids=b, additional_forward_args=(mask,), target=target, rows=3
    )
    assert check.passed, check.explanation
    assert check.rows == 3 and check.rank_spearman > 0.99
    assert check.n_steps == int(res.steps.max())


def test_bert_float64_matches_captum_tightly(bert) -> None:
    model, layer, ids, bids, mask, target = bert
    res = layer_integrated_gradients(
        model, ids, layer=layer, baseline_ids=bids, additional_forward_args=(mask,), target=target, n_steps=4,
        dtype=F64,
    )  # fmt: skip
    assert res.attributions.dtype == F64 and layer.weight.dtype == torch.float32
    check = layer_crosscheck(
        model, ids, layer=layer, native=res, baseline_ids=bids, additional_forward_args=(mask,), target=target,
        rows=3, tol_abs=1e-7, tol_rel=1e-6,  # Captum keeps its quadrature weights in float32
    )  # fmt: skip
    assert check.passed, check.explanation


def test_bert_cutting_padding_changes_nothing(bert) -> None:
    model, layer, ids, bids, mask, target = bert
    kw = dict(baseline_ids=bids, additional_forward_args=(mask,), target=target, n_steps=8)
    cut = layer_integrated_gradients(model, ids, layer=layer, **kw)
    full = layer_integrated_gradients(model, ids, layer=layer, trim_padding=False, **kw)
    scale = full.attributions.abs().max()
    torch.testing.assert_close(cut.attributions, full.attributions, rtol=0, atol=1e-5 * float(scale))
    torch.testing.assert_close(cut.f_x, full.f_x, rtol=1e-5, atol=1e-6)
    assert not cut.notes


def test_captum_trapezoid_bias_is_explained(bert) -> None:
    model, layer, ids, bids, mask, target = bert
    kw = dict(baseline_ids=bids, additional_forward_args=(mask,), target=target)
    res = layer_integrated_gradients(model, ids, layer=layer, method="riemann_trapezoid", n_steps=10, **kw)
    check = layer_crosscheck(model, ids, layer=layer, native=res, rows=2, **kw)
    assert check.passed is False and "0.9" in check.captum_bias
    attr, delta = captum_layer_attribute(
        model, ids[:2], layer=layer, baseline_ids=bids[:2], additional_forward_args=(mask[:2],), target=target[:2],
        method="riemann_trapezoid", n_steps=10, internal_batch_size=4,
    )  # fmt: skip
    torch.testing.assert_close(attr, res.attributions[:2] * 0.9, rtol=1e-4, atol=1e-6)


# --- padding that cannot be cut ----------------------------------------------------------------------------


class IgnoresMask(BagOfEmbeddings):
    """Takes a mask but averages over every position: cutting trailing padding would change its output."""

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return super().forward(ids, None)


def test_padding_is_kept_when_cutting_it_is_not_exact() -> None:
    model = IgnoresMask(seed=5)
    ids = _ids(3, 6, 50, seed=5)
    mask = torch.tensor([[1] * 6, [1] * 2 + [0] * 4, [1] * 3 + [0] * 3])
    res = layer_integrated_gradients(model, ids, layer=model.emb, additional_forward_args=(mask,), n_steps=2)
    assert any("not cut" in note for note in res.notes)
    torch.testing.assert_close(res.attributions.double(), _expected(model, ids, None, None), rtol=1e-5, atol=1e-6)


# --- the caller's model ----------------------------------------------------------------------------------------


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


class FailsLater(BagOfEmbeddings):
    """Raises on its ``fail_at``-th forward."""

    def __init__(self, fail_at: int) -> None:
        super().__init__(seed=6)
        self.calls, self.fail_at = 0, fail_at

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("boom")
        return super().forward(ids, mask)


@pytest.mark.parametrize("fail_at", [1, 2, 6, "last", None])  # capture, check, engine probe, last pass
def test_callers_model_has_no_hooks_left_and_is_unchanged(fail_at: int | str | None) -> None:
    ids = _ids(4, 5, 50, seed=6)
    mask = torch.tensor([[1] * 5, [1] * 3 + [0] * 2, [1] * 5, [1] * 4 + [0]])
    kw = dict(additional_forward_args=(mask,), n_steps=4, chunk_rows=1)
    if fail_at == "last":
        clean = FailsLater(10_000)
        layer_integrated_gradients(clean, ids, layer=clean.emb, **kw)
        fail_at = clean.calls  # the last pass of the last row
    model = FailsLater(fail_at or 10_000)
    before = copy.deepcopy(model.state_dict())
    try:
        layer_integrated_gradients(model, ids, layer=model.emb, **kw)
    except (RuntimeError, AttributionError) as err:
        assert fail_at is not None and "boom" in str(err)
    else:
        assert fail_at is None
    assert _hooks(model) == 0
    assert not model.training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and before[k].dtype == after[k].dtype for k in before)


def test_callers_bert_has_no_hooks_after_float64_and_crosscheck(bert) -> None:
    model, layer, ids, _, mask, target = bert
    res = layer_integrated_gradients(
        model, ids[:2], layer=layer, additional_forward_args=(mask[:2],), target=target[:2], n_steps=2, dtype=F64
    )
    layer_crosscheck(model, ids[:2], layer=layer, native=res, additional_forward_args=(mask[:2],), target=target[:2])
    assert _hooks(model) == 0 and layer.weight.dtype == torch.float32


# --- errors ------------------------------------------------------------------------------------------------------


def test_errors_are_one_clear_line() -> None:
    model, other = BagOfEmbeddings(), BagOfEmbeddings()
    ids = _ids(2, 4, 50)
    cases = [
        (dict(input_ids=ids.float(), layer=model.emb), "integer"),
        (dict(input_ids=ids[0], layer=model.emb), "shape"),
        (dict(input_ids=ids, layer=other.emb), "not a submodule"),
        (dict(input_ids=ids, layer=model.emb, baseline_ids=ids[:, :2]), "baseline_ids"),
        (dict(input_ids=ids, layer=model.emb, additional_forward_args=(torch.ones(3, 4),)), "per-row"),
        (dict(input_ids=ids, layer=model.emb, baselines="zero"), "baseline_ids"),
        (dict(input_ids=ids, layer=model.emb, n_steps=0), "n_steps"),
        (dict(input_ids=ids + 100, layer=model.emb), "vocabulary"),
    ]
    for kwargs, words in cases:
        with pytest.raises(AttributionError, match=words):
            layer_integrated_gradients(model, **kwargs)
    model.spare = nn.Embedding(5, 6)  # a submodule the forward never calls
    with pytest.raises(AttributionError, match="never called"):
        layer_integrated_gradients(model, ids, layer=model.spare)
    with pytest.raises(AttributionError, match="same rows"):
        layer_crosscheck(model, ids, layer=model.emb, native="nope")  # type: ignore[arg-type]


class WithDropout(BagOfEmbeddings):
    def __init__(self) -> None:
        super().__init__(seed=7)
        self.drop = nn.Dropout(0.5)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.drop(self.emb(ids)).mean(1))[:, 0]


def test_model_in_train_mode_is_refused_and_left_in_train_mode() -> None:
    model = WithDropout().train()
    with pytest.raises(AttributionError, match="eval"):
        layer_integrated_gradients(model, _ids(3, 4, 50), layer=model.emb, n_steps=4)
    assert model.training and _hooks(model) == 0
