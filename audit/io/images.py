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
bilinear, antialiased), ``CenterCrop(size)``, ``ToTensor()`` and ``Normalize(mean, std)``.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image, UnidentifiedImageError

from audit.errors import DataError, UsageError
from audit.hashing import sha256_file

__all__ = [
    "IMAGE_EXTENSIONS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageSet",
    "discover_images",
    "parse_normalize",
    "output_size",
    "load_batch",
    "image_set_sha256",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_CONVERT_MODE = {1: "L", 3: "RGB", 4: "RGBA"}
_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # 16-bit / 32-bit / float pixels
_NAMES_MAX = 3  # file names quoted in one message
_PATH_ALIASES = ("image", "file", "filename", "filepath")


@dataclass(frozen=True)
class ImageSet:
    """The images of an audit and their labels.

    Attributes
    ----------
    root : Path
        The folder paths are shown relative to (the data folder, or the CSV's folder).
    paths : tuple of Path, length n_images
    names : tuple of str, length n_images
        Display names: POSIX paths relative to ``root`` where possible.
    labels : tuple of int, length n_images
        Class index per image, ``-1`` when the set is unlabelled.
    classes : tuple of str
        Class names by index; empty for an unlabelled set.
    sizes : tuple of (width, height), length n_images
        From the file headers.
    modes : tuple of str, length n_images
        PIL modes from the file headers (``"RGB"``, ``"L"``, ``"RGBA"``, ``"P"``, ...).
    source : str
        ``"folder"`` (ImageFolder layout), ``"flat"`` (a folder without classes), ``"csv"`` or
        ``"folder+csv"`` (a folder labelled by ``--labels``).
    notes : tuple of str
        Things the user should know (files skipped, empty class folders).
    """

    root: Path
    paths: tuple[Path, ...]
    names: tuple[str, ...]
    labels: tuple[int, ...]
    classes: tuple[str, ...]
    sizes: tuple[tuple[int, int], ...]
    modes: tuple[str, ...]
    source: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def labelled(self) -> bool:
        return len(self.classes) > 0


# --------------------------------------------------------------------------------------------------- discovery


def discover_images(path: str | os.PathLike[str], labels_csv: str | os.PathLike[str] | None = None) -> ImageSet:
    """Find the images of an audit and their labels (see the module docstring for the layouts).

    Every file's header is read once here, so an unreadable image is reported before any work starts.

    Parameters
    ----------
    path : str or PathLike
        A folder of images (class sub-folders or flat) or a CSV with a ``path`` column.
    labels_csv : str or PathLike, optional
        A CSV with columns ``path,label`` labelling the images of the folder ``path``.

    Returns
    -------
    ImageSet

    Raises
    ------
    DataError
        Missing path, no images, an unreadable image, a CSV without the needed columns, a CSV path that does
        not exist, a row without a label.
    UsageError
        ``labels_csv`` given together with a CSV ``path``.
    """
    p = Path(path)
    if not p.exists():
        raise DataError(f"no image folder or CSV at '{p}'; check --data")
    if p.is_file():
        if p.suffix.lower() != ".csv":
            raise DataError(f"--data '{p}' is a file but not a .csv; pass a folder of images or a CSV of paths")
        if labels_csv is not None:
            raise UsageError(
                f"--labels was given with a CSV --data '{p}'; put the labels in that CSV's 'label' column instead"
            )
        paths, raw_labels, root = _read_csv(p, base=p.parent, need_label=False)
        classes, labels = _index_labels(raw_labels, p)
        return _with_headers(root, paths, labels, classes, "csv", ())
    if labels_csv is not None:
        lab = Path(labels_csv)
        if not lab.is_file():
            raise DataError(f"no labels CSV at '{lab}'; check --labels")
        paths, raw_labels, _ = _read_csv(lab, base=p, need_label=True)
        classes, labels = _index_labels(raw_labels, lab)
        return _with_headers(p, paths, labels, classes, "folder+csv", ())
    return _scan_folder(p)


def _is_image(f: Path) -> bool:
    return f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")


def _scan_folder(root: Path) -> ImageSet:
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    top_images = sorted(f for f in root.iterdir() if _is_image(f))
    per_class = {d.name: sorted(f for f in d.rglob("*") if _is_image(f)) for d in subdirs}
    notes: list[str] = []
    if any(per_class.values()):
        classes = tuple(per_class)
        paths: list[Path] = []
        labels: list[int] = []
        for k, name in enumerate(classes):
            paths += per_class[name]
            labels += [k] * len(per_class[name])
        empty = [c for c, files in per_class.items() if not files]
        if empty:
            notes.append(
                f"class folder(s) {', '.join(repr(c) for c in empty[:_NAMES_MAX])} hold no images; they keep their "
                "place in the sorted class order"
            )
        if top_images:
            notes.append(
                f"{len(top_images)} image(s) at the top of '{root}' were skipped: with class sub-folders only "
                "the sub-folders are read (ImageFolder layout)"
            )
        return _with_headers(root, paths, labels, classes, "folder", tuple(notes))
    if top_images:
        return _with_headers(root, top_images, [-1] * len(top_images), (), "flat", ())
    raise DataError(
        f"no images in '{root}' (looked for {', '.join(IMAGE_EXTENSIONS)}); put the images in class sub-folders "
        "or pass a CSV with a 'path' column"
    )


def _read_csv(file: Path, *, base: Path, need_label: bool) -> tuple[list[Path], list[str] | None, Path]:
    try:
        df = pd.read_csv(file, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(f"'{file}' cannot be read as a CSV ({reason}); save it as a comma-separated file") from None
    cols = {c.strip().lower(): c for c in df.columns}
    for alias in _PATH_ALIASES:  # "image" / "file" / "filename" name the path column too
        if "path" not in cols and alias in cols:
            cols["path"] = cols[alias]
    need = ["path", "label"] if need_label else ["path"]
    missing = [c for c in need if c not in cols]
    if missing:
        raise DataError(
            f"'{file}' has no {' or '.join(repr(m) for m in missing)} column (columns: "
            f"{', '.join(map(str, df.columns)) or 'none'}); add a header row 'path,label'"
        )
    if len(df) == 0:
        raise DataError(f"'{file}' lists no images; add rows 'path,label'")
    paths: list[Path] = []
    for i, raw in enumerate(df[cols["path"]].tolist()):
        rel = raw.strip()
        if not rel:
            raise DataError(f"'{file}' row {i + 1} has an empty path; fill it in or remove the row")
        q = Path(rel) if Path(rel).is_absolute() else base / rel
        if not q.is_file():
            raise DataError(
                f"'{file}' row {i + 1}: image '{rel}' not found under '{base}'; fix the path or remove the row"
            )
        paths.append(q)
    labels = None
    if "label" in cols:
        labels = [v.strip() for v in df[cols["label"]].tolist()]
        empty = [i for i, v in enumerate(labels) if not v]
        if empty:
            raise DataError(
                f"'{file}' row {empty[0] + 1} has no label ({len(empty)} rows without one); fill them in or "
                "remove the label column to audit without labels"
            )
    return paths, labels, base


def _index_labels(raw: list[str] | None, file: Path) -> tuple[tuple[str, ...], list[int]]:
    """Class names by index and the index per image. Whole-number labels are the model's class indices."""
    if raw is None:
        return (), []
    try:
        ints = [int(v) for v in raw]
    except ValueError:
        ints = None
    if ints is not None:
        if min(ints) < 0:
            raise DataError(
                f"'{file}' has a negative class index ({min(ints)}); whole-number labels are the model's output "
                "indices 0, 1, ...: fix the label column"
            )
        return tuple(str(k) for k in range(max(ints) + 1)), ints
    classes = tuple(sorted(set(raw)))
    index = {c: k for k, c in enumerate(classes)}
    return classes, [index[v] for v in raw]


def _display_name(p: Path, root: Path) -> str:
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return p.as_posix()


def _with_headers(
    root: Path, paths: list[Path], labels: list[int], classes: tuple[str, ...], source: str, notes: tuple[str, ...]
) -> ImageSet:
    names = [_display_name(p, root) for p in paths]
    sizes: list[tuple[int, int]] = []
    modes: list[str] = []
    for p, name in zip(paths, names, strict=True):
        try:
            with Image.open(p) as img:
                sizes.append((int(img.size[0]), int(img.size[1])))
                modes.append(str(img.mode))
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise DataError(f"image '{name}' cannot be read ({_reason(e)}); remove it or replace it") from None
    if not labels:
        labels = [-1] * len(paths)
    return ImageSet(
        root=root,
        paths=tuple(paths),
        names=tuple(names),
        labels=tuple(labels),
        classes=classes,
        sizes=tuple(sizes),
        modes=tuple(modes),
        source=source,
        notes=notes,
    )


def _reason(e: BaseException) -> str:
    text = str(e).split(" '")[0].strip() if isinstance(e, UnidentifiedImageError) else str(e).strip()
    return (text or type(e).__name__)[:120]


# --------------------------------------------------------------------------------------------------- preprocessing


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
        raise DataError(f"image '{name}' cannot be read ({_reason(e)}); remove it or replace it") from None


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


def image_set_sha256(image_set: ImageSet) -> str:
    """SHA-256 of the whole set: every file's hash with its display name and label, in set order."""
    digest = hashlib.sha256()
    for name, p, label in zip(image_set.names, image_set.paths, image_set.labels, strict=True):
        digest.update(f"{name}\t{label}\t{sha256_file(p)}\n".encode())
    return digest.hexdigest()
