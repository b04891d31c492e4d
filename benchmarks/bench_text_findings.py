"""Text findings benchmark: ``spurious_token`` on planted and healthy tiny BERTs over several seeds.

For each seed a 2-layer BERT (hidden size 32, :mod:`audit.synthetic_text`) is trained twice on the same synthetic
reviews: *planted*, with a made-up token appended to most positive training reviews (a shortcut), and *healthy*,
without it. Both are audited on the same validation reviews in which the token sits in half the rows whatever
their label (the shortcut no longer holds), with labels and, separately, without them. Reported: detection rate
of the planted token (flagged warn or fail) and false-alarm rate (any ``spurious_token``, and any warn/fail
finding at all) on the healthy models, with Wilson 95% intervals, and whether ``not_converged`` /
``engine_disagreement`` stay quiet (no warn or fail) on healthy models.

    python benchmarks/bench_text_findings.py              # 5 + 5 seeds, ~2.5 min on 2 cores
    python benchmarks/bench_text_findings.py --seeds 2 --json text.json
    python benchmarks/bench_text_findings.py --pieces     # WordPiece: zqx comes as z ##q ##x

Measured (2026-12-01, 2 shared cores, 400 validation rows): 5 seeds in 146 s -- with labels the planted token is
flagged 5/5 (all fail; Wilson 95% CI 57-100%) and healthy models raise nothing 0/5 (0-43%); without labels 5/5
(warn) and 0/5. 10 seeds in 486 s (a concurrent job on the machine): with labels 10/10 (72-100%, all fail),
false alarms 0/10 (0-28%); without labels 9/10 (60-98%), false alarms 0/10 (0-28%); no ``not_converged`` or
``engine_disagreement`` warn/fail on any of the 40 audits, and the Captum cross-check passed on all 40.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
from typer.testing import CliRunner

from audit.cli.main import app
from audit.synthetic_text import PLANTED_TOKEN, build_text_case, make_reviews, save_hf_folder


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def audit(folder: Path, val: Path, labels: bool) -> dict:
    out = folder / ("out_l" if labels else "out_n")
    args = ["run", "--model", str(folder / "hf"), "--data", str(val), "--out", str(out), "--format", "json",
            "--quiet", "--n-boot", "100", "--crosscheck-rows", "16"]
    if labels:
        args += ["--target-col", "label"]
    res = CliRunner().invoke(app, args)
    if res.exit_code not in (0, 1):
        raise RuntimeError(res.output)
    return json.loads((out / "audit.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--val-rows", type=int, default=400)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--pieces", action="store_true", help="the WordPiece tokenizer in which the planted token and "
                    "half the sentiment words split into pieces (z ##q ##x): the finding must name the word")
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(a.seeds):
            val = make_reviews(a.val_rows, seed=1000 + seed, planted_random=0.5)
            for planted in (True, False):
                folder = Path(tmp) / f"s{seed}_{planted}"
                case = build_text_case(planted=planted, seed=seed, pieces=a.pieces)
                save_hf_folder(case.model, case.tokenizer, folder / "hf")
                path = folder / "val.csv"
                val.to_csv(path, index=False)
                for labels in (True, False):
                    run = audit(folder, path, labels)
                    found = [f for f in run["findings"] if f["code"] == "spurious_token"]
                    rows.append({
                        "seed": seed, "planted": planted, "labels": labels, "verdict": run["verdict"],
                        "spurious": [(f["features"][0], f["severity"]) for f in found],
                        "other_bad": sorted({f["code"] for f in run["findings"]
                                             if f["severity"] != "info" and f["code"] != "spurious_token"}),
                        "crosscheck_passed": run["crosscheck"]["passed"],
                        "accuracy": run["text"]["accuracy"], "train_accuracy": case.train_accuracy,
                    })  # fmt: skip
                    print(f"seed {seed} planted={planted} labels={labels}: {rows[-1]['spurious']} "
                          f"{rows[-1]['other_bad']} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    tok = "WordPiece tokenizer (rare words in pieces)" if a.pieces else "word-level tokenizer"
    print(f"\n{a.seeds} seeds, {a.val_rows} validation rows, {tok}, {time.perf_counter() - t0:.0f} s")
    for labels in (True, False):
        sub = [r for r in rows if r["labels"] == labels]
        pl = [r for r in sub if r["planted"]]
        he = [r for r in sub if not r["planted"]]
        hit = sum(any(t == PLANTED_TOKEN for t, _ in r["spurious"]) for r in pl)
        fails = sum(any(t == PLANTED_TOKEN and s == "fail" for t, s in r["spurious"]) for r in pl)
        fa = sum(bool(r["spurious"]) for r in he)
        bad = sum(bool(r["spurious"] or r["other_bad"]) for r in he)
        conv = sum(bool({"not_converged", "engine_disagreement"} & set(r["other_bad"])) for r in he + pl)
        name = "with labels" if labels else "without labels"
        lo, hi = wilson(hit, len(pl))
        print(f"{name}: planted token flagged {hit}/{len(pl)} ({hit / len(pl):.0%}, 95% CI {lo:.0%}-{hi:.0%}; "
              f"{fails} fail)")
        lo, hi = wilson(fa, len(he))
        print(f"{name}: spurious_token on healthy models {fa}/{len(he)} ({fa / len(he):.0%}, 95% CI {lo:.0%}-{hi:.0%})")
        lo, hi = wilson(bad, len(he))
        print(f"{name}: healthy models with any warn/fail {bad}/{len(he)} (95% CI {lo:.0%}-{hi:.0%}); "
              f"not_converged/engine_disagreement warn or fail on any model: {conv}/{len(sub)}")
    xc = sum(r["crosscheck_passed"] is True for r in rows)
    print(f"Captum cross-check passed on {xc}/{len(rows)} audits")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
