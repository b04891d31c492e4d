"""The work protocol of distributed executors (:mod:`audit.modalities.base`) for the text modality.

:class:`TextUnits` is a mixin of :class:`audit.modalities.text.TextModality`. A unit is one block of rows of
similar length, exactly a local block (the engine's floats depend in their last bits on how rows are batched).
The worker state carries the opened numbers (the token ids, special-token masks, explained classes, engine
settings, baseline); each worker loads the model and tokenizer from the path once. A partial is the per-row
attributions, completeness errors and steps of the rows merged since the last call; the driver stores them as
the local loop does, so ``finish`` sees the same arrays whatever the executor.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = ["TextUnits"]

_STATE = ("enc", "pad_id", "max_length", "n_outputs", "class_names", "target", "engine", "baseline_kind",
          "fixed_class", "n_rows")  # fmt: skip


class TextUnits:
    """Units, worker state, partials (a mixin: see the module notes)."""

    def units(self, workers: int = 1) -> list[list[int]]:
        return list(self.plan())

    def unit_size(self, unit: list[int]) -> int:
        return len(unit)

    def worker_state(self) -> dict[str, Any]:
        return {"cfg": self.cfg, **{k: getattr(self, k) for k in _STATE}}

    @classmethod
    def from_worker_state(cls, state: dict[str, Any]):
        from audit.io.text import load_text_model

        self = cls(state["cfg"])
        for k in _STATE:
            setattr(self, k, state[k])
        cfg = self.cfg
        self.tm = load_text_model(cfg.model, tokenizer=cfg.tokenizer, arch=cfg.arch, trust_model=cfg.trust_model,
                                  device=cfg.device)
        self.start_arrays()
        return self

    def unit_blocks(self, unit: list[int]) -> Iterator[list[int]]:
        return iter([unit])

    def partial(self) -> dict[str, Any]:
        rows = list(self._touched)
        out = {
            "rows": rows, "attr": [self.attr[i] for i in rows], "rel": [float(self.rel[i]) for i in rows],
            "steps": [int(self.steps[i]) for i in rows], "notes": list(self._engine_notes),
            "independent": self.independent,
        }  # fmt: skip
        self._touched, self._engine_notes, self.independent = [], [], True
        return out

    def absorb(self, partial: dict[str, Any]) -> None:
        if not hasattr(self, "_unit_notes"):
            self._unit_notes: dict[int, list[str]] = {}
        for k, i in enumerate(partial["rows"]):
            self.attr[i], self.rel[i], self.steps[i] = partial["attr"][k], partial["rel"][k], partial["steps"][k]
        if partial["rows"]:
            self._unit_notes[min(partial["rows"])] = partial["notes"]
        self.independent = self.independent and partial["independent"]
        # the engine's notes in a fixed order, whatever order the units come back in
        self._engine_notes = [n for _, notes in sorted(self._unit_notes.items()) for n in notes]
