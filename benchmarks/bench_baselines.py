"""Baselines benchmark: which default baseline for tables, measured (issue 16).

Part 1, rank agreement (``--part agreement``). Real tables that ship with scikit-learn, at their raw scale
(``load_breast_cancer``, ``load_wine``, ``load_diabetes(scaled=False)``), 70/30 split by seed, models trained on the
train split: linear and MLP (64, 64), with no normalisation (``raw``), standardisation buffers inside the model
(``buffer``) or a BatchNorm first layer (``bn``, eval mode). On the validation rows (the audited data), the global
mean-|attribution| ranking of our IG against the zero baseline, the data mean (the new default) and expected
gradients (8 data rows per row) is compared by Spearman correlation with

(a) the exact answer for linear models, ``g_j (x_j - E x_j)`` (``g`` the model's constant gradient: interventional
    Shapley values of an affine function), and
(b) SHAP's ``GradientExplainer`` with the validation rows as background (``pip install -e .[bench]``),

globally and per row (the mean over rows of the Spearman correlation of the row's |attributions|). Classifiers
explain each row's predicted class (logits), as the audit does.

Part 2, convergence at default options (``--part convergence``): the same models audited with ``audit.run`` at
``--baseline zero`` and at the default; the share of rows above 1% completeness error, the ``not_converged``
severity (now, and what the old rule -- fail from 10% of rows -- would have said) and ``baseline_sensitive``.

Part 3, ``baseline_sensitive`` (``--part sensitivity``): false alarms on the clean cases of the findings corpus
(:mod:`_findings_corpus`, default options) and detections on planted cases where the ranking depends on the
baseline (a bump at the mean of a two-cluster column; the zero baseline on the raw tables of part 1), with Wilson
intervals.

    python benchmarks/bench_baselines.py                 # all parts, seeds 0-2 (~15 min on 2 busy cores)
    python benchmarks/bench_baselines.py --quick         # one seed, fewer corpus cases
    python benchmarks/bench_baselines.py --part agreement --json out.json
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
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _findings_corpus as corpus  # noqa: E402  (sibling module; benchmarks/ is not a package)

EG_K = 8


# --- data and models ------------------------------------------------------------------------------------------


def load(name: str) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    from sklearn import datasets as skd

    b = {"breast_cancer": skd.load_breast_cancer, "wine": skd.load_wine,
         "diabetes_raw": lambda: skd.load_diabetes(scaled=False)}[name]()  # fmt: skip
    task = "regression" if name == "diabetes_raw" else "classification"
    names = [str(n).replace(" ", "_") for n in b.feature_names]
    return b.data.astype(np.float64), b.target, names, task


class Standardise(nn.Module):
    def __init__(self, mean: np.ndarray, sd: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("m", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("s", torch.tensor(sd, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.m) / self.s


class Scaled(nn.Module):
    """A regressor's output in target units: ``core(x) * sd + mean``, shape (n,)."""

    def __init__(self, core: nn.Module, mean: float, sd: float) -> None:
        super().__init__()
        self.core = core
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("sd", torch.tensor(float(sd)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.core(x).squeeze(-1) * self.sd + self.mean


def train(X: np.ndarray, y: np.ndarray, task: str, norm: str, kind: str, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    F = X.shape[1]
    n_out = 1 if task == "regression" else int(y.max()) + 1
    pre: list[nn.Module] = {"raw": [], "buffer": [Standardise(X.mean(0), X.std(0) + 1e-12)],
                            "bn": [nn.BatchNorm1d(F)]}[norm]  # fmt: skip
    body: list[nn.Module] = [nn.Linear(F, n_out)] if kind == "linear" else [
        nn.Linear(F, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, n_out)]  # fmt: skip
    core = nn.Sequential(*pre, *body)
    Xt = torch.tensor(X, dtype=torch.float32)
    if task == "regression":
        mu, sd = float(y.mean()), float(y.std())
        yt = torch.tensor((y - mu) / sd, dtype=torch.float32)
    else:
        yt = torch.tensor(y, dtype=torch.long)
    lr = 1e-3 if norm == "raw" else 3e-3
    opt = torch.optim.Adam(core.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(200):
        core.train()
        for idx in torch.randperm(X.shape[0], generator=gen).split(64):
            opt.zero_grad()
            out = core(Xt[idx])
            loss = (nn.functional.mse_loss(out.squeeze(-1), yt[idx]) if task == "regression"
                    else nn.functional.cross_entropy(out, yt[idx]))  # fmt: skip
            loss.backward()
            opt.step()
    core.eval()
    return (Scaled(core, mu, sd) if task == "regression" else core).eval()


def quality(model: nn.Module, X: np.ndarray, y: np.ndarray, task: str) -> float:
    with torch.no_grad():
        out = model(torch.tensor(X, dtype=torch.float32)).numpy()
    if task == "regression":
        return 1.0 - float(((y - out.reshape(-1)) ** 2).sum() / ((y - y.mean()) ** 2).sum())
    return float((out.argmax(1) == y).mean())


# --- attributions ---------------------------------------------------------------------------------------------


def targets_of(model: nn.Module, X: np.ndarray, task: str) -> torch.Tensor | None:
    if task == "regression":
        return None
    with torch.no_grad():
        return model(torch.tensor(X, dtype=torch.float32)).argmax(1)


def ig(model: nn.Module, X: np.ndarray, base: Any, target) -> tuple[np.ndarray, np.ndarray]:
    """Our engine at its default settings (auto steps, 1% tolerance, up to 1,024 steps): attributions, rel error."""
    from audit.attribution.native import integrated_gradients

    res = integrated_gradients(model, torch.tensor(X, dtype=torch.float32), baselines=base, target=target,
                               n_steps="auto", tolerance=0.01, max_steps=1024)  # fmt: skip
    return res.attributions.numpy().astype(np.float64), res.rel_delta.numpy()


def expected_gradients(model: nn.Module, X: np.ndarray, target, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    total = np.zeros(X.shape)
    for _ in range(EG_K):
        refs = torch.tensor(X[rng.integers(0, X.shape[0], X.shape[0])], dtype=torch.float32)
        total += ig(model, X, refs, target)[0]
    return total / EG_K


def exact_linear(model: nn.Module, X: np.ndarray, target) -> np.ndarray:
    """g_j (x_j - E x_j) with g the (constant) gradient of the explained output of an affine model."""
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    m = _float64(model)
    out = m(x)
    out = out.reshape(out.shape[0], -1)
    sel = out[:, 0] if target is None else out.gather(1, target[:, None])[:, 0]
    (g,) = torch.autograd.grad(sel.sum(), x)
    return g.numpy() * (X - X.mean(axis=0))


def _float64(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).double().eval()


def shap_gradient(model: nn.Module, X: np.ndarray, target, seed: int) -> np.ndarray | None:
    try:
        import shap
    except ImportError:
        return None
    xt = torch.tensor(X, dtype=torch.float32)

    class Out2D(nn.Module):
        def __init__(self, m: nn.Module) -> None:
            super().__init__()
            self.m = m

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.m(x)
            return out.reshape(out.shape[0], -1)

    explainer = shap.GradientExplainer(Out2D(model).eval(), xt)
    if target is None:
        sv = explainer.shap_values(xt, nsamples=200, rseed=seed)
        sv = np.asarray(sv)
        return sv.reshape(X.shape[0], X.shape[1], -1)[:, :, 0]
    sv, idx = explainer.shap_values(xt, nsamples=200, rseed=seed, ranked_outputs=1, output_rank_order="max")
    sv = np.asarray(sv[0] if isinstance(sv, list) else sv)
    sv = sv.reshape(X.shape[0], X.shape[1], -1)[:, :, 0]
    if not np.array_equal(np.asarray(idx).reshape(-1), target.numpy()):
        raise RuntimeError("SHAP's top output differs from the predicted class")
    return sv


def rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    from audit.analysis.agreement import spearman

    return spearman(a, b)


def agreement(A: np.ndarray, R: np.ndarray) -> tuple[float, float]:
    """Spearman of the global mean-|attribution| rankings and the mean per-row Spearman of |attributions|."""
    g = rank_corr(np.abs(A).mean(0), np.abs(R).mean(0))
    rows = [rank_corr(np.abs(a), np.abs(r)) for a, r in zip(A, R, strict=True)
            if np.ptp(np.abs(a)) > 0 and np.ptp(np.abs(r)) > 0]  # fmt: skip
    return g, float(np.nanmean(rows)) if rows else float("nan")


# --- parts ----------------------------------------------------------------------------------------------------

DATASETS = ("breast_cancer", "wine", "diabetes_raw")
NORMS = ("raw", "buffer", "bn")
KINDS = ("linear", "mlp")


def models(seeds):
    for name in DATASETS:
        X, y, names, task = load(name)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            perm = rng.permutation(X.shape[0])
            n_val = int(round(0.3 * X.shape[0]))
            va, tr = perm[:n_val], perm[n_val:]
            for norm in NORMS:
                for kind in KINDS:
                    model = train(X[tr], y[tr], task, norm, kind, seed)
                    yield dict(dataset=name, norm=norm, kind=kind, seed=seed, task=task, names=names, model=model,
                               X=X[va], y=y[va], quality=quality(model, X[va], y[va], task))  # fmt: skip


def part_agreement(cases: list[dict]) -> list[dict]:
    out = []
    for c in cases:
        t0 = time.perf_counter()
        model, X, task, seed = c["model"], c["X"], c["task"], c["seed"]
        target = targets_of(model, X, task)
        A = {"zero": ig(model, X, "zero", target)[0],
             "mean": ig(model, X, torch.tensor(X.mean(0), dtype=torch.float32), target)[0],
             "eg": expected_gradients(model, X, target, seed)}  # fmt: skip
        refs = {}
        if c["kind"] == "linear":
            refs["exact"] = exact_linear(model, X, target)
        sv = shap_gradient(model, X, target, seed)
        if sv is not None:
            refs["shap"] = sv
        row = {k: c[k] for k in ("dataset", "norm", "kind", "seed", "quality")}
        for rname, R in refs.items():
            for bname, Ab in A.items():
                g, r = agreement(Ab, R)
                row[f"{bname}_vs_{rname}"] = round(g, 4)
                row[f"{bname}_vs_{rname}_row"] = round(r, 4)
            row[f"top_{rname}"] = c["names"][int(np.abs(R).mean(0).argmax())]
        for bname, Ab in A.items():
            row[f"top_{bname}"] = c["names"][int(np.abs(Ab).mean(0).argmax())]
        row["s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps(row), file=sys.stderr, flush=True)
        out.append(row)
    return out


def _sev(run, code: str) -> str:
    s = [f.severity.value for f in run.findings if f.code == code]
    return s[0] if s else "-"


def part_convergence(cases: list[dict]) -> list[dict]:
    import audit

    out = []
    for c in cases:
        df = pd.DataFrame(c["X"], columns=c["names"])
        df["target"] = c["y"]
        row = {k: c[k] for k in ("dataset", "norm", "kind", "seed")}
        for label, kw in (("zero", {"baseline": "zero"}), ("default", {})):
            run = audit.run(c["model"], df, target="target", formats=("json",), crosscheck_rows=0, **kw)
            conv = run.convergence
            frac = conv.n_not_converged / max(conv.n_rows, 1)
            row[f"{label}_frac"] = round(frac, 4)
            row[f"{label}_not_converged"] = _sev(run, "not_converged")
            old = "fail" if frac >= 0.10 else ("warn" if frac >= 0.01 else ("info" if frac else "-"))
            row[f"{label}_old_rule"] = old  # the rule before issue 16: fail from 10% of rows
            row[f"{label}_sensitive"] = _sev(run, "baseline_sensitive")
            row[f"{label}_verdict"] = run.verdict.value
            nc = [f for f in run.findings if f.code == "not_converged"]
            row[f"{label}_cause"] = nc[0].evidence.get("cause", "") if nc else ""
        print(json.dumps(row), file=sys.stderr, flush=True)
        out.append(row)
    return out


class Bump(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4.0 * torch.exp(-x[:, 0] ** 2 / 0.5) + x[:, 1] + 0.5 * x[:, 2]


def part_sensitivity(seeds, quick: bool) -> dict[str, Any]:
    import audit
    from audit.config import AuditConfig
    from audit.pipeline import run_audit

    clean = []
    root = Path(tempfile.mkdtemp(prefix="bench_baselines_"))
    specs = [s for s in corpus.corpus(quick=quick, seeds=seeds) if s.kind == "clean" and s.twin is None]
    for spec in specs:
        data = corpus.build_case(spec)
        trained = corpus.train_model(data)
        w = corpus.write_case(data, trained, root / spec.label.replace("/", "__"))
        run = run_audit(AuditConfig(model=w["model"], data=w["data"], target_col="target", formats=("json",),
                                    quiet=True, out=root / "out", **w["options"]))  # fmt: skip
        s = run.baseline_sensitivity
        clean.append({"case": spec.label, "sensitive": _sev(run, "baseline_sensitive"), "verdict": run.verdict.value,
                      "spearman": s.spearman, "ci_low": s.ci_low, "ci_high": s.ci_high, "top_changed": s.top_changed})
        print(json.dumps(clean[-1]), file=sys.stderr, flush=True)
    planted = []
    for seed in range(3 if quick else 20):
        rng = np.random.default_rng(seed)
        n = 300
        x0 = np.where(rng.random(n) < 0.5, -3.0, 3.0) + 0.3 * rng.normal(size=n)
        X = np.column_stack([x0, rng.normal(size=n), rng.normal(size=n), rng.normal(size=(n, 2))])
        df = pd.DataFrame(X, columns=[f"x{j}" for j in range(5)])
        df["target"] = X[:, 1] + 0.5 * X[:, 2]
        run = audit.run(Bump().eval(), df, target="target", formats=("json",), crosscheck_rows=0, seed=seed)
        planted.append({"case": f"bump/s{seed}", "sensitive": _sev(run, "baseline_sensitive")})
    return {"clean": clean, "planted_bump": planted}


def wilson_text(k: int, n: int) -> str:
    lo, hi = corpus.wilson(k, n)
    return f"{k} / {n} ({100 * k / max(n, 1):.0f}%, 95% CI {100 * lo:.0f}-{100 * hi:.0f}%)"


def summarise(res: dict[str, Any]) -> None:
    if "agreement" in res:
        rows = res["agreement"]
        print("\nRank agreement (Spearman of global mean |attr| rankings; per-row mean in brackets), mean [min-max]")
        for ref in ("exact", "shap"):
            for norm in NORMS:
                for kind in KINDS:
                    sel = [r for r in rows if r["norm"] == norm and r["kind"] == kind and f"zero_vs_{ref}" in r]
                    if not sel:
                        continue
                    cells = []
                    for b in ("zero", "mean", "eg"):
                        g = np.array([r[f"{b}_vs_{ref}"] for r in sel])
                        pr = np.array([r[f"{b}_vs_{ref}_row"] for r in sel])
                        cells.append(f"{b} {g.mean():.2f} [{g.min():.2f}-{g.max():.2f}] ({np.nanmean(pr):.2f})")
                    top = {b: sum(r[f"top_{b}"] == r[f"top_{ref}"] for r in sel) for b in ("zero", "mean", "eg")}
                    print(f"  vs {ref:5s} {norm:6s} {kind:6s} n={len(sel)}: " + "; ".join(cells)
                          + f"; same top feature: zero {top['zero']}, mean {top['mean']}, eg {top['eg']} of {len(sel)}")
    if "convergence" in res:
        rows = res["convergence"]
        print("\nConvergence at default options (share of rows above 1%; not_converged now / old rule)")
        for norm in NORMS:
            sel = [r for r in rows if r["norm"] == norm]
            for b in ("zero", "default"):
                fr = np.array([r[f"{b}_frac"] for r in sel])
                now = {s: sum(r[f"{b}_not_converged"] == s for r in sel) for s in ("warn", "fail")}
                old = {s: sum(r[f"{b}_old_rule"] == s for r in sel) for s in ("warn", "fail")}
                sens = sum(r[f"{b}_sensitive"] == "warn" for r in sel)
                print(f"  {norm:6s} {b:7s} n={len(sel)}: mean {100 * fr.mean():.1f}% max {100 * fr.max():.1f}%; "
                      f"now warn {now['warn']} fail {now['fail']}; old rule warn {old['warn']} fail {old['fail']}; "
                      f"baseline_sensitive {sens}")
    if "sensitivity" in res:
        s = res["sensitivity"]
        fa = sum(r["sensitive"] in ("warn", "fail") for r in s["clean"])
        det = sum(r["sensitive"] == "warn" for r in s["planted_bump"])
        print(f"\nbaseline_sensitive: false alarms on clean corpus cases {wilson_text(fa, len(s['clean']))}; "
              f"min CI high {min(r['ci_high'] for r in s['clean']):.2f}; bump plant caught "
              f"{wilson_text(det, len(s['planted_bump']))}")
        if "convergence" in res:
            rows = res["convergence"]
            z = sum(r["zero_sensitive"] == "warn" for r in rows)
            print(f"  the zero baseline on the raw-scale tables of part 1 flagged: {wilson_text(z, len(rows))}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--part", choices=("all", "agreement", "convergence", "sensitivity"), default="all")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    seeds = (0,) if a.quick else tuple(int(s) for s in a.seeds.split(","))
    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    cases = list(models(seeds)) if a.part in ("all", "agreement", "convergence") else []
    if a.part in ("all", "agreement"):
        res["agreement"] = part_agreement(cases)
    if a.part in ("all", "convergence"):
        res["convergence"] = part_convergence(cases)
    if a.part in ("all", "sensitivity"):
        res["sensitivity"] = part_sensitivity(seeds, a.quick)
    res["quality"] = [{k: c[k] for k in ("dataset", "norm", "kind", "seed", "quality")} for c in cases]
    res["seconds"] = round(time.perf_counter() - t0, 1)
    summarise(res)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
