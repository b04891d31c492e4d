"""audit.io.images: layouts, labels, preprocessing identical to torchvision's, channel policy, clear errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from audit.errors import AuditError, DataError, UsageError
from audit.io.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    discover_images,
    image_set_sha256,
    load_batch,
    output_size,
    parse_normalize,
)


def _rgb(path: Path, w: int, h: int, seed: int = 0, mode: str = "RGB") -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    if mode != "RGB":
        img = img.convert(mode)
    img.save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "imgs"
    for k, cls in enumerate(("dog", "cat", "eel")):  # created unsorted: classes must come out sorted
        for i in range(k + 1):
            _rgb(root / cls / f"{i}.png", 20, 16, seed=10 * k + i)
    (root / "cat" / "notes.txt").write_text("not an image")
    return root


# --------------------------------------------------------------------------------------------------- discovery


def test_image_folder_layout_gives_sorted_classes_and_labels(folder: Path) -> None:
    s = discover_images(folder)
    assert s.source == "folder"
    assert s.classes == ("cat", "dog", "eel")  # ImageFolder order: sorted names
    assert len(s) == 6  # the .txt file is skipped
    assert Counter(s.labels) == {0: 2, 1: 1, 2: 3}
    for name, lab in zip(s.names, s.labels, strict=True):
        assert name.split("/")[0] == s.classes[lab]
    assert set(s.sizes) == {(20, 16)}


def test_top_level_images_next_to_class_folders_are_skipped_with_a_note(folder: Path) -> None:
    _rgb(folder / "stray.png", 20, 16)
    s = discover_images(folder)
    assert len(s) == 6
    assert any("skipped" in n and "1 image" in n for n in s.notes)


def test_flat_folder_is_unlabelled(tmp_path: Path) -> None:
    for i in range(3):
        _rgb(tmp_path / f"{i}.jpg", 8, 8, seed=i)
    s = discover_images(tmp_path)
    assert s.source == "flat" and not s.labelled
    assert s.labels == (-1, -1, -1) and s.classes == ()


def test_csv_with_class_names_and_with_integer_indices(tmp_path: Path) -> None:
    for i in range(4):
        _rgb(tmp_path / "x" / f"{i}.png", 8, 8, seed=i)
    (tmp_path / "names.csv").write_text("path,label\nx/0.png,zebra\nx/1.png,ant\nx/2.png,zebra\nx/3.png,ant\n")
    s = discover_images(tmp_path / "names.csv")
    assert s.source == "csv" and s.classes == ("ant", "zebra") and s.labels == (1, 0, 1, 0)
    # whole-number labels are the model's output indices, including classes that do not occur
    (tmp_path / "ints.csv").write_text("path,label\nx/0.png,3\nx/1.png,0\n")
    s = discover_images(tmp_path / "ints.csv")
    assert s.labels == (3, 0) and s.classes == ("0", "1", "2", "3")


def test_csv_path_column_may_be_called_image_or_file(tmp_path: Path) -> None:
    _rgb(tmp_path / "0.png", 8, 8)
    for header in ("image", "File", "filename"):
        (tmp_path / "p.csv").write_text(f"{header},label\n0.png,cat\n")
        s = discover_images(tmp_path / "p.csv")
        assert s.names == ("0.png",) and s.classes == ("cat",)


def test_csv_without_labels_and_labels_csv_for_a_folder(tmp_path: Path) -> None:
    for i in range(2):
        _rgb(tmp_path / "d" / f"{i}.png", 8, 8, seed=i)
    (tmp_path / "p.csv").write_text("path\nd/0.png\nd/1.png\n")
    s = discover_images(tmp_path / "p.csv")
    assert not s.labelled and len(s) == 2
    (tmp_path / "lab.csv").write_text("path,label\n1.png,b\n0.png,a\n")
    s = discover_images(tmp_path / "d", tmp_path / "lab.csv")
    assert s.source == "folder+csv" and s.names == ("1.png", "0.png") and s.labels == (1, 0)


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda p: p / "missing", ["no image folder", "--data"]),
        (lambda p: p, ["no images in", "class sub-folders"]),
        (lambda p: (p / "a.txt").write_text("x") and p / "a.txt", ["not a .csv"]),
    ],
)
def test_missing_and_empty_inputs(tmp_path: Path, setup, words: list[str]) -> None:
    with pytest.raises(DataError) as e:
        discover_images(setup(tmp_path))
    for w in words:
        assert w in str(e.value)


def test_unreadable_image_names_the_file_and_what_to_do(folder: Path) -> None:
    (folder / "cat" / "x.png").write_bytes(b"this is not a png")
    with pytest.raises(DataError, match=r"image 'cat/x.png' cannot be read \(.*\); remove it or replace it"):
        discover_images(folder)


def test_truncated_image_fails_at_load_with_the_same_message(tmp_path: Path) -> None:
    p = _rgb(tmp_path / "a" / "t.png", 64, 64)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # the header reads, the pixels do not
    s = discover_images(tmp_path)
    with pytest.raises(DataError, match="image 'a/t.png' cannot be read"):
        load_batch(s, [0], size=None, resize=None, normalize="none")


@pytest.mark.parametrize(
    ("csv", "words"),
    [
        ("name,label\nd/0.png,a\n", ["no 'path' column", "path,label"]),
        ("path\nd/0.png\n", ["no 'label' column"]),
        ("path,label\nd/9.png,a\n", ["row 1", "'d/9.png' not found"]),
        ("path,label\nd/0.png,\n", ["row 1 has no label"]),
    ],
)
def test_labels_csv_errors(tmp_path: Path, csv: str, words: list[str]) -> None:
    _rgb(tmp_path / "d" / "0.png", 8, 8)
    (tmp_path / "labels.csv").write_text(csv)
    with pytest.raises(DataError) as e:
        discover_images(tmp_path, tmp_path / "labels.csv")
    for w in words:
        assert w in str(e.value)


def test_labels_flag_with_a_csv_data_file_is_a_usage_error(tmp_path: Path) -> None:
    _rgb(tmp_path / "0.png", 8, 8)
    (tmp_path / "p.csv").write_text("path,label\n0.png,a\n")
    with pytest.raises(UsageError, match="label"):
        discover_images(tmp_path / "p.csv", tmp_path / "p.csv")


# --------------------------------------------------------------------------------------------------- preprocessing


def test_preprocessing_matches_torchvision_resize_crop_totensor_normalize(tmp_path: Path) -> None:
    _rgb(tmp_path / "a" / "0.png", 50, 37, seed=1)
    _rgb(tmp_path / "a" / "1.png", 31, 60, seed=2)  # portrait, different size: fine with a resize + crop
    s = discover_images(tmp_path)
    x, thumbs = load_batch(s, [0, 1], size=24, resize=30, normalize="imagenet")
    norm = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    tf = transforms.Compose([transforms.Resize(30), transforms.CenterCrop(24), transforms.ToTensor(), norm])
    want = torch.stack([tf(Image.open(p).convert("RGB")) for p in s.paths])
    assert x.shape == (2, 3, 24, 24) and x.dtype == torch.float32
    torch.testing.assert_close(x, want, atol=1e-6, rtol=0)
    assert thumbs.shape == (2, 24, 24, 3) and thumbs.dtype == np.uint8
    # the thumbnail is the cropped picture before normalisation
    pixels = want * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    np.testing.assert_allclose(thumbs, np.rint(pixels.permute(0, 2, 3, 1).numpy() * 255), atol=1)


def test_thumbnails_are_area_averaged_to_the_long_side(tmp_path: Path) -> None:
    _rgb(tmp_path / "0.png", 120, 120)
    s = discover_images(tmp_path)
    x, thumbs = load_batch(s, [0], size=112, resize=None, normalize="none", thumb_side=56)
    assert thumbs.shape == (1, 56, 56, 3)
    want = x[0].numpy().reshape(3, 56, 2, 56, 2).mean(axis=(2, 4)).transpose(1, 2, 0) * 255  # 2x2 means
    np.testing.assert_allclose(thumbs[0], np.rint(want), atol=1)


def test_mixed_sizes_without_resize_say_to_pass_resize(tmp_path: Path) -> None:
    _rgb(tmp_path / "a.png", 20, 20)
    _rgb(tmp_path / "b.png", 30, 20)
    s = discover_images(tmp_path)
    with pytest.raises(DataError, match="different sizes.*--resize"):
        output_size(s, size=None, resize=None)
    with pytest.raises(DataError, match="different sizes"):
        load_batch(s, [0, 1], size=None, resize=None)
    assert output_size(s, size=16, resize=None) == (16, 16)  # a common crop makes them agree


def test_image_smaller_than_the_crop_says_what_to_change(tmp_path: Path) -> None:
    _rgb(tmp_path / "a.png", 20, 20)
    s = discover_images(tmp_path)
    with pytest.raises(DataError, match=r"'a.png' is 20x20.*smaller than the 224x224 crop.*--image-size"):
        output_size(s, size=224, resize=None)


def test_channel_policy_grayscale_rgba_palette_and_16_bit(tmp_path: Path) -> None:
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10  # red, nearly transparent: the alpha is dropped, like ImageFolder's loader
    Image.fromarray(rgba).save(tmp_path / "r.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "w.png")
    s = discover_images(tmp_path)
    conv: Counter = Counter()
    x, thumbs = load_batch(s, range(3), size=None, resize=None, normalize="none", conversions=conv)
    order = {n: i for i, n in enumerate(s.names)}
    g, r, w = x[order["g.png"]], x[order["r.png"]], x[order["w.png"]]
    for c in range(3):  # grayscale repeated into R, G, B
        np.testing.assert_allclose(g[c].numpy(), gray / 255.0, atol=1e-6)
        np.testing.assert_allclose(w[c].numpy(), gray / 255.0, atol=1e-6)  # 16-bit scaled by 65535
    np.testing.assert_allclose(r[0].numpy(), 200 / 255.0, atol=1e-6)
    assert float(r[1:].abs().max()) == 0.0
    assert conv["L->RGB"] == 1 and conv["RGBA->RGB"] == 1 and sum(conv.values()) == 3
    # a one-channel model gets luma; a 5-channel model gets a clear error
    x1, thumbs1 = load_batch(s, [order["r.png"]], size=None, resize=None, normalize="none", channels=1)
    assert x1.shape == (1, 1, 8, 8) and thumbs1.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(x1[0, 0].numpy(), round(200 * 299 / 1000) / 255.0, atol=1 / 255)
    with pytest.raises(DataError, match="5 input channels.*1 \\(grayscale\\), 3 \\(RGB\\) or 4"):
        load_batch(s, [0], size=None, resize=None, channels=5)


def test_parse_normalize() -> None:
    assert parse_normalize("imagenet") == (IMAGENET_MEAN, IMAGENET_STD)
    assert parse_normalize("none", 1) == ((0.0,), (1.0,))
    assert parse_normalize("0.5/0.25", 3) == ((0.5,) * 3, (0.25,) * 3)
    assert parse_normalize("0.1,0.2,0.3/1,2,3") == ((0.1, 0.2, 0.3), (1.0, 2.0, 3.0))
    for bad in ("imagenette", "1,2/3", "0.5/0", "a/b"):
        with pytest.raises(UsageError):
            parse_normalize(bad)
    with pytest.raises(UsageError, match="3 channels but the model takes 1"):
        parse_normalize("imagenet", 1)


def test_normalize_is_applied_per_channel(tmp_path: Path) -> None:
    _rgb(tmp_path / "a.png", 6, 6)
    s = discover_images(tmp_path)
    raw, _ = load_batch(s, [0], size=None, resize=None, normalize="none")
    x, _ = load_batch(s, [0], size=None, resize=None, normalize="0.1,0.2,0.3/0.5,2,4")
    want = (raw - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.5, 2, 4]).view(1, 3, 1, 1)
    torch.testing.assert_close(x, want)


def test_data_hash_changes_with_a_file_or_a_label(tmp_path: Path) -> None:
    _rgb(tmp_path / "a" / "0.png", 8, 8, seed=0)
    _rgb(tmp_path / "b" / "1.png", 8, 8, seed=1)
    h0 = image_set_sha256(discover_images(tmp_path))
    assert h0 == image_set_sha256(discover_images(tmp_path)) and len(h0) == 64
    _rgb(tmp_path / "b" / "1.png", 8, 8, seed=2)
    h1 = image_set_sha256(discover_images(tmp_path))
    (tmp_path / "b" / "1.png").rename(tmp_path / "a" / "1.png")  # same bytes, other class
    h2 = image_set_sha256(discover_images(tmp_path))
    assert len({h0, h1, h2}) == 3


def test_errors_are_one_line_audit_errors(tmp_path: Path) -> None:
    _rgb(tmp_path / "a.png", 20, 20)
    _rgb(tmp_path / "b.png", 30, 20)
    s = discover_images(tmp_path)
    for call in (
        lambda: load_batch(s, [0, 1], size=None, resize=None),
        lambda: load_batch(s, [5], size=None, resize=None),
        lambda: load_batch(s, [0], size=0, resize=None),
    ):
        with pytest.raises(AuditError) as e:
            call()
        assert "\n" not in str(e.value)
