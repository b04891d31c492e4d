"""Skew detectors: attribution piled on few features, different across slices, or on drifted features.

- ``concentration_skew`` (info): the top feature carries ``>= top1_share`` of all attribution, or the top 3
  carry ``>= top3_share``. A rule applies only when its threshold is at least twice the share its group would
  have if attribution were uniform (top-1 from 4 features at 0.5, top-3 from 8 at 0.8), so two or three
  features are not "concentrated" by arithmetic. Evidence includes the Gini coefficient of the shares. Info, not
  a warning: a target that truly depends on one or two inputs (y = f1 + 0.5 f2) gives a healthy model exactly
  this profile, so concentration is a fact worth knowing, not a defect.
- ``slice_skew`` (warn): groups of a slicing column (with at least ``slice_min_rows`` rows) whose ranking
  disagrees with the global one (Spearman ``< slice_spearman``), or whose top feature differs from a clear
  global leader (global top share ``>= slice_top_share_factor / n_features``) that carries less than 2/3 of the
  group's own leader there (a near-tie at the top is not a different profile), or where one of the global top 5
  features with real attribution (``share >= real_share_factor / n_features``) pushes the output the other way:
  the 95% bootstrap interval of its average local effect (mean gradient times the feature's standard deviation)
  in the group and the one in the other rows (of the same explained class) lie on opposite sides of zero. A
  ranking compares only mean |attribution|, so a segment where the top feature's effect has the opposite sign
  ranks the same and passed before. One finding per column; a reversal leads its message.
- ``drift_skew`` (warn): the attribution-weighted KS summed over features is ``>= drift_weighted_ks``, or one of
  the 5 features with the largest share (and real attribution, ``share >= real_share_factor / n_features``)
  has KS ``>= drift_feature_ks``. Given the two sample sizes, a KS below
  its 1% critical value under no drift, ``1.63 * sqrt((n + m) / (n * m))`` (Smirnov, 1948), counts as 0, so
  sampling noise alone does not warn on small data (two samples of 500 rows reach KS 0.086 by chance 5% of
  the time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings._common import check_stats, num, pct
from audit.findings.base import Detector, FindingsInput, fixed_title, is_tabular
from audit.results import DriftStat, FeatureStat, Finding, Severity, SliceDirection, SliceProfile

__all__ = [
    "detect",
    "detect_concentration",
    "detect_slice_skew",
    "detect_drift_skew",
    "gini",
    "CONCENTRATION_CODE",
    "SLICE_CODE",
    "DRIFT_CODE",
    "CONCENTRATION_DETECTOR",
    "SLICE_DETECTOR",
    "DRIFT_DETECTOR",
]

CONCENTRATION_CODE = "concentration_skew"
SLICE_CODE = "slice_skew"
DRIFT_CODE = "drift_skew"
_MIN_CONTRAST = 2.0  # a top-k rule applies only when its threshold is >= this times the uniform share k / F
_SLICE_LEAD_RATIO = 2 / 3  # a group's top feature "differs" only when the global top has under this share of it
_DRIFT_TOP = 5  # features with the largest share checked one by one for drift
_DIRECTION_TOP = 5  # global top features whose direction is compared across slices (those with real attribution)
_KS_CRIT_1PCT = 1.628  # asymptotic 1% critical value of sqrt(n m / (n + m)) * KS under no drift


def gini(shares: np.ndarray) -> float:
    """Gini coefficient of non-negative shares: 0 when all are equal, ``(F - 1) / F`` when one has everything.

    Parameters
    ----------
    shares : ndarray of shape (n_features,)

    Returns
    -------
    float
        0.0 for an all-zero or single-element vector.
    """
    s = np.sort(np.asarray(shares, dtype=np.float64))  # ascending, (F,)
    total = s.sum()
    if s.size < 2 or total <= 0:
        return 0.0
    i = np.arange(1, s.size + 1)
    return float(((2 * i - s.size - 1) @ s) / (s.size * total))


def detect_concentration(*, stats: Sequence[FeatureStat], thresholds: Thresholds) -> list[Finding]:
    """Note when attribution sits on very few features (see the module notes for when each rule applies).

    Parameters
    ----------
    stats : sequence of FeatureStat
        The global ranking.
    thresholds : Thresholds
        Uses ``top1_share`` and ``top3_share``.

    Returns
    -------
    list of Finding
        At most one ``concentration_skew`` note (info).
    """
    stats = check_stats(stats)
    n_features = len(stats)
    shares = np.array([s.share for s in stats])  # by rank, (F,)
    top1 = float(shares[0])
    top3 = float(shares[:3].sum())
    use_top1 = thresholds.top1_share >= _MIN_CONTRAST * 1 / n_features
    use_top3 = n_features > 3 and thresholds.top3_share >= _MIN_CONTRAST * 3 / n_features
    hit1 = use_top1 and top1 >= thresholds.top1_share
    hit3 = use_top3 and top3 >= thresholds.top3_share
    if not (hit1 or hit3):
        return []
    names = [s.name for s in stats[:3]]
    if hit1:
        message = (
            f"Attribution is concentrated: '{names[0]}' alone carries {pct(top1)} of it "
            f"(the top 3 carry {pct(top3)}), so the model's behaviour hinges on very few of its {n_features} inputs."
        )
        involved = tuple(names[:1])
    else:
        message = (
            f"Attribution is concentrated: the top 3 features ({', '.join(repr(n) for n in names)}) carry "
            f"{pct(top3)} of it, so the model's behaviour hinges on very few of its {n_features} inputs."
        )
        involved = tuple(names)
    return [
        Finding(
            code=CONCENTRATION_CODE,
            severity=Severity.INFO,
            features=involved,
            message=message,
            evidence={
                "top1_share": num(top1),
                "top3_share": num(top3),
                "gini": num(gini(shares)),
                "n_features": n_features,
                "top1_share_threshold": num(thresholds.top1_share) if use_top1 else None,
                "top3_share_threshold": num(thresholds.top3_share) if use_top3 else None,
            },
        )
    ]


def _reversed(p: SliceProfile, judged: set[str]) -> list[SliceDirection]:
    """The judged features whose direction in group ``p`` and in the other rows have 95% intervals on opposite
    sides of zero: the feature's effect changes sign in the group."""
    return [
        d for d in p.directions
        if d.feature in judged and ((d.low > 0 and d.rest_high < 0) or (d.high < 0 and d.rest_low > 0))
    ]


