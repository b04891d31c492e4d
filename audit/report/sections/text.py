"""Section ``text`` (text audits only): the token chart and table, per-class tokens, and per-example views with
each token shaded by its attribution (most and least confident rows, misclassified rows).

Also what a text run audited, for the cover (:func:`scope`). Shading is an inline style per token (the page's
Content-Security-Policy allows inline styles), so the HTML and the PDF need no script and load nothing.
"""

from __future__ import annotations

from typing import Any

from audit.report import charts
from audit.report._format import fmt_num, fmt_pct, fmt_signed, plural
from audit.report.sections._common import Scope, markup
from audit.results import AuditRun, TextExample, TokenStat

__all__ = ["TOP_CHART_TOKENS", "TOP_CLASS_TOKENS", "POSITIVE_RGB", "NEGATIVE_RGB", "build", "scope", "shade"]

TOP_CHART_TOKENS = 30
TOP_CLASS_TOKENS = 10
POSITIVE_RGB = (33, 102, 172)  # towards the explained class
NEGATIVE_RGB = (178, 24, 43)  # against it
_MAX_ALPHA = 0.85


def scope(run: AuditRun) -> Scope | None:
    """What a text run audited, for the cover: rows and distinct tokens; None for other runs."""
    t = run.text
    if t is None:
        return None
    unit = _unit(t)
    return Scope(
        facts=[("Rows audited", fmt_num(t.n_rows)), (f"Distinct {unit}s", fmt_num(t.n_distinct_tokens))],
        audited=f"{plural(t.n_rows, 'text')} audited ({plural(t.n_distinct_tokens, 'distinct ' + unit)})",
    )


def _unit(t) -> str:
    """``word`` for runs whose table holds words (pieces merged), ``token`` for runs saved before."""
    return str(t.settings.get("unit", "token"))


def shade(value: float, scale: float) -> str:
    """The inline style of one token: blue towards the explained class, red against it, opacity by |value|."""
    if not scale > 0:
        return "background-color:transparent"
    a = round(_MAX_ALPHA * min(abs(value) / scale, 1.0), 2)
    r, g, b = POSITIVE_RGB if value >= 0 else NEGATIVE_RGB
    ink = "#fff" if a > 0.5 else "#111"
    return f"background-color:rgba({r},{g},{b},{a});color:{ink}"


def _example(ex: TextExample) -> dict[str, Any]:
    scale = max((abs(v) for v in ex.attributions), default=0.0)
    return {
        "row": ex.row + 1,
        "label": ex.label,
        "predicted": ex.predicted,
        "correct": (ex.label == ex.predicted) if ex.label else True,
        "confidence": fmt_pct(ex.confidence),
        "target": ex.target_class,
        "rel_delta": fmt_pct(ex.rel_delta, 2),
        "truncated": ex.truncated,
        "tokens": [
            {"text": tok, "style": shade(v, scale), "title": f"{tok}: {fmt_signed(v)}"}
            for tok, v in zip(ex.tokens, ex.attributions, strict=False)
        ],
    }


def _rows(tokens: tuple[TokenStat, ...]) -> list[dict[str, Any]]:
    return [
        {
            "rank": s.rank, "token": s.token, "special": s.special, "occurrences": fmt_num(s.occurrences),
            "rows": fmt_num(s.rows), "mean_abs": fmt_num(s.mean_abs),
            "ci": f"{fmt_num(s.ci_low)} – {fmt_num(s.ci_high)}", "share": fmt_pct(s.share),
            "share_ci": f"{fmt_pct(s.share_ci_low)} – {fmt_pct(s.share_ci_high)}", "mean": fmt_signed(s.mean),
        }
        for s in tokens
    ]  # fmt: skip


def build(run: AuditRun) -> dict[str, Any] | None:
    """The text section's values; None for a run without a text summary.

    Returns
    -------
    dict or None
        ``facts``, ``chart`` (top tokens by share), ``rows`` (the token table), ``classes`` (per explained
        class: its top tokens), ``groups`` (per-example views: title and shaded examples) and ``legend``.
    """
    t = run.text
    if t is None:
        return None
    facts = [
        ("Text column", t.text_col),
        ("Rows", fmt_num(t.n_rows)),
        ("Max length", f"{t.max_length} tokens"),
        ("Rows truncated", f"{fmt_num(t.n_truncated)} ({fmt_pct(t.n_truncated / t.n_rows if t.n_rows else 0)})"),
        ("Baseline", "pad token " + t.pad_token + ", special tokens kept" if t.baseline == "pad" else
         "zero embedding"),
        ("Vocabulary", fmt_num(t.vocab_size)),
    ]
    if t.accuracy is not None:
        facts.append(("Accuracy", fmt_pct(t.accuracy)))
    flagged = {name for f in run.findings if f.severity.value != "info" for name in f.features}
    unit = _unit(t)
    top = [s for s in t.tokens if not s.special][:TOP_CHART_TOKENS] or list(t.tokens[:TOP_CHART_TOKENS])
    chart = None
    if top:
        colours = [charts.PALETTE["fail"] if s.token in flagged else charts.PALETTE["bar"] for s in top]
        chart = markup(charts.bar_chart_ci(
            [s.token for s in top], [s.share for s in top], [s.share_ci_low for s in top],
            [s.share_ci_high for s in top], chart_id="chart-tokens",
            title=f"Share of all |attribution| of the top {len(top)} {unit}s", colors=colours,
            x_label="share of |attribution| over all rows (whiskers: 95% bootstrap interval over rows)",
            value_format=fmt_pct, tick_format=lambda v: fmt_pct(v, 0),
            legend=[(charts.PALETTE["fail"], "named in a finding")] if any(s.token in flagged for s in top) else (),
        ))  # fmt: skip
    classes = [{"cls": c, "rows": _rows(v[:TOP_CLASS_TOKENS])} for c, v in t.class_tokens.items()]
    groups = [
        (title, [_example(e) for e in items])
        for title, items in (
            ("Most confident predictions", t.most_confident),
            ("Least confident predictions", t.least_confident),
            ("Misclassified rows (most confident first)", t.misclassified),
        )
        if items
    ]
    pos = "rgb({},{},{})".format(*POSITIVE_RGB)
    neg = "rgb({},{},{})".format(*NEGATIVE_RGB)
    return {
        "facts": facts,
        "chart": chart,
        "rows": _rows(t.tokens),
        "n_distinct": fmt_num(t.n_distinct_tokens),
        "classes": classes,
        "groups": [{"title": g, "examples": ex} for g, ex in groups],
        "legend": [(pos, "towards the explained class"), (neg, "against it")],
        "unit": unit,
        "Unit": unit.capitalize(),
        "merged_note": ("The tokenizer's pieces are grouped into words (by its word ids, or by the ##, ▁ and Ġ "
                        "markers of its pieces) and a word's attribution is the sum of its pieces'; tokens.parquet "
                        "keeps the pieces, with the word of each piece." if unit == "word" else ""),
    }
