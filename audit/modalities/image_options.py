"""What the image modality decides from its options and the data's shape before any pixel is read: whether a
path is an image set (:func:`claims`), which options do not apply to images (:func:`check_tabular_only_options`)
and which class ``--class NAME`` means (:func:`named_class`)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

from audit.config import AuditConfig
from audit.errors import UsageError
from audit.io.images import IMAGE_EXTENSIONS
from audit.io.tabular import is_table_source

__all__ = ["PATH_COLUMNS", "claims", "check_tabular_only_options", "named_class"]

# a CSV with one of these columns may list images (audit.io.images reads the same names)
PATH_COLUMNS = ("path", "image", "file", "filename", "filepath")

# options of tabular audits, with the value that means "not given"
_TABULAR_ONLY = {
    "target_col": ("--target-col", None, "labels come from the class folders or --labels"),
    "slice_col": ("--slice-col", None, "slices are for tables"),
    "reference": ("--reference", None, "drift against a reference is for tables"),
    "drop": ("--drop", (), "images have no columns to drop"),
    "noise_features": ("--noise-features", (), "images have no named features"),
    "groups": ("--group", (), "images have no feature columns to group"),
    "sep": ("--sep", None, "it is a CSV separator for tables"),
}


def claims(data: Path) -> bool | None:
    """A folder is an image set. A CSV with a path-like column lists images when its first values name existing
    image files (relative to the CSV's folder, or absolute); numbers there mean a table; other text cannot be
    told apart (None)."""
    if data.is_dir():
        return not is_table_source(data)  # a folder of Parquet/CSV part files is a table
    if not (data.is_file() and data.suffix.lower() == ".csv"):
        return False
    try:
        with data.open("r", encoding="utf-8", errors="replace", newline="") as fh:
            rows = list(itertools.islice(csv.reader(fh), 6))
    except OSError:
        return False
    if not rows:
        return False
    header = [h.strip().lower() for h in rows[0]]
    col = next((j for j, h in enumerate(header) if h in PATH_COLUMNS), None)
    if col is None:
        return False
    values = [r[col].strip() for r in rows[1:] if len(r) > col and r[col].strip()]
    if not values or all(_is_number(v) for v in values):
        return False
    if all(_is_image_file(data.parent, v) for v in values):
        return True
    return None


def check_tabular_only_options(config: AuditConfig) -> None:
    """Options that mean nothing for images are a usage error naming the option, never silently ignored."""
    for field, (flag, unset, why) in _TABULAR_ONLY.items():
        if getattr(config, field) != unset:
            raise UsageError(f"{flag} does not apply to image data ({why}); drop {flag}")
    if config.task not in ("auto", "multiclass"):
        raise UsageError(f"--task {config.task} does not apply to image data (image audits explain classifiers); "
                         "drop --task")


def named_class(config: AuditConfig, class_names: tuple[str, ...]) -> int | None:
    """``--class NAME``: the index of that class among ``class_names`` (the folder names or ``--class-names``,
    any case); None when ``--class`` was not given."""
    ci = config.class_index
    if ci is None:
        return None
    hits = [k for k, c in enumerate(class_names) if c.strip().lower() == ci.strip().lower()]
    if not hits:
        shown = ", ".join(class_names[:8]) + (", ..." if len(class_names) > 8 else "")
        raise UsageError(f"--class '{ci}' is not a class of this audit (classes: {shown}); pass one of those names "
                         "or a class index")  # fmt: skip
    return hits[0]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_image_file(base: Path, value: str) -> bool:
    p = Path(value)
    p = p if p.is_absolute() else base / p
    return p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
