"""``spurious_token`` on hand-made evidence, and the masking statistics on known answers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from audit.analysis.tokens import TokenMaskingStat, masking_stat, newcombe, token_table, wilson
from audit.config import Thresholds
from audit.findings import FindingsInput, run_detectors
from audit.findings.tokens import detect
from audit.results import FeatureStat

BASE = TokenMaskingStat(
    token="zqx", share=0.15, share_low=0.12, rows=150, n_rows=300, towards="positive", shift=0.4, shift_low=0.35,
    shift_high=0.45, flip_rate=0.45, flip_low=0.37, flip_high=0.53, labelled=True, label_rate=0.5,
    label_rate_without=0.49, info=0.01, info_low=-0.1, info_high=0.12, benefit=-0.3, benefit_low=-0.5,
    benefit_high=-0.1, rest_rate=0.5, rest_rate_without=0.5, rest=0.0, rest_low=-0.1, rest_high=0.1,
)  # fmt: skip


def test_shortcut_that_tells_nothing_fails():
    (f,) = detect(masking=[BASE], thresholds=Thresholds())
    assert f.severity.value == "fail" and f.features == ("zqx",) and f.evidence["benefit_ci_high"] == -0.1


def test_informative_but_overused_token_warns():
    m = dataclasses.replace(BASE, info=0.2, info_low=0.1, info_high=0.3)
    (f,) = detect(masking=[m], thresholds=Thresholds())
    assert f.severity.value == "warn" and "far more" in f.message


def test_genuine_cue_and_weak_token_stay_quiet():
    genuine = dataclasses.replace(BASE, token="great", benefit=1.0, benefit_low=0.4, benefit_high=1.6, info=0.4,
                                  info_low=0.3, info_high=0.5)
    weak = dataclasses.replace(BASE, token="the", shift=0.03, shift_low=0.01)
    assert detect(masking=[genuine, weak], thresholds=Thresholds()) == []


def test_without_labels_only_broad_reliance_warns():
    nolab = dataclasses.replace(BASE, labelled=False, benefit=math.nan, benefit_low=math.nan, benefit_high=math.nan,
                                info=math.nan, info_low=math.nan, info_high=math.nan)
    (f,) = detect(masking=[nolab], thresholds=Thresholds())
    assert f.severity.value == "warn" and "no labels" in f.message
    narrow = dataclasses.replace(nolab, token="great", share=0.04, share_low=0.03, rows=30)
    assert detect(masking=[narrow], thresholds=Thresholds()) == []


def test_registry_runs_it_for_text_runs_only():
    stats = (FeatureStat("zqx", 1, 1.0, 1.0, 0.1, 1.0, 0.9, 1.1),)
    inp = FindingsInput(task="text_classification", stats=stats, token_masking=(BASE,))
    assert [f.code for f in run_detectors(inp, Thresholds())] == ["spurious_token"]  # no concentration_skew


def test_intervals_and_masking_known_answers():
    p, lo, hi = wilson(50, 100)
    assert p == 0.5 and 0.40 < lo < 0.41 and 0.59 < hi < 0.60
    d, dlo, dhi = newcombe(50, 100, 50, 100)
    assert d == 0 and dlo < 0 < dhi
    has = np.array([True] * 4 + [False] * 4)
    p = np.array([[0.1, 0.9]] * 4)
    q = np.array([[0.6, 0.4]] * 4)  # masking flips every row from class 1 to class 0
    labels = np.array([0, 0, 1, 1, 0, 0, 1, 1])  # the token tells nothing
    m = masking_stat("t", 0.2, has=has, p=p, q=q, pred_all=np.array([1, 1, 1, 1, 0, 1, 0, 1]), labels=labels,
                     class_names=("neg", "pos"), n_boot=50)
    assert m.towards == "pos" and math.isclose(m.shift, 0.5) and m.flip_rate == 1.0 and m.info == 0.0
    assert m.benefit < 0  # masking it lowers the loss on these labels


def test_token_table_shares_and_counts():
    ids = [np.array([2, 5, 3]), np.array([2, 5, 6, 3])]
    attr = [np.array([0.0, 1.0, 0.0]), np.array([0.0, 1.0, -2.0, 0.0])]
    special = [np.array([1, 0, 1]), np.array([1, 0, 0, 1])]
    tokens, features, n = token_table(ids, attr, special, lambda i: f"t{i}", n_boot=20)
    assert n == 4 and [t.token for t in tokens[:2]] == ["t5", "t6"]  # a tie: the smaller id first
    assert tokens[1].share == 0.5 and tokens[0].occurrences == 2 and tokens[0].rows == 2
    assert tokens[0].mean_abs == 1.0 and tokens[1].mean_abs == 2.0 and tokens[-1].special
    assert math.isclose(sum(f.share for f in features), 1.0) and features[0].mean_abs == 1.0
