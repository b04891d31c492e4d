"""What a tabular audit computes from its accumulated sample, beyond the ranking: the model-side evidence the
detectors read (leakage scores, neutralisation, the baseline's output), slices, drift, per-class and per-output
rankings, the direction samples and the demo's known answer.

:class:`TabularEvidence` is a mixin of :class:`audit.modalities.tabular.TabularModality`: its methods read the
state the modality's stages built (``sample``, ``names``, ``baseline``, ``info``, ``engine``, ...).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from audit import probes
from audit.analysis.accumulate import RowSample
from audit.analysis.agreement import drift, slice_profiles
from audit.analysis.groups import merge_blocks
from audit.analysis.identifiers import identifier_like
from audit.analysis.leak_scores import leak_scores
from audit.analysis.neutralisation import NeutralisationStat, benefit_interval, correlated_groups
from audit.analysis.ranking import class_rankings, global_ranking
from audit.analysis.univariate import univariate_null_quantile, univariate_power
from audit.attribution.base import model_dtype_device
from audit.attribution.native import IGResult, integrated_gradients
from audit.errors import DataError
from audit.io.model import accepts_width, model_input_check
from audit.io.tabular import TableSpec, inspect_table, iter_chunks, with_slice_feature
from audit.modalities import tabular_baselines
from audit.results import BaselineSensitivity, Convergence, ExpectedAttribution, FeatureStat, SignedSample

__all__ = ["TabularEvidence"]


class TabularEvidence:
    """Analyses of the accumulated sample (a mixin: see the module notes)."""

    def _model_evidence(self, stats: tuple[FeatureStat, ...]) -> dict:
        X = self.sample.get("X")
        dev = self.cfg.device
        out: dict = {
            "univariate": None, "univariate_low": None, "univariate_reverse": None, "separation": None,
            "separation_low": None, "identifier": identifier_like(X, self.names), "neutralisation": (),
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
            o = self.acc.outputs  # exact over all rows
            out["output_mean"], out["output_std"] = float(o.mean()[0]), float(o.std()[0])
        else:
            out["output_mean"], out["output_std"] = float(np.mean(fx)), float(np.std(fx))
        try:
            y = self.sample.get("y")
        except KeyError:
            return out
        self._check_labels(y)
        self.step("leakage scores")
        scores = leak_scores(X, y, self.task, self.units, univariate_bar=self.cfg.thresholds.leak_univariate,
                             seed=self.cfg.seed)
        out["univariate"], out["univariate_low"] = scores.univariate, scores.univariate_low
        out["univariate_reverse"] = scores.reverse
        out["separation"], out["separation_low"] = scores.separation, scores.separation_low
        out["neutralisation"] = self._neutralisation(stats, X, y)
        return out

    def _baseline_checks(self, convergence: Convergence) -> tuple[BaselineSensitivity | None, object]:
        """The ranking under a second baseline and, when rows missed the tolerance, why
        (:mod:`audit.modalities.tabular_baselines`)."""
        return tabular_baselines.sensitivity(self), tabular_baselines.diagnose_convergence(self, convergence)

    def _neutralisation(self, stats: tuple[FeatureStat, ...], X: np.ndarray, y: np.ndarray):
        """Benefit of each feature (or correlated group) the model relies on materially, and whether a member
        predicts the target alone: the evidence of noise_leakage."""
        cfg = self.cfg
        n_eval = min(X.shape[0], cfg.ablation_rows)
        rng = np.random.default_rng(cfg.seed)
        rows = np.sort(rng.choice(X.shape[0], size=n_eval, replace=False))
        Xe, ye = X[rows], y[rows]
        share = {s.name: s.share for s in stats}
        bar = cfg.thresholds.noise_min_share_factor / len(self.units.names)  # a feature group counts once
        blocks = [m for m in self.units.members if len(m) > 1]  # a feature group is taken away whole
        groups = [
            g for g in merge_blocks(correlated_groups(Xe, cfg.thresholds.noise_group_corr), blocks)
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

    def _fit_inputs(self) -> int:
        """Match the model's input width, and return its number of outputs. The slice column is set aside from
        the features unless the model takes every non-target column: when the model rejects the features without
        it and accepts them with it, it is a model input and stays a feature (its labels still form the slices)."""
        module, col = self.model.module, self.cfg.slice_col
        if col is not None and col not in self.names and not accepts_width(module, len(self.names)) \
                and accepts_width(module, len(self.names) + 1):
            self.source = with_slice_feature(self.source)
            self.spec = self.source.spec
            self.names = list(self.spec.features)
            self.declared = self._declared_noise()  # --noise-features may name it too
            self.notes.append(
                f"'{col}' (--slice-col) is also a model input: the model takes {len(self.names)} inputs, every column "
                "but the target, so it stays a feature and its values form the slices"
            )
        extra = ((col, "--slice-col"),) if col is not None and col not in self.names else ()
        return model_input_check(module, len(self.names), extra=extra)

    def _slices(self, stats: tuple[FeatureStat, ...]):
        if self.cfg.slice_col is None:
            return ()
        # directions compare rows that explain the same class (cls: -1 for a model with one explained output)
        return slice_profiles(
            self._slice_attributions(), self.names, self.sample.get("slice"),
            min_rows=self.cfg.thresholds.slice_min_rows, column=self.cfg.slice_col,
            X=self.sample.get("X"), G=self._row_gradients(), classes=self.sample.get("cls"),
            n_boot=max(self.cfg.n_boot, 100), seed=self.cfg.seed,
        )

    def _slice_attributions(self) -> np.ndarray:
        """Each slice's rows attributed against that slice's own mean, (n, F); the run's attributions elsewhere.

        The profile of a slice must say what the model does within it. From a baseline in the middle of the data
        the path of a row in one segment runs through the other segment's inputs (a 0/1 segment column at its mean
        0.5): a model that uses f1 in segment A and f2 in B then gives both segments a mixture of f1 and f2, and
        the planted twin of the findings corpus was caught 0 of 9 times under the data-mean baseline (9 of 9 under
        zero, which happens to be segment A). Category columns in embeddings keep the run's attributions.
        """
        A = self.sample.get("A").astype(np.float32, copy=True)
        if self.categories is not None:
            return A
        X, groups, cls = self.sample.get("X"), np.asarray(self.sample.get("slice")), self.sample.get("cls")
        labels, inv = np.unique(groups, return_inverse=True)
        inv = inv.reshape(-1)
        for g in range(len(labels)):
            rows = np.flatnonzero(inv == g)
            if rows.size < self.cfg.thresholds.slice_min_rows:
                continue
            target = None if self.task != "classification" else torch.as_tensor(cls[rows], dtype=torch.long)
            base = X[rows].astype(np.float64).mean(axis=0).astype(np.float32)
            A[rows] = self._ig(self.explained, torch.from_numpy(X[rows]), target, baseline=base)[0] \
                .attributions.numpy()
        return A

    def _class_counts(self) -> tuple[int, ...]:
        """Classifiers: rows per class in the analysed sample, from the labels (the explained classes without
        labels); () for other tasks or when neither is known. Read by small_sample."""
        if self.task not in ("classification", "binary_classification"):
            return ()
        try:
            labels = self.sample.get("y")
        except KeyError:
            labels = self.sample.get("cls")
        labels = np.asarray(labels)
        if labels.size == 0 or (labels < 0).any():
            return ()
        return tuple(int(c) for c in np.unique(labels, return_counts=True)[1])

    def _row_gradients(self, batch: int = 4096) -> np.ndarray | None:
        """The gradient of the explained output at each sampled row, (n, F): the local slopes slice directions
        compare. None for a model that looks category columns up in embeddings (no slope along an index)."""
        if self.categories is not None:
            return None
        X, cls = self.sample.get("X"), self.sample.get("cls")
        module = self.explained
        dtype, dev = model_dtype_device(module)
        out = np.empty(X.shape, dtype=np.float64)
        for r0 in range(0, X.shape[0], batch):
            x = torch.as_tensor(X[r0 : r0 + batch], dtype=dtype, device=dev).requires_grad_(True)  # (b, F)
            y = module(x).reshape(x.shape[0], -1)  # (b, outputs)
            if self.task == "classification" and y.shape[1] > 1:
                k = torch.as_tensor(cls[r0 : r0 + batch], dtype=torch.long, device=y.device).clamp(min=0)
                y = y.gather(1, k[:, None])
            (g,) = torch.autograd.grad(y[:, 0].sum(), x)
            out[r0 : r0 + batch] = g.detach().cpu().double().numpy()
        return out

    def _drift(self, stats: tuple[FeatureStat, ...]) -> tuple[tuple, int | None]:
        """Attribution-weighted drift against ``--reference``, and the reference's row count (None without one)."""
        ref = self.cfg.reference
        if ref is None:
            return (), None
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
        sample = RowSample(self.cfg.analysis_rows, self.rng_seed + 1)
        pos = [ref_spec.features.index(n) for n in self.names]
        for chunk in iter_chunks(ref_spec, self.cfg.chunk_rows):
            sample.add(chunk.row_offset + np.arange(chunk.X.shape[0], dtype=np.int64), X=chunk.X[:, pos])
        if sample.seen == 0:
            raise DataError(f"reference '{ref}' has a header but no rows; pass a file with data rows")
        shares = np.array([{s.name: s.share for s in stats}[n] for n in self.names])
        return drift(self.sample.get("X"), sample.get("X"), shares, self.names), sample.seen

    def _ig(self, module: torch.nn.Module, X: torch.Tensor, target: object, *, collapse: bool = True,
            progress=None, baseline: np.ndarray | None = None) -> tuple[IGResult, torch.Tensor, torch.Tensor,
                                                                          torch.nn.Module]:
        """IG of ``module`` on rows ``X`` (n, F) with the run's settings and baseline (or ``baseline``, (F,)).

        A model that looks category columns up in ``nn.Embedding`` layers (``self.categories``) is explained in
        embedding space (:mod:`audit.attribution.embedded`); with ``collapse`` the attributions are folded back to
        the F columns. Returns the result, the inputs and baselines the engine saw and the module it explained
        (what the Captum cross-check must be given).
        """
        base = torch.as_tensor(self.baseline if baseline is None else baseline)
        cats = self.categories
        if cats is not None:
            X, base = cats.expand(module, X, base, self.category_baseline)
            module = cats.wrap(module)
        res = integrated_gradients(module, X, baselines=base, target=target, **self.engine.kwargs(),
                                   progress=progress)
        if cats is not None and collapse:
            res = dataclasses.replace(res, attributions=cats.collapse(res.attributions))
        return res, X, base, module

    def _ig_sample(self, X: np.ndarray, module: torch.nn.Module, target: object) -> np.ndarray:
        """IG of ``module`` on rows ``X`` with the run's settings: (n, F)."""
        return self._ig(module, torch.from_numpy(X), target)[0].attributions.numpy()

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
        else:
            out = class_rankings(
                self.sample.get("A"), self.names, self.sample.get("cls"), n_boot=cfg.n_boot, seed=cfg.seed
            )
        names = cfg.class_names  # --class-names label the per-class rankings (keys are class indices otherwise)
        return {names[int(k)]: v for k, v in out.items()} if names else out

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

    def _signed(
        self, stats: tuple[FeatureStat, ...], top: int = 8, points: int = 300
    ) -> tuple[tuple[SignedSample, ...], str]:
        """(value, attribution) pairs of the top features for one fixed output, so a direction can be read
        (explaining each row's predicted class instead mixes classes and gives V-shaped clouds), and the class
        they explain ("" for a regression)."""
        X, A = self.sample.get("X"), self.sample.get("A")
        rng = np.random.default_rng(self.cfg.seed)
        idx = np.sort(rng.choice(X.shape[0], size=min(points, X.shape[0]), replace=False))
        signed_class = ""
        if self.task == "classification":
            k = self._signed_target()
            signed_class = self.cfg.class_names[k] if self.cfg.class_names else str(k)
            A_sel = A[idx] if self.cfg.class_index not in (None, "all") else self._ig_sample(
                X[idx], self.explained, torch.full((idx.size,), k, dtype=torch.long)
            )
        else:
            A_sel = A[idx]
            if self.task == "binary_classification":
                signed_class = self.cfg.class_names[1] if self.cfg.class_names else "1"
        out = []
        for s in stats[:top]:
            j = self.names.index(s.name)
            out.append(SignedSample(
                s.name,
                tuple(round(float(v), 6) for v in X[idx, j]),
                tuple(round(float(v), 6) for v in A_sel[:, j]),
            ))
        return tuple(out), signed_class

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
