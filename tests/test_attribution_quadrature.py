"""Quadrature rules: textbook weights, exactness where theory says so, Captum's trapezoid reproduced."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.attribution.quadrature import METHODS, captum_rule, min_steps, rule
from audit.errors import AttributionError

SETTINGS = settings(derandomize=True, max_examples=40, deadline=None)


@SETTINGS
@given(method=st.sampled_from(METHODS), n=st.integers(2, 300))
def test_weights_sum_to_one_and_nodes_lie_in_unit_interval(method: str, n: int) -> None:
    alphas, weights = rule(method, n)
    assert alphas.shape == weights.shape == (n,)
    assert abs(weights.sum() - 1.0) < 1e-12
    assert alphas.min() >= 0.0 and alphas.max() <= 1.0
    assert (weights > 0).all()


@SETTINGS
@given(method=st.sampled_from(METHODS), n=st.integers(2, 64), c=st.floats(-5, 5))
def test_every_rule_integrates_a_constant_exactly(method: str, n: int, c: float) -> None:
    # the gradient of a linear model is constant along the path: every rule must then be exact
    _, weights = rule(method, n)
    assert abs(weights @ np.full(n, c) - c) < 1e-12 * (1 + abs(c))


@SETTINGS
@given(
    method=st.sampled_from(["riemann_middle", "riemann_trapezoid", "gausslegendre"]),
    n=st.integers(2, 64), a=st.floats(-5, 5), b=st.floats(-5, 5),
)  # fmt: skip
def test_symmetric_rules_integrate_a_linear_function_exactly(method: str, n: int, a: float, b: float) -> None:
    alphas, weights = rule(method, n)
    exact = a / 2 + b  # integral_0^1 (a t + b) dt
    assert abs(weights @ (a * alphas + b) - exact) < 1e-12 * (1 + abs(a) + abs(b))


@pytest.mark.parametrize(("method", "n", "error"), [("riemann_left", 4, -1 / 8), ("riemann_right", 4, 1 / 8)])
def test_one_sided_riemann_rules_have_their_first_order_error(method: str, n: int, error: float) -> None:
    alphas, weights = rule(method, n)
    assert weights @ alphas - 0.5 == pytest.approx(error, rel=1e-12)  # error of integral t dt is +-1/(2n)


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_gauss_legendre_is_exact_up_to_degree_2n_minus_1(n: int) -> None:
    alphas, weights = rule("gausslegendre", n)
    for degree in range(2 * n):
        assert weights @ alphas**degree == pytest.approx(1.0 / (degree + 1), rel=1e-12)
    if n <= 2:  # and not beyond: degree 2n has an error (1/12 for n=1, 1/180 for n=2)
        assert abs(weights @ alphas ** (2 * n) - 1.0 / (2 * n + 1)) == pytest.approx({1: 1 / 12, 2: 1 / 180}[n])


def test_trapezoid_is_the_textbook_rule() -> None:
    alphas, weights = rule("riemann_trapezoid", 5)
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])
    # second order: error of integral t^2 shrinks 4x when h halves
    err = [abs(rule("riemann_trapezoid", n)[1] @ rule("riemann_trapezoid", n)[0] ** 2 - 1 / 3) for n in (11, 21)]
    assert err[0] / err[1] == pytest.approx(4.0, rel=1e-9)


@pytest.mark.parametrize("n", [2, 10, 50])
def test_captum_trapezoid_weights_sum_to_n_minus_1_over_n_on_the_same_nodes(n: int) -> None:
    a_ours, w_ours = rule("riemann_trapezoid", n)
    a_cap, w_cap = captum_rule("riemann_trapezoid", n)
    assert w_cap.sum() == pytest.approx((n - 1) / n, rel=1e-6)  # Captum rounds weights to float32
    np.testing.assert_allclose(a_cap, a_ours, atol=1e-7)
    np.testing.assert_allclose(w_cap, w_ours * (n - 1) / n, rtol=1e-6)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "riemann_trapezoid"])
def test_captum_rule_matches_ours_for_the_other_methods(method: str) -> None:
    a_ours, w_ours = rule(method, 20)
    a_cap, w_cap = captum_rule(method, 20)
    np.testing.assert_allclose(a_cap, a_ours, atol=1e-7)
    np.testing.assert_allclose(w_cap, w_ours, rtol=1e-6)


def test_riemann_nodes_are_where_their_names_say() -> None:
    assert rule("riemann_left", 4)[0].tolist() == [0.0, 0.25, 0.5, 0.75]
    assert rule("riemann_right", 4)[0].tolist() == [0.25, 0.5, 0.75, 1.0]
    assert rule("riemann_middle", 4)[0].tolist() == [0.125, 0.375, 0.625, 0.875]


@pytest.mark.parametrize(
    ("method", "n", "match"),
    [
        ("simpson", 10, "unknown integration method 'simpson'"),
        ("gausslegendre", 0, "at least 1"),
        ("riemann_trapezoid", 1, "at least 2"),
        ("gausslegendre", -3, "at least 1"),
        ("gausslegendre", 2.5, "whole number"),
        ("gausslegendre", True, "whole number"),
    ],
)
def test_bad_arguments_raise_one_clear_error(method: str, n: object, match: str) -> None:
    with pytest.raises(AttributionError, match=match):
        rule(method, n)  # type: ignore[arg-type]
    with pytest.raises(AttributionError, match=match):
        captum_rule(method, n)  # type: ignore[arg-type]


def test_min_steps() -> None:
    assert min_steps("riemann_trapezoid") == 2
    assert all(min_steps(m) == 1 for m in METHODS if m != "riemann_trapezoid")


def test_captum_rule_refuses_one_step_riemann_rules_like_captum() -> None:
    assert rule("riemann_left", 1)[0].tolist() == [0.0]  # ours: a valid (poor) rule
    with pytest.raises(AttributionError, match="Captum's riemann_left needs n_steps at least 2"):
        captum_rule("riemann_left", 1)
    assert captum_rule("gausslegendre", 1)[0].tolist() == [0.5]
