"""The embedded default: the IG paper's style of synthetic check, made and trained in seconds on a CPU.

32 POS features with coefficients (i+1)/32, 32 NEG with -(i+1)/32 and 32 NOISE features with 0, each uniform
on [-1, 1]; target = sum of coefficient x feature. A small MLP trained on it should get attributions close to
coefficient * (x - x') per feature and near zero on NOISE.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

__all__ = ["coefficients", "make_synthetic", "DemoMLP", "train_mlp", "N_PER_GROUP"]

N_PER_GROUP = 32


def coefficients(n_per_group: int = N_PER_GROUP) -> dict[str, float]:
    """Feature name -> true coefficient, in column order (pos_*, neg_*, noise_*)."""
    out: dict[str, float] = {}
    for i in range(n_per_group):
        out[f"pos_{i:02d}"] = (i + 1) / n_per_group
    for i in range(n_per_group):
        out[f"neg_{i:02d}"] = -(i + 1) / n_per_group
    for i in range(n_per_group):
        out[f"noise_{i:02d}"] = 0.0
    return out


def make_synthetic(n_rows: int, *, seed: int = 0, n_per_group: int = N_PER_GROUP) -> pd.DataFrame:
    """Rows of uniform [-1, 1] features and ``target = sum(coef * x)``.

    Returns
    -------
    DataFrame of shape (n_rows, 3 * n_per_group + 1): the features in coefficient order, then ``target``.
    """
    coef = coefficients(n_per_group)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n_rows, len(coef))).astype(np.float32)  # (n_rows, F)
    w = np.array(list(coef.values()), dtype=np.float64)
    df = pd.DataFrame(X, columns=list(coef))
    df["target"] = X.astype(np.float64) @ w
    return df


class DemoMLP(torch.nn.Module):
    """96 -> 64 -> 32 -> 1 ReLU network; the output is the regression estimate, shape (rows,)."""

    def __init__(self, n_features: int = 3 * N_PER_GROUP, hidden: int = 64) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(n_features, hidden),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden, hidden // 2),
            torch.nn.ReLU(),
            torch.nn.Linear(hidden // 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)


def train_mlp(
    df: pd.DataFrame, *, epochs: int = 60, seed: int = 0, batch_size: int = 256, lr: float = 3e-3
) -> tuple[DemoMLP, dict[str, float]]:
    """Fit :class:`DemoMLP` to ``df`` (features then ``target``) with Adam and an L1 penalty on the first
    layer, which pushes the NOISE inputs' weights to zero as a careful practitioner's model would.

    Returns the model in eval mode and ``{"train_mse": ..., "target_var": ...}``.
    """
    torch.manual_seed(seed)
    X = torch.tensor(df.drop(columns=["target"]).to_numpy(np.float32))  # (n, F)
    y = torch.tensor(df["target"].to_numpy(np.float32))  # (n,)
    model = DemoMLP(X.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    first = model.net[0]
    for _ in range(epochs):
        perm = torch.randperm(X.shape[0], generator=gen)
        for i in range(0, X.shape[0], batch_size):
            idx = perm[i : i + batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(X[idx]), y[idx])
            loss = loss + 1e-4 * first.weight.abs().sum()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        mse = torch.nn.functional.mse_loss(model(X), y).item()
    return model, {"train_mse": mse, "target_var": float(y.var())}
