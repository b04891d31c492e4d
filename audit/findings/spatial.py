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

A region is a *candidate* when its enrichment is at least 2 and either

- it holds much of the mass: ``share >= threshold`` (default 0.30, ``[thresholds] spatial_share``) and
  ``fraction_of_images >= 0.5``; or
- it is there in nearly every image: ``fraction_of_images >= 0.8``, whatever its share (a model can read a
  watermark *and* the object; the watermark's share is then modest but it never moves).

Candidates that overlap are kept once, by the most enriched (a corner watermark also lights up the two edges
through it). With ``groups`` (the class of each image) each class with enough images is checked the same way,
so a mark present in one class only is found too.

Attribution mass is not proof: black and blurred baselines light up edges and corners, and max pooling piles
gradients on a few border pixels of regions the model barely uses. So a candidate is judged by occlusion
(:mod:`audit.analysis.occlusion`, measured by the image modality): the region is painted over with the baseline
and with a local blur, and the drop in the probability of the explained class is compared, image by image,
with the drop from random regions of the same size; the fill with the weaker evidence decides (a mark the model
reads is gone under both; a black square can itself be a feature to a max-pooling network). Severity:

- ``fail``: the lower end of the 95% interval of the drop beyond random regions reaches ``spatial_min_drop``
  (default 0.05): the region moves predictions;
- ``warn``: only the mean drop beyond random regions reaches it (material but uncertain on the sample), or
  occlusion was not measured (a direct call without a model);
- ``info``: occlusion shows the model does not depend on the region (the attribution there is an artefact).

The benchmark ``benchmarks/bench_image_findings.py`` measures false alarms and detections on clean and planted
CNNs; ``tests/test_images_spatial.py`` holds planted maps for the candidate rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from audit.analysis.occlusion import OcclusionStat, deciding_fill
from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings._common import num
from audit.findings.base import Detector, FindingsInput, fixed_title
from audit.results import Finding, Severity

__all__ = [
    "CODE",
    "MIN_ENRICHMENT",
    "MIN_FRACTION",
    "CONSTANT_FRACTION",
    "MIN_GROUP_IMAGES",
    "RegionStat",
    "Candidate",
    "border_regions",
    "candidate_regions",
    "region_stats",
    "detect_spatial_leakage",
    "DETECTOR",
]

CODE = "spatial_leakage"
MIN_ENRICHMENT = 2.0
MIN_FRACTION = 0.5  # with share >= threshold
CONSTANT_FRACTION = 0.8  # alone
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


@dataclass(frozen=True)
class Candidate:
    """A region whose attribution mass makes it a candidate leak, before occlusion confirms it.

    Attributes
    ----------
    region : str
    group : int or None
        The class index it was found in (None: the whole data set).
    group_name : str or None
    stat : RegionStat
        Its attribution numbers (in that class's images for a per-class candidate).
    n_images : int
        Images behind ``stat``.
    """

    region: str
    group: int | None
    group_name: str | None
    stat: RegionStat
    n_images: int


def candidate_regions(
    mean_map: object,
    per_image_maps: object,
    *,
    threshold: float = 0.30,
    groups: Sequence[int] | np.ndarray | None = None,
    group_names: Sequence[str] | None = None,
) -> list[Candidate]:
    """The regions the attribution rules of the module notes flag, most enriched first, each place once.

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
    list of Candidate
        Flags from the data set and from each class compete: a region flagged for the data set is not flagged
        again per class, and of flagged regions that overlap only the most enriched is kept (a class's corner
        beats a data-set edge through it).
    """
    if not (isinstance(threshold, (int, float)) and 0 < threshold <= 1):
        raise UsageError(f"spatial_share threshold must be in (0, 1], got {threshold!r}")
    m, p = _check_maps(mean_map, per_image_maps)
    masks = border_regions(*m.shape)
    flagged = _flagged(region_stats(m, p), masks, threshold)
    found: list[Candidate] = [Candidate(r.region, None, None, r, p.shape[0]) for r in flagged]
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
            found += [
                Candidate(r.region, int(k), name, r, int(sel.sum()))
                for r in _flagged(region_stats(mk, pk), masks, threshold)
                if r.region not in global_regions  # data-set wide already: not again per class
            ]
    kept: list[Candidate] = []
    taken: list[np.ndarray] = []
    for c in sorted(found, key=lambda c: -c.stat.enrichment):
        if not any((masks[c.region] & t).any() for t in taken):  # a place is reported once, most specific
            kept.append(c)
            taken.append(masks[c.region])
    return kept


def _occlusion_for(c: Candidate, occlusion: Sequence[OcclusionStat] | None) -> OcclusionStat | None:
    if occlusion is None:
        return None
    mine = [o for o in occlusion if o.region == c.region and o.group == (c.group_name or "")]
    return deciding_fill(mine) if mine else None


def _prob(x: float) -> float:
    """A probability difference for evidence and messages: 4 decimals, no negative zero."""
    return round(float(x), 4) + 0.0


def _finding(c: Candidate, o: OcclusionStat | None, threshold: float, min_drop: float) -> Finding:
    r = c.stat
    where = f"images of class '{c.group_name}'" if c.group_name is not None else "images"
    seen = (
        f"The {r.region} holds {r.share:.0%} of the attribution in {r.area_share:.1%} of the image area "
        f"({r.enrichment:.1f}x its share), in {r.fraction_of_images:.0%} of {c.n_images} {where}"
    )
    evidence: dict[str, object] = {"region": r.region}
    if c.group_name is not None:
        evidence["class"] = c.group_name
    evidence.update({
        "share": r.share, "area_share": r.area_share, "enrichment": r.enrichment,
        "fraction_of_images": r.fraction_of_images, "n_images": c.n_images, "threshold": threshold,
    })  # fmt: skip
    if o is None:
        message = (
            f"{seen}; occlusion was not measured, so this rests on attribution alone: occlude the region (or crop "
            "it) and check whether the predictions move before acting."
        )
        return Finding(CODE, Severity.WARN, (r.region,), message, evidence)
    cls = f"class '{c.group_name}'" if c.group_name is not None else "each image's explained class"
    p = {k: _prob(getattr(o, k)) for k in ("p_before", "drop", "control_drop", "excess", "excess_low", "excess_high")}
    shown = (
        f"occluding it ({o.fill}, {o.n_images} images) lowers the probability of {cls} by {p['drop']:.3f} on "
        f"average against {p['control_drop']:.3f} for random regions of the same size (excess {p['excess']:+.3f}, "
        f"95% interval {p['excess_low']:+.3f} to {p['excess_high']:+.3f}) and flips {o.flip_rate:.0%} of the "
        f"predictions (random regions: {o.control_flip_rate:.0%})"
    )
    evidence.update({
        "fill": o.fill, "occluded_images": o.n_images, "probability_before": p["p_before"], "drop": p["drop"],
        "random_region_drop": p["control_drop"], "drop_beyond_random": p["excess"],
        "drop_beyond_random_low": p["excess_low"], "drop_beyond_random_high": p["excess_high"],
        "flipped_share": num(o.flip_rate), "random_flipped_share": num(o.control_flip_rate), "min_drop": min_drop,
    })  # fmt: skip
    if p["excess_low"] >= min_drop:
        message = (
            f"{seen}, and {shown}: the model reads something in the {r.region} (a watermark, border or "
            "timestamp) instead of the object; look at the gallery, then crop or mask that region and retrain."
        )
        return Finding(CODE, Severity.FAIL, (r.region,), message, evidence)
    if p["excess"] >= min_drop:
        message = (
            f"{seen}, and {shown}: the drop is material but not certain on this sample; audit more images of "
            f"that kind, or occlude the {r.region} yourself, before acting."
        )
        return Finding(CODE, Severity.WARN, (r.region,), message, evidence)
    message = (
        f"{seen}, but {shown}: the model does not depend on it; the attribution there is likely an artefact of "
        "the baseline or of max pooling, not a leak."
    )
    return Finding(CODE, Severity.INFO, (r.region,), message, evidence)


def detect_spatial_leakage(
    mean_map: object,
    per_image_maps: object,
    *,
    threshold: float = 0.30,
    groups: Sequence[int] | np.ndarray | None = None,
    group_names: Sequence[str] | None = None,
    occlusion: Sequence[OcclusionStat] | None = None,
    min_drop: float = 0.05,
) -> list[Finding]:
    """Flag a border region that holds attribution across many images and whose occlusion moves predictions.

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
    occlusion : sequence of OcclusionStat, optional
        What occluding each candidate did (:mod:`audit.modalities.image_occlusion`); None when it was not
        measured (then a candidate is at most ``warn``).
    min_drop : float, default 0.05
        ``[thresholds] spatial_min_drop``: the probability drop beyond random regions that counts as material.

    Returns
    -------
    list of Finding
        Code ``spatial_leakage``, one per candidate region (:func:`candidate_regions`), most enriched first:
        ``fail`` when the lower 95% bound of the drop beyond random regions reaches ``min_drop``; ``warn`` when
        only its mean does (or occlusion was not measured); ``info`` when occlusion shows the model does not
        depend on the region. ``features`` holds the region name; ``evidence`` the numbers in the message.
    """
    if not (isinstance(min_drop, (int, float)) and 0 <= min_drop <= 1):
        raise UsageError(f"spatial_min_drop threshold must be in [0, 1], got {min_drop!r}")
    cands = candidate_regions(mean_map, per_image_maps, threshold=threshold, groups=groups, group_names=group_names)
    return [_finding(c, _occlusion_for(c, occlusion), threshold, min_drop) for c in cands]


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect_spatial_leakage(
        inp.spatial_mean_map, inp.spatial_maps, threshold=thresholds.spatial_share, groups=inp.spatial_groups,
        group_names=inp.spatial_group_names, occlusion=inp.spatial_occlusion, min_drop=thresholds.spatial_min_drop,
    )  # fmt: skip


DETECTOR = Detector(
    code=CODE,
    title=fixed_title("Attribution sits outside the object"),
    applies=lambda inp: inp.spatial_mean_map is not None and inp.spatial_maps is not None,
    detect=_detect,
)
