"""``spurious_token``: a word that drives a text classifier's predictions out of proportion to what it tells
about the label in the audited data (a shortcut learnt from the training data, such as a tag appended to the
positive reviews). Words, not the tokenizer's pieces: a word split into pieces (``f ##e ##at ##ur ##e``) is one
candidate whose attribution is the sum of its pieces' and whose masking hides all of them
(:mod:`audit.analysis.words`).

The candidates are the words that take a large share of all attribution across many rows (chosen by the text
modality: at least 2% of all |attribution| and in at least 5% of the rows and 20 rows; special tokens never).
Each was masked in the rows containing it (every piece of every occurrence replaced by the pad token and hidden by the
attention mask; :class:`audit.analysis.tokens.TokenMaskingStat`), and is judged with intervals:

1. *It drives predictions*: the lower end of the 95% bootstrap interval of the mean shift of the probability of
   the class it pushes towards, before minus after masking, is at least the threshold ``spurious_min_shift`` (0.05).
2. With labels, *out of proportion to what it tells*: the upper end of the 95% bootstrap interval of its
   benefit ratio is below ``noise_max_benefit`` (0.2, the bar of ``noise_leakage``). The benefit ratio is the
   loss increase on the true labels when the token is masked over the increase expected if the model's own
   predictions were right (``KL(p || q)``): about 1 for a token whose influence carries the signal (``great`` in
   reviews), about -1 for one the model follows without signal. ``fail`` when there is also no evidence that the
   token tells anything about the label (the rate of its class among rows with it minus the rate among rows
   without it has a Newcombe 95% interval that reaches 0): a shortcut that does not hold in the audited data.
   Otherwise ``warn``: it carries some signal, but the model makes far more of it than it is worth.
3. Without labels nothing says what the token tells, so the detector judges on reliance alone, at ``warn``, and
   only on reliance no genuine cue of a healthy model reaches: one token that takes at least
   :data:`LABEL_FREE_MIN_SHARE` (10%) of all attribution (lower end of its bootstrap interval), appears in at
   least :data:`LABEL_FREE_MIN_ROWS` (20%) of the rows and flips the predicted class of at least ``spurious_min_flip``
   (20%, lower Wilson bound) of them. (A label-free test of whether the rest of the text agrees with the token
   was tried and dropped: with one or two cue words per review, masking a genuine cue leaves nothing that agrees
   with it either.)

A shortcut that is as predictive in the audited data as in training cannot be told from a genuine cue by this
data: audit on data where it no longer holds (another source, a later period). Measured on the planted tiny BERT
of :mod:`audit.synthetic_text` (trained with the token on 80% of positive and 5% of negative reviews; 400 audited
rows, seeds 0 and 1): token on 50% / 50% of the audited positive / negative rows: fail, fail; 60% / 40%: warn,
warn; 70% / 30%: quiet, warn (benefit intervals up to 0.22 and 0.18); 80% / 5%, as in training: quiet, quiet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from audit.analysis.tokens import TokenMaskingStat
from audit.config import Thresholds
from audit.findings._common import fmt, num, pct
from audit.findings.base import Detector, FindingsInput, fixed_title
from audit.results import Finding, Severity

__all__ = ["detect", "CODE", "DETECTOR", "LABEL_FREE_MIN_SHARE", "LABEL_FREE_MIN_ROWS"]

CODE = "spurious_token"
LABEL_FREE_MIN_SHARE = 0.10  # no labels: lower bound of its share of all |attribution|
LABEL_FREE_MIN_ROWS = 0.20  # no labels: fraction of the rows containing it


def _ok(x: float) -> bool:
    return isinstance(x, float) and math.isfinite(x)


def detect(*, masking: Sequence[TokenMaskingStat], thresholds: Thresholds) -> list[Finding]:
    """Judge each masked candidate token (see the module notes).

    Parameters
    ----------
    masking : sequence of TokenMaskingStat
        One per candidate token, from the text modality.
    thresholds : Thresholds
        Uses ``noise_max_benefit``, ``spurious_min_shift`` and ``spurious_min_flip``.

    Returns
    -------
    list of Finding
        One per flagged token, largest share first.
    """
    min_shift = float(thresholds.spurious_min_shift)
    min_flip = float(thresholds.spurious_min_flip)
    max_benefit = float(thresholds.noise_max_benefit)
    out: list[Finding] = []
    for m in sorted(masking, key=lambda m: -m.share):
        if not (_ok(m.shift_low) and m.shift_low >= min_shift):
            continue
        if m.labelled:
            if not (_ok(m.benefit_high) and m.benefit_high < max_benefit):
                continue
            tells_nothing = _ok(m.info_low) and m.info_low <= 0.0
            out.append(_finding(m, Severity.FAIL if tells_nothing else Severity.WARN, tells_nothing, max_benefit,
                                min_shift, min_flip))
        elif (_ok(m.flip_low) and m.flip_low >= min_flip and m.share_low >= LABEL_FREE_MIN_SHARE
              and m.rows >= LABEL_FREE_MIN_ROWS * m.n_rows):
            out.append(_finding(m, Severity.WARN, True, max_benefit, min_shift, min_flip))
    return out


def _finding(m: TokenMaskingStat, sev: Severity, tells_nothing: bool, max_benefit: float,
             min_shift: float, min_flip: float) -> Finding:
    drives = (f"'{m.token}' carries {pct(m.share)} of all attribution over the {m.rows:,} rows containing it "
              f"({pct(m.rows / m.n_rows)} of the rows); masking it lowers the probability of '{m.towards}' by "
              f"{fmt(m.shift)} on average (95% CI {fmt(m.shift_low)} to {fmt(m.shift_high)}) and flips "
              f"{pct(m.flip_rate)} of their predictions")
    if m.labelled:
        told = (f"rows with it are '{m.towards}' {pct(m.label_rate)} of the time against {pct(m.label_rate_without)} "
                f"without it")
        worth = (f"its influence delivers {fmt(m.benefit)} of the benefit it would bring if it carried signal (95% "
                 f"CI {fmt(m.benefit_low)} to {fmt(m.benefit_high)}; a genuine cue gives about 1)")
        end = ("so the model relies on a shortcut that does not hold in the audited data." if tells_nothing else
               "so the model makes far more of it than it tells about the label.")
        message = f"{drives}, yet {told}: {worth}, {end}"
    else:
        message = (f"{drives}; the data has no labels to say whether it carries signal, but this much of the "
                   "predictions hinges on one word: check it with labelled data (--target-col).")
    evidence = {
        "token": m.token, "share": num(m.share), "share_ci_low": num(m.share_low), "rows": m.rows,
        "n_rows": m.n_rows, "towards": m.towards,
        "shift": num(m.shift), "shift_ci_low": num(m.shift_low), "shift_ci_high": num(m.shift_high),
        "flip_rate": num(m.flip_rate), "flip_ci_low": num(m.flip_low), "flip_ci_high": num(m.flip_high),
        "labelled": m.labelled, "label_rate": num(m.label_rate), "label_rate_without": num(m.label_rate_without),
        "info": num(m.info), "info_ci_low": num(m.info_low), "info_ci_high": num(m.info_high),
        "benefit": num(m.benefit), "benefit_ci_low": num(m.benefit_low), "benefit_ci_high": num(m.benefit_high),
        "max_benefit": num(max_benefit), "min_shift": num(min_shift),
    }  # fmt: skip
    if not m.labelled:
        evidence.update(min_flip=num(min_flip), min_share=num(LABEL_FREE_MIN_SHARE))
    return Finding(code=CODE, severity=sev, features=(m.token,), message=message, evidence=evidence)


def _detect(inp: FindingsInput, thresholds: Thresholds) -> list[Finding]:
    return detect(masking=inp.token_masking, thresholds=thresholds)


DETECTOR = Detector(
    code=CODE,
    title=fixed_title("A word drives predictions beyond what it tells"),
    applies=lambda inp: bool(inp.token_masking),
    detect=_detect,
)
