"""Models and tables for the baseline tests: a healthy raw-scale classifier (columns around 1000, standardised
inside the model), a linear model on shifted columns, and a model whose ranking really depends on the baseline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn


class Standardise(nn.Module):
    """(x - mean) / sd with the statistics as buffers: normalisation inside the model."""

    def __init__(self, mean: np.ndarray, sd: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("m", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("s", torch.as_tensor(sd, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.m) / self.s


def raw_scale_case(n: int = 200, offset: float = 1000.0, sd: float = 5.0, seed: int = 0):
    """A healthy binary classifier on 6 columns around ``offset``: trained on the standardised columns, the
    standardisation in buffers, a ReLU MLP and a sigmoid output (probability of class 1). The label follows
    ``2 z0 - 1.5 z1 + z2 + 0.5 z3`` (z4, z5 are noise). Returns (model, frame with ``target``)."""
    rng = np.random.default_rng(seed)
    F = 6
    Z = rng.normal(size=(n, F))
    w = np.array([2.0, -1.5, 1.0, 0.5, 0.0, 0.0])
    y = (rng.random(n) < 1 / (1 + np.exp(-(Z @ w)))).astype(int)
    torch.manual_seed(seed)
    core = nn.Sequential(nn.Linear(F, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(core.parameters(), lr=1e-2)
    Zt, yt = torch.tensor(Z, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    for _ in range(300):
        opt.zero_grad()
        nn.functional.binary_cross_entropy_with_logits(core(Zt).squeeze(-1), yt).backward()
        opt.step()
    model = nn.Sequential(Standardise(np.full(F, offset), np.full(F, sd)), core, nn.Sigmoid()).eval()
    df = pd.DataFrame(offset + sd * Z, columns=[f"c{j}" for j in range(F)])
    df["target"] = y
    return model, df


def shifted_linear_case(n: int = 300, seed: int = 0):
    """F(x) = w . x + 3 on columns with large offsets and different spreads. Returns (model, frame, w)."""
    rng = np.random.default_rng(seed)
    offsets = np.array([1000.0, -40.0, 5.0, 250.0, 0.0])
    spreads = np.array([0.5, 0.5, 4.0, 10.0, 1.0])  # mean |w_j (x_j - E x_j)| ranks x2, x1, x3, x0, x4
    X = offsets + spreads * rng.normal(size=(n, 5))
    w = np.array([0.8, -2.0, 0.5, 0.05, 0.3])
    model = nn.Linear(5, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w[None, :], dtype=torch.float32))
        model.bias.fill_(3.0)
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
    df["target"] = X @ w + 3.0 + rng.normal(0, 0.1, n)
    return model.eval(), df, w


class Bump(nn.Module):
    """``4 exp(-x0^2 / 0.5) + x1 + 0.5 x2``: a bump at x0 = 0, where the data (x0 near -3 or +3) never are."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4.0 * torch.exp(-x[:, 0] ** 2 / 0.5) + x[:, 1] + 0.5 * x[:, 2]


def bump_case(n: int = 300, seed: int = 0):
    """The ranking depends on the baseline: x0 has two clusters (-3 and +3) whose mean, 0, sits on the model's bump,
    so against the data mean x0 takes the bump's whole height on every row (the top feature), while against data
    rows (expected gradients) it takes ~0 (both clusters lie off the bump). Returns (model, frame)."""
    rng = np.random.default_rng(seed)
    x0 = np.where(rng.random(n) < 0.5, -3.0, 3.0) + 0.3 * rng.normal(size=n)
    X = np.column_stack([x0, rng.normal(size=n), rng.normal(size=n)])
    df = pd.DataFrame(X, columns=["x0", "x1", "x2"])
    df["target"] = X[:, 1] + 0.5 * X[:, 2]
    return Bump().eval(), df
