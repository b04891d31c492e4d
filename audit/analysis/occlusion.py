"""Occlusion evidence for ``spatial_leakage``: does painting over a region move the model's predictions more
than painting over random regions of the same size?

Attribution mass alone does not show that a model *uses* a place: IG against a black or blurred baseline puts
mass on edges and corners that are merely far from the baseline, and max pooling concentrates gradients on a few
border pixels (Sturmfels, Lundberg & Lee, Distill 2020; Adebayo et al., "Sanity checks for saliency maps",
NeurIPS 2018). A deletion test asks the model instead (Samek et al., "Evaluating the visualization of what a deep
neural network has learned", IEEE TNNLS 2017; Zeiler & Fergus, "Visualizing and understanding convolutional
networks", ECCV 2014, fig. 7): the region is replaced by a fill and the probability of the explained class is
measured again.

Per image ``i`` with explained class ``c_i`` (its predicted class, or the region's class for a per-class region)
and one fill (the run's baseline, or a local blur of the surroundings):

- ``drop_i = p_i(c_i) - p_i^occluded(c_i)``: the region occluded;
- ``control_i``: the mean drop over ``K`` rectangles of the region's shape at random places that do not touch
  it, occluded with the same fill (what painting over any patch of that size does: a control for the fill
  itself and for the model's sensitivity to any occlusion);
- ``excess_i = drop_i - control_i``, paired per image.

:func:`occlusion_stat` summarises one (region, fill): the mean drop and the mean excess with percentile
bootstrap 95% intervals over images (Efron & Tibshirani 1993, ch. 13), and the share of images whose predicted
class flips, with its Wilson interval, next to the controls' flip share. The detector reads the fill whose
excess has the smaller lower bound (:func:`deciding_fill`): a region is used when every fill shows it.

Nothing here runs a model: :mod:`audit.modalities.image_occlusion` makes the fills and the forwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from audit.analysis.tokens import wilson
from audit.errors import UsageError

__all__ = ["OcclusionStat", "occlusion_stat", "deciding_fill"]

_ALPHA = 0.05


@dataclass(frozen=True)
class OcclusionStat:
    """What occluding one candidate region does to the predictions of the images it was measured on.

    Attributes
    ----------
    region : str
        ``"top-right corner"``, ...
    group : str
        The class the region was found in ("" for the whole data set).
    fill : str
        ``"black"`` / ``"blur"`` / ``"noise"`` / ``"mean"`` (the run's baseline) or ``"local blur"``.
    n_images : int
        Images occluded (a seeded sample of at most ``OCCLUSION_IMAGES``).
    n_controls : int
        Random same-size regions per image.
    p_before : float
        Mean probability of the explained class before occlusion.
    drop, drop_low, drop_high : float
        Mean probability drop with the region occluded, bootstrap 95% interval.
    control_drop : float
        Mean drop with random regions of the same size occluded.
    excess, excess_low, excess_high : float
        Mean paired ``drop - control``, bootstrap 95% interval.
    flip_rate, flip_low, flip_high : float
        Share of images whose predicted class changes with the region occluded (Wilson 95%).
    control_flip_rate : float
        The same with the random regions (mean over them).
    """

    region: str
    group: str
    fill: str
    n_images: int
    n_controls: int
    p_before: float
    drop: float
    drop_low: float
    drop_high: float
    control_drop: float
    excess: float
    excess_low: float
    excess_high: float
    flip_rate: float
    flip_low: float
    flip_high: float
    control_flip_rate: float


def _boot_mean(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> tuple[float, float, float]:
    m = float(values.mean())
    if n_boot <= 0 or values.size < 2:
        return m, m, m
    idx = rng.integers(0, values.size, size=(n_boot, values.size))  # (n_boot, n)
    means = values[idx].mean(axis=1)
    lo, hi = np.quantile(means, [_ALPHA / 2, 1 - _ALPHA / 2])
    return m, float(min(lo, m)), float(max(hi, m))


def occlusion_stat(
    region: str,
    group: str,
    fill: str,
    *,
    p_before: object,
    pred_before: object,
    p_region: object,
    pred_region: object,
    p_control: object,
    pred_control: object,
    n_boot: int = 200,
    seed: int = 0,
) -> OcclusionStat:
    """Summarise one (region, fill) occlusion (see the module notes).

    Parameters
    ----------
    region, group, fill : str
        What was occluded, in which class ("" = all images), with what.
    p_before : array of shape (n,)
        Probability of each image's explained class, unoccluded.
    pred_before : array of shape (n,)
        Predicted class, unoccluded.
    p_region, pred_region : arrays of shape (n,)
        The same with the region occluded.
    p_control, pred_control : arrays of shape (n, K)
        The same with each of ``K`` random regions of the region's shape occluded.
    n_boot : int, default 200
        Bootstrap replicates over images (0: intervals collapse to the point estimates).
    seed : int, default 0

    Returns
    -------
    OcclusionStat
    """
    pb = np.asarray(p_before, dtype=np.float64).reshape(-1)
    n = pb.size
    yb = np.asarray(pred_before).reshape(-1)
    pr = np.asarray(p_region, dtype=np.float64).reshape(-1)
    yr = np.asarray(pred_region).reshape(-1)
    pc = np.asarray(p_control, dtype=np.float64)
    yc = np.asarray(pred_control)
    if n < 1 or yb.size != n or pr.size != n or yr.size != n:
        raise UsageError(f"occlusion needs one value per image before and after, got {n}, {yb.size}, {pr.size}")
    if pc.ndim != 2 or pc.shape[0] != n or pc.shape[1] < 1 or yc.shape != pc.shape:
        raise UsageError(f"control occlusions must have shape ({n}, K) with K >= 1, got {pc.shape}")
    if not (np.isfinite(pb).all() and np.isfinite(pr).all() and np.isfinite(pc).all()):
        raise UsageError("occlusion probabilities hold NaN or infinite values; check the model's outputs")
    rng = np.random.default_rng(seed)
    drop_i = pb - pr  # (n,)
    control_i = (pb[:, None] - pc).mean(axis=1)  # (n,)
    drop, drop_lo, drop_hi = _boot_mean(drop_i, n_boot, rng)
    excess, ex_lo, ex_hi = _boot_mean(drop_i - control_i, n_boot, rng)
    flips = int((yr != yb).sum())
    rate, f_lo, f_hi = wilson(flips, n)
    return OcclusionStat(
        region=region, group=group, fill=fill, n_images=n, n_controls=int(pc.shape[1]), p_before=float(pb.mean()),
        drop=drop, drop_low=drop_lo, drop_high=drop_hi, control_drop=float(control_i.mean()), excess=excess,
        excess_low=ex_lo, excess_high=ex_hi, flip_rate=rate, flip_low=f_lo, flip_high=f_hi,
        control_flip_rate=float((yc != yb[:, None]).mean()),
    )  # fmt: skip


def deciding_fill(stats: list[OcclusionStat] | tuple[OcclusionStat, ...]) -> OcclusionStat:
    """Of one region's fills, the one whose excess drop has the smallest lower bound (ties: the smaller mean).

    A region counts as used only when *every* fill shows it: painting a region black can itself create a
    feature (a dark square against the zero padding of the convolutions moves a max-pooling network), and a
    blur can leave a mark's colour in place; a mark the model reads is gone under both."""
    if not stats:
        raise UsageError("deciding_fill needs at least one occlusion result")
    return min(stats, key=lambda s: (s.excess_low if math.isfinite(s.excess_low) else -math.inf, s.excess))
