"""Summary of how well Integrated Gradients converged: the completeness error of each row.

Completeness (Sundararajan, Taly & Yan, ICML 2017, Prop. 1): attributions sum to ``F(x) - F(x')``. The
pipeline measures each row's relative error ``|sum(attr) - (F(x) - F(x'))| / |F(x) - F(x')|``; this module
condenses those into the :class:`~audit.results.Convergence` record the report and the detectors read.
"""

from __future__ import annotations

import numpy as np

from audit.errors import UsageError
from audit.results import Convergence

__all__ = ["summarize_convergence", "HIST_LOG10_LOW", "HIST_LOG10_HIGH", "HIST_BINS"]

HIST_LOG10_LOW = -9.0  # errors below 1e-9 land in the first bin
HIST_LOG10_HIGH = 1.0  # errors above 10 (and infinite ones) land in the last bin
HIST_BINS = 20  # half a decade per bin


def summarize_convergence(
    rel_delta: np.ndarray,
    steps: np.ndarray,
    method: str,
    n_steps: int | str,
    tol: float,
) -> Convergence:
    """Condense per-row completeness errors into a :class:`~audit.results.Convergence` record.

    Parameters
    ----------
    rel_delta : ndarray of shape (n_rows,)
        Relative completeness error of each row, ``>= 0``; ``inf`` is allowed (a row whose output did not move
        but whose attributions do not sum to 0), NaN is not.
    steps : ndarray of shape (n_rows,)
        Integration steps each row used (all equal to ``n_steps`` unless steps were chosen per row).
    method : str
        Quadrature rule, e.g. ``"gausslegendre"``.
    n_steps : int or "auto"
        The requested steps.
    tol : float
        A row has converged when ``rel_delta <= tol``.

    Returns
    -------
    Convergence
        ``median_rel_delta``, ``p95_rel_delta`` (linear interpolation) and ``max_rel_delta``; ``n_rows`` and
        ``n_not_converged`` (rows with ``rel_delta > tol``); ``steps_used`` as ``{str(steps): rows}`` in
        increasing steps; a histogram of ``log10(rel_delta)`` with :data:`HIST_BINS` equal bins from
        :data:`HIST_LOG10_LOW` to :data:`HIST_LOG10_HIGH`, values outside clamped into the end bins
        (``rel_delta_hist_edges`` holds the log10 edges, ``HIST_BINS + 1`` of them).
    """
    rel = np.asarray(rel_delta, dtype=np.float64)
    st = np.asarray(steps)
    if rel.ndim != 1 or rel.size == 0:
        raise UsageError(f"rel_delta must be a non-empty 1-D array, got shape {rel.shape}")
    if st.shape != rel.shape:
        raise UsageError(f"steps must have one value per row ({rel.size}), got shape {st.shape}")
    if np.isnan(rel).any():
        first = int(np.flatnonzero(np.isnan(rel))[0])
        raise UsageError(
            f"rel_delta is NaN at row {first}; report rows whose output did not move as 0 (attributions sum to 0) "
            "or inf (they do not)"
        )
    if (rel < 0).any():
        raise UsageError("rel_delta must be >= 0 (it is an absolute error divided by an absolute change)")
    if not np.issubdtype(st.dtype, np.integer) and not np.array_equal(st, np.round(st)):
        raise UsageError("steps must be whole numbers")
    if not np.isfinite(tol) or tol < 0:
        raise UsageError(f"tol must be a finite number >= 0, got {tol!r}")

    finite_cap = np.minimum(rel, np.finfo(np.float64).max)  # inf -> max float so interpolation stays defined
    median, p95 = np.quantile(finite_cap, [0.5, 0.95])
    steps_values, steps_counts = np.unique(st.astype(np.int64), return_counts=True)

    edges = np.linspace(HIST_LOG10_LOW, HIST_LOG10_HIGH, HIST_BINS + 1)  # (HIST_BINS + 1,)
    with np.errstate(divide="ignore"):
        logs = np.log10(rel)  # (n_rows,), -inf for exact zeros
    logs = np.clip(logs, HIST_LOG10_LOW, HIST_LOG10_HIGH)
    counts, _ = np.histogram(logs, bins=edges)  # the last bin includes its right edge

    return Convergence(
        method=str(method),
        n_steps=n_steps if isinstance(n_steps, str) else int(n_steps),
        median_rel_delta=float(median),
        p95_rel_delta=float(p95),
        max_rel_delta=float(rel.max()),
        tolerance=float(tol),
        n_rows=int(rel.size),
        n_not_converged=int((rel > tol).sum()),
        steps_used={str(int(s)): int(c) for s, c in zip(steps_values, steps_counts, strict=True)},
        rel_delta_hist_edges=tuple(float(e) for e in edges),
        rel_delta_hist_counts=tuple(int(c) for c in counts),
    )
