"""Image audit pictures for the report: thumbnails, heatmaps and overlays as inline PNG data URIs.

The run record holds small arrays as plain lists (no colours); the colours are chosen here. Heatmaps use
the *inferno* colour map (dark = little attribution, bright = much), which stays readable in greyscale
print and for common colour-vision deficiencies.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from audit.errors import ReportError

__all__ = [
    "DISPLAY_SIZE",
    "apply_colormap",
    "colormap_hex",
    "heatmap_png",
    "thumbnail_png",
    "overlay_png",
    "data_uri",
]

DISPLAY_SIZE = 144  # pictures are upsampled to this many pixels on their long side when smaller

# inferno, sampled at 0, 1/8, ..., 1 (matplotlib's values, rounded to 8 bits)
_INFERNO = np.array(
    [
        [0, 0, 4],
        [31, 12, 72],
        [85, 15, 109],
        [136, 34, 106],
        [186, 54, 85],
        [227, 89, 51],
        [249, 140, 10],
        [249, 201, 50],
        [252, 255, 164],
    ],
    dtype=np.float64,
)


def apply_colormap(values: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to inferno colours.

    Parameters
    ----------
    values : ndarray of shape (H, W)
        Values; NaN counts as 0, the rest is clipped to [0, 1].

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
    """
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0), 0.0, 1.0)
    pos = v * (len(_INFERNO) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_INFERNO) - 2)
    frac = (pos - lo)[..., None]
    rgb = _INFERNO[lo] * (1 - frac) + _INFERNO[lo + 1] * frac  # (H, W, 3)
    return np.rint(rgb).astype(np.uint8)


def colormap_hex(n: int = 32) -> list[str]:
    """``n`` colours of the heatmap scale from low to high, as ``#rrggbb`` (for the legend)."""
    if n < 1:
        raise ReportError(f"colormap_hex needs n >= 1, got {n}; this is a bug in the report layer")
    rgb = apply_colormap(np.linspace(0.0, 1.0, n)[None, :])[0]
    return ["#{:02x}{:02x}{:02x}".format(*c) for c in rgb]


def _heatmap_array(heatmap: Sequence[Sequence[float]] | Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(heatmap, dtype=np.float64)
    except (TypeError, ValueError):
        raise ReportError(f"{what} is not a rectangular grid of numbers; re-run 'audit run' to rebuild it") from None
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ReportError(f"{what} has shape {arr.shape}, expected (height, width); re-run 'audit run' to rebuild it")
    return arr


def _thumbnail_array(thumbnail: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(thumbnail, dtype=np.float64)
    except (TypeError, ValueError):
        raise ReportError(f"{what} is not a rectangular (H, W, 3) grid; re-run 'audit run' to rebuild it") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ReportError(f"{what} has shape {arr.shape}, expected (height, width, 3); re-run 'audit run'")
    return np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)


def _display(img: Image.Image, size: int) -> Image.Image:
    w, h = img.size
    if max(w, h) >= size:
        return img
    scale = size / max(w, h)
    return img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def heatmap_png(heatmap: Sequence[Sequence[float]], *, size: int = DISPLAY_SIZE, what: str = "heatmap") -> bytes:
    """A heatmap as a colour PNG.

    Parameters
    ----------
    heatmap : array-like of shape (H, W)
        Values in [0, 1] (clipped; NaN counts as 0).
    size : int, default :data:`DISPLAY_SIZE`
        Upsample (smoothly) to this many pixels on the long side when smaller.
    what : str
        How to name the array in an error message.

    Returns
    -------
    bytes
        PNG file contents.
    """
    arr = _heatmap_array(heatmap, what)
    small = Image.fromarray(np.clip(np.nan_to_num(arr), 0, 1).astype(np.float32))
    w, h = small.size
    scale = max(1.0, size / max(w, h))
    smooth = small.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
    return _png(Image.fromarray(apply_colormap(np.asarray(smooth))))


def thumbnail_png(thumbnail: Any, *, size: int = DISPLAY_SIZE, what: str = "thumbnail") -> bytes:
    """An (H, W, 3) uint8 thumbnail as a PNG, upsampled to ``size`` when smaller."""
    return _png(_display(Image.fromarray(_thumbnail_array(thumbnail, what)), size))


def overlay_png(
    thumbnail: Any, heatmap: Sequence[Sequence[float]], *, size: int = DISPLAY_SIZE, what: str = "image"
) -> bytes:
    """The heatmap laid over the thumbnail: where attribution is low the picture shows through.

    Parameters
    ----------
    thumbnail : array-like of shape (H, W, 3), uint8
        The image.
    heatmap : array-like of shape (h, w)
        Values in [0, 1]; resized to the thumbnail's size.
    size : int, default :data:`DISPLAY_SIZE`
        Upsample to this many pixels on the long side when smaller.
    what : str
        How to name the image in an error message.

    Returns
    -------
    bytes
        PNG file contents.
    """
    base = _display(Image.fromarray(_thumbnail_array(thumbnail, f"{what} thumbnail")), size)
    arr = _heatmap_array(heatmap, f"{what} heatmap")
    heat = Image.fromarray(np.clip(np.nan_to_num(arr), 0, 1).astype(np.float32))
    heat = np.asarray(heat.resize(base.size, Image.Resampling.BILINEAR), dtype=np.float64)  # (H, W)
    colours = apply_colormap(heat).astype(np.float64)
    alpha = (0.75 * np.clip(heat, 0, 1) ** 0.7)[..., None]  # low attribution stays transparent
    grey = np.asarray(base.convert("L").convert("RGB"), dtype=np.float64) * 0.85
    mixed = grey * (1 - alpha) + colours * alpha
    return _png(Image.fromarray(np.rint(mixed).astype(np.uint8)))


def data_uri(png: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,...`` URI (the report must not load files or network)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
