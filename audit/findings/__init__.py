"""findings layer: pure functions from analysis results to :class:`~audit.results.Finding` records.

One module per detector family (``noise``, ``leakage``, ``skew``, ``baseline``, ``convergence``,
``crosscheck``); :func:`run_detectors` runs every detector whose inputs are present in a
:class:`FindingsInput` and returns the findings worst first. Codes are stable strings:

========================  ======================================  ======================
code                      module                                  severity
========================  ======================================  ======================
``noise_leakage``         :mod:`audit.findings.noise`             warn / fail
``target_leakage``        :mod:`audit.findings.leakage`           fail
``identifier_leakage``    :mod:`audit.findings.leakage`           warn / fail (rank 1)
``concentration_skew``    :mod:`audit.findings.skew`              info
``slice_skew``            :mod:`audit.findings.skew`              warn
``drift_skew``            :mod:`audit.findings.skew`              warn
``baseline_not_neutral``  :mod:`audit.findings.baseline`          info
``not_converged``         :mod:`audit.findings.convergence`       warn / fail
``engine_disagreement``   :mod:`audit.findings.crosscheck`        info / warn / fail
``spatial_leakage``       :mod:`audit.findings.spatial`           warn / fail
========================  ======================================  ======================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from audit.analysis.neutralisation import NeutralisationStat
from audit.analysis.task import TASK_NAMES
from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings import baseline, convergence, crosscheck, leakage, noise, skew, spatial
from audit.results import Convergence, Crosscheck, DriftStat, FeatureStat, Finding, SliceProfile

__all__ = ["FindingsInput", "run_detectors", "sort_findings", "CODES", "TASKS"]

CODES = (
    noise.CODE,
    leakage.TARGET_CODE,
    leakage.IDENTIFIER_CODE,
    skew.CONCENTRATION_CODE,
    skew.SLICE_CODE,
    skew.DRIFT_CODE,
    baseline.CODE,
    convergence.CODE,
    crosscheck.CODE,
    spatial.CODE,
)
TASKS = TASK_NAMES


@dataclass(frozen=True, eq=False)
class FindingsInput:
    """Everything the detectors read, computed by the pipeline. Optional parts switch their detectors off.

    Attributes
    ----------
    task : str
        One of :data:`audit.analysis.task.TASK_NAMES`.
    stats : tuple of FeatureStat
        The global ranking (:func:`audit.analysis.global_ranking`).
    names : tuple of str
        Feature names in column order: the order of ``univariate`` and ``identifier``. Defaults to the
        ranking's names in rank order when empty (then leave both arrays out).
    univariate : ndarray of shape (n_features,), optional
        :func:`audit.analysis.univariate_power` (needs the target); switches on ``target_leakage``.
    univariate_low : ndarray of shape (n_features,), optional
        Bootstrap lower bounds of those scores where they reach ``leak_univariate`` (NaN elsewhere).
    univariate_reverse : ndarray of shape (n_features,), optional
        How much of those columns the target explains (:func:`audit.analysis.univariate.target_explains`).
    identifier : ndarray of bool, shape (n_features,), optional
        :func:`audit.analysis.identifier_like`; switches on ``identifier_leakage``.
    declared_noise : tuple of str
        Features the user declared as noise (route 1 of ``noise_leakage``).
    neutralisation : tuple of NeutralisationStat
        Benefit of each candidate feature or correlated group (:mod:`audit.analysis.neutralisation`); route 2
        of ``noise_leakage``.
    slices : tuple of SliceProfile
        :func:`audit.analysis.slice_profiles`; switches on ``slice_skew``.
    drift : tuple of DriftStat
        :func:`audit.analysis.drift`; switches on ``drift_skew``.
    n_rows, n_ref_rows : int, optional
        Rows of audited and reference data behind ``drift``; with both, KS within sampling noise is ignored.
    baseline_output : float or ndarray, optional
        ``F(baseline)``: a number (regression) or the output vector (classification); switches on
        ``baseline_not_neutral``.
    output_mean, output_std : float, optional
        Mean and std of ``F(x)`` over the audited rows (regression baseline check).
    class_names : tuple of str
        Class names for messages.
    convergence : Convergence, optional
        Switches on ``not_converged``.
    crosscheck : Crosscheck, optional
        Switches on ``engine_disagreement``.
    """

    task: str
    stats: tuple[FeatureStat, ...]
    names: tuple[str, ...] = ()
    univariate: np.ndarray | None = None
    univariate_low: np.ndarray | None = None
    univariate_reverse: np.ndarray | None = None
    identifier: np.ndarray | None = None
    declared_noise: tuple[str, ...] = ()
    neutralisation: tuple[NeutralisationStat, ...] = ()
    slices: tuple[SliceProfile, ...] = ()
    drift: tuple[DriftStat, ...] = ()
    n_rows: int | None = None
    n_ref_rows: int | None = None
    baseline_output: float | np.ndarray | None = None
    output_mean: float | None = None
    output_std: float | None = None
    class_names: tuple[str, ...] = ()
    convergence: Convergence | None = None
    crosscheck: Crosscheck | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UsageError(f"unknown task '{self.task}'; use one of {', '.join(TASKS)}")
        object.__setattr__(self, "stats", tuple(self.stats))
        if not self.stats:
            raise UsageError("FindingsInput needs the global ranking (stats); run global_ranking first")
        if not self.names:
            if self.univariate is not None or self.identifier is not None:
                raise UsageError("pass names (column order) together with univariate / identifier arrays")
            object.__setattr__(self, "names", tuple(s.name for s in self.stats))
        object.__setattr__(self, "names", tuple(self.names))
        if set(self.names) != {s.name for s in self.stats} or len(self.names) != len(self.stats):
            raise UsageError("names must list exactly the features of the ranking, in column order")
        object.__setattr__(self, "declared_noise", tuple(self.declared_noise))
        object.__setattr__(self, "slices", tuple(self.slices))
        object.__setattr__(self, "drift", tuple(self.drift))
        object.__setattr__(self, "neutralisation", tuple(self.neutralisation))
        object.__setattr__(self, "class_names", tuple(self.class_names))


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Worst first (fail, warn, info), then by code, then by the features involved and the message."""
    return tuple(sorted(findings, key=lambda f: (-f.severity.order, f.code, f.features, f.message)))


