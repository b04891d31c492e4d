"""What every detector shares: the :class:`FindingsInput` it reads and the :class:`Detector` record it registers.

A detector module (``noise``, ``leakage``, ...) keeps its detection function, its finding code, its title and
a :class:`Detector` record that says when it applies and how it reads a :class:`FindingsInput`;
:mod:`audit.findings.registry` lists those records in one order and runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from audit.analysis.convergence_cause import ConvergenceCause
from audit.analysis.neutralisation import NeutralisationStat
from audit.analysis.occlusion import OcclusionStat
from audit.analysis.task import TASK_NAMES
from audit.analysis.tokens import TokenMaskingStat
from audit.config import Thresholds
from audit.errors import UsageError
from audit.results import BaselineSensitivity, Convergence, Crosscheck, DriftStat, FeatureStat, Finding, SliceProfile

__all__ = ["FindingsInput", "Detector", "TASKS", "IMAGE_TASKS", "TEXT_TASKS", "is_tabular", "fixed_title"]

IMAGE_TASKS = ("image_classification",)  # the ranking holds colour channels, not feature columns
TEXT_TASKS = ("text_classification",)  # the ranking holds tokens, not feature columns
TASKS = TASK_NAMES


@dataclass(frozen=True, eq=False)
class FindingsInput:
    """Everything the detectors read, computed by the pipeline. Optional parts switch their detectors off.

    Attributes
    ----------
    task : str
        One of :data:`audit.analysis.task.TASK_NAMES`.
    stats : tuple of FeatureStat
        The global ranking (:func:`audit.analysis.global_ranking`); for an image run, the colour channels.
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
    spatial_mean_map : ndarray of shape (H, W), optional
        Mean of the mass-normalised per-image |attribution| maps; with ``spatial_maps`` switches on
        ``spatial_leakage``.
    spatial_maps : ndarray of shape (n_images, H, W), optional
        Per-image |attribution| maps (any scale per image).
    spatial_groups : ndarray of shape (n_images,), optional
        Class index per image (-1 = none), so a mark in one class only is found too.
    spatial_group_names : tuple of str
        Class names by index, for the messages.
    token_masking : tuple of TokenMaskingStat
        Text runs: what masking each candidate token does (:mod:`audit.analysis.tokens`); switches on
        ``spurious_token``.
    unit_stats : tuple of FeatureStat
        The grouped ranking (:mod:`audit.analysis.groups`) when the run has feature groups, else empty. When
        given, ``univariate``, ``univariate_low``, ``univariate_reverse``, ``separation`` and ``separation_low``
        hold one value per unit, in the order of ``unit_names``, and ``target_leakage`` judges the units.
    unit_names : tuple of str
        The units (groups and ungrouped columns) in that order.
    separation, separation_low : ndarray of shape (n_units,), optional
        Classifiers: :func:`audit.analysis.separation.rule_separation` (NaN where not computed).
    class_counts : tuple of int
        Classifiers: rows per class of the labels (of the predictions without labels), for ``small_sample``.
    spatial_occlusion : tuple of OcclusionStat, optional
        Image runs: what occluding each candidate region of ``spatial_leakage`` did
        (:mod:`audit.analysis.occlusion`); None when it was not measured (candidates are then at most ``warn``).
    baseline_sensitivity : BaselineSensitivity, optional
        The ranking under a second baseline (:mod:`audit.analysis.baseline_sensitivity`); switches on
        ``baseline_sensitive``.
    convergence_cause : ConvergenceCause, optional
        What re-running the unconverged rows showed (:mod:`audit.analysis.convergence_cause`): lets
        ``not_converged`` name the cause and advice that works.
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
    spatial_mean_map: np.ndarray | None = None
    spatial_maps: np.ndarray | None = None
    spatial_groups: np.ndarray | None = None
    spatial_group_names: tuple[str, ...] = ()
    token_masking: tuple[TokenMaskingStat, ...] = ()
    unit_stats: tuple[FeatureStat, ...] = ()
    unit_names: tuple[str, ...] = ()
    separation: np.ndarray | None = None
    separation_low: np.ndarray | None = None
    class_counts: tuple[int, ...] = ()
    spatial_occlusion: tuple[OcclusionStat, ...] | None = None
    baseline_sensitivity: BaselineSensitivity | None = None
    convergence_cause: ConvergenceCause | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise UsageError(f"unknown task '{self.task}'; use one of {', '.join(TASKS)}")
        object.__setattr__(self, "stats", tuple(self.stats))
        if not self.stats:
            raise UsageError("FindingsInput needs the global ranking (stats); run global_ranking first")
        object.__setattr__(self, "unit_stats", tuple(self.unit_stats))
        object.__setattr__(self, "unit_names", tuple(self.unit_names))
        if set(self.unit_names) != {s.name for s in self.unit_stats} or len(self.unit_names) != len(self.unit_stats):
            raise UsageError("unit_names must list exactly the units of unit_stats")
        if not self.names:
            if self.univariate is not None or self.identifier is not None:
                raise UsageError("pass names (column order) together with univariate / identifier arrays")
            object.__setattr__(self, "names", tuple(s.name for s in self.stats))
        object.__setattr__(self, "names", tuple(self.names))
        if set(self.names) != {s.name for s in self.stats} or len(self.names) != len(self.stats):
            raise UsageError("names must list exactly the features of the ranking, in column order")
        if (self.spatial_mean_map is None) != (self.spatial_maps is None):
            raise UsageError("pass spatial_mean_map and spatial_maps together (both switch on spatial_leakage)")
        if self.spatial_maps is None and (self.spatial_groups is not None or self.spatial_group_names):
            raise UsageError("spatial_groups and spatial_group_names need spatial_mean_map and spatial_maps")
        for name in ("declared_noise", "slices", "drift", "neutralisation", "class_names", "spatial_group_names",
                     "token_masking", "class_counts"):
            object.__setattr__(self, name, tuple(getattr(self, name)))


def is_tabular(inp: FindingsInput) -> bool:
    """True when the ranking in ``inp`` holds feature columns (not the colour channels of an image run)."""
    return inp.task not in IMAGE_TASKS + TEXT_TASKS


@dataclass(frozen=True)
class Detector:
    """One detector as the registry runs it.

    Attributes
    ----------
    code : str
        The stable finding code it emits (``noise_leakage``, ...).
    title : callable
        ``title(evidence) -> str``: a short heading for one of its findings; ``evidence`` (the finding's
        evidence dict, or None) may refine it.
    applies : callable
        ``applies(inp) -> bool``: whether its inputs are present in a :class:`FindingsInput`.
    detect : callable
        ``detect(inp, thresholds) -> list[Finding]``: the findings on ``inp`` (only called when it applies).
    """

    code: str
    title: Callable[[Mapping[str, Any] | None], str]
    applies: Callable[[FindingsInput], bool]
    detect: Callable[[FindingsInput, Thresholds], list[Finding]]


def fixed_title(text: str) -> Callable[[Mapping[str, Any] | None], str]:
    """A ``title(evidence)`` that ignores the evidence and returns ``text``."""

    def title(evidence: Mapping[str, Any] | None = None) -> str:
        return text

    title.__doc__ = f"Always {text!r}."
    return title
