"""Attribution heatmaps for images: per-image maps, data-set and per-class mean maps, channel shares.

A pixel's attribution is the sum of |attribution| over its channels (the usual channel reduction for IG
saliency, e.g. Sundararajan et al. 2017, fig. 2). For display a map is clipped at its 99th percentile, so a
few extreme pixels do not turn the rest black, and scaled to [0, 1] (Smilkov et al., "SmoothGrad", 2017, use
the same outlier capping).

Mean maps average *mass-normalised* maps: each image's map is divided by its total |attribution| first, so
every image counts once whatever its logit scale, and a mean map reads as "where the attribution mass sits
on average". Channel shares average each image's share per channel the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from audit.errors import UsageError

__all__ = [
    "CLIP_PERCENTILE",
    "MAX_SIDE",
    "reduce_channels",
    "clip_normalize",
    "mass_normalize",
    "downsample",
    "channel_mass",
    "channel_shares",
    "MapAccumulator",
]

CLIP_PERCENTILE = 99.0
MAX_SIDE = 56  # long side of the maps kept in the results record


def _as_array(a: object, ndim: Sequence[int], what: str) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor: the caller may pass one, this module does not import torch
        a = a.detach().cpu().numpy()
    arr = np.asarray(a)
    if arr.ndim not in ndim:
        raise UsageError(f"{what} must have {' or '.join(str(d) for d in ndim)} dimensions, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise UsageError(f"{what} holds NaN or infinite values; check the model's outputs (try --dtype float64)")
    return arr


def reduce_channels(attributions: object) -> np.ndarray:
    """Sum of |attribution| over channels.

    Parameters
    ----------
    attributions : ndarray (or torch Tensor) of shape (n, C, H, W)

    Returns
    -------
    ndarray of shape (n, H, W), float64, >= 0
    """
    a = _as_array(attributions, (4,), "attributions")
    return np.abs(a).sum(axis=1, dtype=np.float64)  # (n, H, W)


def clip_normalize(maps: object, percentile: float = CLIP_PERCENTILE) -> np.ndarray:
    """Clip each map at its ``percentile`` and scale it to [0, 1].

    Parameters
    ----------
    maps : array of shape (H, W) or (n, H, W), values >= 0
    percentile : float, default 99

    Returns
    -------
    ndarray of the same shape, in [0, 1]
        A map whose percentile is 0 (almost all zeros) is scaled by its maximum instead; an all-zero map stays 0.
    """
    m = _as_array(maps, (2, 3), "maps")
    if not 0 < percentile <= 100:
        raise UsageError(f"percentile must be in (0, 100], got {percentile}")
    single = m.ndim == 2
    m3 = np.abs(m[None] if single else m).astype(np.float64)  # (n, H, W)
    flat = m3.reshape(m3.shape[0], -1)  # (n, H * W)
    cap = np.percentile(flat, percentile, axis=1)  # (n,)
    cap = np.where(cap > 0, cap, flat.max(axis=1))
    scale = np.where(cap > 0, cap, 1.0)[:, None, None]
    out = np.clip(m3 / scale, 0.0, 1.0)
    return out[0] if single else out


def mass_normalize(maps: object) -> np.ndarray:
    """Divide each map by its total, so it sums to 1 (an all-zero map stays 0).

    Parameters
    ----------
    maps : array of shape (n, H, W), values >= 0

    Returns
    -------
    ndarray of shape (n, H, W), float64
    """
    m = np.abs(_as_array(maps, (3,), "maps")).astype(np.float64)
    total = m.sum(axis=(1, 2), keepdims=True)  # (n, 1, 1)
    return m / np.where(total > 0, total, 1.0)


def downsample(maps: object, max_side: int = MAX_SIDE) -> np.ndarray:
    """Area-average maps so the long side is at most ``max_side`` (unchanged when already small enough).

    Parameters
    ----------
    maps : array of shape (H, W) or (n, H, W)
    max_side : int, default 56

    Returns
    -------
    ndarray of shape (h, w) or (n, h, w), float64, ``max(h, w) <= max_side``
        Area averaging keeps the mean of the map, so mass shares of regions survive.
    """
    m = _as_array(maps, (2, 3), "maps")
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise UsageError(f"max_side must be a positive integer, got {max_side!r}")
    single = m.ndim == 2
    m3 = (m[None] if single else m).astype(np.float64)  # (n, H, W)
    h, w = m3.shape[1:]
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        m3 = _adaptive_mean(m3, max(1, round(h * scale)), max(1, round(w * scale)))  # (n, oh, ow)
    return m3[0] if single else m3


def _adaptive_mean(m: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Mean over the cells of an (oh, ow) grid laid on (n, H, W) maps, with the cell bounds of torch's
    ``adaptive_avg_pool2d`` (``floor(i * H / oh)`` to ``ceil((i + 1) * H / oh)``), via an integral image."""
    n, h, w = m.shape
    integral = np.zeros((n, h + 1, w + 1), dtype=np.float64)
    integral[:, 1:, 1:] = m.cumsum(axis=1).cumsum(axis=2)  # (n, H + 1, W + 1)
    i, j = np.arange(oh), np.arange(ow)
    r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)  # (oh,) each
    c0, c1 = (j * w) // ow, -((-(j + 1) * w) // ow)  # (ow,) each
    total = (
        integral[:, r1[:, None], c1[None, :]]
        - integral[:, r0[:, None], c1[None, :]]
        - integral[:, r1[:, None], c0[None, :]]
        + integral[:, r0[:, None], c0[None, :]]
    )  # (n, oh, ow)
    return total / ((r1 - r0)[:, None] * (c1 - c0)[None, :])


