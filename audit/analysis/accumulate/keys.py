"""Row keys for sampling: a SplitMix64 hash of ``(seed, row_id)``.

The hash
--------
``key(seed, r) = mix64(mix64(seed) + (r + 1) * 0x9E3779B97F4A7C15 mod 2**64)``: output number ``r + 1`` of the
SplitMix64 generator started from state ``mix64(seed)`` (Steele, Lea & Flood, "Fast splittable pseudorandom
number generators", OOPSLA 2014; ``mix64`` is the finaliser of Vigna's ``splitmix64.c``, constants
``0xBF58476D1CE4E5B9``, ``0x94D049BB133111EB``, shifts 30, 27, 31). For a fixed seed the map from row id to key is
a bijection of 64-bit integers (an odd multiplier, an offset and an invertible mixer), so distinct row ids never
tie; comparing 64-bit keys orders rows as their uniform variates ``(key >> 11) * 2**-53`` (see :func:`row_uniforms`)
would, with ties of those broken by the low 11 bits.
"""

from __future__ import annotations

import numpy as np

from audit.errors import UsageError

__all__ = ["row_keys", "row_uniforms", "as_row_ids", "check_seed"]

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


# ------------------------------------------------------------------------------------------------ hashing


def _mix64_int(z: int) -> int:
    """SplitMix64's finaliser on one Python int (mod 2**64)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place on a uint64 array (numpy array arithmetic wraps mod 2**64)."""
    z ^= z >> np.uint64(30)
    z *= np.uint64(_MIX1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_MIX2)
    z ^= z >> np.uint64(31)
    return z


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise UsageError(f"seed must be an integer, got {seed!r}")
    return int(seed)


def as_row_ids(row_ids: object) -> np.ndarray:
    ids = np.asarray(row_ids)
    if ids.ndim != 1:
        raise UsageError(f"row_ids must be a 1-D array of integers, got shape {ids.shape}")
    if ids.dtype.kind not in "iu":
        if ids.size == 0:
            return np.empty(0, dtype=np.int64)
        raise UsageError(f"row_ids must be integers (the row's index in the data), got dtype {ids.dtype}")
    if ids.dtype == np.uint64 and ids.size and int(ids.max()) > np.iinfo(np.int64).max:
        raise UsageError("row_ids must fit in int64; pass row indices below 2**63")
    return ids.astype(np.int64, copy=False)


def row_keys(seed: int, row_ids: np.ndarray) -> np.ndarray:
    """The sampling key of each row: output ``row_id + 1`` of SplitMix64 started from ``mix64(seed)``.

    Parameters
    ----------
    seed : int
        Any integer; taken mod 2**64.
    row_ids : ndarray of int, shape (n,)
        Row identifiers (int64; negative ids are taken mod 2**64).

    Returns
    -------
    ndarray of uint64, shape (n,)
        Distinct for distinct row ids (the map is a bijection for a fixed seed).
    """
    ids = as_row_ids(row_ids)
    state = np.uint64(_mix64_int(check_seed(seed) & _MASK64))
    z = ids.astype(np.uint64)  # two's complement, mod 2**64
    z += np.uint64(1)
    z *= np.uint64(_GAMMA)
    z += state
    return _mix64(z)


def row_uniforms(seed: int, row_ids: np.ndarray) -> np.ndarray:
    """The keys of :func:`row_keys` as uniform variates in [0, 1): ``(key >> 11) * 2**-53``, shape (n,) float64."""
    return (row_keys(seed, row_ids) >> np.uint64(11)).astype(np.float64) * 2.0**-53
