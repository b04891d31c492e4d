"""Image data: find the images, read them, preprocess them the way the model was trained.

Two layouts (:func:`discover_images`):

- a folder in torchvision's ``ImageFolder`` layout: ``root/<class>/**/<image>``. Class indices follow the
  sorted sub-folder names, as ``ImageFolder`` assigns them. A folder that holds images but no class
  sub-folders is an unlabelled set. ``--labels labels.csv`` (columns ``path,label``, paths relative to the
  folder) labels a folder of any layout.
- a CSV file with a ``path`` column (relative to the CSV's folder, or absolute; ``image``, ``file``,
  ``filename`` or ``filepath`` work too) and an optional ``label`` column.

Labels that are all whole numbers are the model's class indices (``label 3`` = output 3); otherwise the
sorted distinct label names are, as in ``ImageFolder``.

Channel policy: the model decides. Images are converted the way torchvision's default loader does
(``PIL.Image.convert``): for a 3-channel model every image becomes RGB (grayscale is repeated into the three
channels, an alpha channel is dropped, palettes are expanded); for a 1-channel model every image becomes
grayscale (ITU-R 601-2 luma); for a 4-channel model RGBA. Each conversion is counted in the notes of the run,
so a grayscale set fed to an RGB model is visible, not silent. 16-bit and float images are scaled to [0, 1].
Other channel counts are an error that says what to do.

Preprocessing (:func:`load_batch`) matches torchvision's ``Resize(resize)`` (shorter side to ``resize``,
bilinear, antialiased), ``CenterCrop(size)``, ``ToTensor()`` and ``Normalize(mean, std)``. Left to ``auto`` (the
default), the size comes from the images and the model (:func:`choose_size`): images of one small size that the
model accepts are audited as they are, and enlarging an image is never silent.

The package is split by concern (its public surface is ``__all__`` below, re-exported from these modules):

- :mod:`~audit.io.images.discovery`: :class:`ImageSet`, :func:`discover_images`, :func:`image_set_sha256`.
- :mod:`~audit.io.images.preprocess`: :func:`parse_normalize`, :func:`output_size`, :func:`choose_size`,
  :func:`load_batch`.
"""

from __future__ import annotations

from audit.io.images.discovery import IMAGE_EXTENSIONS, ImageSet, discover_images, image_set_sha256
from audit.io.images.preprocess import (
    AUTO,
    IMAGENET_MEAN,
    IMAGENET_STD,
    choose_size,
    load_batch,
    output_size,
    parse_normalize,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "AUTO",
    "choose_size",
    "ImageSet",
    "discover_images",
    "parse_normalize",
    "output_size",
    "load_batch",
    "image_set_sha256",
]
