"""Small models with known attribution answers, shared by the test modules. Keep this file small and stable.

Every builder returns a model in eval mode (except :func:`batchnorm_train`) with deterministic weights.

- :func:`linear` -- ``F(x) = w . x + b``; IG is exactly ``w * (x - x')``.
- :class:`IGPaperNet` -- ``ReLU(ReLU(x1) - 1 - ReLU(x2))`` from Sundararajan et al. (2017); at x = (3, 1),
  baseline 0, IG = (1.5, -0.5).
- :func:`mlp` -- a ReLU MLP of any widths; ``ignore`` zeroes the first-layer weights of some features so the
  model provably ignores them.
- :func:`equivalent_pair` -- two different networks computing the same function (implementation invariance).
- :func:`batchnorm_train` -- a model whose BatchNorm is left in train mode: a row's output depends on its batch.
- :func:`tiny_cnn` -- a small image classifier for (n, C, H, W) inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["linear", "IGPaperNet", "mlp", "equivalent_pair", "batchnorm_train", "tiny_cnn"]


def linear(weights: Sequence[float], bias: float = 0.0, *, n_outputs: int = 1) -> nn.Module:
    """``nn.Linear(d, n_outputs)`` with the given weights for output 0 (later outputs: weights * (k + 1)).

    Returns a model mapping (m, d) to (m, n_outputs).
    """
    w = torch.as_tensor(weights, dtype=torch.float32)
    layer = nn.Linear(w.numel(), n_outputs)
    with torch.no_grad():
        layer.weight.copy_(torch.stack([w * (k + 1) for k in range(n_outputs)]))  # (n_outputs, d)
        layer.bias.fill_(bias)
    return layer.eval()


class IGPaperNet(nn.Module):
    """``F(x1, x2) = ReLU(ReLU(x1) - 1 - ReLU(x2))``: (m, 2) -> (m,)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.relu(x[:, 0]) - 1.0 - torch.relu(x[:, 1]))


def mlp(sizes: Sequence[int] = (96, 256, 128, 1), *, seed: int = 0, ignore: Sequence[int] = ()) -> nn.Sequential:
    """ReLU MLP ``sizes[0] -> ... -> sizes[-1]`` with seeded weights; features in ``ignore`` have zero weights."""
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen) / a**0.5)
            lin.bias.copy_(0.1 * torch.randn(b, generator=gen))
            if i == 0:
                lin.weight[:, list(ignore)] = 0.0
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers).eval()


class _DuplicatedUnits(nn.Module):
    """Same function as ``Linear(h) -> ReLU -> Linear(1)`` with every hidden unit split into two halves,
    stored in a permuted order and evaluated by hand (not an nn.Sequential)."""

    def __init__(self, first: nn.Linear, second: nn.Linear, perm: torch.Tensor) -> None:
        super().__init__()
        w1 = torch.cat([first.weight, first.weight])[perm]  # (2h, d)
        b1 = torch.cat([first.bias, first.bias])[perm]  # (2h,)
        w2 = (torch.cat([second.weight, second.weight], dim=1) / 2)[:, perm]  # (1, 2h)
        self.register_buffer("w1", w1.detach().clone())
        self.register_buffer("b1", b1.detach().clone())
        self.register_buffer("w2", w2.detach().clone())
        self.register_buffer("b2", second.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.clamp(x @ self.w1.T + self.b1, min=0.0)  # (m, 2h)
        return (hidden @ self.w2.T + self.b2)[:, 0]  # (m,)


def equivalent_pair(d: int = 4, hidden: int = 8, *, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """Two structurally different networks (an MLP and a split-unit, permuted, hand-written version) that
    compute the same function (m, d) -> (m,) up to float rounding."""
    net = mlp((d, hidden, 1), seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    perm = torch.randperm(2 * hidden, generator=gen)

    class _Squeezed(nn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x)[:, 0]

    return _Squeezed(net).eval(), _DuplicatedUnits(net[0], net[2], perm).eval()


def batchnorm_train(d: int = 4, hidden: int = 8, *, seed: int = 0) -> nn.Module:
    """``Linear -> BatchNorm1d (train mode) -> ReLU -> Linear``: a row's output depends on the other rows."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, 1))
    return model.train()


def tiny_cnn(channels: int = 3, size: int = 8, classes: int = 3, *, seed: int = 0) -> nn.Sequential:
    """Conv -> ReLU -> pool -> Linear: (m, channels, size, size) -> (m, classes)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 4, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * (size // 2) ** 2, classes),
    ).eval()
