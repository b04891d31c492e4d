"""run_audit(config) -> AuditRun: orchestration only. No printing, no file writing beyond what the caller's
sink asks for; every number comes from the attribution, analysis and findings layers.

Tabular flow (images go to :mod:`audit.image_pipeline`):

1. inspect the data file and load the model (safe forms only unless ``trust_model``), check they fit;
2. the baseline row (zero, data mean or median -- one streaming pass -- or a one-row CSV);
3. stream the data in chunks: explained output per row, native IG, per-row attributions to the sink,
   exact streaming column sums, a bounded uniform sample of rows for the analyses;
4. the Captum cross-check on a sample of rows, global rankings with bootstrap intervals, model-side evidence
   (neutralised losses, the baseline's output), slices, reference drift;
5. the detectors turn all that into findings; the verdict is the worst severity.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from audit import probes
from audit.analysis.agreement import drift, slice_profiles
from audit.analysis.convergence import summarize_convergence
from audit.analysis.identifiers import identifier_like
from audit.analysis.neutralisation import NeutralisationStat, benefit_interval, correlated_groups
from audit.analysis.ranking import class_rankings, global_ranking
from audit.analysis.streaming import ColumnStats, Reservoir
from audit.analysis.task import TaskInfo, resolve_task
from audit.analysis.univariate import (
    target_explains,
    univariate_lower_bound,
    univariate_null_quantile,
    univariate_power,
)
from audit.attribution.crosscheck import crosscheck, sample_rows
from audit.attribution.native import integrated_gradients
from audit.config import AuditConfig
from audit.errors import DataError, UsageError
from audit.findings import FindingsInput, run_detectors
from audit.io.model import load_model, model_input_check
from audit.io.tabular import TableSpec, inspect_table, iter_chunks, read_baseline_row
from audit.provenance import make_provenance
from audit.results import (
    SCHEMA_VERSION,
    AuditRun,
    Crosscheck,
    ExpectedAttribution,
    FeatureStat,
    SignedSample,
    verdict_from_findings,
)

__all__ = ["run_audit", "ProgressFn", "SinkFn", "is_image_data"]

ProgressFn = Callable[[str, int, int | None], None]  # (stage, done, total or None)
SinkFn = Callable[[int, list[str], np.ndarray, np.ndarray], None]  # (row_offset, names, attr (n, F), rel_delta (n,))

# a CSV with one of these columns lists images (audit.io.images reads the same names)
_PATH_COLUMNS = ("path", "image", "file", "filename", "filepath")


def is_image_data(path: Path) -> bool:
    """A folder (ImageFolder layout) or a CSV with a ``path`` (or image/file/filename/filepath) column means an
    image audit."""
    if path.is_dir():
        return True
    if path.suffix.lower() == ".csv" and path.is_file():
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            header = [h.strip().strip('"').lower() for h in fh.readline().split(",")]
        return any(h in _PATH_COLUMNS for h in header)
    return False


def run_audit(
    config: AuditConfig,
    *,
    progress: ProgressFn | None = None,
    sink: SinkFn | None = None,
    save_arrays: Callable[[dict[str, np.ndarray]], None] | None = None,
) -> AuditRun:
    """Audit ``config.model`` on ``config.data``.

    Parameters
    ----------
    config : AuditConfig
    progress : callable(stage, done, total), optional
        Called as work advances; ``total`` is None when unknown (CSV row counts).
    sink : callable(row_offset, feature_names, attributions, rel_delta), optional
        Receives every chunk's per-row attributions, of shape (n, n_features), in file order.
    save_arrays : callable(arrays), optional
        Image audits: receives the per-image arrays (heatmaps at input resolution, predictions).

    Returns
    -------
    AuditRun
    """
    if is_image_data(Path(config.data)):
        from audit.image_pipeline import run_image_audit

        run, arrays = run_image_audit(config, progress=progress)
        if save_arrays is not None:
            save_arrays(arrays)
        return run
    return _Tabular(config, progress, sink).run()


class _Tabular:
    """One tabular audit. A class only to share state between the stages; each stage is a method."""

    def __init__(self, config: AuditConfig, progress: ProgressFn | None, sink: SinkFn | None) -> None:
        self.cfg = config
        self.progress = progress or (lambda stage, done, total, **_: None)
        # unit-free stages ("bootstrap intervals"): a progress object may show them (audit.cli._progress.Progress)
        self.step: Callable[[str], None] = getattr(progress, "step", lambda text: None)
        self.sink = sink
        self.notes: list[str] = []
        self.started = time.perf_counter()
        self.rng_seed = int(config.seed)

    # --- stages -----------------------------------------------------------------------------------------

    def run(self) -> AuditRun:
        cfg = self.cfg
        spec = inspect_table(cfg.data, target_col=cfg.target_col, drop=cfg.drop, slice_col=cfg.slice_col, sep=cfg.sep)
        self.spec = spec
        self.notes.extend(spec.notes)
        self.names = list(spec.features)
        declared = self._declared_noise()
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
        self.model = load_model(cfg.model, arch=cfg.arch, trust_model=cfg.trust_model, device=cfg.device)
        self.notes.extend(self.model.notes)
        self.n_outputs = model_input_check(self.model.module, len(self.names))
        self.baseline = self._baseline_row()
        chunks = iter_chunks(self.spec, cfg.chunk_rows)
        first = next(chunks, None)
        if first is None:
            raise DataError(f"'{self.cfg.data}' has a header but no rows; pass a file with data rows")
        self.info = self._resolve_task(first)
        self.task = self.info.name
        self._check_class_option()
        self._check_class_names()
        self.explained = _explained_module(self.model.module, self.info, cfg.class_index)
        self.delta_floor = self._delta_floor(first)

        self._stream(itertools.chain([first], chunks))
        xc = self._crosscheck()
        self.step("bootstrap intervals")
        stats = self._ranking()
        extra = self._model_evidence(stats)
        slices = self._slices(stats)
        drift_stats = self._drift(stats)
        conv = summarize_convergence(
            self.rel_delta, self.steps, cfg.method, cfg.n_steps, cfg.thresholds.convergence_tol
        )
        inp = FindingsInput(
            names=tuple(self.names),
            stats=stats,
            task=self.task,
            declared_noise=tuple(declared),
            univariate=extra["univariate"],
            univariate_low=extra["univariate_low"],
            univariate_reverse=extra["univariate_reverse"],
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
            n_ref_rows=self.n_ref_rows,
            class_names=tuple(cfg.class_names),
        )
        self.step("findings")
        findings = run_detectors(inp, cfg.thresholds)
        signed = self._signed(stats)
        return AuditRun(
            schema_version=SCHEMA_VERSION,
            verdict=verdict_from_findings(findings),
            task=self.task,
            features=stats,
            convergence=conv,
            crosscheck=xc,
            findings=findings,
            provenance=make_provenance(cfg, self.model, spec.sha256, self.started),
            n_rows=self.n_rows,
            n_features=len(self.names),
            target_col=",".join(spec.targets),
            explained_output=self._explained_label(),
            baseline=self.baseline_label,
            class_features=self._class_features(),
            signed=signed,
            expected=self._expected(),
            slices=slices,
            drift=drift_stats,
            declared_noise=tuple(declared),
            notes=tuple(dict.fromkeys(self.notes)),
            task_reason=self.info.reason,
            class_names=tuple(cfg.class_names),
            signed_class=self.signed_class,
        )

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
        fx = _explained_values(self.explained, X, self._targets(torch.from_numpy(X)), self.cfg.device)
        fb = _explained_values(
            self.explained, np.repeat(self.baseline[None, :], X.shape[0], 0), self._targets(torch.from_numpy(X)),
            self.cfg.device,
        )
        typical = float(np.median(np.abs(fx - fb)))
        return self.cfg.thresholds.convergence_floor * typical

    def _baseline_row(self) -> np.ndarray:
        kind = self.cfg.baseline or "zero"
        F = len(self.names)
        if kind == "zero":
            self.baseline_label = "zero"
            return np.zeros(F, dtype=np.float32)
        if kind in ("mean", "median"):
            stats = ColumnStats(F, seed=self.rng_seed)
            for chunk in iter_chunks(self.spec, self.cfg.chunk_rows):
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

    def _stream(self, chunks) -> None:
        cfg = self.cfg
        F = len(self.names)
        self.sample = Reservoir(cfg.analysis_rows, self.rng_seed)
        self.sum_abs = np.zeros(F)
        self.sum = np.zeros(F)
        self.sumsq = np.zeros(F)
        rel_parts, step_parts, fx_parts = [], [], []
        self.n_rows = 0
        base = torch.as_tensor(self.baseline)
        self.independent = True
        self.progress("attribution", 0, None)
        for chunk in chunks:
            X = torch.from_numpy(chunk.X)  # (n, F)
            target = self._targets(X)
            res = integrated_gradients(
                self.explained, X, baselines=base, target=target, method=cfg.method, n_steps=cfg.n_steps,
                tolerance=cfg.thresholds.convergence_tol, max_steps=cfg.max_steps, device=cfg.device,
                dtype=torch.float64 if cfg.dtype == "float64" else None, bf16=cfg.bf16,
                memory_budget_mb=cfg.memory_budget_mb, delta_floor=self.delta_floor,
                progress=lambda done, _tot, off=self.n_rows: self.progress("attribution", off + done, None),
            )
            self.notes.extend(res.notes)
            self.independent = self.independent and res.batch_independent
            A = res.attributions.numpy().astype(np.float32)  # (n, F)
            A64 = A.astype(np.float64)
            self.sum_abs += np.abs(A64).sum(0)
            self.sum += A64.sum(0)
            self.sumsq += (A64**2).sum(0)
            rel = res.rel_delta.numpy().astype(np.float32)
            rel_parts.append(rel)
            step_parts.append(res.steps.numpy().astype(np.int32))
            fx_parts.append(res.f_x.numpy().astype(np.float64))
            cls = np.full(X.shape[0], -1) if target is None else target.numpy()
            arrays = {"X": chunk.X, "A": A, "cls": cls, "fx": res.f_x.numpy()}
            if chunk.y is not None:
                arrays["y"] = chunk.y
            if chunk.slice_values is not None:
                arrays["slice"] = np.asarray(chunk.slice_values).astype(str)
            self.sample.add(**arrays)
            if self.sink is not None:
                self.sink(chunk.row_offset, self.names, A, rel)
            self.n_rows += X.shape[0]
        if self.n_rows == 0:
            raise DataError(f"'{self.cfg.data}' has a header but no rows; pass a file with data rows")
        self.rel_delta = np.concatenate(rel_parts)
        self.steps = np.concatenate(step_parts)
        self.f_x = np.concatenate(fx_parts)
        if not self.sample.complete:
            self.notes.append(
                f"bootstrap intervals, findings and the cross-check use a uniform sample of {self.sample.capacity:,} "
                f"of the {self.n_rows:,} rows; means and shares are exact over all rows"
            )

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
        base = torch.as_tensor(self.baseline)
        self.progress("cross-check", 0, len(idx))
        # with n_steps="auto" each row is compared at the step count it needed
        native = integrated_gradients(
            self.explained, X, baselines=base, target=target, method=cfg.method, n_steps=cfg.n_steps,
            tolerance=cfg.thresholds.convergence_tol, max_steps=cfg.max_steps, device=cfg.device,
            memory_budget_mb=cfg.memory_budget_mb, delta_floor=self.delta_floor,
        )
        out = crosscheck(
            self.explained, X, native=native, baselines=base, target=target,
            tol_abs=cfg.thresholds.crosscheck_abs, tol_rel=cfg.thresholds.crosscheck_rel, feature_names=self.names,
        )
        self.progress("cross-check", len(idx), len(idx))
        return out

    def _ranking(self) -> tuple[FeatureStat, ...]:
        A = self.sample.get("A")
        stats = global_ranking(A, self.names, n_boot=self.cfg.n_boot, seed=self.cfg.seed)
        if self.sample.complete:
            return stats
        # exact point estimates over all rows; intervals stay those of the sample (wider, so conservative)
        n = self.n_rows
        mean_abs = self.sum_abs / n
        mean = self.sum / n
        std = np.sqrt(np.maximum(self.sumsq / n - mean**2, 0.0))
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

    def _model_evidence(self, stats: tuple[FeatureStat, ...]) -> dict:
        X = self.sample.get("X")
        dev = self.cfg.device
        out: dict = {
            "univariate": None, "univariate_low": None, "univariate_reverse": None,
            "identifier": identifier_like(X, self.names), "neutralisation": (),
        }
        bo = probes.baseline_outputs(self.model.module, self.baseline, device=dev)
        fx = self.sample.get("fx")
        if self.task == "binary_classification":
            p = float(bo[0]) if self.info.output == "probability" else float(1.0 / (1.0 + np.exp(-bo[0])))
            out["baseline_output"] = np.array([1.0 - p, p])
        elif self.task == "multioutput_regression":
            out["baseline_output"] = None  # one z-score per output would need its own rule; not judged
        else:
            out["baseline_output"] = bo
        if self.task == "regression":
            out["output_mean"], out["output_std"] = float(np.mean(self.f_x)), float(np.std(self.f_x))
        else:
            out["output_mean"], out["output_std"] = float(np.mean(fx)), float(np.std(fx))
        try:
            y = self.sample.get("y")
        except KeyError:
            return out
        self._check_labels(y)
        self.step("leakage scores")
        out["univariate"] = u = univariate_power(X, y, self.task)
        near = np.flatnonzero(u >= self.cfg.thresholds.leak_univariate)
        out["univariate_low"] = univariate_lower_bound(X, y, self.task, near, seed=self.cfg.seed)
        out["univariate_reverse"] = target_explains(X, y, near)
        out["neutralisation"] = self._neutralisation(stats, X, y)
        return out

    def _neutralisation(self, stats: tuple[FeatureStat, ...], X: np.ndarray, y: np.ndarray):
        """Benefit of each feature (or correlated group) the model relies on materially, and whether a member
        predicts the target alone: the evidence of noise_leakage."""
        cfg = self.cfg
        n_eval = min(X.shape[0], cfg.ablation_rows)
        rng = np.random.default_rng(cfg.seed)
        rows = np.sort(rng.choice(X.shape[0], size=n_eval, replace=False))
        Xe, ye = X[rows], y[rows]
        share = {s.name: s.share for s in stats}
        bar = cfg.thresholds.noise_min_share_factor / len(self.names)
        groups = [
            g for g in correlated_groups(Xe, cfg.thresholds.noise_group_corr)
            if sum(share[self.names[j]] for j in g) >= bar
        ]
        if not groups:
            return ()
        self.step(f"neutralisation ({len(groups)} features or groups)")
        _, base_loss, effects = probes.neutralisation_effects(
            self.model.module, Xe, ye, groups, self.info, method=cfg.neutralise, baseline=self.baseline,
            seed=cfg.seed, device=cfg.device,
        )
        members = sorted({j for g in groups for j in g})
        u = univariate_power(Xe[:, members], ye, self.task)
        null = univariate_null_quantile(Xe, ye, self.task, members, seed=cfg.seed)[members]
        pos = {j: k for k, j in enumerate(members)}
        out = []
        for k, (g, (d, r, loss)) in enumerate(zip(groups, effects, strict=True)):
            benefit, lo, hi = benefit_interval(d, r, n_boot=max(cfg.n_boot, 100), seed=cfg.seed + k)
            best = max(g, key=lambda j: u[pos[j]] - null[pos[j]])  # the member that says most about the target
            out.append(NeutralisationStat(
                features=tuple(self.names[j] for j in g), share=float(sum(share[self.names[j]] for j in g)),
                base_loss=float(base_loss.mean()), neutralised_loss=loss, benefit=benefit, ci_low=lo, ci_high=hi,
                n_rows=int(n_eval), method=cfg.neutralise, univariate=float(u[pos[best]]),
                univariate_null=float(null[pos[best]]),
            ))
        return tuple(out)

    def _check_labels(self, y: np.ndarray) -> None:
        if self.task != "classification":
            return
        if not np.all(np.equal(np.mod(y, 1), 0)) or y.min() < 0 or y.max() >= self.n_outputs:
            raise DataError(
                f"target column '{self.spec.target_col}' must hold class indices 0..{self.n_outputs - 1} for this "
                f"{self.n_outputs}-output model (found values from {y.min():g} to {y.max():g}); encode the labels"
            )

    def _slices(self, stats: tuple[FeatureStat, ...]):
        if self.cfg.slice_col is None:
            return ()
        return slice_profiles(
            self.sample.get("A"), self.names, self.sample.get("slice"),
            min_rows=self.cfg.thresholds.slice_min_rows, column=self.cfg.slice_col,
        )

    def _drift(self, stats: tuple[FeatureStat, ...]):
        ref = self.cfg.reference
        self.n_ref_rows = None
        if ref is None:
            return ()
        whole = inspect_table(ref)  # one header read and one hash of the file
        ref_spec: TableSpec = dataclasses.replace(
            whole, features=tuple(c for c in whole.columns if c in self.names), target_col=None, slice_col=None
        )
        missing = [n for n in self.names if n not in ref_spec.features]
        if missing:
            raise DataError(
                f"reference '{ref}' lacks feature column(s) {', '.join(missing[:5])}; pass a reference with the same "
                "columns as --data"
            )
        sample = Reservoir(self.cfg.analysis_rows, self.rng_seed + 1)
        pos = [ref_spec.features.index(n) for n in self.names]
        for chunk in iter_chunks(ref_spec, self.cfg.chunk_rows):
            sample.add(X=chunk.X[:, pos])
        self.n_ref_rows = sample.seen
        if sample.seen == 0:
            raise DataError(f"reference '{ref}' has a header but no rows; pass a file with data rows")
        shares = np.array([{s.name: s.share for s in stats}[n] for n in self.names])
        return drift(self.sample.get("X"), sample.get("X"), shares, self.names)

    def _ig_sample(self, X: np.ndarray, module: torch.nn.Module, target: object) -> np.ndarray:
        """IG of ``module`` on rows ``X`` with the run's settings: (n, F)."""
        cfg = self.cfg
        res = integrated_gradients(
            module, torch.from_numpy(X), baselines=torch.as_tensor(self.baseline), target=target,
            method=cfg.method, n_steps=cfg.n_steps, tolerance=cfg.thresholds.convergence_tol,
            max_steps=cfg.max_steps, device=cfg.device, dtype=torch.float64 if cfg.dtype == "float64" else None,
            bf16=cfg.bf16, memory_budget_mb=cfg.memory_budget_mb, delta_floor=self.delta_floor,
        )
        return res.attributions.numpy()

    def _class_features(self) -> dict[str, tuple[FeatureStat, ...]]:
        cfg = self.cfg
        X = self.sample.get("X")[: cfg.ablation_rows]
        if self.task == "multioutput_regression":
            self.progress("per-output attribution", 0, self.n_outputs)
            out = {}
            for k in range(self.n_outputs):
                A = self._ig_sample(X, self.model.module, k)
                out[f"output {k}"] = global_ranking(A, self.names, n_boot=cfg.n_boot, seed=cfg.seed)
                self.progress("per-output attribution", k + 1, self.n_outputs)
            return out
        if self.task != "classification":
            return {}
        if cfg.class_index == "all":
            out = {}
            for k in range(self.n_outputs):
                A = self._ig_sample(X, self.model.module, k)
                out[str(k)] = global_ranking(A, self.names, n_boot=cfg.n_boot, seed=cfg.seed)
            return out
        return class_rankings(
            self.sample.get("A"), self.names, self.sample.get("cls"), n_boot=cfg.n_boot, seed=cfg.seed
        )

    def _class_label(self, k: int) -> str:
        names = self.cfg.class_names
        return f"class '{names[k]}'" if names else f"class {k}"

    def _explained_label(self) -> str:
        ci = self.cfg.class_index
        if self.task == "regression":
            return "the model's output"
        if self.task == "binary_classification":
            what = "logit" if self.info.output == "logit" else "probability"
            return f"the {what} of {self._class_label(1)}"
        if self.task == "multioutput_regression":
            return f"output {ci}" if ci is not None and ci != "all" else f"the mean of the {self.n_outputs} outputs"
        if ci is None:
            return "the predicted class"
        return "every class" if ci == "all" else self._class_label(int(ci))

    def _signed_target(self) -> int | None:
        """The one class the direction samples explain: --class K, class 1 of two, else the most predicted."""
        ci = self.cfg.class_index
        if ci is not None and ci != "all":
            return int(ci)
        if self.n_outputs == 2:
            return 1
        cls = self.sample.get("cls")
        return int(np.bincount(cls.astype(np.int64), minlength=self.n_outputs).argmax())

    def _signed(self, stats: tuple[FeatureStat, ...], top: int = 8, points: int = 300) -> tuple[SignedSample, ...]:
        """(value, attribution) pairs of the top features for one fixed output, so a direction can be read:
        explaining each row's predicted class instead mixes classes and gives V-shaped clouds."""
        X, A = self.sample.get("X"), self.sample.get("A")
        rng = np.random.default_rng(self.cfg.seed)
        idx = np.sort(rng.choice(X.shape[0], size=min(points, X.shape[0]), replace=False))
        self.signed_class = ""
        if self.task == "classification":
            k = self._signed_target()
            self.signed_class = self.cfg.class_names[k] if self.cfg.class_names else str(k)
            A_sel = A[idx] if self.cfg.class_index not in (None, "all") else self._ig_sample(
                X[idx], self.explained, torch.full((idx.size,), k, dtype=torch.long)
            )
        else:
            A_sel = A[idx]
            if self.task == "binary_classification":
                self.signed_class = self.cfg.class_names[1] if self.cfg.class_names else "1"
        out = []
        for s in stats[:top]:
            j = self.names.index(s.name)
            out.append(SignedSample(
                s.name,
                tuple(round(float(v), 6) for v in X[idx, j]),
                tuple(round(float(v), 6) for v in A_sel[:, j]),
            ))
        return tuple(out)

    def _expected(self) -> tuple[ExpectedAttribution, ...]:
        coef = self.cfg.known_coefficients
        if not coef:
            return ()
        X, A = self.sample.get("X").astype(np.float64), self.sample.get("A").astype(np.float64)
        out = []
        for j, name in enumerate(self.names):
            if name not in coef:
                continue
            exp = coef[name] * (X[:, j] - float(self.baseline[j]))  # (n,)
            out.append(ExpectedAttribution(
                name=name, coefficient=float(coef[name]), expected_mean=float(exp.mean()),
                estimated_mean=float(A[:, j].mean()), expected_mean_abs=float(np.abs(exp).mean()),
                estimated_mean_abs=float(np.abs(A[:, j]).mean()), max_abs_error=float(np.abs(A[:, j] - exp).max()),
            ))
        return tuple(out)


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