def _signed(x: float) -> str:
    return f"{x:+.3g}"


def _direction_text(d: SliceDirection) -> str:
    where = "there" if not d.explained else f"there (rows explaining class {d.explained})"
    return (
        f"'{d.feature}' pushes the output the other way: one standard deviation more of it changes the output by "
        f"{_signed(d.effect)} on average {where} (95% CI {_signed(d.low)} to {_signed(d.high)}) against "
        f"{_signed(d.rest_effect)} in the other {d.rest_rows:,} rows ({_signed(d.rest_low)} to "
        f"{_signed(d.rest_high)})"
    )


def detect_slice_skew(
    *, slices: Sequence[SliceProfile], stats: Sequence[FeatureStat], thresholds: Thresholds
) -> list[Finding]:
    """Warn about groups whose attribution profile disagrees with the global one, or where a top feature's effect
    changes sign.

    Parameters
    ----------
    slices : sequence of SliceProfile
        From :func:`audit.analysis.slice_profiles` (any number of columns); ``directions`` switch on the
        reversed-effect rule.
    stats : sequence of FeatureStat
        The global ranking.
    thresholds : Thresholds
        Uses ``slice_spearman``, ``slice_min_rows``, ``slice_top_share_factor`` and ``real_share_factor`` (the
        features whose direction is judged carry real attribution).

    Returns
    -------
    list of Finding
        One ``slice_skew`` warning per column with at least one disagreeing group.
    """
    stats = check_stats(stats)
    top = stats[0]
    clear_leader = top.share >= thresholds.slice_top_share_factor / len(stats)
    judged = {s.name for s in stats[:_DIRECTION_TOP] if s.share >= thresholds.real_share_factor / len(stats)}
    by_column: dict[str, list[SliceProfile]] = {}
    for p in slices:
        by_column.setdefault(p.column, []).append(p)
    findings: list[Finding] = []
    for column, profiles in by_column.items():
        checked = [p for p in profiles if p.rows >= thresholds.slice_min_rows]
        flagged = []
        reversed_in: dict[str, list[SliceDirection]] = {}
        ranked = []
        for p in checked:
            by_rank = _ranks_differ(p, top, clear_leader, thresholds)
            rev = _reversed(p, judged)
            if rev:
                reversed_in[p.group] = rev
            if by_rank:
                ranked.append(p)
            if by_rank or rev:
                flagged.append(p)
        if not flagged:
            continue
        involved = [top.name] if ranked else []
        involved += [p.top_features[0] for p in ranked if p.top_features]
        involved += [d.feature for p in flagged for d in reversed_in.get(p.group, ())]
        if reversed_in:
            group = max(reversed_in, key=lambda g: max(_gap(d) for d in reversed_in[g]))
            worst = next(p for p in flagged if p.group == group)
            d = max(reversed_in[group], key=_gap)
            message = (
                f"In group '{worst.group}' of '{column}' ({worst.rows:,} rows) {_direction_text(d)}; a model whose "
                f"effect reverses in one segment treats that segment by a different rule, which is worth checking "
                f"({len(flagged)} of {len(checked)} groups differ)."
            )
        else:
            worst = min(flagged, key=lambda p: p.spearman_vs_all if math.isfinite(p.spearman_vs_all) else math.inf)
            worst_top = worst.top_features[0] if worst.top_features else ""
            detail = f"Spearman {worst.spearman_vs_all:.2f} with the global ranking"
            if worst_top and worst_top != top.name:
                detail += f", top feature '{worst_top}' instead of '{top.name}'"
            message = (
                f"In {len(flagged)} of {len(checked)} groups of '{column}' the model relies on different "
                f"features than overall (group '{worst.group}' with {worst.rows} rows: {detail})."
            )
        findings.append(
            Finding(
                code=SLICE_CODE,
                severity=Severity.WARN,
                features=tuple(dict.fromkeys(involved)),
                message=message,
                evidence={
                    "column": column,
                    "groups_checked": len(checked),
                    "groups_flagged": len(flagged),
                    "flagged": [
                        {
                            "group": p.group,
                            "rows": p.rows,
                            "spearman": num(p.spearman_vs_all),
                            "top_feature": p.top_features[0] if p.top_features else "",
                        }
                        for p in flagged
                    ],
                    "reversed": [
                        {
                            "group": g, "feature": d.feature, "explained": d.explained,
                            "effect": num(d.effect), "effect_ci": [num(d.low), num(d.high)], "rows": d.rows,
                            "rest_effect": num(d.rest_effect), "rest_effect_ci": [num(d.rest_low), num(d.rest_high)],
                            "rest_rows": d.rest_rows,
                        }
                        for g, ds in reversed_in.items() for d in ds
                    ],  # fmt: skip
                    "global_top_feature": top.name,
                    "global_top_share": num(top.share),
                    "min_spearman": num(thresholds.slice_spearman),
                },
            )
        )
    return findings


