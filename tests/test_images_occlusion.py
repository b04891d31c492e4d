"""spatial_leakage confirmed by occlusion: the statistics on known answers, the fills, the controls, the severity
rules, and end to end: a model whose attribution sits on an edge it does not use is not failed, a planted corner
watermark that flips predictions is, with the occlusion numbers in the evidence."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from audit.analysis.heatmaps import mass_normalize
from audit.analysis.occlusion import OcclusionStat, deciding_fill, occlusion_stat
from audit.config import AuditConfig
from audit.errors import UsageError
from audit.findings.spatial import detect_spatial_leakage
from audit.modalities.image_occlusion import control_boxes, local_blur
from audit.pipeline import run_audit
from audit.results import Severity, Verdict
from tests.image_toys import make_toy_images, write_image_folder

TOYS = str(Path(__file__).parent / "image_toys.py")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------------------------------- statistics


def test_occlusion_stat_known_answers() -> None:
    pb = np.array([0.9, 0.8, 0.7, 0.6])
    pr = np.array([0.1, 0.8, 0.2, 0.6])  # drops 0.8, 0, 0.5, 0
    pc = np.stack([pb - 0.1, pb - 0.3], axis=1)  # every control drops 0.1 and 0.3: mean 0.2
    yb = np.array([1, 1, 0, 0])
    yr = np.array([0, 1, 1, 0])  # two flips
    yc = np.stack([yb, 1 - yb], axis=1)  # the second control flips everything
    s = occlusion_stat("top-left corner", "", "black", p_before=pb, pred_before=yb, p_region=pr, pred_region=yr,
                       p_control=pc, pred_control=yc, n_boot=0)  # fmt: skip
    assert s.drop == pytest.approx(0.325) and s.control_drop == pytest.approx(0.2)
    assert s.excess == pytest.approx(0.125) and s.excess_low == s.excess == s.excess_high  # no bootstrap
    assert s.flip_rate == 0.5 and s.control_flip_rate == 0.5 and s.n_images == 4 and s.n_controls == 2
    assert s.p_before == pytest.approx(0.75) and s.flip_low < 0.5 < s.flip_high
    b = occlusion_stat("top-left corner", "", "black", p_before=pb, pred_before=yb, p_region=pr, pred_region=yr,
                       p_control=pc, pred_control=yc, n_boot=500, seed=3)  # fmt: skip
    assert b.excess_low < b.excess < b.excess_high and b.drop_low < b.drop < b.drop_high
    with pytest.raises(UsageError, match="shape"):
        occlusion_stat("x", "", "black", p_before=pb, pred_before=yb, p_region=pr, pred_region=yr,
                       p_control=pc[:2], pred_control=yc[:2])  # fmt: skip


def _stat(fill: str, excess: float, low: float, region: str = "top-left corner", group: str = "") -> OcclusionStat:
    return OcclusionStat(region, group, fill, 40, 4, 0.9, excess, low, excess + 0.1, 0.0, excess, low, excess + 0.1,
                         0.3, 0.2, 0.45, 0.0)  # fmt: skip


def test_the_weaker_fill_decides() -> None:
    black, blur = _stat("black", 0.4, 0.3), _stat("local blur", 0.02, -0.03)
    assert deciding_fill([black, blur]) is blur and deciding_fill([blur, black]) is blur


def _corner_maps(n: int = 40) -> np.ndarray:
    """Maps with 60% of every image's mass in the top-left corner: a candidate by the attribution rules."""
    rng = np.random.default_rng(0)
    maps = mass_normalize(rng.uniform(0, 0.02, size=(n, 32, 32)) + 1e-3)
    maps *= 0.4
    maps[:, 1:5, 1:5] += 0.6 / 16
    return maps


