"""The protocol a kind of input implements, so that one pipeline can drive tables, images and (later) text.

A modality owns everything that depends on what a row is: its options, how the data is opened and cut into
blocks, how the model is probed, the baselines, how a block is attributed, what is accumulated, and which
analyses and report sections it adds. :func:`audit.pipeline.run_audit` owns the order of the stages and knows
nothing about pixels, columns or tokens:

1. :meth:`Modality.open`: check the options, open the data, load and probe the model, build the baseline;
2. for each block of :meth:`Modality.blocks`: :meth:`Modality.attribute` (a pure function of the block, the unit
   a distributed executor ships to a worker) and :meth:`Modality.merge` (accumulate, stream per-row outputs);
3. :meth:`Modality.finish`: convergence, rankings, the Captum cross-check, the evidence the detectors read;
4. the pipeline runs the detectors and :meth:`Modality.record` assembles the :class:`~audit.results.AuditRun`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from audit.config import AuditConfig
from audit.findings import FindingsInput
from audit.results import AuditRun, Convergence, Crosscheck, FeatureStat, Finding

__all__ = ["Modality", "OutputSink", "Summary", "ProgressFn"]

ProgressFn = Callable[..., None]  # progress(stage, done, total or None, *, unit="rows"); may have .step(text)


class OutputSink(Protocol):
    """Where a run's per-row outputs go while it runs (the staging folder of :mod:`audit.outputs`)."""

    def rows(self, row_offset: int, names: list[str], attributions: np.ndarray, rel_delta: np.ndarray) -> None:
        """Per-row attributions (n, F) and relative completeness errors (n,), in data order."""

    def arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Named arrays saved next to ``audit.json`` at the end (image heatmaps)."""


@dataclass
class Summary:
    """What :meth:`Modality.finish` hands to the pipeline: the numbers every kind of input has, and the
    detectors' input."""

    features: tuple[FeatureStat, ...]
    convergence: Convergence
    crosscheck: Crosscheck
    findings_input: FindingsInput
    extra: dict[str, Any] = field(default_factory=dict)  # modality-specific parts of the AuditRun


class Modality(ABC):
    """One kind of input. Subclasses set :attr:`kind` and implement the stages.

    Parameters
    ----------
    config : AuditConfig
    progress : callable
        ``progress(stage, done, total)``; an object with ``.step(text)`` also gets unit-free stages.
    model : LoadedModel, optional
        An in-memory model (:func:`audit.run`); None loads ``config.model``.
    """

    kind: ClassVar[str]

    def __init__(self, config: AuditConfig, progress: ProgressFn | None = None, model: Any = None) -> None:
        self.cfg = config
        self.given_model = model  # a LoadedModel from the Python API, or None to load config.model
        self.progress: ProgressFn = progress or (lambda stage, done, total, **_: None)
        self.step: Callable[[str], None] = getattr(progress, "step", lambda text: None)
        self.notes: list[str] = []

    @classmethod
    @abstractmethod
    def claims(cls, data: Path) -> bool | None:
        """Does ``data`` look like this kind of input? True on unambiguous evidence, False when it cannot be,
        None when it cannot tell (the pipeline then asks for ``--kind``)."""

    @abstractmethod
    def open(self) -> None:
        """Check the options, open the data, load and probe the model, build the baseline."""

    @abstractmethod
    def blocks(self) -> Iterator[Any]:
        """The data in blocks, in order."""

    @abstractmethod
    def attribute(self, block: Any) -> Any:
        """Attribute one block; a function of the block and the opened state only."""

    @abstractmethod
    def merge(self, result: Any, sink: OutputSink | None) -> None:
        """Accumulate one block's result; stream its per-row outputs to ``sink``."""

    @abstractmethod
    def finish(self) -> Summary:
        """Rankings, convergence, the cross-check and the detectors' input, from what was accumulated."""

    @abstractmethod
    def record(self, summary: Summary, findings: tuple[Finding, ...], sink: OutputSink | None) -> AuditRun:
        """The run record (the verdict comes from ``findings``)."""
