"""``noise_leakage``: the model relies on a feature that carries no information about the target.

Two routes, one finding per feature:

1. *Declared*: the user named the feature as noise (``--noise-features``) and its attribution is clearly real:
   ``share >= real_share_factor / n_features`` and the bootstrap interval of its mean |attribution| is above 0.
2. *Neutralisation* (needs the target): the feature has real attribution, yet setting it to its baseline value
   does not worsen the model's loss by at least ``neutralise_rel_gain * base_loss`` (or even improves it). A
   feature that moves the output without helping the fit is noise to the model, declared or not.

Severity: ``fail`` when the feature's share is at least ``noise_fail_share_factor / n_features`` (it carries as
much as an average feature), ``warn`` below. A model that ignores its noise columns gives them shares far
below the real-attribution bar and is never flagged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings._common import _check_stats, _fmt, _num, _pct, _real_bar
from audit.results import FeatureStat, Finding, Severity

__all__ = ["detect", "CODE"]

CODE = "noise_leakage"


def detect(
    *,
    stats: Sequence[FeatureStat],
    thresholds: Thresholds,
    declared_noise: Sequence[str] = (),
    base_loss: float | None = None,
    neutralised_loss: Mapping[str, float] | None = None,
) -> list[Finding]:
    """Flag features the model relies on although they carry no signal.

    Parameters
    ----------
    stats : sequence of FeatureStat
        The global ranking (:func:`audit.analysis.global_ranking`), one per feature.
    thresholds : Thresholds
        Uses ``real_share_factor``, ``neutralise_rel_gain`` and ``noise_fail_share_factor``.
    declared_noise : sequence of str, default=()
        Feature names the user declared as noise (patterns already matched by the pipeline). Unknown names
        are an error.
    base_loss : float, optional
        The model's loss on the audited rows (MSE or cross-entropy). Route 2 runs only with it.
    neutralised_loss : mapping of str to float, optional
        The loss with one feature set to its baseline value, for (some of) the features with real attribution.

    Returns
    -------
    list of Finding
        One ``noise_leakage`` finding per flagged feature, in rank order; evidence says which route.
    """
    stats = _check_stats(stats)
    n_features = len(stats)
    by_name = {s.name: s for s in stats}
    unknown = [nm for nm in declared_noise if nm not in by_name]
    if unknown:
        raise UsageError(f"declared noise feature '{unknown[0]}' is not among the model's features")
    bar = _real_bar(thresholds.real_share_factor, n_features)
    fail_share = thresholds.noise_fail_share_factor / n_features
    declared = set(declared_noise)
    n_real_cols = n_features - len(declared)
    mean_real_share = (1.0 - sum(by_name[nm].share for nm in declared)) / n_real_cols if n_real_cols else 0.0

    findings: list[Finding] = []
    flagged: set[str] = set()
    for s in stats:  # route 1, in rank order
        if s.name in declared and s.share >= bar and s.ci_low > 0:
            flagged.add(s.name)
            findings.append(
                Finding(
                    code=CODE,
                    severity=Severity.FAIL if s.share >= fail_share else Severity.WARN,
                    features=(s.name,),
                    message=(
                        f"The model relies on '{s.name}', which you declared as noise: it carries {_pct(s.share)} "
                        f"of all attribution (rank {s.rank} of {n_features}; a real feature averages "
                        f"{_pct(mean_real_share)})."
                    ),
                    evidence={
                        "route": "declared",
                        "share": _num(s.share),
                        "rank": s.rank,
                        "mean_abs_ci_low": _num(s.ci_low),
                        "mean_abs_ci_high": _num(s.ci_high),
                        "real_share_bar": _num(bar),
                        "fail_share": _num(fail_share),
                        "mean_real_share": _num(mean_real_share),
                    },
                )
            )

    if base_loss is None or not neutralised_loss:
        return findings
    base = _finite(base_loss, "base_loss")
    for name, loss in neutralised_loss.items():
        if name not in by_name:
            raise UsageError(f"neutralised loss given for '{name}', which is not among the model's features")
        _finite(loss, f"neutralised loss of '{name}'")
    for s in stats:  # route 2, in rank order
        if s.name in flagged or s.name not in neutralised_loss or s.share < bar:
            continue
        loss = float(neutralised_loss[s.name])
        gain = loss - base
        if gain >= thresholds.neutralise_rel_gain * abs(base):
            continue
        rel = gain / abs(base) if base != 0 else None
        change = f", {100 * rel:+.1f}%" if rel is not None else ""
        findings.append(
            Finding(
                code=CODE,
                severity=Severity.FAIL if s.share >= fail_share else Severity.WARN,
                features=(s.name,),
                message=(
                    f"Setting '{s.name}' to its baseline value does not worsen the model's loss "
                    f"({_fmt(base)} -> {_fmt(loss)}{change}) although it carries {_pct(s.share)} of all "
                    "attribution, so the model relies on a feature that does not help it predict the target."
                ),
                evidence={
                    "route": "neutralisation",
                    "share": _num(s.share),
                    "rank": s.rank,
                    "base_loss": _num(base),
                    "neutralised_loss": _num(loss),
                    "loss_rel_change": _num(rel) if rel is not None else None,
                    "min_rel_gain": _num(thresholds.neutralise_rel_gain),
                    "real_share_bar": _num(bar),
                    "fail_share": _num(fail_share),
                },
            )
        )
    return findings


def _finite(x: float, what: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be a number, got {x!r}") from None
    if not math.isfinite(v):
        raise UsageError(f"{what} is {v}; the model's loss must be finite to judge neutralisation")
    return v
