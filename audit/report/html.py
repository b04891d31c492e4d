"""HTML rendering: one Jinja2 environment over the top-level ``templates/`` folder, autoescaped.

The page is self-contained (inline CSS, inline SVG charts, PNG data URIs) and deterministic: rendering the
same :class:`~audit.results.AuditRun` twice gives the same bytes, which is what lets ``audit render``
reproduce the report that ``audit run`` wrote.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import tempfile
from collections.abc import Callable
from importlib.resources.abc import Traversable
from pathlib import Path

import jinja2

from audit.errors import ReportError
from audit.report.context import build_context
from audit.results import AuditRun

__all__ = ["TEMPLATE", "templates_root", "render_html", "write_html", "atomic_write"]

TEMPLATE = "report.html.j2"


def templates_root() -> Traversable:
    """Where the templates are: the installed package ``audit.templates`` (the top-level ``templates/``
    folder mapped as package data), else ``templates/`` at the repository root (editable installs)."""
    try:
        root = importlib.resources.files("audit.templates")
        if root.joinpath(TEMPLATE).is_file():
            return root
    except (ModuleNotFoundError, TypeError):
        pass
    fallback = Path(__file__).resolve().parents[2] / "templates"
    if not (fallback / TEMPLATE).is_file():
        raise ReportError(
            f"report templates not found (looked in package audit.templates and {fallback}); "
            "reinstall audit so its templates are included"
        )
    return fallback


def _loader(root: Traversable) -> jinja2.BaseLoader:
    def load(name: str) -> tuple[str, None, Callable[[], bool]] | None:
        node = root
        for part in name.split("/"):
            if part in ("", ".", ".."):
                return None
            node = node.joinpath(part)
        if not node.is_file():
            return None
        return node.read_text(encoding="utf-8"), None, lambda: True

    return jinja2.FunctionLoader(load)


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=_loader(templates_root()),
        autoescape=True,  # every template is HTML; charts arrive as Markup from the context
        undefined=jinja2.StrictUndefined,  # a missing context key is a bug, never a silently empty cell
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )


def render_html(run: AuditRun) -> str:
    """The report of one run as a self-contained HTML page.

    Parameters
    ----------
    run : AuditRun
        The results record.

    Returns
    -------
    str
        The page. It loads nothing at view time (a Content-Security-Policy forbids it).

    Raises
    ------
    ReportError
        If the run cannot be drawn or the templates are missing or broken.
    """
    context = build_context(run)
    try:
        return _environment().get_template(TEMPLATE).render(**context)
    except jinja2.TemplateError as e:
        raise ReportError(f"the report template failed ({type(e).__name__}: {e}); reinstall audit") from None


def atomic_write(path: str | Path, data: bytes | str | Callable[[Path], None]) -> Path:
    """Write a file so a failure leaves nothing half-written: a temp file in the same folder, renamed.

    Parameters
    ----------
    path : str or Path
        The destination; its folder is created if missing. An existing file is replaced only on success.
    data : bytes, str or callable
        The contents (str is written as UTF-8), or a function that writes the temp file it is given.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ReportError
        If the folder cannot be created or written.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise ReportError(f"cannot write '{path}' ({e.strerror}); pass --out to a writable folder") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(data, str):
                fh.write(data.encode("utf-8"))
            elif isinstance(data, bytes):
                fh.write(data)
        if callable(data):
            data(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write '{path}' ({e.strerror}); pass --out to a writable folder") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_html(run: AuditRun, path: str | Path) -> Path:
    """Render ``run`` and write the page to ``path`` atomically.

    Parameters
    ----------
    run : AuditRun
        The results record.
    path : str or Path
        Where to write (usually ``report.html`` next to ``audit.json``).

    Returns
    -------
    Path
        ``path``.
    """
    return atomic_write(path, render_html(run))