def _gap(d: SliceDirection) -> float:
    """How far apart the group's and the other rows' direction intervals are (> 0: no overlap)."""
    return max(d.low - d.rest_high, d.rest_low - d.high)


def _ranks_differ(p: SliceProfile, top: FeatureStat, clear_leader: bool, thresholds: Thresholds) -> bool:
    """Whether group ``p`` is flagged by its ranking (not only by a reversed direction)."""
    low_rho = math.isfinite(p.spearman_vs_all) and p.spearman_vs_all < thresholds.slice_spearman
    new_top = (
        clear_leader and bool(p.top_features) and p.top_features[0] != top.name
        # a near-tie at the top of a group is not a different profile: the group's own leader must carry
        # 1.5 times the global leader's share in the group (near-ties on healthy models: 0.9-1.0)
        and p.shares.get(top.name, 0.0) < _SLICE_LEAD_RATIO * p.shares.get(p.top_features[0], 0.0)
    )
    return low_rho or new_top


def detect_drift_skew(
    *,
    drift: Sequence[DriftStat],
    thresholds: Thresholds,
    n_rows: int | None = None,
    n_ref_rows: int | None = None,
) -> list[Finding]:
    """Warn when the audited data drifted from the reference in the features the model relies on.

    Parameters
    ----------
    drift : sequence of DriftStat
        From :func:`audit.analysis.drift`, one per feature.
    thresholds : Thresholds
        Uses ``drift_weighted_ks``, ``drift_feature_ks`` and ``real_share_factor``.
    n_rows, n_ref_rows : int, optional
        Rows of the audited and the reference data the KS statistics came from. With both, KS values within
        sampling noise (below the 1% critical value) are not counted as drift.

    Returns
    -------
    list of Finding
        At most one ``drift_skew`` warning.
    """
    drift = tuple(drift)
    if not drift:
        return []
    noise_ks = 0.0
    if n_rows is not None and n_ref_rows is not None:
        if n_rows < 1 or n_ref_rows < 1:
            raise UsageError(f"n_rows and n_ref_rows must be >= 1, got {n_rows} and {n_ref_rows}")
        noise_ks = _KS_CRIT_1PCT * math.sqrt((n_rows + n_ref_rows) / (n_rows * n_ref_rows))
    real = {d.name: d.ks >= noise_ks for d in drift}
    total = float(sum(d.weighted for d in drift if real[d.name]))
    bar = thresholds.real_share_factor / len(drift)
    top_share = [d for d in sorted(drift, key=lambda d: -d.share)[:_DRIFT_TOP] if d.share >= bar]
    drifted_top = [d for d in top_share if d.ks >= thresholds.drift_feature_ks and real[d.name]]
    if total < thresholds.drift_weighted_ks and not drifted_top:
        return []
    by_weight = sorted(drift, key=lambda d: -d.weighted)
    lead = drifted_top[0] if drifted_top else by_weight[0]
    involved = drifted_top or [d for d in by_weight[:3] if d.weighted > 0]
    return [
        Finding(
            code=DRIFT_CODE,
            severity=Severity.WARN,
            features=tuple(d.name for d in involved),
            message=(
                f"The audited data has drifted from the reference in features the model relies on: the "
                f"attribution-weighted KS statistic is {total:.3f} (warn at {thresholds.drift_weighted_ks:g}) and "
                f"'{lead.name}', with {pct(lead.share)} of the attribution, has KS {lead.ks:.2f}."
            ),
            evidence={
                "weighted_ks": num(total),
                "weighted_ks_threshold": num(thresholds.drift_weighted_ks),
                "ks_noise_level": num(noise_ks),
                "feature_ks_threshold": num(thresholds.drift_feature_ks),
                "drifted_top_features": [
                    {"name": d.name, "ks": num(d.ks), "share": num(d.share)} for d in drifted_top
                ],
                "largest_weighted": [
                    {"name": d.name, "ks": num(d.ks), "weighted": num(d.weighted)} for d in by_weight[:3]
                ],
            },
        )
    ]


