"""Images (a folder of class sub-folders, or a CSV of image paths): the image modality.

1. open: find the images (:mod:`audit.io.images`) and load the model (:func:`audit.io.model.load_model`); the
   model's first convolution decides the channel count; the input size comes from the options, or from the
   images and the model (:func:`audit.io.images.choose_size`, noted); probe one image so a size or channel
   mismatch is one clear line; ``--baseline mean`` only: one pass for the data set's mean image;
2. blocks are batches of images: class probabilities, the explained class (predicted, or ``--class K`` or a class
   name), the baseline (:mod:`audit.attribution.image_baselines`), native IG for all path points of all images
   of a batch under the memory budget; merged into per-image heatmaps, mass-normalised maps for the mean maps and the
   detector, per-channel attribution and the gallery candidates;
3. finish: convergence, channel ranking with bootstrap intervals, the Captum cross-check on a few images, and the
   inputs of ``spatial_leakage``: its candidate regions, each occluded on a sample of images
   (:mod:`audit.modalities.image_occlusion`); the record carries the gallery, and the output sink receives the
   per-image arrays (heatmaps at input resolution, predictions) to save as ``heatmaps.npz``.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audit.analysis.convergence import summarize_convergence
from audit.analysis.heatmaps import MAX_SIDE, MapAccumulator, channel_shares, clip_normalize, downsample
from audit.analysis.ranking import global_ranking
from audit.attribution.base import batched_forward
from audit.attribution.crosscheck import crosscheck
from audit.attribution.image_baselines import IMAGE_BASELINES, make_image_baseline
from audit.attribution.native import integrated_gradients
from audit.attribution.settings import EngineSettings
from audit.config import AuditConfig
from audit.errors import DataError, ModelLoadError, UsageError
from audit.findings import FindingsInput
from audit.findings.spatial import candidate_regions
from audit.io.images import (
    choose_size,
    discover_images,
    image_set_sha256,
    load_batch,
    output_size,
    parse_normalize,
)
from audit.io.model import load_model
from audit.modalities.base import Modality, OutputSink, ProgressFn, Summary, explained_label, fixed_class
from audit.modalities.image_occlusion import ImageOcclusion
from audit.modalities.image_options import PATH_COLUMNS, check_tabular_only_options, claims, named_class
from audit.modalities.image_units import ImageUnits
from audit.provenance import make_provenance
from audit.results import (
    SCHEMA_VERSION,
    AuditRun,
    Crosscheck,
    FeatureStat,
    Finding,
    ImageItem,
    ImageSummary,
    Provenance,
    verdict_from_findings,
)

__all__ = ["ImageModality", "PATH_COLUMNS", "BATCH_IMAGES", "NOISE_DRAWS", "CROSSCHECK_IMAGES"]

BATCH_IMAGES = 32  # images read and preprocessed at a time; the IG engine chunks them further by memory
NOISE_DRAWS = 4  # noise baselines averaged per image
CROSSCHECK_IMAGES = 4  # Captum is slow on images: at most this many images are cross-checked
_CHANNEL_NAMES = {1: ("gray",), 3: ("R", "G", "B"), 4: ("R", "G", "B", "A")}


class ImageModality(ImageUnits, ImageOcclusion, Modality):
    """One image audit; each stage is a method, sharing state on the instance."""

    kind = "image"

    @classmethod
    def claims(cls, data: Path) -> bool | None:
        """A folder is an image set; a CSV of image paths too (:func:`audit.modalities.image_options.claims`)."""
        return claims(data)

    def __init__(self, config: AuditConfig, progress: ProgressFn | None = None, model: Any = None) -> None:
        super().__init__(config, progress, model)
        self.started = time.perf_counter()
        check_tabular_only_options(config)
        kind = config.baseline or "black"
        if kind not in IMAGE_BASELINES:
            raise UsageError(
                f"--baseline '{config.baseline}' does not apply to images; use one of {', '.join(IMAGE_BASELINES)}"
            )
        self.kind = kind
        ci = config.class_index
        named = ci is not None and ci != "all" and not ci.lstrip("+-").isdigit()  # --class coffee: resolved in open
        self.fixed_class = None if named else fixed_class(config, "images")

    # --- stages -----------------------------------------------------------------------------------------

    def open(self) -> None:
        cfg = self.cfg
        self.images = discover_images(cfg.data, cfg.labels)
        self.notes += self.images.notes
        self.loaded = self.given_model or load_model(
            cfg.model, arch=cfg.arch, trust_model=cfg.trust_model, device=cfg.device
        )
        self.notes += self.loaded.notes
        self.module = self.loaded.module
        self.channels = _model_channels(self.module)
        self.mean, self.std = parse_normalize(cfg.normalize, self.channels)
        self.size, self.resize_to, size_notes = choose_size(
            self.images, size=cfg.image_size, resize=cfg.resize, accepts=self._accepts
        )
        self.notes += size_notes
        self.hw = output_size(self.images, size=self.size, resize=self.resize_to)
        self.n_outputs = self._probe()
        self.class_names = self._class_names()
        self.fixed_class = named_class(cfg, self.class_names) if self.fixed_class is None else self.fixed_class
        self.dataset_mean = self._dataset_mean() if self.kind == "mean" else None
        self.engine = EngineSettings.from_config(cfg)
        self._allocate()

    def blocks(self) -> Iterator[tuple[int, list[int]]]:
        self.progress("attribution", 0, len(self.images))
        return self.blocks_plan()

    def blocks_plan(self) -> Iterator[tuple[int, list[int]]]:
        n = len(self.images)
        for b, start in enumerate(range(0, n, BATCH_IMAGES)):
            yield b, list(range(start, min(n, start + BATCH_IMAGES)))

    def attribute(self, block: tuple[int, list[int]]) -> dict:
        b, idx = block
        x, thumbs = self._load(idx)  # x: (m, C, H, W)
        probs, pred, conf = self._predict(x)
        target = pred if self.fixed_class is None else np.full(len(idx), self.fixed_class)
        attr, rel, steps, notes = self._ig(x, target, seed=self.cfg.seed * 1_000_003 + b)
        return {"idx": idx, "thumbs": thumbs, "pred": pred, "conf": conf, "target": target, "attr": attr,
                "rel": rel, "steps": steps, "notes": notes}  # fmt: skip

    def merge(self, r: dict, sink: OutputSink | None) -> None:
        rec = self.reduce(r)
        if getattr(self, "_records", None) is not None:  # on a worker (audit.modalities.image_units)
            self._records.append(rec)
            return
        self.store(rec)
        self.progress("attribution", r["idx"][0] + len(r["idx"]), len(self.images))

    def finish(self) -> Summary:
        cfg = self.cfg
        self.notes += list(dict.fromkeys(self._engine_notes))
        self.small_mean = downsample(self.acc.mean(), MAX_SIDE)  # (h, w)
        convergence = summarize_convergence(
            self.rel, self.steps, cfg.method, cfg.n_steps, cfg.thresholds.convergence_tol
        )
        features = self._channel_ranking()
        xc = self._crosscheck()
        candidates = candidate_regions(self.small_mean, self.small_maps, threshold=cfg.thresholds.spatial_share,
                                       groups=self.target, group_names=self.class_names)  # fmt: skip
        inp = FindingsInput(
            task="image_classification", stats=features, convergence=convergence, crosscheck=xc,
            spatial_mean_map=self.small_mean, spatial_maps=self.small_maps, spatial_groups=self.target,
            spatial_group_names=self.class_names, spatial_occlusion=self.occlusion(candidates),
        )  # fmt: skip
        return Summary(features, convergence, xc, inp)

    def record(self, summary: Summary, findings: tuple[Finding, ...], sink: OutputSink | None) -> AuditRun:
        if self.conversions:
            conv = ", ".join(f"{k} x{v}" for k, v in sorted(self.conversions.items()))
            self.notes.append(f"images were converted to the model's {self.channels} channel(s): {conv}")
        if self.images.labelled:
            acc = float(np.mean(self.predicted == np.asarray(self.images.labels)))
            self.notes.append(f"accuracy on the audited images: {acc:.1%} (labels from the {self.images.source})")
        run = AuditRun(
            schema_version=SCHEMA_VERSION,
            verdict=verdict_from_findings(findings),
            task="image_classification",
            features=summary.features,
            convergence=summary.convergence,
            crosscheck=summary.crosscheck,
            findings=findings,
            provenance=self._provenance(),
            n_rows=len(self.images),
            n_features=self.channels,
            explained_output=self._explained(),
            baseline=self.kind,
            images=self._summary(),
            notes=tuple(dict.fromkeys(self.notes)),
        )
        if sink is not None:
            sink.arrays({
                "heatmaps": self.heatmaps,
                "paths": np.asarray(self.images.names, dtype=str),
                "labels": np.asarray(self.images.labels, dtype=np.int64),
                "predicted": self.predicted,
                "target": self.target,
                "confidence": self.confidence.astype(np.float32),
                "rel_delta": self.rel.astype(np.float32),
                "channel_mass": self.abs_mass.astype(np.float32),
                "mean_map": self.acc.mean().astype(np.float32),
            })  # fmt: skip
        return run

    def _load(self, idx: list[int]) -> tuple[torch.Tensor, np.ndarray]:
        return load_batch(
            self.images, idx, size=self.size, resize=self.resize_to, normalize=self.cfg.normalize,
            channels=self.channels, conversions=self.conversions,
        )  # fmt: skip

    def _accepts(self, size: int | None, resize: int | None) -> bool:
        """Does the model run on one image preprocessed to ``size`` / ``resize``? False only on a shape error."""
        try:
            output_size(self.images, size=size, resize=resize, indices=[0])
            x, _ = load_batch(self.images, [0], size=size, resize=resize, normalize=self.cfg.normalize,
                              channels=self.channels)  # fmt: skip
            self._forward(x)
        except DataError:
            return False
        except Exception as e:  # a model can raise anything: only a size or shape complaint means "not this size"
            return not _shape_error(e)
        return True

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The model's outputs for a batch, (m, k) on the CPU; halves the batch when memory runs out."""

        def halved(_old: int, new: int) -> None:
            self.notes.append(f"memory ran out predicting {2 * new} images at once; went on {new} at a time")

        return batched_forward(self.module, x, batch=x.shape[0], device=self.cfg.device, on_oom=halved).float()

    def _probe(self) -> int:
        """Run one image through the model; return its number of outputs (1 = one score)."""
        self.conversions: Counter = Counter()
        x, _ = self._load([0])
        h, w = self.hw
        try:
            out = self._forward(x)
        except Exception as e:  # a model can raise anything; classify it for the reader
            reason = " ".join(str(e).split())[:200] or type(e).__name__
            if _shape_error(e):
                raise DataError(
                    f"the model does not accept {self.channels}x{h}x{w} images (it raised: {reason}); set "
                    "--image-size/--resize to the size it was trained on"
                ) from e
            raise ModelLoadError(f"the model failed on one {self.channels}x{h}x{w} image ({reason})") from e
        if out.dim() == 1 and out.shape[0] == 1:
            return 1
        if out.dim() != 2 or out.shape[0] != 1:
            raise ModelLoadError(
                f"the model returns shape {tuple(out.shape)} for one image; audit needs (images, classes) "
                "logits: wrap it so it returns them"
            )
        k = int(out.shape[1])
        if self.fixed_class is not None and not 0 <= self.fixed_class < max(k, 2):
            raise UsageError(f"--class {self.fixed_class} is out of range for a model with {k} outputs; use 0..{k - 1}")
        return k

    def _class_names(self) -> tuple[str, ...]:
        k = max(self.n_outputs, 2)
        given = self.images.classes
        labels = np.asarray(self.images.labels)
        if self.images.labelled and labels.max(initial=-1) >= k:
            bad = int(labels.max())
            raise DataError(
                f"the data has class {bad} ('{given[bad]}') but the model has {self.n_outputs} output(s); check "
                "that the class folders or labels match the classes the model was trained on"
            )
        if self.cfg.class_names:
            if len(self.cfg.class_names) != k:
                raise UsageError(f"--class-names lists {len(self.cfg.class_names)} names for a model with {k} "
                                 "classes; pass one name per class, in output order")  # fmt: skip
            given = tuple(self.cfg.class_names)
        elif given and len(given) != k:
            self.notes.append(f"the data names {len(given)} classes, the model has {k} outputs")
        return tuple(given[i] if i < len(given) else f"class {i}" for i in range(k))

    def _dataset_mean(self) -> torch.Tensor:
        n = len(self.images)
        total = None
        for start in range(0, n, BATCH_IMAGES):
            x, _ = self._load(list(range(start, min(n, start + BATCH_IMAGES))))
            s = x.double().sum(dim=0)  # (C, H, W)
            total = s if total is None else total + s
            self.progress("mean image", min(n, start + BATCH_IMAGES), n)
        return (total / n).float()  # (C, H, W)

    def _allocate(self) -> None:
        """The per-image arrays and accumulators the blocks fill."""
        n = len(self.images)
        h, w = self.hw
        self.conversions = Counter()
        self.acc = MapAccumulator((h, w), len(self.class_names))
        self.heatmaps = np.zeros((n, h, w), dtype=np.float16)
        sh, sw = downsample(np.zeros((h, w)), MAX_SIDE).shape
        self.small_maps = np.zeros((n, sh, sw), dtype=np.float32)
        self.abs_mass = np.zeros((n, self.channels))
        self.signed_mass = np.zeros((n, self.channels))
        self.predicted = np.zeros(n, dtype=np.int64)
        self.target = np.zeros(n, dtype=np.int64)
        self.confidence = np.zeros(n)
        self.rel = np.zeros(n)
        self.steps = np.zeros(n, dtype=np.int64)
        self.thumbs: dict[int, np.ndarray] = {}
        self.small_display: dict[int, np.ndarray] = {}
        self._engine_notes: list[str] = []

    def _predict(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        out = self._forward(x)  # (m, k) or (m,) / (m, 1)
        if self.n_outputs == 1:
            p1 = torch.sigmoid(out.reshape(-1))  # (m,)
            probs = torch.stack([1 - p1, p1], dim=1)  # (m, 2)
        else:
            probs = torch.softmax(out, dim=1)  # (m, k)
        conf, pred = probs.max(dim=1)
        return probs.numpy(), pred.numpy().astype(np.int64), conf.numpy().astype(np.float64)

    def _ig(
        self, x: torch.Tensor, target: np.ndarray, *, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
        """IG of one batch averaged over the baseline draws; returns attributions (m, C, H, W), rel_delta (m,),
        steps (m,) and the engine's notes."""
        m = x.shape[0]
        draws = make_image_baseline(
            self.kind, x, mean=self.mean, std=self.std, n_draws=NOISE_DRAWS, seed=seed,
            dataset_mean=self.dataset_mean,
        )  # (D, m or 1, C, H, W)
        d = draws.shape[0]
        x_rep = x.repeat(d, 1, 1, 1) if d > 1 else x  # (D * m, C, H, W)
        base = draws.expand(d, m, *x.shape[1:]).reshape(d * m, *x.shape[1:]) if d > 1 else draws[0]
        tgt = None if self.n_outputs == 1 else torch.as_tensor(np.tile(target, d), dtype=torch.long)
        res = integrated_gradients(self.module, x_rep, baselines=base, target=tgt, **self.engine.kwargs())
        attr = res.attributions.reshape(d, m, *x.shape[1:]).mean(dim=0).double()  # (m, C, H, W)
        fx = res.f_x.reshape(d, m)[0].double()  # (m,)
        fb = res.f_baseline.reshape(d, m).mean(dim=0).double()  # (m,)
        delta = attr.sum(dim=(1, 2, 3)) - (fx - fb)
        floor = 1e-6 * (1.0 + torch.maximum(fx.abs(), fb.abs()))
        rel = delta.abs() / torch.maximum((fx - fb).abs(), floor)  # as the engine's rel_delta
        steps = res.steps.reshape(d, m).max(dim=0).values
        return attr.numpy(), rel.numpy(), steps.numpy(), list(res.notes)

    def _keep_gallery(self, idx: list[int], conf: np.ndarray, thumbs: np.ndarray, small: np.ndarray) -> None:
        for k, i in enumerate(idx):
            self.thumbs[i] = thumbs[k]
            self.small_display[i] = small[k].astype(np.float32)
        g = max(int(self.cfg.gallery), 0)
        done = np.asarray(sorted(self.thumbs), dtype=np.int64)
        keep = set(self._ranked(done, g, most=True)) | set(self._ranked(done, g, most=False))
        for i in [i for i in self.thumbs if i not in keep]:
            del self.thumbs[i]
            del self.small_display[i]

    def _ranked(self, candidates: np.ndarray, g: int, *, most: bool) -> list[int]:
        if g == 0 or candidates.size == 0:
            return []
        c = self.confidence[candidates]
        order = np.lexsort((candidates, -c if most else c))  # ties: earlier image first
        return [int(i) for i in candidates[order[:g]]]

    def _item(self, i: int) -> ImageItem:
        label = self.images.labels[i]
        return ImageItem(
            path=self.images.names[i],
            label=self.class_names[label] if label >= 0 else "",
            predicted=self.class_names[int(self.predicted[i])],
            confidence=float(self.confidence[i]),
            target_class=self.class_names[int(self.target[i])] if self.n_outputs > 1 else "output 0",
            thumbnail=tuple(tuple(tuple(int(v) for v in px) for px in row) for row in self.thumbs[i]),
            heatmap=_grid(self.small_display[i]),
            rel_delta=float(self.rel[i]),
        )

    def _summary(self) -> ImageSummary:
        g = max(int(self.cfg.gallery), 0)
        every = np.arange(len(self.images), dtype=np.int64)
        most = [self._item(i) for i in self._ranked(every, g, most=True)]
        least = [self._item(i) for i in self._ranked(every, g, most=False)]
        class_maps = {
            self.class_names[k]: _grid(clip_normalize(downsample(v, MAX_SIDE)))
            for k, v in sorted(self.acc.group_means().items())
        }
        return ImageSummary(
            image_size=self.hw,
            n_images=len(self.images),
            classes=self.class_names,
            mean_map=_grid(clip_normalize(self.small_mean)),
            class_maps=class_maps,
            channel_share=channel_shares(self.abs_mass, _CHANNEL_NAMES[self.channels]),
            most_confident=tuple(most),
            least_confident=tuple(least),
            baseline=self.kind,
        )

    def _channel_ranking(self) -> tuple[FeatureStat, ...]:
        """Channels ranked by mean |attribution| per image (bootstrap intervals over images); ``mean`` and
        ``std`` are those of the signed per-image channel sum."""
        names = _CHANNEL_NAMES[self.channels]
        stats = global_ranking(self.abs_mass, names, n_boot=self.cfg.n_boot, seed=self.cfg.seed)
        col = {c: j for j, c in enumerate(names)}
        signed = self.signed_mass  # (n, C)
        return tuple(
            dataclasses.replace(s, mean=float(signed[:, col[s.name]].mean()), std=float(signed[:, col[s.name]].std()))
            for s in stats
        )

    def _crosscheck(self) -> Crosscheck:
        """Native vs Captum on a seeded sample of at most :data:`CROSSCHECK_IMAGES` images, against one baseline
        draw (the engines are compared on the same integral; averaging draws adds nothing to that)."""
        cfg = self.cfg
        if cfg.crosscheck_rows == 0:
            return Crosscheck(0, None, None, None, None, method=cfg.method, skipped_reason="--crosscheck-rows 0")
        n = len(self.images)
        want = n if cfg.crosscheck_rows == "all" else int(cfg.crosscheck_rows)
        k = min(want, n, CROSSCHECK_IMAGES)
        if k < min(want, n):
            self.notes.append(f"the Captum cross-check ran on {k} images (Captum is slow on images)")
        steps = int(self.steps.max()) if cfg.n_steps == "auto" else int(cfg.n_steps)
        idx = sorted(np.random.default_rng(cfg.seed).choice(n, size=k, replace=False).tolist())
        x, _ = self._load(idx)  # (k, C, H, W)
        base = make_image_baseline(
            self.kind, x, mean=self.mean, std=self.std, n_draws=1, seed=cfg.seed, dataset_mean=self.dataset_mean
        )[0]  # (k or 1, C, H, W)
        target = None if self.n_outputs == 1 else torch.as_tensor(self.target[idx], dtype=torch.long)
        self.progress("cross-check", 0, k)
        # at the largest step count any image used, so every image is compared at a converged count
        native = integrated_gradients(
            self.module, x, baselines=base, target=target, **self.engine.replace(n_steps=steps).kwargs()
        )
        out = crosscheck(
            self.module, x, native=native, baselines=base, target=target, tol_abs=cfg.thresholds.crosscheck_abs,
            tol_rel=cfg.thresholds.crosscheck_rel, rows="all", seed=cfg.seed,
        )  # fmt: skip
        self.progress("cross-check", k, k)
        return out

    def _explained(self) -> str:
        return explained_label(self.n_outputs, self.fixed_class, self.class_names)

    def _provenance(self) -> Provenance:
        return make_provenance(self.cfg, self.loaded, image_set_sha256(self.images), self.started)


def _shape_error(e: BaseException) -> bool:
    """Does the model's exception complain about the input's size or shape?"""
    words = ("size", "shape", "channel", "mat1", "dimension", "expected input")
    return any(w in str(e).lower() for w in words)


def _model_channels(module: torch.nn.Module) -> int:
    """Input channels of the model's first 2-D convolution (3 when none is found, e.g. an exported graph)."""
    for sub in module.modules():
        if isinstance(sub, torch.nn.Conv2d):
            return int(sub.in_channels)
        if isinstance(sub, torch.jit.ScriptModule) and sub.original_name == "Conv2d":
            try:
                return int(sub.in_channels)
            except (AttributeError, RuntimeError):
                weight = getattr(sub, "weight", None)
                if isinstance(weight, torch.Tensor) and weight.dim() == 4:
                    return int(weight.shape[1])
    return 3


def _grid(a: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(round(float(v), 4) for v in row) for row in np.asarray(a))

