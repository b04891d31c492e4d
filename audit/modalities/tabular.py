"""Tables (CSV, TSV, Parquet): the tabular modality.

1. open: inspect the file's header and load the model (safe forms only unless ``trust_model``), check they fit,
   the baseline row (zero, data mean or median -- one streaming pass -- or a one-row CSV), the task (from the
   first rows' outputs and labels) and the completeness floor;
2. blocks are chunks of rows read from the file; each is attributed by the native engine (the explained output
   per row: the predicted class of a classifier unless ``--class``), and merged: per-row attributions to the
   output sink, exact streaming column sums, a bounded uniform sample of rows for the analyses;
3. finish: the Captum cross-check on a sample of rows, the global ranking with bootstrap intervals, the evidence
   of :mod:`audit.modalities.tabular_evidence` (leakage scores, neutralisation, slices, drift).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audit import probes
from audit.analysis.accumulate import BlockAccumulators
from audit.analysis.groups import Units, find_groups, group_ranking, parse_group_option
from audit.analysis.ranking import global_ranking
from audit.analysis.streaming import ColumnStats
from audit.analysis.task import TaskInfo, resolve_task
from audit.attribution.crosscheck import crosscheck, sample_rows
from audit.attribution.embedded import find_category_inputs
from audit.attribution.native import IGResult
from audit.attribution.settings import EngineSettings
from audit.config import AuditConfig
from audit.errors import DataError, UsageError
from audit.findings import FindingsInput
from audit.io.model import load_model
from audit.io.tabular import (
    Chunk,
    TableUnit,
    inspect_source,
    is_table_source,
    iter_source,
    plan_units,
    read_baseline_row,
    read_unit,
)
from audit.modalities.base import Modality, OutputSink, ProgressFn, Summary
from audit.modalities.tabular_evidence import TabularEvidence
from audit.provenance import make_provenance
from audit.results import (
    SCHEMA_VERSION,
    AuditRun,
    Crosscheck,
    FeatureStat,
    Finding,
    verdict_from_findings,
)

__all__ = ["TabularModality"]

class TabularModality(TabularEvidence, Modality):
    """One tabular audit; each stage is a method, sharing state on the instance."""

    kind = "tabular"

    def __init__(self, config: AuditConfig, progress: ProgressFn | None = None, model: Any = None) -> None:
        super().__init__(config, progress, model)
        self.started = time.perf_counter()
        self.rng_seed = int(config.seed)

    @classmethod
    def claims(cls, data: Path) -> bool | None:
        return is_table_source(data)  # a table file, a folder of part files or a glob of them

    # --- stages -----------------------------------------------------------------------------------------

    def open(self) -> None:
        cfg = self.cfg
        self.source = inspect_source(
            cfg.data, target_col=cfg.target_col, drop=cfg.drop, slice_col=cfg.slice_col, sep=cfg.sep
        )
        self.spec = spec = self.source.spec
        self.notes.extend(spec.notes)
        self.names = list(spec.features)
        self.declared = self._declared_noise()
        self.declared_groups = parse_group_option(cfg.groups)
        find_groups(np.zeros((0, len(self.names))), self.names, self.declared_groups)  # bad globs fail before work
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
        self.model = self.given_model or load_model(
            cfg.model, arch=cfg.arch, trust_model=cfg.trust_model, device=cfg.device
        )
        self.notes.extend(self.model.notes)
        self.n_outputs = self._fit_inputs()  # a --slice-col the model takes as an input stays a feature
        self.baseline = self._baseline_row()
        self._chunks = iter_source(self.source, cfg.chunk_rows)
        first = next(self._chunks, None)
        if first is None:
            raise DataError(f"'{self.cfg.data}' has a header but no rows; pass a file with data rows")
        self._first = first
        self.info = self._resolve_task(first)
        self.task = self.info.name
        self._check_class_option()
        self._check_class_names()
        self.explained = _explained_module(self.model.module, self.info, cfg.class_index)
        self._find_categories(first.X)
        self.delta_floor = self._delta_floor(first)
        self.engine = EngineSettings.from_config(cfg, delta_floor=self.delta_floor)
        F = len(self.names)
        # mergeable, and the same whatever the block order: the seam a distributed executor uses
        self.acc = BlockAccumulators(F, cfg.analysis_rows, self.rng_seed, tolerance=cfg.thresholds.convergence_tol)
        self.independent = True

    def blocks(self) -> Iterator[Chunk]:
        self.progress("attribution", 0, None)
        return itertools.chain([self._first], self._chunks)

    def attribute(self, block: Chunk) -> tuple[Chunk, torch.Tensor | None, IGResult]:
        X = torch.from_numpy(block.X)  # (n, F)
        target = self._targets(X)
        res = self._ig(
            self.explained, X, target,
            progress=lambda done, _tot, off=block.row_offset: self.progress("attribution", off + done, None),
        )[0]
        return block, target, res

    def merge(self, result: tuple[Chunk, torch.Tensor | None, IGResult], sink: OutputSink | None) -> None:
        chunk, target, res = result
        self.notes.extend(res.notes)
        self.independent = self.independent and res.batch_independent
        A = res.attributions.numpy().astype(np.float32)  # (n, F)
        rel = res.rel_delta.numpy().astype(np.float32)  # (n,)
        n = chunk.X.shape[0]
        cls = np.full(n, -1, dtype=np.int64) if target is None else target.numpy().astype(np.int64)
        fx = res.f_x.numpy().astype(np.float64)
        arrays = {"X": chunk.X, "cls": cls, "fx": fx}
        if chunk.y is not None:
            arrays["y"] = chunk.y
        if chunk.slice_values is not None:
            arrays["slice"] = np.asarray(chunk.slice_values).astype(str)
        row_ids = chunk.row_offset + np.arange(n, dtype=np.int64)  # the file row: the sample's hash key
        self.acc.add_block(row_ids, A, rel, res.steps.numpy(), outputs=fx, **arrays)
        if sink is not None:
            sink.rows(chunk.row_offset, self.names, A, rel)

    # --- the work protocol of distributed executors (audit.modalities.base) ------------------------------

    def units(self, workers: int = 1) -> list[TableUnit]:
        """The local blocks as row ranges (``chunk_rows`` rows from the start of each part): the same cut gives the
        same floats."""
        return plan_units(self.source, self.cfg.chunk_rows)

    def unit_size(self, unit: TableUnit) -> int | None:
        return unit.n_rows

    def worker_state(self) -> dict[str, Any]:
        keep = ("cfg", "source", "spec", "names", "declared", "n_outputs", "baseline", "baseline_label", "info",
                "task", "delta_floor", "engine", "rng_seed", "categories", "category_baseline", "declared_groups")
        return {**{k: getattr(self, k) for k in keep}, "model": self.worker_model()}

    @classmethod
    def from_worker_state(cls, state: dict[str, Any]) -> TabularModality:
        self = cls(state["cfg"])
        for k, v in state.items():
            if k not in ("cfg", "model"):
                setattr(self, k, v)
        self.model = state["model"] or self.load_model()
        self.explained = _explained_module(self.model.module, self.info, self.cfg.class_index)
        self._fresh()
        return self

    def unit_blocks(self, unit: TableUnit) -> Iterator[Chunk]:
        return read_unit(self.source, unit, self.cfg.chunk_rows)

    def partial(self) -> dict[str, Any]:
        first = int(self.acc.sample.row_ids.min()) if len(self.acc.sample) else -1
        out = {"acc": self.acc, "notes": self.notes, "independent": self.independent, "first_row": first}
        self._fresh()
        return out

    def absorb(self, partial: dict[str, Any]) -> None:
        self.acc = self.acc.merge(partial["acc"])
        self.independent = self.independent and partial["independent"]
        # the engine's notes in data order, as the local loop adds them, whatever order the units come back in
        if not hasattr(self, "_unit_notes"):
            self._open_notes, self._unit_notes = list(self.notes), []
        self._unit_notes.append((partial["first_row"], partial["notes"]))
        self.notes = self._open_notes + [n for _, notes in sorted(self._unit_notes) for n in notes]

    def _fresh(self) -> None:
        cfg = self.cfg
        self.acc = BlockAccumulators(len(self.names), cfg.analysis_rows, self.rng_seed,
                                     tolerance=cfg.thresholds.convergence_tol)  # fmt: skip
        self.notes = []
        self.independent = True

    @property
    def sample(self):
        """The uniform row sample (:class:`audit.analysis.accumulate.RowSample`) the analyses read."""
        return self.acc.sample

    @property
    def n_rows(self) -> int:
        return self.acc.n_rows

    def finish(self) -> Summary:
        cfg = self.cfg
        if not self.sample.complete:
            self.notes.append(
                f"bootstrap intervals, findings and the cross-check use a uniform sample of {self.sample.capacity:,} "
                f"of the {self.n_rows:,} rows; means and shares are exact over all rows, and so are the counts of "
                "rows above the completeness tolerance (its median and p95 come from the sample)"
            )
        xc = self._crosscheck()
        self.step("bootstrap intervals")
        stats = self._ranking()
        self.groups = find_groups(self.sample.get("X"), self.names, self.declared_groups)
        self.units = Units(self.names, self.groups)
        unit_stats = group_ranking(self.sample.get("A"), self.units, n_boot=cfg.n_boot, seed=cfg.seed) if (
            self.groups) else ()
        extra = self._model_evidence(stats)
        slices = self._slices(stats)
        drift_stats, n_ref_rows = self._drift(stats)
        conv = self.acc.convergence(cfg.method, cfg.n_steps)
        sensitivity, cause = self._baseline_checks(conv)
        inp = FindingsInput(
            names=tuple(self.names),
            stats=stats,
            task=self.task,
            declared_noise=tuple(self.declared),
            univariate=extra["univariate"],
            univariate_low=extra["univariate_low"],
            univariate_reverse=extra["univariate_reverse"],
            separation=extra["separation"],
            separation_low=extra["separation_low"],
            unit_stats=unit_stats,
            unit_names=self.units.names if self.groups else (),
            identifier=extra["identifier"],
            neutralisation=extra["neutralisation"],
            baseline_output=extra["baseline_output"],
            output_mean=extra["output_mean"],
            output_std=extra["output_std"],
            convergence=conv,
            crosscheck=xc,
            slices=slices,
            drift=drift_stats,
            n_rows=self.n_rows,
            n_ref_rows=n_ref_rows,
            class_names=tuple(cfg.class_names),
            class_counts=self._class_counts(),
            baseline_sensitivity=sensitivity,
            convergence_cause=cause,
        )
        return Summary(stats, conv, xc, inp, {"slices": slices, "drift": drift_stats, "groups": unit_stats,
                                              "sensitivity": sensitivity})

    def record(self, summary: Summary, findings: tuple[Finding, ...], sink: OutputSink | None) -> AuditRun:
        cfg = self.cfg
        stats = summary.features
        signed, signed_class = self._signed(stats)
        return AuditRun(
            schema_version=SCHEMA_VERSION,
            verdict=verdict_from_findings(findings),
            task=self.task,
            features=stats,
            convergence=summary.convergence,
            crosscheck=summary.crosscheck,
            findings=findings,
            provenance=make_provenance(cfg, self.model, self.spec.sha256, self.started),
            n_rows=self.n_rows,
            n_features=len(self.names),
            target_col=",".join(self.spec.targets),
            explained_output=self._explained_label(),
            baseline=self.baseline_label,
            class_features=self._class_features(),
            signed=signed,
            expected=self._expected(),
            slices=summary.extra["slices"],
            drift=summary.extra["drift"],
            declared_noise=tuple(self.declared),
            notes=tuple(dict.fromkeys(self.notes)),
            task_reason=self.info.reason,
            class_names=tuple(cfg.class_names),
            signed_class=signed_class,
            groups=self.groups,
            group_features=summary.extra["groups"],
            baseline_default=cfg.baseline is None,
            baseline_sensitivity=summary.extra["sensitivity"],
        )

    # --- helpers of the stages ------------------------------------------------------------------------

    def _declared_noise(self) -> list[str]:
        out: list[str] = []
        for pattern in self.cfg.noise_features:
            hits = [n for n in self.names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise UsageError(
                    f"--noise-features '{pattern}' matches no feature column (features start with "
                    f"{', '.join(self.names[:3])}); fix the pattern"
                )
            out.extend(h for h in hits if h not in out)
        return out

    def _resolve_task(self, first) -> TaskInfo:
        """The task, from the model's outputs and the labels of the first chunk of rows."""
        X = first.X[:4096]
        out = probes.predict(self.model.module, X, device=self.cfg.device)
        y = None if first.y is None else first.y[:4096]
        return resolve_task(
            self.cfg.task, self.n_outputs, out, y, target_col=",".join(self.spec.targets) or "target"
        )

    def _check_class_option(self) -> None:
        ci = self.cfg.class_index
        single = self.n_outputs == 1
        if ci is None or ci == "all":
            if ci == "all" and single:
                raise UsageError("--class all needs a model with one output per class; this model has one output")
            return
        try:
            k = int(ci)
        except ValueError:
            raise UsageError(f"--class must be a class index or 'all', got '{ci}'") from None
        if single and k != 0:
            what = "a single-output binary classifier explains its one output (the score of class 1)" if (
                self.task == "binary_classification") else "the model has a single output"
            raise UsageError(f"--class {k}: {what}; drop --class")
        if not 0 <= k < self.n_outputs:
            raise UsageError(
                f"--class {k} is out of range for a model with {self.n_outputs} outputs (0..{self.n_outputs - 1})"
            )

    def _check_class_names(self) -> None:
        names = self.cfg.class_names
        if not names:
            return
        want = 2 if self.task == "binary_classification" else self.n_outputs
        if not self.info.is_classifier:
            raise UsageError(f"--class-names applies to classifiers; this model is audited as {self.task}")
        if len(names) != want:
            raise UsageError(
                f"--class-names lists {len(names)} names for {want} classes; pass one name per class, in order"
            )

    def _delta_floor(self, first) -> float:
        """``convergence_floor`` times the median |F(x) - F(x')| of the explained output on the first rows."""
        X = first.X[:4096]
        target = self._targets(torch.from_numpy(X))  # the rows' explained outputs, for F(x) and F(x') alike
        module, Xt = self.explained, torch.from_numpy(X)
        base = torch.as_tensor(self.baseline).reshape(1, -1).repeat(X.shape[0], 1)  # (n, F)
        if self.categories is not None:  # F(x') with the baseline's embedding vectors
            Xt, base = self.categories.expand(module, Xt, base[0], self.category_baseline)
            module = self.categories.wrap(module)
        fx = _explained_values(module, Xt.numpy(), target, self.cfg.device)
        fb = _explained_values(module, base.numpy(), target, self.cfg.device)
        typical = float(np.median(np.abs(fx - fb)))
        return self.cfg.thresholds.convergence_floor * typical

    def _find_categories(self, X: np.ndarray) -> None:
        """Category columns the model looks up in ``nn.Embedding`` layers, explained in embedding space."""
        self.categories = find_category_inputs(self.model.module, X, self.names)
        self.category_baseline = None
        if self.categories is not None:
            kind = (self.cfg.baseline or "mean") if self.cfg.baseline in (None, "zero", "mean") else "row"
            self.category_baseline = self.categories.baseline_vectors(self.model.module, kind, X[:4096], self.baseline)
            cols = ", ".join(f"'{self.names[j]}'" for j in self.categories.columns)
            self.notes.append(
                f"category column(s) {cols} feed nn.Embedding layers: attributed in embedding space (the ids held at "
                "each row's values, the path through the embedding vectors; a column's attribution is the sum over "
                f"its vector), baseline vectors: {'zero' if kind == 'zero' else kind}"
            )

    def _baseline_row(self) -> np.ndarray:
        """The baseline row (F,): the data mean by default (inside the data: IG of a linear model against it is
        exactly ``w_j (x_j - E x_j)``), or zero, the median, a one-row CSV."""
        kind = self.cfg.baseline or "mean"
        F = len(self.names)
        if kind == "zero":
            self.baseline_label = "zero"
            return np.zeros(F, dtype=np.float32)
        if kind in ("mean", "median"):
            stats = ColumnStats(F, seed=self.rng_seed)
            for chunk in iter_source(self.source, self.cfg.chunk_rows):
                stats.add(chunk.X)
                self.progress("baseline", stats.n, None)
            self.baseline_label = f"data {kind}"
            row = stats.mean() if kind == "mean" else stats.median()
            if kind == "median" and stats.n > 100_000:
                self.notes.append("the median baseline was estimated from a uniform sample of 100,000 rows")
            return row.astype(np.float32)
        if kind in ("black", "blur", "noise"):
            raise UsageError(f"--baseline {kind} is for image data; use zero, mean, median or a one-row CSV")
        path = Path(kind)
        if not path.is_file():
            raise UsageError(
                f"--baseline '{kind}' is neither zero, mean, median nor an existing one-row CSV file; pass one of those"
            )
        self.baseline_label = f"row from {path.name}"
        return read_baseline_row(path, self.names).astype(np.float32)

    def _targets(self, X: torch.Tensor) -> torch.Tensor | None:
        """The output each row explains: None for single-output models (and the multi-output mean)."""
        if self.task != "classification":
            return None
        ci = self.cfg.class_index
        if ci is not None and ci != "all":
            return torch.full((X.shape[0],), int(ci), dtype=torch.long)
        out = probes.predict(self.model.module, X.numpy(), device=self.cfg.device)
        return torch.from_numpy(np.asarray(out).reshape(X.shape[0], -1).argmax(1))

    def _ranking(self) -> tuple[FeatureStat, ...]:
        A = self.sample.get("A")
        stats = global_ranking(A, self.names, n_boot=self.cfg.n_boot, seed=self.cfg.seed)
        if self.sample.complete:
            return stats
        # exact point estimates over all rows; intervals stay those of the sample (wider, so conservative)
        m = self.acc.moments
        mean_abs, mean, std = m.mean_abs(), m.mean(), m.std()
        share = mean_abs / max(mean_abs.sum(), 1e-300)
        by_name = {s.name: s for s in stats}
        order = np.lexsort((np.arange(len(self.names)), -mean_abs))
        out = []
        for rank, j in enumerate(order, start=1):
            s = by_name[self.names[j]]
            out.append(dataclasses.replace(
                s, rank=rank, mean_abs=float(mean_abs[j]), mean=float(mean[j]), std=float(std[j]),
                share=float(share[j]),
            ))
        return tuple(out)

    def _crosscheck(self) -> Crosscheck:
        cfg = self.cfg
        k = cfg.crosscheck_rows
        if k == 0:
            return Crosscheck(0, None, None, None, None, method=cfg.method, skipped_reason="--crosscheck-rows 0")
        X_all = self.sample.get("X")
        idx = sample_rows(X_all.shape[0], k, cfg.seed)
        X = torch.from_numpy(X_all[idx])
        cls = self.sample.get("cls")[idx]
        target = None if self.task != "classification" else torch.as_tensor(cls, dtype=torch.long)
        self.progress("cross-check", 0, len(idx))
        # with n_steps="auto" each row is compared at the step count it needed; category columns in embedding
        # space are compared on the engine's own inputs (numbers and embedding vectors)
        native, X, base, module = self._ig(self.explained, X, target, collapse=False)
        names = self.names if self.categories is None else self.categories.names(self.names)
        out = crosscheck(
            module, X, native=native, baselines=base, target=target,
            tol_abs=cfg.thresholds.crosscheck_abs, tol_rel=cfg.thresholds.crosscheck_rel, feature_names=names,
        )
        self.progress("cross-check", len(idx), len(idx))
        return out


