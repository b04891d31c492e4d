"""What the templates may read: :func:`build_context` turns an :class:`~audit.results.AuditRun` into plain,
already formatted values (strings, lists, dicts) and inline SVG charts.

Templates do no arithmetic and no formatting; everything a reviewer sees is decided here, from the record
alone (nothing is recomputed from the model or the data). The output is deterministic: the same record
always gives the same context, so ``audit render`` reproduces the report that ``audit run`` wrote.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import PurePath
from typing import Any

from markupsafe import Markup

from audit import __version__
from audit.errors import ReportError
from audit.report import charts, images
from audit.report._format import (
    fmt_compact,
    fmt_evidence_value,
    fmt_num,
    fmt_pct,
    fmt_pct_sig,
    fmt_signed,
    humanize_key,
    is_missing,
)
from audit.results import AuditRun, Finding, Severity

__all__ = ["build_context", "sort_findings", "finding_title", "TOP_CHART_FEATURES", "MAX_CLASS_COLUMNS"]

TOP_CHART_FEATURES = 30  # bars in the global ranking chart; the table lists every feature
TOP_SUMMARY_FEATURES = 5
MAX_CLASS_COLUMNS = 12
MAX_CLASS_ROWS = 15
MAX_SIGNED_PANELS = 12
MAX_CLASS_MAPS = 12

_SEVERITY_LABEL = {"fail": "Fail", "warn": "Warning", "info": "Note"}
_VERDICT_HEADLINE = {
    "fail": "Do not ship as is",
    "warn": "Review before shipping",
    "pass": "No problems found",
}

# titles for the finding codes the detectors emit; unknown codes get their code in words
_FINDING_TITLES = {
    "noise_leakage": "The model relies on a feature that does not help it predict",
    "target_leakage": "Possible target leakage",
    "identifier_leakage": "An identifier-like column is used",
    "concentration_skew": "Attribution is concentrated in few features",
    "not_converged": "Attributions did not converge",
    "engine_disagreement": "The native engine and Captum disagree",
    "baseline_not_neutral": "The baseline is not neutral",
    "slice_skew": "A slice ranks features differently",
    "drift_skew": "Important features drifted",
    "spatial_leakage": "Attribution sits outside the object",
}
# titles that depend on how the finding was reached (evidence "route")
_ROUTE_TITLES = {("noise_leakage", "declared"): "A declared noise feature is used"}


def finding_title(code: str, evidence: dict[str, Any] | None = None) -> str:
    """A short heading for a finding code (``target_leakage`` -> ``Possible target leakage``); the route in the
    evidence refines it (a declared noise feature, or one that neutralisation shows does not help)."""
    route = (evidence or {}).get("route")
    return _ROUTE_TITLES.get((code, route)) or _FINDING_TITLES.get(code) or humanize_key(code)


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first: severity fail > warn > info, then by code, then by message (a stable total order)."""
    return sorted(findings, key=lambda f: (-Severity(f.severity).order, f.code, f.message))


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _markup(svg: str) -> Markup:
    # charts.py escapes every piece of text it writes, so its output is safe to embed as is
    return Markup(svg)


def _date(iso: str) -> str:
    if not iso:
        return "n/a"
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    zone = "UTC" if dt.utcoffset() is not None and dt.utcoffset().total_seconds() == 0 else (dt.tzname() or "")
    return f"{dt:%Y-%m-%d %H:%M} {zone}".strip()


def _short_hash(h: str) -> str:
    return h[:12] if h else "n/a"


def _finding_context(i: int, f: Finding) -> dict[str, Any]:
    sev = Severity(f.severity).value
    evidence = [(humanize_key(k), fmt_evidence_value(k, v)) for k, v in (f.evidence or {}).items()]
    return {
        "anchor": f"finding-{i + 1}",
        "code": f.code,
        "title": finding_title(f.code, f.evidence),
        "severity": sev,
        "severity_label": _SEVERITY_LABEL[sev],
        "message": f.message,
        "features": list(f.features),
        "evidence": evidence,
        "evidence_line": "; ".join(f"{k}: {v}" for k, v in evidence),
    }


