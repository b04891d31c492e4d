"""A uniform sample of rows that is a function of the set of rows alone (a bottom-k sketch on the row keys)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from audit.analysis.accumulate.keys import as_row_ids, check_seed, row_keys
from audit.errors import UsageError

__all__ = ["RowSample"]

# ------------------------------------------------------------------------------------------------ RowSample


def _canonical(a: np.ndarray) -> np.ndarray:
    """Text arrays narrowed to the longest value they hold, so the dtype depends on the rows, not on the blocks."""
    if a.dtype.kind in "US":
        width = int(np.char.str_len(a).max()) if a.size else 0
        return a.astype(np.dtype((a.dtype.type, max(width, 1))))
    return a


class RowSample:
    """A uniform sample of at most ``capacity`` rows, the same whatever the blocks, their order and the workers.

    Each row offered gets the key :func:`row_keys` ``(seed, row_id)``; the sample holds the ``capacity`` rows with
    the smallest keys among all distinct rows offered (ties cannot occur between distinct ids). As the keys are
    independent uniform variates (a hash, modelled as random), every subset of ``capacity`` rows is equally likely:
    a uniform sample without replacement. Rows are stored as named arrays sharing the first dimension.

    Parameters
    ----------
    capacity : int
        Most rows kept, ``>= 1``. Memory: ``capacity`` rows of every array (grown as needed, never beyond), plus
        the block being added.
    seed : int
        Hash seed; the sample is a function of ``(seed, set of row ids)``.

    Attributes
    ----------
    capacity, seed : int
        As given.
    seen : int
        Rows offered, all blocks and merged samples together.

    Notes
    -----
    Row ids must be unique over everything offered. A repeated id is a :class:`~audit.errors.UsageError` when it
    repeats within one block or when its row would be in the sample; repeats of rows that fall outside the sample
    cannot change the sample and are only counted in ``seen``. Array dtypes must be the same in every block, except
    text (``U``/``S``) whose width may vary; :meth:`get` narrows text to the longest value kept.
    """

    def __init__(self, capacity: int, seed: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int | np.integer) or capacity < 1:
            raise UsageError(f"capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = int(capacity)
        self.seed = check_seed(seed)
        self.seen = 0
        self._n = 0  # rows held
        self._ids = np.empty(0, dtype=np.int64)  # (slots,) row id per storage slot
        self._data: dict[str, np.ndarray] = {}  # name -> (slots, ...) storage
        self._spec: dict[str, tuple[np.dtype, tuple[int, ...]]] | None = None
        self._sorted_keys = np.empty(0, dtype=np.uint64)  # (n,) keys held, ascending
        self._sorted_slots = np.empty(0, dtype=np.intp)  # (n,) slot of each sorted key
        self._order: np.ndarray | None = None  # (n,) slots in row-id order, cached
        self._cache: dict[str, np.ndarray] = {}

    # -------------------------------------------------------------------------------------- public surface

    @property
    def complete(self) -> bool:
        """True when every row offered is in the sample (``seen <= capacity``)."""
        return self.seen <= self.capacity

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the arrays held, sorted."""
        return tuple(sorted(self._spec)) if self._spec else ()

    def __len__(self) -> int:
        return self._n

    @property
    def row_ids(self) -> np.ndarray:
        """Row ids held, ascending: ndarray of int64, shape (n_kept,)."""
        return self._ids[self._slots_by_id()]

    @property
    def keys(self) -> np.ndarray:
        """Keys of the rows held in row-id order: ndarray of uint64, shape (n_kept,)."""
        return row_keys(self.seed, self.row_ids)

    def get(self, name: str) -> np.ndarray:
        """The sampled rows of array ``name`` in row-id order, shape (n_kept, ...).

        The array is cached and shared between calls: copy it before writing to it.

        Raises
        ------
        KeyError
            When no array of that name was offered (as :class:`audit.analysis.streaming.Reservoir` does).
        """
        if not self._spec or name not in self._spec:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = _canonical(self._data[name][self._slots_by_id()])
        return self._cache[name]

    def add(self, row_ids: np.ndarray, **arrays: np.ndarray) -> None:
        """Offer one block of rows.

        Parameters
        ----------
        row_ids : ndarray of int, shape (n,)
            Unique row identifiers (for a file: its 0-based row index).
        **arrays : ndarray of shape (n, ...)
            Named per-row arrays; the same names, dtypes and trailing shapes in every block.

        Raises
        ------
        UsageError
            Lengths that differ from ``len(row_ids)``, names or dtypes that differ from earlier blocks, a row id
            repeated in the block or already in the sample. The sample is unchanged when it raises.
        """
        ids = as_row_ids(row_ids)
        n = ids.shape[0]
        arrs = self._check_arrays(arrays, n)
        if n > 1:
            s = np.sort(ids)
            dup = np.flatnonzero(s[1:] == s[:-1])
            if dup.size:
                raise UsageError(
                    f"row id {int(s[dup[0]])} appears more than once in one block; give every row its own id"
                )
        self._offer(row_keys(self.seed, ids), ids, arrs)
        self.seen += n

    def merge(self, other: RowSample) -> RowSample:
        """A new sample of the rows offered to either sample; ``self`` and ``other`` are unchanged.

        Equal to one sample offered all those rows, so merging is commutative and associative.

        Raises
        ------
        UsageError
            Different ``capacity`` or ``seed``, incompatible arrays, or a row id held by both.
        """
        if not isinstance(other, RowSample):
            raise UsageError(f"can only merge a RowSample with a RowSample, got {type(other).__name__}")
        if (other.capacity, other.seed) != (self.capacity, self.seed):
            raise UsageError(
                f"cannot merge samples with different capacity or seed ({self.capacity}, {self.seed}) and "
                f"({other.capacity}, {other.seed}); build every worker's sample with the same ones"
            )
        out = RowSample(self.capacity, self.seed)
        for part in (self, other):
            if part._spec is None:
                continue
            arrs = out._check_arrays({k: v[: part._n] for k, v in part._data.items()}, part._n)
            slots = part._sorted_slots
            out._offer(
                part._sorted_keys.copy(), part._ids[slots], {k: v[slots] for k, v in arrs.items()}, ordered=True
            )
            out.seen += part.seen
        return out

    def __getstate__(self) -> dict:
        """Pickled (e.g. sent from a worker to the driver) without caches or unused storage."""
        state = self.__dict__.copy()
        state["_ids"] = self._ids[: self._n].copy()
        state["_data"] = {k: v[: self._n].copy() for k, v in self._data.items()}
        state["_order"], state["_cache"] = None, {}
        return state

    # -------------------------------------------------------------------------------------- internals

    def _slots_by_id(self) -> np.ndarray:
        if self._order is None:
            self._order = np.argsort(self._ids[: self._n], kind="stable")
        return self._order

    def _check_arrays(self, arrays: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
        arrs = {str(k): np.asarray(v) for k, v in arrays.items()}
        for k, a in arrs.items():
            if a.ndim == 0 or a.shape[0] != n:
                raise UsageError(
                    f"array '{k}' has {a.shape[0] if a.ndim else 'no'} rows but row_ids has {n}; pass one value "
                    "per row"
                )
        spec = {k: (a.dtype, a.shape[1:]) for k, a in arrs.items()}
        if self._spec is None:
            return arrs
        if set(spec) != set(self._spec):
            raise UsageError(
                f"arrays {sorted(spec)} differ from the earlier blocks' {sorted(self._spec)}; pass the same arrays "
                "with every block"
            )
        for k, (dt, shape) in spec.items():
            dt0, shape0 = self._spec[k]
            same_text = dt.kind in "US" and dt.kind == dt0.kind
            if (dt != dt0 and not same_text) or shape != shape0:
                raise UsageError(
                    f"array '{k}' is {dt} with row shape {shape} here but {dt0} with row shape {shape0} in earlier "
                    "blocks; pass one dtype and shape"
                )
        return arrs

    def _reserve(self, rows: int, arrs: Mapping[str, np.ndarray]) -> None:
        """Storage for ``rows`` slots (grown geometrically, never beyond capacity); text widened as needed."""
        if self._spec is None:
            self._spec = {k: (a.dtype, a.shape[1:]) for k, a in arrs.items()}
            self._data = {k: np.empty((0, *a.shape[1:]), dtype=a.dtype) for k, a in arrs.items()}
        for k, a in arrs.items():
            buf = self._data[k]
            if a.dtype.kind in "US" and a.dtype.itemsize > buf.dtype.itemsize:
                self._data[k] = buf.astype(a.dtype)
                self._spec[k] = (a.dtype, self._spec[k][1])
        size = self._ids.shape[0]
        if rows <= size:
            return
        new = min(self.capacity, max(rows, 2 * size))
        ids = np.empty(new, dtype=np.int64)
        ids[:size] = self._ids
        self._ids = ids
        for k, buf in self._data.items():
            grown = np.empty((new, *buf.shape[1:]), dtype=buf.dtype)
            grown[:size] = buf
            self._data[k] = grown

    def _offer(
        self, keys: np.ndarray, ids: np.ndarray, arrs: dict[str, np.ndarray], *, ordered: bool = False
    ) -> None:
        """Merge validated rows (distinct ids) into the sample. ``ordered``: ``keys`` already ascending."""
        C = self.capacity
        if self._spec is None:
            self._reserve(0, arrs)
        sel = None  # (m,) rows of ``arrs`` still in play; the data are gathered once, at the end
        if self._n == C:  # rows above the current threshold can never enter
            keep = np.flatnonzero(keys <= self._sorted_keys[-1])
            if keep.size < keys.size:
                sel, keys, ids = keep, keys[keep], ids[keep]
        m = keys.shape[0]
        if m == 0:
            return
        if not ordered:
            order = np.argsort(keys)
            keys, ids = keys[order], ids[order]
            sel = order if sel is None else sel[order]
        old_keys, old_slots, n_old = self._sorted_keys, self._sorted_slots, self._n
        pos = np.searchsorted(old_keys, keys)  # (m,) insertion points among the keys held
        if n_old:
            inside = pos < n_old
            clash = np.zeros(m, dtype=bool)
            clash[inside] = old_keys[pos[inside]] == keys[inside]
            if clash.any():
                raise UsageError(
                    f"row id {int(ids[np.argmax(clash)])} was offered twice (it is already in the sample); give "
                    "every row one id and offer each row once"
                )
        total = n_old + m
        n_new = min(C, total)
        at = pos + np.arange(m)  # (m,) position of each new key in the merged order
        is_new = np.zeros(total, dtype=bool)
        is_new[at] = True
        merged_keys = np.empty(total, dtype=np.uint64)
        merged_keys[at] = keys
        merged_keys[~is_new] = old_keys
        merged_slots = np.empty(total, dtype=np.intp)
        merged_slots[~is_new] = old_slots
        # slots freed by held rows pushed out, then fresh slots while the sample grows
        freed = merged_slots[n_new:][~is_new[n_new:]]
        fresh = np.arange(n_old, n_new, dtype=np.intp)
        slots = np.concatenate([freed, fresh])
        take = np.flatnonzero(at < n_new)  # new rows that enter, ascending key
        self._reserve(n_new, arrs)
        self._ids[slots] = ids[take]
        rows = take if sel is None else sel[take]
        for k, a in arrs.items():
            self._data[k][slots] = a[rows]
        merged_slots[at[take]] = slots
        self._sorted_keys = merged_keys[:n_new].copy()
        self._sorted_slots = merged_slots[:n_new].copy()
        self._n = n_new
        self._order = None
        self._cache = {}
