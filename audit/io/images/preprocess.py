"""Image preprocessing as torchvision does it: ``--normalize`` values, the output size every image will have,
and :func:`load_batch` (decode, channel conversion, ``Resize``, ``CenterCrop``, ``ToTensor``, ``Normalize``).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from audit.errors import DataError, UsageError
from audit.io.images.discovery import ImageSet, image_reason

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "AUTO", "NATIVE_MAX", "load_batch", "output_size", "parse_normalize",
           "choose_size", "upscale_note"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

AUTO = "auto"  # --image-size / --resize not given: chosen from the images and the model (choose_size)
NATIVE_MAX = 256  # images of one size up to this many pixels on the long side are audited at their own size
_IMAGENET_CROP, _IMAGENET_RESIZE = 224, 256  # torchvision's ImageNet preprocessing, the fallback
_CONVERT_MODE = {1: "L", 3: "RGB", 4: "RGBA"}
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # 16-bit / 32-bit / float pixels


def parse_normalize(spec: str, channels: int = 3) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std from a ``--normalize`` value.

    Parameters
    ----------
    spec : str
        ``"imagenet"`` (3 channels only), ``"none"`` (mean 0, std 1), or ``"m1,m2,m3/s1,s2,s3"`` with one value
        per channel (a single value applies to every channel).
    channels : int, default 3

    Returns
    -------
    mean, std : tuple of float, each of length ``channels``
    """
    text = str(spec).strip().lower()
    if text == "none":
        return (0.0,) * channels, (1.0,) * channels
    if text == "imagenet":
        if channels != 3:
            raise UsageError(
                f"--normalize imagenet has 3 channels but the model takes {channels}; pass --normalize "
                "'m/s' with your training values, or none"
            )
        return IMAGENET_MEAN, IMAGENET_STD
    parts = text.split("/")
    try:
        if len(parts) != 2:
            raise ValueError
        mean = tuple(float(v) for v in parts[0].split(","))
        std = tuple(float(v) for v in parts[1].split(","))
    except ValueError:
        raise UsageError(
            f"--normalize '{spec}' is not 'imagenet', 'none' or 'm1,m2,m3/s1,s2,s3'; e.g. "
            "--normalize 0.5,0.5,0.5/0.25,0.25,0.25"
        ) from None
    mean = mean * channels if len(mean) == 1 else mean
    std = std * channels if len(std) == 1 else std
    if len(mean) != channels or len(std) != channels:
        raise UsageError(
            f"--normalize '{spec}' gives {len(mean)} means and {len(std)} stds for a model with {channels} "
            "channels; give one value per channel"
        )
    if not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
        raise UsageError(f"--normalize '{spec}' needs finite means and stds > 0")
    return mean, std


