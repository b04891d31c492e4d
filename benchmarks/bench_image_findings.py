"""Benchmark of ``spatial_leakage`` against ground truth: clean and planted image classifiers, several seeds, small
CNNs with average and with max pooling.

    python benchmarks/bench_image_findings.py [--seeds 0,1,2,3,4] [--arch avg,max] [--size 48] [--quick]
                                              [--audit-images 64] [--json out.json] [-- audit options...]

Images. Three classes cut from scikit-image's bundled sample photos (``coffee``, ``chelsea`` the cat,
``astronaut``; read from the package, no network): random square crops of 45-90% of the photo's short side at a
random place, flipped left-right half of the time, resized to ``--size`` pixels. When scikit-image or its photos
are missing, textured synthetic images made in code stand in (one texture per class: stripes, checks, blobs, each
with random phase, scale and colour jitter), and the table says so.

The planted shortcut (the logo): a small white square with a red centre (1/8 of the side) drawn in the top-right
corner, two pixels from the border. *Planted* models are trained on images where every class-0 (``coffee``) image
carries the logo and half of the class-0 images show a crop of another photo, so the logo is the only cue there:
the model learns "logo => coffee". *Clean* models are trained on the same photos without any logo. Both are
audited on the same held-out images (``--audit-images``, balanced over the classes) where a random half carries
the logo whatever their class; clean models are audited on the same images without the logo (a clean model never
saw it, and with max pooling even an unseen white-and-red square moves some predictions: that is a robustness
matter, not the learnt shortcut this benchmark scores). Ground truth per case is measured, not assumed: the share
of audited logo images whose prediction changes when the logo is replaced by the same image without it.

Architectures: ``avg`` = conv(3->16) - avg-pool - conv(16->32) - avg-pool - conv(32->32) - adaptive average to
4x4 - linear (with a global average the small logo is too weak a signal to be learnt in a few epochs); ``max`` =
the same with max pooling and a global max (max pooling puts IG mass on edges and corners the model barely uses,
which is what fooled the detector before occlusion confirmed its candidates).

Every case is audited through :func:`audit.run` at default options (the ImageNet normalisation the models were
trained with is the default too), so the baseline is the default ``black`` unless audit options after ``--`` say
otherwise. Scored per case: the verdict of ``spatial_leakage`` (none, info, warn, fail). False-alarm rate = clean
cases flagged warn or fail; detection rate = planted cases flagged fail; both with Wilson 95% intervals
(``wilson`` of :mod:`benchmarks._findings_corpus`). ``--quick`` (used by the tests): 1 seed, small sets, few
epochs.

On a shared CPU run it with one torch thread (the script sets it): ~10 minutes on 2 cores for 5 seeds x 2
architectures x clean/planted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

from benchmarks._findings_corpus import wilson  # noqa: E402

CLASSES = ("coffee", "chelsea", "astronaut")
LOGO_CLASS = 0
OTHER_PICTURE = 0.5  # planted training: share of the class-0 (logo) images that show another class's picture
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# --------------------------------------------------------------------------------------------------- images


def _photos() -> tuple[list[np.ndarray] | None, str]:
    """The three sample photos as float arrays (H, W, 3) in [0, 1], or None when scikit-image is missing."""
    try:
        import skimage.data as data

        return [np.asarray(getattr(data, n)(), dtype=np.float32) / 255.0 for n in CLASSES], "scikit-image photos"
    except Exception:  # not installed, or the bundled files cannot be read
        return None, "synthetic textures (scikit-image photos unavailable)"


def _texture(k: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A textured stand-in image of class ``k`` (H, W, 3) in [0, 1]."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    f, phase = rng.uniform(3, 6), rng.uniform(0, 2 * np.pi)
    theta = rng.uniform(0, np.pi)
    u = np.cos(theta) * xx + np.sin(theta) * yy
    v = -np.sin(theta) * xx + np.cos(theta) * yy
    if k == 0:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * f * u + phase)
    elif k == 1:
        t = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * f * u + phase) * np.sin(2 * np.pi * f * v))
    else:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * f * u + phase) * np.cos(2 * np.pi * f * 1.3 * v)
    base = np.array([[0.6, 0.4, 0.2], [0.3, 0.5, 0.6], [0.5, 0.5, 0.5]][k]) + rng.normal(0, 0.05, 3)
    img = t[..., None] * base + (1 - t[..., None]) * (base * 0.4)
    return np.clip(img + rng.normal(0, 0.03, img.shape), 0, 1).astype(np.float32)


def _crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = photo.shape[:2]
    side = int(rng.uniform(0.45, 0.9) * min(h, w))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    c = photo[top : top + side, left : left + side]
    if rng.uniform() < 0.5:
        c = c[:, ::-1]
    img = Image.fromarray(np.rint(c * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0


def logo_box(size: int) -> tuple[slice, slice]:
    """Rows and columns of the logo: 1/8 of the side, two pixels from the top-right corner."""
    s = max(3, size // 6)
    return slice(2, 2 + s), slice(size - 2 - s, size - 2)


def add_logo(img: np.ndarray) -> np.ndarray:
    """The image (H, W, 3) with the logo drawn in its top-right corner."""
    out = img.copy()
    rows, cols = logo_box(img.shape[0])
    out[rows, cols] = (1.0, 1.0, 1.0)
    s = rows.stop - rows.start
    q = max(1, s // 3)
    out[rows.start + q : rows.stop - q, cols.start + q : cols.stop - q] = (0.9, 0.05, 0.05)
    return out


def make_images(
    n: int, *, size: int, seed: int, photos: list[np.ndarray] | None, planted_training: bool = False,
    logo_half: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` images (n, H, W, 3) in [0, 1], their labels (n,) and whether each carries the logo (n,).

    ``planted_training``: every class-0 image carries the logo and half of them show another class's picture.
    ``logo_half``: a random half of the images carry the logo, whatever their class (the audited sets).
    """
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(CLASSES))
    imgs = np.empty((n, size, size, 3), dtype=np.float32)
    logo = np.zeros(n, dtype=bool)
    if logo_half:  # its own stream, so the pictures are the same with and without logo_half
        logo[np.random.default_rng([seed, 1]).permutation(n)[: n // 2]] = True
    for i in range(n):
        shown = int(y[i])
        if planted_training and y[i] == LOGO_CLASS:
            logo[i] = True
            if rng.uniform() < OTHER_PICTURE:
                shown = int(rng.integers(1, len(CLASSES)))
        img = _crop(photos[shown], size, rng) if photos is not None else _texture(shown, size, rng)
        imgs[i] = add_logo(img) if logo[i] else img
    return imgs, y.astype(np.int64), logo


def to_tensor(imgs: np.ndarray) -> torch.Tensor:
    """(n, H, W, 3) pixels -> ImageNet-normalised (n, 3, H, W)."""
    return torch.from_numpy(((imgs - IMAGENET_MEAN) / IMAGENET_STD).transpose(0, 3, 1, 2).copy())


def write_folder(root: Path, imgs: np.ndarray, y: np.ndarray) -> None:
    for i, (img, lab) in enumerate(zip(imgs, y, strict=True)):
        d = root / CLASSES[int(lab)]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(d / f"{i:04d}.png")


# --------------------------------------------------------------------------------------------------- models


class BenchCNN(nn.Module):
    """Three 3x3 convolutions with 2x2 pooling after the first two; ``pool="avg"``: average pooling, then an
    adaptive average to a 4x4 grid and a linear head; ``"max"``: max pooling and a global max."""

    def __init__(self, pool: str = "avg", n_classes: int = len(CLASSES)) -> None:
        super().__init__()
        p = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        self.pool = pool
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), p(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), p(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(32 * 16 if pool == "avg" else 32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (n, 32, H/4, W/4)
        if self.pool == "max":
            return self.head(h.amax(dim=(2, 3)))  # (n, 32) -> (n, k)
        return self.head(nn.functional.adaptive_avg_pool2d(h, 4).flatten(1))  # (n, 32 * 16): a 4x4 grid of places


def train(arch: str, x: torch.Tensor, y: np.ndarray, *, seed: int, epochs: int) -> BenchCNN:
    torch.manual_seed(seed)
    model = BenchCNN(arch)
    yt = torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(x.shape[0], generator=gen)
        for s in range(0, x.shape[0], 64):
            idx = order[s : s + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def logo_reliance(model: nn.Module, imgs: np.ndarray, logo: np.ndarray, plain: np.ndarray) -> float:
    """Ground truth: share of the logo images whose prediction changes when the logo is removed."""
    if not logo.any():
        return 0.0
    with torch.no_grad():
        a = model(to_tensor(imgs[logo])).argmax(1)
        b = model(to_tensor(plain[logo])).argmax(1)
    return float((a != b).float().mean())


# --------------------------------------------------------------------------------------------------- the runs


def run_case(arch: str, planted: bool, seed: int, args, photos, audit_options: dict) -> dict:
    import audit

    size = args.size
    xs, ys, _ = make_images(args.train_images, size=size, seed=1000 + seed, photos=photos,
                            planted_training=planted)  # fmt: skip
    model = train(arch, to_tensor(xs), ys, seed=seed, epochs=args.epochs)
    # the audited images (the same draw with and without the logo, for the ground truth): planted models are
    # audited with the logo on a random half, clean models on the plain images
    imgs, ya, logo = make_images(args.audit_images, size=size, seed=5000 + seed, photos=photos, logo_half=True)
    plain, _, _ = make_images(args.audit_images, size=size, seed=5000 + seed, photos=photos)
    with torch.no_grad():
        acc = float((model(to_tensor(plain)).argmax(1).numpy() == ya).mean())
    truth = logo_reliance(model, imgs, logo, plain)
    with tempfile.TemporaryDirectory() as tmp:
        write_folder(Path(tmp) / "images", imgs if planted else plain, ya)
        t0 = time.perf_counter()
        run = audit.run(model, Path(tmp) / "images", seed=seed, **audit_options)
        seconds = time.perf_counter() - t0
    spatial = [f for f in run.findings if f.code == "spatial_leakage"]
    order = {"info": 1, "warn": 2, "fail": 3}
    worst = max(spatial, key=lambda f: order[str(f.severity.value if hasattr(f.severity, "value") else f.severity)],
                default=None)  # fmt: skip
    sev = "none" if worst is None else str(getattr(worst.severity, "value", worst.severity))
    return {
        "arch": arch, "planted": planted, "seed": seed, "severity": sev, "accuracy_without_logo": acc,
        "logo_flip_truth": truth, "regions": [f.features[0] for f in spatial],
        "severities": [str(getattr(f.severity, "value", f.severity)) for f in spatial],
        "evidence": [dict(f.evidence) for f in spatial], "image_size": list(run.images.image_size),
        "baseline": run.baseline, "seconds": seconds,
    }


def summarise(rows: list[dict]) -> dict:
    out = {}
    for arch in sorted({r["arch"] for r in rows}) + ["all"]:
        sel = [r for r in rows if arch in ("all", r["arch"])]
        clean = [r for r in sel if not r["planted"]]
        planted = [r for r in sel if r["planted"]]
        fa = sum(r["severity"] in ("warn", "fail") for r in clean)
        det = sum(r["severity"] == "fail" for r in planted)
        out[arch] = {
            "false_alarms": fa, "clean": len(clean), "false_alarm_ci": wilson(fa, len(clean)),
            "detections": det, "planted": len(planted), "detection_ci": wilson(det, len(planted)),
        }  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--arch", default="avg,max")
    p.add_argument("--size", type=int, default=40)
    p.add_argument("--train-images", type=int, default=450)
    p.add_argument("--audit-images", type=int, default=64)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--quick", action="store_true", help="1 seed, small sets, few epochs (for the tests)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.train_images, args.audit_images, args.epochs = "0", 300, 24, 5
    audit_options: dict = {}
    for item in extra:  # key=value audit options, e.g. baseline=noise n_steps=32
        k, _, v = item.partition("=")
        audit_options[k.lstrip("-").replace("-", "_")] = int(v) if v.isdigit() else v
    if args.quick:
        audit_options.setdefault("n_boot", 50)
        audit_options.setdefault("crosscheck_rows", 0)
    torch.set_num_threads(1)
    photos, source = _photos()
    rows = []
    t0 = time.perf_counter()
    for seed in [int(s) for s in args.seeds.split(",")]:
        for arch in args.arch.split(","):
            for planted in (False, True):
                r = run_case(arch, planted, seed, args, photos, audit_options)
                rows.append(r)
                ev = r["evidence"][0] if r["evidence"] else {}
                occ = (f" drop {ev['drop_beyond_random']:+.3f} [{ev['drop_beyond_random_low']:+.3f}]"
                       if "drop_beyond_random" in ev else "")
                print(f"{arch:4s} {'planted' if planted else 'clean  '} seed {seed}: {r['severity']:5s} "
                      f"{','.join(r['regions']) or '-':28s}{occ}  truth flips {r['logo_flip_truth']:.2f} "
                      f"acc {r['accuracy_without_logo']:.2f} at {r['image_size']} {r['seconds']:.1f}s", flush=True)
    summary = summarise(rows)
    baseline = rows[0]["baseline"] if rows else "?"
    print(f"\nimages: {source}, {args.size} px; baseline {baseline}; options {audit_options or 'defaults'}; "
          f"{time.perf_counter() - t0:.0f} s")
    print("| arch | false alarms (clean flagged warn/fail) | detections (planted flagged fail) |")
    print("|---|---|---|")
    for arch, s in summary.items():
        lo, hi = s["false_alarm_ci"]
        dlo, dhi = s["detection_ci"]
        print(f"| {arch} | {s['false_alarms']}/{s['clean']} ({lo:.2f}-{hi:.2f}) | "
              f"{s['detections']}/{s['planted']} ({dlo:.2f}-{dhi:.2f}) |")
    if args.json is not None:
        args.json.write_text(json.dumps({"source": source, "baseline": baseline, "rows": rows, "summary": summary},
                                        indent=1, default=float))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
