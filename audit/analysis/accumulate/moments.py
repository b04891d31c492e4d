"""Exact per-column moments (count, sum, sum of ``|x|``, sum of squares) of a matrix offered in blocks of rows."""

from __future__ import annotations

import heapq
import math

import numpy as np

from audit.errors import UsageError

__all__ = ["ColumnMoments"]

# ------------------------------------------------------------------------------------------------ ColumnMoments

_LOW = 1074  # every value is an integer multiple of 2**-1074 (the smallest subnormal float64) ...
_LOW_SQ = 2 * _LOW  # ... and every exact square a multiple of 2**-2148
_NORMALISE_EVERY = 1 << 30  # rows between carry passes: limbs stay far below 2**63
_TABLE_LIMIT = 1 << 21  # most bins in one bincount table (16 MiB)
_PASS_ELEMENTS = 1 << 17  # values per pass over a block (work arrays stay small); at most 2**16 rows
_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp's splitting constant for float64
_TINY, _HUGE = 2.0**-480, 2.0**500  # |x| outside [_TINY, _HUGE) takes the scalar exact-square path
_NARROW_KINDS = (np.float16, np.float32, np.int8, np.uint8, np.int16, np.uint16, np.bool_)


def _ratio(num: int, den: int) -> float:
    """``num / den`` (den > 0) correctly rounded (CPython's integer true division), overflowing to +-inf."""
    try:
        return num / den
    except OverflowError:
        return math.inf if num > 0 else -math.inf


def _add_coefficient(d: dict[int, np.ndarray], u: int, col: int, value: int, n_features: int) -> None:
    """Add the non-negative Python int ``value * 2**u`` to column ``col`` of ``d``, in 32-bit pieces."""
    while value:
        acc = d.get(u)
        if acc is None:
            acc = d[u] = np.zeros(n_features, dtype=np.int64)
        acc[col] += value & 0xFFFFFFFF
        value >>= 32
        u += 32


