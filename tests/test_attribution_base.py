"""The helpers the whole project shares: out-of-memory detection, the batched forward, a model's dtype and device."""

from __future__ import annotations

import pytest
import torch

from audit.attribution.base import batched_forward, is_oom, model_dtype_device
from audit.errors import AttributionError


class _Capped(torch.nn.Module):
    """A linear map that runs out of memory (as CUDA says it) on batches above ``most`` rows; counts its calls."""

    def __init__(self, most: int, d: int = 3) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(d, 2)
        self.most = most
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(x.shape[0])
        if x.shape[0] > self.most:
            raise RuntimeError(f"CUDA out of memory. Tried to allocate {x.shape[0]} rows (planted)")
        return self.lin(x)  # (m, 2)


def test_is_oom_knows_the_allocators_messages() -> None:
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("[enforce fail at alloc_cpu.cpp:118] DefaultCPUAllocator: can't allocate memory"))
    assert not is_oom(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_oom(ValueError("out of memory"))  # only the allocators' RuntimeErrors


def test_batched_forward_matches_one_forward_and_keeps_row_order() -> None:
    torch.manual_seed(0)
    model = _Capped(most=1000).double()
    x = torch.randn(10, 3, dtype=torch.float64)
    out = batched_forward(model, x, batch=4, device="cpu")
    assert model.batches == [4, 4, 2]
    assert out.shape == (10, 2) and out.dtype == torch.float64 and not out.requires_grad
    torch.testing.assert_close(out, model.lin(x).detach())


def test_batched_forward_halves_the_batch_on_oom_and_goes_on() -> None:
    torch.manual_seed(0)
    model = _Capped(most=3)
    x = torch.randn(11, 3)
    seen: list[tuple[int, int]] = []
    out = batched_forward(model, x, batch=16, device="cpu", on_oom=lambda old, new: seen.append((old, new)))
    assert seen == [(11, 5), (5, 2)]
    assert model.batches == [11, 5, 2, 2, 2, 2, 2, 1]  # rows done at one size are not run again
    torch.testing.assert_close(out, model.lin(x).detach())


def test_batched_forward_raises_what_it_cannot_handle() -> None:
    with pytest.raises(RuntimeError, match="out of memory"):
        batched_forward(_Capped(most=0), torch.zeros(4, 3), batch=4, device="cpu")  # even one row fails
    bad = _Capped(most=100, d=5)
    with pytest.raises(RuntimeError, match="shapes"):
        batched_forward(bad, torch.zeros(4, 3), batch=4, device="cpu")
    assert bad.batches == [4]  # not an out-of-memory error: no retry
    with pytest.raises(AttributionError, match="batch"):
        batched_forward(bad, torch.zeros(4, 5), batch=0, device="cpu")


def test_batched_forward_casts_floats_only_and_takes_empty_input() -> None:
    emb = torch.nn.Embedding(7, 2).double()
    ids = torch.tensor([[1, 2], [3, 4], [5, 6]])  # token ids stay integers
    out = batched_forward(emb, ids, batch=2, device="cpu")
    assert out.shape == (3, 2, 2) and out.dtype == torch.float64
    lin = torch.nn.Linear(3, 2).double()
    assert batched_forward(lin, torch.zeros(5, 3), batch=2, device="cpu").dtype == torch.float64  # model's dtype
    assert batched_forward(lin, torch.zeros(0, 3), batch=2, device="cpu").shape == (0, 2)


def test_model_dtype_device() -> None:
    assert model_dtype_device(torch.nn.Linear(2, 1).double()) == (torch.float64, torch.device("cpu"))
    bn = torch.nn.BatchNorm1d(3, affine=False).double()  # no parameters, floating buffers
    assert model_dtype_device(bn) == (torch.float64, torch.device("cpu"))
    assert model_dtype_device(torch.nn.ReLU()) == (torch.float32, torch.device("cpu"))