def _resized_size(w: int, h: int, resize: int | None) -> tuple[int, int]:
    """torchvision ``Resize(int)``: the shorter side becomes ``resize``, the other keeps the aspect ratio."""
    if resize is None:
        return w, h
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = resize, int(resize * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def output_size(
    image_set: ImageSet, *, size: int | None, resize: int | None, indices: object = None
) -> tuple[int, int]:
    """The (height, width) every image will have after preprocessing; checks that they all agree.

    Parameters
    ----------
    image_set : ImageSet
    size : int or None
        Centre-crop side; ``None`` keeps the (resized) image whole.
    resize : int or None
        Shorter side after resizing; ``None`` keeps the file's size.
    indices : sequence of int, optional
        Check only these images (default: all).

    Returns
    -------
    (height, width)

    Raises
    ------
    DataError
        Images of different sizes without a resize or crop that makes them equal, or images smaller than the
        crop.
    """
    _check_side(size, "--image-size")
    _check_side(resize, "--resize")
    idx = range(len(image_set)) if indices is None else [int(i) for i in indices]
    after = Counter()
    first: dict[tuple[int, int], str] = {}
    for i in idx:
        w, h = _resized_size(*image_set.sizes[i], resize)
        if size is not None and (w < size or h < size):
            how = f"after --resize {resize}" if resize is not None else "and --resize is off"
            raise DataError(
                f"image '{image_set.names[i]}' is {w}x{h} {how}, smaller than the {size}x{size} crop; lower "
                f"--image-size to at most {min(w, h)} or pass --resize {size}"
            )
        key = (size, size) if size is not None else (h, w)
        after[key] += 1
        first.setdefault(key, image_set.names[i])
    if not after:
        raise DataError("no images selected; the image set is empty")
    if len(after) > 1:
        (a, _), (b, _) = after.most_common(2)
        raise DataError(
            f"images have different sizes ({a[1]}x{a[0]} like '{first[a]}', {b[1]}x{b[0]} like '{first[b]}') and "
            "are not resized and cropped to one size; pass --resize and --image-size (e.g. --resize 256 "
            "--image-size 224)"
        )
    return next(iter(after))


def _check_side(v: int | None, flag: str) -> None:
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise UsageError(f"{flag} must be a whole number of pixels >= 1, got {v!r}")


def _decode(path: Path, name: str, channels: int) -> tuple[Image.Image, str | None]:
    """Read one image fully and convert it to the model's channel count. Returns the image and what was
    converted (``None`` when nothing was)."""
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in _WIDE_MODES:
                arr = np.asarray(img, dtype=np.float32)
                scale = 1.0 if mode == "F" else (65535.0 if arr.max(initial=0) <= 65535 else float(arr.max()))
                out = Image.fromarray(np.clip(arr / scale, 0.0, 1.0).astype(np.float32))  # mode "F"
                return out, (None if channels == 1 else f"{mode}->{_CONVERT_MODE[channels]}")
            target = _CONVERT_MODE[channels]
            if mode == target:
                return img.copy(), None
            return img.convert(target), f"{mode}->{target}"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"image '{name}' cannot be read ({image_reason(e)}); remove it or replace it") from None


def _to_float(img: Image.Image, channels: int) -> np.ndarray:
    """PIL image -> float32 array (H, W, channels) in [0, 1]."""
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)[..., None]  # (H, W, 1)
        return np.repeat(arr, channels, axis=2)  # (H, W, channels)
    arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[..., None] if arr.ndim == 2 else arr


def _area_downsample(arr: np.ndarray, max_side: int) -> np.ndarray:
    """Area-average an (n, H, W, C) array so its long side is at most ``max_side``."""
    n, h, w, c = arr.shape
    if max(h, w) <= max_side:
        return arr
    scale = max_side / max(h, w)
    oh, ow = max(1, round(h * scale)), max(1, round(w * scale))
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2)  # (n, C, H, W)
    small = torch.nn.functional.adaptive_avg_pool2d(t, (oh, ow))  # (n, C, oh, ow)
    return small.permute(0, 2, 3, 1).numpy()


