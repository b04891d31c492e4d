"""Section ``images`` (image audits only): where the model looks, as heatmaps, a channel chart and a gallery.

Also what an image run audited, for the cover (:func:`scope`): the image-only facts live here, not in the
shared summary.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from audit.report import charts
from audit.report import images as pictures
from audit.report._format import fmt_num, fmt_pct, plural
from audit.report.sections._common import Scope, markup
from audit.results import AuditRun, ImageItem

__all__ = ["MAX_CLASS_MAPS", "build", "scope"]

MAX_CLASS_MAPS = 12


def _mean_map(run: AuditRun) -> str:
    return pictures.data_uri(pictures.heatmap_png(run.images.mean_map, what="the mean attribution map"))


def _item(item: ImageItem, prefix: str) -> dict[str, Any]:
    what = f"image '{item.path}'"
    return {
        "name": PurePath(item.path).name or item.path,
        "path": item.path,
        "label": item.label,
        "predicted": item.predicted,
        "correct": item.label == item.predicted,
        "confidence": fmt_pct(item.confidence),
        "target": item.target_class,
        "rel_delta": fmt_pct(item.rel_delta, 2),
        "thumb": pictures.data_uri(pictures.thumbnail_png(item.thumbnail, what=f"{what} thumbnail")),
        "overlay": pictures.data_uri(pictures.overlay_png(item.thumbnail, item.heatmap, what=what)),
        "alt": f"{prefix}: {PurePath(item.path).name}, label {item.label}, predicted {item.predicted}",
    }


def _occlusion_rows(run: AuditRun) -> list[dict[str, str]]:
    """One row per ``spatial_leakage`` finding whose region was occluded (its evidence holds the numbers)."""
    rows = []
    for f in run.findings:
        ev = f.evidence or {}
        if f.code != "spatial_leakage" or "drop" not in ev:
            continue
        rows.append({
            "region": str(ev.get("region", "")) + (f" (class {ev['class']})" if ev.get("class") else ""),
            "severity": str(getattr(f.severity, "value", f.severity)),
            "drop": fmt_num(ev["drop"]), "random": fmt_num(ev.get("random_region_drop")),
            "excess": f"{fmt_num(ev.get('drop_beyond_random'))} ({fmt_num(ev.get('drop_beyond_random_low'))} to "
                      f"{fmt_num(ev.get('drop_beyond_random_high'))})",
            "flips": f"{fmt_pct(ev.get('flipped_share'))} / {fmt_pct(ev.get('random_flipped_share'))}",
            "images": fmt_num(ev.get("occluded_images")), "fill": str(ev.get("fill", "")),
        })  # fmt: skip
    return rows


def scope(run: AuditRun) -> Scope | None:
    """What an image run audited, for the cover: images and classes, and the mean map as its picture.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    Scope or None
        None for a run without an image summary (the cover then describes rows and features).
    """
    im = run.images
    if im is None:
        return None
    return Scope(
        facts=[("Images audited", fmt_num(im.n_images)), ("Classes", fmt_num(len(im.classes)))],
        audited=plural(im.n_images, "image") + " audited",
        picture=_mean_map(run),
    )


def build(run: AuditRun) -> dict[str, Any] | None:
    """Heatmaps (mean and per class, at most :data:`MAX_CLASS_MAPS`), the channel chart and the gallery.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    dict or None
        ``facts``, ``channels`` (chart or None), ``mean_map``, ``class_maps``, ``class_maps_note``, ``scale``,
        ``occlusion`` (what painting over each candidate region did), ``most`` and ``least`` (gallery cards);
        None for a run without an image summary.

    Raises
    ------
    ReportError
        If the thumbnails or heatmaps are not rectangular grids.
    """
    im = run.images
    if im is None:
        return None
    size = f"{im.image_size[0]}×{im.image_size[1]}" if len(im.image_size) == 2 else "n/a"
    facts = [
        ("Images audited", fmt_num(im.n_images)),
        ("Model input size", size),
        ("Classes", plural(len(im.classes), "class", "classes")),
        ("Baseline", im.baseline),
    ]
    channels = None
    if im.channel_share:
        names = list(im.channel_share)
        channels = markup(
            charts.bar_chart_ci(
                names,
                [im.channel_share[c] for c in names],
                chart_id="chart-channels",
                title="Share of |attribution| per colour channel",
                x_label="share of |attribution|",
                width=420,
                value_format=fmt_pct,
                tick_format=lambda v: fmt_pct(v, 0),
            )
        )
    mean_map = _mean_map(run)
    class_maps = [
        {"cls": c, "src": pictures.data_uri(pictures.heatmap_png(m, what=f"the attribution map of class '{c}'"))}
        for c, m in list(im.class_maps.items())[:MAX_CLASS_MAPS]
    ]
    scale = markup(
        charts.colorbar(
            pictures.colormap_hex(32),
            chart_id="chart-heat-scale",
            title="Heatmap colour scale",
            low_label="no attribution",
            high_label="most attribution",
        )
    )
    return {
        "facts": facts,
        "channels": channels,
        "mean_map": mean_map,
        "class_maps": class_maps,
        "class_maps_note": (
            f"Showing {len(class_maps)} of {len(im.class_maps)} classes."
            if len(im.class_maps) > len(class_maps)
            else ""
        ),
        "scale": scale,
        "occlusion": _occlusion_rows(run),
        "most": [_item(it, "most confident") for it in im.most_confident],
        "least": [_item(it, "least confident") for it in im.least_confident],
    }
