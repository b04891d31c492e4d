"""``noise_leakage``: the model relies on a feature that carries no information about the target.

Two routes:

1. *Declared*: the user named the feature as noise (``--noise-features``) and its attribution is clearly real:
   ``share >= real_share_factor / n_features`` and the bootstrap interval of its mean |attribution| is above 0.
2. *Neutralisation* (needs the target): a feature, or a group of correlated features, that the model relies on
   materially (``share >= noise_min_share_factor / n_features``: as much as an average feature) and that carries
   no information about the target on either count:

   - taking its information away (:mod:`audit.analysis.neutralisation`: averaging the model's predictions over
     shuffles of the column by default) costs the model less than ``noise_max_benefit`` of the loss its
     influence on the output would cost if it carried signal, at the upper end of a 95% bootstrap interval over
     rows (a genuine feature has a benefit ratio near 1; one the model follows without signal, near -1);
   - no member predicts the target on its own beyond chance (:func:`audit.analysis.univariate_power` at or
     below its 99% quantile under a shuffled target). An overfit model can make a real feature (diabetes' s3 and
     s4) look useless on held-out rows; the feature itself still tells about the target, so it is not noise.

Severity: declared features fail from ``noise_min_share_factor / n_features``, neutralisation findings from
``noise_fail_share_factor / n_features``; below, they warn. Small reliance on a noise column (a few tenths of
the uniform share, which every flexible model picks up) is below the bar and never flagged by neutralisation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from audit.analysis.neutralisation import NeutralisationStat
from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings._common import check_stats, fmt, num, pct, real_bar
from audit.findings.base import Detector, FindingsInput, is_tabular
from audit.results import FeatureStat, Finding, Severity

__all__ = ["detect", "title", "CODE", "DETECTOR"]

CODE = "noise_leakage"


def detect(
    *,
    stats: Sequence[FeatureStat],
    thresholds: Thresholds,
    declared_noise: Sequence[str] = (),
    neutralisation: Sequence[NeutralisationStat] = (),
    n_units: int | None = None,
) -> list[Finding]:
    """Flag features the model relies on although they carry no signal.

    Parameters
    ----------
    stats : sequence of FeatureStat
        The global ranking (:func:`audit.analysis.global_ranking`), one per feature.
    thresholds : Thresholds
        Uses ``real_share_factor``, ``noise_min_share_factor``, ``noise_max_benefit`` and
        ``noise_fail_share_factor``.
    declared_noise : sequence of str, default=()
        Feature names the user declared as noise (patterns already matched by the pipeline). Unknown names
        are an error.
    neutralisation : sequence of NeutralisationStat, default=()
        The benefit of each candidate feature or correlated group (route 2 runs only with it).
    n_units : int, optional
        How many features a person counts when one-hot categories and declared groups count once (the grouped
        ranking's length); route 2's share bars are fractions of the average share of those. Default: one per
        column. A 6-level one-hot category that carries 12% of the attribution of 19 columns (9 such features) is
        about one average feature's share, not two.

    Returns
    -------
    list of Finding
        Declared features first, in rank order, then one finding per useless group; evidence says which route.
    """
    stats = check_stats(stats)
    n_features = len(stats)
    by_name = {s.name: s for s in stats}
    unknown = [nm for nm in declared_noise if nm not in by_name]
    if unknown:
        raise UsageError(f"declared noise feature '{unknown[0]}' is not among the model's features")
    bar = real_bar(thresholds.real_share_factor, n_features)
    declared_fail = thresholds.noise_min_share_factor / n_features  # route 1 judges single columns
    units = n_units or n_features
    material = thresholds.noise_min_share_factor / units
    fail_share = thresholds.noise_fail_share_factor / units
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
                    severity=Severity.FAIL if s.share >= declared_fail else Severity.WARN,
                    features=(s.name,),
                    message=(
                        f"The model relies on '{s.name}', which you declared as noise: it carries {pct(s.share)} "
                        f"of all attribution (rank {s.rank} of {n_features}; a real feature averages "
                        f"{pct(mean_real_share)})."
                    ),
                    evidence={
                        "route": "declared",
                        "share": num(s.share),
                        "rank": s.rank,
                        "mean_abs_ci_low": num(s.ci_low),
                        "mean_abs_ci_high": num(s.ci_high),
                        "real_share_bar": num(bar),
                        "fail_share": num(declared_fail),
                        "mean_real_share": num(mean_real_share),
                    },
                )
            )

    for g in sorted(neutralisation, key=lambda g: -g.share):  # route 2, largest share first
        unknown = [nm for nm in g.features if nm not in by_name]
        if unknown:
            raise UsageError(f"neutralisation evidence names '{unknown[0]}', which is not among the model's features")
        if set(g.features) & flagged or g.share < material or g.informative:
            continue
        if not (math.isfinite(g.ci_high) and g.ci_high < thresholds.noise_max_benefit):
            continue
        findings.append(_useless_group(g, by_name, material, fail_share, thresholds))
    return findings


def _useless_group(
    g: NeutralisationStat, by_name: dict[str, FeatureStat], material: float, fail_share: float,
    thresholds: Thresholds,
) -> Finding:
    names = g.features
    what = f"'{names[0]}'" if len(names) == 1 else (
        f"the group {', '.join(repr(n) for n in names[:4])}{' ...' if len(names) > 4 else ''}"
    )
    action = f"Shuffling {what} out of the model's predictions" if g.method == "permute" else (
        f"Setting {what} to the baseline")
    change = g.neutralised_loss - g.base_loss
    rel = change / abs(g.base_loss) if g.base_loss else None
    rel_text = f" ({100 * rel:+.1f}%)" if rel is not None else ""
    verb = "lowers the model's loss" if change < 0 else "raises the model's loss only"
    moved = f"{verb} from {fmt(g.base_loss)} to {fmt(g.neutralised_loss)}{rel_text}"
    return Finding(
        code=CODE,
        severity=Severity.FAIL if g.share >= fail_share else Severity.WARN,
        features=names,
        message=(
            f"{action} {moved}, although it carries {pct(g.share)} of all attribution: it delivers "
            f"{fmt(g.benefit)} of the benefit its influence on the output would bring if it carried signal "
            f"(95% CI {fmt(g.ci_low)} to {fmt(g.ci_high)}; a genuine feature gives about 1) and it does not "
            "predict the target on its own either, so the model relies on input that carries no signal."
        ),
        evidence={
            "route": "neutralisation",
            "method": g.method,
            "share": num(g.share),
            "ranks": [by_name[n].rank for n in names],
            "base_loss": num(g.base_loss),
            "neutralised_loss": num(g.neutralised_loss),
            "loss_rel_change": num(rel) if rel is not None else None,
            "benefit": num(g.benefit),
            "benefit_ci_low": num(g.ci_low),
            "benefit_ci_high": num(g.ci_high),
            "max_benefit": num(thresholds.noise_max_benefit),
            "rows": g.n_rows,
            "univariate_power": num(g.univariate),
            "univariate_null_99": num(g.univariate_null),
            "min_share": num(material),
            "fail_share": num(fail_share),
        },
    )


def title(evidence: Mapping[str, Any] | None = None) -> str:
    """The heading of a ``noise_leakage`` finding: it names the route (evidence ``route``) that reached it."""
    if (evidence or {}).get("route") == "declared":
        return "A declared noise feature is used"
    return "The model relies on a feature that does not help it predict"


def _applies(inp: FindingsInput) -> bool:
    return is_tabular(inp) and bool(inp.declared_noise or inp.neutralisation)


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect(
        stats=inp.stats, thresholds=thresholds, declared_noise=inp.declared_noise, neutralisation=inp.neutralisation,
        n_units=len(inp.unit_stats) or None,
    )


DETECTOR = Detector(code=CODE, title=title, applies=_applies, detect=_detect)
