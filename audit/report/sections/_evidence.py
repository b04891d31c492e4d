"""Evidence of a finding in words, for codes whose raw ``evidence`` dict is too many bare numbers to read.

The record keeps every number (``audit.json``); the report shows, per code that has a presenter here, a few
labelled lines that say what each number is and which bar it was judged against. Other codes show their
evidence keys humanised (:func:`audit.report._format.humanize_key`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from audit.report._format import fmt_compact, fmt_num, fmt_pct, fmt_signed, is_missing

__all__ = ["present"]


def _n(x: Any) -> str:
    return "n/a" if is_missing(x) else fmt_num(x)


def _bar(x: Any) -> str:
    return "n/a" if is_missing(x) else fmt_compact(x)


def _ci(lo: Any, hi: Any, f: Callable[[Any], str] = _n) -> str:
    return f"95% CI {f(lo)} to {f(hi)}"


def _spurious_token(e: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows, n = e.get("rows"), e.get("n_rows")
    towards = e.get("towards", "")
    out = [("Word", str(e.get("token", "")))]
    if isinstance(rows, int) and isinstance(n, int) and n:
        out.append(("Rows containing it", f"{rows:,} of the {n:,} audited rows ({fmt_pct(rows / n)}); all of "
                                          "them were masked"))
    out.append(("Share of all attribution", f"{fmt_pct(e.get('share'))} (lower end of the 95% CI "
                                             f"{fmt_pct(e.get('share_ci_low'))})"))
    out.append((f"Drop in P({towards}) when masked",
                f"{_n(e.get('shift'))} on average over its rows ({_ci(e.get('shift_ci_low'), e.get('shift_ci_high'))}"
                f"); it drives predictions when the lower end is at least {_bar(e.get('min_shift'))}"))
    flips = f"{fmt_pct(e.get('flip_rate'))} ({_ci(e.get('flip_ci_low'), e.get('flip_ci_high'), fmt_pct)})"
    if not e.get("labelled", True):
        flips += f"; without labels it must reach {fmt_pct(e.get('min_flip'))} at the lower end"
    out.append(("Predictions flipped when masked", flips))
    if e.get("labelled", True):
        out.append((f"Labels '{towards}' with / without it",
                    f"{fmt_pct(e.get('label_rate'))} / {fmt_pct(e.get('label_rate_without'))}: difference "
                    f"{fmt_signed(e.get('info'))} ({_ci(e.get('info_ci_low'), e.get('info_ci_high'), fmt_signed)})"
                    "; an interval reaching 0 means the word tells nothing about the label here (fail)"))
        out.append(("Benefit ratio", f"{_n(e.get('benefit'))} ({_ci(e.get('benefit_ci_low'), e.get('benefit_ci_high'))}"
                                     f"): the loss change on the true labels when masked over the change the model "
                                     f"expects; about 1 for a genuine cue, flagged when the upper end is below "
                                     f"{_bar(e.get('max_benefit'))}"))
    return out


_PRESENTERS: dict[str, Callable[[Mapping[str, Any]], list[tuple[str, str]]]] = {
    "spurious_token": _spurious_token,
}


def present(code: str, evidence: Mapping[str, Any]) -> list[tuple[str, str]] | None:
    """Labelled evidence lines of a finding, or None when its code has no presenter."""
    fn = _PRESENTERS.get(code)
    return None if fn is None or not evidence else fn(evidence)
