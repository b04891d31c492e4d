"""Why rows did not converge: the evidence :mod:`audit.findings.convergence` names a cause and its advice from.

A row's completeness error (Sundararajan, Taly & Yan, ICML 2017, Prop. 1) stays above tolerance for one of a few
reasons, told apart by re-running the rows that missed it (:mod:`audit.modalities.tabular_baselines` does that on
a bounded sample of them):

- ``baseline_outside_data``: the baseline lies outside the audited data on some columns (the zero vector on a
  raw-scale table), so the path crosses regions the model never saw, where it saturates or bends sharply; the
  same rows converge against the data mean at the run's own settings;
- ``non_differentiable``: the output changes along the path while the gradients are ~0 (a step, rounding, an
  argmax or a tree inside the model): the attributions capture little of the change and more steps do not help;
- ``steep``: the output is flat (saturated) along most of the path and changes over a short stretch that the
  steps did not resolve; more steps (``--n-steps auto --max-steps 4096``) do;
- ``unresolved``: none of those re-runs fixed the rows.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConvergenceCause", "classify_cause", "CAUSES", "FIXED_SHARE", "CAPTURED_LOW"]

CAUSES = ("baseline_outside_data", "non_differentiable", "steep", "unresolved")
FIXED_SHARE = 0.5  # a re-run "fixes" the rows when at least this share of them converge with it
CAPTURED_LOW = 0.5  # attributions summing to less than this share of the output change: gradients ~0 on the path


@dataclass(frozen=True)
class ConvergenceCause:
    """What the re-runs of the unconverged rows showed.

    Attributes
    ----------
    cause : str
        One of :data:`CAUSES`.
    rows : int
        Unconverged rows re-run (a sample of them).
    baseline : str
        The run's baseline ("zero", "data mean", ...).
    outside : tuple of str
        Columns where the baseline lies outside the range of the audited data, farthest first (at most 5).
    outside_sd : tuple of float
        Their distance from the data mean, in standard deviations.
    n_outside : int
        How many columns lie outside (``outside`` lists at most 5).
    captured : float
        Median over the re-run rows of ``sum(attributions) / (F(x) - F(x'))`` at the run's settings (1 when
        complete, ~0 when the gradients are ~0 while the output moves).
    fixed_by_mean : float or None
        Share of the re-run rows that converge against the data mean at the run's steps (None when the baseline
        already is the data mean).
    fixed_by_steps : float or None
        Share that converge with ``n_steps="auto"`` up to ``steps_tried`` (None when the rows already had that).
    steps_tried : int or None
        The step limit of that re-run.
    """

    cause: str
    rows: int
    baseline: str
    outside: tuple[str, ...] = ()
    outside_sd: tuple[float, ...] = ()
    n_outside: int = 0
    captured: float = float("nan")
    fixed_by_mean: float | None = None
    fixed_by_steps: float | None = None
    steps_tried: int | None = None


def classify_cause(
    *, n_outside: int, captured: float, fixed_by_mean: float | None, fixed_by_steps: float | None
) -> str:
    """The cause the re-runs point to, in this order: a data-mean baseline fixes the rows and the baseline lies
    outside the data (``baseline_outside_data``); more steps fix them (``steep``); the attributions capture
    under :data:`CAPTURED_LOW` of the change (``non_differentiable``); else ``unresolved``."""
    if fixed_by_mean is not None and fixed_by_mean >= FIXED_SHARE and n_outside > 0:
        return "baseline_outside_data"
    if fixed_by_steps is not None and fixed_by_steps >= FIXED_SHARE:
        return "steep"
    if captured == captured and abs(captured) < CAPTURED_LOW:
        return "non_differentiable"
    return "unresolved"
