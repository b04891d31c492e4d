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

Where step 2 runs is the executor's business (:mod:`audit.executors`). The local executor loops over
:meth:`Modality.blocks`. A distributed executor (Ray) uses the **work protocol** below instead, which every
modality implements so that the executor stays generic (a new modality, such as text, implements these methods
and nothing in the executor changes):

- :meth:`Modality.units` (driver, after ``open``): picklable descriptions of the work, in data order (a row range
  of a table, a batch of images); their union is exactly the data :meth:`Modality.blocks` yields;
- :meth:`Modality.worker_state` (driver): a picklable record of the opened state (config and the numbers ``open``
  found: task, baseline, completeness floor, ...). The model travels as its path (each worker loads it once) or,
  for an in-memory model of the Python API, pickled;
- :meth:`Modality.from_worker_state` (worker, once per actor): the opened modality rebuilt from that record
  without running ``open`` again; it loads the model (:class:`~audit.errors.ModelLoadError` when it cannot);
- :meth:`Modality.unit_blocks` (worker): the blocks of one unit, each then goes through the same
  :meth:`Modality.attribute` and :meth:`Modality.merge` as locally, with a sink that writes the unit's per-row
  outputs as one part file;
- :meth:`Modality.partial` (worker, after each unit): what ``merge`` accumulated since the last call, picklable,
  and the worker starts afresh (so a unit retried after a worker died is counted once);
- :meth:`Modality.absorb` (driver): merge one unit's partial into the driver's state. Partials merge exactly in
  any order (:mod:`audit.analysis.accumulate`), so ``finish`` sees the same numbers whatever the executor.

Rules that keep a distributed run equal to a local one: units cut the data exactly as :meth:`Modality.blocks`
does (the engine's floats depend in their last bits on how rows are batched, so equal cuts give bit-equal
attributions; a seed drawn per block, as the image noise baseline's, must come with the unit); every row keeps its
global id (the row sample is keyed by a hash of it); what ``merge`` keeps must merge exactly and independently of
arrival order; per-row outputs go only through the sink; ``unit_size`` lets the executor report progress, the
worker's own progress calls go nowhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from audit.config import AuditConfig
from audit.errors import UsageError
from audit.findings import FindingsInput
from audit.results import AuditRun, Convergence, Crosscheck, FeatureStat, Finding

__all__ = ["Modality", "OutputSink", "Summary", "ProgressFn", "fixed_class", "explained_label"]

ProgressFn = Callable[..., None]  # progress(stage, done, total or None, *, unit="rows"); may have .step(text)


def fixed_class(config: AuditConfig, data_word: str) -> int | None:
    """``--class K`` of a modality that explains one class per row (images, text): K, or None for the predicted
    class; ``--class all`` and anything not a whole number are usage errors."""
    if config.class_index is None:
        return None
    if config.class_index == "all":
        raise UsageError(f"--class all is for tabular audits; for {data_word} pass one class index or leave it out")
    try:
        return int(config.class_index)
    except ValueError:
        raise UsageError(f"--class must be a class index (0, 1, ...), got '{config.class_index}'") from None


def explained_label(n_outputs: int, fixed: int | None, class_names: tuple[str, ...]) -> str:
    """What an image or text run explains, for the report: "output 0", "class K (name)" or "predicted class"."""
    if n_outputs == 1:
        return "output 0"
    if fixed is not None:
        return f"class {fixed} ({class_names[fixed]})"
    return "predicted class"


class OutputSink(Protocol):
    """Where a run's per-row outputs go while it runs (the staging folder of :mod:`audit.outputs`)."""

    def rows(self, row_offset: int, names: list[str], attributions: np.ndarray, rel_delta: np.ndarray) -> None:
        """Per-row attributions (n, F) and relative completeness errors (n,), in data order."""

    def arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Named arrays saved next to ``audit.json`` at the end (image heatmaps)."""

    def table(self, kind: str, name: str, table: Any) -> None:
        """A whole table (``pyarrow.Table``) saved as Parquet next to ``audit.json`` (a text run's tokens)."""


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

    # --- the work protocol of distributed executors (see the module notes) ----------------------------------

    def units(self, workers: int = 1) -> list[Any]:
        """Picklable descriptions of the work, in data order (after :meth:`open`); ``workers`` (how many will
        share them) may guide their size, never the results."""
        raise UsageError(f"--executor ray does not run {self.kind} audits yet; use --executor local")

    def unit_size(self, unit: Any) -> int | None:
        """Rows (or items) in ``unit``, for progress; None when unknown."""
        return None

    def worker_state(self) -> dict[str, Any]:
        """A picklable record of the opened state a worker rebuilds the modality from."""
        raise NotImplementedError(f"the {self.kind} modality cannot run on a distributed executor")

    @classmethod
    def from_worker_state(cls, state: dict[str, Any]) -> Modality:
        """The opened modality on a worker, rebuilt from :meth:`worker_state` (loads the model)."""
        raise NotImplementedError(f"the {cls.kind} modality cannot run on a distributed executor")

    def unit_blocks(self, unit: Any) -> Iterator[Any]:
        """The blocks of one unit (worker side)."""
        raise NotImplementedError(f"the {self.kind} modality cannot run on a distributed executor")

    def partial(self) -> Any:
        """What :meth:`merge` accumulated since the last call (picklable); the worker then starts afresh."""
        raise NotImplementedError(f"the {self.kind} modality cannot run on a distributed executor")

    def absorb(self, partial: Any) -> None:
        """Merge one unit's :meth:`partial` into this (driver) modality's state."""
        raise NotImplementedError(f"the {self.kind} modality cannot run on a distributed executor")

    def worker_model(self) -> Any:
        """The model a worker should use: the in-memory one (pickled with the state), or None to load
        ``config.model`` there."""
        return self.given_model

    def load_model(self) -> Any:
        """Load ``config.model`` as :meth:`open` does (safe forms unless ``trust_model``)."""
        from audit.io.model import load_model

        cfg = self.cfg
        return load_model(cfg.model, arch=cfg.arch, trust_model=cfg.trust_model, device=cfg.device)

    @abstractmethod
    def finish(self) -> Summary:
        """Rankings, convergence, the cross-check and the detectors' input, from what was accumulated."""

    @abstractmethod
    def record(self, summary: Summary, findings: tuple[Finding, ...], sink: OutputSink | None) -> AuditRun:
        """The run record (the verdict comes from ``findings``)."""
