"""What several report sections share: feature flags from the findings, chart markup, recorded thresholds and
the :class:`Scope` a modality gives the cover. Private to :mod:`audit.report.sections` (public names)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from markupsafe import Markup

from audit.report import charts
from audit.results import AuditRun, Severity

__all__ = ["FLAG_COLOUR", "FLAG_LEGEND", "Scope", "markup", "feature_flags", "recorded_thresholds"]

FLAG_COLOUR = {"fail": charts.PALETTE["fail"], "warn": charts.PALETTE["warn"], "noise": charts.PALETTE["noise"]}
FLAG_LEGEND = {"fail": "named in a failing finding", "warn": "named in a warning", "noise": "declared noise"}


class Scope(NamedTuple):
    """What a run audited, as the cover says it.

    Attributes
    ----------
    facts : list of (str, str)
        Key facts (label, value), e.g. rows and features, or images and classes.
    audited : str
        The start of the cover's lead sentence when nothing failed (``"12 features audited on 500 rows"``).
    picture : str
        A ``data:`` URI shown on the cover when the run ranks no features (``""`` for none).
    """

    facts: list[tuple[str, str]]
    audited: str
    picture: str = ""


def markup(svg: str) -> Markup:
    """A chart's SVG marked safe for the templates (:mod:`audit.report.charts` escapes every text it writes)."""
    return Markup(svg)


def feature_flags(run: AuditRun) -> dict[str, str]:
    """feature -> worst severity of a finding that names it ("noise" for declared noise with no finding); a
    finding that names a feature group flags the group and each of its columns."""
    flags: dict[str, str] = {}
    members = {g.name: g.members for g in run.groups}
    for f in run.findings:
        sev = Severity(f.severity)
        if sev is Severity.INFO:
            continue
        for name in [n for x in f.features for n in (x, *members.get(x, ()))]:
            if name not in flags or sev.order > Severity(flags[name]).order:
                flags[name] = sev.value
    for name in run.declared_noise:
        flags.setdefault(name, "noise")
    return flags


def recorded_thresholds(run: AuditRun) -> Mapping[str, Any]:
    """The ``thresholds`` table of the run's recorded config (empty when the record has none)."""
    t = run.provenance.config.get("thresholds") if isinstance(run.provenance.config, Mapping) else None
    return t if isinstance(t, Mapping) else {}