def _feature_flags(run: AuditRun) -> dict[str, str]:
    """feature -> worst severity of a finding that names it ("noise" for declared noise with no finding)."""
    flags: dict[str, str] = {}
    for f in run.findings:
        sev = Severity(f.severity)
        if sev is Severity.INFO:
            continue
        for name in f.features:
            if name not in flags or sev.order > Severity(flags[name]).order:
                flags[name] = sev.value
    for name in run.declared_noise:
        flags.setdefault(name, "noise")
    return flags


_FLAG_COLOUR = {"fail": charts.PALETTE["fail"], "warn": charts.PALETTE["warn"], "noise": charts.PALETTE["noise"]}
_FLAG_LEGEND = {"fail": "named in a failing finding", "warn": "named in a warning", "noise": "declared noise"}


def _ranking(run: AuditRun, flags: dict[str, str]) -> dict[str, Any] | None:
    feats = sorted(run.features, key=lambda s: (s.rank, s.name))
    if not feats:
        return None
    top = feats[:TOP_CHART_FEATURES]
    colours = [_FLAG_COLOUR.get(flags.get(s.name, ""), charts.PALETTE["bar"]) for s in top]
    present = [k for k in ("fail", "warn", "noise") if any(flags.get(s.name) == k for s in top)]
    legend = [(charts.PALETTE["bar"], "other features")] if present else []
    legend += [(_FLAG_COLOUR[k], _FLAG_LEGEND[k]) for k in present]
    chart = charts.bar_chart_ci(
        [s.name for s in top],
        [s.mean_abs for s in top],
        [s.ci_low for s in top],
        [s.ci_high for s in top],
        chart_id="chart-ranking",
        title=f"Mean |attribution| of the top {len(top)} features",
        x_label="mean |attribution| (whiskers: 95% bootstrap interval)",
        colors=colours,
        legend=legend,
    )
    max_share = max((s.share for s in feats if not is_missing(s.share)), default=0.0) or 1.0
    has_rank_ci = any(s.rank_ci_low > 0 for s in feats)
    rows = []
    for s in feats:
        flag = flags.get(s.name, "")
        rows.append(
            {
                "rank": s.rank,
                "name": s.name,
                "mean_abs": fmt_num(s.mean_abs),
                "ci": f"{fmt_num(s.ci_low)} – {fmt_num(s.ci_high)}",
                "share": fmt_pct(s.share),
                "share_width": 0.0 if is_missing(s.share) else round(100 * max(0.0, s.share) / max_share, 1),
                "mean": fmt_signed(s.mean),
                "std": fmt_num(s.std),
                "rank_ci": (
                    (str(s.rank_ci_low) if s.rank_ci_low == s.rank_ci_high else f"{s.rank_ci_low}–{s.rank_ci_high}")
                    if s.rank_ci_low > 0
                    else ""
                ),
                "flag": flag,
                "flag_label": {"fail": "fail", "warn": "warn", "noise": "noise"}.get(flag, ""),
            }
        )
    note = ""
    if len(feats) > len(top):
        note = f"The chart shows the top {len(top)} of {len(feats)} features; the table lists all of them."
    return {"chart": _markup(chart), "rows": rows, "note": note, "has_rank_ci": has_rank_ci, "n": len(feats)}


