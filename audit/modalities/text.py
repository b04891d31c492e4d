"""Text classifiers (a Hugging Face folder, or a TorchScript/export/state_dict model with ``--tokenizer``) on a
CSV/Parquet text column: the text modality.

1. open: read the text (and label) column (:mod:`audit.io.text`), load the model and tokenizer safely, check they
   fit, tokenise with truncation to ``--max-length`` (counted), predict every row, build the baseline (every token
   replaced by the pad token with the special tokens kept, or the zero embedding) and the completeness floor;
2. blocks are rows of similar length (sorted by length, cut by a token budget); each is attributed at the word
   embedding by :func:`audit.attribution.layer.layer_integrated_gradients`, the explained class per row being
   the predicted one unless ``--class K``; merged into per-row token attributions (on Ray actors with
   ``--executor ray``: :mod:`audit.modalities.text_units`);
3. finish: convergence, the global token table with bootstrap intervals (and one per explained class), the
   Captum cross-check (``LayerIntegratedGradients``) on a sample of rows, the masking evidence of
   ``spurious_token`` (:mod:`audit.modalities.text_evidence`), all on words (pieces grouped by
   :mod:`audit.analysis.words`, a word's attribution the sum of its pieces'); the record carries the ``text``
   section, and the output sink receives ``tokens.parquet`` (per row its pieces, their attributions and the word
   of each piece).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from audit.analysis.convergence import summarize_convergence
from audit.analysis.tokens import token_table
from audit.analysis.words import word_view
from audit.attribution.crosscheck import sample_rows
from audit.attribution.layer import layer_integrated_gradients, logits_of
from audit.attribution.layer_crosscheck import layer_crosscheck
from audit.attribution.settings import EngineSettings
from audit.config import AuditConfig
from audit.errors import DataError, ModelLoadError, UsageError
from audit.findings import FindingsInput
from audit.io.text import TextModel, load_text_model, parse_labels, read_texts, tokens_table, write_tokens_parquet
from audit.modalities.base import Modality, OutputSink, ProgressFn, Summary, explained_label, fixed_class
from audit.modalities.text_evidence import TextEvidence
from audit.modalities.text_units import TextUnits
from audit.provenance import make_provenance
from audit.results import SCHEMA_VERSION, AuditRun, Crosscheck, Finding, TextSummary, verdict_from_findings

__all__ = ["TextModality", "TEXT_BASELINES", "BLOCK_TOKENS", "BLOCK_ROWS", "CROSSCHECK_TEXT_ROWS", "TASK"]

TASK = "text_classification"
TEXT_BASELINES = ("pad", "zero")
BLOCK_TOKENS = 2048  # rows x padded length per block handed to the engine (it cuts further by memory)
BLOCK_ROWS = 64
CROSSCHECK_TEXT_ROWS = 64  # Captum's layer IG runs every path point through the whole model: at most this many

_NOT_FOR_TEXT = {
    "slice_col": ("--slice-col", None), "reference": ("--reference", None), "drop": ("--drop", ()),
    "noise_features": ("--noise-features", ()), "labels": ("--labels", None), "sep": ("--sep", None),
    "groups": ("--group", ()),
}  # fmt: skip


class TextModality(TextUnits, TextEvidence, Modality):
    """One text audit; each stage is a method, sharing state on the instance."""

    kind = "text"

    @classmethod
    def claims(cls, data: Path) -> bool | None:
        """Text is chosen on the model's evidence (a Hugging Face folder, --tokenizer, --text-col), never on the
        data file alone (a CSV of reviews is also a table)."""
        return False

    def __init__(self, config: AuditConfig, progress: ProgressFn | None = None, model: Any = None) -> None:
        super().__init__(config, progress, model)
        self.started = time.perf_counter()
        for field, (flag, unset) in _NOT_FOR_TEXT.items():
            if getattr(config, field) != unset:
                raise UsageError(f"{flag} does not apply to text data; drop {flag}")
        if config.task not in ("auto", "multiclass", "binary"):
            raise UsageError(f"--task {config.task} does not apply to text data (text audits explain classifiers); "
                             "drop --task")
        base = config.baseline or "pad"
        if base not in TEXT_BASELINES:
            raise UsageError(f"--baseline '{config.baseline}' does not apply to text; use pad (every token replaced "
                             "by the pad token, special tokens kept) or zero (the zero embedding)")
        self.baseline_kind = base
        self.fixed_class = fixed_class(config, "text")

    # --- stages -----------------------------------------------------------------------------------------

    def open(self) -> None:
        cfg = self.cfg
        self.data = read_texts(cfg.data, text_col=cfg.text_col, target_col=cfg.target_col)
        if cfg.device.startswith("cuda") and not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu")
        tm = self.given_model
        if tm is not None and not isinstance(tm, TextModel):
            raise UsageError("a text audit of an in-memory model needs a Hugging Face sequence classifier with "
                             "tokenizer=; or pass the path of a model folder, or of a checkpoint with tokenizer=")
        if tm is None:
            tm = load_text_model(cfg.model, tokenizer=cfg.tokenizer, arch=cfg.arch, trust_model=cfg.trust_model,
                                 device=cfg.device)
        self.tm: TextModel = tm
        self.notes.extend(tm.notes)
        self.pad_id = int(tm.tokenizer.pad_id)
        limit = tm.max_positions
        if cfg.max_length is not None and cfg.max_length > limit:
            raise UsageError(f"--max-length {cfg.max_length} is beyond what the model takes ({limit} tokens); pass "
                             f"at most {limit}")
        self.max_length = int(cfg.max_length or limit)
        self.step("tokenising")
        self.enc = tm.tokenizer.encode(self.data.texts, self.max_length)
        tm.tokenizer.check_nonempty(self.enc, self.data.text_col)
        top = max(max(r) for r in self.enc.ids)
        if top >= tm.embedding_rows:
            raise DataError(f"the tokenizer gives id {top}, beyond the model's embedding table ({tm.embedding_rows} "
                            "rows); pass the tokenizer the model was trained with")
        self.n_rows = len(self.enc.ids)
        if self.enc.n_truncated:
            self.notes.append(f"{self.enc.n_truncated:,} of {self.n_rows:,} rows were longer than {self.max_length} "
                              "tokens and were cut to that length (--max-length)")
        self.n_outputs = self._probe()
        self.class_names = self._class_names()
        self.labels = None
        if self.data.labels is not None:
            self.labels = parse_labels(self.data.labels, self.class_names, self.n_outputs, self.data.target_col)
        self.step("predicting")
        self.probs = self._predict_rows(list(range(self.n_rows)))  # (n, k)
        self.pred = self.probs.argmax(1).astype(np.int64)
        self.conf = self.probs.max(1)
        if self.n_outputs == 1:
            self.target = np.zeros(self.n_rows, dtype=np.int64)  # the one logit (class 1's score)
        elif self.fixed_class is not None:
            self.target = np.full(self.n_rows, self.fixed_class, dtype=np.int64)
        else:
            self.target = self.pred.copy()
        self.engine = EngineSettings.from_config(cfg, delta_floor=self._delta_floor())
        self.start_arrays()

    def start_arrays(self) -> None:
        """The per-row arrays the blocks fill."""
        self.attr: list[np.ndarray | None] = [None] * self.n_rows
        self.rel = np.zeros(self.n_rows)
        self.steps = np.zeros(self.n_rows, dtype=np.int64)
        self._engine_notes: list[str] = []
        self._touched: list[int] = []
        self.independent = True

    def blocks(self) -> Iterator[list[int]]:
        self.progress("attribution", 0, self.n_rows)
        return iter(self.plan())

    def plan(self) -> list[list[int]]:
        """The blocks: rows sorted by length, cut by :data:`BLOCK_TOKENS` and :data:`BLOCK_ROWS`."""
        order = sorted(range(self.n_rows), key=lambda i: (len(self.enc.ids[i]), i))  # similar lengths together
        out: list[list[int]] = []
        block: list[int] = []
        for i in order:
            longest = len(self.enc.ids[i])  # rows come shortest first: this row is the block's longest
            if block and ((len(block) + 1) * longest > BLOCK_TOKENS or len(block) >= BLOCK_ROWS):
                out.append(block)
                block = []
            block.append(i)
        if block:
            out.append(block)
        return out

    def attribute(self, block: list[int]) -> dict:
        res = self._ig(block, self.engine)
        return {"rows": block, "attr": res.attributions.double().numpy(), "rel": res.rel_delta.double().numpy(),
                "steps": res.steps.numpy(), "notes": res.notes, "independent": res.batch_independent}

    def merge(self, r: dict, sink: OutputSink | None) -> None:
        self._engine_notes.extend(r["notes"])
        self.independent = self.independent and r["independent"]
        for k, i in enumerate(r["rows"]):
            self.attr[i] = r["attr"][k, : len(self.enc.ids[i])].astype(np.float32)
            self.rel[i], self.steps[i] = r["rel"][k], r["steps"][k]
        self._touched.extend(r["rows"])
        self.done = getattr(self, "done", 0) + len(r["rows"])
        self.progress("attribution", self.done, self.n_rows)

    def finish(self) -> Summary:
        cfg = self.cfg
        self.notes.extend(dict.fromkeys(self._engine_notes))
        conv = summarize_convergence(self.rel, self.steps, cfg.method, cfg.n_steps, cfg.thresholds.convergence_tol)
        self.step("word table")
        # pieces -> words: the table, the masking and the examples name whole words; tokens.parquet keeps pieces
        self.words = word_view(self.enc.tokens, self.enc.special, self.attr, self.enc.word_ids)
        wv = self.words
        word = wv.names.__getitem__
        self.table, features, self.n_distinct = token_table(wv.keys, wv.attributions, wv.special, word,
                                                            n_boot=cfg.n_boot, seed=cfg.seed)
        self.class_tables = {}
        for c in np.unique(self.target):
            rows = np.flatnonzero(self.target == c)
            t, _, _ = token_table(wv.keys, wv.attributions, wv.special, word, n_boot=cfg.n_boot, seed=cfg.seed,
                                  rows=rows, top=20)
            self.class_tables[self._target_name(int(c))] = t
        xc = self._crosscheck()
        masking = self._masking(self.table)
        inp = FindingsInput(task=TASK, stats=features, convergence=conv, crosscheck=xc, token_masking=masking,
                            n_rows=self.n_rows, class_names=self.class_names)
        return Summary(features, conv, xc, inp, {"masking": masking})

    def record(self, summary: Summary, findings: tuple[Finding, ...], sink: OutputSink | None) -> AuditRun:
        cfg = self.cfg
        accuracy = None
        if self.labels is not None:
            accuracy = float(np.mean(self.pred == self.labels))
            self.notes.append(f"accuracy on the audited rows: {accuracy:.1%} (labels from '{self.data.target_col}')")
        text = TextSummary(
            text_col=self.data.text_col, n_rows=self.n_rows, max_length=self.max_length,
            n_truncated=self.enc.n_truncated, baseline=self.baseline_kind, pad_token=self.tm.tokenizer.pad_token,
            vocab_size=self.tm.tokenizer.vocab_size, classes=self.class_names, tokens=self.table,
            n_distinct_tokens=self.n_distinct, class_tokens=self.class_tables, accuracy=accuracy,
            settings=self._settings(), **self._examples(),
        )  # fmt: skip
        run = AuditRun(
            schema_version=SCHEMA_VERSION, verdict=verdict_from_findings(findings), task=TASK,
            features=summary.features, convergence=summary.convergence, crosscheck=summary.crosscheck,
            findings=findings, provenance=make_provenance(cfg, self.tm.loaded, self.data.sha256, self.started),
            n_rows=self.n_rows, n_features=self.n_distinct, target_col=self.data.target_col,
            explained_output=self._explained(), baseline=self._baseline_label(), text=text,
            notes=tuple(dict.fromkeys(self.notes)), class_names=self.class_names,
            task_reason=f"text classification: a sequence classifier with {max(self.n_outputs, 2)} classes",
        )  # fmt: skip
        table = tokens_table(
            self.enc.tokens, self.enc.ids, self.attr, predicted=self.pred, target=self.target, confidence=self.conf,
            rel_delta=self.rel, labels=self.labels, truncated=np.asarray(self.enc.truncated),
            word_index=self.words.index, words=[self.words.texts(i) for i in range(self.n_rows)],
        )  # fmt: skip
        write_tokens_parquet(sink, table)
        return run

    # --- helpers ----------------------------------------------------------------------------------------

    def _ig(self, rows: list[int], engine: EngineSettings):
        X, M, B = self._padded(rows, baseline=self.baseline_kind == "pad")
        target = None if self.n_outputs == 1 else torch.as_tensor(self.target[rows], dtype=torch.long)
        return layer_integrated_gradients(
            self.tm.module, X, layer=self.tm.layer, baseline_ids=B, additional_forward_args=(M,), target=target,
            **engine.kwargs(),
        )  # fmt: skip

    def _probe(self) -> int:
        X, M, _ = self._padded(list(range(min(4, len(self.enc.ids)))))
        try:
            with torch.no_grad():
                out = logits_of(self.tm.module(X.to(self.cfg.device), M.to(self.cfg.device)))
        except Exception as e:  # a model can raise anything; one line for the reader
            reason = " ".join(str(e).split())[:200] or type(e).__name__
            raise ModelLoadError(f"the model failed on (input_ids, attention_mask) of shape {tuple(X.shape)} "
                                 f"({reason}); a text model must take token ids and an attention mask") from e
        if out.dim() != 2 or out.shape[0] != X.shape[0]:
            raise ModelLoadError(f"the model returns shape {tuple(out.shape)} for {X.shape[0]} rows; audit needs "
                                 "(rows, classes) logits")
        k = int(out.shape[1])
        if self.fixed_class is not None and not 0 <= self.fixed_class < max(k, 2):
            raise UsageError(f"--class {self.fixed_class} is out of range for a model with {k} outputs; use "
                             f"0..{max(k, 2) - 1}")
        return k

    def _class_names(self) -> tuple[str, ...]:
        k = max(self.n_outputs, 2)
        if self.cfg.class_names:
            if len(self.cfg.class_names) != k:
                raise UsageError(f"--class-names lists {len(self.cfg.class_names)} names for {k} classes; pass one "
                                 "name per class, in order")
            return tuple(self.cfg.class_names)
        given = self.tm.class_names
        return tuple(given[i] if i < len(given) else f"class {i}" for i in range(k))

    def _target_name(self, c: int) -> str:
        if self.n_outputs == 1:
            return self.class_names[1]
        return self.class_names[c]

    def _delta_floor(self) -> float:
        """``convergence_floor`` times the median |F(x) - F(x')| of the explained output on the first rows."""
        rows = list(range(min(self.n_rows, 256)))
        X, M, B = self._padded(rows, baseline=True)
        dev = self.cfg.device
        with torch.no_grad():
            fx = logits_of(self.tm.module(X.to(dev), M.to(dev))).cpu().reshape(len(rows), -1)
            if self.baseline_kind == "pad":
                fb = logits_of(self.tm.module(B.to(dev), M.to(dev))).cpu().reshape(len(rows), -1)
            else:  # the zero embedding: the layer's output replaced by zeros for this one forward
                handle = self.tm.layer.register_forward_hook(lambda _m, _i, o: torch.zeros_like(o))
                try:
                    fb = logits_of(self.tm.module(X.to(dev), M.to(dev))).cpu().reshape(len(rows), -1)
                finally:
                    handle.remove()
        col = torch.as_tensor(self.target[rows]).view(-1, 1) if fx.shape[1] > 1 else torch.zeros(len(rows), 1,
                                                                                                   dtype=torch.long)
        span = (fx.gather(1, col) - fb.gather(1, col)).abs()
        return self.cfg.thresholds.convergence_floor * float(span.median())

    def _crosscheck(self) -> Crosscheck:
        cfg = self.cfg
        if cfg.crosscheck_rows == 0:
            return Crosscheck(0, None, None, None, None, method=cfg.method, skipped_reason="--crosscheck-rows 0")
        want = self.n_rows if cfg.crosscheck_rows == "all" else int(cfg.crosscheck_rows)
        k = min(want, self.n_rows, CROSSCHECK_TEXT_ROWS)
        if k < min(want, self.n_rows):
            self.notes.append(f"the Captum cross-check ran on {k} rows (Captum's layer IG is slow on text models)")
        rows = [int(i) for i in sample_rows(self.n_rows, k, cfg.seed)]
        self.progress("cross-check", 0, k)
        X, M, B = self._padded(rows, baseline=self.baseline_kind == "pad")
        target = None if self.n_outputs == 1 else torch.as_tensor(self.target[rows], dtype=torch.long)
        # at the largest step count any of these rows used, so every row is compared at a converged count
        steps = int(self.steps[rows].max()) if cfg.n_steps == "auto" else int(cfg.n_steps)
        engine = self.engine.replace(n_steps=steps)
        native = self._ig(rows, engine)
        out = layer_crosscheck(
            self.tm.module, X, layer=self.tm.layer, native=native, baseline_ids=B, additional_forward_args=(M,),
            target=target, tol_abs=cfg.thresholds.crosscheck_abs, tol_rel=cfg.thresholds.crosscheck_rel,
            rows="all", seed=cfg.seed,
        )  # fmt: skip
        self.progress("cross-check", k, k)
        return out

    def _explained(self) -> str:
        return explained_label(self.n_outputs, self.fixed_class, self.class_names)

    def _baseline_label(self) -> str:
        if self.baseline_kind == "pad":
            return f"pad token ({self.tm.tokenizer.pad_token}), special tokens kept"
        return "zero embedding"

    def _settings(self) -> dict[str, Any]:
        e = self.engine
        return {
            "method": e.method, "n_steps": e.n_steps, "max_steps": e.max_steps, "tolerance": e.tolerance,
            "layer": "word embedding", "baseline": self.baseline_kind, "max_length": self.max_length,
            "block_tokens": BLOCK_TOKENS, "block_rows": BLOCK_ROWS, "model_form": self.tm.loaded.form,
            "masking": "each piece of each occurrence replaced by the pad token and hidden by the attention mask",
            "unit": "word", "pieces": self.words.scheme,
        }  # fmt: skip


