"""Model-side evidence for the findings: what happens to the loss when a feature is neutralised, and what the
model says at the baseline. These need the model, so they live apart from the pure numpy analyses."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["predict", "task_loss", "neutralised_losses", "baseline_outputs"]


def predict(model: torch.nn.Module, X: np.ndarray, *, device: str = "cpu", batch: int = 8192) -> np.ndarray:
    """Model outputs for rows ``X`` of shape (n, *fs): (n,) for one output, (n, k) for k outputs."""
    outs = []
    with torch.no_grad():
        for i in range(0, X.shape[0], batch):
            xb = torch.as_tensor(X[i : i + batch], dtype=torch.float32, device=device)
            out = model(xb)
            out = out.reshape(out.shape[0], -1)  # (b, k)
            outs.append(out.double().cpu().numpy())
    Y = np.concatenate(outs)  # (n, k)
    return Y[:, 0] if Y.shape[1] == 1 else Y


def task_loss(outputs: np.ndarray, y: np.ndarray) -> float:
    """Mean squared error for (n,) outputs; cross-entropy on logits for (n, k) outputs and integer labels."""
    if outputs.ndim == 1:
        return float(np.mean((outputs - y) ** 2))
    z = outputs - outputs.max(axis=1, keepdims=True)  # (n, k)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    labels = y.astype(np.int64)
    return float(-np.mean(logp[np.arange(labels.shape[0]), labels]))


def neutralised_losses(
    model: torch.nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    baseline: np.ndarray,
    features: list[int],
    *,
    device: str = "cpu",
) -> tuple[float, dict[int, float]]:
    """The model's loss on ``(X, y)`` and, for each feature index in ``features``, the loss with that column
    set to its baseline value (the feature "neutralised": it can no longer move the output).

    Parameters
    ----------
    X : ndarray of shape (n, F)
    y : ndarray of shape (n,)
    baseline : ndarray of shape (F,)

    Returns
    -------
    base_loss, {feature index: loss with that feature neutralised}
    """
    base = task_loss(predict(model, X, device=device), y)
    out: dict[int, float] = {}
    for j in features:
        Xn = X.copy()
        Xn[:, j] = baseline[j]
        out[j] = task_loss(predict(model, Xn, device=device), y)
    return base, out


def baseline_outputs(model: torch.nn.Module, baseline: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Model output at the baseline row: (k,) (k = 1 for a single output)."""
    return np.atleast_1d(predict(model, baseline[None, :], device=device)[0])
