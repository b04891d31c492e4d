"""Image discovery: find the images of an audit (an ``ImageFolder`` tree, a flat folder, or a CSV of paths),
their labels and class names, and read every file's header once (:func:`discover_images`).

Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image, UnidentifiedImageError

from audit.errors import DataError, UsageError
from audit.hashing import sha256_file

__all__ = ["IMAGE_EXTENSIONS", "ImageSet", "discover_images", "image_set_sha256", "image_reason"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
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
            raise DataError(f"image '{name}' cannot be read ({image_reason(e)}); remove it or replace it") from None
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


def image_reason(e: BaseException) -> str:
    """Why PIL could not read an image, in at most 120 characters (without the path PIL repeats)."""
    text = str(e).split(" '")[0].strip() if isinstance(e, UnidentifiedImageError) else str(e).strip()
    return (text or type(e).__name__)[:120]


def image_set_sha256(image_set: ImageSet) -> str:
    """SHA-256 of the whole set: every file's hash with its display name and label, in set order."""
    digest = hashlib.sha256()
    for name, p, label in zip(image_set.names, image_set.paths, image_set.labels, strict=True):
        digest.update(f"{name}\t{label}\t{sha256_file(p)}\n".encode())
    return digest.hexdigest()