def _luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG relative luminance of an sRGB colour."""
    lin = [(c / 255) / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def _contrast(a: float, b: float) -> float:
    hi, lo = max(a, b), min(a, b)
    return (hi + 0.05) / (lo + 0.05)


_HEAT_DARK = (0x1F, 0x4E, 0x8C)
_TEXT_DARK = (0x1D, 0x29, 0x39)


def _share_cell(share: float, max_share: float) -> dict[str, str]:
    """A heat-table cell: light to dark blue by share relative to the largest share in the table, with
    whichever text colour (white or near-black) has more contrast on that background."""
    if is_missing(share):
        return {"text": "n/a", "style": ""}
    a = (min(1.0, max(0.0, share / max_share)) if max_share > 0 else 0.0) ** 0.7
    rgb = tuple(round(255 + (c - 255) * a) for c in _HEAT_DARK)
    lum = _luminance(rgb)
    white = _contrast(1.0, lum) >= _contrast(_luminance(_TEXT_DARK), lum)
    text = "#ffffff" if white else "#1d2939"
    return {"text": fmt_pct(share), "style": f"background:#{rgb[0]:02x}{rgb[1]:02x}{rgb[2]:02x};color:{text}"}


def _classes(run: AuditRun) -> dict[str, Any] | None:
    if not run.class_features:
        return None
    names = list(run.class_features)[:MAX_CLASS_COLUMNS]
    by_class = {c: {s.name: s for s in run.class_features[c]} for c in names}
    order = [s.name for s in sorted(run.features, key=lambda s: (s.rank, s.name))]
    for c in names:  # features only ranked per class come after the global ones
        order += [s.name for s in sorted(run.class_features[c], key=lambda s: s.rank) if s.name not in order]
    order = order[:MAX_CLASS_ROWS]
    shown = [by_class[c][n].share for c in names for n in order if n in by_class[c]]
    max_share = max((v for v in shown if not is_missing(v)), default=0.0)
    rows = []
    for name in order:
        cells = []
        for c in names:
            stat = by_class[c].get(name)
            cells.append(_share_cell(stat.share, max_share) if stat else {"text": "–", "style": ""})
        rows.append({"name": name, "cells": cells})
    tops = []
    for c in names:
        best = sorted(run.class_features[c], key=lambda s: s.rank)[:3]
        tops.append({"cls": c, "top": ", ".join(f"{s.name} ({fmt_pct(s.share)})" for s in best)})
    note = ""
    n_classes = len(run.class_features)
    if n_classes > len(names):
        note = f"Showing {len(names)} of {n_classes} classes; audit.json has all of them."
    return {"classes": names, "rows": rows, "tops": tops, "note": note}


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if not (is_missing(x) or is_missing(y))]
    n = len(pairs)
    if n < 3:
        return math.nan
    mx = sum(p[0] for p in pairs) / n
    my = sum(p[1] for p in pairs) / n
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    syy = sum((p[1] - my) ** 2 for p in pairs)
    if sxx <= 0 or syy <= 0:
        return math.nan
    return sum((p[0] - mx) * (p[1] - my) for p in pairs) / math.sqrt(sxx * syy)


def _direction(r: float, subject: str = "the output") -> str:
    if is_missing(r):
        return "no direction can be read from this sample"
    if r >= 0.3:
        return f"higher values push {subject} up (correlation {fmt_signed(r, 2)})"
    if r <= -0.3:
        return f"higher values push {subject} down (correlation {fmt_signed(r, 2)})"
    return f"no consistent direction (correlation {fmt_signed(r, 2)})"


def _signed_subject(run: AuditRun) -> str:
    """What the direction samples explain: the output, or one fixed class's score for every row."""
    return f"the score of class '{run.signed_class}'" if run.signed_class else "the output"


def _signed(run: AuditRun) -> list[dict[str, Any]]:
    stats = {s.name: s for s in run.features}
    panels = []
    for i, sample in enumerate(run.signed[:MAX_SIGNED_PANELS]):
        chart = charts.scatter_signed(
            sample.values,
            sample.attributions,
            chart_id=f"chart-signed-{i + 1}",
            title=sample.name,
            x_label=f"value of {sample.name}",
        )
        stat = stats.get(sample.name)
        panels.append(
            {
                "name": sample.name,
                "chart": _markup(chart),
                "direction": _direction(_pearson(sample.values, sample.attributions), _signed_subject(run)),
                "mean": fmt_signed(stat.mean) if stat else "n/a",
                "rows": len(sample.values),
            }
        )
    return panels


