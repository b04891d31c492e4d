"""Findings benchmark: false alarms on healthy models and detections of planted defects, per finding code.

Issue "Verdicts people can trust". The corpus (:mod:`_findings_corpus`) is built in code: scikit-learn's bundled
and generated data sets, linear / MLP / MLP with weight decay / deeper nets with softmax and (binary tasks)
single-logit heads, trained on the CPU in seconds, at several seeds. Clean cases are audited with default
options (``target_col="target"`` only); planted twins carry a known defect at a stated strength.

Targets: no ``fail`` on any clean case; verdict ``pass`` on >= 95% of clean cases; every planted defect caught
(its code raised as warn or fail).

    python benchmarks/bench_findings.py                 # full corpus, 3 seeds
    python benchmarks/bench_findings.py --quick         # smoke run: 1 seed, 3 data sets, 2 models, each twin once
    python benchmarks/bench_findings.py --json findings.json --seeds 5

A case whose build or audit raises is an ``error`` row (the message is kept) and counts in no rate. Progress
goes to stderr, the tables to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _findings_corpus as corpus  # noqa: E402  (sibling module; benchmarks/ is not a package)

_ORDER = {"info": 0, "warn": 1, "fail": 2}


def _sev(value: Any) -> str:
    return str(getattr(value, "value", value))


def _codes_text(findings: list[dict[str, Any]]) -> str:
    """'noise_leakage F2 W8, not_converged W1' (info findings shown as I)."""
    by: dict[str, Counter] = {}
    for f in findings:
        by.setdefault(f["code"], Counter())[f["severity"]] += 1
    parts = []
    for code, c in sorted(by.items(), key=lambda kv: -max(_ORDER.get(s, 0) for s in kv[1])):
        counts = " ".join(f"{s[0].upper()}{c[s]}" for s in ("fail", "warn", "info") if c[s])
        parts.append(f"{code} {counts}")
    return ", ".join(parts) or "-"


def run_case(
    spec: corpus.CaseSpec, root: Path, options: dict[str, Any] | None = None, source: Any = None
) -> dict[str, Any]:
    """Build, train, write and audit one case; never raises (an exception becomes an ``error`` row).

    ``source``: the corpus module whose ``build_case``, ``train_model``, ``write_case`` and ``STRENGTH`` make the
    case (default :mod:`_findings_corpus`; :mod:`bench_real` passes :mod:`_real_corpus`).
    """
    src = corpus if source is None else source
    row: dict[str, Any] = {
        "case": spec.label, "dataset": spec.dataset, "model": spec.model, "seed": spec.seed, "kind": spec.kind,
        "twin": spec.twin or "", "planted_code": spec.planted_code,
        "strength": src.STRENGTH.get(spec.twin or "", ""), "findings": [], "verdict": "error", "error": "",
    }  # fmt: skip
    t0 = time.perf_counter()
    stage = "build"
    try:
        data = src.build_case(spec)
        stage = "train"
        trained = src.train_model(data)
        row.update(
            task=data.task, metric=trained.metric, quality=round(trained.quality, 4),
            train_quality=round(trained.train_quality, 4), epochs=trained.epochs, n_val_rows=len(data.val),
            n_features=len(data.names), meta=data.meta,
        )  # fmt: skip
        folder = root / spec.label.replace("/", "__")
        written = src.write_case(data, trained, folder)
        row["planted_feature"] = data.planted_feature
        row["train_s"] = round(time.perf_counter() - t0, 2)
        stage = "audit"
        from audit.config import AuditConfig
        from audit.pipeline import run_audit

        t1 = time.perf_counter()
        cfg = AuditConfig(
            model=written["model"], data=written["data"], target_col="target", formats=("json",), quiet=True,
            out=folder / "out", **written["options"], **(options or {}),
        )  # fmt: skip
        run = run_audit(cfg)
        row["audit_s"] = round(time.perf_counter() - t1, 2)
        row["verdict"] = _sev(run.verdict)
        row["audit_task"] = str(run.task)
        row["findings"] = [
            {"code": f.code, "severity": _sev(f.severity), "features": list(f.features), "message": f.message,
             "evidence": f.evidence}
            for f in run.findings
        ]
        if getattr(run, "slices", None):
            row["slices"] = [
                {"group": p.group, "rows": p.rows, "top": list(p.top_features[:3]),
                 "spearman": round(float(p.spearman_vs_all), 3)}
                for p in run.slices
            ]  # fmt: skip
        if getattr(run, "drift", None):
            top = sorted(run.drift, key=lambda d: -d.weighted)[:3]
            row["drift_top"] = [
                {"name": d.name, "ks": round(float(d.ks), 3), "share": round(float(d.share), 3),
                 "weighted": round(float(d.weighted), 4)}
                for d in top
            ]  # fmt: skip
        if data.planted_feature is not None:
            for s in run.features:
                if s.name == data.planted_feature:
                    row["planted_rank"], row["planted_share"] = s.rank, round(float(s.share), 4)
    except Exception as e:  # the pipeline is being changed under us: record and keep going
        row["verdict"] = "error"
        row["error"] = f"{stage}: {type(e).__name__}: {e}".splitlines()[0][:300]
        row["traceback"] = traceback.format_exc(limit=6)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


# --- printing ---------------------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _frac_text(e: dict[str, Any]) -> str:
    if not e["n"]:
        return "0 / 0"
    lo, hi = e["ci"]
    return f"{e['k']} / {e['n']} ({_pct(e['rate'])}, {_pct(lo)}-{_pct(hi)})"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


def print_cases(rows: list[dict[str, Any]]) -> None:
    body = []
    for r in rows:
        q = "-" if "quality" not in r else f"{r['metric']} {r['quality']:.3f}"
        planted = r["planted_code"] or ("" if not r["twin"] else f"(quiet) {r['twin']}")
        if r.get("planted_rank"):
            planted += f" [{r['planted_feature']} rank {r['planted_rank']}, share {r['planted_share']:.2f}]"
        found = r["error"] if r["verdict"] == "error" else _codes_text(r["findings"])
        body.append([r["dataset"], r["model"], str(r["seed"]), r["kind"], planted or "-", q, r["verdict"], found,
                     f"{r['seconds']:.1f}"])  # fmt: skip
    print(_table(["dataset", "model", "seed", "kind", "planted", "quality (val)", "verdict", "codes found", "s"], body))


def print_summary(summary: dict[str, Any], runtime_s: float) -> None:
    print()
    print(f"cases: {summary['n_rows']} ({summary['n_clean']} clean, {summary['n_planted']} planted, "
          f"{summary['n_errors']} errors); runtime {runtime_s:.0f} s")  # fmt: skip
    print("\nper detector: false alarms on clean cases (case has a warn/fail of that code), detections on planted")
    body = []
    for code, e in summary["per_code"].items():
        caught = _frac_text(e["caught"]) if "caught" in e else "-"
        cells = [_frac_text(e[k]) for k in ("clean_warn", "clean_fail", "clean_any")]
        body.append([code, *cells, caught])
    print(_table(["code", "clean: warn", "clean: fail", "clean: warn or fail", "planted: caught"], body))
    print("\ndetections by planted twin")
    body = []
    for code, e in summary["per_code"].items():
        for twin, f in e.get("caught_by_twin", {}).items():
            body.append([twin, code, corpus.STRENGTH.get(twin, ""), _frac_text(f)])
    for twin, f in summary["clean_twins_quiet"].items():
        code = "drift_skew" if twin.startswith("drift") else "slice_skew"
        body.append([twin, f"{code} (must stay quiet)", corpus.STRENGTH.get(twin, ""), _frac_text(f)])
    print(_table(["twin", "code", "strength", "caught (quiet twins: alarms)"], body))
    v, vd = summary["verdicts_clean"], summary["verdicts_clean_default_options"]
    print("\nverdicts on clean cases")
    print(_table(
        ["clean cases", "pass", "warn", "fail"],
        [["all (incl. quiet twins)", str(v["pass"]), str(v["warn"]), str(v["fail"])],
         ["default options only", str(vd["pass"]), str(vd["warn"]), str(vd["fail"])]],
    ))  # fmt: skip
    t = summary["targets"]
    print("\ntargets")
    print(f"  no fail on any clean case ............ {'MET' if t['no_fail_on_clean'] else 'NOT MET'} "
          f"({v['fail']} fail)")  # fmt: skip
    print(f"  pass on >= 95% of clean cases ........ {'MET' if t['pass_rate_clean_ge_95'] else 'NOT MET'} "
          f"({_frac_text(summary['pass_rate_clean'])})")  # fmt: skip
    missed = [f"{code} {e['caught']['k']}/{e['caught']['n']}" for code, e in summary["per_code"].items()
              if "caught" in e and e["caught"]["k"] < e["caught"]["n"]]  # fmt: skip
    print(f"  every planted defect caught .......... {'MET' if t['every_planted_caught'] else 'NOT MET'}"
          + (f" (missed: {', '.join(missed)})" if missed else ""))
    if summary["clean_fail_cases"]:
        print("\nclean cases with verdict fail (failing codes)")
        for c in summary["clean_fail_cases"]:
            print(f"  {c['case']}: {', '.join(dict.fromkeys(c['codes']))}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 3 data sets, 2 models, one of each twin")
    ap.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    ap.add_argument("--json", type=Path, default=None, help="write every row and the summary here")
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated models and CSVs in this folder")
    ap.add_argument("--neutralise", choices=("permute", "baseline"), default=None,
                    help="how noise_leakage takes a feature away (default: the audit's default, permute)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    specs = corpus.corpus(quick=args.quick, seeds=range(args.seeds))
    try:
        from audit.findings import CODES as codes
    except Exception:  # noqa: BLE001 (the detectors are being changed; the codes list is only an ordering)
        codes = ()
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_findings_") as tmp:
        root = args.keep or Path(tmp)
        for i, spec in enumerate(specs, start=1):
            row = run_case(spec, root, {"neutralise": args.neutralise} if args.neutralise else None)
            rows.append(row)
            what = row["error"] if row["verdict"] == "error" else _codes_text(row["findings"])
            q = f"{row['metric']}={row['quality']:.3f}" if "quality" in row else ""
            print(f"[{i}/{len(specs)}] {spec.label} {q} -> {row['verdict']} ({what}) {row['seconds']:.1f}s",
                  file=sys.stderr, flush=True)  # fmt: skip
    runtime = time.perf_counter() - started
    summary = corpus.summarise(rows, codes=[c for c in codes if c != "spatial_leakage"])
    print_cases(rows)
    print_summary(summary, runtime)
    errors = [r for r in rows if r["verdict"] == "error"]
    if errors:
        print(f"\nerrors ({len(errors)})")
        for r in errors:
            print(f"  {r['case']}: {r['error']}")
    if args.json is not None:
        settings = {
            "quick": args.quick, "seeds": args.seeds, "noise_rho": corpus.NOISE_RHO, "leak_sigma": corpus.LEAK_SIGMA,
            "drift_shift": corpus.DRIFT_SHIFT, "val_fraction": corpus.VAL_FRACTION, "runtime_s": round(runtime, 1),
            "torch_threads": torch.get_num_threads(),
        }  # fmt: skip
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = {"settings": settings, "summary": summary, "rows": rows}
        args.json.write_text(json.dumps(out, indent=1, default=str))
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
