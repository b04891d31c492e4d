"""Quadrature rules for the path integral of Integrated Gradients.

IG (Sundararajan, Taly, Yan, ICML 2017) needs ``integral_0^1 dF/dx_i (x' + a (x - x')) da``. Each rule here
returns nodes ``alphas`` in [0, 1] and weights that sum to 1, so that a function linear along the path is
integrated exactly by every rule.

Captum's ``riemann_trapezoid`` is not the textbook rule: its weights are ``1/n`` with the two end weights
halved, which sum to ``(n - 1) / n``. :func:`captum_rule` reproduces Captum's nodes and weights so the
cross-check can predict that bias instead of reporting it as a mystery.
"""

from __future__ import annotations

import numpy as np

from audit.errors import AttributionError

__all__ = ["METHODS", "MAX_STEPS", "rule", "captum_rule", "min_steps"]

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
MAX_STEPS = 4096  # no rule needs more; above it a request is a mistake, not a precision setting
_GL_DIRECT = 100  # numpy's leggauss (an n x n eigenproblem) up to this many nodes, Newton's method above


def min_steps(method: str) -> int:
    """Smallest step count a rule accepts (the trapezoid needs both end points)."""
    return 2 if method == "riemann_trapezoid" else 1


def _check(method: str, n_steps: int) -> None:
    if method not in METHODS:
        raise AttributionError(f"unknown integration method '{method}'; use one of {', '.join(METHODS)}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)):
        raise AttributionError(f"n_steps must be a whole number, got {n_steps!r}; 50 is a good default")
    if n_steps < min_steps(method):
        raise AttributionError(
            f"n_steps must be at least {min_steps(method)} for {method}, got {n_steps}; 50 is a good default"
        )
    if n_steps > MAX_STEPS:
        raise AttributionError(
            f"n_steps must be at most {MAX_STEPS:,}, got {n_steps:,}; use n_steps='auto', which refines only the "
            "rows that need it"
        )


def _gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] in O(n) memory.

    numpy's ``leggauss`` solves an n x n eigenproblem (74.5 GiB at n = 100,000); above :data:`_GL_DIRECT` nodes
    this refines Tricomi's initial guesses ``cos(pi (i - 1/4) / (n + 1/2))`` by Newton's method on ``P_n``
    (three-term recurrence), the classic approach of Numerical Recipes' ``gauleg``.
    """
    if n <= _GL_DIRECT:
        return np.polynomial.legendre.leggauss(n)
    i = np.arange(1, n + 1, dtype=np.float64)
    x = np.cos(np.pi * (i - 0.25) / (n + 0.5))  # (n,) descending
    for _ in range(100):
        p0, p1 = np.ones_like(x), x.copy()
        for k in range(2, n + 1):
            p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
        dp = n * (x * p1 - p0) / (x * x - 1.0)  # P_n'(x)
        step = p1 / dp
        x = x - step
        if np.max(np.abs(step)) < 1e-15:
            break
    p0, p1 = np.ones_like(x), x.copy()
    for k in range(2, n + 1):
        p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
    dp = n * (x * p1 - p0) / (x * x - 1.0)
    w = 2.0 / ((1.0 - x * x) * dp * dp)
    return x[::-1].copy(), w[::-1].copy()


def rule(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of a quadrature rule on [0, 1].

    Parameters
    ----------
    method : {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"}
    n_steps : int
        Number of nodes (gradient evaluations per row).

    Returns
    -------
    alphas : ndarray of shape (n_steps,), float64
    weights : ndarray of shape (n_steps,), float64, summing to 1
    """
    _check(method, n_steps)
    n = int(n_steps)
    if method == "gausslegendre":
        x, w = _gauss_legendre(n)
        return 0.5 * (1.0 + x), 0.5 * w
    if method == "riemann_trapezoid":
        alphas = np.linspace(0.0, 1.0, n)
        weights = np.full(n, 1.0 / (n - 1))
        weights[0] /= 2.0
        weights[-1] /= 2.0
        return alphas, weights
    weights = np.full(n, 1.0 / n)
    if method == "riemann_left":
        return np.arange(n) / n, weights
    if method == "riemann_right":
        return (np.arange(n) + 1.0) / n, weights
    return (np.arange(n) + 0.5) / n, weights  # riemann_middle


def captum_rule(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Captum's nodes and weights for the same method (``captum/attr/_utils/approximation_methods.py``).

    Identical to :func:`rule` except ``riemann_trapezoid``, whose weights sum to ``(n - 1) / n``, the Riemann
    nodes, which Captum builds with float32 ``torch.linspace``, and the weights, which Captum rounds to float32
    (``torch.tensor(step_sizes).float()``) even when the model runs in float64. Captum's Riemann rules need at
    least 2 steps.
    """
    _check(method, n_steps)
    n = int(n_steps)
    if method != "gausslegendre" and n < 2:
        raise AttributionError(f"Captum's {method} needs n_steps at least 2, got {n}; use 2 or more steps")
    if method == "gausslegendre":
        alphas, weights = rule(method, n)
        return alphas, weights.astype(np.float32).astype(np.float64)
    weights = np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        weights[0] /= 2.0
        weights[-1] /= 2.0
        alphas = np.linspace(0.0, 1.0, n)
    elif method == "riemann_left":
        alphas = np.linspace(0.0, 1.0 - 1.0 / n, n)
    elif method == "riemann_right":
        alphas = np.linspace(1.0 / n, 1.0, n)
    else:
        alphas = np.linspace(1.0 / (2 * n), 1.0 - 1.0 / (2 * n), n)
    return alphas.astype(np.float32).astype(np.float64), weights.astype(np.float32).astype(np.float64)
