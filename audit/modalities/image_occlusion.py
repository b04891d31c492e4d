"""Occlusion of the candidate regions of ``spatial_leakage`` (a mixin of :class:`audit.modalities.image.ImageModality`).

For each candidate region (from the attribution maps, :func:`audit.findings.spatial.candidate_regions`) a seeded
sample of at most :data:`OCCLUSION_IMAGES` images is read again (the images of the region's class for a per-class
region, else all), and the model is run on them:

- unoccluded;
- with the region replaced by each fill: the run's baseline (black, the blurred image, one noise draw, the mean
  image) and a *local blur*: the region filled from its surroundings by normalised convolution (a Gaussian blur
  that ignores the region's own pixels, Knutsson & Westin, CVPR 1993), so whatever sits inside is gone and the
  colours around it continue;
- with :data:`CONTROLS` rectangles of the region's shape at random places that do not touch it (per image),
  occluded with the same fills.

That is ``n * (1 + 2 * (1 + CONTROLS))`` forwards per candidate, in batches of the sample; the numbers are
summarised by :func:`audit.analysis.occlusion.occlusion_stat`. Candidates are at most :data:`MAX_CANDIDATES`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from audit.analysis.occlusion import OcclusionStat, occlusion_stat
from audit.attribution.image_baselines import make_image_baseline
from audit.findings.spatial import Candidate, border_regions

__all__ = ["ImageOcclusion", "OCCLUSION_IMAGES", "CONTROLS", "MAX_CANDIDATES", "local_blur", "control_boxes"]

OCCLUSION_IMAGES = 64  # images occluded per candidate region
CONTROLS = 4  # random same-size regions per image
MAX_CANDIDATES = 6  # candidate regions occluded (most enriched first)


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _gauss(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with zero padding of (n, C, H, W)."""
    n, c, h, w = x.shape
    out = x.reshape(n * c, 1, h, w)
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    out = torch.nn.functional.conv2d(out, k.view(1, 1, -1, 1), padding=(radius, 0))
    out = torch.nn.functional.conv2d(out, k.view(1, 1, 1, -1), padding=(0, radius))
    return out.reshape(n, c, h, w)


