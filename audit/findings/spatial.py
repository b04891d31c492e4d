"""Detector ``spatial_leakage``: attribution that sits in the same place across many images, outside the centre.

A corner watermark, a border, a timestamp or a scanner mark that correlates with the label is a shortcut
(Geirhos et al., "Shortcut learning in deep neural networks", Nature Machine Intelligence 2020; the classic
case is the hospital token in chest X-rays, Zech et al., PLoS Medicine 2018). A model that uses it puts
attribution mass in that fixed place in image after image, while real objects move around.

Candidate regions (objects are assumed to sit away from the border, where photographers put them):

- four corners, each a quarter of the height by a quarter of the width (1/16 of the area);
- four edges, full length and an eighth of the side thick (1/8 of the area).

For each region, on mass-normalised maps (each image's |attribution| summing to 1):

- ``share``: the region's share of the mean map's mass;
- ``enrichment``: ``share / area_share`` (1 = no more than a uniform map would put there);
- ``fraction_of_images``: the fraction of images in which the region holds at least ``2 x area_share`` of
  that image's mass, i.e. the attribution is there image after image, not in a few outliers.

A region is flagged when its enrichment is at least 2 and either

- it holds much of the mass: ``share >= threshold`` (default 0.30, ``[thresholds] spatial_share``) and
  ``fraction_of_images >= 0.5``; or
- it is there in nearly every image: ``fraction_of_images >= 0.8``, whatever its share (a model can read a
  watermark *and* the object; the watermark's share is then modest but it never moves).

Severity is ``fail`` when the place is both heavy and constant (``share >= threshold`` and
``fraction_of_images >= 0.9``) or very heavy (``share >= 1.5 x threshold``), ``warn`` otherwise. On clean
data, with objects away from the border, corners hold a few percent of the mass and no region is enriched in
any image (see ``tests/test_images_spatial.py`` for the planted numbers).
Flagged regions that overlap are reported once, by the most enriched (a corner watermark also lights up the
two edges through it). With ``groups`` (the class of each image) each class with enough images is checked
the same way, so a mark present in one class only is found too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings.base import Detector, FindingsInput, fixed_title
from audit.results import Finding, Severity

__all__ = [
    "CODE",
    "MIN_ENRICHMENT",
    "MIN_FRACTION",
    "CONSTANT_FRACTION",
    "FAIL_FRACTION",
    "FAIL_SHARE_FACTOR",
    "MIN_GROUP_IMAGES",
    "RegionStat",
    "border_regions",
    "region_stats",
    "detect_spatial_leakage",
    "DETECTOR",
]

CODE = "spatial_leakage"
MIN_ENRICHMENT = 2.0
MIN_FRACTION = 0.5  # with share >= threshold
CONSTANT_FRACTION = 0.8  # alone
FAIL_FRACTION = 0.9
FAIL_SHARE_FACTOR = 1.5
MIN_GROUP_IMAGES = 8  # a class with fewer images is not checked on its own


@dataclass(frozen=True)
class RegionStat:
    """How much attribution one region holds.

    Attributes
    ----------
    region : str
        ``"top-left corner"``, ``"bottom edge"``, ...
    share : float
        Share of the mean map's mass in the region.
    area_share : float
        The region's share of the image area.
    enrichment : float
        ``share / area_share``.
    fraction_of_images : float
        Fraction of images whose own map puts at least ``2 x area_share`` of its mass there.
    """

    region: str
    share: float
    area_share: float
    enrichment: float
    fraction_of_images: float


def border_regions(height: int, width: int) -> dict[str, np.ndarray]:
    """The candidate regions as boolean masks.

    Parameters
    ----------
    height, width : int
        Map size, each >= 2.

    Returns
    -------
    dict
        Region name -> bool ndarray of shape (height, width).
    """
    if height < 2 or width < 2:
        raise UsageError(f"attribution maps must be at least 2x2 to look for spatial leakage, got {height}x{width}")
    ch, cw = max(1, round(height / 4)), max(1, round(width / 4))
    eh, ew = max(1, round(height / 8)), max(1, round(width / 8))
    regions: dict[str, np.ndarray] = {}

    def mask(rows: slice, cols: slice) -> np.ndarray:
        m = np.zeros((height, width), dtype=bool)
        m[rows, cols] = True
        return m

    regions["top-left corner"] = mask(slice(0, ch), slice(0, cw))
    regions["top-right corner"] = mask(slice(0, ch), slice(width - cw, width))
    regions["bottom-left corner"] = mask(slice(height - ch, height), slice(0, cw))
    regions["bottom-right corner"] = mask(slice(height - ch, height), slice(width - cw, width))
    regions["top edge"] = mask(slice(0, eh), slice(0, width))
    regions["bottom edge"] = mask(slice(height - eh, height), slice(0, width))
    regions["left edge"] = mask(slice(0, height), slice(0, ew))
    regions["right edge"] = mask(slice(0, height), slice(width - ew, width))
    return regions


def _check_maps(mean_map: object, per_image_maps: object) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(mean_map, dtype=np.float64)
    p = np.asarray(per_image_maps, dtype=np.float64)
    if m.ndim != 2:
        raise UsageError(f"mean_map must have shape (H, W), got {m.shape}")
    if p.ndim != 3 or p.shape[0] < 1 or p.shape[1:] != m.shape:
        raise UsageError(f"per_image_maps must have shape (n, {m.shape[0]}, {m.shape[1]}) with n >= 1, got {p.shape}")
    if not (np.isfinite(m).all() and np.isfinite(p).all()):
        raise UsageError("attribution maps hold NaN or infinite values; check the model's outputs")
    return np.abs(m), np.abs(p)


def region_stats(mean_map: object, per_image_maps: object) -> list[RegionStat]:
    """Share, enrichment and consistency of every candidate region (see the module docstring).

    Parameters
    ----------
    mean_map : array of shape (H, W)
        Mean of the mass-normalised per-image maps (any positive scale: it is normalised here).
    per_image_maps : array of shape (n, H, W)
        Per-image |attribution| maps (any scale per image: each is normalised here).

    Returns
    -------
    list of RegionStat
        Most enriched first. All shares are 0 when the maps hold no attribution.
    """
    m, p = _check_maps(mean_map, per_image_maps)
    h, w = m.shape
    total = m.sum()
    img_total = p.sum(axis=(1, 2))  # (n,)
    has_mass = img_total > 0
    img_norm = p / np.where(img_total > 0, img_total, 1.0)[:, None, None]  # (n, H, W), each sums to 1 or 0
    out = []
    for name, mask in border_regions(h, w).items():
        area = float(mask.mean())
        share = float(m[mask].sum() / total) if total > 0 else 0.0
        img_share = img_norm[:, mask].sum(axis=1)  # (n,)
        frac = float((img_share[has_mass] >= MIN_ENRICHMENT * area).mean()) if has_mass.any() else 0.0
        out.append(RegionStat(name, share, area, share / area, frac))
    return sorted(out, key=lambda r: -r.enrichment)


def _flagged(stats: list[RegionStat], masks: dict[str, np.ndarray], threshold: float) -> list[RegionStat]:
    heavy = [r.share >= threshold and r.fraction_of_images >= MIN_FRACTION for r in stats]
    constant = [r.fraction_of_images >= CONSTANT_FRACTION for r in stats]
    hits = [r for r, h, c in zip(stats, heavy, constant, strict=True) if r.enrichment >= MIN_ENRICHMENT and (h or c)]
    kept: list[RegionStat] = []
    for r in hits:  # most enriched first: overlapping, less specific regions are dropped
        if not any((masks[r.region] & masks[k.region]).any() for k in kept):
            kept.append(r)
    return kept


def _finding(r: RegionStat, threshold: float, n_images: int, group: str | None) -> Finding:
    strong = r.share >= FAIL_SHARE_FACTOR * threshold or (
        r.share >= threshold and r.fraction_of_images >= FAIL_FRACTION
    )
    where = f"images of class '{group}'" if group is not None else "images"
    message = (
        f"The {r.region} holds {r.share:.0%} of the attribution in {r.area_share:.1%} of the image area "
        f"({r.enrichment:.1f}x its share), in {r.fraction_of_images:.0%} of {n_images} {where}: the model may "
        "read a watermark, border or timestamp there instead of the object; look at the gallery and crop or mask "
        "that region."
    )
    evidence = {
        "region": r.region,
        "share": r.share,
        "area_share": r.area_share,
        "enrichment": r.enrichment,
        "fraction_of_images": r.fraction_of_images,
        "n_images": n_images,
        "threshold": threshold,
        "class": group if group is not None else "",
    }
    return Finding(CODE, Severity.FAIL if strong else Severity.WARN, (r.region,), message, evidence)


def detect_spatial_leakage(
    mean_map: object,
    per_image_maps: object,
    *,
    threshold: float = 0.30,
    groups: Sequence[int] | np.ndarray | None = None,
    group_names: Sequence[str] | None = None,
) -> list[Finding]:
    """Flag attribution mass that sits in one border region across many images.

    Parameters
    ----------
    mean_map : array of shape (H, W)
        Mean of the mass-normalised per-image |attribution| maps (see :mod:`audit.analysis.heatmaps`).
    per_image_maps : array of shape (n, H, W)
        Per-image |attribution| maps (any scale).
    threshold : float, default 0.30
        Share of the mean map's mass a region must hold (``[thresholds] spatial_share``).
    groups : array of shape (n,), optional
        Class index per image (-1 = none). Classes with at least 8 images are also checked on their own.
    group_names : sequence of str, optional
        Class names by index, for the messages.

    Returns
    -------
    list of Finding
        Code ``spatial_leakage``, one per flagged place, most enriched first. Flags from the data set and from
        each class compete: a region flagged for the data set is not flagged again per class, and of flagged
        regions that overlap only the most enriched is reported (a class's corner beats a data-set edge through
        it). ``features`` holds the region name; ``evidence`` the numbers in the message.
    """
    if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
        raise UsageError(f"spatial_share threshold must be in (0, 1], got {threshold!r}")
    m, p = _check_maps(mean_map, per_image_maps)
    masks = border_regions(*m.shape)
    flagged = _flagged(region_stats(m, p), masks, threshold)
    candidates: list[tuple[RegionStat, int, str | None]] = [(r, p.shape[0], None) for r in flagged]
    if groups is not None:
        g = np.asarray(groups, dtype=np.int64).reshape(-1)
        if g.shape[0] != p.shape[0]:
            raise UsageError(f"groups has {g.shape[0]} entries for {p.shape[0]} maps; pass one class per image")
        global_regions = {r.region for r in flagged}
        for k in sorted(set(g[g >= 0].tolist())):
            sel = g == k
            if sel.sum() < MIN_GROUP_IMAGES:
                continue
            pk = p[sel]
            tot = pk.sum(axis=(1, 2), keepdims=True)
            mk = (pk / np.where(tot > 0, tot, 1.0)).mean(axis=0)  # (H, W)
            name = group_names[k] if group_names is not None and k < len(group_names) else str(k)
            candidates += [
                (r, int(sel.sum()), name)
                for r in _flagged(region_stats(mk, pk), masks, threshold)
                if r.region not in global_regions  # data-set wide already: not again per class
            ]
    findings: list[Finding] = []
    taken: list[np.ndarray] = []
    for r, n_images, name in sorted(candidates, key=lambda c: -c[0].enrichment):
        if not any((masks[r.region] & t).any() for t in taken):  # a place is reported once, most specific
            findings.append(_finding(r, threshold, n_images, name))
            taken.append(masks[r.region])
    return findings


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect_spatial_leakage(
        inp.spatial_mean_map, inp.spatial_maps, threshold=thresholds.spatial_share, groups=inp.spatial_groups,
        group_names=inp.spatial_group_names,
    )  # fmt: skip


DETECTOR = Detector(
    code=CODE,
    title=fixed_title("Attribution sits outside the object"),
    applies=lambda inp: inp.spatial_mean_map is not None and inp.spatial_maps is not None,
    detect=_detect,
)
