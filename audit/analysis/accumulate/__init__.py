"""Mergeable accumulators over blocks of rows: the seam between where blocks run and what is kept of them.

Every accumulator here has ``add`` (offer one block) and ``merge`` (combine two accumulators into a new one,
leaving both unchanged), and its result depends only on the *set* of rows offered -- not on how the rows were cut
into blocks, in which order the blocks came, nor on how many workers each kept a partial accumulator that were then
merged in any order. This is what lets a distributed executor (Ray) and the local loop give the same audit, bit
for bit.

- :class:`RowSample`: a uniform sample of at most ``capacity`` rows. Each row's key is a hash of
  ``(seed, row_id)`` (SplitMix64, see :mod:`audit.analysis.accumulate.keys`); the sample is the ``capacity``
  rows with the smallest keys, a "bottom-k sketch" (Cohen & Kaplan, "Summarizing data using bottom-k sketches",
  PODC 2007): with independent uniform keys, a uniform sample without replacement. Because the key is a function
  of the row id, not of the arrival order (as :class:`audit.analysis.streaming.Reservoir`'s generator draws are),
  the sample is a function of the set of rows alone.
- :class:`ColumnMoments`: per column n, sum, sum of ``|x|`` and sum of squares, accumulated **exactly** (integer
  fixed-point limbs per binary exponent, a vectorised form of an exact "superaccumulator": Kulisch & Miranker,
  "The arithmetic of the digital computer: a new approach", SIAM Review 1986; Neal, "Fast exact summation using
  small and large superaccumulators", arXiv:1505.05571, 2015). Sums and means are correctly rounded float64, so
  they are identical for every order and equal ``math.fsum`` -- no tolerance is needed.
- :class:`Counts`: exact integer counts by integer key (integration steps per row).
- :class:`Log10Histogram`: exact counts of ``log10`` of non-negative values in equal bins, with the exact max
  (relative completeness errors, as :func:`audit.analysis.convergence.summarize_convergence` bins them).
- :class:`BlockAccumulators`: the bundle one worker keeps for the tabular audit (sample, attribution moments,
  steps, completeness histogram, output moments, row count) and that the driver merges.

The hash is described in :mod:`audit.analysis.accumulate.keys`.
"""

from __future__ import annotations

from audit.analysis.accumulate.bundle import BlockAccumulators
from audit.analysis.accumulate.counts import Counts, Log10Histogram
from audit.analysis.accumulate.keys import row_keys, row_uniforms
from audit.analysis.accumulate.moments import ColumnMoments
from audit.analysis.accumulate.sample import RowSample

__all__ = [
    "row_keys",
    "row_uniforms",
    "RowSample",
    "ColumnMoments",
    "Counts",
    "Log10Histogram",
    "BlockAccumulators",
]