@pytest.mark.parametrize(
    ("fills", "severity"),
    [
        ((("black", 0.30, 0.20), ("local blur", 0.25, 0.12)), Severity.FAIL),  # both fills move predictions
        ((("black", 0.30, 0.20), ("local blur", 0.08, 0.01)), Severity.WARN),  # material, not certain
        ((("black", 0.30, 0.20), ("local blur", 0.01, -0.02)), Severity.INFO),  # a black square is a feature
        ((("black", 0.00, -0.01), ("local blur", 0.00, -0.02)), Severity.INFO),  # attribution the model ignores
    ],
)
def test_occlusion_decides_the_severity(fills, severity) -> None:
    maps = _corner_maps()
    occ = [_stat(f, e, lo) for f, e, lo in fills]
    (f,) = detect_spatial_leakage(maps.mean(axis=0), maps, occlusion=occ)
    assert f.features == ("top-left corner",) and f.severity == severity
    assert f.evidence["fill"] == "local blur" and f.evidence["occluded_images"] == 40
    assert f.evidence["drop_beyond_random_low"] == fills[1][2] and "class" not in f.evidence  # no empty chip
    assert f"{fills[1][1]:+.3f}" in f.message
    (u,) = detect_spatial_leakage(maps.mean(axis=0), maps)  # not measured: at most a warning
    assert u.severity == Severity.WARN
    occ_other = [_stat("black", 0.5, 0.4, region="top-right corner")]  # another region's numbers do not count
    assert detect_spatial_leakage(maps.mean(axis=0), maps, occlusion=occ_other)[0].severity == Severity.WARN


def test_min_drop_moves_the_bar() -> None:
    maps = _corner_maps()
    occ = [_stat("black", 0.3, 0.2), _stat("local blur", 0.3, 0.2)]
    assert detect_spatial_leakage(maps.mean(0), maps, occlusion=occ, min_drop=0.19)[0].severity == Severity.FAIL
    assert detect_spatial_leakage(maps.mean(0), maps, occlusion=occ, min_drop=0.21)[0].severity == Severity.WARN
    with pytest.raises(UsageError, match="spatial_min_drop"):
        detect_spatial_leakage(maps.mean(0), maps, min_drop=2.0)


# --------------------------------------------------------------------------------------------------- fills


def test_local_blur_removes_what_is_inside_and_keeps_the_rest() -> None:
    x = torch.full((2, 3, 32, 32), 0.2)
    x[0, :, 10:20, 10:20] = 0.7  # an object, not masked
    x[:, 1, 0:6, 26:32] = 5.0  # a bright mark in the top-right corner of both images
    mask = torch.zeros((2, 32, 32), dtype=torch.bool)
    mask[:, 0:8, 24:32] = True
    out = local_blur(x, mask)
    assert torch.equal(out[~mask.unsqueeze(1).expand_as(x)], x[~mask.unsqueeze(1).expand_as(x)])
    assert out[:, :, 0:8, 24:32].max() < 0.3  # the mark is gone: filled from the 0.2 surroundings
    const = torch.full((1, 3, 16, 16), -1.5)
    m1 = torch.zeros((1, 16, 16), dtype=torch.bool)
    m1[:, 4:12, 0:16] = True  # a strip across the whole image
    assert torch.allclose(local_blur(const, m1), const, atol=1e-5)  # a constant image stays constant


def test_control_regions_have_the_shape_and_avoid_the_region() -> None:
    rng = np.random.default_rng(0)
    places = control_boxes(32, 32, (0, 8, 24, 32), n=50, k=4, rng=rng)
    assert places.shape == (50, 4, 2)
    r, c = places[..., 0], places[..., 1]
    assert (r >= 0).all() and (r <= 24).all() and (c >= 0).all() and (c <= 24).all()
    assert ((r >= 8) | (c + 8 <= 24)).all()  # no overlap with the top-right corner box
    assert len({(int(a), int(b)) for a, b in places.reshape(-1, 2)}) > 20  # spread out, not one place


# --------------------------------------------------------------------------------------------------- end to end


