"""`audit run`: audit a checkpoint on a CSV/Parquet file or an image folder."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from audit.cli._common import guarded
from audit.config import build_config

_BRACKET = "\\[" if getattr(typer.core, "HAS_RICH", False) else "["  # rich markup would eat a bare [...]


def run_command(
    model: str = typer.Option(None, "--model", "-m", help="Checkpoint: TorchScript, torch.export .pt2, state_dict "
                              "(with --arch) or, with --trust-model, a pickled module."),
    data: str = typer.Option(None, "--data", "-d", help="Validation data: CSV or Parquet, an image folder "
                             "(class sub-folders) or a CSV of image paths."),
    target_col: str = typer.Option(None, "--target-col", help="Target column (enables the leakage and noise "
                                   "loss checks). Not a feature."),
    drop: list[str] = typer.Option(None, "--drop", help="Columns that are not features (repeatable or comma list)."),
    arch: str = typer.Option(None, "--arch", help="module:callable that builds the network for a state_dict, "
                             "e.g. torchvision.models:resnet18."),
    trust_model: bool = typer.Option(None, "--trust-model", help="Allow loading a pickled full module. Pickles "
                                     "can run code: only for files you trust."),
    class_index: str = typer.Option(None, "--class", help="Classifiers: explain class K (an index; images "
                                    "also take a class name such as coffee). 'all' (every class) is for tables only. "
                                    "Default: the predicted class."),
    kind: str = typer.Option(None, "--kind", help="tabular | image | text. Default: decided from the data (a folder of "
                             "images, or a CSV whose path column names existing image files, is an image audit)."),
    task: str = typer.Option(None, "--task", help="auto (default) | regression | binary | multiclass | multioutput. "
                             "auto: one output and a 0/1 target is binary, k outputs and labels 0..k-1 multiclass, "
                             "k outputs and k target columns multi-output regression."),
    class_names: str = typer.Option(None, "--class-names", help="Comma list of class labels, in output order, for "
                                    "the report."),
    sep: str = typer.Option(None, "--sep", help="CSV separator: ',', ';', 'tab'. Default: detected from the header."),
    neutralise: str = typer.Option(None, "--neutralise", help="How noise_leakage takes a feature's information "
                                   "away: permute (default, within its column) | baseline."),
    out: str = typer.Option(None, "--out", "-o", help="Output folder."),
    baseline: str = typer.Option(None, "--baseline", help="Tables: mean (the data mean) | zero | median | a one-row "
                                 "CSV; images: black | blur | noise | mean; text: pad | zero."),
    method: str = typer.Option(None, "--method", help="gausslegendre (default) | riemann_left | riemann_right | "
                               "riemann_middle | riemann_trapezoid."),
    n_steps: str = typer.Option(None, "--n-steps", help="Integration steps, or 'auto' (default): 16 steps, refined "
                                "only for rows whose completeness error is above the tolerance, up to --max-steps."),
    max_steps: int = typer.Option(None, "--max-steps", help="With --n-steps auto: the most steps a row may get."),
    noise_features: list[str] = typer.Option(None, "--noise-features", help="Glob of features you know are noise "
                                             "(repeatable), e.g. 'noise_*'."),
    groups: list[str] = typer.Option(None, "--group", help="NAME=GLOB: rank and judge these columns as one feature "
                                     "(repeatable), e.g. 'region=region_*'. One-hot blocks are found on their own."),
    slice_col: str = typer.Option(None, "--slice-col", help="Column whose groups' attribution profiles are compared."),
    reference: str = typer.Option(None, "--reference", help="Reference data (e.g. train.csv) for drift on the "
                                  "features that matter."),
    crosscheck_rows: str = typer.Option(None, "--crosscheck-rows", help="Rows cross-checked against Captum: a "
                                        "number or 'all'."),
    device: str = typer.Option(None, "--device", help="cpu | cuda."),
    dtype: str = typer.Option(None, "--dtype", help="float32 | float64 (reference precision)."),
    bf16: bool = typer.Option(None, "--bf16", help="bf16 autocast on CUDA."),
    seed: int = typer.Option(None, "--seed", help="Seed for sampling and the bootstrap."),
    formats: str = typer.Option(None, "--format", help="Comma list of json, html, pdf."),
    fail_on: str = typer.Option(None, "--fail-on", help="Exit 1 when the verdict reaches: never | warn | fail "
                                "(default)."),
    quiet: bool = typer.Option(None, "--quiet", "-q", help="No progress and no summary."),
    json_out: bool = typer.Option(False, "--json", help="Print audit.json to stdout (implies no progress)."),
    config: str = typer.Option(None, "--config", help=f"audit.toml with options and a {_BRACKET}thresholds] "
                               "table (flags win over the file)."),
    memory_budget_mb: int = typer.Option(None, "--memory-budget-mb", help="Memory for one forward/backward chunk."),
    n_boot: int = typer.Option(None, "--n-boot", help="Bootstrap resamples for the intervals."),
    labels: str = typer.Option(None, "--labels", help="Images: CSV of path,label instead of class folders."),
    image_size: int = typer.Option(None, "--image-size", help="Images: crop size. Default: the images' own size "
                                   "when they share one the model accepts, else 224 (enlarging is noted)."),
    resize: int = typer.Option(None, "--resize", help="Images: resize the short side to this before the crop; 0 = "
                               "no resize. Default: none when the images are audited at their own size, else 256."),
    normalize: str = typer.Option(None, "--normalize", help="Images: imagenet | none | m1,m2,m3/s1,s2,s3."),
    text_col: str = typer.Option(None, "--text-col", help="Text: the column holding the text. Default: the only "
                                 "text column."),
    tokenizer: str = typer.Option(None, "--tokenizer", help="Text: tokenizer.json for a TorchScript/export/"
                                  "state_dict model taking (input_ids, attention_mask). A Hugging Face model folder "
                                  "brings its own."),
    max_length: int = typer.Option(None, "--max-length", help="Text: tokens per row; longer rows are truncated "
                                   "(counted in the report). Default: the model's limit, at most 512."),
    executor: str = typer.Option(None, "--executor", help="local (default) | ray: attribute blocks on Ray actors."),
    ray_address: str = typer.Option(None, "--ray-address", help="Ray: 'auto' or host:port of a running cluster. "
                                    "Default: RAY_ADDRESS, else a local Ray instance."),
    workers: int = typer.Option(None, "--workers", help="Ray: number of actors. Default: what the cluster's CPUs "
                                "allow."),
    cpus_per_worker: float = typer.Option(None, "--cpus-per-worker", help="Ray: CPUs per actor (fractions allowed). "
                                          "Default: sized from the cluster."),
    gpus_per_worker: float = typer.Option(None, "--gpus-per-worker", help="Ray: GPUs per actor (fractions allowed)."),
) -> None:
    """Audit MODEL on DATA: attributions, rankings, findings, audit.json and reports; exit 1 when the verdict
    reaches --fail-on."""
    from audit.cli._execute import execute

    flags = {
        "model": model, "data": data, "target_col": target_col, "drop": drop, "arch": arch,
        "trust_model": trust_model, "class_index": class_index, "kind": kind, "task": task, "class_names": class_names,
        "sep": sep, "neutralise": neutralise, "out": out, "baseline": baseline,
        "method": method, "n_steps": n_steps, "max_steps": max_steps, "noise_features": noise_features,
        "groups": groups, "slice_col": slice_col,
        "reference": reference, "crosscheck_rows": crosscheck_rows, "device": device, "dtype": dtype,
        "bf16": bf16, "seed": seed, "formats": formats, "fail_on": fail_on, "quiet": quiet,
        "memory_budget_mb": memory_budget_mb, "n_boot": n_boot, "labels": labels, "image_size": image_size,
        "resize": resize, "normalize": normalize, "text_col": text_col, "tokenizer": tokenizer,
        "max_length": max_length, "executor": executor, "ray_address": ray_address, "workers": workers,
        "cpus_per_worker": cpus_per_worker, "gpus_per_worker": gpus_per_worker,
        "command": shlex.join(["audit", *sys.argv[1:]]),
    }
    cfg = build_config(flags, Path(config) if config else None)
    _run, code = execute(cfg, json_out=json_out)
    raise typer.Exit(code)


# Options whose help shows ``[default: ...]``. Every option defaults to None so that audit.toml can set it
# (build_config: flags over the file over AuditConfig's defaults), so typer cannot see the defaults: the markers
# are AuditConfig's own, or these words where the default depends on the data.
_SHOWN_DEFAULTS = ("out", "method", "n_steps", "max_steps", "crosscheck_rows", "device", "dtype", "seed", "formats",
                   "fail_on", "n_boot", "memory_budget_mb", "executor", "neutralise", "task", "kind", "normalize",
                   "gpus_per_worker")  # fmt: skip
_DEFAULT_WORDS = {"config": "./audit.toml if present", "baseline": "mean (tables), black (images), pad (text)"}


def _help_markers() -> None:
    """``[default: ...]`` markers from AuditConfig, and no ``<bool>`` type on on/off flags."""
    import dataclasses
    import inspect

    from audit.config import AuditConfig

    defaults = {f.name: f.default for f in dataclasses.fields(AuditConfig) if f.default is not dataclasses.MISSING}
    for name, param in inspect.signature(run_command).parameters.items():
        info = param.default
        if param.annotation in (bool, "bool"):
            info.metavar = ""  # a flag takes no value: typer would print <bool>
        shown = _DEFAULT_WORDS.get(name)
        if shown is None and name in _SHOWN_DEFAULTS:
            value = defaults[name]
            shown = ",".join(value) if isinstance(value, tuple) else str(value)
        if shown is not None and "[default:" not in (info.help or ""):  # typer would print "(200)" for a text
            info.help = f"{info.help} {_BRACKET}default: {shown}]"


def register(app: typer.Typer) -> None:
    _help_markers()
    app.command("run")(guarded(run_command))
