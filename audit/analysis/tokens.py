"""Token statistics of a text run: the global token table with bootstrap intervals, and the masking evidence the
``spurious_token`` detector reads.

Token table. Each position of each row has a token and an attribution (layer IG summed over the embedding
dimensions). Per token: its occurrences, the rows containing it, the mean |attribution| per occurrence, the mean
signed attribution per occurrence and its *share*, the sum of its |attribution| over the sum over all tokens.
Intervals come from a bootstrap over rows (the rows are the independent units; the occurrences in one row are
not): replicate ``b`` draws multinomial row counts ``w`` and gives ``(w @ S) / (w @ C)`` and ``(w @ S) / (w @ T)``
with ``S`` the per-row |attribution| sums of each token, ``C`` its per-row counts and ``T`` the rows' totals
(Efron & Tibshirani 1993, ch. 13; the cluster bootstrap of ratio estimators).

Masking evidence (:class:`TokenMaskingStat`). For a token, the rows containing it are run again with every
occurrence replaced by the pad token and hidden by the attention mask. Per row: the probabilities ``p`` before
and ``q`` after; the class ``c`` the token pushes towards (the class whose probability masking lowers most on
average); the shift ``p_c - q_c``; whether the predicted class flips. What the token tells about the label in
the audited data is the difference between the label rate of ``c`` among rows with the token and among rows
without it (Newcombe's hybrid score interval). With labels, the *benefit ratio* of
:func:`audit.analysis.neutralisation.benefit_interval`: the loss change on the true labels when the token is
masked over the change expected if the model's own predictions were right (``KL(p || q)``): about 1 for a token
that carries the signal the model draws from it, about -1 for one the model follows although it carries none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from audit.analysis.neutralisation import benefit_interval
from audit.results import FeatureStat, TokenStat

__all__ = ["TOP_TOKENS", "TokenMaskingStat", "token_table", "wilson", "newcombe", "masking_stat"]

TOP_TOKENS = 50  # tokens kept in the table (by share)
_ALPHA = 0.05
_Z = 1.959963984540054


@dataclass(frozen=True)
class TokenMaskingStat:
    """What masking one token does to the rows containing it, and what it tells about their labels.

    Attributes
    ----------
    token : str
    share, share_low : float
        Its share of all |attribution| and the lower end of its bootstrap 95% interval.
    rows, n_rows : int
        Rows containing it (all of them were masked), rows audited.
    towards : str
        The class its presence pushes towards.
    shift, shift_low, shift_high : float
        Mean ``p_c - q_c`` over its rows (probability of ``towards`` before minus after masking), bootstrap 95%.
    flip_rate, flip_low, flip_high : float
        Rows whose predicted class changes when it is masked (Wilson 95%).
    labelled : bool
    label_rate, label_rate_without : float
        Rate of ``towards`` among the labels of rows with / without it (NaN without labels).
    info, info_low, info_high : float
        ``label_rate - label_rate_without`` with Newcombe's 95% interval (NaN without labels).
    benefit, benefit_low, benefit_high : float
        Benefit ratio of the token's influence and its bootstrap 95% interval (NaN without labels).
    rest_rate, rest_rate_without : float
        Rate of ``towards`` among the masked predictions of rows with it (what the rest of their text says) and
        among the predictions of rows without it.
    rest, rest_low, rest_high : float
        Their difference with Newcombe's 95% interval.
    """

    token: str
    share: float
    share_low: float
    rows: int
    n_rows: int
    towards: str
    shift: float
    shift_low: float
    shift_high: float
    flip_rate: float
    flip_low: float
    flip_high: float
    labelled: bool
    label_rate: float
    label_rate_without: float
    info: float
    info_low: float
    info_high: float
    benefit: float
    benefit_low: float
    benefit_high: float
    rest_rate: float
    rest_rate_without: float
    rest: float
    rest_low: float
    rest_high: float


def wilson(k: int, n: int) -> tuple[float, float, float]:
    """Proportion ``k / n`` and its Wilson score 95% interval (NaN for n = 0)."""
    if n <= 0:
        return math.nan, math.nan, math.nan
    p = k / n
    den = 1 + _Z**2 / n
    mid = (p + _Z**2 / (2 * n)) / den
    half = _Z * math.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / den
    return p, max(0.0, mid - half), min(1.0, mid + half)


def newcombe(k1: int, n1: int, k2: int, n2: int) -> tuple[float, float, float]:
    """``k1/n1 - k2/n2`` with Newcombe's hybrid score 95% interval (method 10 of Newcombe, Stat. Med. 1998)."""
    p1, l1, u1 = wilson(k1, n1)
    p2, l2, u2 = wilson(k2, n2)
    if not (n1 and n2):
        return math.nan, math.nan, math.nan
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def _per_row(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, n: int, k: int) -> np.ndarray:
    out = np.zeros((n, k))
    np.add.at(out, (rows, cols), values)
    return out


