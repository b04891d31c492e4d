"""The report's sections, in page order: one module per section, each with ``build(run)``, listed once in
:data:`SECTIONS`.

``build(run)`` returns what the section's template partial reads (a dict; ``findings``: the list of finding
entries) or None when the run has nothing for that section, which leaves it off the page and out of the
table of contents. :func:`audit.report.context.build_context` runs the list; the page template loops over it
to include each present section's partial, and the navigation lists the same entries. The cover
(:mod:`audit.report.sections.summary`) sits above the sections and is always shown.

A section that only one kind of run has (``images``, ``text``) returns None for the others; what such a modality adds
to the shared cover comes from its ``scope`` (:data:`audit.report.sections.summary.SCOPES`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from audit.report.sections import (
    baseline,
    classes,
    convergence,
    crosscheck,
    drift,
    expected,
    findings,
    groups,
    images,
    noise,
    provenance,
    ranking,
    signed,
    slices,
    text,
)
from audit.results import AuditRun

__all__ = ["Section", "SECTIONS"]


class Section(NamedTuple):
    """One section of the report page.

    Attributes
    ----------
    anchor : str
        The section's id on the page (``#ranking``) and its key in the template context.
    label : str
        Its entry in the table of contents.
    template : str
        The partial that draws it, relative to the templates folder.
    build : callable
        ``build(run) -> dict | None``: the values the partial reads, None when the section is absent.
    """

    anchor: str
    label: str
    template: str
    build: Callable[[AuditRun], Any]


SECTIONS: tuple[Section, ...] = (
    Section("findings", "Findings", "partials/_findings.html.j2", findings.build),
    Section("ranking", "Global ranking", "partials/_ranking.html.j2", ranking.build),
    Section("groups", "Feature groups", "partials/_groups.html.j2", groups.build),
    Section("classes", "Per class", "partials/_classes.html.j2", classes.build),
    Section("signed", "Direction", "partials/_signed.html.j2", signed.build),
    Section("images", "Images", "partials/_images.html.j2", images.build),
    Section("text", "Tokens", "partials/_text.html.j2", text.build),
    Section("expected", "Known answer", "partials/_expected.html.j2", expected.build),
    Section("noise", "Noise features", "partials/_noise.html.j2", noise.build),
    Section("slices", "Slices", "partials/_slices.html.j2", slices.build),
    Section("drift", "Drift", "partials/_drift.html.j2", drift.build),
    Section("baseline", "Baseline", "partials/_baseline.html.j2", baseline.build),
    Section("convergence", "Convergence", "partials/_convergence.html.j2", convergence.build),
    Section("crosscheck", "Captum cross-check", "partials/_crosscheck.html.j2", crosscheck.build),
    Section("provenance", "Provenance", "partials/_provenance.html.j2", provenance.build),
)
