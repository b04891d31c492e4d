"""`audit bench`: time our IG engine against Captum (best and default settings) and the forward+backward ceiling.

Thin shell: load the model and rows, call :func:`audit.bench.bench`, print a table or JSON. Without --model and
--data it times the embedded default (the 96-256-128-1 MLP on 2,048 uniform rows) that the README quotes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from audit.cli._common import guarded
from audit.errors import UsageError

if TYPE_CHECKING:  # torch is imported lazily, so that --help stays fast
    import torch

__all__ = ["register", "bench_command"]


def _load_rows(
    module: torch.nn.Module, data: str, rows: int, target_col: str | None, drop: list[str], image_size: int,
    resize: int,
) -> torch.Tensor:
    """Rows as a tensor (n, *feature_shape): a table's feature columns, or preprocessed images of a folder.

    The model is first tried on the data's shape, as ``audit run`` does, so a table whose columns do not fit
    the model (a label column taken as a feature: pass --target-col or --drop) or images of the wrong size
    end in one line (DataError) rather than a shape traceback from inside the timing.
    """
    import torch

    path = Path(data)
    if path.is_dir():
        from audit.io.images import discover_images, load_batch

        images = discover_images(path)
        k = min(rows, len(images))
        x, _ = load_batch(images, list(range(k)), size=image_size or None, resize=resize or None)
        _check_images(module, x)
        return x
    from audit.io.model import model_input_check
    from audit.io.tabular import inspect_table, read_table

    spec = inspect_table(path, target_col=target_col, drop=tuple(d for item in drop for d in item.split(",") if d))
    model_input_check(module, len(spec.features))  # DataError naming --target-col/--drop on a mismatch
    return torch.from_numpy(read_table(spec, max_rows=rows).X)


def _check_images(module: torch.nn.Module, x: torch.Tensor) -> None:
    """Run the first image (1, C, H, W) through the model; a shape error becomes one DataError line."""
    import torch

    from audit.attribution.base import model_dtype_device
    from audit.errors import DataError, ModelLoadError

    dtype, dev = model_dtype_device(module)
    c, h, w = x.shape[1:]
    try:
        with torch.no_grad():
            module(x[:1].to(dev, dtype))
    except Exception as e:  # a model can raise anything; classify it for the reader
        reason = " ".join(str(e).split())[-200:] or type(e).__name__
        if any(s in reason.lower() for s in ("size", "shape", "channel", "mat1", "dimension", "expected input")):
            raise DataError(
                f"the model does not accept {c}x{h}x{w} images (it raised: {reason}); set --image-size/--resize "
                "to the size it was trained on"
            ) from e
        raise ModelLoadError(f"the model failed on one {c}x{h}x{w} image ({reason})") from e


@guarded
def bench_command(
    model: str = typer.Option(None, "--model", "-m", help="Checkpoint to time (as for 'audit run'). Default: the "
                              "embedded 96-256-128-1 MLP."),
    data: str = typer.Option(None, "--data", "-d", help="CSV/Parquet rows or an image folder. Default: uniform "
                             "rows for the embedded MLP."),
    n_steps: int = typer.Option(50, "--n-steps", help="Integration steps."),
    rows: int = typer.Option(2048, "--rows", help="Rows to time (the first N of the data)."),
    device: str = typer.Option("cpu", "--device", help="cpu | cuda."),
    method: str = typer.Option("gausslegendre", "--method", help="Integration method."),
    repeats: int = typer.Option(3, "--repeats", help="Interleaved rounds; each speed is the best round, "
                                 "and the spread of the per-round ratios is printed."),
    arch: str = typer.Option(None, "--arch", help="module:callable that builds the network for a state_dict."),
    trust_model: bool = typer.Option(False, "--trust-model", help="Allow loading a pickled full module (runs "
                                     "code: only for files you trust)."),
    target_col: str = typer.Option(None, "--target-col", help="Target column of the table (not a feature)."),
    drop: list[str] = typer.Option(None, "--drop", help="Columns that are not features (repeatable or comma list)."),
    image_size: int = typer.Option(224, "--image-size", help="Images: crop size."),
    resize: int = typer.Option(256, "--resize", help="Images: resize the short side first; 0 = no resize."),
    json_out: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
) -> None:
    """Time our engine, Captum at its best internal_batch_size and at its default, and the plain
    forward+backward ceiling, in one run on the same rows; speeds are rows/s at --n-steps."""
    from audit.bench import bench, default_model_and_rows, format_table

    if rows < 1:
        raise UsageError(f"--rows must be at least 1, got {rows}")
    if (model is None) != (data is None):
        raise UsageError("pass both --model and --data, or neither to time the embedded default MLP")
    if model is None:
        module, x = default_model_and_rows(rows)
    else:
        from audit.io.model import load_model

        module = load_model(model, arch=arch, trust_model=trust_model, device=device).module
        x = _load_rows(module, data, rows, target_col, drop or [], image_size, resize)
    result = bench(module, x, n_steps=n_steps, method=method, device=device, repeats=repeats)
    typer.echo(json.dumps(result, indent=2) if json_out else format_table(result))
    if json_out:  # the table prints them; with --json stdout is for machines, so say it on stderr too
        for w in result["warnings"]:
            typer.echo(f"audit bench: warning: {w}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``audit bench`` to the app."""
    app.command("bench", help=bench_command.__doc__)(bench_command)
