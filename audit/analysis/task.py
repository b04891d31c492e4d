"""What kind of model is audited: the task, decided from the model's outputs and the target, and its loss.

A single-logit binary classifier (``BCEWithLogitsLoss``) and a regressor both have one output; a 3-class
classifier and a 3-output regressor both have three. Scoring the first as a regression (squared error of raw
logits against 0/1 labels) or the second as a classifier makes every loss-based finding meaningless, so the task
is decided on evidence and the reason is recorded for the report.

Rules with ``requested="auto"``:

- one output and a 0/1 target: ``binary_classification``; the output is a logit when any output on the audited
  rows leaves [0, 1], a probability otherwise;
- one output otherwise (or no target): ``regression``;
- k outputs and k target columns: ``multioutput_regression``;
- k outputs and integer labels in [0, k) (or no target): ``classification``; the outputs are probabilities when
  every row's outputs lie in [0, 1] and sum to 1, logits otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from audit.errors import DataError, UsageError

__all__ = ["TaskInfo", "resolve_task", "per_row_loss", "expected_loss_change", "marginal_output", "TASK_NAMES"]

# names in audit.json
TASK_NAMES = (
    "regression",
    "multioutput_regression",
    "binary_classification",
    "classification",
    "image_classification",
    "text_classification",
)
_REQUESTED = {
    "regression": "regression",
    "binary": "binary_classification",
    "multiclass": "classification",
    "multioutput": "multioutput_regression",
}
_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] inside logarithms


@dataclass(frozen=True)
class TaskInfo:
    """The decided task.

    Attributes
    ----------
    name : str
        One of :data:`TASK_NAMES`.
    output : {"value", "logit", "probability"}
        What the model's outputs are: plain values (regression), logits or probabilities (classifiers).
    n_outputs : int
    reason : str
        One sentence for the report: what was chosen and why.
    """

    name: str
    output: str
    n_outputs: int
    reason: str

    @property
    def is_classifier(self) -> bool:
        return self.name in ("binary_classification", "classification", "image_classification")


def _is_binary_labels(y: np.ndarray) -> bool:
    vals = np.unique(y)
    return vals.size <= 2 and bool(np.isin(vals, (0.0, 1.0)).all())


def _is_class_labels(y: np.ndarray, k: int) -> bool:
    return bool(np.all(np.mod(y, 1) == 0) and y.min() >= 0 and y.max() < k)


def _is_probability_rows(out: np.ndarray) -> bool:
    return bool(((out >= 0) & (out <= 1)).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-4))


def resolve_task(
    requested: str,
    n_outputs: int,
    outputs: np.ndarray,
    y: np.ndarray | None,
    *,
    target_col: str = "target",
) -> TaskInfo:
    """Decide the task from the model's outputs on the audited rows and the target.

    Parameters
    ----------
    requested : {"auto", "regression", "binary", "multiclass", "multioutput"}
        ``--task``; anything but ``auto`` is checked against the outputs and labels.
    n_outputs : int
        Outputs per row.
    outputs : ndarray of shape (n_rows,) or (n_rows, n_outputs)
        The model's outputs on (a sample of) the audited rows.
    y : ndarray of shape (n_rows,) or (n_rows, n_targets), optional
        The target, when the data has one.
    target_col : str
        Named in messages.

    Returns
    -------
    TaskInfo

    Raises
    ------
    UsageError
        A requested task that cannot fit the model (``binary`` with three outputs, say).
    DataError
        Labels that fit no task of a k-output model.
    """
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)  # (n, k)
    k = int(n_outputs)
    y2 = None if y is None else np.asarray(y, dtype=np.float64).reshape(len(y), -1)  # (n, t)
    n_targets = 0 if y2 is None else y2.shape[1]
    if requested not in ("auto", *_REQUESTED):
        raise UsageError(f"unknown task '{requested}'; use auto, regression, binary, multiclass or multioutput")

    if requested == "auto":
        if k == 1:
            if n_targets == 1 and _is_binary_labels(y2[:, 0]):
                name = "binary_classification"
                why = f"one output and a 0/1 target '{target_col}'"
            else:
                name = "regression"
                why = "one output and no target to tell a binary classifier apart" if y2 is None else (
                    f"one output and a target '{target_col}' that is not 0/1"
                )
        elif n_targets == k and k > 1:
            name, why = "multioutput_regression", f"{k} outputs and {k} target columns"
        elif n_targets > 1:
            raise DataError(
                f"the model has {k} outputs but the data has {n_targets} target columns; pass one target column per "
                "output (multi-output regression) or one column of class labels"
            )
        elif y2 is None:
            name, why = "classification", f"{k} outputs and no target (assumed a classifier; pass task='multioutput' "\
                "/ --task multioutput for a multi-output regressor)"
        elif _is_class_labels(y2[:, 0], k):
            name, why = "classification", f"{k} outputs and integer labels in [0, {k})"
        else:
            lo, hi = float(y2.min()), float(y2.max())
            raise DataError(
                f"target column '{target_col}' holds values from {lo:g} to {hi:g}, which are not class indices "
                f"0..{k - 1} for this {k}-output model; encode the labels as 0..{k - 1}, or pass one target column "
                "per output for a multi-output regressor"
            )
        how = "detected"
    else:
        name, how = _REQUESTED[requested], "as asked (--task)"
        why = f"--task {requested}"
        if name == "binary_classification" and k != 1:
            raise UsageError(
                f"task 'binary' needs a model with one output (a logit or a probability); this one has {k}: use "
                "task 'multiclass' for a softmax head"
            )
        if name == "regression" and k != 1:
            raise UsageError(f"task 'regression' needs one output; this model has {k}: use task 'multioutput'")
        if name == "classification" and k < 2:
            raise UsageError("task 'multiclass' needs a model with one output per class; this one has one output: "
                             "use task 'binary'")
        if name == "multioutput_regression":
            if k < 2:
                raise UsageError("task 'multioutput' needs a model with several outputs; this one has one")
            if y2 is not None and n_targets != k:
                raise DataError(
                    f"task 'multioutput' needs {k} target columns, one per output, but the data has {n_targets}; "
                    "pass them all as the target"
                )
        if name == "binary_classification" and y2 is not None and not _is_binary_labels(y2[:, 0]):
            raise DataError(f"task 'binary' needs a 0/1 target, but '{target_col}' holds other values; encode it "
                            "as 0/1")
        if name == "classification" and y2 is not None and not _is_class_labels(y2[:, 0], k):
            raise DataError(f"task 'multiclass' needs labels 0..{k - 1} in '{target_col}'; encode the labels")

    if name == "binary_classification":
        inside = bool(((out >= 0) & (out <= 1)).all())
        output = "probability" if inside else "logit"
        why += "; outputs " + ("stay in [0, 1]: probabilities" if inside else "leave [0, 1]: logits")
    elif name == "classification":
        output = "probability" if _is_probability_rows(out) else "logit"
        why += "; outputs " + ("are probabilities (rows sum to 1)" if output == "probability" else "are logits")
    else:
        output = "value"
    label = name.replace("_", " ")
    return TaskInfo(name=name, output=output, n_outputs=k, reason=f"{label}, {how}: {why}")


def _log_probs(out: np.ndarray, task: TaskInfo) -> np.ndarray:
    """(n, c) log class probabilities: c = 2 for a binary classifier (class 0, class 1), k otherwise."""
    if task.name == "binary_classification":
        z = out[:, 0]
        if task.output == "probability":
            p = np.clip(z, _EPS, 1 - _EPS)
            return np.stack([np.log1p(-p), np.log(p)], axis=1)
        # log sigmoid(z) = -softplus(-z), log(1 - sigmoid(z)) = -softplus(z)
        return np.stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)], axis=1)
    if task.output == "probability":
        return np.log(np.clip(out, _EPS, 1.0))
    zs = out - out.max(axis=1, keepdims=True)
    return zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))


def per_row_loss(outputs: np.ndarray, y: np.ndarray, task: TaskInfo) -> np.ndarray:
    """The loss that fits the task, per row.

    Parameters
    ----------
    outputs : ndarray of shape (n_rows,) or (n_rows, n_outputs)
    y : ndarray of shape (n_rows,) or (n_rows, n_outputs)
    task : TaskInfo

    Returns
    -------
    ndarray of shape (n_rows,)
        Squared error (regression), mean squared error over outputs (multi-output), binary cross-entropy on
        logits or probabilities, or cross-entropy.
    """
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    yy = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if task.name in ("regression", "multioutput_regression"):
        return ((out - yy) ** 2).mean(axis=1)
    logp = _log_probs(out, task)
    labels = yy[:, 0].astype(np.int64)
    return -logp[np.arange(labels.shape[0]), labels]


def expected_loss_change(outputs: np.ndarray, changed: np.ndarray, task: TaskInfo) -> np.ndarray:
    """Per row, how much the loss would grow if the model's own predictions were right and its output moved
    from ``outputs`` to ``changed``.

    For squared error with ``y ~ N(f, s^2)`` that is ``(f' - f)^2``; for a classifier with ``y ~ p`` it is the
    Kullback-Leibler divergence ``KL(p || p')``. A feature that carries real signal costs about this much loss
    when it is taken away; one the model follows without signal costs about minus this much.

    Parameters
    ----------
    outputs, changed : ndarray of shape (n_rows,) or (n_rows, n_outputs)
    task : TaskInfo

    Returns
    -------
    ndarray of shape (n_rows,), >= 0
    """
    a = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    b = np.asarray(changed, dtype=np.float64).reshape(len(changed), -1)
    if task.name in ("regression", "multioutput_regression"):
        return ((b - a) ** 2).mean(axis=1)
    lp, lq = _log_probs(a, task), _log_probs(b, task)
    return np.maximum((np.exp(lp) * (lp - lq)).sum(axis=1), 0.0)


def marginal_output(outputs: list[np.ndarray], task: TaskInfo) -> np.ndarray:
    """The average of several predictions for the same rows, in the model's own output form.

    Values are averaged as they are; a classifier's predictions are averaged as probabilities (a mixture) and
    given back as logits (binary: ``log(p / (1 - p))``; multiclass: log-probabilities, which softmax maps back to
    the mixture) or probabilities, whichever the model outputs.

    Parameters
    ----------
    outputs : list of ndarray, each of shape (n_rows,) or (n_rows, n_outputs)
    task : TaskInfo

    Returns
    -------
    ndarray of the shape of ``outputs[0]``
    """
    if len(outputs) == 1:
        return outputs[0]
    shape = np.shape(outputs[0])
    if not task.is_classifier:
        return np.mean(outputs, axis=0)
    probs = np.mean([np.exp(_log_probs(np.asarray(o, dtype=np.float64).reshape(shape[0], -1), task))
                     for o in outputs], axis=0)  # (n, c)
    if task.name == "binary_classification":
        p = np.clip(probs[:, 1], _EPS, 1 - _EPS)
        out = p if task.output == "probability" else np.log(p) - np.log1p(-p)
        return out.reshape(shape)
    out = probs if task.output == "probability" else np.log(np.clip(probs, _EPS, 1.0))
    return out.reshape(shape)
