"""``not_converged``: rows whose attributions do not add up to the change in the model's output.

By completeness (Sundararajan, Taly & Yan, ICML 2017) a row's attributions sum to ``F(x) - F(x')``; a row whose
relative error exceeds the tolerance has an integral that was not resolved with the steps used. That is a
numerical limit of the explanation, not a defect of the model, so it weakens the evidence and does not by itself
say "do not ship":

- ``info`` while fewer than ``not_converged_warn_fraction`` of the rows are above tolerance, ``warn`` from there;
- ``fail`` only when the attributions are unusable: the median row's relative error is at least
  ``not_converged_unusable`` (a typical row's attributions miss that share of its output change, so the ranking
  means nothing).

With a :class:`~audit.analysis.convergence_cause.ConvergenceCause` (tables: the unconverged rows re-run) the
message names the cause and gives only advice the re-runs showed to work, with options that exist and are
accepted: ``--baseline mean`` (the default) when the baseline lies outside the data and the data mean fixes the
rows; ``--n-steps auto --max-steps 4096`` when more steps fix them; none when the model is not differentiable along
the path (the output jumps while its gradients are ~0).
"""

from __future__ import annotations

from audit.analysis.convergence_cause import ConvergenceCause
from audit.attribution.quadrature import MAX_STEPS
from audit.config import Thresholds
from audit.findings._common import fmt, num, pct
from audit.findings.base import Detector, FindingsInput, fixed_title
from audit.results import Convergence, Finding, Severity

__all__ = ["detect", "CODE", "DETECTOR"]

CODE = "not_converged"


def _steps_option(convergence: Convergence) -> str | None:
    """The step option to suggest without a re-run, or None when the rows already had the most steps allowed."""
    if convergence.n_steps != "auto":
        return f"--n-steps auto --max-steps {MAX_STEPS}"
    used = [int(k) for k in convergence.steps_used if str(k).isdigit()]
    return None if used and max(used) >= MAX_STEPS else f"--max-steps {MAX_STEPS}"


def _steps_flag(convergence: Convergence) -> str:
    return f"--max-steps {MAX_STEPS}" if convergence.n_steps == "auto" else f"--n-steps auto --max-steps {MAX_STEPS}"


def _explain(convergence: Convergence, cause: ConvergenceCause | None) -> tuple[str, dict]:
    """The cause and advice sentence, and the evidence it rests on."""
    if cause is None:
        opt = _steps_option(convergence)
        advice = (f"more integration steps may resolve them ({opt})" if opt else
                  "the rows already had the most steps allowed; the model may be non-differentiable or saturate "
                  "along the path")  # fmt: skip
        return advice, {}
    ev: dict = {
        "cause": cause.cause, "rows_rerun": cause.rows, "captured_median": num(cause.captured),
        "fixed_by_mean": None if cause.fixed_by_mean is None else num(cause.fixed_by_mean),
        "fixed_by_steps": None if cause.fixed_by_steps is None else num(cause.fixed_by_steps),
        "columns_outside": cause.n_outside,
    }  # fmt: skip
    cols = ", ".join(
        f"'{c}' ({fmt(d)} sd from the mean)" for c, d in zip(cause.outside, cause.outside_sd, strict=True)
    )
    more = f" and {cause.n_outside - len(cause.outside)} more" if cause.n_outside > len(cause.outside) else ""
    k_rows = f"of {cause.rows} re-run rows"
    if cause.cause == "baseline_outside_data":
        return (
            f"cause: the {cause.baseline} baseline lies outside the data on {cause.n_outside} column(s) "
            f"({cols}{more}), so the path crosses inputs the model never saw, where it saturates or bends sharply; "
            f"against the data mean {pct(cause.fixed_by_mean)} {k_rows} converge: drop --baseline (the data mean "
            "is the default) or pass --baseline mean"
        ), ev
    if cause.cause == "steep":
        return (
            "cause: the output is flat (saturated) along most of the path and changes over a short stretch the "
            f"steps did not resolve; with {_steps_flag(convergence)} {pct(cause.fixed_by_steps)} {k_rows} converge: "
            "pass it"
        ), ev
    outside = (f"; the baseline also lies outside the data on {cause.n_outside} column(s) ({cols}{more}), but "
               f"against the data mean only {pct(cause.fixed_by_mean)} {k_rows} converge") if (
        cause.n_outside and cause.fixed_by_mean is not None) else ""  # fmt: skip
    if cause.cause == "non_differentiable":
        return (
            "cause: the output changes along the path while its gradients are ~0 (a step, rounding, an argmax or a "
            f"tree inside the model): the attributions capture only {pct(cause.captured)} of the change (median "
            f"{k_rows}) and more steps do not help; no option fixes that, the attributions cover only the "
            f"differentiable part of the model{outside}"
        ), ev
    tried = f"neither {MAX_STEPS:,} steps" + (" nor the data-mean baseline" if cause.fixed_by_mean is not None else "")
    return (
        f"cause not found: {tried} fixed the re-run rows (their attributions capture {pct(cause.captured)} of the "
        f"change); the model saturates or bends sharply along the path{outside}"
    ), ev


