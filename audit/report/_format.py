"""Number and label formatting shared by the report sections and the charts. Private to the report layer."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from audit.report.textwidth import display_width, pad_width, truncate_width

__all__ = [
    "is_missing",
    "fmt_num",
    "fmt_compact",
    "fmt_signed",
    "fmt_pct",
    "fmt_pct_sig",
    "fmt_pow10",
    "fmt_date",
    "humanize_key",
    "fmt_evidence_value",
    "plural",
    "short_hash",
    "truncate",
    "display_width",
    "truncate_width",
    "pad_width",
]

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

# word pieces of evidence keys, spelled out for a reviewer
_TOKENS = {
    "r2": "R²",
    "ks": "KS",
    "rel": "relative",
    "abs": "absolute",
    "n": "number of",
    "num": "number of",
    "p95": "95th percentile",
    "p99": "99th percentile",
    "ci": "CI",
    "auc": "AUC",
    "id": "ID",
    "frac": "fraction",
    "tol": "tolerance",
    "pct": "percent",
    "std": "std",
    "max": "max",
    "min": "min",
    "top1": "top-1",
    "top3": "top-3",
    "spearman": "Spearman ρ",
    "rho": "ρ",
    "z": "z",
}

_SHARE_TOKENS = ("share", "fraction", "frac")


def is_missing(x: Any) -> bool:
    """True for None and non-finite floats (how NaN comes back from JSON)."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def fmt_num(x: Any, digits: int = 3, compact: bool = False) -> str:
    """A number with ``digits`` significant digits; very small or large ones as ``1.23×10⁻⁵``.

    Integers get thousands separators, missing values read ``n/a``. ``compact`` drops trailing zeros
    (``0.800`` -> ``0.8``), for thresholds and axis ticks where the digits carry no precision.
    """
    if is_missing(x):
        return "n/a"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if not isinstance(x, float):
        try:
            x = float(x)
        except (TypeError, ValueError):
            return str(x)
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    ax = abs(x)
    if 1e-3 <= ax < 1e6:
        mag = math.floor(math.log10(ax))
        decimals = max(0, digits - 1 - mag)
        rounded = abs(round(x, decimals))
        if rounded > 0 and math.floor(math.log10(rounded)) > mag:  # 0.0099996 rounds up to 0.0100
            decimals = max(0, decimals - 1)
        text = f"{x:,.{decimals}f}"
    else:
        exp = math.floor(math.log10(ax))
        mant = x / 10**exp
        if round(abs(mant), digits - 1) >= 10:
            exp += 1
            mant = x / 10**exp
        mtext = f"{mant:.{digits - 1}f}"
        text = f"{_strip_zeros(mtext) if compact else mtext}×10{str(exp).translate(_SUPERSCRIPT)}"
        return text.replace("-", "−")
    if compact:
        text = _strip_zeros(text)
    return text.replace("-", "−")


def _strip_zeros(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def fmt_compact(x: Any, digits: int = 3) -> str:
    """:func:`fmt_num` without trailing zeros: ``0.8``, ``1×10⁻⁴``, ``2.5``."""
    return fmt_num(x, digits, compact=True)


def fmt_signed(x: Any, digits: int = 3) -> str:
    """Like :func:`fmt_num` with an explicit ``+`` for positive values (direction matters)."""
    text = fmt_num(x, digits)
    if not is_missing(x) and not isinstance(x, bool) and isinstance(x, int | float) and x > 0:
        return "+" + text
    return text


def fmt_pct(x: Any, decimals: int = 1, compact: bool = False) -> str:
    """A fraction in [0, 1] as a percentage; tiny non-zero values read ``<0.1%``.

    ``compact`` drops trailing zeros (``1.00%`` -> ``1%``), for thresholds such as a tolerance.
    """
    if is_missing(x):
        return "n/a"
    x = float(x)
    if 0 < abs(x) < 0.5 * 10 ** (-decimals) / 100:
        return f"<{10 ** (-decimals):g}%"
    text = f"{100 * x:.{decimals}f}"
    return (_strip_zeros(text) if compact else text) + "%"


def fmt_pct_sig(x: Any, digits: int = 2) -> str:
    """A small fraction as a percentage with ``digits`` significant digits: ``0.011%``, ``3.1%``."""
    if is_missing(x):
        return "n/a"
    return fmt_compact(100 * float(x), digits) + "%"


def fmt_pow10(exp: float) -> str:
    """``10⁻³`` for a log10 tick at -3; non-integer ticks as plain numbers."""
    if float(exp).is_integer():
        return "10" + str(int(exp)).translate(_SUPERSCRIPT)
    return fmt_compact(10**exp, 2)


def humanize_key(key: str) -> str:
    """``univariate_r2`` -> ``Univariate R²``: evidence keys in words."""
    parts = [p for p in str(key).replace("-", "_").split("_") if p]
    if not parts:
        return str(key)
    text = " ".join(_TOKENS.get(p.lower(), p) for p in parts)
    return text[:1].upper() + text[1:]


def fmt_evidence_value(key: str, value: Any) -> str:
    """An evidence value readable in a sentence: shares as percentages, lists joined, dicts as ``k: v``."""
    if is_missing(value):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        lowered = str(key).lower()
        if any(t in lowered for t in _SHARE_TOKENS) and 0 <= value <= 1 and not isinstance(value, int):
            return fmt_pct(value)
        return fmt_compact(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {fmt_evidence_value(str(k), v)}" for k, v in value.items())
    if isinstance(value, Sequence):
        items = [fmt_evidence_value(key, v) for v in value]
        if len(items) > 8:
            return ", ".join(items[:8]) + f", … ({len(items)} in all)"
        return ", ".join(items)
    return str(value)


def truncate(text: str, width: int) -> str:
    """Shorten ``text`` to ``width`` characters with an ellipsis."""
    return text if len(text) <= width else text[: max(1, width - 1)] + "…"


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 row``, ``1,200 rows``; ``many`` for irregular plurals (``class`` -> ``classes``)."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def fmt_date(iso: str) -> str:
    """An ISO timestamp as ``2024-05-01 12:30 UTC``; ``n/a`` when empty, the text itself when unparseable."""
    if not iso:
        return "n/a"
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    zone = "UTC" if dt.utcoffset() is not None and dt.utcoffset().total_seconds() == 0 else (dt.tzname() or "")
    return f"{dt:%Y-%m-%d %H:%M} {zone}".strip()


def short_hash(h: str) -> str:
    """The first 12 characters of a hash, ``n/a`` when there is none."""
    return h[:12] if h else "n/a"