def load_batch(
    image_set: ImageSet,
    indices: object,
    *,
    size: int | None,
    resize: int | None,
    normalize: str = "imagenet",
    channels: int = 3,
    thumb_side: int = 56,
    conversions: Counter | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Read and preprocess some images of the set.

    Parameters
    ----------
    image_set : ImageSet
    indices : sequence of int
        Which images, in this order.
    size : int or None
        Centre-crop side (torchvision ``CenterCrop``); ``None`` for no crop.
    resize : int or None
        Shorter side after resizing (torchvision ``Resize``); ``None`` keeps the file's size.
    normalize : str, default "imagenet"
        See :func:`parse_normalize`.
    channels : {1, 3, 4}, default 3
        What the model takes (see the channel policy in the module docstring).
    thumb_side : int, default 56
        Long side of the thumbnails (area-averaged).
    conversions : Counter, optional
        Counts of mode conversions (``"L->RGB"``: 12) are added here, for the run's notes.

    Returns
    -------
    x : Tensor of shape (n, channels, H, W), float32, normalised
    thumbnails : ndarray of shape (n, h, w, 3), uint8
        The preprocessed pictures before normalisation, long side ``<= thumb_side``.

    Raises
    ------
    DataError
        Unreadable image, sizes that do not agree (see :func:`output_size`).
    UsageError
        Bad ``size`` / ``resize`` / ``normalize`` / ``channels``.
    """
    if channels not in _CONVERT_MODE:
        raise DataError(
            f"the model takes {channels} input channels; audit reads images as 1 (grayscale), 3 (RGB) or 4 (RGBA) "
            "channels: wrap the model so its first layer takes one of those"
        )
    mean, std = parse_normalize(normalize, channels)
    idx = [int(i) for i in (indices.tolist() if hasattr(indices, "tolist") else indices)]
    bad = [i for i in idx if not 0 <= i < len(image_set)]
    if bad:
        raise UsageError(f"image index {bad[0]} is out of range for a set of {len(image_set)} images")
    if not idx:
        raise UsageError("load_batch needs at least one image index")
    h, w = output_size(image_set, size=size, resize=resize, indices=idx)
    pixels = np.empty((len(idx), h, w, channels), dtype=np.float32)  # (n, H, W, C) in [0, 1]
    for k, i in enumerate(idx):
        img, conv = _decode(image_set.paths[i], image_set.names[i], channels)
        if conv is not None and conversions is not None:
            conversions[conv] += 1
        if resize is not None:
            img = img.resize(_resized_size(*img.size, resize), Image.Resampling.BILINEAR)
        if size is not None:
            iw, ih = img.size
            top, left = int(round((ih - size) / 2.0)), int(round((iw - size) / 2.0))
            img = img.crop((left, top, left + size, top + size))
        pixels[k] = _to_float(img, channels)
    rgb = pixels[..., :3] if channels >= 3 else np.repeat(pixels, 3, axis=3)  # (n, H, W, 3)
    thumbs = np.rint(np.clip(_area_downsample(rgb, thumb_side), 0.0, 1.0) * 255.0).astype(np.uint8)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous()  # (n, C, H, W)
    m = torch.tensor(mean, dtype=torch.float32).view(1, channels, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, channels, 1, 1)
    return (x - m) / s, thumbs


def _side_option(v: object, flag: str, *, none_ok: bool) -> int | str | None:
    if v == AUTO or (v is None and none_ok):
        return v
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise UsageError(f"{flag} must be a whole number of pixels >= 1 or '{AUTO}', got {v!r}")
    return int(v)


def upscale_note(image_set: ImageSet, resize: int | None) -> str | None:
    """A note when ``resize`` enlarges some images (their shorter side is below it), else None."""
    if resize is None:
        return None
    shorts = [min(w, h) for w, h in image_set.sizes]
    up = [s for s in shorts if s < resize]
    if not up:
        return None
    return (
        f"{len(up)} of {len(shorts)} images were upscaled (shorter side {min(up)} px to {resize} px): the model sees "
        "interpolated pixels, which changes its predictions; pass --image-size/--resize at the size it was trained on"
    )


def choose_size(
    image_set: ImageSet, *, size: int | str | None, resize: int | str | None, accepts
) -> tuple[int | None, int | None, list[str]]:
    """The crop side and resize of an audit: the options where given, else from the images and the model.

    Parameters
    ----------
    image_set : ImageSet
    size : int or "auto"
        ``--image-size``: the centre-crop side.
    resize : int, None or "auto"
        ``--resize``: the shorter side after resizing; None = no resize (``--resize 0``).
    accepts : callable
        ``accepts(size, resize) -> bool``: does the model run on one image preprocessed so? (False only for a
        size or shape error.)

    Returns
    -------
    (size, resize, notes)
        ``size`` None = no crop, ``resize`` None = no resize, and the notes saying what was chosen and why.

    Notes
    -----
    With both options left to ``auto``:

    1. images of one size with a long side of at most :data:`NATIVE_MAX` px are audited at their own size when
       the model accepts it (a 64 px set and a model that takes 64 px: the data and the model agree);
    2. images of different sizes, all at least 224 px on their shorter side, or large images of one size:
       torchvision's ImageNet preprocessing (shorter side to 256, centre crop 224), which only shrinks;
    3. smaller images of different sizes: shorter side to the smallest shorter side ``s`` and a centre crop of
       ``s`` (nothing is enlarged);
    4. when the model takes none of these: resize 256 / crop 224 even though it enlarges, with a note.

    With ``--image-size S`` alone the resize trims a border as torchvision's does (``round(S * 256 / 224)``)
    where every image is at least that large, else it is ``S``; with ``--resize R`` alone the crop is
    ``min(R, 224)``. Enlarging any image is always noted (:func:`upscale_note`).
    """
    size = _side_option(size, "--image-size", none_ok=True)
    resize = _side_option(resize, "--resize", none_ok=True)
    shorts = [min(w, h) for w, h in image_set.sizes]
    if not shorts:
        raise DataError("no images selected; the image set is empty")
    smallest = min(shorts)
    notes: list[str] = []
    if size != AUTO and resize != AUTO:
        pass
    elif size != AUTO:  # --image-size S alone
        trim = round(size * _IMAGENET_RESIZE / _IMAGENET_CROP) if size is not None else None
        resize = trim if trim is not None and smallest >= trim else (None if set(shorts) == {size} else size)
    elif resize != AUTO:  # --resize R (or 0) alone
        if resize is not None:
            size = min(resize, _IMAGENET_CROP)
        else:
            size = None if len(set(image_set.sizes)) == 1 else smallest
    else:
        size, resize, notes = _auto_size(image_set, smallest, accepts)
    note = upscale_note(image_set, resize)
    if note is not None:
        notes.append(note)
    return size, resize, notes


def _auto_size(image_set: ImageSet, smallest: int, accepts) -> tuple[int | None, int | None, list[str]]:
    """Both options left to auto (rule 1-4 of :func:`choose_size`)."""
    one = len(set(image_set.sizes)) == 1
    w, h = image_set.sizes[0]
    tried: list[str] = []
    if one and max(w, h) <= NATIVE_MAX:
        if accepts(None, None):
            return None, None, [
                f"audited at the images' own size, {w}x{h}: they all have that size and the model accepts it (no "
                "resize or crop; pass --image-size/--resize to preprocess otherwise)"
            ]
        tried.append(f"{w}x{h}")
    if smallest >= _IMAGENET_CROP:
        if accepts(_IMAGENET_CROP, _IMAGENET_RESIZE):
            why = "the images are large" if one else "the images have different sizes"
            return _IMAGENET_CROP, _IMAGENET_RESIZE, [
                f"{why}: resized (shorter side {_IMAGENET_RESIZE} px) and centre-cropped to {_IMAGENET_CROP}x"
                f"{_IMAGENET_CROP}, torchvision's ImageNet preprocessing; pass --image-size/--resize if the model "
                "was trained at another size"
            ]
        tried.append(f"{_IMAGENET_CROP}x{_IMAGENET_CROP}")
    elif not one:
        if accepts(smallest, smallest):
            return smallest, smallest, [
                f"the images have different sizes: resized to the smallest shorter side ({smallest} px) and "
                f"centre-cropped to {smallest}x{smallest}, so none is enlarged; pass --image-size/--resize to "
                "preprocess as in training"
            ]
        tried.append(f"{smallest}x{smallest}")
    if accepts(_IMAGENET_CROP, _IMAGENET_RESIZE):
        return _IMAGENET_CROP, _IMAGENET_RESIZE, [
            f"the model does not accept {' or '.join(tried)} inputs: the images were resized (shorter side "
            f"{_IMAGENET_RESIZE} px) and centre-cropped to {_IMAGENET_CROP}x{_IMAGENET_CROP}; pass --image-size/"
            "--resize at the size it was trained on"
        ]
    tried.append(f"{_IMAGENET_CROP}x{_IMAGENET_CROP}")
    raise DataError(
        f"the model accepts none of the input sizes tried ({', '.join(tried)}); pass --image-size and --resize at "
        "the size it was trained on"
    )