class ColumnMoments:
    """Exact per-column count, sum, sum of ``|x|`` and sum of squares of a matrix offered in blocks of rows.

    Every value (and every square) is split into integer limbs on the grid of its binary exponent and the limbs
    are summed in integers -- an exact "superaccumulator" (see the module notes) -- so the result does not depend
    on the blocks, their order or the merge order, **bit for bit**, and each statistic is the correctly rounded
    value of the exact one: ``sum`` equals ``math.fsum`` of the column, ``mean()`` and ``mean_abs()`` are the
    correctly rounded exact means, ``std()`` is ``sqrt`` of the correctly rounded exact population variance
    (divisor n). No tolerance is needed anywhere.

    Input: bool, integers and floats. float16/float32, bool and 8/16-bit integers go the fast way (at most 24
    significant bits: ``x**2`` is exact in float64); everything else is taken as float64 (int64 beyond 2**53
    rounds), whose squares are made exact with Dekker's product ``x*x = p + e`` (Dekker, "A floating-point
    technique for extending the available precision", Numer. Math. 1971; Ogita, Rump & Oishi, "Accurate sum and
    dot product", SIAM J. Sci. Comput. 2005), and values below 2**-480 or above 2**500 in magnitude by a slower
    scalar path.

    Non-finite values follow IEEE and numpy: a NaN makes that column's results NaN; ``+inf`` or ``-inf`` make its
    sums and means infinite (NaN when both occur) and ``std()`` NaN. Exact results beyond the float64 range are
    ``+-inf``. With no rows, sums are 0 and ``mean()``, ``mean_abs()``, ``std()`` are NaN.

    Cost: float32 input (and float64 arrays whose values are all float32 numbers) about 2-2.5 times the plain
    float64 ``A.sum(0)``, ``np.abs(A).sum(0)``, ``(A**2).sum(0)``; other float64 input about ten times slower per
    value than float32 (the pipeline's attributions are float32). Memory: an int64 vector of ``n_features`` per
    binary exponent the data occupy (a few dozen for most data), plus about 6 MiB of reused work arrays.

    Parameters
    ----------
    n_features : int
        Columns, ``>= 1``.

    Attributes
    ----------
    n_features : int
    n : int
        Rows added.
    """

    def __init__(self, n_features: int) -> None:
        if isinstance(n_features, bool) or not isinstance(n_features, int | np.integer) or n_features < 1:
            raise UsageError(f"n_features must be an integer >= 1, got {n_features!r}")
        F = self.n_features = int(n_features)
        self.n = 0
        # exponent u -> int64 (F,) coefficients c >= 0: the part is the sum over u of c * 2**u
        self._pos: dict[int, np.ndarray] = {}  # |x| of values with the sign bit clear
        self._neg: dict[int, np.ndarray] = {}  # |x| of values with the sign bit set
        self._sq_pos: dict[int, np.ndarray] = {}  # positive parts of x**2 (all of it on the float32 path)
        self._sq_neg: dict[int, np.ndarray] = {}  # magnitudes of negative Dekker error terms
        self._nan = np.zeros(F, dtype=np.int64)
        self._posinf = np.zeros(F, dtype=np.int64)
        self._neginf = np.zeros(F, dtype=np.int64)
        self._since_normalised = 0
        self._result: dict[str, np.ndarray] | None = None
        self._work: dict[str, np.ndarray] = {}

    # -------------------------------------------------------------------------------------- public surface

    def add(self, A: np.ndarray) -> None:
        """Add a block of rows.

        Parameters
        ----------
        A : ndarray of shape (n, n_features)
            Real numbers (bool, integer or float); shape (n,) is accepted when ``n_features == 1``.

        Raises
        ------
        UsageError
            A wrong shape or a non-real dtype. Nothing is added when it raises.
        """
        X = self._as_block(A)
        n = X.shape[0]
        if n == 0:
            return
        narrow = X.dtype == np.float32
        E = 256 if narrow else 2048
        F = self.n_features
        width = max(1, min(F, _TABLE_LIMIT // (2 * E)))  # columns per table
        rows = max(1, min(n, _PASS_ELEMENTS // width, 1 << 16))
        for c0 in range(0, F, width):
            for r0 in range(0, n, rows):
                part = X[r0 : r0 + rows, c0 : c0 + width]  # (k, w)
                if narrow:
                    self._add_narrow(part, c0)
                else:
                    self._add_wide(part, c0)
        self.n += n
        self._since_normalised += n
        if self._since_normalised >= _NORMALISE_EVERY:
            self._normalise()
        self._result = None

    def merge(self, other: ColumnMoments) -> ColumnMoments:
        """A new accumulator of the rows of both (exact, so commutative and associative); inputs unchanged."""
        if not isinstance(other, ColumnMoments):
            raise UsageError(f"can only merge ColumnMoments with ColumnMoments, got {type(other).__name__}")
        if other.n_features != self.n_features:
            raise UsageError(
                f"cannot merge moments of {self.n_features} and {other.n_features} columns; every worker needs the "
                "same columns"
            )
        out = ColumnMoments(self.n_features)
        out.n = self.n + other.n
        for name in ("_pos", "_neg", "_sq_pos", "_sq_neg"):
            dest = getattr(out, name)
            for src in (getattr(self, name), getattr(other, name)):
                for u, c in src.items():
                    if u in dest:
                        dest[u] += c
                    else:
                        dest[u] = c.copy()
        for name in ("_nan", "_posinf", "_neginf"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        out._since_normalised = self._since_normalised + other._since_normalised
        if out._since_normalised >= _NORMALISE_EVERY:
            out._normalise()
        return out

    @property
    def sum(self) -> np.ndarray:
        """Column sums, correctly rounded: ndarray of float64, shape (n_features,)."""
        return self._results()["sum"].copy()

    @property
    def sum_abs(self) -> np.ndarray:
        """Column sums of ``|x|``, correctly rounded: ndarray of float64, shape (n_features,)."""
        return self._results()["sum_abs"].copy()

    @property
    def sumsq(self) -> np.ndarray:
        """Column sums of squares, correctly rounded: ndarray of float64, shape (n_features,)."""
        return self._results()["sumsq"].copy()

    def mean(self) -> np.ndarray:
        """Column means, correctly rounded: ndarray of float64, shape (n_features,)."""
        return self._results()["mean"].copy()

    def mean_abs(self) -> np.ndarray:
        """Column means of ``|x|``, correctly rounded: ndarray of float64, shape (n_features,)."""
        return self._results()["mean_abs"].copy()

    def std(self) -> np.ndarray:
        """Population standard deviations (divisor n): ``sqrt`` of the correctly rounded exact variance, shape
        (n_features,)."""
        return self._results()["std"].copy()

    # -------------------------------------------------------------------------------------- internals

    def _as_block(self, A: np.ndarray) -> np.ndarray:
        X = np.asarray(A)
        if X.ndim == 1 and self.n_features == 1:
            X = X[:, None]
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise UsageError(f"expected an array of shape (n, {self.n_features}), got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise UsageError(f"moments need real numbers, got dtype {X.dtype}")
        if X.dtype.type in _NARROW_KINDS:
            return X.astype(np.float32, copy=False)  # exact: at most 24 significant bits
        X = X.astype(np.float64, copy=False)
        with np.errstate(over="ignore", invalid="ignore"):
            X32 = X.astype(np.float32)  # values beyond float32 become inf: then not equal
        if np.array_equal(X32, X):  # float32 values in a float64 array: the fast path is exact for them
            return X32
        return X

    def _nonfinite(self, part: np.ndarray, bad: np.ndarray, c0: int) -> np.ndarray:
        """Count NaN / +inf / -inf of ``part`` (k, w) per column and return a copy with them set to 0."""
        w = part.shape[1]
        self._nan[c0 : c0 + w] += np.isnan(part).sum(0)
        self._posinf[c0 : c0 + w] += (part == np.inf).sum(0)
        self._neginf[c0 : c0 + w] += (part == -np.inf).sum(0)
        return np.where(bad, part.dtype.type(0), part)

    def _absorb(self, table: np.ndarray, units: np.ndarray, dest: dict[int, np.ndarray], c0: int) -> None:
        """Add bin sums ``table`` (E, w) -- exact integers -- worth ``2**units[e]`` each into ``dest``."""
        w = table.shape[1]
        rows = np.flatnonzero(table.any(axis=1))
        for e, coef in zip(rows.tolist(), table[rows].astype(np.int64), strict=True):
            u = int(units[e])
            acc = dest.get(u)
            if acc is None:
                acc = dest[u] = np.zeros(self.n_features, dtype=np.int64)
            acc[c0 : c0 + w] += coef

    def _scratch(self, name: str, dtype: type, shape: tuple[int, int]) -> np.ndarray:
        """A reused work array (fresh temporaries of megabytes each pass cost page faults, which dominated)."""
        size = shape[0] * shape[1]
        buf = self._work.get(name)
        if buf is None or buf.size < size:
            buf = self._work[name] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_work"] = {}  # work arrays are not part of the result (nor worth pickling to a driver)
        return state

    def _add_narrow(self, part: np.ndarray, c0: int) -> None:
        """float32 values: ``x = +-m * 2**(max(e, 1) - 150)`` with ``m < 2**24``; one limb per value, two per
        square (``m**2 = hi * 2**24 + lo``). Bin sums of up to 2**29 such integers are exact in float64."""
        k, w = shape = part.shape
        e = self._scratch("e", np.uint32, shape)
        for _ in range(2):
            bits = part.view(np.uint32)
            np.right_shift(bits, 23, out=e)
            np.bitwise_and(e, 0xFF, out=e)  # (k, w) biased exponent
            if int(e.max()) < 0xFF:
                break
            part = self._nonfinite(part, ~np.isfinite(part), c0)  # NaN or +-inf somewhere (rare): once
        m = self._scratch("m", np.uint32, shape)
        t = self._scratch("t", np.uint32, shape)
        np.bitwise_and(bits, 0x7FFFFF, out=m)
        np.minimum(e, 1, out=t)
        np.left_shift(t, 23, out=t)
        np.bitwise_or(m, t, out=m)  # (k, w) integer significand
        idx = self._scratch("idx", np.intp, shape)
        np.multiply(e, 2 * w, out=idx)
        idx += np.arange(0, 2 * w, 2, dtype=np.intp)
        np.right_shift(bits, 31, out=t)
        idx += t  # (k, w) bin (exponent, column, sign)
        # int32 -> float64 is a fast conversion, (u)int64 -> float64 a slow one: limbs go through int32
        wts = self._scratch("w", np.float64, shape)
        np.copyto(wts, m.view(np.int32))
        table = np.bincount(idx.reshape(-1), weights=wts.reshape(-1), minlength=256 * 2 * w).reshape(256, w, 2)
        unit = np.maximum(np.arange(256), 1) - 150  # (256,) exponent of one unit of m
        self._absorb(table[:, :, 0], unit, self._pos, c0)
        self._absorb(table[:, :, 1], unit, self._neg, c0)
        m2 = self._scratch("m2", np.int64, shape)
        np.copyto(m2, m.view(np.int32))
        np.multiply(m2, m2, out=m2)  # (k, w) exact, < 2**48
        limb = m.view(np.int32)  # m is not needed any more
        np.right_shift(idx, 1, out=idx)  # (k, w) bin (exponent, column)
        for op, arg, add in ((np.right_shift, 24, 24), (np.bitwise_and, 0xFFFFFF, 0)):
            op(m2, arg, out=limb, casting="unsafe")  # < 2**24: fits int32
            np.copyto(wts, limb)
            table = np.bincount(idx.reshape(-1), weights=wts.reshape(-1), minlength=256 * w).reshape(256, w)
            self._absorb(table, 2 * unit + add, self._sq_pos, c0)

    def _add_limbs(self, part: np.ndarray, c0: int, dest_pos: dict, dest_neg: dict) -> None:
        """Finite float64 values ``+-m * 2**(max(e, 1) - 1075)``, ``m < 2**53`` split as ``hi * 2**26 + lo``
        (both below 2**27; bin sums of up to 2**26 of them are exact in float64). Only the exponents the
        non-zero values occupy get bins (zeros, worth nothing, go to the lowest)."""
        k, w = part.shape
        bits = part.view(np.int64)  # int64 bit operations are faster than uint64 ones
        e = (bits >> 52) & 0x7FF  # (k, w)
        m = (bits & 0xFFFFFFFFFFFFF) | (np.minimum(e, 1) << 52)  # (k, w) integer significand
        nonzero = m != 0
        if not nonzero.any():
            return
        e_lo = int(np.min(e, where=nonzero, initial=0x7FF))
        n_e = int(e.max()) - e_lo + 1  # exponents spanned
        idx = np.maximum(e, e_lo).astype(np.intp)
        idx -= e_lo
        idx *= 2 * w
        idx += np.arange(0, 2 * w, 2, dtype=np.intp)
        idx += bits < 0
        flat = idx.ravel()  # (k * w,) bin (exponent, column, sign)
        unit = np.maximum(np.arange(e_lo, e_lo + n_e), 1) - 1075  # (n_e,)
        for limb, shift in (((m >> 26), 26), ((m & 0x3FFFFFF), 0)):
            table = np.bincount(flat, weights=limb.astype(np.int32).ravel().astype(np.float64), minlength=n_e * 2 * w)
            table = table.reshape(n_e, w, 2)
            self._absorb(table[:, :, 0], unit + shift, dest_pos, c0)
            self._absorb(table[:, :, 1], unit + shift, dest_neg, c0)

    def _add_wide(self, part: np.ndarray, c0: int) -> None:
        """float64 values; squares as Dekker's exact ``p + e`` where that is exact, else exactly in Python."""
        ax = np.abs(part)
        bad = ~(ax < np.inf)  # NaN and +-inf
        if bad.any():
            part = self._nonfinite(part, bad, c0)
            ax = np.abs(part)
        self._add_limbs(part, c0, self._pos, self._neg)
        odd = (ax >= _HUGE) | ((ax < _TINY) & (ax > 0))  # squares that could overflow or underflow
        if odd.any():
            rows, cols = np.nonzero(odd)
            for v, j in zip(part[rows, cols].tolist(), cols.tolist(), strict=True):
                mant, ex = math.frexp(v)
                sig = int(abs(mant) * 2.0**53)  # v = +-sig * 2**(ex - 53)
                tz = (sig & -sig).bit_length() - 1  # drop trailing zeros: then ex - 53 + tz >= -1074
                _add_coefficient(self._sq_pos, 2 * (ex - 53 + tz), c0 + j, (sig >> tz) ** 2, self.n_features)
            part = np.where(odd, 0.0, part)
        c = part * _SPLIT  # Veltkamp: x = xh + xl, each with at most 26 significant bits
        xh = c - (c - part)
        xl = part - xh
        p = part * part  # (k, w) fl(x * x) ...
        err = xh * xh - p  # ... and its exact error: x * x = p + err
        err += 2.0 * xh * xl
        err += xl * xl
        self._add_limbs(p, c0, self._sq_pos, self._sq_neg)
        self._add_limbs(err, c0, self._sq_pos, self._sq_neg)

    def _normalise(self) -> None:
        """Carry every limb's bits above 2**32 into the limb 32 binary places up, so no int64 can overflow."""
        for d in (self._pos, self._neg, self._sq_pos, self._sq_neg):
            heap = sorted(d)  # a sorted list is a heap; carries only go upwards, to keys not yet visited
            while heap:
                u = heapq.heappop(heap)
                carry = d[u] >> 32
                if not carry.any():
                    continue
                d[u] -= carry << 32
                if u + 32 in d:
                    d[u + 32] += carry
                else:
                    d[u + 32] = carry
                    heapq.heappush(heap, u + 32)
        self._since_normalised = 0

    def _exact(self, d: dict[int, np.ndarray], low: int) -> np.ndarray:
        """A statistic as Python ints in units of ``2**-low``: object ndarray, shape (n_features,)."""
        total = np.zeros(self.n_features, dtype=object)
        for u, c in d.items():
            total = total + (c.astype(object) << (u + low))
        return total

    def _results(self) -> dict[str, np.ndarray]:
        if self._result is not None:
            return self._result
        F, n = self.n_features, self.n
        pos, neg = self._exact(self._pos, _LOW), self._exact(self._neg, _LOW)
        sq = self._exact(self._sq_pos, _LOW_SQ) - self._exact(self._sq_neg, _LOW_SQ)
        scale, scale_sq = 1 << _LOW, 1 << _LOW_SQ
        out = {k: np.empty(F) for k in ("sum", "sum_abs", "sumsq", "mean", "mean_abs", "std")}
        for j in range(F):
            s, a, q = int(pos[j]) - int(neg[j]), int(pos[j]) + int(neg[j]), int(sq[j])
            out["sum"][j] = _ratio(s, scale)
            out["sum_abs"][j] = _ratio(a, scale)
            out["sumsq"][j] = _ratio(q, scale_sq)
            if n == 0:
                out["mean"][j] = out["mean_abs"][j] = out["std"][j] = math.nan
                continue
            out["mean"][j] = _ratio(s, scale * n)
            out["mean_abs"][j] = _ratio(a, scale * n)
            var_num = q * n - s * s  # variance = var_num / (n**2 * 2**2148), exactly; >= 0
            var = _ratio(var_num, n * n * scale_sq)
            out["std"][j] = math.sqrt(var) if var < math.inf else _ratio(math.isqrt(var_num), n * scale)
        nan, pinf, ninf = self._nan > 0, self._posinf > 0, self._neginf > 0
        for key in ("sum", "mean"):
            out[key][pinf] = math.inf
            out[key][ninf] = -math.inf
            out[key][(pinf & ninf) | nan] = math.nan
        for key in ("sum_abs", "mean_abs", "sumsq"):
            out[key][pinf | ninf] = math.inf
            out[key][nan] = math.nan
        out["std"][nan | pinf | ninf] = math.nan
        if n == 0:
            for key in ("mean", "mean_abs", "std"):
                out[key][:] = math.nan
        self._result = out
        return out
