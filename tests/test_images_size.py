"""Inputs at the model's size (audit.io.images.choose_size) and --class NAME for images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from audit.cli.main import app
from audit.config import AuditConfig
from audit.errors import DataError, UsageError
from audit.io.images import ImageSet, choose_size
from audit.pipeline import run_audit
from tests.image_toys import SmallCNN, make_toy_images, toy_model, write_image_folder

TOYS = str(Path(__file__).parent / "image_toys.py")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _set(*sizes: tuple[int, int]) -> ImageSet:
    n = len(sizes)
    return ImageSet(Path("."), tuple(Path(f"{i}.png") for i in range(n)), tuple(f"{i}.png" for i in range(n)),
                    (-1,) * n, (), tuple(sizes), ("RGB",) * n, "flat")  # fmt: skip


def _accepts_only(*ok):
    tried = []

    def accepts(size, resize):
        tried.append((size, resize))
        return (size, resize) in ok

    return accepts, tried


# --------------------------------------------------------------------------------------------------- the rules


def test_one_small_size_the_model_takes_is_audited_as_it_is() -> None:
    accepts, tried = _accepts_only((None, None))
    size, resize, notes = choose_size(_set((64, 64), (64, 64)), size="auto", resize="auto", accepts=accepts)
    assert (size, resize) == (None, None) and tried == [(None, None)]
    assert len(notes) == 1 and "own size, 64x64" in notes[0]


def test_a_model_that_rejects_the_images_size_is_fed_224_with_an_upscaling_note() -> None:
    accepts, tried = _accepts_only((224, 256))
    size, resize, notes = choose_size(_set((64, 64)) , size="auto", resize="auto", accepts=accepts)
    assert (size, resize) == (224, 256) and tried == [(None, None), (224, 256)]
    assert any("does not accept 64x64" in n for n in notes)
    assert any("1 of 1 images were upscaled (shorter side 64 px to 256 px)" in n for n in notes)
    accepts, _ = _accepts_only()
    with pytest.raises(DataError, match="accepts none of the input sizes tried \\(64x64, 224x224\\)"):
        choose_size(_set((64, 64)), size="auto", resize="auto", accepts=accepts)


def test_large_or_mixed_images_are_shrunk_never_enlarged_silently() -> None:
    accepts, _ = _accepts_only((224, 256), (60, 60))
    size, resize, notes = choose_size(_set((500, 375), (640, 480)), size="auto", resize="auto", accepts=accepts)
    assert (size, resize) == (224, 256) and "different sizes" in notes[0] and len(notes) == 1
    size, resize, notes = choose_size(_set((60, 80), (70, 70)), size="auto", resize="auto", accepts=accepts)
    assert (size, resize) == (60, 60) and "none is enlarged" in notes[0] and len(notes) == 1


def test_explicit_options_win_and_enlarging_is_still_noted() -> None:
    never, tried = _accepts_only()
    assert choose_size(_set((64, 64)), size=224, resize=256, accepts=never)[:2] == (224, 256) and not tried
    _, _, notes = choose_size(_set((64, 64)), size=224, resize=256, accepts=never)
    assert any("upscaled" in n for n in notes)
    assert choose_size(_set((64, 64)), size=64, resize="auto", accepts=never) == (64, None, [])
    assert choose_size(_set((300, 300)), size=224, resize="auto", accepts=never) == (224, 256, [])
    assert choose_size(_set((64, 64)), size="auto", resize=None, accepts=never) == (None, None, [])
    assert choose_size(_set((300, 300)), size="auto", resize=256, accepts=never) == (224, 256, [])
    with pytest.raises(UsageError, match="--image-size must be a whole number"):
        choose_size(_set((64, 64)), size="big", resize="auto", accepts=never)


# --------------------------------------------------------------------------------------------------- end to end


def _flat_64() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2)).eval()  # takes 3x64x64 only


@pytest.fixture(scope="module")
def images64(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("img64")
    x, y = make_toy_images(12, leak=False, seed=3, size=64)
    write_image_folder(root / "data", x, y, ("coffee", "cat"))
    torch.save(_flat_64(), root / "flat64.pt")
    torch.save(SmallCNN().state_dict(), root / "cnn.pt")
    return root


def _cfg(root: Path, **kw) -> AuditConfig:
    base = dict(model=root / "flat64.pt", data=root / "data", trust_model=True, normalize="none", n_steps=8,
                n_boot=20, crosscheck_rows=0, gallery=2)  # fmt: skip
    base.update(kw)
    return AuditConfig(**base)


def test_64px_images_and_a_64px_model_are_audited_at_64_with_a_note(images64: Path) -> None:
    run = run_audit(_cfg(images64))
    assert run.images.image_size == (64, 64)
    assert any("own size, 64x64" in n and "model accepts it" in n for n in run.notes), run.notes
    assert not any("upscaled" in n for n in run.notes)


def test_explicit_size_wins(images64: Path) -> None:
    run = run_audit(_cfg(images64, model=images64 / "cnn.pt", trust_model=False, arch=f"{TOYS}:SmallCNN",
                         image_size=48, resize=None))  # fmt: skip
    assert run.images.image_size == (48, 48) and not any("own size" in n for n in run.notes)


def test_class_by_name_explains_that_class(images64: Path) -> None:
    run = run_audit(_cfg(images64, class_index="coffee"))  # folders sorted: cat = 0, coffee = 1
    assert run.explained_output == "class 1 (coffee)"
    assert {it.target_class for it in run.images.most_confident + run.images.least_confident} == {"coffee"}
    named = run_audit(_cfg(images64, class_index="kitten", class_names=("kitten", "coffee")))
    assert named.explained_output == "class 0 (kitten)" and named.images.classes == ("kitten", "coffee")
    with pytest.raises(UsageError, match="--class 'dog' is not a class of this audit \\(classes: cat, coffee\\)"):
        run_audit(_cfg(images64, class_index="dog"))
    with pytest.raises(UsageError, match="--class-names lists 3 names for a model with 2 classes"):
        run_audit(_cfg(images64, class_names=("a", "b", "c")))


def test_cli_class_name_and_the_leaky_toy_at_its_own_size(tmp_path: Path) -> None:
    torch.save(toy_model(True, 1).state_dict(), tmp_path / "leaky.pt")
    x, y = make_toy_images(16, leak=True, seed=7)
    write_image_folder(tmp_path / "images", x, y, ("a", "b"))
    res = CliRunner().invoke(app, [
        "run", "--model", str(tmp_path / "leaky.pt"), "--arch", f"{TOYS}:SmallCNN", "--data",
        str(tmp_path / "images"), "--normalize", "none", "--n-steps", "16", "--n-boot", "20", "--class", "B",
        "--crosscheck-rows", "0", "--format", "json", "--out", str(tmp_path / "out"), "--quiet",
    ])  # fmt: skip
    assert res.exit_code in (0, 1), res.output
    run = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert run["explained_output"] == "class 1 (b)" and run["images"]["image_size"] == [32, 32]
    assert np.load(tmp_path / "out" / "heatmaps.npz")["target"].tolist() == [1] * 16
    assert any("own size, 32x32" in n for n in run["notes"])