class EdgeGlowCNN(nn.Module):
    """A max-pooling model that reads the class from the centre square and adds the brightest pixel of the right
    edge to *both* logits: IG on the predicted logit puts a third of the mass on that edge, yet no occlusion of
    it can move a probability (a common-mode term, as max pooling makes of a bright border)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, :, 8:24, 8:24]  # (n, 3, 16, 16)
        s = 70.0 * (centre[:, 1] - centre[:, 0]).mean(dim=(1, 2))  # (n,): green square > 0, magenta < 0
        e = 4.0 * nn.functional.adaptive_max_pool2d(x[:, :, :, 28:].sum(dim=1, keepdim=True), 1).flatten()  # (n,)
        return torch.stack([s / 2 + e, -s / 2 + e], dim=1)  # (n, 2)


def _edge_images(tmp: Path) -> Path:
    x, y = make_toy_images(24, leak=False, seed=5)
    x = x * 0.2  # dim background so the centre square carries the class mass
    x[:, :, 8:24, 8:24] = np.clip(x[:, :, 8:24, 8:24] * 5, 0, 1)
    rng = np.random.default_rng(0)
    x[:, :, :, 31] = rng.uniform(0.8, 1.0, size=(24, 1, 32))  # a bright scanner border along the right edge
    write_image_folder(tmp / "edge", x, y, ("a", "b"))
    return tmp / "edge"


def test_attribution_on_an_edge_the_model_does_not_use_is_not_a_failure(tmp_path: Path) -> None:
    model = EdgeGlowCNN().eval()
    torch.save(model, tmp_path / "edge.pt")
    cfg = AuditConfig(model=tmp_path / "edge.pt", data=_edge_images(tmp_path), trust_model=True, normalize="none",
                      n_steps=16, n_boot=100, crosscheck_rows=0)  # fmt: skip
    run = run_audit(cfg)
    (f,) = [f for f in run.findings if f.code == "spatial_leakage"]
    assert f.features == ("right edge",)
    assert f.evidence["share"] >= 0.3 and f.evidence["fraction_of_images"] >= 0.9  # the old rule's failure
    assert f.severity == Severity.INFO and run.verdict != Verdict.FAIL
    assert abs(f.evidence["drop"]) < 1e-3 and f.evidence["drop_beyond_random"] < 0.05
    assert "does not depend on it" in f.message


def test_planted_corner_watermark_fails_with_the_occlusion_numbers(tmp_path: Path) -> None:
    from tests.image_toys import toy_model

    torch.save(toy_model(True, 1).state_dict(), tmp_path / "leaky.pt")
    x, y = make_toy_images(24, leak=True, seed=101)
    write_image_folder(tmp_path / "leaky", x, y, ("a", "b"))
    cfg = AuditConfig(model=tmp_path / "leaky.pt", data=tmp_path / "leaky", arch=f"{TOYS}:SmallCNN",
                      normalize="none", n_steps=16, n_boot=100, crosscheck_rows=0)  # fmt: skip
    run = run_audit(cfg)
    (f,) = [f for f in run.findings if f.code == "spatial_leakage"]
    ev = f.evidence
    assert f.severity == Severity.FAIL and f.features == ("top-left corner",) and run.verdict == Verdict.FAIL
    assert ev["occluded_images"] == 24 and ev["drop_beyond_random_low"] >= 0.05
    assert ev["drop"] > ev["random_region_drop"] + 0.1 and ev["flipped_share"] > ev["random_flipped_share"]
    assert ev["fill"] in ("black", "local blur") and "class" not in ev
    assert f"{ev['drop']:.3f}" in f.message and "flips" in f.message
    # the same model and images, with the occlusion bar above what the watermark does: no longer a failure
    high = dataclasses.replace(cfg, thresholds=dataclasses.replace(cfg.thresholds, spatial_min_drop=0.99))
    assert [g.severity for g in run_audit(high).findings if g.code == "spatial_leakage"] != [Severity.FAIL]


def test_the_report_shows_the_occlusion_check_and_no_empty_class_chip() -> None:
    from audit.report import render_html
    from tests.report_fixtures import make_image_run

    run = make_image_run()
    maps = _corner_maps()
    (f,) = detect_spatial_leakage(maps.mean(axis=0), maps,
                                  occlusion=[_stat("black", 0.31, 0.22), _stat("local blur", 0.27, 0.18)])
    html = render_html(dataclasses.replace(run, findings=(f,)))
    assert "Occlusion check of the regions" in html and "0.270 (0.180 to 0.370)" in html and "local blur" in html
    assert "Drop beyond random" in html and "Class:" not in html.replace(" ", "")
    assert "Occlusion check" not in render_html(run)  # a record without occlusion numbers has no table
