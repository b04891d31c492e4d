"""AuditRun records for the report tests, built in code (no model, no data, no randomness left to chance).

- :func:`make_regression_run`: 100 features, findings of every severity, every optional tabular section
  (signed view, known answers, declared noise, slices, drift), a convergence histogram and a cross-check.
- :func:`make_classifier_run`: a classifier with per-class rankings.
- :func:`make_image_run`: an image audit with a tiny ImageSummary (thumbnails, heatmaps, class maps).
- :func:`make_pass_run`: a clean run whose verdict is pass.

``tests/fixtures/run_regression.json`` is :func:`make_regression_run` saved with ``save_run``; regenerate
it with ``python -m tests.report_fixtures`` after a deliberate change here (a test checks they agree).
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from audit.results import (
    SCHEMA_VERSION,
    AuditRun,
    Convergence,
    Crosscheck,
    DriftStat,
    ExpectedAttribution,
    FeatureStat,
    Finding,
    ImageItem,
    ImageSummary,
    Provenance,
    Severity,
    SignedSample,
    SliceProfile,
    save_run,
    verdict_from_findings,
)

FIXTURES = Path(__file__).parent / "fixtures"
REGRESSION_JSON = FIXTURES / "run_regression.json"

# planted names: the leak ranks first, a declared noise feature ranks 4th, one name needs escaping
LEAK = "days_until_churn_copy"
NOISE_USED = "noise_03"
ESCAPE_ME = "ratio<b>&gt;"
TOP_NAMES = (LEAK, "monthly_spend", "tenure_months", NOISE_USED, "support_calls", ESCAPE_ME)


def _features(names: list[str], rng: random.Random, total: float = 10.0) -> tuple[FeatureStat, ...]:
    """Ranked stats with mean |attribution| falling like 1 / rank^1.2; intervals +-(8..20)%."""
    raw = [1.0 / (r**1.2) for r in range(1, len(names) + 1)]
    scale = total / sum(raw)
    stats = []
    for rank, (name, w) in enumerate(zip(names, raw, strict=True), start=1):
        mean_abs = w * scale
        half = mean_abs * rng.uniform(0.08, 0.2)
        mean = mean_abs * rng.choice((-1.0, 1.0)) * rng.uniform(0.3, 0.95)
        stats.append(
            FeatureStat(
                name=name,
                rank=rank,
                mean_abs=mean_abs,
                mean=mean,
                std=mean_abs * rng.uniform(0.5, 1.5),
                share=w / sum(raw),
                ci_low=mean_abs - half,
                ci_high=mean_abs + half,
                rank_ci_low=max(1, rank - rng.randint(0, 2)),
                rank_ci_high=min(len(names), rank + rng.randint(0, 2)),
            )
        )
    return tuple(stats)


def _config(**overrides: object) -> dict:
    """A recorded config as ``AuditConfig.to_dict()`` writes it, spelled out here so the saved fixture does
    not change whenever a new option or threshold is added to audit.config."""
    base: dict = {
        "model": "models/churn.pt",
        "data": "data/churn.parquet",
        "out": "reports/latest",
        "target_col": None,
        "drop": [],
        "class_index": None,
        "baseline": "zero",
        "method": "gausslegendre",
        "n_steps": 50,
        "noise_features": [],
        "slice_col": None,
        "reference": None,
        "crosscheck_rows": 256,
        "device": "cpu",
        "dtype": "float32",
        "seed": 0,
        "formats": ["json", "html", "pdf"],
        "fail_on": "fail",
        "n_boot": 200,
        "thresholds": {
            "convergence_tol": 0.01,
            "leak_univariate": 0.95,
            "leak_share": 0.3,
            "top1_share": 0.5,
            "top3_share": 0.8,
            "slice_spearman": 0.5,
            "drift_weighted_ks": 0.05,
            "crosscheck_abs": 1e-4,
            "crosscheck_rel": 1e-3,
        },
        "command": "audit run",
    }
    base.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in overrides.items()})
    return base


def _convergence(n_rows: int, n_bad: int) -> Convergence:
    edges = tuple(-7.0 + 0.5 * k for k in range(14))  # 1e-7 .. 1e-0.5, log10
    weights = [math.exp(-0.5 * ((e + 4.0) / 0.9) ** 2) for e in edges[:-1]]
    good = n_rows - n_bad
    counts = [int(good * w / sum(weights[:10])) for w in weights[:10]]
    counts[4] += good - sum(counts)
    counts += [n_bad - n_bad // 2, n_bad // 2, 0]  # the bins past 1e-2 hold the rows above tolerance
    return Convergence(
        method="gausslegendre",
        n_steps="auto",
        median_rel_delta=1.1e-4,
        p95_rel_delta=2.3e-3,
        max_rel_delta=0.031 if n_bad else 0.0042,
        tolerance=0.01,
        n_rows=n_rows,
        n_not_converged=n_bad,
        steps_used={"50": n_rows - 40, "100": 30, "200": 10} if n_bad else {"50": n_rows},
        rel_delta_hist_edges=edges,
        rel_delta_hist_counts=tuple(counts),
    )


def _crosscheck(passed: bool = True) -> Crosscheck:
    return Crosscheck(
        rows=256,
        max_abs_diff=3.2e-6 if passed else 0.042,
        max_rel_diff=4.1e-5 if passed else 0.18,
        rank_spearman=0.9998 if passed else 0.71,
        passed=passed,
        method="gausslegendre",
        n_steps=50,
        tol_abs=1e-4,
        tol_rel=1e-3,
        native_median_rel_delta=1.1e-4,
        captum_median_rel_delta=1.2e-4,
        captum_version="0.9.0",
    )


def _provenance(model: str, data: str, seed: int, config: dict, command: str) -> Provenance:
    return Provenance(
        model_sha256="3f1a9c0b7d2e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c",
        data_sha256="9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b",
        versions={"audit": "0.1.0", "torch": "2.14.1", "captum": "0.9.0", "python": "3.11.9", "numpy": "2.3.1"},
        command=command,
        seed=seed,
        created_at="2025-06-02T09:41:07+00:00",
        model_form="torchscript",
        model_path=model,
        data_path=data,
        config=config,
        device="cpu",
        duration_s=12.84,
    )


def regression_findings() -> tuple[Finding, ...]:
    """Two failures, three warnings, two notes, in a deliberately unsorted order; only codes the detectors
    emit (:data:`audit.findings.CODES`), with their severities."""
    return (
        Finding(
            code="baseline_not_neutral",
            severity=Severity.INFO,
            features=(),
            message="The baseline is not a neutral input: the model predicts 61.2 there, 2.4 standard deviations "
            "from its average prediction 34.8, so every attribution is measured from an unusual reference point; "
            "try the median as baseline.",
            evidence={"baseline_output": 61.2, "output_mean": 34.8, "output_std": 11.0, "z": 2.4, "z_threshold": 2.0},
        ),
        Finding(
            code="identifier_leakage",
            severity=Severity.WARN,
            features=("customer_id",),
            message="'customer_id' looks like a row identifier (98% unique values) yet carries 2.1% of attribution.",
            evidence={"unique_fraction": 0.98, "share": 0.021, "rank": 9},
        ),
        Finding(
            code="target_leakage",
            severity=Severity.FAIL,
            features=(LEAK,),
            message=f"'{LEAK}' alone predicts the target (R² 0.991) and carries 38% of all attribution: "
            "it is probably computed from the target.",
            evidence={"univariate_r2": 0.991, "share": 0.38, "rank": 1, "threshold_r2": 0.95},
        ),
        Finding(
            code="concentration_skew",
            severity=Severity.INFO,
            features=(LEAK, "monthly_spend", "tenure_months"),
            message="The top 3 features carry 81% of the attribution; the model leans on very few inputs.",
            evidence={"top3_share": 0.81, "threshold": 0.8},
        ),
        Finding(
            code="noise_leakage",
            severity=Severity.FAIL,
            features=(NOISE_USED,),
            message=f"Declared noise feature '{NOISE_USED}' ranks 4th with 6.4% of attribution; "
            "neutralising it raises the loss by 14%, so the model learned from noise.",
            evidence={"share": 0.064, "rank": 4, "loss_rel_gain": 0.14, "uniform_share": 0.01},
        ),
        Finding(
            code="slice_skew",
            severity=Severity.WARN,
            features=(LEAK, "support_calls"),
            message="In 1 of 3 groups of 'region' the model relies on different features than overall (group "
            "'north' with 412 rows: Spearman 0.31 with the global ranking, top feature 'support_calls' instead of "
            f"'{LEAK}').",
            evidence={"column": "region", "group": "north", "spearman": 0.31, "rows": 412, "threshold": 0.5},
        ),
        Finding(
            code="drift_skew",
            severity=Severity.WARN,
            features=("support_calls",),
            message="The audited data has drifted from the reference in features the model relies on: the "
            "KS statistic weighted by attribution is 0.061 (warn at 0.05) and 'support_calls', with 5.4% of the "
            "attribution, has KS 0.30.",
            evidence={"weighted_ks": 0.061, "ks": 0.3, "p_value": float("nan")},  # NaN evidence reads n/a
        ),
    )


def make_regression_run() -> AuditRun:
    """100 features, 2 fail / 3 warn / 2 info findings and every optional tabular section."""
    rng = random.Random(7)
    names = list(TOP_NAMES) + ["age", "plan_type", "customer_id"]  # customer_id ranks 9th
    names += [f"x_{i:03d}" for i in range(9, 95)] + ["noise_01", "noise_02", "x_097", "x_098", "x_099"]
    features = _features(names, rng)
    signed = []
    for stat in features[:6]:
        xs = [rng.gauss(0.0, 1.0) for _ in range(300)]
        slope = stat.mean_abs * (1 if stat.mean >= 0 else -1)
        signed.append(
            SignedSample(
                name=stat.name,
                values=tuple(xs),
                attributions=tuple(slope * x + rng.gauss(0.0, 0.1 * stat.mean_abs) for x in xs),
            )
        )
    expected = []
    for stat in features[:8]:
        coef = stat.mean / 0.8
        exp_mean = coef * 0.8
        expected.append(
            ExpectedAttribution(
                name=stat.name,
                coefficient=coef,
                expected_mean=exp_mean,
                estimated_mean=exp_mean * (1 + rng.uniform(-0.002, 0.002)),
                expected_mean_abs=abs(exp_mean) * 1.1,
                estimated_mean_abs=abs(exp_mean) * 1.1 * (1 + rng.uniform(-0.002, 0.002)),
                max_abs_error=abs(exp_mean) * 0.003,
            )
        )
    slices = tuple(
        SliceProfile(
            column="region",
            group=group,
            rows=rows,
            top_features=tuple(top),
            shares={n: s for n, s in zip(top, (0.41, 0.2, 0.1), strict=True)},
            spearman_vs_all=rho,
        )
        for group, rows, top, rho in (
            ("south", 1020, [LEAK, "monthly_spend", "tenure_months"], 0.94),
            ("north", 412, ["support_calls", LEAK, "age"], 0.31),
            ("west", 568, [LEAK, "tenure_months", "monthly_spend"], 0.88),
        )
    )
    drift = tuple(
        DriftStat(name=s.name, ks=ks, share=s.share, weighted=ks * s.share)
        for s, ks in zip(features[:10], (0.02, 0.12, 0.05, 0.01, 0.3, 0.04, 0.02, 0.08, 0.01, 0.2), strict=True)
    )
    findings = regression_findings()
    command = (
        "audit run --model models/churn.pt --data data/churn.parquet --target churn_days "
        "--noise-features 'noise_*' --slice region --reference data/reference.parquet --n-steps auto"
    )
    config = _config(
        target_col="churn_days",
        noise_features=("noise_*",),
        slice_col="region",
        reference="data/reference.parquet",
        n_steps="auto",
        baseline="mean",
        seed=7,
        command=command,
    )
    return AuditRun(
        schema_version=SCHEMA_VERSION,
        verdict=verdict_from_findings(findings),
        task="regression",
        features=features,
        convergence=_convergence(2000, 3),
        crosscheck=_crosscheck(True),
        findings=findings,
        provenance=_provenance("models/churn.pt", "data/churn.parquet", 7, config, command),
        n_rows=2000,
        n_features=100,
        target_col="churn_days",
        explained_output="output 0",
        baseline="mean",
        signed=tuple(signed),
        expected=tuple(expected),
        slices=slices,
        drift=drift,
        declared_noise=(NOISE_USED, "noise_01", "noise_02"),
        artifacts={"json": "audit.json", "html": "report.html", "pdf": "report.pdf"},
        notes=("2,000 of 48,112 rows were sampled for the audit (--max-rows); rankings hold for the sample.",),
    )


def make_classifier_run() -> AuditRun:
    """A 3-class classifier over 12 features; a warning about the baseline and per-class rankings."""
    rng = random.Random(11)
    names = ["petal_len", "petal_wid", "sepal_len", "sepal_wid", "stem_mm", "leaf_count", "colour_idx",
             "height_cm", "soil_ph", "water_ml", "sun_hours", "site_id"]  # fmt: skip
    features = _features(names, rng)
    classes = {}
    for k, cls in enumerate(("setosa", "versicolor", "virginica")):
        order = names[k:] + names[:k]  # each class leans on different features
        classes[cls] = _features(order, rng)
    findings = (
        Finding(
            code="baseline_not_neutral",
            severity=Severity.WARN,
            features=(),
            message="The all-zeros baseline is classified as 'setosa' with probability 0.97, so attributions "
            "explain the difference from a confident prediction; try --baseline mean.",
            evidence={"max_prob": 0.97, "threshold": 0.9, "baseline_class": "setosa"},
        ),
    )
    config = _config(class_index=None, target_col="species")
    return AuditRun(
        schema_version=SCHEMA_VERSION,
        verdict=verdict_from_findings(findings),
        task="classification",
        features=features,
        convergence=_convergence(600, 0),
        crosscheck=_crosscheck(True),
        findings=findings,
        provenance=_provenance(
            "models/flowers.pt", "data/flowers.csv", 0, config, "audit run --model models/flowers.pt"
        ),
        n_rows=600,
        n_features=12,
        target_col="species",
        explained_output="predicted class",
        baseline="zero",
        class_features=classes,
    )


def _blob(h: int, w: int, cy: float, cx: float, sigma: float) -> tuple[tuple[float, ...], ...]:
    return tuple(
        tuple(round(math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2)), 4) for x in range(w)) for y in range(h)
    )


def _picture(h: int, w: int, hue: int) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """A synthetic thumbnail: a gradient sky, a disc in the middle."""
    rows = []
    for y in range(h):
        row = []
        for x in range(w):
            inside = (y - h / 2) ** 2 + (x - w / 2) ** 2 < (h / 4) ** 2
            if inside:
                row.append(((hue * 80) % 256, 160, 60))
            else:
                row.append((90 + 4 * y, 140 + 3 * y, 220))
        rows.append(tuple(row))
    return tuple(rows)


def make_image_run() -> AuditRun:
    """An image audit: 2 classes, 2 most and 2 least confident images, a spatial-leakage failure."""
    n = 16  # thumbnail side
    m = 8  # heatmap side

    def item(i: int, label: str, pred: str, conf: float, corner: bool) -> ImageItem:
        heat = _blob(m, m, 1.0, 1.0, 1.5) if corner else _blob(m, m, 3.5, 3.5, 1.8)
        return ImageItem(
            path=f"images/{label}/img_{i:03d}.png",
            label=label,
            predicted=pred,
            confidence=conf,
            target_class=pred,
            thumbnail=_picture(n, n, i),
            heatmap=heat,
            rel_delta=0.0021 * (i + 1),
        )

    summary = ImageSummary(
        image_size=(224, 224),
        n_images=64,
        classes=("cat", "dog"),
        mean_map=_blob(m, m, 1.5, 1.5, 2.0),
        class_maps={"cat": _blob(m, m, 1.0, 1.0, 1.6), "dog": _blob(m, m, 4.0, 4.0, 2.0)},
        channel_share={"red": 0.41, "green": 0.34, "blue": 0.25},
        most_confident=(item(1, "cat", "cat", 0.998, True), item(2, "dog", "dog", 0.991, False)),
        least_confident=(item(3, "dog", "cat", 0.52, True), item(4, "cat", "cat", 0.55, False)),
        baseline="black",
    )
    findings = (
        Finding(
            code="spatial_leakage",
            severity=Severity.FAIL,
            features=("top-left corner",),
            message="46% of the attribution sits in the top-left corner, where the 'cat' images carry a "
            "watermark; the model reads the watermark, not the animal.",
            evidence={"region": "top-left 25%", "share": 0.46, "threshold": 0.3},
        ),
    )
    config = _config(image_size=224, gallery=2, baseline="black", seed=3)
    return AuditRun(
        schema_version=SCHEMA_VERSION,
        verdict=verdict_from_findings(findings),
        task="image_classification",
        features=(),
        convergence=_convergence(64, 0),
        crosscheck=_crosscheck(True),
        findings=findings,
        provenance=_provenance(
            "models/pets.pt", "images/", 3, config, "audit run --model models/pets.pt --data images/"
        ),
        n_rows=64,
        n_features=0,
        explained_output="predicted class",
        baseline="black",
        images=summary,
    )


def make_pass_run() -> AuditRun:
    """A clean 8-feature regression: one note, verdict pass."""
    rng = random.Random(3)
    features = _features([f"f{i}" for i in range(8)], rng)
    findings = (
        Finding(
            code="concentration_skew",
            severity=Severity.INFO,
            features=("f0",),
            message="Attribution is concentrated: 'f0' alone carries 52.0% of it (the top 3 carry 78.0%), so the "
            "model's behaviour hinges on very few of its 8 inputs.",
            evidence={"top1_share": 0.52, "top3_share": 0.78, "top1_threshold": 0.5},
        ),
    )
    config = _config()
    return AuditRun(
        schema_version=SCHEMA_VERSION,
        verdict=verdict_from_findings(findings),
        task="regression",
        features=features,
        convergence=_convergence(500, 0),
        crosscheck=_crosscheck(True),
        findings=findings,
        provenance=_provenance("models/small.pt", "data/small.csv", 0, config, "audit run"),
        n_rows=500,
        n_features=8,
        target_col="y",
        explained_output="output 0",
    )


if __name__ == "__main__":  # regenerate the saved fixture after a deliberate change above
    FIXTURES.mkdir(parents=True, exist_ok=True)
    print(save_run(make_regression_run(), REGRESSION_JSON))


# long and Chinese names for the reports that must hold any name (tests/test_report_names.py)
CJK_NAMES = {
    LEAK: "客户流失前剩余天数的副本（由目标列计算得出，不应作为特征使用）",
    "monthly_spend": "每月消费金额_monthly_spend_in_local_currency_including_tax_and_discounts",
    "tenure_months": "在网时长（月）",
    "support_calls": "客服电话次数_support_calls_last_quarter",
}


def make_cjk_run() -> AuditRun:
    """The regression run with its top names replaced by long and Chinese ones (:data:`CJK_NAMES`), everywhere
    they appear (features, findings, slices, signed samples)."""
    import json

    from audit.results import from_dict, to_dict

    text = json.dumps(to_dict(make_regression_run()), ensure_ascii=False)
    for old, new in CJK_NAMES.items():
        text = text.replace(old, new)
    return from_dict(AuditRun, json.loads(text))