def detect(
    *, convergence: Convergence, thresholds: Thresholds, cause: ConvergenceCause | None = None
) -> list[Finding]:
    """Flag rows above the completeness tolerance.

    Parameters
    ----------
    convergence : Convergence
        From :func:`audit.analysis.summarize_convergence` (its ``tolerance``, ``n_not_converged``,
        ``median_rel_delta`` and ``steps_used`` are used, so the count matches what the report shows).
    thresholds : Thresholds
        Uses ``not_converged_warn_fraction`` and ``not_converged_unusable``.
    cause : ConvergenceCause, optional
        What re-running the unconverged rows showed; without it the advice is the step option (when the rows
        did not already have ``MAX_STEPS``).

    Returns
    -------
    list of Finding
        At most one ``not_converged`` finding: info, warn, or fail only when unusable.
    """
    n_bad, n = int(convergence.n_not_converged), int(convergence.n_rows)
    if n_bad <= 0 or n <= 0:
        return []
    frac = n_bad / n
    median = float(convergence.median_rel_delta)
    unusable = median == median and median >= thresholds.not_converged_unusable
    severity = Severity.FAIL if unusable else (
        Severity.WARN if frac >= thresholds.not_converged_warn_fraction else Severity.INFO)  # fmt: skip
    worst = convergence.max_rel_delta
    worst_txt = pct(worst) if worst < 1e4 else "far more"
    advice, cause_ev = _explain(convergence, cause)
    if unusable:
        verdict = (
            f"The attributions are unusable: the median row's attributions miss {pct(median)} of its output change "
            f"(at least {pct(thresholds.not_converged_unusable)} makes the ranking meaningless), and"
        )
    else:
        verdict = "Integrated Gradients"
    weak = "" if unusable else "; the ranking stands but rests on approximate rows"
    return [
        Finding(
            code=CODE,
            severity=severity,
            features=tuple(cause.outside) if cause is not None and cause.cause == "baseline_outside_data" else (),
            message=(
                f"{verdict} did not converge on {n_bad:,} of {n:,} rows ({pct(frac)}): their attributions miss the "
                f"change in the model's output by more than {pct(convergence.tolerance)} (worst {worst_txt}){weak}; "
                f"{advice}."
            ),
            evidence={
                "rows_not_converged": n_bad,
                "rows": n,
                "not_converged_fraction": num(frac),
                "warn_fraction": num(thresholds.not_converged_warn_fraction),
                "unusable_median": num(thresholds.not_converged_unusable),
                "unusable": bool(unusable),
                "tolerance": num(convergence.tolerance),
                "median_rel_delta": num(median),
                "max_rel_delta": num(worst),
                "p95_rel_delta": num(convergence.p95_rel_delta),
                "method": convergence.method,
                "n_steps": convergence.n_steps,
                **cause_ev,
            },
        )
    ]


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect(convergence=inp.convergence, thresholds=thresholds, cause=inp.convergence_cause)


DETECTOR = Detector(
    code=CODE,
    title=fixed_title("Attributions did not converge"),
    applies=lambda inp: inp.convergence is not None,
    detect=_detect,
)
