"""What the text modality computes beyond the attributions: batched predictions, padded batches, the masking
evidence of ``spurious_token`` and the per-example views. A mixin of :class:`audit.modalities.text.TextModality`
(it reads the opened state: ``self.tm``, ``self.enc``, ``self.probs``, ...).
"""

from __future__ import annotations

import numpy as np
import torch

from audit.analysis.tokens import TokenMaskingStat, masking_stat
from audit.attribution.layer import logits_of
from audit.results import TextExample, TokenStat

__all__ = ["TextEvidence", "MASK_MAX_ROWS", "MAX_CANDIDATES", "CANDIDATE_MIN_SHARE", "CANDIDATE_MIN_ROWS",
           "CANDIDATE_MIN_ROW_FRACTION", "PREDICT_ROWS"]

PREDICT_ROWS = 64  # rows per no-grad forward
MASK_MAX_ROWS = 2000  # rows containing a candidate token that are masked (a seeded sample beyond)
MAX_CANDIDATES = 12  # tokens whose masking is measured, largest share first
CANDIDATE_MIN_SHARE = 0.02  # a candidate takes at least this share of all |attribution| ...
CANDIDATE_MIN_ROWS = 20  # ... and appears in at least this many rows ...
CANDIDATE_MIN_ROW_FRACTION = 0.05  # ... and in at least this fraction of the rows


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(m, k) logits -> probabilities; one logit per row is a binary logit."""
    logits = logits.reshape(logits.shape[0], -1).float()
    if logits.shape[1] == 1:
        p1 = torch.sigmoid(logits[:, 0])
        return torch.stack([1 - p1, p1], dim=1)
    return torch.softmax(logits, dim=1)


class TextEvidence:
    """Mixin: predictions, masking evidence and example views of a text audit."""

    def _padded(self, rows, ids=None, *, baseline: bool = False):
        """(ids, mask, baseline ids or None) of ``rows`` padded to their longest row: each (m, L)."""
        ids = self.enc.ids if ids is None else ids
        L = max(len(ids[i]) for i in rows)
        pad = self.pad_id
        X = torch.full((len(rows), L), pad, dtype=torch.long)
        M = torch.zeros((len(rows), L), dtype=torch.long)
        B = torch.full((len(rows), L), pad, dtype=torch.long) if baseline else None
        for k, i in enumerate(rows):
            row = ids[i]
            X[k, : len(row)] = torch.as_tensor(row)
            M[k, : len(row)] = 1
            if B is not None:
                sp = torch.as_tensor(self.enc.special[i], dtype=torch.bool)
                B[k, : len(row)] = torch.where(sp, torch.as_tensor(row), torch.full_like(torch.as_tensor(row), pad))
        return X, M, B

    def _predict_rows(self, rows, ids=None, masks=None) -> np.ndarray:
        """Class probabilities (len(rows), k) of ``rows`` (token id lists), batched by similar length."""
        ids = self.enc.ids if ids is None else ids
        order = sorted(range(len(rows)), key=lambda k: len(ids[rows[k]]))
        out = np.zeros((len(rows), max(self.n_outputs, 2)))
        dev = self.cfg.device
        with torch.no_grad():
            for s in range(0, len(order), PREDICT_ROWS):
                part = order[s : s + PREDICT_ROWS]
                X, M, _ = self._padded([rows[k] for k in part], ids)
                if masks is not None:
                    for j, k in enumerate(part):
                        m = masks[rows[k]]
                        M[j, : len(m)] = torch.as_tensor(m)
                logits = logits_of(self.tm.module(X.to(dev), M.to(dev))).cpu()
                out[part] = probabilities(logits).numpy()
        return out

    # --- spurious_token evidence --------------------------------------------------------------------------

    def _candidates(self, table: tuple[TokenStat, ...]) -> list[TokenStat]:
        need = max(CANDIDATE_MIN_ROWS, int(np.ceil(CANDIDATE_MIN_ROW_FRACTION * self.n_rows)))
        found = [t for t in table if not t.special and t.share >= CANDIDATE_MIN_SHARE and t.rows >= need]
        return found[:MAX_CANDIDATES]

    def _masking(self, table: tuple[TokenStat, ...]) -> tuple[TokenMaskingStat, ...]:
        """Per candidate word: mask every piece of it in the rows containing it (pad id, attention 0) and measure."""
        out = []
        wv = self.words
        key_of = {name: k for k, name in enumerate(wv.names)}
        by_word: dict[int, list[int]] = {}
        for i, keys in enumerate(wv.keys):
            for k in set(keys.tolist()):
                by_word.setdefault(k, []).append(i)
        rng = np.random.default_rng(self.cfg.seed)
        for cand in self._candidates(table):
            key = key_of.get(cand.token)
            rows = by_word.get(key, []) if key is not None else []
            if not rows:
                continue
            has = np.zeros(self.n_rows, dtype=bool)
            has[rows] = True
            sample = rows if len(rows) <= MASK_MAX_ROWS else sorted(rng.choice(rows, MASK_MAX_ROWS, replace=False))
            ids, masks = {}, {}
            for i in sample:
                hit = wv.keys[i][wv.index[i]] == key  # (L_i,) every piece of every occurrence of the word
                ids[i] = [self.pad_id if h else v for v, h in zip(self.enc.ids[i], hit, strict=True)]
                masks[i] = (~hit).astype(np.int64)
            self.step(f"masking '{cand.token}'")
            q = self._predict_rows(list(sample), ids, masks)
            p = self.probs[sample]
            sub_has = has if len(sample) == len(rows) else None
            if sub_has is None:  # rows without the token stay all; rows with it are the sample
                keep = np.ones(self.n_rows, dtype=bool)
                keep[rows] = False
                keep[sample] = True
                idx = np.flatnonzero(keep)
                sub_has = has[idx]
                pred_all, labels = self.pred[idx], None if self.labels is None else self.labels[idx]
            else:
                pred_all, labels = self.pred, self.labels
            out.append(masking_stat(
                cand.token, cand.share, share_low=cand.share_ci_low, has=sub_has, p=p, q=q, pred_all=pred_all,
                labels=labels,
                class_names=self.class_names, n_boot=self.cfg.n_boot, seed=self.cfg.seed,
            ))  # fmt: skip
        return tuple(out)

    # --- per-example views ----------------------------------------------------------------------------------

    def _example(self, i: int) -> TextExample:
        keep = self.words.attributions[i]  # (W_i,) per word: the sum of its pieces'
        label = "" if self.labels is None else self.class_names[int(self.labels[i])]
        return TextExample(
            row=int(i), tokens=tuple(self.words.texts(i)), attributions=tuple(round(float(v), 6) for v in keep),
            label=label, predicted=self.class_names[int(self.pred[i])], confidence=float(self.conf[i]),
            target_class=self._target_name(int(self.target[i])), rel_delta=float(self.rel[i]),
            truncated=bool(self.enc.truncated[i]),
        )  # fmt: skip

    def _examples(self) -> dict[str, tuple[TextExample, ...]]:
        g = max(int(self.cfg.gallery), 0)
        idx = np.arange(self.n_rows)
        most = np.lexsort((idx, -self.conf))[:g]
        least = np.lexsort((idx, self.conf))[:g]
        wrong = np.array([], dtype=np.int64)
        if self.labels is not None:
            bad = np.flatnonzero(self.pred != self.labels)
            wrong = bad[np.lexsort((bad, -self.conf[bad]))][:g]  # the most confidently wrong first
        return {
            "most_confident": tuple(self._example(int(i)) for i in most),
            "least_confident": tuple(self._example(int(i)) for i in least),
            "misclassified": tuple(self._example(int(i)) for i in wrong),
        }
