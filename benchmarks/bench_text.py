"""Benchmark of layer IG on a text model: our engine against Captum's LayerIntegratedGradients, in one run.

    python benchmarks/bench_text.py [--rows 256] [--quick] [--n-steps 50] [--tolerance 0.01] [--threads N]
                                    [--captum-points 256,512,1024,2048] [--captum-steps 8,12,16,...]
                                    [--init-range 0.3] [--repeats 1] [--json out.json]

The model is a BERT classifier built in code (nothing is downloaded): 2 layers, hidden 64, 4 heads,
intermediate 256, vocabulary 1,000, 2 labels, random weights drawn with ``--init-range`` (0.3 by default, so that
the model is far from linear in its embeddings: rows need 16 to 64 Gauss-Legendre steps for 1% completeness; at
BERT's own 0.02 every row converges at 16). ``--rows`` rows of 32 to 64 tokens ([CLS] ... [SEP], then padding
masked by the attention mask), each row's predicted class explained against the baseline that replaces every
token by the pad id and keeps [CLS] and [SEP] (and the mask).

Two comparisons, Gauss-Legendre throughout, every time wall clock and CPU time of this process:

1. fixed steps (``--n-steps``): ours (rows sorted by length, masked trailing padding cut per pass; and at the
   full length), against Captum at each of ``--captum-points`` path points per forward; "Captum" is the
   fastest of them;
2. equal completeness: ours with ``n_steps="auto"`` and ``--tolerance``, against Captum at the smallest step count
   of ``--captum-steps`` (one count for every row) whose relative completeness error ``|delta| / |F(x) -
   F(x')|`` is within the tolerance on all rows, and on 99% of them; Captum at its fastest points per forward of
   step 1, and only the run at that step count is timed (the search is not).

On a CPU shared with other jobs, torch's threads wait for each other at every layer; ``--threads 1`` (the
default here) gives steadier figures, and the CPU time column is the least disturbed one.

Measured (256 rows, 1 thread, 2 rounds, on a 2-core machine shared with other jobs, Captum 0.9 at its best of
256-2,048 points per forward, 512): at 50 steps Captum / ours = 1.33x wall, 1.32x CPU, all of it from cutting
the padding (ours at the full length: 0.97x wall, 0.96x CPU: for BERT the forward and backward are nearly all
the work, so one backward per pass instead of Captum's per-row ``unbind`` gains nothing); at 1% completeness
ours ``auto`` (16-128 steps per row, mean 35) against Captum at one count for all rows: 1.66x wall, 1.59x CPU
(64 steps, 99.6% of rows within) and 1.94x wall, 2.29x CPU (96 steps, every row). Largest per-row difference
between the two: 4.3e-6 of the row's largest attribution.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

from audit.attribution.layer import layer_integrated_gradients  # noqa: E402
from audit.attribution.layer_crosscheck import captum_layer_attribute  # noqa: E402

PAD, CLS, SEP = 0, 2, 3


def build(init_range: float, vocab: int = 1000) -> torch.nn.Module:
    """The benchmark's BERT classifier, seeded, in eval mode."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256,
        max_position_embeddings=128, num_labels=2, initializer_range=init_range,
    )  # fmt: skip
    return BertForSequenceClassification(cfg).eval()


