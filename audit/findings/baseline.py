"""``baseline_not_neutral`` (info): attributions are measured from a reference point the model finds unusual.

Info, not a warning: it says how to read the attributions, not that the model is wrong.

Integrated Gradients explains ``F(x) - F(x')``; the explanation is only about "what makes this row different
from nothing" when ``F(x')`` itself is unremarkable (Sundararajan, Taly & Yan, ICML 2017, section 3.2).

- regression: ``|F(baseline) - mean F(x)| / std F(x) >= baseline_z``;
- classification: the largest class probability at the baseline is ``>= baseline_max_prob``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings._common import fmt, num, pct
from audit.findings.base import Detector, FindingsInput, fixed_title
from audit.results import Finding, Severity

__all__ = ["detect", "baseline_probabilities", "CODE", "DETECTOR"]

CODE = "baseline_not_neutral"
_ADVICE = "try --baseline mean or --baseline median"


def baseline_probabilities(output: np.ndarray) -> np.ndarray:
    """Class probabilities at the baseline from the model's output vector.

    Parameters
    ----------
    output : ndarray of shape (n_classes,)
        The model's output at the baseline: logits, or probabilities when the model ends in a softmax.

    Returns
    -------
    ndarray of shape (n_classes,)
        ``output`` itself when it already is a probability vector (non-negative, summing to 1 within 1e-6),
        otherwise ``softmax(output)``.
    """
    z = np.asarray(output, dtype=np.float64).ravel()
    if z.size < 2:
        raise UsageError(f"a classifier's baseline output needs one value per class (>= 2), got {z.size}")
    if not np.isfinite(z).all():
        raise UsageError("the model's output at the baseline is NaN or infinite; check the model and the baseline")
    if (z >= 0).all() and abs(z.sum() - 1.0) <= 1e-6:
        return z
    e = np.exp(z - z.max())
    return e / e.sum()


def detect(
    *,
    task: str,
    baseline_output: float | np.ndarray,
    thresholds: Thresholds,
    output_mean: float | None = None,
    output_std: float | None = None,
    class_names: Sequence[str] = (),
) -> list[Finding]:
    """Warn when the model's output at the baseline is far from neutral.

    Parameters
    ----------
    task : {"regression", "binary_classification", "classification", "image_classification"}
    baseline_output : float or ndarray of shape (1,) or (n_classes,)
        ``F(baseline)``: the prediction (regression) or the output vector (classification; see
        :func:`baseline_probabilities`; a binary classifier passes its two class probabilities).
    thresholds : Thresholds
        Uses ``baseline_z`` (regression) and ``baseline_max_prob`` (classification).
    output_mean, output_std : float, optional
        Mean and standard deviation of ``F(x)`` over the audited rows; required for regression. When the std
        is 0 (a constant model) nothing is flagged: there is no scale to judge distance by.
    class_names : sequence of str, default=()
        Names of the classes, for the message (indices are used when empty).

    Returns
    -------
    list of Finding
        At most one ``baseline_not_neutral`` note (info).
    """
    if task == "regression":
        if output_mean is None or output_std is None:
            raise UsageError("the baseline check for regression needs output_mean and output_std of F(x)")
        b = np.asarray(baseline_output, dtype=np.float64).ravel()
        if b.size != 1:
            raise UsageError(f"a regression baseline output is one number, got {b.size} values")
        value, mean, std = float(b[0]), float(output_mean), float(output_std)
        if not (math.isfinite(value) and math.isfinite(mean) and math.isfinite(std)) or std < 0:
            raise UsageError("baseline output, output mean and output std must be finite (std >= 0)")
        if std == 0:
            return []
        z = abs(value - mean) / std
        if z < thresholds.baseline_z:
            return []
        return [
            Finding(
                code=CODE,
                severity=Severity.INFO,
                features=(),
                message=(
                    f"The baseline is not a neutral input: the model predicts {fmt(value)} there, {z:.1f} standard "
                    f"deviations from its average prediction {fmt(mean)}, so every attribution is measured from "
                    f"an unusual reference point; {_ADVICE}."
                ),
                evidence={
                    "baseline_output": num(value),
                    "output_mean": num(mean),
                    "output_std": num(std),
                    "z": num(z),
                    "z_threshold": num(thresholds.baseline_z),
                },
            )
        ]
    if task not in ("classification", "binary_classification", "image_classification"):
        raise UsageError(
            f"unknown task '{task}'; use regression, binary_classification, classification or image_classification"
        )
    probs = baseline_probabilities(np.asarray(baseline_output))
    k = int(np.argmax(probs))
    p = float(probs[k])
    if p < thresholds.baseline_max_prob:
        return []
    if class_names and len(class_names) != probs.size:
        raise UsageError(f"{len(class_names)} class names for {probs.size} model outputs; pass one name per class")
    label = str(class_names[k]) if class_names else str(k)
    advice = "try another --baseline (blur or mean)" if task == "image_classification" else _ADVICE
    return [
        Finding(
            code=CODE,
            severity=Severity.INFO,
            features=(),
            message=(
                f"The baseline is not a neutral input: the model already gives class '{label}' {pct(p)} "
                "probability there, so attributions explain the move away from a confident prediction rather "
                f"than from an uninformative input; {advice}."
            ),
            evidence={
                "baseline_class": label,
                "baseline_max_prob": num(p),
                "max_prob_threshold": num(thresholds.baseline_max_prob),
                "uniform_prob": num(1.0 / probs.size),
            },
        )
    ]


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect(
        task=inp.task, baseline_output=inp.baseline_output, thresholds=thresholds, output_mean=inp.output_mean,
        output_std=inp.output_std, class_names=inp.class_names,
    )  # fmt: skip


# switched by its input alone: the image path does not compute F(baseline) today (detect has its image wording)
DETECTOR = Detector(
    code=CODE,
    title=fixed_title("The baseline is not neutral"),
    applies=lambda inp: inp.baseline_output is not None,
    detect=_detect,
)
