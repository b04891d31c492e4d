"""run_audit(config) -> AuditRun: the one skeleton every kind of input goes through.

open (options, data, model, probe, baseline) -> blocks -> attribute -> merge -> finish (convergence, rankings,
cross-check, evidence) -> findings -> record; where the blocks run (here or on Ray actors) is
:mod:`audit.executors`'s business. What a row is (a table row, an image) is the modality's business
(:mod:`audit.modalities`); this module only orders the stages and picks the modality. No printing, no file
writing beyond what the caller's output sink asks for.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from audit.config import AuditConfig
from audit.errors import UsageError
from audit.executors import open_executor
from audit.findings import run_detectors
from audit.modalities.base import Modality, OutputSink, ProgressFn
from audit.modalities.image import ImageModality
from audit.modalities.tabular import TabularModality
from audit.results import AuditRun

__all__ = ["run_audit", "choose_modality", "MODALITIES", "ProgressFn", "OutputSink"]

MODALITIES: dict[str, type[Modality]] = {"tabular": TabularModality, "image": ImageModality}


def choose_modality(config: AuditConfig) -> type[Modality]:
    """``config.kind`` when given; otherwise the modality that claims the data on unambiguous evidence.

    A folder is an image set; a table whose path-like column holds existing image files lists images; any other
    table is tabular. A table with a path-like column whose first values are neither numbers nor existing
    image files is ambiguous, and the caller is asked to say.
    """
    if config.kind == "text" or (config.kind == "auto" and _is_text(config)):
        from audit.modalities.text import TextModality  # transformers/tokenizers: the audit[text] extra

        return TextModality
    if config.kind != "auto":
        return MODALITIES[config.kind]
    data = Path(config.data)
    verdicts = {name: cls.claims(data) for name, cls in MODALITIES.items()}
    if verdicts["image"] is True:
        return MODALITIES["image"]
    if verdicts["image"] is None:
        raise UsageError(
            f"cannot tell whether '{data}' lists images or is a table: its path-like column "
            f"'{_path_column(data)}' holds text that names no existing image file; pass --kind image or --kind tabular"
        )
    return MODALITIES["tabular"]


def _is_text(config: AuditConfig) -> bool:
    """A text audit on clear evidence: --text-col, --tokenizer, or a Hugging Face model folder (config.json)."""
    model = Path(config.model)
    return bool(config.text_col or config.tokenizer or (model.is_dir() and (model / "config.json").is_file()))


def _path_column(data: Path) -> str:
    try:
        with data.open("r", encoding="utf-8", errors="replace", newline="") as fh:
            header = next(csv.reader(fh), [])
    except OSError:
        return ""
    from audit.modalities.image import PATH_COLUMNS

    return next((h for h in header if h.strip().lower() in PATH_COLUMNS), "")


def run_audit(
    config: AuditConfig,
    *,
    progress: ProgressFn | None = None,
    outputs: OutputSink | None = None,
    model: Any = None,
) -> AuditRun:
    """Audit ``config.model`` on ``config.data``.

    Parameters
    ----------
    config : AuditConfig
    progress : callable(stage, done, total), optional
        Called as work advances (``total`` None when unknown); an object with ``.step(text)`` is also told of
        unit-free stages (bootstrap, neutralisation, findings).
    outputs : OutputSink, optional
        Receives per-row attributions while they are computed and named arrays at the end.
    model : LoadedModel, optional
        An in-memory model (the Python API); None loads ``config.model``.

    Returns
    -------
    AuditRun
    """
    modality = choose_modality(config)(config, progress, model)
    executor = open_executor(config)  # before the data: an unreachable cluster fails first
    try:
        modality.open()
        executor.run(modality, outputs)  # here, or on Ray actors
    finally:
        executor.close()
    summary = modality.finish()
    modality.step("findings")
    findings = run_detectors(summary.findings_input, config.thresholds)
    return modality.record(summary, findings, outputs)
