"""Text width as a terminal or a chart sees it: East Asian wide characters take two columns.

Public (the CLI's terminal summary aligns names with it; the charts size their label margins with it).
"""

from __future__ import annotations

import unicodedata

__all__ = ["display_width", "truncate_width", "pad_width"]


def _char_width(c: str) -> int:
    if unicodedata.combining(c) or unicodedata.category(c) in ("Mn", "Me", "Cf"):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal, and about how many Latin letters wide it is in a chart: East Asian
    wide and full-width characters (Chinese, Japanese, Korean) count 2, combining marks 0, others 1."""
    return sum(_char_width(c) for c in str(text))


def truncate_width(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` display columns (:func:`display_width`) with an ellipsis."""
    text = str(text)
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for c in text:
        w = _char_width(c)
        if used + w > max(1, width - 1):
            break
        out.append(c)
        used += w
    return "".join(out) + "…"


def pad_width(text: str, width: int, align: str = "<") -> str:
    """``text`` padded with spaces to ``width`` display columns (``"<"`` left-aligned, ``">"`` right)."""
    gap = " " * max(0, width - display_width(text))
    return f"{gap}{text}" if align == ">" else f"{text}{gap}"
