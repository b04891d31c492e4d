"""Synthetic images and a small CNN for the image-audit tests: a planted corner watermark, trained in seconds.

Images are 32x32 RGB in [0, 1]: dim uniform background noise, a coloured square somewhere in the centre
(class 0 greenish, class 1 magenta-ish) and, in the leaky variant, a 4x4 patch in one corner whose colour
encodes the class perfectly while the centre square agrees with the class only ``centre_agreement`` of the
time. A CNN trained on the leaky images reads the corner; trained on clean images (no patch, the square always
agrees) it reads the centre.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

__all__ = [
    "CORNERS",
    "make_toy_images",
    "SmallCNN",
    "MemoryCappedCNN",
    "gray_cnn",
    "flat_linear_32",
    "train_small_cnn",
    "toy_model",
    "write_image_folder",
]

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")
_SQUARE_COLOURS = (np.array([0.15, 0.85, 0.25]), np.array([0.85, 0.2, 0.8]))  # class 0, class 1
_PATCH_COLOURS = (np.array([1.0, 1.0, 0.1]), np.array([0.1, 0.9, 1.0]))


def make_toy_images(
    n: int,
    *,
    leak: bool,
    seed: int,
    size: int = 32,
    patch: int = 4,
    corner: str = "top-left",
    centre_agreement: float = 0.6,
) -> tuple[np.ndarray, np.ndarray]:
    """Planted-watermark images.

    Returns
    -------
    pixels : ndarray of shape (n, 3, size, size), float32 in [0, 1]
    labels : ndarray of shape (n,), int64, balanced 0/1
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)  # (n,)
    x = rng.uniform(0.0, 0.25, size=(n, 3, size, size))  # background
    agree = rng.uniform(size=n) < (centre_agreement if leak else 1.0)
    lo, hi = size // 4, 3 * size // 4
    for i in range(n):
        shape_class = y[i] if agree[i] else 1 - y[i]
        side = int(rng.integers(size // 5, size // 3 + 1))
        top = int(rng.integers(lo, hi - side + 1))
        left = int(rng.integers(lo, hi - side + 1))
        colour = _SQUARE_COLOURS[shape_class] + rng.normal(0, 0.05, size=3)
        x[i, :, top : top + side, left : left + side] = colour[:, None, None]
        if leak:
            r = slice(0, patch) if corner.startswith("top") else slice(size - patch, size)
            c = slice(0, patch) if corner.endswith("left") else slice(size - patch, size)
            x[i, :, r, c] = _PATCH_COLOURS[y[i]][:, None, None]
    return np.clip(x, 0.0, 1.0).astype(np.float32), y.astype(np.int64)


class SmallCNN(nn.Module):
    """conv(3->8) - pool - conv(8->16) - pool - conv(16->16) - global average - linear(16->2)."""

    def __init__(self, in_channels: int = 3, n_classes: int = 2) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Linear(16, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (n, 16, H/4, W/4)
        return self.head(h.mean(dim=(2, 3)))  # (n, n_classes)


class MemoryCappedCNN(SmallCNN):
    """:class:`SmallCNN` (same weights) that raises CUDA's out-of-memory error on batches above ``max_batch``:
    a planted stand-in for a big model on a full GPU."""

    max_batch = 20

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] > self.max_batch:
            raise RuntimeError(f"CUDA out of memory. Tried to allocate {x.shape[0]} images (planted)")
        return super().forward(x)


def gray_cnn() -> SmallCNN:
    """:class:`SmallCNN` for one-channel (grayscale) images, for ``--arch``."""
    return SmallCNN(in_channels=1)


def flat_linear_32() -> nn.Module:
    """A linear classifier that only takes 3x32x32 inputs (flatten, then 3,072 -> 2), for ``--arch``."""
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 2))


def train_small_cnn(
    x: np.ndarray | torch.Tensor, y: np.ndarray, *, seed: int, epochs: int = 8, lr: float = 0.01
) -> SmallCNN:
    """Train :class:`SmallCNN` with Adam, batches of 64; returns it in eval mode."""
    torch.manual_seed(seed)
    model = SmallCNN(in_channels=int(x.shape[1]))
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.long)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(xt.shape[0], generator=gen)
        for start in range(0, xt.shape[0], 64):
            idx = order[start : start + 64]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    return model.eval()


@functools.lru_cache(maxsize=4)
def toy_model(leak: bool, seed: int = 1) -> SmallCNN:
    """The CNN trained on 512 toy images for 8 epochs, once per test session (callers must not modify it)."""
    x, y = make_toy_images(512, leak=leak, seed=seed)
    return train_small_cnn(x, y, seed=seed, epochs=8)


def write_image_folder(root: Path, pixels: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> list[Path]:
    """Save images as PNG files in ImageFolder layout ``root/<class>/<i>.png``; returns the paths in order."""
    paths = []
    for i, (img, lab) in enumerate(zip(pixels, labels, strict=True)):
        d = Path(root) / classes[int(lab)]
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"{i:04d}.png"
        Image.fromarray(np.rint(np.transpose(img, (1, 2, 0)) * 255).astype(np.uint8)).save(p)
        paths.append(p)
    return paths