def _convergence(run: AuditRun) -> dict[str, Any]:
    c = run.convergence
    tol = c.tolerance
    n_rows = c.n_rows or run.n_rows
    tol_text = fmt_pct(tol, 2, compact=True) if not is_missing(tol) and tol < 1 else fmt_compact(tol)
    facts = [
        ("Integration rule", c.method or "n/a"),
        ("Steps", str(c.n_steps) if isinstance(c.n_steps, str) else fmt_num(c.n_steps)),
        ("Tolerance", tol_text),
        ("Median error", fmt_pct_sig(c.median_rel_delta)),
        ("95th percentile", fmt_pct_sig(c.p95_rel_delta)),
        ("Largest error", fmt_pct_sig(c.max_rel_delta)),
    ]
    if n_rows:
        facts.append(
            ("Rows above tolerance", f"{c.n_not_converged:,} of {n_rows:,} ({fmt_pct(c.n_not_converged / n_rows)})")
        )
    ok = c.n_not_converged == 0 and (is_missing(c.max_rel_delta) or is_missing(tol) or c.max_rel_delta <= tol)
    if ok:
        status = f"Every row's attributions add up to its output change within {tol_text}."
    elif c.n_not_converged:
        status = (
            f"{_plural(c.n_not_converged, 'row')} of {n_rows:,} miss the {tol_text} tolerance; "
            "their attributions are approximate. More integration steps usually fix this"
            + (" (try --n-steps auto)." if c.n_steps != "auto" else ".")
        )
    else:
        status = f"The largest error, {fmt_pct_sig(c.max_rel_delta)}, is above the {tol_text} tolerance."
    hist = None
    if c.rel_delta_hist_counts:
        threshold = math.log10(tol) if not is_missing(tol) and tol > 0 else None
        hist = _markup(
            charts.histogram_log10(
                c.rel_delta_hist_edges,
                c.rel_delta_hist_counts,
                chart_id="chart-convergence",
                title="Relative completeness error per row",
                x_label="|sum of attributions − (F(x) − F(baseline))| / |F(x) − F(baseline)|",
                threshold=threshold,
                threshold_label=f"tolerance {tol_text}",
            )
        )
    steps = None
    if c.steps_used:
        items = sorted(c.steps_used.items(), key=lambda kv: (_as_number(kv[0]), kv[0]))
        steps = _markup(
            charts.column_chart(
                [str(k) for k, _ in items],
                [v for _, v in items],
                chart_id="chart-steps",
                title="Integration steps each row needed",
                x_label="steps",
                y_label="rows",
            )
        )
    return {"facts": facts, "ok": ok, "status": status, "hist": hist, "steps": steps}


def _as_number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.inf


def _crosscheck(run: AuditRun) -> dict[str, Any]:
    x = run.crosscheck
    if x.skipped_reason:
        return {"skipped": x.skipped_reason}
    tol = ""
    if x.tol_abs or x.tol_rel:
        tol = f" (tolerance {fmt_compact(x.tol_abs)} absolute, {fmt_compact(x.tol_rel)} relative)"
    facts = [
        ("Rows compared", fmt_num(x.rows)),
        ("Largest absolute difference", fmt_num(x.max_abs_diff) + tol),
        ("Largest relative difference", fmt_num(x.max_rel_diff)),
        ("Rank agreement (Spearman ρ)", fmt_num(x.rank_spearman)),
    ]
    if x.method or x.n_steps:
        facts.append(("Captum run", f"{x.method or 'default rule'}, {fmt_num(x.n_steps)} steps"))
    if x.native_median_rel_delta or x.captum_median_rel_delta:
        facts.append(
            (
                "Median completeness error",
                f"native {fmt_pct_sig(x.native_median_rel_delta)}, Captum {fmt_pct_sig(x.captum_median_rel_delta)}",
            )
        )
    if x.captum_version:
        facts.append(("Captum version", x.captum_version))
    if x.explanation:
        meaning = x.explanation
    elif x.passed:
        meaning = (
            f"Captum's IntegratedGradients on {_plural(x.rows, 'row')}, with the same baseline and steps, matches "
            f"the native engine to within {fmt_num(x.max_abs_diff)} and ranks the features the same way "
            f"(ρ = {fmt_num(x.rank_spearman)}). The attributions in this report are standard Integrated Gradients."
        )
    else:
        meaning = (
            f"Captum's IntegratedGradients on the same {_plural(x.rows, 'row')} differs from the native engine by "
            f"up to {fmt_num(x.max_abs_diff)}, more than the tolerance. Treat the attributions with care and "
            "check the convergence section."
        )
    return {"skipped": "", "passed": bool(x.passed), "facts": facts, "meaning": meaning, "bias": x.captum_bias}


