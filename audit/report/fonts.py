"""Whether the fonts on this machine can draw a report's text: a PDF laid out without a font for some characters
(Chinese column names on a machine without a CJK font, Debian's default) shows boxes and says nothing.

WeasyPrint finds its fonts through fontconfig, so the characters fontconfig's fonts cover (``fc-list``'s
charsets) are the ones the PDF can draw. Without fontconfig nothing can be told and nothing is said.
"""

from __future__ import annotations

import html as html_lib
import re
import shutil
import subprocess
import unicodedata
from functools import lru_cache

__all__ = ["covered_ranges", "missing_characters", "font_note", "FONT_HINT"]

FONT_HINT = "install one (CJK: apt-get install fonts-noto-cjk) and run 'audit render audit.json'"
_TAGS = re.compile(r"<(style|script)\b.*?</\1>|<[^>]+>", re.S | re.I)


@lru_cache(maxsize=1)
def covered_ranges() -> tuple[tuple[int, int], ...] | None:
    """Code point ranges (inclusive) some installed font covers, merged; None when fontconfig cannot tell."""
    exe = shutil.which("fc-list")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--format", "%{charset}\n"], capture_output=True, text=True, timeout=20,
                             check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    spans = []
    for token in out.split():
        lo, _, hi = token.partition("-")
        try:
            spans.append((int(lo, 16), int(hi or lo, 16)))
        except ValueError:
            continue
    if not spans:
        return None
    spans.sort()
    merged = [spans[0]]
    for lo, hi in spans[1:]:
        if lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _covered(cp: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    lo, hi = 0, len(ranges)
    while lo < hi:
        mid = (lo + hi) // 2
        if ranges[mid][1] < cp:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(ranges) and ranges[lo][0] <= cp


def missing_characters(text: str, ranges: tuple[tuple[int, int], ...] | None = None) -> list[str]:
    """The distinct characters of ``text`` no installed font covers, in order of first appearance ([] when
    fontconfig cannot tell). Spaces, controls and format characters are never counted."""
    ranges = covered_ranges() if ranges is None else ranges
    if not ranges:
        return []
    seen: dict[str, None] = {}
    for c in text:
        if ord(c) < 0x80 or c in seen or c.isspace() or unicodedata.category(c)[0] in "CZ":
            continue
        if not _covered(ord(c), ranges):
            seen[c] = None
    return list(seen)


def font_note(page: str, ranges: tuple[tuple[int, int], ...] | None = None) -> str | None:
    """A note for the reader when the report page ``page`` (HTML) has characters the PDF cannot draw, else None."""
    text = html_lib.unescape(_TAGS.sub(" ", page))
    missing = missing_characters(text, ranges)
    if not missing:
        return None
    sample = "".join(missing[:8])
    return (f"the PDF shows boxes for {len(missing)} character{'s' if len(missing) != 1 else ''} (e.g. "
            f"'{sample}'): no installed font covers them; {FONT_HINT}")
