"""Image audits end to end through run_audit: folders of PNGs, checkpoints on disk, the planted watermark, known
answers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from audit.analysis.heatmaps import clip_normalize, reduce_channels
from audit.config import AuditConfig
from audit.errors import DataError, UsageError
from audit.hashing import sha256_file
from audit.pipeline import run_audit
from audit.results import AuditRun, Verdict, load_run, save_run, to_dict
from tests.image_toys import SmallCNN, flat_linear_32, make_toy_images, toy_model, write_image_folder

TOYS = str(Path(__file__).parent / "image_toys.py")
N_IMAGES = 24



class _Arrays:
    """An output sink that keeps the per-image arrays (the staging folder saves them as heatmaps.npz)."""

    def __init__(self) -> None:
        self.data: dict[str, np.ndarray] = {}

    def rows(self, *args) -> None:  # tables only
        raise AssertionError("an image audit streams no table rows")

    def arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.data = dict(arrays)


def run_image_audit(cfg: AuditConfig, progress=None) -> tuple[AuditRun, dict[str, np.ndarray]]:
    sink = _Arrays()
    run = run_audit(cfg, progress=progress, outputs=sink)
    return run, sink.data

@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine OpenMP threads wait for each other at every layer (a small
    CNN ran 75-2,500 path points/s with 2 threads under load, ~4,000 with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Leaky and clean CNNs as state_dicts (built with --arch), and their held-out images as ImageFolders."""
    tmp = tmp_path_factory.mktemp("images")
    out: dict[str, Path] = {}
    for name, leak in (("leaky", True), ("clean", False)):
        model = toy_model(leak, 1)
        out[f"{name}_model"] = tmp / f"{name}.pt"
        torch.save(model.state_dict(), out[f"{name}_model"])
        xt, yt = make_toy_images(N_IMAGES, leak=leak, seed=101)
        out[f"{name}_data"] = tmp / f"{name}_images"
        write_image_folder(out[f"{name}_data"], xt, yt, ("a", "b"))
    return out


def _config(world: dict[str, Path], which: str = "leaky", **kw) -> AuditConfig:
    base = dict(
        model=world[f"{which}_model"], data=world[f"{which}_data"], arch=f"{TOYS}:SmallCNN", image_size=32,
        resize=None, normalize="none", n_steps=32, n_boot=50, gallery=3, crosscheck_rows=2,
    )  # fmt: skip
    base.update(kw)
    return AuditConfig(**base)


@pytest.fixture(scope="module")
def leaky_run(world) -> tuple[AuditRun, dict[str, np.ndarray], list]:
    calls: list = []
    run, arrays = run_image_audit(_config(world), progress=lambda *a: calls.append(a))
    return run, arrays, calls


def test_planted_watermark_run_fails_on_spatial_leakage(leaky_run) -> None:
    run, _, _ = leaky_run
    assert run.task == "image_classification" and run.verdict == Verdict.FAIL
    spatial = [f for f in run.findings if f.code == "spatial_leakage"]
    assert [f.features for f in spatial] == [("top-left corner",)] and spatial[0].severity == "fail"
    assert not [f for f in run.findings if f.code != "spatial_leakage"]  # converged, engines agree
    assert run.explained_output == "predicted class" and run.baseline == "black"


def test_clean_run_passes(world) -> None:
    run, _ = run_image_audit(_config(world, "clean", crosscheck_rows=0))
    assert [f.code for f in run.findings if f.code == "spatial_leakage"] == []
    assert run.verdict in (Verdict.PASS, Verdict.WARN) and not any(f.severity == "fail" for f in run.findings)