def _expected(run: AuditRun) -> dict[str, Any] | None:
    if not run.expected:
        return None
    rows = [
        {
            "name": e.name,
            "coefficient": fmt_signed(e.coefficient),
            "expected_mean": fmt_signed(e.expected_mean),
            "estimated_mean": fmt_signed(e.estimated_mean),
            "expected_mean_abs": fmt_num(e.expected_mean_abs),
            "estimated_mean_abs": fmt_num(e.estimated_mean_abs),
            "max_abs_error": fmt_num(e.max_abs_error),
        }
        for e in run.expected
    ]
    worst = max((e.max_abs_error for e in run.expected if not is_missing(e.max_abs_error)), default=math.nan)
    chart = charts.identity_scatter(
        [e.name for e in run.expected],
        [e.expected_mean for e in run.expected],
        [e.estimated_mean for e in run.expected],
        chart_id="chart-expected",
        title="Estimated against expected mean attribution",
        x_label="expected: coefficient × (x − x′), mean over rows",
        y_label="estimated (IG)",
    )
    return {"rows": rows, "chart": _markup(chart), "worst": fmt_num(worst)}


def _thresholds(run: AuditRun) -> Mapping[str, Any]:
    t = run.provenance.config.get("thresholds") if isinstance(run.provenance.config, Mapping) else None
    return t if isinstance(t, Mapping) else {}


def _slices(run: AuditRun) -> dict[str, Any] | None:
    if not run.slices:
        return None
    limit = _thresholds(run).get("slice_spearman", 0.5)
    rows = []
    for s in run.slices:
        low = not is_missing(s.spearman_vs_all) and isinstance(limit, int | float) and s.spearman_vs_all < limit
        rows.append(
            {
                "column": s.column,
                "group": s.group,
                "rows": fmt_num(s.rows),
                "spearman": fmt_num(s.spearman_vs_all),
                "low": low,
                "top": ", ".join(f"{n} ({fmt_pct(s.shares.get(n))})" for n in s.top_features[:5]),
            }
        )
    return {"rows": rows, "limit": fmt_compact(limit) if isinstance(limit, int | float) else "n/a"}


def _drift(run: AuditRun) -> dict[str, Any] | None:
    if not run.drift:
        return None
    items = sorted(run.drift, key=lambda d: (-(d.weighted if not is_missing(d.weighted) else -math.inf), d.name))
    total = sum(d.weighted for d in run.drift if not is_missing(d.weighted))
    rows = [
        {"name": d.name, "ks": fmt_num(d.ks), "share": fmt_pct(d.share), "weighted": fmt_num(d.weighted)} for d in items
    ]
    return {"rows": rows, "total": fmt_num(total)}


def _noise(run: AuditRun, flags: dict[str, str]) -> dict[str, Any] | None:
    if not run.declared_noise:
        return None
    stats = {s.name: s for s in run.features}
    n = len(run.features) or 1
    rows = []
    for name in run.declared_noise:
        s = stats.get(name)
        flag = flags.get(name, "noise")
        rows.append(
            {
                "name": name,
                "rank": f"{s.rank} of {len(run.features)}" if s else "not ranked",
                "share": fmt_pct(s.share) if s else "n/a",
                "vs_uniform": f"{fmt_num(s.share * n, 2)}×" if s and not is_missing(s.share) else "n/a",
                "ci": f"{fmt_num(s.ci_low)} – {fmt_num(s.ci_high)}" if s else "n/a",
                "status": {"fail": "fail", "warn": "warn"}.get(flag, "ok"),
                "status_label": {"fail": "used (fail)", "warn": "used (warning)"}.get(flag, "quiet"),
            }
        )
    return {"rows": rows, "uniform": fmt_pct(1 / n)}


