"""Baselines for image Integrated Gradients: black, blurred input, uniform noise, the data set's mean image.

The choice of baseline decides what "no signal" means, and so what IG can attribute (Sturmfels, Lundberg & Lee,
"Visualizing the Impact of Feature Attribution Baselines", Distill 2020):

- ``black``: the black image *in pixel space*. The model sees normalised inputs, so the baseline is
  ``(0 - mean) / std`` per channel, not a tensor of zeros (zeros after ImageNet normalisation is a
  dark grey-green image, not black). Pixels that are black already get no attribution.
- ``blur``: each image blurred with a Gaussian (sigma = ``blur_sigma`` pixels, default 1/10 of the shorter
  side; reflect padding): shapes and edges are removed, colours and low frequencies kept (Xu et al., "Attribution
  in Scale and Space", CVPR 2020). One baseline per image.
- ``noise``: uniform noise in pixel space, ``U(0, 1)`` per pixel and channel, then normalised. IG is averaged
  over ``n_draws`` draws (an estimate of the expected IG over the noise distribution). Draws are independent
  *per image*: sharing the same few draws across every image would give all images the same error pattern,
  which a data-set mean map would show as a spatial structure that is not in the model. With per-image
  draws the errors are independent across images and average out in the mean map as ``1/sqrt(n * n_draws)``.
- ``mean``: the mean image of the audited data set (normalised space), the same for every image.

The result always has a leading draws axis, ``(n_draws, n or 1, C, H, W)``; IG against a baseline distribution
is the mean over draws of IG against each draw, and completeness then holds against the mean baseline output.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from audit.errors import UsageError

__all__ = ["IMAGE_BASELINES", "make_image_baseline", "gaussian_blur"]

IMAGE_BASELINES = ("black", "blur", "noise", "mean")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of every channel of every image, reflect padding.

    Parameters
    ----------
    x : Tensor of shape (n, C, H, W)
    sigma : float
        Standard deviation in pixels, > 0. The kernel reaches ``3 * sigma`` pixels (at most ``side - 1``).

    Returns
    -------
    Tensor of shape (n, C, H, W)
        The kernel weights sum to 1, so a constant image is unchanged and blurring commutes with the
        per-channel affine normalisation.
    """
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise UsageError(f"blur sigma must be a positive number of pixels, got {sigma!r}")
    n, c, h, w = x.shape
    out = x.reshape(n * c, 1, h, w)  # (n * C, 1, H, W)
    for dim, side in ((2, h), (3, w)):
        radius = min(int(math.ceil(3 * sigma)), side - 1)
        if radius < 1:
            continue
        t = torch.arange(-radius, radius + 1, dtype=x.dtype)
        k = torch.exp(-0.5 * (t / sigma) ** 2)
        k = k / k.sum()  # (2 * radius + 1,)
        if dim == 2:
            pad, kernel = (0, 0, radius, radius), k.view(1, 1, -1, 1)
        else:
            pad, kernel = (radius, radius, 0, 0), k.view(1, 1, 1, -1)
        out = torch.nn.functional.conv2d(torch.nn.functional.pad(out, pad, mode="reflect"), kernel)
    return out.reshape(n, c, h, w)


def make_image_baseline(
    kind: str,
    x: torch.Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    n_draws: int = 4,
    seed: int = 0,
    dataset_mean: torch.Tensor | None = None,
    blur_sigma: float | None = None,
) -> torch.Tensor:
    """The IG baseline(s) for a batch of normalised images.

    Parameters
    ----------
    kind : {"black", "blur", "noise", "mean"}
        ``"zero"`` is accepted as ``"black"`` (what zero means for an image).
    x : Tensor of shape (n, C, H, W)
        The normalised images.
    mean, std : sequence of float, length C
        The normalisation the images went through (``x = (pixels - mean) / std``).
    n_draws : int, default 4
        Noise draws per image (``kind="noise"`` only).
    seed : int, default 0
        Seed of the noise draws. Pass a different seed per batch so batches do not share draws.
    dataset_mean : Tensor of shape (C, H, W) or (1, C, H, W), optional
        The mean normalised image of the data set; required for ``kind="mean"``.
    blur_sigma : float, optional
        Gaussian sigma in pixels for ``kind="blur"``; default ``min(H, W) / 10``.

    Returns
    -------
    Tensor of shape (n_draws, n or 1, C, H, W)
        ``n_draws = 1`` except for noise; the second axis is 1 when every image shares the baseline
        (black, mean) and ``n`` otherwise. Average IG over the first axis.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise UsageError(f"images must be a tensor of shape (n, C, H, W), got {getattr(x, 'shape', type(x))}")
    n, c, h, w = x.shape
    k = "black" if kind == "zero" else kind
    if k not in IMAGE_BASELINES:
        raise UsageError(f"unknown image baseline '{kind}'; use one of {', '.join(IMAGE_BASELINES)}")
    if len(mean) != c or len(std) != c:
        raise UsageError(f"normalisation has {len(mean)} means and {len(std)} stds for {c}-channel images")
    m = torch.tensor([float(v) for v in mean], dtype=x.dtype).view(1, c, 1, 1)
    s = torch.tensor([float(v) for v in std], dtype=x.dtype).view(1, c, 1, 1)
    if k == "black":
        return ((0.0 - m) / s).expand(1, c, h, w).unsqueeze(0).clone()  # (1, 1, C, H, W)
    if k == "blur":
        sigma = blur_sigma if blur_sigma is not None else max(0.5, min(h, w) / 10.0)
        return gaussian_blur(x.detach(), float(sigma)).unsqueeze(0)  # (1, n, C, H, W)
    if k == "noise":
        if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
            raise UsageError(f"noise baseline needs n_draws >= 1, got {n_draws!r}")
        gen = torch.Generator().manual_seed(int(seed))
        u = torch.rand((n_draws, n, c, h, w), generator=gen, dtype=torch.float32).to(x.dtype)  # pixel space
        return (u - m.unsqueeze(0)) / s.unsqueeze(0)  # (n_draws, n, C, H, W)
    if dataset_mean is None:
        raise UsageError("the 'mean' baseline needs the data set's mean image; compute it over the images first")
    dm = dataset_mean.to(x.dtype)
    if dm.dim() == 3:
        dm = dm.unsqueeze(0)
    if tuple(dm.shape) != (1, c, h, w):
        raise UsageError(f"the mean image has shape {tuple(dm.shape)}, the images ({c}, {h}, {w}); they must agree")
    return dm.unsqueeze(0).clone()  # (1, 1, C, H, W)
