"""The work protocol of distributed executors (:mod:`audit.modalities.base`) for the image modality.

:class:`ImageUnits` is a mixin of :class:`audit.modalities.image.ImageModality`. A unit is one batch of
:data:`~audit.modalities.image.BATCH_IMAGES` images with its batch number, exactly a local block (the noise
baseline's seed depends on the batch number, so the batches must not be cut differently). A worker reduces each
attributed batch to what the driver keeps of it (the display heatmaps, the downsampled and mass maps, channel
masses, predictions, completeness errors, thumbnails) and the driver stores it as the local loop does, so the
per-image arrays, the gallery and the mean maps are the same (the mean maps' sums only in another order).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np

from audit.analysis.heatmaps import MAX_SIDE, channel_mass, clip_normalize, downsample, mass_normalize, reduce_channels

__all__ = ["ImageUnits"]

_STATE = ("images", "channels", "mean", "std", "hw", "size", "resize_to", "n_outputs", "class_names",
          "dataset_mean", "engine", "kind", "fixed_class")  # fmt: skip


class ImageUnits:
    """Units, worker state, partials (a mixin: see the module notes)."""

    def units(self, workers: int = 1) -> list[tuple[int, list[int]]]:
        return list(self.blocks_plan())

    def unit_size(self, unit: tuple[int, list[int]]) -> int:
        return len(unit[1])

    def worker_state(self) -> dict[str, Any]:
        return {"cfg": self.cfg, "model": self.worker_model(), **{k: getattr(self, k) for k in _STATE}}

    @classmethod
    def from_worker_state(cls, state: dict[str, Any]):
        self = cls(state["cfg"])
        for k in _STATE:
            setattr(self, k, state[k])
        self.loaded = state["model"] or self.load_model()
        self.module = self.loaded.module
        self._records: list[dict] | None = []  # a worker keeps reduced batches, not per-image arrays of the set
        self.conversions = Counter()
        return self

    def unit_blocks(self, unit: tuple[int, list[int]]) -> Iterator[tuple[int, list[int]]]:
        return iter([unit])

    def partial(self) -> dict[str, Any]:
        out = {"records": self._records, "conversions": self.conversions}
        self._records, self.conversions = [], Counter()
        return out

    def absorb(self, partial: dict[str, Any]) -> None:
        if not hasattr(self, "_unit_notes"):
            self._unit_notes: dict[int, list[str]] = {}
        for rec in partial["records"]:
            self.store(rec)
            self._unit_notes[rec["idx"][0]] = rec["notes"]
        self.conversions.update(partial["conversions"])
        # the engine's notes in image order, as the local loop adds them, whatever order the units come back in
        self._engine_notes = [n for _, notes in sorted(self._unit_notes.items()) for n in notes]

    def reduce(self, r: dict) -> dict:
        """What is kept of one attributed batch (:meth:`ImageModality.attribute`'s result)."""
        idx, attr, target = r["idx"], r["attr"], r["target"]
        reduced = reduce_channels(attr)  # (m, H, W)
        mass = mass_normalize(reduced)  # (m, H, W), each sums to 1
        display = clip_normalize(reduced)  # (m, H, W) in [0, 1]
        abs_mass, signed_mass = channel_mass(attr)
        return {
            "idx": idx, "notes": r["notes"], "mass": mass,
            "groups": target if self.n_outputs > 1 else np.full(len(idx), -1),
            "display": display.astype(np.float16), "small": downsample(mass, MAX_SIDE),
            "small_display": downsample(display, MAX_SIDE), "abs_mass": abs_mass, "signed_mass": signed_mass,
            "pred": r["pred"], "target": target, "conf": r["conf"], "rel": r["rel"], "steps": r["steps"],
            "thumbs": r["thumbs"],
        }  # fmt: skip

    def store(self, rec: dict) -> None:
        """Put one reduced batch into the per-image arrays, the mean maps and the gallery candidates."""
        idx = rec["idx"]
        self._engine_notes += rec["notes"]
        self.acc.add(rec["mass"], rec["groups"])
        sl = slice(idx[0], idx[0] + len(idx))
        self.heatmaps[sl] = rec["display"]
        self.small_maps[sl] = rec["small"]
        self.abs_mass[sl], self.signed_mass[sl] = rec["abs_mass"], rec["signed_mass"]
        self.predicted[sl], self.target[sl], self.confidence[sl] = rec["pred"], rec["target"], rec["conf"]
        self.rel[sl], self.steps[sl] = rec["rel"], rec["steps"]
        self._keep_gallery(idx, rec["conf"], rec["thumbs"], rec["small_display"])