def channel_mass(attributions: object) -> tuple[np.ndarray, np.ndarray]:
    """Per-image attribution of each channel.

    Parameters
    ----------
    attributions : ndarray (or torch Tensor) of shape (n, C, H, W)

    Returns
    -------
    abs_mass : ndarray of shape (n, C)
        Sum of |attribution| over the channel's pixels.
    signed : ndarray of shape (n, C)
        Sum of the signed attribution over the channel's pixels.
    """
    a = _as_array(attributions, (4,), "attributions").astype(np.float64)
    return np.abs(a).sum(axis=(2, 3)), a.sum(axis=(2, 3))


def channel_shares(abs_mass: object, names: Sequence[str]) -> dict[str, float]:
    """Mean over images of each channel's share of the image's |attribution|.

    Parameters
    ----------
    abs_mass : array of shape (n, C)
        From :func:`channel_mass`.
    names : sequence of str, length C

    Returns
    -------
    dict
        Channel name -> share; the shares sum to 1 (all 0 when no image has any attribution).
    """
    m = np.abs(_as_array(abs_mass, (2,), "channel mass"))
    if len(names) != m.shape[1]:
        raise UsageError(f"{m.shape[1]} channels but {len(names)} channel names; pass one name per channel")
    total = m.sum(axis=1, keepdims=True)  # (n, 1)
    keep = total[:, 0] > 0
    if not keep.any():
        return {str(c): 0.0 for c in names}
    shares = (m[keep] / total[keep]).mean(axis=0)  # (C,)
    return {str(c): float(v) for c, v in zip(names, shares, strict=True)}


class MapAccumulator:
    """Streaming mean of mass-normalised maps over a data set and per group (class).

    Parameters
    ----------
    shape : (H, W)
    n_groups : int
        Groups are 0 .. n_groups - 1; a group of -1 counts only towards the overall mean.
    """

    def __init__(self, shape: tuple[int, int], n_groups: int) -> None:
        self.total = np.zeros(shape, dtype=np.float64)  # (H, W)
        self.count = 0
        self.group_total = np.zeros((max(n_groups, 0), *shape), dtype=np.float64)  # (G, H, W)
        self.group_count = np.zeros(max(n_groups, 0), dtype=np.int64)  # (G,)

    def add(self, mass_maps: np.ndarray, groups: Sequence[int] | np.ndarray) -> None:
        """Add mass-normalised maps of shape (n, H, W) with their group per image (n,)."""
        g = np.asarray(groups, dtype=np.int64).reshape(-1)
        if mass_maps.shape[1:] != self.total.shape or g.shape[0] != mass_maps.shape[0]:
            raise UsageError(
                f"maps of shape {mass_maps.shape} with {g.shape[0]} groups do not fit an accumulator of shape "
                f"{self.total.shape}"
            )
        self.total += mass_maps.sum(axis=0)
        self.count += mass_maps.shape[0]
        ok = (g >= 0) & (g < self.group_count.shape[0])
        if ok.any():
            np.add.at(self.group_total, g[ok], mass_maps[ok])
            np.add.at(self.group_count, g[ok], 1)

    def mean(self) -> np.ndarray:
        """Mean map (H, W); zeros before anything was added."""
        return self.total / max(self.count, 1)

    def group_means(self) -> dict[int, np.ndarray]:
        """Mean map per group that received at least one image: group -> (H, W)."""
        return {int(k): self.group_total[k] / c for k, c in enumerate(self.group_count) if c > 0}
