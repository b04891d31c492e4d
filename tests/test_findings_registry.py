"""The detector registry: one record per code, titles with their detectors, and the image path through it.

An image run's ``FindingsInput`` (channel ranking, convergence, cross-check, spatial maps) must give exactly
what the image pipeline computed by calling the three detectors itself, and no tabular detector may read its
colour channels as features.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from findings_planted import stats_from_shares

from audit.analysis import summarize_convergence
from audit.config import Thresholds
from audit.errors import UsageError
from audit.findings import (
    CODES,
    DETECTORS,
    FindingsInput,
    convergence,
    crosscheck,
    detector,
    finding_title,
    run_detectors,
    sort_findings,
)
from audit.findings.spatial import detect_spatial_leakage
from audit.results import Crosscheck, Severity

# top1_share 0.7 is above twice the uniform share of 3 channels, so concentration_skew would fire on R at 90%
T = Thresholds(top1_share=0.7)
CLASSES = ("cat", "dog")


def _watermarked_maps(n: int = 24, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image |attribution| maps: an object blob near the centre, a top-left watermark in every image and a
    bottom-right mark in the images of class 1 only. Returns (mean map, per-image maps, class per image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    groups = np.arange(n) % 2  # (n,): 12 cats, 12 dogs
    maps = np.empty((n, size, size))
    for i in range(n):
        cy, cx = rng.uniform(6, 10, 2)
        maps[i] = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 6.0)  # the object
        maps[i, 0:3, 0:3] += 1.5  # the watermark, same place in every image
        if groups[i] == 1:
            maps[i, 13:16, 13:16] += 2.0  # a mark only dogs carry
    norm = maps / maps.sum(axis=(1, 2), keepdims=True)  # mass-normalised, each sums to 1
    return norm.mean(axis=0), maps, groups  # (H, W), (n, H, W), (n,)


def _image_parts() -> dict:
    mean_map, maps, groups = _watermarked_maps()
    rel = np.r_[np.full(90, 1e-4), np.full(10, 0.2)]  # 10% of the images above tolerance
    conv = summarize_convergence(rel, np.full(100, 64), "gausslegendre", 64, T.convergence_tol)
    xc = Crosscheck(rows=16, max_abs_diff=0.3, max_rel_diff=0.2, rank_spearman=0.5, passed=False)
    channels = stats_from_shares([0.9, 0.06, 0.04], ["R", "G", "B"])
    return dict(channels=channels, conv=conv, xc=xc, mean_map=mean_map, maps=maps, groups=groups)


def _image_input(p: dict, task: str = "image_classification") -> FindingsInput:
    """The FindingsInput the image pipeline builds (the call the lead wires in)."""
    return FindingsInput(
        task=task,
        stats=p["channels"],
        convergence=p["conv"],
        crosscheck=p["xc"],
        spatial_mean_map=p["mean_map"],
        spatial_maps=p["maps"],
        spatial_groups=p["groups"],
        spatial_group_names=CLASSES,
    )


def test_image_input_gives_what_the_image_pipeline_computes() -> None:
    p = _image_parts()
    direct = detect_spatial_leakage(
        p["mean_map"], p["maps"], threshold=T.spatial_share, groups=p["groups"], group_names=CLASSES
    )
    direct += convergence.detect(convergence=p["conv"], thresholds=T)
    direct += crosscheck.detect(crosscheck=p["xc"], thresholds=T)
    got = run_detectors(_image_input(p), T)
    assert got == sort_findings(direct)
    codes = {f.code for f in got}
    assert codes == {"spatial_leakage", "not_converged", "engine_disagreement"}
    regions = {(f.features, f.evidence.get("class", "")) for f in got if f.code == "spatial_leakage"}
    assert regions == {(("top-left corner",), ""), (("bottom-right corner",), "dog")}  # planted, both found


def test_tabular_detectors_never_read_image_channels() -> None:
    p = _image_parts()
    as_table = run_detectors(_image_input(p, task="classification"), T)
    assert "concentration_skew" in {f.code for f in as_table}  # the same ranking as feature columns would fire
    on_images = run_detectors(_image_input(p), T)
    assert "concentration_skew" not in {f.code for f in on_images}
    inp = _image_input(p)
    tabular = {"noise_leakage", "target_leakage", "identifier_leakage", "concentration_skew", "slice_skew",
               "drift_skew", "baseline_not_neutral"}  # fmt: skip
    assert not [d.code for d in DETECTORS if d.code in tabular and d.applies(inp)]


def test_image_input_without_spatial_maps_skips_spatial_leakage() -> None:
    p = _image_parts()
    inp = dataclasses.replace(
        _image_input(p), spatial_mean_map=None, spatial_maps=None, spatial_groups=None, spatial_group_names=()
    )
    assert {f.code for f in run_detectors(inp, T)} == {"not_converged", "engine_disagreement"}


def test_spatial_inputs_come_together() -> None:
    p = _image_parts()
    with pytest.raises(UsageError, match="together"):
        FindingsInput(task="image_classification", stats=p["channels"], spatial_mean_map=p["mean_map"])
    with pytest.raises(UsageError, match="need spatial_mean_map"):
        FindingsInput(task="image_classification", stats=p["channels"], spatial_groups=p["groups"])


def test_one_record_per_code_with_its_title() -> None:
    assert tuple(d.code for d in DETECTORS) == CODES and len(set(CODES)) == len(CODES)
    assert set(CODES) == {
        "noise_leakage", "target_leakage", "identifier_leakage", "concentration_skew", "slice_skew", "drift_skew",
        "baseline_not_neutral", "baseline_sensitive", "not_converged", "engine_disagreement", "spatial_leakage",
        "spurious_token", "small_sample",
    }  # fmt: skip
    for code in CODES:
        assert detector(code) is not None and detector(code).code == code
        assert finding_title(code) and finding_title(code) != code
    assert detector("unused_feature") is None
    assert finding_title("target_leakage") == "Possible target leakage"
    assert finding_title("noise_leakage", {"route": "declared"}) == "A declared noise feature is used"
    assert finding_title("noise_leakage", {"route": "neutralisation"}) == (
        "The model relies on a feature that does not help it predict"
    )
    assert finding_title("noise_leakage") == finding_title("noise_leakage", {"route": "neutralisation"})
    assert finding_title("odd_new_code") == "Odd new code"  # a code from a newer audit.json, in words


def test_the_report_uses_the_findings_title_and_order() -> None:
    import audit.report
    import audit.report.context

    assert audit.report.finding_title is finding_title
    assert audit.report.sort_findings is sort_findings and audit.report.context.sort_findings is sort_findings


def test_sort_accepts_severity_strings() -> None:
    p = _image_parts()
    found = run_detectors(_image_input(p), T)
    as_text = [dataclasses.replace(f, severity=str(f.severity.value)) for f in found]
    assert [f.code for f in sort_findings(as_text)] == [f.code for f in found]
    assert found[0].severity is Severity.FAIL