def token_table(
    ids: list[np.ndarray], attributions: list[np.ndarray], special: list[np.ndarray], token_of, *,
    top: int = TOP_TOKENS, n_boot: int = 200, seed: int = 0, rows: np.ndarray | None = None,
) -> tuple[tuple[TokenStat, ...], tuple[FeatureStat, ...], int]:
    """The token table of the rows ``rows`` (all by default).

    Parameters
    ----------
    ids, attributions, special : lists of ndarray of shape (L_i,)
        Per row its token ids, their attributions and the special-token flags (padding already dropped).
    token_of : callable
        ``token_of(id) -> str``.
    top : int
        Tokens kept, by share.

    Returns
    -------
    (tokens, features, n_distinct)
        ``tokens``: the top tokens as :class:`TokenStat`, rank order; ``features``: the same tokens as the run's
        global ranking (:class:`FeatureStat` with ``mean_abs`` the |attribution| per audited row, so that
        ``share`` is its share; the names made unique); ``n_distinct``: distinct tokens seen.
    """
    sel = np.arange(len(ids)) if rows is None else np.asarray(rows, dtype=np.int64)
    n = int(sel.size)
    if n == 0:
        return (), (), 0
    lens = np.asarray([len(ids[i]) for i in sel])
    r = np.repeat(np.arange(n), lens)  # (positions,)
    t = np.concatenate([np.asarray(ids[i], dtype=np.int64) for i in sel])
    a = np.concatenate([np.asarray(attributions[i], dtype=np.float64) for i in sel])
    sp = np.concatenate([np.asarray(special[i], dtype=bool) for i in sel])
    uniq, inv = np.unique(t, return_inverse=True)
    absa = np.abs(a)
    sum_abs = np.bincount(inv, absa, minlength=uniq.size)
    sum_signed = np.bincount(inv, a, minlength=uniq.size)
    occ = np.bincount(inv, minlength=uniq.size)
    row_tok = np.unique(r * uniq.size + inv)
    n_rows_with = np.bincount(row_tok % uniq.size, minlength=uniq.size)
    total = float(sum_abs.sum())
    share = sum_abs / total if total > 0 else np.zeros(uniq.size)
    order = np.lexsort((uniq, -sum_abs))[:top]  # (k,) largest share first, ties: smaller id
    k = order.size
    col = np.full(uniq.size, -1)
    col[order] = np.arange(k)
    keep = col[inv] >= 0
    S = _per_row(absa[keep], r[keep], col[inv][keep], n, k)  # (n, k)
    C = _per_row(np.ones(int(keep.sum())), r[keep], col[inv][keep], n, k)  # (n, k)
    T = np.bincount(r, absa, minlength=n)  # (n,)
    mean_lo = mean_hi = share_lo = share_hi = row_lo = row_hi = None
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        W = rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)  # (n_boot, n)
        WS, WC, WT = W @ S, W @ C, W @ T  # (n_boot, k), (n_boot, k), (n_boot,)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_b = np.where(WC > 0, WS / np.where(WC > 0, WC, 1), np.nan)
            share_b = WS / np.where(WT > 0, WT, 1)[:, None]
        mean_lo, mean_hi = np.nanquantile(mean_b, [_ALPHA / 2, 1 - _ALPHA / 2], axis=0)
        share_lo, share_hi = np.quantile(share_b, [_ALPHA / 2, 1 - _ALPHA / 2], axis=0)
        row_lo, row_hi = np.quantile(WS / n, [_ALPHA / 2, 1 - _ALPHA / 2], axis=0)
    is_special = np.zeros(uniq.size, dtype=bool)
    np.logical_or.at(is_special, inv, sp)
    tokens, features, seen = [], [], set()
    for rank, j in enumerate(order, start=1):
        c = col[j]
        mean_abs = float(sum_abs[j] / occ[j])
        lo = mean_abs if mean_lo is None else float(min(mean_lo[c], mean_abs))
        hi = mean_abs if mean_hi is None else float(max(mean_hi[c], mean_abs))
        sl = share[j] if share_lo is None else float(min(share_lo[c], share[j]))
        sh = share[j] if share_hi is None else float(max(share_hi[c], share[j]))
        name = str(token_of(int(uniq[j])))
        tokens.append(TokenStat(
            token=name, rank=rank, occurrences=int(occ[j]), rows=int(n_rows_with[j]), mean_abs=mean_abs,
            mean=float(sum_signed[j] / occ[j]), share=float(share[j]), ci_low=lo, ci_high=hi, share_ci_low=sl,
            share_ci_high=sh, special=bool(is_special[j]),
        ))  # fmt: skip
        unique = name if name not in seen else f"{name}#{int(uniq[j])}"
        seen.add(unique)
        per_row = float(sum_abs[j] / n)
        features.append(FeatureStat(
            name=unique, rank=rank, mean_abs=per_row, mean=float(sum_signed[j] / n),
            std=float(np.std(_signed_per_row(a, r, inv, j, n))), share=float(share[j]),
            ci_low=per_row if row_lo is None else float(min(row_lo[c], per_row)),
            ci_high=per_row if row_hi is None else float(max(row_hi[c], per_row)),
        ))  # fmt: skip
    return tuple(tokens), tuple(features), int(uniq.size)


