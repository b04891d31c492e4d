"""Benchmark of image IG: our engine against Captum at its best internal_batch_size, images/s, in one run.

    python benchmarks/bench_images.py [--device cpu|cuda] [--bf16] [--arch small,resnet18] [--size 64,224]
                                      [--images 16] [--n-steps 50] [--repeats 2] [--threads N] [--json out.json]
                                      [--captum-points 2,4,8,...]

For every architecture and size: random-init weights (``weights=None``: nothing is downloaded), ``--images``
uniform images of shape (3, size, size), each image's predicted class explained with Gauss-Legendre at
``--n-steps`` steps. Timings come from :func:`audit.bench.bench` (interleaved rounds, best of ``--repeats``):
our engine end to end, Captum at the fastest path-points-per-forward setting that fits ``--captum-max-mb``
(``--captum-points``: by default every power of 2 from 2 to 4,096; on the CPU Captum does best at 2-256 on
image models), and the forward+backward ceiling cut into the same passes as our engine's. With ``--bf16``
(CUDA only) our engine is also timed with bf16 autocast.

Architectures: ``small`` (the 3-conv CNN of the tests, ~3.7k parameters) or any torchvision classifier
builder name (``resnet18``, ``resnet50``, ``mobilenet_v3_small``, ...).

On a CPU, 224x224 resnet18 at 50 steps is several seconds of compute per image per engine: use few images.
On a CPU shared with other jobs, torch's OpenMP threads wait for each other at every layer: ``--threads 1``
gives steadier figures there (we measured the small CNN at 75-2,500 path points/s with 2 threads on a loaded
2-core machine, ~4,000 with 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

from audit.attribution.base import batched_forward  # noqa: E402
from audit.attribution.memory import bytes_per_point  # noqa: E402
from audit.attribution.native import integrated_gradients  # noqa: E402
from audit.bench import bench  # noqa: E402

# Captum's path points per forward tried by default (those that fit --captum-max-mb, plus the largest that does)
IMAGE_CAPTUM_POINTS = tuple(2**k for k in range(1, 13))


def build(arch: str) -> torch.nn.Module:
    """A random-init classifier in eval mode, seeded."""
    torch.manual_seed(0)
    if arch == "small":
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from image_toys import SmallCNN

        return SmallCNN().eval()
    import torchvision

    fn = getattr(torchvision.models, arch, None)
    if fn is None or not callable(fn):
        raise SystemExit(f"bench_images: unknown --arch '{arch}'; use small or a torchvision.models builder name")
    return fn(weights=None).eval()


def captum_candidates(
    model: torch.nn.Module, x: torch.Tensor, device: str, max_mb: float, wanted: tuple[int, ...] = IMAGE_CAPTUM_POINTS
) -> tuple[int, ...]:
    """Points per Captum forward worth trying: those of ``wanted`` that fit ``max_mb``, plus the largest that
    does (points and their gradients, activations and their gradients, slack; as the engine estimates)."""
    per_point = bytes_per_point(model.to(device), x[:1].to(device), 4)
    fit = max(1, int(max_mb * 2**20 // per_point))
    return tuple(sorted({c for c in wanted if c <= fit} | {min(fit, max(wanted))}))


def time_bf16(model: torch.nn.Module, x: torch.Tensor, n_steps: int, device: str, repeats: int) -> tuple[float, float]:
    """Images/s of our engine with bf16 autocast, and its median relative completeness error."""
    model = model.to(device)
    target = batched_forward(model, x, batch=64, device=device).argmax(-1)  # (n,)
    best = float("inf")
    res = None
    for _ in range(repeats):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        res = integrated_gradients(model, x, target=target, n_steps=n_steps, device=device, bf16=True)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return x.shape[0] / best, float(res.rel_delta.median())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--bf16", action="store_true", help="also time our engine with bf16 autocast (CUDA)")
    parser.add_argument("--arch", default="small,resnet18", help="comma list: small and/or torchvision names")
    parser.add_argument("--size", default="64", help="comma list of image sides, e.g. 64,224")
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--captum-max-mb", type=float, default=4096, help="memory Captum's batch may use")
    parser.add_argument(
        "--captum-points", default=",".join(map(str, IMAGE_CAPTUM_POINTS)),
        help="comma list of path points per Captum forward to try (Captum at its best is the fastest of them)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads (0 = torch's default); 1 is steadier on a shared machine"
    )
    parser.add_argument("--json", dest="json_path", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.bf16 and args.device != "cuda":
        parser.error("--bf16 needs --device cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA GPU is visible")

    try:
        wanted = tuple(int(c) for c in args.captum_points.split(","))
    except ValueError:
        parser.error(f"--captum-points must be a comma list of whole numbers, got '{args.captum_points}'")
    if not wanted or min(wanted) < 1:
        parser.error("--captum-points must name at least one positive number")
    if args.threads:
        torch.set_num_threads(args.threads)

    results = []
    header = f"{'arch':<12}{'size':>6}{'images':>8}{'native img/s':>14}{'Captum img/s':>14}{'ratio':>8}"
    header += f"{'Captum pts/fwd':>16}{'ours rows x pts':>17}{'ceiling':>9}{'max rel diff':>14}"
    header += f"{'bf16 img/s':>12}" if args.bf16 else ""
    threads = torch.get_num_threads()
    print(f"{args.device}, {threads} threads, {args.n_steps} Gauss-Legendre steps, best of {args.repeats}")
    print(header)
    for arch in args.arch.split(","):
        for size in (int(s) for s in args.size.split(",")):
            model = build(arch)
            x = torch.rand(args.images, 3, size, size, generator=torch.Generator().manual_seed(1))
            cands = captum_candidates(model, x, args.device, args.captum_max_mb, wanted)
            r = bench(
                model, x, n_steps=args.n_steps, device=args.device, repeats=args.repeats, captum_candidates=cands,
                captum_default_max_mb=args.captum_max_mb, slow_s=60.0,
            )  # fmt: skip
            r.update(arch=arch, size=size)
            line = (
                f"{arch:<12}{size:>6}{args.images:>8}{r['native_rows_per_s']:>14.2f}{r['captum_best_rows_per_s']:>14.2f}"
                f"{r['native_vs_captum_best']:>7.2f}x{r['captum_best_internal_batch_size']:>16,}"
                f"{str(r['chunk_rows']) + ' x ' + str(r['points_per_pass']):>17}"
                f"{r['native_vs_ceiling']:>9.0%}{r['max_rel_diff_vs_captum']:>14.2g}"
            )
            if args.bf16:
                r["bf16_rows_per_s"], r["bf16_median_rel_delta"] = time_bf16(
                    model, x, args.n_steps, args.device, args.repeats
                )
                line += f"{r['bf16_rows_per_s']:>12.2f}"
            print(line, flush=True)
            for note in r["notes"]:
                print(f"  note: {note}")
            results.append(r)
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
