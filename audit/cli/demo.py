"""`audit demo`: the embedded default. Makes the synthetic POS/NEG/NOISE data set, trains a small MLP in
seconds, saves the checkpoint (TorchScript, safe to load) and val.csv, and audits them with the known answer
coefficient * (x - x') shown beside the estimate."""

from __future__ import annotations

import shlex
import sys
import warnings
from pathlib import Path

import typer

from audit.cli._common import guarded
from audit.errors import UsageError


def demo_command(
    out: str = typer.Option("reports/demo", "--out", "-o", help="Folder for the checkpoint, val.csv and the audit."),
    rows: int = typer.Option(2000, "--rows", help="Validation rows to audit."),
    train_rows: int = typer.Option(8000, "--train-rows", help="Training rows."),
    epochs: int = typer.Option(30, "--epochs", help="Training epochs (about 0.1 s each on a laptop CPU)."),
    n_steps: str = typer.Option("auto", "--n-steps", help="Integration steps or 'auto'."),
    method: str = typer.Option("gausslegendre", "--method", help="Integration method."),
    formats: str = typer.Option("json,html,pdf", "--format", help="Comma list of json, html, pdf."),
    fail_on: str = typer.Option("fail", "--fail-on", help="never | warn | fail."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda."),
    seed: int = typer.Option(0, "--seed", help="Seed for the data, the training and the audit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress and no summary."),
    json_out: bool = typer.Option(False, "--json", help="Print audit.json to stdout."),
) -> None:
    """Train a small MLP on the classic synthetic set (32 POS, 32 NEG, 32 NOISE features) and audit it."""
    import torch

    from audit import demo
    from audit.cli._execute import execute
    from audit.config import build_config

    if rows < 10 or train_rows < 100 or epochs < 1:
        raise UsageError("--rows must be >= 10, --train-rows >= 100 and --epochs >= 1")
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out '{out_dir}' is a file; pass a folder")
    if not (quiet or json_out):
        typer.echo(f"audit demo: training a 96-64-32-1 MLP on {train_rows:,} synthetic rows ...", err=True)
    train = demo.make_synthetic(train_rows, seed=seed)
    model, fit = demo.train_mlp(train, epochs=epochs, seed=seed)
    val = demo.make_synthetic(rows, seed=seed + 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt, data = out_dir / "model.pt", out_dir / "val.csv"
    with warnings.catch_warnings():  # torch.jit.script's deprecation notice is not the user's concern here
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(model), str(ckpt))
    val.to_csv(data, index=False)
    if not (quiet or json_out):
        typer.echo(f"audit demo: train MSE {fit['train_mse']:.4f} (target variance {fit['target_var']:.2f}); "
                   f"wrote {ckpt} and {data}", err=True)
    cfg = build_config(
        {
            "model": ckpt, "data": data, "target_col": "target", "out": out_dir, "n_steps": n_steps,
            "method": method, "formats": formats, "fail_on": fail_on, "device": device, "seed": seed,
            "quiet": quiet, "noise_features": ["noise_*"], "known_coefficients": demo.coefficients(),
            "command": shlex.join(["audit", *sys.argv[1:]]),
        },
        None,
    )
    _run, code = execute(cfg, json_out=json_out)
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("demo")(guarded(demo_command))
