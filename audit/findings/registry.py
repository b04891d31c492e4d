"""The detector registry: every :class:`~audit.findings.base.Detector` in one order, run by :func:`run_detectors`.

Each detector module owns its record (code, title, when it applies, how it reads a
:class:`~audit.findings.base.FindingsInput`); this module only lists them, so a new detector is one module and
one line here. The tabular and the image path share the list: what a run gets is decided by which inputs its
``FindingsInput`` holds and by its task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from audit.config import Thresholds
from audit.findings import (
    baseline,
    baseline_sensitivity,
    convergence,
    crosscheck,
    leakage,
    noise,
    sample,
    skew,
    spatial,
    tokens,
)
from audit.findings.base import Detector, FindingsInput
from audit.results import Finding, Severity

__all__ = ["DETECTORS", "CODES", "detector", "finding_title", "sort_findings", "run_detectors"]

DETECTORS: tuple[Detector, ...] = (
    noise.DETECTOR,
    leakage.TARGET_DETECTOR,
    leakage.IDENTIFIER_DETECTOR,
    skew.CONCENTRATION_DETECTOR,
    skew.SLICE_DETECTOR,
    skew.DRIFT_DETECTOR,
    baseline.DETECTOR,
    baseline_sensitivity.DETECTOR,
    convergence.DETECTOR,
    crosscheck.DETECTOR,
    spatial.DETECTOR,
    tokens.DETECTOR,
    sample.DETECTOR,
)
CODES: tuple[str, ...] = tuple(d.code for d in DETECTORS)
_BY_CODE: dict[str, Detector] = {d.code: d for d in DETECTORS}
if len(_BY_CODE) != len(DETECTORS):  # two records sharing a code is a bug in this list
    raise RuntimeError(f"detector codes are not unique: {CODES}")


def detector(code: str) -> Detector | None:
    """The registered detector that emits ``code``, or None for a code no detector emits."""
    return _BY_CODE.get(code)


def finding_title(code: str, evidence: Mapping[str, Any] | None = None) -> str:
    """A short heading for a finding.

    Parameters
    ----------
    code : str
        The finding code (``target_leakage`` -> ``Possible target leakage``).
    evidence : mapping, optional
        The finding's evidence; a detector may refine its title with it (``noise_leakage`` names the route).

    Returns
    -------
    str
        The detector's title; for a code no detector emits (a newer or older ``audit.json``), the code in
        words (``odd_new_code`` -> ``Odd new code``).
    """
    found = _BY_CODE.get(code)
    if found is not None:
        return found.title(evidence)
    words = " ".join(p for p in str(code).replace("-", "_").split("_") if p) or str(code)
    return words[:1].upper() + words[1:]


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Worst first (fail, warn, info), then by code, then by the features involved and the message.

    The one order of findings: the pipelines, ``audit.json`` and the report all use it.
    """
    return tuple(sorted(findings, key=lambda f: (-Severity(f.severity).order, f.code, f.features, f.message)))


def run_detectors(inp: FindingsInput, thresholds: Thresholds) -> tuple[Finding, ...]:
    """Run every registered detector whose inputs are present and return the findings worst first.

    Parameters
    ----------
    inp : FindingsInput
        The analysis results and model-derived numbers.
    thresholds : Thresholds
        Detector thresholds (``audit.toml`` ``[thresholds]``).

    Returns
    -------
    tuple of Finding
        Sorted by :func:`sort_findings`.
    """
    out: list[Finding] = []
    for d in DETECTORS:
        if d.applies(inp):
            out += d.detect(inp, thresholds)
    return sort_findings(out)