def _image_item(item: Any, prefix: str) -> dict[str, Any]:
    what = f"image '{item.path}'"
    return {
        "name": PurePath(item.path).name or item.path,
        "path": item.path,
        "label": item.label,
        "predicted": item.predicted,
        "correct": item.label == item.predicted,
        "confidence": fmt_pct(item.confidence),
        "target": item.target_class,
        "rel_delta": fmt_pct(item.rel_delta, 2),
        "thumb": images.data_uri(images.thumbnail_png(item.thumbnail, what=f"{what} thumbnail")),
        "overlay": images.data_uri(images.overlay_png(item.thumbnail, item.heatmap, what=what)),
        "alt": f"{prefix}: {PurePath(item.path).name}, label {item.label}, predicted {item.predicted}",
    }


def _images(run: AuditRun) -> dict[str, Any] | None:
    im = run.images
    if im is None:
        return None
    size = f"{im.image_size[0]}×{im.image_size[1]}" if len(im.image_size) == 2 else "n/a"
    facts = [
        ("Images audited", fmt_num(im.n_images)),
        ("Model input size", size),
        ("Classes", _plural(len(im.classes), "class", "classes")),
        ("Baseline", im.baseline),
    ]
    channels = None
    if im.channel_share:
        names = list(im.channel_share)
        channels = _markup(
            charts.bar_chart_ci(
                names,
                [im.channel_share[c] for c in names],
                chart_id="chart-channels",
                title="Share of |attribution| per colour channel",
                x_label="share of |attribution|",
                width=420,
                value_format=fmt_pct,
                tick_format=lambda v: fmt_pct(v, 0),
            )
        )
    mean_map = images.data_uri(images.heatmap_png(im.mean_map, what="the mean attribution map"))
    class_maps = [
        {"cls": c, "src": images.data_uri(images.heatmap_png(m, what=f"the attribution map of class '{c}'"))}
        for c, m in list(im.class_maps.items())[:MAX_CLASS_MAPS]
    ]
    scale = _markup(
        charts.colorbar(
            images.colormap_hex(32),
            chart_id="chart-heat-scale",
            title="Heatmap colour scale",
            low_label="no attribution",
            high_label="most attribution",
        )
    )
    return {
        "facts": facts,
        "channels": channels,
        "mean_map": mean_map,
        "class_maps": class_maps,
        "class_maps_note": (
            f"Showing {len(class_maps)} of {len(im.class_maps)} classes."
            if len(im.class_maps) > len(class_maps)
            else ""
        ),
        "scale": scale,
        "most": [_image_item(it, "most confident") for it in im.most_confident],
        "least": [_image_item(it, "least confident") for it in im.least_confident],
    }


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        if not value:
            out.append((prefix, "–"))
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list | tuple):
        out.append((prefix, ", ".join(str(v) for v in value) if value else "–"))
    elif value is None:
        out.append((prefix, "–"))
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    elif isinstance(value, float):
        out.append((prefix, fmt_compact(value, 4)))
    else:
        out.append((prefix, str(value)))


def _provenance(run: AuditRun) -> dict[str, Any]:
    p = run.provenance
    facts = [
        ("Created", _date(p.created_at)),
        ("Model file", p.model_path or "n/a"),
        ("Model form", p.model_form or "n/a"),
        ("Model sha256", p.model_sha256 or "n/a"),
        ("Data file", p.data_path or "n/a"),
        ("Data sha256", p.data_sha256 or "n/a"),
        ("Seed", str(p.seed)),
        ("Device", p.device or "n/a"),
    ]
    if p.duration_s:
        facts.append(("Run time", f"{fmt_num(p.duration_s)} s"))
    config: list[tuple[str, str]] = []
    _flatten("", {k: v for k, v in p.config.items() if k != "command"}, config)  # the command has its own block
    return {
        "facts": facts,
        "command": p.command,
        "versions": sorted(p.versions.items()),
        "config": [row for row in config if row[0]],
    }


