"""The local executor: every block attributed and merged in this process, in data order."""

from __future__ import annotations

from audit.modalities.base import Modality, OutputSink

__all__ = ["LocalExecutor"]


class LocalExecutor:
    """``merge(attribute(block))`` for each block of the opened modality, here."""

    def run(self, modality: Modality, outputs: OutputSink | None) -> None:
        for block in modality.blocks():
            modality.merge(modality.attribute(block), outputs)

    def close(self) -> None:
        pass
