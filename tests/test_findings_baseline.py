"""baseline_not_neutral: a baseline far from the data's predictions, or a confident class there, warns."""

from __future__ import annotations

import numpy as np
import pytest

from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings import baseline
from audit.results import Severity

T = Thresholds()


def _regression(shift: float):
    """F(x) = x0 + x1 on data centred at `shift`; the zero baseline predicts F(0) = 0."""
    X = np.random.default_rng(0).standard_normal((2_000, 2)) + shift
    out = X.sum(axis=1)
    return baseline.detect(
        task="regression", baseline_output=0.0, thresholds=T, output_mean=out.mean(), output_std=out.std()
    )


def test_zero_baseline_far_from_shifted_data_warns():
    (f,) = _regression(shift=3.0)
    assert (f.code, f.severity, f.features) == ("baseline_not_neutral", Severity.INFO, ())
    assert f.evidence["z"] == pytest.approx(6 / np.sqrt(2), rel=0.05)  # |0 - 6| / sqrt(2)
    assert f"{f.evidence['z']:.1f} standard deviations" in f.message and "--baseline mean" in f.message


def test_zero_baseline_on_centred_data_is_quiet():
    assert _regression(shift=0.0) == []


def test_confident_class_at_baseline_warns_from_logits_or_probabilities():
    (f,) = baseline.detect(
        task="classification", baseline_output=np.array([0.0, 5.0, 0.0]), thresholds=T, class_names=("a", "b", "c")
    )
    p = np.exp(5) / (np.exp(5) + 2)
    assert f.evidence["baseline_max_prob"] == pytest.approx(p, rel=1e-3) and f.evidence["baseline_class"] == "b"
    assert "'b'" in f.message and f"{100 * p:.1f}%" in f.message
    (g,) = baseline.detect(task="classification", baseline_output=np.array([0.05, 0.95]), thresholds=T)
    assert g.evidence["baseline_max_prob"] == pytest.approx(0.95) and g.evidence["baseline_class"] == "1"


def test_uncertain_class_at_baseline_is_quiet():
    assert baseline.detect(task="classification", baseline_output=np.array([0.1, 0.0, -0.1]), thresholds=T) == []
    assert baseline.detect(task="image_classification", baseline_output=np.zeros(1000), thresholds=T) == []


def test_probabilities_pass_through_and_logits_get_softmax():
    assert baseline.baseline_probabilities(np.array([0.2, 0.8])) == pytest.approx([0.2, 0.8])
    assert baseline.baseline_probabilities(np.array([0.0, np.log(3)])) == pytest.approx([0.25, 0.75])


def test_constant_model_is_not_judged_and_bad_input_is_an_error():
    assert baseline.detect(task="regression", baseline_output=5.0, thresholds=T, output_mean=1.0, output_std=0.0) == []
    with pytest.raises(UsageError, match="output_mean and output_std"):
        baseline.detect(task="regression", baseline_output=1.0, thresholds=T)
    with pytest.raises(UsageError, match="one value per class"):
        baseline.detect(task="classification", baseline_output=np.array([1.0]), thresholds=T)
    with pytest.raises(UsageError, match="class names"):
        baseline.detect(task="classification", baseline_output=np.array([9.0, 0]), thresholds=T, class_names=("a",))
    with pytest.raises(UsageError, match="unknown task"):
        baseline.detect(task="ranking", baseline_output=1.0, thresholds=T)