class _MeanOutput(torch.nn.Module):
    """A multi-output regressor seen as one output: the mean of its outputs, (n, k) -> (n,)."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out.reshape(out.shape[0], -1).mean(dim=1)


def _explained_module(module: torch.nn.Module, info: TaskInfo, class_index: str | None) -> torch.nn.Module:
    """The function IG explains: the model itself, or for a multi-output regressor without --class the mean of
    its outputs (with --class K the engine's target picks output K)."""
    if info.name == "multioutput_regression" and class_index in (None, "all"):
        return _MeanOutput(module).eval()
    if info.name == "multioutput_regression":
        return _SelectOutput(module, int(class_index)).eval()
    return module


class _SelectOutput(torch.nn.Module):
    """Output ``k`` of a multi-output model, (n, k) -> (n,)."""

    def __init__(self, module: torch.nn.Module, k: int) -> None:
        super().__init__()
        self.module = module
        self.k = k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out.reshape(out.shape[0], -1)[:, self.k]


def _explained_values(module: torch.nn.Module, X: np.ndarray, target: torch.Tensor | None, device: str) -> np.ndarray:
    """The explained output per row: (n,)."""
    out = np.asarray(probes.predict(module, X, device=device)).reshape(X.shape[0], -1)
    if target is None:
        return out[:, 0]
    return out[np.arange(X.shape[0]), target.numpy()]
