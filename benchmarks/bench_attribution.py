"""Benchmark of the IG engine: the README figures, and the trapezoid bias of Captum, in one run.

    python benchmarks/bench_attribution.py [--rows 2048] [--n-steps 50] [--repeats 3] [--json out.json]

1. Speed (audit.bench.bench, interleaved rounds, best of --repeats): our engine, Captum at its best
   internal_batch_size and at its default, and the forward+backward ceiling, on the 96-256-128-1 MLP with
   2,048 uniform rows and 50 Gauss-Legendre steps. Targets: ours >= 3x Captum's best and >= 70% of the ceiling.
2. Trapezoid bias: on a linear model (where every textbook rule is exact), the median relative completeness
   error of ours and Captum's riemann_trapezoid and gausslegendre at 10 steps, and the cross-check's verdict.

Exit status 1 when a speed target is missed (timings are noisy on a shared machine: rerun before concluding).
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from audit.attribution.crosscheck import crosscheck
from audit.attribution.native import integrated_gradients
from audit.bench import bench, default_model_and_rows, format_table

SPEEDUP_TARGET = 3.0  # ours / Captum at its best
CEILING_TARGET = 0.70  # ours / forward+backward ceiling


def trapezoid_bias(n_steps: int = 10, n_rows: int = 256, seed: int = 0) -> dict[str, dict[str, float | str | bool]]:
    """Median relative completeness error of both engines on a linear model, per method, and the cross-check."""
    gen = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(8, 1).eval()
    x = torch.randn(n_rows, 8, generator=gen)
    out: dict[str, dict[str, float | str | bool]] = {}
    for method in ("riemann_trapezoid", "gausslegendre"):
        res = integrated_gradients(model, x, method=method, n_steps=n_steps)
        xc = crosscheck(model, x, native=res, rows="all")
        out[method] = {
            "native_median_rel_delta": xc.native_median_rel_delta,
            "captum_median_rel_delta": xc.captum_median_rel_delta,
            "crosscheck_passed": xc.passed,
            "captum_bias": xc.captum_bias,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", dest="json_path", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)

    model, x = default_model_and_rows(args.rows)
    speed = bench(model, x, n_steps=args.n_steps, repeats=args.repeats)
    print(format_table(speed))
    bias = trapezoid_bias()
    print("\ntrapezoid bias on a linear model, 10 steps (median relative completeness error):")
    for method, row in bias.items():
        print(
            f"  {method:<18} ours {row['native_median_rel_delta']:.2e}   Captum {row['captum_median_rel_delta']:.2e}"
            f"   cross-check {'passed' if row['crosscheck_passed'] else 'failed'}"
        )
        if row["captum_bias"]:
            print(f"    captum_bias: {row['captum_bias']}")
    if args.json_path:
        with open(args.json_path, "w", encoding="utf-8") as fh:
            json.dump({"speed": speed, "trapezoid_bias": bias}, fh, indent=2)
    ok = speed["native_vs_captum_best"] >= SPEEDUP_TARGET and speed["native_vs_ceiling"] >= CEILING_TARGET
    print(
        f"\ntargets: ours/Captum best {speed['native_vs_captum_best']:.2f}x (>= {SPEEDUP_TARGET:g}x), "
        f"ours/ceiling {speed['native_vs_ceiling']:.0%} (>= {CEILING_TARGET:.0%}): {'met' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