def local_blur(x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Each image with its masked pixels filled from their surroundings (normalised convolution).

    Parameters
    ----------
    x : Tensor of shape (n, C, H, W)
    masks : bool Tensor of shape (n, H, W)
        True inside the region to fill; one rectangle per image.

    Returns
    -------
    Tensor of shape (n, C, H, W)
        Equal to ``x`` outside the masks. Inside, a Gaussian-weighted mean of the unmasked pixels (sigma = half
        the region's longer side, computed at a resolution reduced so the kernel stays small); where no unmasked
        pixel is near, the image's mean unmasked colour.
    """
    n, c, h, w = x.shape
    m = masks.to(x.dtype).unsqueeze(1)  # (n, 1, H, W)
    keep = 1.0 - m
    side = int(max(masks.any(dim=2).sum(dim=1).max(), masks.any(dim=1).sum(dim=1).max()))
    sigma = max(1.0, side / 2.0)
    f = max(1, int(sigma // 3))  # work at 1/f resolution so the kernel is at most ~9 pixels wide
    num, den = x * keep, keep
    if f > 1:
        num = torch.nn.functional.avg_pool2d(num, f, ceil_mode=True)
        den = torch.nn.functional.avg_pool2d(den, f, ceil_mode=True)
    num, den = _gauss(num, sigma / f), _gauss(den, sigma / f)
    if f > 1:
        num = torch.nn.functional.interpolate(num, size=(h, w), mode="bilinear", align_corners=False)
        den = torch.nn.functional.interpolate(den, size=(h, w), mode="bilinear", align_corners=False)
    mean_colour = (x * keep).sum(dim=(2, 3), keepdim=True) / keep.sum(dim=(2, 3), keepdim=True).clamp_min(1)
    filled = torch.where(den > 1e-3, num / den.clamp_min(1e-3), mean_colour.expand_as(x))
    return torch.where(m.bool(), filled, x)


def control_boxes(
    h: int, w: int, box: tuple[int, int, int, int], n: int, k: int, rng: np.random.Generator
) -> np.ndarray:
    """Top-left corners of ``k`` random rectangles of ``box``'s shape per image, not touching ``box``.

    Returns
    -------
    ndarray of shape (n, k, 2), int (row, column)
        Uniform over the places that do not overlap the box (over all places when there are none).
    """
    r0, r1, c0, c1 = box
    bh, bw = r1 - r0, c1 - c0
    rows, cols = np.mgrid[0 : h - bh + 1, 0 : w - bw + 1]
    apart = (rows + bh <= r0) | (rows >= r1) | (cols + bw <= c0) | (cols >= c1)
    places = np.stack([rows[apart], cols[apart]], axis=1) if apart.any() else np.stack([rows.ravel(), cols.ravel()], 1)
    return places[rng.integers(0, len(places), size=(n, k))]


class ImageOcclusion:
    """The occlusion stage of an image audit (a mixin: see the module notes)."""

    def occlusion(self, candidates: list[Candidate]) -> tuple[OcclusionStat, ...]:
        """Occlusion evidence for each candidate region (at most :data:`MAX_CANDIDATES`), every fill."""
        out: list[OcclusionStat] = []
        h, w = self.hw
        masks = border_regions(h, w)
        chosen = candidates[:MAX_CANDIDATES]
        for j, cand in enumerate(chosen):
            where = f", class '{cand.group_name}'" if cand.group_name is not None else ""
            self.step(f"occluding the {cand.region}{where} ({j + 1} of {len(chosen)} candidate regions)")
            out += self._occlude(cand, _box(masks[cand.region]), seed=self.cfg.seed * 7919 + j)
        if len(candidates) > len(chosen):
            self.notes.append(f"occlusion checked the {len(chosen)} most enriched of {len(candidates)} candidate "
                              "regions; the rest are judged on attribution alone")  # fmt: skip
        return tuple(out)

    def _occlude(self, cand: Candidate, box: tuple[int, int, int, int], *, seed: int) -> list[OcclusionStat]:
        rng = np.random.default_rng(seed)
        pool = np.arange(len(self.images)) if cand.group is None else np.flatnonzero(self.target == cand.group)
        if pool.size == 0:
            return []
        idx = np.sort(rng.choice(pool, size=min(OCCLUSION_IMAGES, pool.size), replace=False))
        x, _ = self._load(idx.tolist())  # (n, C, H, W)
        n, _, h, w = x.shape
        cls = torch.as_tensor(self.target[idx], dtype=torch.long)  # the explained class of each image
        probs0, pred0, _ = self._predict(x)
        p0 = probs0[np.arange(n), cls.numpy()]
        base = make_image_baseline(
            self.kind, x, mean=self.mean, std=self.std, n_draws=1, seed=seed, dataset_mean=self.dataset_mean
        )[0].expand_as(x)  # (n, C, H, W): one draw
        r0, r1, c0, c1 = box
        region = torch.zeros((n, h, w), dtype=torch.bool)
        region[:, r0:r1, c0:c1] = True
        places = control_boxes(h, w, box, n, CONTROLS, rng)  # (n, K, 2)
        controls = []
        for k in range(CONTROLS):
            mk = torch.zeros((n, h, w), dtype=torch.bool)
            for i, (r, c) in enumerate(places[:, k]):
                mk[i, r : r + r1 - r0, c : c + c1 - c0] = True
            controls.append(mk)
        group = "" if cand.group_name is None else cand.group_name
        stats = []
        for fill in (self.kind, "local blur"):
            def occluded(mask: torch.Tensor, fill: str = fill) -> tuple[np.ndarray, np.ndarray]:
                src = local_blur(x, mask) if fill == "local blur" else base
                probs, pred, _ = self._predict(torch.where(mask.unsqueeze(1), src, x))
                return probs[np.arange(n), cls.numpy()], pred

            pr, yr = occluded(region)
            pcs, ycs = zip(*(occluded(mk) for mk in controls), strict=True)
            stats.append(occlusion_stat(
                cand.region, group, fill, p_before=p0, pred_before=pred0, p_region=pr, pred_region=yr,
                p_control=np.stack(pcs, axis=1), pred_control=np.stack(ycs, axis=1), n_boot=self.cfg.n_boot,
                seed=seed,
            ))  # fmt: skip
        return stats