def run_detectors(inp: FindingsInput, thresholds: Thresholds) -> tuple[Finding, ...]:
    """Run every detector whose inputs are present and return the findings worst first.

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
    out += noise.detect(
        stats=inp.stats,
        thresholds=thresholds,
        declared_noise=inp.declared_noise,
        neutralisation=inp.neutralisation,
    )
    out += leakage.detect(
        stats=inp.stats,
        names=inp.names,
        thresholds=thresholds,
        univariate=inp.univariate,
        univariate_low=inp.univariate_low,
        reverse=inp.univariate_reverse,
        identifier=inp.identifier,
        task=inp.task,
    )
    out += skew.detect(
        stats=inp.stats,
        thresholds=thresholds,
        slices=inp.slices,
        drift=inp.drift,
        n_rows=inp.n_rows,
        n_ref_rows=inp.n_ref_rows,
    )
    if inp.baseline_output is not None:
        out += baseline.detect(
            task=inp.task,
            baseline_output=inp.baseline_output,
            thresholds=thresholds,
            output_mean=inp.output_mean,
            output_std=inp.output_std,
            class_names=inp.class_names,
        )
    if inp.convergence is not None:
        out += convergence.detect(convergence=inp.convergence, thresholds=thresholds)
    if inp.crosscheck is not None:
        out += crosscheck.detect(crosscheck=inp.crosscheck, thresholds=thresholds)
    return sort_findings(out)
