"""Ray executor: the same Parquet table audited locally and on Ray with 1 and 2 workers.

Issue target: 1,000,000 rows x 96 features. Reports, per run: rows/s of the attribution stage (from its first
progress report to its last; on Ray this includes starting the actors and loading the model on them), the whole
run's wall time, the driver's peak RSS (each run in its own child process, ``ru_maxrss`` of that process alone:
Ray's workers are other processes), Ray's overhead against local (1 worker against the local loop) and the scaling
efficiency (rows/s with 2 workers / (2 x rows/s with 1 worker)). Also checks that the three audit.json agree
(means and shares within 1e-6 relative, the same findings).

    python benchmarks/bench_ray.py                 # 1,000,000 x 96
    python benchmarks/bench_ray.py --rows 200000   # smaller

The local Ray instance gets the machine's CPUs; on a 2-core machine two workers share them with the driver, so
the scaling efficiency there says more about the machine than about the executor.
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

CHILD_FLAG = "--child"


def _make(tmp: Path, rows: int, features: int, seed: int) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    rng = np.random.default_rng(seed)
    w = np.linspace(1.0, 0.0, features)
    names = [f"x{j}" for j in range(features)] + ["target"]
    data = tmp / "big.parquet"
    writer = None
    for start in range(0, rows, 65536):
        X = rng.uniform(-1, 1, size=(min(65536, rows - start), features)).astype(np.float32)
        y = X @ w + rng.normal(0, 0.1, X.shape[0])
        table = pa.table([*(X[:, j] for j in range(features)), y], names=names)
        writer = writer or pq.ParquetWriter(data, table.schema)
        writer.write_table(table, row_group_size=65536)
    writer.close()
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(features, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))
    ckpt = tmp / "model.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model.eval()), str(ckpt))
    return data, ckpt


def _child(argv: list[str]) -> None:
    """One audit in this process; prints a JSON line of timings and the peak RSS."""
    from audit.config import build_config
    from audit.outputs import staging
    from audit.pipeline import run_audit

    data, ckpt, out, executor, workers = argv
    flags = {"model": ckpt, "data": data, "target_col": "target", "out": out, "formats": "json", "quiet": True,
             "fail_on": "never", "crosscheck_rows": 64, "n_boot": 50, "executor": executor}  # fmt: skip
    if executor == "ray":
        flags["workers"] = int(workers)
    times: dict[str, float] = {}

    def progress(stage, done, total, **_):
        if stage == "attribution":
            times.setdefault("first", time.perf_counter())
            times["last"] = time.perf_counter()

    t0 = time.perf_counter()
    with staging(Path(out)) as st:
        run = run_audit(build_config(flags, None), progress=progress, outputs=st)
        st.finish(run, ("json",))
    result = {"wall_s": time.perf_counter() - t0, "attribution_s": times["last"] - times["first"],
              "n_rows": run.n_rows, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if executor == "ray":
        from audit.executors.ray import last_run

        result.update(units=last_run.units, workers=last_run.workers, cpus_per_worker=last_run.cpus_per_worker)
    print(json.dumps(result))


def _run(data: Path, ckpt: Path, out: Path, executor: str, workers: int) -> dict:
    proc = subprocess.run([sys.executable, __file__, CHILD_FLAG, str(data), str(ckpt), str(out), executor,
                           str(workers)], capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"{executor} x{workers} failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    res["rows_per_s"] = res["n_rows"] / res["attribution_s"]
    return res


def _max_rel(a: dict, b: dict) -> float:
    worst = 0.0
    fa, fb = {f["name"]: f for f in a["features"]}, {f["name"]: f for f in b["features"]}
    for name, f in fa.items():
        for key in ("mean_abs", "mean", "share", "ci_low", "ci_high"):
            x, y = f[key], fb[name][key]
            worst = max(worst, abs(x - y) / max(abs(x), abs(y), 1e-12))
    return worst


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == CHILD_FLAG:
        _child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=96)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        data, ckpt = _make(tmp, args.rows, args.features, args.seed)
        print(f"generated {args.rows:,} x {args.features} Parquet in {time.perf_counter() - t0:.1f} s", flush=True)
        runs = {}
        for name, executor, workers in (("local", "local", 0), ("ray x1", "ray", 1), ("ray x2", "ray", 2)):
            runs[name] = _run(data, ckpt, tmp / name.replace(" ", ""), executor, workers)
            runs[name]["json"] = json.loads((tmp / name.replace(" ", "") / "audit.json").read_text())
            r = runs[name]
            print(f"{name:7s} {r['rows_per_s']:10,.0f} rows/s  attribution {r['attribution_s']:7.1f} s  wall "
                  f"{r['wall_s']:7.1f} s  driver peak RSS {r['peak_rss_mib']:7.0f} MiB", flush=True)
        local, one, two = runs["local"], runs["ray x1"], runs["ray x2"]
        findings = {name: [(f["code"], f["severity"]) for f in r["json"]["findings"]] for name, r in runs.items()}
        summary = {
            "rows": args.rows, "features": args.features,
            "rows_per_s": {k: round(v["rows_per_s"]) for k, v in runs.items()},
            "wall_s": {k: round(v["wall_s"], 1) for k, v in runs.items()},
            "driver_peak_rss_mib": {k: round(v["peak_rss_mib"]) for k, v in runs.items()},
            "ray_overhead_vs_local": round(local["rows_per_s"] / one["rows_per_s"] - 1, 3),
            "scaling_efficiency_2_workers": round(two["rows_per_s"] / (2 * one["rows_per_s"]), 3),
            "max_rel_diff_vs_local": {k: _max_rel(local["json"], v["json"]) for k, v in runs.items() if k != "local"},
            "same_findings": len({json.dumps(v) for v in findings.values()}) == 1,
            "units": two.get("units"), "cpus_per_worker": {k: v.get("cpus_per_worker") for k, v in runs.items()},
        }  # fmt: skip
        print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
