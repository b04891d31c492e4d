"""spatial_leakage: planted maps for the rules, and the planted case end to end: a small CNN trained on images
whose 4x4 top-left patch encodes the class is flagged there; the same CNN trained on clean images is not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.analysis.heatmaps import mass_normalize, reduce_channels
from audit.attribution.native import integrated_gradients
from audit.errors import UsageError
from audit.findings.spatial import border_regions, detect_spatial_leakage, region_stats
from audit.results import Severity
from tests.image_toys import make_toy_images, toy_model

H = W = 32


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine OpenMP threads wait for each other at every layer (a small
    CNN ran 75-2,500 path points/s with 2 threads under load, ~4,000 with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _centre_maps(n: int, seed: int) -> np.ndarray:
    """Attribution on an object that moves around the centre half of the image, plus faint noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    maps = rng.uniform(0, 0.02, size=(n, H, W))
    for i in range(n):
        cy, cx = rng.uniform(10, 22, size=2)
        maps[i] += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 3.0**2))
    return maps


def _with_corner(maps: np.ndarray, share: float, which: np.ndarray, rows=slice(1, 5), cols=slice(1, 5)) -> np.ndarray:
    """Put ``share`` of each selected image's mass into a small patch (inside the top-left corner by default)."""
    out = mass_normalize(maps)
    for i in np.flatnonzero(which):
        out[i] *= 1 - share
        out[i, rows, cols] += share / ((rows.stop - rows.start) * (cols.stop - cols.start))
    return out


def _detect(maps: np.ndarray, **kw) -> list:
    mm = mass_normalize(maps)
    return detect_spatial_leakage(mm.mean(axis=0), maps, **kw)


# --------------------------------------------------------------------------------------------------- the rules


def test_regions_cover_corners_and_edges_with_the_stated_areas() -> None:
    regions = border_regions(56, 56)
    assert len(regions) == 8
    assert regions["top-left corner"].mean() == pytest.approx(1 / 16)
    assert regions["bottom edge"].mean() == pytest.approx(1 / 8)
    assert regions["top-right corner"][0, 55] and not regions["top-right corner"][0, 0]
    assert not any(m[20:36, 20:36].any() for m in regions.values())  # the centre is never a candidate


def test_planted_corner_mass_is_flagged_with_its_numbers() -> None:
    which = np.random.default_rng(1).uniform(size=40) < 0.95
    maps = _with_corner(_centre_maps(40, 0), 0.6, which)
    findings = _detect(maps)
    assert len(findings) == 1  # the top and left edges through the corner are not reported again
    f = findings[0]
    assert f.code == "spatial_leakage" and f.features == ("top-left corner",)
    assert f.severity == Severity.WARN  # attribution mass alone, no occlusion measured: never a failure
    assert "occlusion was not measured" in f.message and "drop" not in f.evidence
    ev = f.evidence
    mean = mass_normalize(maps).mean(axis=0)
    assert ev["share"] == pytest.approx(mean[:8, :8].sum() / mean.sum())
    assert ev["area_share"] == pytest.approx(1 / 16)
    assert ev["fraction_of_images"] == pytest.approx(which.mean())
    assert "top-left corner" in f.message and f"{ev['share']:.0%}" in f.message


@pytest.mark.parametrize("seed", range(4))
def test_objects_in_the_centre_and_uniform_maps_stay_quiet(seed: int) -> None:
    assert _detect(_centre_maps(40, seed)) == []
    uniform = np.random.default_rng(seed).uniform(size=(40, H, W))
    assert _detect(uniform) == []
    assert max(r.enrichment for r in region_stats(mass_normalize(uniform).mean(0), uniform)) < 1.2


def test_a_few_outlier_images_are_not_a_place() -> None:
    which = np.zeros(40, dtype=bool)
    which[:3] = True  # three images with almost everything in the corner
    assert _detect(_with_corner(_centre_maps(40, 1), 0.95, which)) == []


def test_a_modest_share_that_never_moves_is_flagged_as_a_warning() -> None:
    maps = _with_corner(_centre_maps(40, 2), 0.2, np.ones(40, dtype=bool))
    (f,) = _detect(maps)
    assert f.features == ("top-left corner",) and f.severity == Severity.WARN
    assert f.evidence["share"] < 0.3 and f.evidence["fraction_of_images"] == 1.0
    assert _detect(_with_corner(_centre_maps(40, 2), 0.08, np.ones(40, dtype=bool))) == []  # below 2x its area


