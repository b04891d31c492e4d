"""The image findings benchmark's corpus and scoring (benchmarks/bench_image_findings.py): the logo is where it
says, the planted training set makes the logo the only cue for some class-0 images, the audited sets carry it on
half, and the summary counts what it should. Detector outcomes are what the benchmark measures, not asserted here."""

from __future__ import annotations

import numpy as np
import pytest

from audit.findings.spatial import border_regions
from benchmarks import bench_image_findings as bench


@pytest.fixture(scope="module")
def photos():
    return bench._photos()[0]  # None without scikit-image: the synthetic textures are tested then


def test_the_logo_sits_inside_the_top_right_corner_region() -> None:
    for size in (32, 40, 64):
        rows, cols = bench.logo_box(size)
        corner = border_regions(size, size)["top-right corner"]
        box = np.zeros((size, size), dtype=bool)
        box[rows, cols] = True
        assert corner[box].all() and box.sum() >= 9
        img = bench.add_logo(np.zeros((size, size, 3), dtype=np.float32))
        assert (img[~box] == 0).all() and img[box].max() == 1.0


def test_planted_training_and_audited_sets(photos) -> None:
    x, y, logo = bench.make_images(90, size=40, seed=0, photos=photos, planted_training=True)
    assert x.shape == (90, 40, 40, 3) and x.min() >= 0 and x.max() <= 1
    assert (logo == (y == bench.LOGO_CLASS)).all() and np.bincount(y).tolist() == [30, 30, 30]
    a, ya, la = bench.make_images(40, size=40, seed=1, photos=photos, logo_half=True)
    plain, yp, lp = bench.make_images(40, size=40, seed=1, photos=photos)
    assert la.sum() == 20 and not lp.any() and (ya == yp).all()
    rows, cols = bench.logo_box(40)
    np.testing.assert_array_equal(a[~la], plain[~la])  # the same pictures, the logo only where planted
    assert not np.allclose(a[la][:, rows, cols], plain[la][:, rows, cols])


def test_summary_counts_and_wilson_intervals() -> None:
    rows = [{"arch": "avg", "planted": False, "severity": s} for s in ("none", "info", "warn")] + [
        {"arch": "avg", "planted": True, "severity": s} for s in ("fail", "fail", "warn")]  # fmt: skip
    s = bench.summarise(rows)["avg"]
    assert (s["false_alarms"], s["clean"], s["detections"], s["planted"]) == (1, 3, 2, 3)
    lo, hi = s["false_alarm_ci"]
    assert 0 < lo < 1 / 3 < hi < 1
