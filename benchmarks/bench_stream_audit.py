"""Streaming audit: peak memory and time of `audit run` on a large generated CSV.

Issue target: 1,000,000 rows x 20 features audit with peak memory under 2 GB. The audit runs in a child
process (`python -m audit run ...`) so its peak RSS is measured alone (``resource.RUSAGE_CHILDREN``).

    python benchmarks/bench_stream_audit.py --rows 1000000 --features 20
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def _make(tmp: Path, rows: int, features: int, seed: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    w = np.linspace(1.0, 0.05, features)
    data = tmp / "big.csv"
    with data.open("w") as fh:
        fh.write(",".join([f"x{j}" for j in range(features)] + ["target"]) + "\n")
        for start in range(0, rows, 100_000):
            X = rng.uniform(-1, 1, size=(min(100_000, rows - start), features))
            y = X @ w + rng.normal(0, 0.1, X.shape[0])
            np.savetxt(fh, np.column_stack([X, y]), delimiter=",", fmt="%.6f")
    model = torch.nn.Sequential(torch.nn.Linear(features, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    ckpt = tmp / "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model.eval()), str(ckpt))
    return data, ckpt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        data, ckpt = _make(tmp, args.rows, args.features, args.seed)
        gen_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "audit", "run", "--model", str(ckpt), "--data", str(data), "--target-col",
             "target", "--out", str(tmp / "out"), "--format", "json", "--quiet", "--fail-on", "never"],
            capture_output=True, text=True,
        )
        run_s = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            raise SystemExit(proc.returncode)
        run = json.loads((tmp / "out" / "audit.json").read_text())
        print(json.dumps({
            "rows": args.rows, "features": args.features, "csv_mb": round(data.stat().st_size / 2**20, 1),
            "generate_s": round(gen_s, 1), "audit_s": round(run_s, 1), "rows_per_s": round(args.rows / run_s),
            "peak_rss_mb": round(peak_mb), "verdict": run["verdict"], "notes": run["notes"],
        }, indent=2))


if __name__ == "__main__":
    main()