def test_a_mark_in_one_class_only_is_found_through_the_groups() -> None:
    groups = np.arange(40) % 2
    maps = _with_corner(_centre_maps(40, 3), 0.5, groups == 1, rows=slice(27, 31), cols=slice(27, 31))
    assert _detect(maps) == []  # half the images: not a data-set wide place
    (f,) = _detect(maps, groups=groups, group_names=("cat", "dog"))
    assert f.features == ("bottom-right corner",) and f.evidence["class"] == "dog"
    assert f.evidence["n_images"] == 20 and "class 'dog'" in f.message


def test_a_bar_along_the_top_is_the_top_edge_not_a_corner() -> None:
    maps = _with_corner(_centre_maps(40, 4), 0.5, np.ones(40, dtype=bool), rows=slice(0, 3), cols=slice(0, W))
    (f,) = _detect(maps)
    assert f.features == ("top edge",)


def test_threshold_moves_the_share_rule() -> None:
    which = np.arange(40) < 24  # 60% of the images: only the share rule can flag it
    maps = _with_corner(_centre_maps(40, 5), 0.7, which)
    share = _detect(maps)[0].evidence["share"]
    assert _detect(maps, threshold=share - 0.01) and not _detect(maps, threshold=share + 0.01)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), share=st.floats(0.35, 0.9), scale=st.floats(1e-3, 1e3))
def test_mirroring_moves_the_finding_and_rescaling_changes_nothing(seed: int, share: float, scale: float) -> None:
    maps = _with_corner(_centre_maps(24, seed), share, np.ones(24, dtype=bool))
    (f,) = _detect(maps)
    (g,) = _detect(maps[:, :, ::-1])
    (s,) = _detect(maps * np.random.default_rng(seed).uniform(0.5, 2.0, size=(24, 1, 1)) * scale)
    assert (f.features, g.features) == (("top-left corner",), ("top-right corner",))
    assert g.evidence["share"] == pytest.approx(f.evidence["share"])
    assert s.evidence["fraction_of_images"] == f.evidence["fraction_of_images"]


def test_bad_inputs_raise_usage_errors() -> None:
    m = np.ones((4, 8, 8))
    with pytest.raises(UsageError, match="per_image_maps"):
        detect_spatial_leakage(np.ones((8, 8)), np.ones((4, 8, 9)))
    with pytest.raises(UsageError, match="threshold"):
        detect_spatial_leakage(np.ones((8, 8)), m, threshold=0)
    with pytest.raises(UsageError, match="NaN"):
        detect_spatial_leakage(np.full((8, 8), np.nan), m)
    with pytest.raises(UsageError, match="one class per image"):
        detect_spatial_leakage(np.ones((8, 8)), m, groups=[0, 1])


# --------------------------------------------------------------------------------------------------- planted CNN


@pytest.fixture(scope="module")
def planted() -> dict[str, tuple[np.ndarray, float]]:
    """The leaky and the clean CNN (seeded, trained in ~1 s each on a free CPU) and their IG maps."""
    out = {}
    for name, leak in (("leaky", True), ("clean", False)):
        model = toy_model(leak, 1)
        xt, yt = make_toy_images(32, leak=leak, seed=101)  # held-out images
        xs = torch.from_numpy(xt)
        with torch.no_grad():
            pred = model(xs).argmax(dim=1)
        res = integrated_gradients(model, xs, baselines=0.0, target=pred, n_steps=16)  # black baseline
        assert float(res.rel_delta.max()) < 0.05  # the maps are real IG, not a poor approximation
        out[name] = (reduce_channels(res.attributions), float((pred.numpy() == yt).mean()))
    return out


def test_planted_corner_watermark_is_flagged_in_that_corner(planted) -> None:
    maps, acc = planted["leaky"]
    assert acc >= 0.95  # the model learned the task (through the patch: the centre agrees 60% of the time)
    findings = _detect(maps)
    assert [f.features for f in findings] == [("top-left corner",)]
    ev = findings[0].evidence
    assert ev["share"] >= 0.3 and ev["enrichment"] >= 4 and ev["fraction_of_images"] >= 0.5


def test_the_same_cnn_trained_without_the_patch_stays_quiet_with_margin(planted) -> None:
    maps, acc = planted["clean"]
    assert acc >= 0.95
    assert _detect(maps) == []
    stats = region_stats(mass_normalize(maps).mean(axis=0), maps)
    assert max(r.share for r in stats) < 0.1  # a third of the 0.30 threshold
    assert max(r.fraction_of_images for r in stats) < 0.2 and max(r.enrichment for r in stats) < 1.0