def test_record_contents_add_up(leaky_run, world) -> None:
    run, arrays, calls = leaky_run
    n = N_IMAGES
    assert run.n_rows == n and run.n_features == 3
    assert {s.name for s in run.features} == {"R", "G", "B"} and [s.rank for s in run.features] == [1, 2, 3]
    assert [s.mean_abs for s in run.features] == sorted((s.mean_abs for s in run.features), reverse=True)
    assert sum(s.share for s in run.features) == pytest.approx(1.0)
    mass = arrays["channel_mass"].astype(np.float64)
    by_name = {s.name: s for s in run.features}
    for j, c in enumerate("RGB"):
        assert by_name[c].mean_abs == pytest.approx(mass[:, j].mean(), rel=1e-5)
        assert by_name[c].ci_low <= by_name[c].mean_abs <= by_name[c].ci_high
    assert sum(run.images.channel_share.values()) == pytest.approx(1.0)
    assert run.convergence.n_rows == n and run.convergence.median_rel_delta < 0.01
    assert run.crosscheck.rows == 2 and run.crosscheck.passed, run.crosscheck.explanation
    img = run.images
    assert img.image_size == (32, 32) and img.n_images == n and img.classes == ("a", "b")
    assert set(img.class_maps) <= {"a", "b"} and len(img.class_maps) >= 1
    mean_map = np.asarray(img.mean_map)
    assert mean_map.shape == (32, 32) and mean_map.min() >= 0 and mean_map.max() == 1.0
    assert mean_map[:8, :8].mean() > 3 * mean_map.mean()  # the corner is where the picture is bright
    assert run.provenance.model_sha256 == sha256_file(world["leaky_model"])
    assert run.provenance.model_form == "state_dict" and len(run.provenance.data_sha256) == 64
    assert calls[-1] == ("cross-check", 2, 2) and ("attribution", n, n) in calls
    assert any("accuracy on the audited images" in note for note in run.notes)


def test_gallery_holds_the_most_and_least_confident_images(leaky_run, world) -> None:
    run, arrays, _ = leaky_run
    conf = arrays["confidence"]
    most = [it.confidence for it in run.images.most_confident]
    least = [it.confidence for it in run.images.least_confident]
    assert len(most) == len(least) == 3
    np.testing.assert_allclose(most, np.sort(conf)[::-1][:3], rtol=1e-6)
    np.testing.assert_allclose(least, np.sort(conf)[:3], rtol=1e-6)
    item = run.images.most_confident[0]
    i = list(arrays["paths"]).index(item.path)
    assert item.predicted == ("a", "b")[arrays["predicted"][i]] and item.label in ("a", "b")
    png = np.asarray(Image.open(Path(world["leaky_data"]) / item.path).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(item.thumbnail, dtype=np.uint8), png)  # 32x32: thumbnail = image
    heat = np.asarray(item.heatmap)
    assert heat.shape == (32, 32) and heat.min() >= 0 and heat.max() == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_allclose(heat, arrays["heatmaps"][i].astype(np.float64), atol=2e-3)


def test_arrays_for_the_npz(leaky_run) -> None:
    _, arrays, _ = leaky_run
    n = N_IMAGES
    assert arrays["heatmaps"].shape == (n, 32, 32) and arrays["heatmaps"].dtype == np.float16
    assert float(arrays["heatmaps"].max()) == 1.0 and float(arrays["heatmaps"].min()) >= 0
    for key in ("labels", "predicted", "target", "confidence", "rel_delta", "paths"):
        assert arrays[key].shape == (n,), key
    np.testing.assert_array_equal(arrays["target"], arrays["predicted"])
    assert arrays["mean_map"].shape == (32, 32) and arrays["mean_map"].sum() == pytest.approx(1.0, rel=1e-5)


def test_saved_run_round_trips(leaky_run, tmp_path: Path) -> None:
    run, _, _ = leaky_run
    again = load_run(save_run(run, tmp_path / "audit.json"))
    assert to_dict(again) == to_dict(run)
    assert len(json.dumps(to_dict(run), separators=(",", ":"))) < 150_000  # gallery pictures are small


@pytest.mark.parametrize("baseline", ["blur", "noise", "mean"])
def test_every_baseline_finds_the_watermark_and_converges(world, baseline: str) -> None:
    run, arrays = run_image_audit(_config(world, baseline=baseline, n_steps=16, crosscheck_rows=0, n_boot=0))
    assert run.baseline == baseline
    found = [f for f in run.findings if f.code == "spatial_leakage"]
    assert found and found[0].features == ("top-left corner",), [f.message for f in found]
    assert float(np.median(arrays["rel_delta"])) < 0.01


def test_linear_model_heatmaps_are_the_known_answer(tmp_path: Path) -> None:
    """F(x) = w . x, black baseline = 0 (no normalisation): IG = w * x exactly, per pixel and channel."""
    gen = torch.Generator().manual_seed(5)
    pixels = torch.rand(6, 3, 8, 8, generator=gen)
    write_image_folder(tmp_path / "d", pixels.numpy(), np.array([0, 1, 0, 1, 0, 1]), ("a", "b"))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    torch.nn.init.normal_(model[1].weight, generator=gen)
    torch.save(model, tmp_path / "lin.pt")
    cfg = AuditConfig(
        model=tmp_path / "lin.pt", data=tmp_path / "d", trust_model=True, class_index="1", image_size=8,
        resize=None, normalize="none", n_steps=4, n_boot=0, crosscheck_rows=0,
    )  # fmt: skip
    run, arrays = run_image_audit(cfg)
    order = [int(Path(p).stem) for p in arrays["paths"]]
    read = torch.from_numpy(np.rint(pixels.numpy()[order] * 255) / 255).float()  # what the PNGs hold
    want = clip_normalize(reduce_channels(model[1].weight[1].detach().view(1, 3, 8, 8) * read))
    np.testing.assert_allclose(arrays["heatmaps"].astype(np.float64), want, atol=1e-3)
    assert run.explained_output == "class 1 (b)" and (arrays["target"] == 1).all()
    assert float(arrays["rel_delta"].max()) < 1e-4  # completeness is exact for a linear model