def make_rows(n: int, vocab: int = 1000, lo: int = 32, hi: int = 64, seed: int = 1):
    """Ids (n, hi), attention mask (n, hi) and pad baseline (n, hi) of rows of ``lo`` to ``hi`` tokens."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(lo, hi + 1, (n,), generator=gen)
    mask = (torch.arange(hi)[None] < lengths[:, None]).long()  # (n, hi)
    ids = torch.randint(5, vocab, (n, hi), generator=gen) * mask
    ids[:, 0] = CLS
    ids[torch.arange(n), lengths - 1] = SEP
    baseline = torch.where((ids == CLS) | (ids == SEP), ids, torch.full_like(ids, PAD))
    return ids, mask, baseline


def timed(fn):
    """(wall seconds, CPU seconds of this process, result)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def rel_error(delta: torch.Tensor, fx: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """|delta| / max(|F(x) - F(x')|, 1e-6 (1 + max(|F(x)|, |F(x')|))), as the engine reports it."""
    floor = 1e-6 * (1.0 + torch.maximum(fx.abs(), fb.abs()))
    return delta.abs() / torch.maximum((fx - fb).abs(), floor)


class Timings:
    """Best wall and best CPU seconds per setting over interleaved rounds, and the last result of each."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.out: dict[str, object] = {}

    def run(self, label: str, fn) -> object:
        wall, cpu, out = timed(fn)
        self.wall[label] = min(self.wall.get(label, float("inf")), wall)
        self.cpu[label] = min(self.cpu.get(label, float("inf")), cpu)
        self.out[label] = out
        print(f"  {label}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="48 rows, 2 Captum settings, 1 round: about a minute")
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--init-range", type=float, default=0.3, help="std of the random BERT weights")
    parser.add_argument("--captum-points", default="256,512,1024,2048", help="path points per Captum forward")
    parser.add_argument("--captum-steps", default="8,12,16,24,32,48,64,96,128,192,256")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (0 = torch's default)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved rounds of every setting, best counts")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.captum_points, args.repeats = min(args.rows, 48), "256,1024", 1
    points = [int(p) for p in args.captum_points.split(",")]
    captum_steps = sorted(int(s) for s in args.captum_steps.split(","))
    if args.threads:
        torch.set_num_threads(args.threads)

    model = build(args.init_range)
    layer = model.bert.embeddings.word_embeddings
    ids, mask, baseline = make_rows(args.rows)
    with torch.no_grad():
        target = model(ids, mask).logits.argmax(1)  # (n,)
    common = dict(layer=layer, baseline_ids=baseline, additional_forward_args=(mask,), target=target)
    n, s, tol = args.rows, args.n_steps, args.tolerance
    print(
        f"BERT 2x64 (init {args.init_range}), {n} rows of 32-64 tokens (mean {mask.sum(1).float().mean():.1f}), "
        f"{torch.get_num_threads()} threads, Gauss-Legendre, best of {args.repeats} interleaved rounds"
    )
    t = Timings()
    cut, full, auto = f"ours, {s} steps, padding cut", f"ours, {s} steps, full length", f"ours, auto (tol {tol:g})"

    def cap(p: int, steps: int = s) -> str:
        return f"Captum, {steps} steps, {p} pts/fwd"

    # 1. fixed steps, and ours at equal tolerance, interleaved
    for _ in range(args.repeats):
        t.run(cut, lambda: layer_integrated_gradients(model, ids, n_steps=s, **common))
        t.run(full, lambda: layer_integrated_gradients(model, ids, n_steps=s, trim_padding=False, **common))
        for p in points:
            t.run(cap(p), lambda p=p: captum_layer_attribute(model, ids, n_steps=s, internal_batch_size=p, **common))
        t.run(auto, lambda: layer_integrated_gradients(model, ids, n_steps="auto", tolerance=tol, **common))
    best_p = min(points, key=lambda p: t.wall[cap(p)])
    ours = t.out[cut]
    fx, fb = ours.f_x, ours.f_baseline
    rel = {cut: ours.rel_delta, full: t.out[full].rel_delta, auto: t.out[auto].rel_delta}
    rel.update({cap(p): rel_error(t.out[cap(p)][1], fx, fb) for p in points})
    cap_attr = t.out[cap(best_p)][0]
    diff = ((ours.attributions - cap_attr).abs().amax(1) / ours.attributions.abs().amax(1)).max()

    # 2. Captum at equal tolerance: the smallest step count of the list that gets there (searched once)
    found: dict[str, int] = {}
    for steps in captum_steps:
        label = cap(best_p, steps)
        _, d = t.run(label, lambda steps=steps: captum_layer_attribute(
            model, ids, n_steps=steps, internal_batch_size=best_p, **common))  # fmt: skip
        rel[label] = rel_error(d, fx, fb)
        share = float((rel[label] <= tol).double().mean())
        print(f"    {share:.1%} of rows within {tol:g}", flush=True)
        for key, need in (("99%", 0.99), ("all", 1.0)):
            if key not in found and share >= need:
                found[key] = steps
        if "all" in found:
            break
    for _ in range(args.repeats - 1):  # the chosen counts again, interleaved with ours
        t.run(auto, lambda: layer_integrated_gradients(model, ids, n_steps="auto", tolerance=tol, **common))
        for steps in sorted(set(found.values())):
            t.run(cap(best_p, steps), lambda steps=steps: captum_layer_attribute(
                model, ids, n_steps=steps, internal_batch_size=best_p, **common))  # fmt: skip

    table = [("fixed", cut, s), ("fixed", full, s)] + [("fixed", cap(p), s) for p in points]
    table.append(("equal tol", auto, float(t.out[auto].steps.double().mean())))
    for key in ("99%", "all"):
        if key in found:
            table.append(("equal tol", cap(best_p, found[key]) + f" ({key})", found[key]))
    print()
    print(f"{'comparison':<10} {'setting':<40} {'steps':>6} {'wall s':>8} {'CPU s':>7} {'rows/s':>7} "
          f"{'med rel err':>11} {'within tol':>10}")  # fmt: skip
    for kind, label, steps in table:
        key = label.split(" (")[0] if kind == "equal tol" and label.startswith("Captum") else label
        r = rel[key]
        print(f"{kind:<10} {label:<40} {steps:>6.4g} {t.wall[key]:>8.2f} {t.cpu[key]:>7.2f} {n / t.wall[key]:>7.1f} "
              f"{float(r.median()):>11.2e} {float((r <= tol).double().mean()):>10.1%}")  # fmt: skip
    w_cap, c_cap = t.wall[cap(best_p)], t.cpu[cap(best_p)]
    steps_used = t.out[auto].steps
    summary = {
        "rows": n, "threads": torch.get_num_threads(), "init_range": args.init_range, "n_steps": s,
        "tolerance": tol, "repeats": args.repeats, "captum_best_points_per_forward": best_p,
        "fixed_wall_ratio_captum_over_ours": w_cap / t.wall[cut],
        "fixed_cpu_ratio_captum_over_ours": c_cap / t.cpu[cut],
        "fixed_full_length_wall_ratio": w_cap / t.wall[full], "fixed_full_length_cpu_ratio": c_cap / t.cpu[full],
        "max_rel_diff_vs_captum": float(diff),
        "auto_steps": {int(k): int(v) for k, v in zip(*torch.unique(steps_used, return_counts=True), strict=True)},
        "auto_within_tol": float((rel[auto] <= tol).double().mean()),
    }  # fmt: skip
    print()
    print(f"fixed {s} steps: Captum at its best ({best_p} points/forward) / ours = {w_cap / t.wall[cut]:.2f}x wall, "
          f"{c_cap / t.cpu[cut]:.2f}x CPU (ours at full length: {w_cap / t.wall[full]:.2f}x wall, "
          f"{c_cap / t.cpu[full]:.2f}x CPU); largest per-row difference {float(diff):.2g} of the row's largest "
          "attribution")  # fmt: skip
    print(f"ours auto: steps per row {summary['auto_steps']}")
    for key in ("all", "99%"):
        if key in found:
            w, c = t.wall[cap(best_p, found[key])], t.cpu[cap(best_p, found[key])]
            summary[f"equal_tol_{key}_captum_steps"] = found[key]
            summary[f"equal_tol_{key}_wall_ratio"] = w / t.wall[auto]
            summary[f"equal_tol_{key}_cpu_ratio"] = c / t.cpu[auto]
            print(f"equal tolerance {tol:g} ({key} rows): Captum needs {found[key]} steps; Captum / ours auto = "
                  f"{w / t.wall[auto]:.2f}x wall, {c / t.cpu[auto]:.2f}x CPU")  # fmt: skip
        else:
            print(f"equal tolerance {tol:g} ({key} rows): Captum did not get there within {captum_steps[-1]} steps")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
