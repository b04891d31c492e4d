"""The bundle of accumulators one worker keeps for the tabular audit, and that the driver merges."""

from __future__ import annotations

import math

import numpy as np

from audit.analysis.accumulate.counts import Counts, Log10Histogram
from audit.analysis.accumulate.keys import as_row_ids
from audit.analysis.accumulate.moments import ColumnMoments
from audit.analysis.accumulate.sample import RowSample
from audit.analysis.convergence import HIST_BINS, HIST_LOG10_HIGH, HIST_LOG10_LOW
from audit.errors import UsageError
from audit.results import Convergence

__all__ = ["BlockAccumulators"]


# ------------------------------------------------------------------------------------------------ bundle

class BlockAccumulators:
    """What one worker keeps of its blocks of a tabular audit, mergeable with other workers'.

    Parameters
    ----------
    n_features : int
        Attribution columns.
    capacity : int
        Rows the sample keeps (``--analysis-rows``).
    seed : int
        Sample hash seed.
    tolerance : float, optional
        Completeness tolerance: rows with ``rel_delta > tolerance`` are counted in ``n_not_converged``. Needed
        by :meth:`convergence`.
    hist_low, hist_high, hist_bins
        Edges of the ``rel_delta`` histogram, as :class:`Log10Histogram`.

    Attributes
    ----------
    sample : RowSample
        Uniform sample of rows; always holds ``"A"`` (attributions) and ``"rel_delta"`` besides the arrays passed.
    moments : ColumnMoments
        Exact moments of the attributions over all rows.
    outputs : ColumnMoments or None
        Exact moments of the model outputs passed as ``outputs`` (None until some are).
    steps : Counts
        Integration steps used per row.
    rel_delta : Log10Histogram
        Relative completeness errors over all rows (exact counts and max).
    n_not_converged : int
        Rows with ``rel_delta > tolerance`` (0 without a tolerance).
    """

    def __init__(
        self,
        n_features: int,
        capacity: int,
        seed: int,
        *,
        tolerance: float | None = None,
        hist_low: float = HIST_LOG10_LOW,
        hist_high: float = HIST_LOG10_HIGH,
        hist_bins: int = HIST_BINS,
    ) -> None:
        if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
            raise UsageError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
        self.tolerance = None if tolerance is None else float(tolerance)
        self.sample = RowSample(capacity, seed)
        self.moments = ColumnMoments(n_features)
        self.outputs: ColumnMoments | None = None
        self.steps = Counts()
        self.rel_delta = Log10Histogram(hist_low, hist_high, hist_bins)
        self.n_not_converged = 0

    @property
    def n_rows(self) -> int:
        """Rows added, all blocks and merged workers together."""
        return self.moments.n

    def add_block(
        self,
        row_ids: np.ndarray,
        A: np.ndarray,
        rel_delta: np.ndarray,
        steps: np.ndarray,
        *,
        outputs: np.ndarray | None = None,
        **sample_arrays: np.ndarray,
    ) -> None:
        """Add one block's results.

        Parameters
        ----------
        row_ids : ndarray of int, shape (n,)
            Unique row ids (a file's 0-based row index: ``chunk.row_offset + np.arange(n)``).
        A : ndarray of shape (n, n_features)
            Attributions (kept in the sample as ``"A"``, in the dtype given).
        rel_delta : ndarray of shape (n,)
            Relative completeness error per row, ``>= 0`` (kept in the sample as ``"rel_delta"``).
        steps : ndarray of int, shape (n,)
            Integration steps per row.
        outputs : ndarray of shape (n,) or (n, k), optional
            Model outputs whose exact moments are kept in :attr:`outputs` (the same width every block).
        **sample_arrays : ndarray of shape (n, ...)
            Further arrays to sample (``X``, ``cls``, ``y`` ...); ``A`` and ``rel_delta`` are sampled already.

        Raises
        ------
        UsageError
            Lengths or shapes that do not fit, bad values, repeated row ids. Nothing is added
            when it raises.
        """
        ids = as_row_ids(row_ids)
        n = ids.shape[0]
        A_ = np.asarray(A)
        rel = np.asarray(rel_delta)
        st = np.asarray(steps)
        if A_.ndim != 2 or A_.shape != (n, self.moments.n_features):
            raise UsageError(f"A must have shape ({n}, {self.moments.n_features}), got {A_.shape}")
        if rel.shape != (n,) or st.shape != (n,):
            raise UsageError(
                f"rel_delta and steps need one value per row ({n}), got shapes {rel.shape} and {st.shape}"
            )
        rel64 = rel.astype(np.float64)
        if np.isnan(rel64).any() or (rel64 < 0).any():
            raise UsageError("rel_delta must be >= 0 and not NaN (inf is allowed)")
        if st.size and st.dtype.kind not in "biu" and not np.array_equal(st, np.round(st)):
            raise UsageError("steps must be whole numbers")
        out = None
        if outputs is not None:
            out = np.asarray(outputs)
            if out.ndim == 1:
                out = out[:, None]
            if out.ndim != 2 or out.shape[0] != n or out.dtype.kind not in "biuf":
                raise UsageError(f"outputs must be real with shape ({n},) or ({n}, k), got {np.shape(outputs)}")
            if self.outputs is not None and out.shape[1] != self.outputs.n_features:
                raise UsageError(
                    f"outputs have {out.shape[1]} columns here but {self.outputs.n_features} in earlier blocks"
                )
        self.sample.add(ids, A=A_, rel_delta=rel, **sample_arrays)  # raises before anything else changes
        self.moments.add(A_)
        if out is not None:
            if self.outputs is None:
                self.outputs = ColumnMoments(out.shape[1])
            self.outputs.add(out)
        self.steps.add(st)
        self.rel_delta.add(rel64)
        if self.tolerance is not None:
            self.n_not_converged += int((rel64 > self.tolerance).sum())

    def merge(self, other: BlockAccumulators) -> BlockAccumulators:
        """A new bundle of both workers' rows; inputs unchanged.

        Raises
        ------
        UsageError
            Different settings (columns, capacity, seed, tolerance, histogram edges, output width) or a row id
            both hold in their samples.
        """
        if not isinstance(other, BlockAccumulators):
            raise UsageError(f"can only merge BlockAccumulators, got {type(other).__name__}")
        if other.tolerance != self.tolerance:
            raise UsageError(f"cannot merge bundles with tolerances {self.tolerance} and {other.tolerance}")
        out = BlockAccumulators.__new__(BlockAccumulators)
        out.tolerance = self.tolerance
        out.sample = self.sample.merge(other.sample)
        out.moments = self.moments.merge(other.moments)
        if self.outputs is not None and other.outputs is not None:
            out.outputs = self.outputs.merge(other.outputs)
        else:  # one side (or neither) saw outputs: a copy of the other's
            one = self.outputs if other.outputs is None else other.outputs
            out.outputs = None if one is None else one.merge(ColumnMoments(one.n_features))
        out.steps = self.steps.merge(other.steps)
        out.rel_delta = self.rel_delta.merge(other.rel_delta)
        out.n_not_converged = self.n_not_converged + other.n_not_converged
        return out

    def rel_delta_quantiles(self, q: float | np.ndarray) -> np.ndarray:
        """Quantiles of ``rel_delta`` (linear interpolation, ``inf`` capped at the largest float as
        :func:`~audit.analysis.convergence.summarize_convergence` does): exact while ``sample.complete``, otherwise
        estimated from the uniform sample. ndarray of float64 with the shape of ``q``."""
        rel = self.sample.get("rel_delta").astype(np.float64)
        if rel.size == 0:
            raise UsageError("no rows were added; quantiles need at least one")
        return np.quantile(np.minimum(rel, np.finfo(np.float64).max), q)

    def convergence(self, method: str, n_steps: int | str) -> Convergence:
        """The :class:`~audit.results.Convergence` record of all rows added.

        Counts, steps, histogram and max are exact over all rows; median and p95 come from
        :meth:`rel_delta_quantiles` (exact while ``sample.complete``). With a complete sample the record equals
        :func:`~audit.analysis.convergence.summarize_convergence` of the concatenated per-row arrays.
        """
        if self.tolerance is None:
            raise UsageError("convergence() needs the tolerance; build the bundle with tolerance=...")
        if self.n_rows == 0:
            raise UsageError("no rows were added; the convergence summary needs at least one")
        median, p95 = self.rel_delta_quantiles([0.5, 0.95])
        return Convergence(
            method=str(method),
            n_steps=n_steps if isinstance(n_steps, str) else int(n_steps),
            median_rel_delta=float(median),
            p95_rel_delta=float(p95),
            max_rel_delta=float(self.rel_delta.max),
            tolerance=float(self.tolerance),
            n_rows=int(self.n_rows),
            n_not_converged=int(self.n_not_converged),
            steps_used={str(k): int(c) for k, c in self.steps.as_dict().items()},
            rel_delta_hist_edges=tuple(float(e) for e in self.rel_delta.edges),
            rel_delta_hist_counts=tuple(int(c) for c in self.rel_delta.counts),
        )
