"""Model-side evidence for the findings: what happens to the loss when a feature's information is taken away,
and what the model says at the baseline. These need the model, so they live apart from the pure numpy analyses."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from audit.analysis.task import TaskInfo, expected_loss_change, marginal_output, per_row_loss
from audit.attribution.base import batched_forward

__all__ = ["predict", "neutralisation_effects", "baseline_outputs"]


def predict(model: torch.nn.Module, X: np.ndarray, *, device: str = "cpu", batch: int = 8192) -> np.ndarray:
    """Model outputs for rows ``X`` of shape (n, *fs): (n,) for one output, (n, k) for k outputs.

    Inputs are given the model's own floating dtype (a float64 model gets float64 rows); the batch halves when
    memory runs out (:func:`audit.attribution.base.batched_forward`)."""
    out = batched_forward(model, torch.as_tensor(X), batch=batch, device=device)
    Y = out.reshape(out.shape[0], -1).double().numpy()  # (n, k)
    return Y[:, 0] if Y.shape[1] == 1 else Y


def neutralisation_effects(
    model: torch.nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    groups: Sequence[Sequence[int]],
    task: TaskInfo,
    *,
    method: str = "permute",
    baseline: np.ndarray | None = None,
    n_repeats: int = 5,
    seed: int = 0,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray, float]]]:
    """Per-row loss changes when each group of columns loses its information.

    Parameters
    ----------
    X : ndarray of shape (n, F)
    y : ndarray of shape (n,) or (n, k)
    groups : sequence of sequences of column indices
        Each group is neutralised as a whole: ``permute`` replaces its columns by those of other rows (one shared
        permutation, so their joint distribution is kept) ``n_repeats`` times and averages the model's
        predictions (probabilities for a classifier), which marginalises the group out: the prediction the model
        would make without it. ``baseline`` sets them to the baseline row's values.
    task : TaskInfo
    method : {"permute", "baseline"}
    baseline : ndarray of shape (F,), needed with ``method="baseline"``
    n_repeats : int
        Permutations averaged per group (``baseline`` needs one).

    Notes
    -----
    Averaging matters: one permutation swaps a noise feature's value for another row's, which leaves the
    prediction as wrong as before (benefit ~0, hard to tell from a weak real feature); the average removes the
    noise's pull (benefit ~-1), while a real feature's information is lost either way (benefit ~1).

    Returns
    -------
    base_out : ndarray of shape (n,) or (n, k)
        The model's outputs on ``X``.
    base_loss : ndarray of shape (n,)
        Per-row loss on ``X``.
    effects : list of (d, r, neutralised_loss), one per group
        ``d`` (n,): per-row loss change (neutralised minus original), averaged over repeats; ``r`` (n,): per-row
        change expected if the model were right (:func:`audit.analysis.task.expected_loss_change`);
        ``neutralised_loss``: the mean loss after neutralising.
    """
    base_out = predict(model, X, device=device)
    base_loss = per_row_loss(base_out, y, task)
    rng = np.random.default_rng(seed)
    reps = 1 if method == "baseline" else max(int(n_repeats), 1)
    effects = []
    for g in groups:
        cols = list(g)
        outs = []
        for _ in range(reps):
            Xn = X.copy()
            if method == "baseline":
                Xn[:, cols] = np.asarray(baseline)[cols]
            else:
                Xn[:, cols] = X[rng.permutation(X.shape[0])][:, cols]
            outs.append(predict(model, Xn, device=device))
        out = marginal_output(outs, task)
        d = per_row_loss(out, y, task) - base_loss
        r = expected_loss_change(base_out, out, task)
        effects.append((d, r, float(np.mean(base_loss + d))))
    return base_out, base_loss, effects


def baseline_outputs(model: torch.nn.Module, baseline: np.ndarray, *, device: str = "cpu") -> np.ndarray:
    """Model output at the baseline row: (k,) (k = 1 for a single output)."""
    return np.atleast_1d(predict(model, baseline[None, :], device=device)[0])
