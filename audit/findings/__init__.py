"""findings layer: pure functions from analysis results to :class:`~audit.results.Finding` records.

One module per detector family (``noise``, ``leakage``, ``skew``, ``baseline``, ``baseline_sensitivity``,
``convergence``,
``crosscheck``, ``spatial``, ``tokens``); each registers a :class:`Detector` record (code, title, when it applies,
how it reads a :class:`FindingsInput`) in :data:`DETECTORS` (:mod:`audit.findings.registry`).
:func:`run_detectors` runs every detector whose inputs are present and returns the findings worst first, in
the one order :func:`sort_findings`; :func:`finding_title` gives a finding's heading. Codes are stable strings:

========================  ============================================  ============================
code                      module                                        severity
========================  ============================================  ============================
``noise_leakage``         :mod:`audit.findings.noise`                   warn / fail
``target_leakage``        :mod:`audit.findings.leakage`                 fail
``identifier_leakage``    :mod:`audit.findings.leakage`                 warn / fail (rank 1)
``concentration_skew``    :mod:`audit.findings.skew`                    info
``slice_skew``            :mod:`audit.findings.skew`                    warn
``drift_skew``            :mod:`audit.findings.skew`                    warn
``baseline_not_neutral``  :mod:`audit.findings.baseline`                info
``baseline_sensitive``    :mod:`audit.findings.baseline_sensitivity`    warn
``not_converged``         :mod:`audit.findings.convergence`             info / warn (fail: unusable)
``engine_disagreement``   :mod:`audit.findings.crosscheck`              info / warn / fail
``spatial_leakage``       :mod:`audit.findings.spatial`                 warn / fail
``spurious_token``        :mod:`audit.findings.tokens`                  warn / fail
========================  ============================================  ============================
"""

from audit.findings.base import IMAGE_TASKS, TASKS, TEXT_TASKS, Detector, FindingsInput
from audit.findings.registry import CODES, DETECTORS, detector, finding_title, run_detectors, sort_findings

__all__ = [
    "FindingsInput",
    "Detector",
    "DETECTORS",
    "CODES",
    "TASKS",
    "IMAGE_TASKS",
    "TEXT_TASKS",
    "detector",
    "finding_title",
    "run_detectors",
    "sort_findings",
]