def _facts(run: AuditRun) -> list[dict[str, str]]:
    c, x = run.convergence, run.crosscheck
    task = run.task.replace("_", " ")
    if run.explained_output:
        task += f" (explains {run.explained_output})"
    facts = [{"label": "Task", "value": task, "status": ""}]
    if run.task_reason:
        facts.append({"label": "Task chosen", "value": run.task_reason, "status": ""})
    if run.class_names:
        facts.append({"label": "Classes", "value": ", ".join(run.class_names), "status": ""})
    if run.target_col:
        facts.append({"label": "Target", "value": run.target_col, "status": ""})
    if run.images is not None:
        facts.append({"label": "Images audited", "value": fmt_num(run.images.n_images), "status": ""})
        facts.append({"label": "Classes", "value": fmt_num(len(run.images.classes)), "status": ""})
    else:
        facts.append({"label": "Rows audited", "value": fmt_num(run.n_rows), "status": ""})
        facts.append({"label": "Features", "value": fmt_num(run.n_features or len(run.features)), "status": ""})
    facts.append({"label": "Baseline", "value": run.baseline, "status": ""})
    n_rows = c.n_rows or run.n_rows
    conv_ok = c.n_not_converged == 0
    conv = f"median error {fmt_pct_sig(c.median_rel_delta)}"
    if n_rows:
        conv += f"; {c.n_not_converged:,} of {n_rows:,} rows above {fmt_pct(c.tolerance, 2, compact=True)}"
    facts.append({"label": "Convergence", "value": conv, "status": "ok" if conv_ok else "bad"})
    if x.skipped_reason:
        facts.append({"label": "Captum cross-check", "value": "not run", "status": ""})
    else:
        verdict = "agrees" if x.passed else "disagrees"
        facts.append(
            {
                "label": "Captum cross-check",
                "value": f"{verdict} on {_plural(x.rows, 'row')} (rank ρ = {fmt_num(x.rank_spearman)})",
                "status": "ok" if x.passed else "bad",
            }
        )
    model = PurePath(run.provenance.model_path).name if run.provenance.model_path else "n/a"
    facts.append(
        {"label": "Model", "value": f"{model} · sha256 {_short_hash(run.provenance.model_sha256)}", "status": ""}
    )
    facts.append({"label": "Created", "value": _date(run.provenance.created_at), "status": ""})
    return facts


def _headline(run: AuditRun, findings: list[dict[str, Any]], counts: dict[str, int]) -> str:
    worst = next((f for f in findings if f["severity"] != "info"), None)
    if run.verdict.value != "pass" and worst is not None:
        return worst["message"]
    n_feat = run.n_features or len(run.features)
    text = f"{_plural(n_feat, 'feature')} audited on {_plural(run.n_rows, 'row')}"
    if run.images is not None:
        text = f"{_plural(run.images.n_images, 'image')} audited"
    extra = []
    if run.convergence.n_not_converged == 0:
        extra.append("attributions converged")
    if not run.crosscheck.skipped_reason and run.crosscheck.passed:
        extra.append("they agree with Captum")
    if extra:
        text += "; " + " and ".join(extra)
    return text + "."


def _artifacts(run: AuditRun) -> list[dict[str, str]]:
    out = []
    for kind, name in sorted(run.artifacts.items()):
        local = bool(name) and "://" not in name and ":" not in name.split("/")[0] and not name.startswith(("/", "\\"))
        out.append({"kind": kind, "name": name, "href": name if local else ""})
    return out