def test_memory_running_out_shrinks_the_chunk_and_gives_the_same_answer(world) -> None:
    """The planted model raises CUDA's out-of-memory error above 20 inputs per forward: predictions (24 images)
    and IG chunks (18 path points per image at 16 steps) must shrink and go on, with the same answer."""
    plain = _config(world, n_steps=16, crosscheck_rows=0, n_boot=0)
    capped = dataclasses.replace(plain, arch=f"{TOYS}:MemoryCappedCNN")
    _, want = run_image_audit(plain)
    run, got = run_image_audit(capped)
    assert any("memory ran out predicting" in note for note in run.notes), run.notes
    assert any("memory ran out at" in note for note in run.notes), run.notes
    np.testing.assert_allclose(got["heatmaps"].astype(float), want["heatmaps"].astype(float), atol=2e-3)
    np.testing.assert_array_equal(got["predicted"], want["predicted"])


def test_grayscale_model_gets_luma_and_says_so(world, tmp_path: Path) -> None:
    torch.manual_seed(0)
    torch.save(SmallCNN(in_channels=1).state_dict(), tmp_path / "gray.pt")
    cfg = _config(world, model=tmp_path / "gray.pt", arch=f"{TOYS}:gray_cnn", crosscheck_rows=0, n_boot=0)
    run, arrays = run_image_audit(cfg)
    assert [s.name for s in run.features] == ["gray"] and run.n_features == 1
    assert any("RGB->L" in note for note in run.notes)
    assert arrays["heatmaps"].shape == (N_IMAGES, 32, 32)


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"class_index": "all"}, UsageError, "--class all is for tabular"),
        ({"class_index": "7"}, UsageError, "--class 7 is out of range for a model with 2 outputs"),
        ({"baseline": "median"}, UsageError, "does not apply to images; use one of black, blur, noise, mean"),
        ({"baseline": "zero"}, UsageError, "does not apply to images; use one of black, blur, noise, mean"),
        ({"target_col": "label"}, UsageError, "--target-col does not apply to image data"),
        ({"slice_col": "site"}, UsageError, "--slice-col does not apply to image data"),
        ({"noise_features": ("n*",)}, UsageError, "--noise-features does not apply to image data"),
        ({"groups": ("g=g_*",)}, UsageError, "--group does not apply to image data"),
        ({"task": "regression"}, UsageError, "--task regression does not apply to image data"),
        ({"image_size": 28}, DataError, "does not accept 3x28x28|--image-size"),
        ({"image_size": 64}, DataError, "smaller than the 64x64 crop"),
        ({"normalize": "imagenet/x"}, UsageError, "--normalize"),
    ],
)
def test_bad_options_fail_with_one_line(world, changes: dict, error: type, words: str) -> None:
    cfg = _config(world, **changes)
    if changes.get("image_size") == 28:  # a model that only takes 32x32 inputs
        cfg = dataclasses.replace(cfg, arch=f"{TOYS}:flat_linear_32", model=_flat_model(world))
    with pytest.raises(error, match=words) as e:
        run_image_audit(cfg)
    assert "\n" not in str(e.value)


def _flat_model(world: dict[str, Path]) -> Path:
    path = world["leaky_model"].parent / "flat.pt"
    if not path.exists():
        torch.manual_seed(0)
        torch.save(flat_linear_32().state_dict(), path)
    return path


def test_more_classes_than_outputs_is_a_data_error(world, tmp_path: Path) -> None:
    xt, _ = make_toy_images(3, leak=True, seed=7)
    write_image_folder(tmp_path / "d", xt, np.array([0, 1, 2]), ("a", "b", "c"))
    with pytest.raises(DataError, match="class 2 \\('c'\\) but the model has 2 output"):
        run_image_audit(_config(world, data=tmp_path / "d"))