def detect(
    *,
    stats: Sequence[FeatureStat],
    thresholds: Thresholds,
    slices: Sequence[SliceProfile] = (),
    drift: Sequence[DriftStat] = (),
    n_rows: int | None = None,
    n_ref_rows: int | None = None,
) -> list[Finding]:
    """All three skew detectors; slice and drift checks run only when their inputs are given."""
    out = detect_concentration(stats=stats, thresholds=thresholds)
    if slices:
        out += detect_slice_skew(slices=slices, stats=stats, thresholds=thresholds)
    if drift:
        out += detect_drift_skew(drift=drift, thresholds=thresholds, n_rows=n_rows, n_ref_rows=n_ref_rows)
    return out


def _detect_concentration(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect_concentration(stats=inp.stats, thresholds=thresholds)


def _detect_slices(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect_slice_skew(slices=inp.slices, stats=inp.stats, thresholds=thresholds)


def _detect_drift(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect_drift_skew(drift=inp.drift, thresholds=thresholds, n_rows=inp.n_rows, n_ref_rows=inp.n_ref_rows)


# the ranking is always there, so concentration is switched by the task: three colour channels are not features
CONCENTRATION_DETECTOR = Detector(
    code=CONCENTRATION_CODE,
    title=fixed_title("Attribution is concentrated in few features"),
    applies=is_tabular,
    detect=_detect_concentration,
)
def _slice_title(evidence: Mapping[str, Any] | None = None) -> str:
    """'A feature's effect reverses in a slice' when the finding says so, else 'A slice ranks features
    differently'."""
    if evidence and evidence.get("reversed"):
        return "A feature's effect reverses in a slice"
    return "A slice ranks features differently"


SLICE_DETECTOR = Detector(
    code=SLICE_CODE,
    title=_slice_title,
    applies=lambda inp: is_tabular(inp) and bool(inp.slices),
    detect=_detect_slices,
)
DRIFT_DETECTOR = Detector(
    code=DRIFT_CODE,
    title=fixed_title("Important features drifted"),
    applies=lambda inp: is_tabular(inp) and bool(inp.drift),
    detect=_detect_drift,
)
