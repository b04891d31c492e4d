"""Where the blocks of an audit run: :func:`open_executor` gives the executor the config names.

- :class:`~audit.executors.local.LocalExecutor`: the blocks one after the other in this process (the default);
- :class:`~audit.executors.ray.RayExecutor`: the modality's units of work on Ray actors (``--executor ray``), each
  actor loading the model once; only the partial accumulators come back to the driver.

An executor is opened before the data (so an unreachable cluster fails before a large file is read and hashed),
runs the blocks of the opened modality with :meth:`run`, and is closed when the run ends. Both drive the modality
through :mod:`audit.modalities.base`'s protocol and leave the same accumulated state, so ``finish`` and everything
after it do not know which one ran. Ray is imported only by the Ray executor, when it is opened.
"""

from __future__ import annotations

from typing import Protocol

from audit.config import AuditConfig
from audit.executors.local import LocalExecutor
from audit.modalities.base import Modality, OutputSink

__all__ = ["Executor", "open_executor", "LocalExecutor"]


class Executor(Protocol):
    def run(self, modality: Modality, outputs: OutputSink | None) -> None:
        """Attribute and merge every block of the opened ``modality``; per-row outputs go to ``outputs``."""

    def close(self) -> None:
        """Release what :func:`open_executor` acquired (a Ray instance it started)."""


def open_executor(config: AuditConfig) -> Executor:
    """The executor ``config.executor`` names, connected (Ray: to ``config.ray_address`` or a local instance)."""
    if config.executor == "ray":
        from audit.executors.ray import RayExecutor

        return RayExecutor(config)
    return LocalExecutor()
