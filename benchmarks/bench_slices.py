"""Reversed effects in slices (issue 16, point 4): detection of a segment where the top feature's effect has the
opposite sign, and false alarms of ``slice_skew`` on healthy models sliced at random or by a real feature.

Cases are built on data sets of the findings corpus (:mod:`_findings_corpus`), standardised on the train split:

==============  ===========================================================================================
kind            what is audited
==============  ===========================================================================================
``reversed``    a random A/B ``group`` column (``--slice-col``; the model also gets ``group_b`` as an input).
                Target: ``s = x_f1`` in A and ``-REVERSE * x_f1`` in B, plus ``0.5 x_f2`` (f1 the data set's
                first feature, f2 the one least correlated with it); regression ``y = s + N(0, 0.1^2)``,
                classifiers: quantile bins of ``s``. The model learns opposite slopes for f1 in A and B.
``random``      the data set's own target and a healthy model; ``group`` is random A/B (must stay quiet).
``by_feature``  the same healthy model sliced by a real feature (``x_f2`` above / below its median): groups that
                differ in their values; reported, since a model whose effect is not monotone may truly differ.
==============  ===========================================================================================

    python benchmarks/bench_slices.py --seeds 3 --json slices.json

Prints per kind the rate of ``slice_skew`` (warn) and of its reversed-effect rule, with Wilson intervals.
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
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _findings_corpus as corpus  # noqa: E402

REVERSE = 0.5  # slope of f1 in group B, against +1 in group A
PLAN = (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("make_class_3", "mlp"), ("friedman1", "mlp"),
        ("make_regression", "mlp"), ("make_class_bin", "mlp"))  # fmt: skip


def _case(dataset: str, model: str, seed: int, kind: str) -> corpus.CaseData:
    ds = corpus.load_dataset(dataset)
    spec = corpus.CaseSpec(dataset, model, seed)
    rng = np.random.default_rng([seed, 7 + ["reversed", "random", "by_feature"].index(kind), len(dataset)])
    n = ds.X.shape[0]
    perm = rng.permutation(n)
    n_val = int(round(corpus.VAL_FRACTION * n))
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    mu, sd = ds.X[tr_idx].mean(0), ds.X[tr_idx].std(0)
    X = (ds.X - mu) / np.where(sd > 0, sd, 1.0)
    names = list(ds.names)
    y = ds.y.copy()
    corr = np.abs(np.corrcoef(X[tr_idx].T)[0])
    corr[0] = np.inf
    corr[~np.isfinite(corr)] = np.inf
    f2 = int(np.argmin(corr))
    groups = np.where(rng.random(n) < 0.5, "A", "B")
    meta = {"f1": names[0], "f2": names[f2]}
    if kind == "reversed":
        s = np.where(groups == "A", X[:, 0], -REVERSE * X[:, 0]) + 0.5 * X[:, f2]
        y = s + rng.normal(0.0, 0.1, n) if ds.task == "regression" else _bins(s, ds.n_classes)
        X = np.column_stack([X, (groups == "B").astype(np.float64)])
        names.append("group_b")
    elif kind == "by_feature":
        groups = np.where(X[:, f2] > np.median(X[tr_idx, f2]), "high", "low")

    def frame(idx: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(X[idx], columns=names)
        if "group_b" in names:
            df["group_b"] = df["group_b"].astype(np.int64)
        df["target"] = y[idx]
        df["group"] = groups[idx]
        return df

    F = len(names)
    return corpus.CaseData(
        spec=spec, task=ds.task, n_classes=ds.n_classes, names=names, train=frame(tr_idx), val=frame(val_idx),
        in_shift=np.zeros(F), in_scale=np.ones(F), slice_col="group", meta=meta,
    )  # fmt: skip


def _bins(s: np.ndarray, k: int) -> np.ndarray:
    edges = np.quantile(s, np.linspace(0, 1, k + 1)[1:-1])
    return np.searchsorted(edges, s, side="right").astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    from audit.config import AuditConfig
    from audit.pipeline import run_audit

    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_slices_") as tmp:
        for seed in range(args.seeds):
            for dataset, model in PLAN:
                healthy = None
                for kind in ("reversed", "random", "by_feature"):
                    data = _case(dataset, model, seed, kind)
                    if kind == "by_feature" and healthy is not None:
                        trained = healthy  # the same healthy model, sliced another way
                    else:
                        trained = corpus.train_model(data)
                        healthy = trained if kind == "random" else None
                    folder = Path(tmp) / f"{dataset}_{seed}_{kind}"
                    written = corpus.write_case(data, trained, folder)
                    cfg = AuditConfig(model=written["model"], data=written["data"], target_col="target",
                                      slice_col="group", formats=("json",), quiet=True, out=folder / "out")
                    run = run_audit(cfg)
                    sk = [f for f in run.findings if f.code == "slice_skew"]
                    rev = [r for f in sk for r in f.evidence.get("reversed", [])]
                    dirs = {p.group: {d.feature: [round(d.effect, 3), round(d.rest_effect, 3)]
                                      for d in p.directions[:3]} for p in run.slices}
                    rows.append({"dataset": dataset, "seed": seed, "kind": kind, "quality": round(trained.quality, 3),
                                 "slice_skew": bool(sk), "reversed": bool(rev),
                                 "reversed_features": sorted({r["feature"] for r in rev}), "f1": data.meta["f1"],
                                 "verdict": str(run.verdict.value), "directions": dirs})  # fmt: skip
                    print(f"{dataset}/s{seed}/{kind}: q={trained.quality:.3f} slice_skew={bool(sk)} "
                          f"reversed={sorted({r['feature'] for r in rev})} dirs={dirs}", file=sys.stderr, flush=True)
    print(f"runtime {time.perf_counter() - t0:.0f} s")
    for kind in ("reversed", "random", "by_feature"):
        sel = [r for r in rows if r["kind"] == kind]
        for what in ("slice_skew", "reversed"):
            k = sum(r[what] for r in sel)
            lo, hi = corpus.wilson(k, len(sel))
            print(f"{kind:<11} {what:<11} {k}/{len(sel)} ({100 * k / len(sel):.0f}%, Wilson {100 * lo:.0f}-"
                  f"{100 * hi:.0f}%)")
        if kind == "reversed":
            k = sum(r["f1"] in r["reversed_features"] for r in sel)
            print(f"{kind:<11} {'f1 named':<11} {k}/{len(sel)}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