def build_context(run: AuditRun) -> dict[str, Any]:
    """Everything the report templates read, formatted, from one saved run.

    Parameters
    ----------
    run : AuditRun
        The results record (from the pipeline or :func:`audit.results.load_run`).

    Returns
    -------
    dict
        Keys: ``title``, ``verdict`` (value, label, headline, lead, counts line), ``counts``, ``facts``,
        ``top_features``, ``top_legend``, ``findings`` (worst first, each with ``evidence`` pairs and an
        ``evidence_line``), ``ranking``, ``classes``, ``signed``, ``convergence``, ``crosscheck``,
        ``expected``, ``slices``, ``drift``, ``noise``, ``images``, ``provenance``, ``notes``, ``artifacts``,
        ``sections`` (for the navigation) and ``generator``. Optional sections are ``None`` or empty when
        the run has no data for them. Charts are inline SVG marked safe; every other string is escaped by the templates.

    Raises
    ------
    ReportError
        If ``run`` is not an AuditRun or holds arrays that cannot be drawn (ragged image data, histogram
        edges that do not match their counts).
    """
    if not isinstance(run, AuditRun):
        raise ReportError(
            f"cannot render a {type(run).__name__}; pass an AuditRun (load one with audit.results.load_run)"
        )
    findings = [_finding_context(i, f) for i, f in enumerate(sort_findings(run.findings))]
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("fail", "warn", "info")}
    count_parts = [
        _plural(counts[sev], word)
        for sev, word in (("fail", "failure"), ("warn", "warning"), ("info", "note"))
        if counts[sev]
    ] or ["no findings"]
    flags = _feature_flags(run)
    ranked = sorted(run.features, key=lambda s: (s.rank, s.name))
    top_features = [
        {
            "rank": s.rank,
            "name": s.name,
            "share": fmt_pct(s.share),
            "mean_abs": fmt_num(s.mean_abs),
            "flag": flags.get(s.name, ""),
        }
        for s in ranked[:TOP_SUMMARY_FEATURES]
    ]
    verdict = run.verdict.value
    model_name = PurePath(run.provenance.model_path).name if run.provenance.model_path else ""
    ctx: dict[str, Any] = {
        "title": f"Model audit: {model_name}" if model_name else "Model audit",
        "verdict": {
            "value": verdict,
            "label": verdict.upper(),
            "headline": _VERDICT_HEADLINE[verdict],
            "lead": _headline(run, findings, counts),
            "counts": " · ".join(count_parts),
        },
        "counts": counts,
        "facts": _facts(run),
        "top_features": top_features,
        "top_legend": [
            (k, _FLAG_LEGEND[k]) for k in ("fail", "warn", "noise") if any(t["flag"] == k for t in top_features)
        ],
        "findings": findings,
        "ranking": _ranking(run, flags),
        "classes": _classes(run),
        "signed": _signed(run),
        "signed_subject": _signed_subject(run),
        "convergence": _convergence(run),
        "crosscheck": _crosscheck(run),
        "expected": _expected(run),
        "slices": _slices(run),
        "drift": _drift(run),
        "noise": _noise(run, flags),
        "images": _images(run),
        "provenance": _provenance(run),
        "notes": list(run.notes),
        "artifacts": _artifacts(run),
        "generator": f"audit {__version__}, results schema v{run.schema_version}",
        "n_rows": fmt_num(run.n_rows),
    }
    ctx["sections"] = _sections(ctx)
    return ctx


def _sections(ctx: dict[str, Any]) -> list[tuple[str, str]]:
    wanted = [
        ("findings", "Findings", True),
        ("ranking", "Global ranking", ctx["ranking"] is not None),
        ("classes", "Per class", ctx["classes"] is not None),
        ("signed", "Direction", bool(ctx["signed"])),
        ("images", "Images", ctx["images"] is not None),
        ("expected", "Known answer", ctx["expected"] is not None),
        ("noise", "Noise features", ctx["noise"] is not None),
        ("slices", "Slices", ctx["slices"] is not None),
        ("drift", "Drift", ctx["drift"] is not None),
        ("convergence", "Convergence", True),
        ("crosscheck", "Captum cross-check", True),
        ("provenance", "Provenance", True),
    ]
    return [(anchor, label) for anchor, label, present in wanted if present]
