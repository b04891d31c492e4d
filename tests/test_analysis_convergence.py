"""summarize_convergence: known summaries, histogram clamping, steps histogram, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.analysis import summarize_convergence
from audit.analysis.convergence import HIST_BINS
from audit.errors import UsageError


def test_known_summary():
    rel = np.array([0.0, 1e-12, 1e-4, 0.005, 0.02, 0.5, 50.0, np.inf])
    steps = np.array([50, 50, 50, 50, 100, 100, 200, 200])
    c = summarize_convergence(rel, steps, "gausslegendre", "auto", 0.01)
    assert (c.method, c.n_steps, c.tolerance, c.n_rows) == ("gausslegendre", "auto", 0.01, 8)
    assert c.n_not_converged == 4  # 0.02, 0.5, 50, inf
    assert c.median_rel_delta == pytest.approx((0.005 + 0.02) / 2)
    assert math.isinf(c.max_rel_delta)
    assert c.steps_used == {"50": 4, "100": 2, "200": 2}
    assert list(c.steps_used) == ["50", "100", "200"]
    edges = np.array(c.rel_delta_hist_edges)
    assert len(edges) == HIST_BINS + 1 and edges[0] == -9.0 and edges[-1] == 1.0
    counts = np.array(c.rel_delta_hist_counts)
    assert counts.sum() == 8
    assert counts[0] == 2  # 0 and 1e-12 clamp to 1e-9
    assert counts[-1] == 2  # 50 and inf clamp to 10
    assert counts[np.searchsorted(edges, -4.0, side="right") - 1] == 1  # 1e-4 sits in [-4, -3.5)


def test_integer_steps_and_percentile():
    rel = np.linspace(0, 1, 101)
    c = summarize_convergence(rel, np.full(101, 64), "riemann_trapezoid", 64, 0.5)
    assert c.n_steps == 64 and c.steps_used == {"64": 101}
    assert c.p95_rel_delta == pytest.approx(0.95)
    assert c.n_not_converged == 50


@settings(derandomize=True, max_examples=40, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=50), st.floats(0, 1))
def test_counts_are_consistent(values, tol):
    rel = np.array(values)
    c = summarize_convergence(rel, np.full(rel.size, 8), "gausslegendre", 8, tol)
    assert sum(c.rel_delta_hist_counts) == rel.size
    assert c.n_not_converged == int((rel > tol).sum())
    assert c.median_rel_delta <= c.p95_rel_delta <= c.max_rel_delta


@pytest.mark.parametrize(
    ("rel", "steps", "tol", "text"),
    [
        (np.array([]), np.array([]), 0.01, "non-empty"),
        (np.array([0.1, np.nan]), np.array([5, 5]), 0.01, "NaN at row 1"),
        (np.array([-0.1]), np.array([5]), 0.01, ">= 0"),
        (np.array([0.1]), np.array([5, 5]), 0.01, "one value per row"),
        (np.array([0.1]), np.array([5.5]), 0.01, "whole numbers"),
        (np.array([0.1]), np.array([5]), -1.0, "tol"),
    ],
)
def test_bad_input(rel, steps, tol, text):
    with pytest.raises(UsageError, match=text):
        summarize_convergence(rel, steps, "gausslegendre", 5, tol)