def _signed_per_row(a: np.ndarray, r: np.ndarray, inv: np.ndarray, j: int, n: int) -> np.ndarray:
    m = inv == j
    return np.bincount(r[m], a[m], minlength=n)


def _shift_interval(shift: np.ndarray, n_boot: int, seed: int) -> tuple[float, float, float]:
    point = float(shift.mean())
    if n_boot < 1 or shift.size < 2:
        return point, point, point
    rng = np.random.default_rng(seed)
    means = shift[rng.integers(0, shift.size, size=(n_boot, shift.size))].mean(axis=1)
    lo, hi = np.quantile(means, [_ALPHA / 2, 1 - _ALPHA / 2])
    return point, float(min(lo, point)), float(max(hi, point))


def masking_stat(
    token: str, share: float, *, share_low: float | None = None, has: np.ndarray, p: np.ndarray, q: np.ndarray,
    pred_all: np.ndarray,
    labels: np.ndarray | None, class_names: tuple[str, ...], n_boot: int = 200, seed: int = 0,
) -> TokenMaskingStat:
    """The masking evidence of one token.

    Parameters
    ----------
    has : ndarray of bool, shape (n_rows,)
        Rows containing the token.
    p, q : ndarray of shape (rows, k)
        Class probabilities of those rows before and after masking it.
    pred_all : ndarray of shape (n_rows,)
        Predicted class of every audited row (unmasked).
    labels : ndarray of shape (n_rows,) or None
        Class indices.
    """
    n_rows, m = int(has.size), int(has.sum())
    diff = (p - q).mean(axis=0)  # (k,)
    c = int(np.argmax(diff))
    shift, s_lo, s_hi = _shift_interval(p[:, c] - q[:, c], n_boot, seed)
    flips = int((p.argmax(1) != q.argmax(1)).sum())
    fr, f_lo, f_hi = wilson(flips, m)
    without = ~has
    rest = newcombe(int((q.argmax(1) == c).sum()), m, int((pred_all[without] == c).sum()), int(without.sum()))
    nan = math.nan
    info = (nan, nan, nan)
    benefit = (nan, nan, nan)
    rate = rate_without = nan
    if labels is not None:
        y_with, y_without = labels[has], labels[without]
        k1, k2 = int((y_with == c).sum()), int((y_without == c).sum())
        info = newcombe(k1, m, k2, int(without.sum()))
        rate = k1 / m if m else nan
        rate_without = k2 / int(without.sum()) if without.any() else nan
        eps = 1e-12
        rows = np.arange(m)
        d = -np.log(q[rows, y_with] + eps) + np.log(p[rows, y_with] + eps)  # (m,) loss change when masked
        expected = np.maximum((p * (np.log(p + eps) - np.log(q + eps))).sum(axis=1), 0.0)  # KL(p || q)
        benefit = benefit_interval(d, expected, n_boot=n_boot, seed=seed)
    return TokenMaskingStat(
        token=token, share=float(share), share_low=float(share if share_low is None else share_low), rows=m,
        n_rows=n_rows,
        towards=class_names[c] if c < len(class_names) else f"class {c}",
        shift=shift, shift_low=s_lo, shift_high=s_hi, flip_rate=fr, flip_low=f_lo, flip_high=f_hi,
        labelled=labels is not None, label_rate=float(rate), label_rate_without=float(rate_without),
        info=info[0], info_low=info[1], info_high=info[2], benefit=benefit[0], benefit_low=benefit[1],
        benefit_high=benefit[2], rest_rate=float((q.argmax(1) == c).mean()) if m else nan,
        rest_rate_without=float((pred_all[without] == c).mean()) if without.any() else nan,
        rest=rest[0], rest_low=rest[1], rest_high=rest[2],
    )  # fmt: skip
