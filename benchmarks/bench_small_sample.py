"""Small samples: what the detectors still catch, how often they false-alarm and how wide the intervals are, at
20, 60 and 200 audited rows (issue 16, point 3). The numbers behind the ``small_sample`` bars.

Each case of the findings corpus (:mod:`_findings_corpus`) is trained once on its train split; its validation
split is then audited whole and on random subsets of ``n`` rows (kept in file order, so a file sorted by its row
id stays sorted). Reported per row count: per planted defect the detection rate (its code raised as warn or fail),
per clean case the false-alarm rate (any warn/fail other than ``small_sample``), both with Wilson intervals, and
the median relative width ``(ci_high - ci_low) / mean_abs`` of the top 3 features' bootstrap intervals.

    python benchmarks/bench_small_sample.py --seeds 2 --json small_sample.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _findings_corpus as corpus  # noqa: E402

SIZES = (20, 60, 200)
PLAN: tuple[tuple[str, str, str | None], ...] = (
    ("breast_cancer", "mlp", None), ("breast_cancer", "linear", None), ("make_class_3", "mlp", None),
    ("diabetes", "mlp", None), ("friedman1", "mlp", None), ("make_regression", "linear", None),
    ("breast_cancer", "mlp", "leak"), ("make_class_3", "linear", "leak"), ("diabetes", "mlp", "leak"),
    ("breast_cancer", "mlp", "id_raw"), ("make_class_3", "mlp", "id_raw"), ("diabetes", "mlp", "id_raw"),
    ("breast_cancer", "mlp", "id_scaled"), ("diabetes", "mlp", "id_scaled"),
    ("breast_cancer", "mlp", "noise"), ("friedman1", "mlp", "noise"),
)  # fmt: skip


def _audit(model: Path, data: Path, out: Path) -> Any:
    from audit.config import AuditConfig
    from audit.pipeline import run_audit

    cfg = AuditConfig(model=model, data=data, target_col="target", formats=("json",), quiet=True, out=out)
    return run_audit(cfg)


def _width(run: Any) -> float:
    top = [s for s in run.features[:3] if s.mean_abs > 0 and np.isfinite(s.ci_low)]
    return float(np.median([(s.ci_high - s.ci_low) / s.mean_abs for s in top])) if top else float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_small_") as tmp:
        root = Path(tmp)
        for seed in range(args.seeds):
            for ds, model, twin in PLAN:
                spec = corpus.CaseSpec(ds, model, seed, twin)
                data = corpus.build_case(spec)
                trained = corpus.train_model(data)
                folder = root / spec.label.replace("/", "__")
                written = corpus.write_case(data, trained, folder)
                val = data.val
                rng = np.random.default_rng(seed + 1000)
                for n in (*SIZES, len(val)):
                    if n > len(val):
                        continue
                    sub = val.iloc[np.sort(rng.choice(len(val), size=n, replace=False))]
                    path = folder / f"val_{n}.csv"
                    sub.to_csv(path, index=False)
                    try:
                        run = _audit(written["model"], path, folder / f"out_{n}")
                    except Exception as e:  # noqa: BLE001 (a row, not a crash of the benchmark)
                        rows.append({"case": spec.label, "n": n, "error": f"{type(e).__name__}: {e}"[:200]})
                        continue
                    codes = {f.code: str(getattr(f.severity, "value", f.severity)) for f in run.findings}
                    rows.append({
                        "case": spec.label, "twin": twin or "", "planted_code": spec.planted_code, "n": n,
                        "full": n == len(val), "verdict": str(getattr(run.verdict, "value", run.verdict)),
                        "codes": codes, "width": _width(run), "task": run.task,
                    })  # fmt: skip
                    print(f"{spec.label} n={n}: {rows[-1]['verdict']} {codes} width {rows[-1]['width']:.2f}",
                          file=sys.stderr, flush=True)
    print(f"\nruntime {time.perf_counter() - t0:.0f} s")
    _print(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))
    return 0


def _frac(k: int, n: int) -> str:
    lo, hi = corpus.wilson(k, n)
    return f"{k}/{n} ({100 * k / n if n else float('nan'):.0f}%, {100 * lo:.0f}-{100 * hi:.0f}%)"


def _print(rows: list[dict[str, Any]]) -> None:
    ok = [r for r in rows if "error" not in r]
    print(f"{'rows':>6}  {'planted caught':<22} {'clean: false alarm':<22} {'median rel. CI width (top 3)':<28}")
    for label, pick in [(str(n), lambda r, n=n: r["n"] == n and not r["full"]) for n in SIZES] + [
        ("full", lambda r: r["full"])
    ]:
        sel = [r for r in ok if pick(r)]
        planted = [r for r in sel if r["planted_code"]]
        clean = [r for r in sel if not r["planted_code"]]
        caught = sum(1 for r in planted if r["codes"].get(r["planted_code"]) in ("warn", "fail"))
        alarms = sum(1 for r in clean if any(c != "small_sample" and s in ("warn", "fail")
                                             for c, s in r["codes"].items()))
        widths = [r["width"] for r in sel if np.isfinite(r["width"])]
        print(f"{label:>6}  {_frac(caught, len(planted)):<22} {_frac(alarms, len(clean)):<22} "
              f"{np.median(widths) if widths else float('nan'):.2f}")
        for twin in sorted({r["twin"] for r in planted}):
            t = [r for r in planted if r["twin"] == twin]
            k = sum(1 for r in t if r["codes"].get(r["planted_code"]) in ("warn", "fail"))
            print(f"{'':>8}{twin:<12} {_frac(k, len(t))}")
    errors = [r for r in rows if "error" in r]
    for r in errors:
        print(f"error: {r['case']} n={r['n']}: {r['error']}")


if __name__ == "__main__":
    raise SystemExit(main())
