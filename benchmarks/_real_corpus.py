"""The real-table corpus (issue 16): bundled public tables at their raw scale, models that normalise inside
themselves or not at all, the defects real tables contain, and the scoring arithmetic.

Nothing here imports ``audit``: the corpus is what the detectors are judged against. :mod:`bench_real` runs the
audits (through :func:`bench_findings.run_case`, the same call as the findings benchmark) and prints the tables.

Data (no network; every table ships inside a package; the CSV keeps the raw values, nothing is standardised):

- ``breast_cancer`` (binary): scikit-learn, 30 measurements (areas ~100-4000, smoothness ~0.1), 0 = malignant.
- ``wine`` (3 classes): scikit-learn, 13 measurements (proline 278-1680).
- ``iris`` (3 classes): scikit-learn, 4 measurements.
- ``diabetes`` (regression): scikit-learn ``scaled=False``: age in years, sex 1/2, bmi, blood pressure, 6 serum
  values; disease progression 25-346.
- ``penguins`` (3 classes): palmerpenguins, species from bill/flipper/mass/year with ``island_*`` and ``sex_*``
  one-hot (``pd.get_dummies``); rows with missing values dropped (``dropna``: 344 -> 333).
- ``fair`` (binary): statsmodels, ``affairs > 0`` (32% positive), ``occupation_*`` and ``occupation_husb_*``
  one-hot (two blocks whose prefixes overlap); a fixed random 2,400 of the 6,366 rows.
- ``anes96`` (binary): statsmodels, vote (Dole = 1, 42%) from party id, self-placement, population (0-7300),
  TV news, age, education, income.
- ``randhie`` (binary, the imbalanced table): statsmodels, more than 5 doctor visits a year (15% positive); a
  fixed random 2,400 of the 20,190 rows.
- ``star98`` (regression): statsmodels, share of students above the national median from 20 school features
  with interactions (up to ~70,000).

The seed drives the 70/30 train/validation split, the weight init and the training order. The validation split
(features + ``target``, + ``segment`` for slice cases) is what gets audited. Models (:data:`MODELS`):
``std_linear`` (standardisation buffers + a linear layer; one logit on binary tasks: logistic regression),
``std_mlp`` (buffers + MLP 64-64), ``bn_mlp`` (``BatchNorm1d`` first, in eval mode when saved) and ``raw_mlp``
(the raw columns straight into the MLP, full-batch Adam for longer; not on star98, see :data:`EXCLUDED`).
Regression targets are standardised inside the model (output buffers), inputs are not.

Plants (:data:`PLANTS`: the codes that count as a catch and the severity needed; :data:`STRENGTH`: the strength)
go into both splits, so the model learns them. Small-sample cases audit a random 20 / 60 / 200 validation rows of
a model trained on the whole train split. Clean twins: ``slice_clean`` (a random segment), ``strong_only`` (a
healthy model given its best real feature and a few weak ones), ``small`` (a healthy model, few rows audited).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn


def _sibling(name: str) -> Any:
    """A module of this folder by file path (the benchmarks are scripts and the tests load them by path, so
    ``benchmarks/`` need not be on ``sys.path``)."""
    import importlib.util
    import sys

    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules[name]


# the scoring and the network body are the findings corpus's own (neither module imports audit)
_findings = _sibling("_findings_corpus")
wilson, _frac, _core = _findings.wilson, _findings._frac, _findings._core

__all__ = [
    "DATASETS", "MODELS", "EXCLUDED", "PLANTS", "STRENGTH", "QUIET", "SMALL_BASE", "SMALL_SIZES", "VAL_FRACTION",
    "Table", "Plant", "CaseSpec", "CaseData", "Trained", "load_table", "build_case", "train_model", "write_case",
    "corpus", "wilson", "summarise", "worst", "caught", "quality",
]  # fmt: skip

VAL_FRACTION = 0.3
SUBSAMPLE = 2400  # rows kept of the large tables (fair, randhie): a fixed random sample
FOLLOWUP_DAYS = (1, 120)  # follow-up column: integer days, uniform, for the event class only
NOISE_SIGMA = 0.15  # label + N(0, NOISE_SIGMA^2)
CODE_STEP, CODE_NOISE = 1000.0, 10.0  # monotone (classes): CODE_STEP * label + N(0, CODE_NOISE^2)
EXP_SPAN = 4.0  # monotone (regression): exp(EXP_SPAN * (y - min y) / (max y - min y))
ID_START = 100001  # record numbers start here
SMALL_SIZES = (20, 60, 200)

LEAKS = ("target_leakage", "identifier_leakage")


@dataclass(frozen=True)
class Plant:
    codes: tuple[str, ...]  # any of these raised at `severity` or worse counts as a catch
    severity: str  # "fail" or "warn"
    target: bool = True  # the targets apply (False: a harder strength, measured only)


PLANTS: dict[str, Plant] = {
    "followup": Plant(LEAKS[:1], "fail"),
    "label_noise": Plant(LEAKS[:1], "fail"),
    "monotone": Plant(LEAKS[:1], "fail"),
    "partial97": Plant(LEAKS[:1], "fail"),
    "partial99": Plant(LEAKS[:1], "fail"),
    "category": Plant(LEAKS[:1], "fail"),
    "shuffled_id": Plant(LEAKS, "fail"),
    "small_id": Plant(LEAKS, "fail"),
    "small_followup": Plant(LEAKS[:1], "fail"),
    "reversed_slice": Plant(("slice_skew",), "warn"),
}
# clean twins -> the code that must stay quiet there (strong_only: at most warn, i.e. no fail)
QUIET: dict[str, str | None] = {"slice_clean": "slice_skew", "strong_only": "target_leakage", "small": None}
# small-sample twin -> the case it audits a part of (same split, plant and model; None: the clean case)
SMALL_BASE: dict[str, str | None] = {"small": None, "small_id": "shuffled_id", "small_followup": "followup"}
STRENGTH: dict[str, str] = {
    "followup": f"followup_days: 0 (missing, filled with 0) for one class, U{{{FOLLOWUP_DAYS[0]}..{FOLLOWUP_DAYS[1]}}}"
                " days for the event class",
    "label_noise": f"score = label + N(0, {NOISE_SIGMA}^2)",
    "monotone": f"classes: {CODE_STEP:g} * label + N(0, {CODE_NOISE:g}^2); regression: exp({EXP_SPAN:g} * (y - min) /"
                " range)",
    "partial97": "copy of the label (target) on 97% of rows, another class (another row's target) on 3%",
    "partial99": "copy of the label (target) on 99% of rows, another class (another row's target) on 1%",
    "category": "decision: one level per class, one-hot (decision_*)",
    "shuffled_id": f"record_no = {ID_START} + rank after sorting by outcome; files shuffled",
    "small_id": "shuffled_id, audited on 20 / 60 / 200 rows",
    "small_followup": "followup, audited on 20 / 60 / 200 rows",
    "reversed_slice": "segment B: top feature mirrored (min + max - x), so its effect has the opposite sign;"
                      " --slice-col segment, segment_b an input",
    "slice_clean": "random segment A/B, segment_b an input, --slice-col segment",
    "strong_only": "best real feature + 2-4 weak ones (iris petal width, penguin bill/flipper, worst perimeter)",
    "small": "healthy model, audited on a random 20 / 60 / 200 validation rows",
}  # fmt: skip


# --- tables -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str
    X: pd.DataFrame  # (n, F) raw feature values (one-hot columns 0/1)
    y: np.ndarray  # (n,) labels 0..k-1 (int) or regression target (float)
    task: str  # binary | multiclass | regression
    n_classes: int  # 1 for regression
    onehot: dict[str, list[str]] = field(default_factory=dict)  # prefix -> its one-hot columns
    strong: tuple[str, ...] = ()  # strong_only: the features kept (the strong one first)
    meta: dict[str, Any] = field(default_factory=dict)


def _clean_name(s: object) -> str:
    return str(s).replace(" ", "_").replace("(", "").replace(")", "")


def _dummies(df: pd.DataFrame, cols: Sequence[str]) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One-hot ``cols`` the pandas way (every level kept, 0/1 integers); returns the blocks by prefix."""
    parts, blocks = [df.drop(columns=list(cols))], {}
    for c in cols:  # one at a time: the prefix "occupation" must not claim "occupation_husb_*"
        d = pd.get_dummies(df[c], prefix=c, dtype=np.int64)
        d.columns = [_clean_name(k) for k in d.columns]
        parts.append(d)
        blocks[c] = list(d.columns)
    return pd.concat(parts, axis=1), blocks


def _sample(df: pd.DataFrame, name: str) -> pd.DataFrame:
    if len(df) <= SUBSAMPLE:
        return df.reset_index(drop=True)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return df.iloc[np.sort(rng.choice(len(df), SUBSAMPLE, replace=False))].reset_index(drop=True)


def _sklearn(name: str) -> Table:
    from sklearn import datasets as skd

    fn, task = {"breast_cancer": (skd.load_breast_cancer, "binary"), "wine": (skd.load_wine, "multiclass"),
                "iris": (skd.load_iris, "multiclass"), "diabetes": (skd.load_diabetes, "regression")}[name]  # fmt: skip
    b = fn(scaled=False) if name == "diabetes" else fn()
    X = pd.DataFrame(b.data.astype(np.float64), columns=[_clean_name(c) for c in b.feature_names])
    y = b.target.astype(np.float64 if task == "regression" else np.int64)
    strong = {"breast_cancer": ("worst_perimeter", "mean_texture", "mean_smoothness"),
              "iris": ("petal_width_cm", "sepal_length_cm", "sepal_width_cm")}.get(name, ())  # fmt: skip
    k = 1 if task == "regression" else int(y.max()) + 1
    return Table(name, X, y, task, k, strong=strong)


def _penguins() -> Table:
    import palmerpenguins

    raw = palmerpenguins.load_penguins()
    df = raw.dropna().reset_index(drop=True)  # 11 rows without sex, 2 without any measurement
    species = sorted(df["species"].unique())
    y = df["species"].map({s: i for i, s in enumerate(species)}).to_numpy(np.int64)
    X, blocks = _dummies(df.drop(columns=["species"]), ["island", "sex"])
    X = X.astype({c: np.float64 for c in X.columns if c not in sum(blocks.values(), [])})
    strong = ("bill_length_mm", "flipper_length_mm", "body_mass_g", *blocks["sex"])
    meta = {"rows_raw": len(raw), "rows_dropped_na": len(raw) - len(df), "classes": species}
    return Table("penguins", X, y, "multiclass", 3, onehot=blocks, strong=strong, meta=meta)


def _statsmodels(name: str) -> Table:
    from statsmodels import api as sm

    df = getattr(sm.datasets, name).load_pandas().data.astype(np.float64)
    blocks: dict[str, list[str]] = {}
    if name == "fair":
        df = _sample(df, name)
        y = (df.pop("affairs") > 0).to_numpy(np.int64)
        for c in ("occupation", "occupation_husb"):
            df[c] = df[c].astype(np.int64)
        X, blocks = _dummies(df, ["occupation", "occupation_husb"])
        task = "binary"
    elif name == "anes96":
        y = df.pop("vote").to_numpy(np.int64)
        X = df.drop(columns=["logpopul"])  # log of popul, a derived copy
        task = "binary"
    elif name == "randhie":
        df = _sample(df, name)
        y = (df.pop("mdvis") > 5).to_numpy(np.int64)
        X, task = df, "binary"
    elif name == "star98":
        above, below = df.pop("NABOVE"), df.pop("NBELOW")
        y = (above / (above + below)).to_numpy(np.float64)
        X, task = df, "regression"
    else:
        raise KeyError(name)
    k = 1 if task == "regression" else int(y.max()) + 1
    meta = {"positive_rate": round(float(y.mean()), 3)} if task == "binary" else {}
    return Table(name, X.reset_index(drop=True), y, task, k, onehot=blocks, meta=meta)


DATASETS: tuple[str, ...] = (
    "breast_cancer", "wine", "iris", "diabetes", "penguins", "fair", "anes96", "randhie", "star98",
)  # fmt: skip
_CACHE: dict[str, Table] = {}


def load_table(name: str) -> Table:
    if name not in _CACHE:
        if name in ("breast_cancer", "wine", "iris", "diabetes"):
            _CACHE[name] = _sklearn(name)
        elif name == "penguins":
            _CACHE[name] = _penguins()
        else:
            _CACHE[name] = _statsmodels(name)
    return _CACHE[name]


# --- cases ------------------------------------------------------------------------------------------------

# model kind -> (input layer: "std" | "bn" | "raw", hidden widths, learning rate, max epochs, patience, batch size)
# raw_mlp: full-batch Adam, lr 3e-3, up to 3,000 steps (minibatches of 64 took ~10x the time for a worse model;
# lr 1e-2 for 1,500 steps left raw penguins at 0.75 accuracy on two seeds of three)
MODELS: dict[str, tuple[str, tuple[int, ...], float, int, int, int | None]] = {
    "std_linear": ("std", (), 1e-2, 150, 12, 64),
    "std_mlp": ("std", (64, 64), 3e-3, 150, 12, 64),
    "bn_mlp": ("bn", (64, 64), 3e-3, 150, 12, 64),
    "raw_mlp": ("raw", (64, 64), 3e-3, 3000, 300, None),
}
# (table, model) pairs left out: star98's interaction columns reach ~70,000 and a raw MLP gets R^2 0.05-0.25
# there (the buffer and BatchNorm models ~0.8): not a healthy model anyone would ship
EXCLUDED: frozenset[tuple[str, str]] = frozenset({("star98", "raw_mlp")})


@dataclass(frozen=True)
class CaseSpec:
    dataset: str
    model: str
    seed: int
    twin: str | None = None  # None: a clean case with default options
    n_audit: int | None = None  # small-sample cases: audit this many validation rows

    @property
    def kind(self) -> str:
        return "planted" if self.twin in PLANTS else "clean"

    @property
    def planted_code(self) -> str | None:
        return PLANTS[self.twin].codes[0] if self.twin in PLANTS else None

    @property
    def base(self) -> CaseSpec:
        """The case whose split, plant and model a small-sample case shares (itself otherwise)."""
        return CaseSpec(self.dataset, self.model, self.seed, SMALL_BASE.get(self.twin or "", self.twin))

    @property
    def label(self) -> str:
        tail = (f"/{self.twin}" if self.twin else "") + (f"/n{self.n_audit}" if self.n_audit else "")
        return f"{self.dataset}/{self.model}/s{self.seed}{tail}"


@dataclass
class CaseData:
    """One case's data, as written to CSV (raw values)."""

    spec: CaseSpec
    task: str
    n_classes: int
    names: list[str]  # feature columns, model input order
    train: pd.DataFrame  # features + target
    val: pd.DataFrame  # features + target (+ segment): the audited file
    onehot: dict[str, list[str]]
    slice_col: str | None = None
    planted_feature: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _rng(spec: CaseSpec, salt: str = "") -> np.random.Generator:
    spec = spec.base  # a small-sample case draws its split and plant as its base case does
    return np.random.default_rng([spec.seed, zlib.crc32(f"{spec.dataset}|{spec.twin}|{salt}".encode())])


def _event_class(y: np.ndarray) -> int:
    """The rarer class of a binary label (the 'event' a follow-up exists for)."""
    return int(np.argmin(np.bincount(y, minlength=2)))


def _partial_copy(y: np.ndarray, idx: np.ndarray, share: float, k: int, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``y`` wrong on exactly round((1 - share) * len) rows of each split ``idx``."""
    out = y.astype(np.float64).copy()
    for part in idx:
        wrong = rng.choice(part, int(round((1.0 - share) * part.size)), replace=False)
        if k > 1:
            out[wrong] = (y[wrong] + rng.integers(1, k, wrong.size)) % k  # another class, never the same
        else:  # regression: another row's target
            out[wrong] = y[rng.choice(y.size, wrong.size)]
    return out


def build_case(spec: CaseSpec) -> CaseData:
    """The train and validation frames of ``spec`` with its plant, at the raw scale."""
    tab = load_table(spec.dataset)
    rng = _rng(spec)
    X = tab.X.copy()
    y = tab.y.copy()
    n = len(y)
    perm = rng.permutation(n)
    n_val = int(round(VAL_FRACTION * n))
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    twin = spec.base.twin or ""  # the plant (small_id plants shuffled_id, ...)
    onehot = {p: list(c) for p, c in tab.onehot.items()}
    meta: dict[str, Any] = {"strength": STRENGTH.get(spec.twin or "", ""), **tab.meta}
    planted: str | None = None
    segment: np.ndarray | None = None
    k = tab.n_classes

    if twin == "strong_only":
        X = X[list(tab.strong)]
        onehot = {p: c for p, c in onehot.items() if set(c) <= set(X.columns)}
        meta["strong"] = tab.strong[0]
    if twin == "followup":
        event = y == _event_class(y)
        days = rng.integers(FOLLOWUP_DAYS[0], FOLLOWUP_DAYS[1] + 1, n).astype(np.float64)
        # the column exists only after the outcome: missing for the other class, filled the pandas way
        X["followup_days"] = pd.Series(np.where(event, days, np.nan)).fillna(0.0).to_numpy()
        planted = "followup_days"
        meta["event_class"] = _event_class(y)
    if twin == "label_noise":
        X["score"] = y + rng.normal(0.0, NOISE_SIGMA, n)
        planted = "score"
    if twin == "monotone":
        if tab.task == "regression":
            X["exp_target"] = np.exp(EXP_SPAN * (y - y.min()) / (y.max() - y.min()))
            planted = "exp_target"
        else:
            X["status_code"] = CODE_STEP * y + rng.normal(0.0, CODE_NOISE, n)
            planted = "status_code"
    if twin in ("partial97", "partial99"):
        share = 0.97 if twin == "partial97" else 0.99
        X["label_copy"] = _partial_copy(y, (tr_idx, val_idx), share, k, rng)
        planted = "label_copy"
        meta["share"] = share
    if twin == "category":
        levels = ["granted", "refused"] if k == 2 else [f"L{c}" for c in range(k)]
        cat = pd.DataFrame({"decision": np.asarray(levels, dtype=object)[y]})
        dummies, blocks = _dummies(cat, ["decision"])
        X = pd.concat([X, dummies], axis=1)
        onehot.update(blocks)
        planted = blocks["decision"][0]
        meta["levels"] = levels
    if twin == "shuffled_id":
        order = np.lexsort((rng.random(n), y))  # sorted by outcome, random tie-break
        rec = np.empty(n, dtype=np.int64)
        rec[order] = ID_START + np.arange(n)
        X["record_no"] = rec
        planted = "record_no"  # the split order is already random: both files are shuffled
    if twin in ("reversed_slice", "slice_clean"):
        segment = np.where(rng.random(n) < 0.5, "A", "B")
        X["segment_b"] = (segment == "B").astype(np.int64)
        if twin == "reversed_slice":
            top = _top_continuous(X.iloc[tr_idx], y[tr_idx], set(sum(onehot.values(), [])) | {"segment_b"})
            lo, hi = float(X[top].min()), float(X[top].max())
            X[top] = np.where(segment == "B", lo + hi - X[top].to_numpy(np.float64), X[top].to_numpy(np.float64))
            planted = top
            meta["mirrored"] = top

    def frame(idx: np.ndarray) -> pd.DataFrame:
        df = X.iloc[idx].reset_index(drop=True)
        df["target"] = y[idx]
        if segment is not None:
            df["segment"] = segment[idx]
        return df

    train, val = frame(tr_idx), frame(val_idx)
    if spec.n_audit is not None:
        if spec.n_audit > len(val):
            raise ValueError(f"{spec.label}: {spec.n_audit} rows asked, validation has {len(val)}")
        # nested: the 20 audited rows are the first 20 of the 60, of the 200
        val = val.iloc[np.sort(_rng(spec, "audit").permutation(len(val))[: spec.n_audit])]
        val = val.reset_index(drop=True)
    return CaseData(
        spec=spec, task=tab.task, n_classes=k, names=list(X.columns), train=train, val=val, onehot=onehot,
        slice_col="segment" if segment is not None else None, planted_feature=planted, meta=meta,
    )


def _top_continuous(X: pd.DataFrame, y: np.ndarray, skip: set[str]) -> str:
    """The non-indicator column with the largest |Pearson correlation| with the target."""
    best, name = -1.0, ""
    for c in X.columns:
        v = X[c].to_numpy(np.float64)
        if c in skip or np.unique(v).size <= 2 or v.std() == 0:
            continue
        r = abs(float(np.corrcoef(v, y.astype(np.float64))[0, 1]))
        if r > best:
            best, name = r, c
    return name


# --- models -----------------------------------------------------------------------------------------------


class Standardize(nn.Module):
    """``(x - mean) / std`` with the train split's statistics as buffers."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(np.where(std > 0, std, 1.0), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Net(nn.Module):
    """``core(pre(x)) * out_scale + out_shift``; regression squeezes to shape (rows,), so does a single logit."""

    def __init__(self, pre: nn.Module, core: nn.Module, out_shift: float, out_scale: float, squeeze: bool) -> None:
        super().__init__()
        self.pre = pre
        self.core = core
        self.register_buffer("out_shift", torch.tensor(float(out_shift)))
        self.register_buffer("out_scale", torch.tensor(float(out_scale)))
        self.squeeze = squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.core(self.pre(x)) * self.out_scale + self.out_shift
        if self.squeeze:
            out = out.squeeze(-1)
        return out


@dataclass
class Trained:
    module: Net
    quality: float  # validation accuracy (classifiers) or R^2 (regression)
    metric: str
    train_quality: float
    epochs: int
    auc: float | None = None  # binary tasks: validation ROC AUC
    single_logit: bool = False


def _auc(score: np.ndarray, y: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula (ties get average ranks)."""
    ranks = pd.Series(score).rank().to_numpy()
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _outputs(module: nn.Module, X: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.tensor(np.asarray(X, dtype=np.float64), dtype=torch.float32)).numpy()


def quality(module: nn.Module, X: np.ndarray, y: np.ndarray, task: str, single_logit: bool) -> float:
    """Accuracy of a classifier (argmax, or logit > 0 for a single-logit head), R^2 of a regressor."""
    out = _outputs(module, X)
    if task == "regression":
        out = out.reshape(-1)
        ss = float(((y - y.mean()) ** 2).sum())
        return 1.0 - float(((y - out) ** 2).sum()) / ss if ss > 0 else float("nan")
    pred = (out.reshape(-1) > 0).astype(np.int64) if single_logit else out.argmax(1)
    return float((pred == y).mean())


_TRAINED: dict[tuple[CaseSpec, int | None], tuple[Net, int, float]] = {}  # base case -> (model, epochs, train q)


def train_model(data: CaseData, *, max_epochs: int | None = None) -> Trained:
    """Adam on the train split (raw values) with early stopping on 15% of it; the validation split is never seen.

    A small-sample case reuses its base case's model when this process trained it already (same split and
    seed: the same model).

    ``std`` models standardise inside themselves with buffers from the train split, ``bn`` ones learn a
    ``BatchNorm1d`` first layer (saved in eval mode), ``raw`` ones see the raw columns. Binary ``std_linear`` is a
    logistic regression (one logit); every other classifier has one logit per class.
    """
    spec = data.spec
    kind, hidden, lr, epochs, patience, batch_size = MODELS[spec.model]
    epochs = max_epochs or epochs
    logit1 = data.task == "binary" and not hidden
    Xtr = data.train[data.names].to_numpy(np.float64)  # (n, F) raw
    ytr = data.train["target"].to_numpy()
    key = (spec.base, max_epochs)
    if key not in _TRAINED:
        _TRAINED[key] = _fit(data, Xtr, ytr, epochs, patience, batch_size, kind, hidden, lr, logit1)
    net, epoch, qt = _TRAINED[key]
    Xval = data.val[data.names].to_numpy(np.float64)
    yval = data.val["target"].to_numpy()
    q = quality(net, Xval, yval, data.task, logit1)
    auc = None
    if data.task == "binary":
        out = _outputs(net, Xval)
        auc = _auc(out.reshape(-1) if logit1 else out[:, 1] - out[:, 0], yval)
    return Trained(net, q, "r2" if data.task == "regression" else "acc", qt, epoch, auc, logit1)


def _fit(
    data: CaseData, Xtr: np.ndarray, ytr: np.ndarray, epochs: int, patience: int, batch_size: int | None, kind: str,
    hidden: tuple[int, ...], lr: float, logit1: bool,
) -> tuple[Net, int, float]:  # fmt: skip
    spec = data.spec.base
    torch.manual_seed(spec.seed)
    rng = _rng(spec, "train")
    F = Xtr.shape[1]
    if kind == "std":
        pre: nn.Module = Standardize(Xtr.mean(0), Xtr.std(0))
    elif kind == "bn":
        pre = nn.BatchNorm1d(F)
    else:
        pre = nn.Identity()
    if data.task == "regression":
        out_shift, out_scale = float(ytr.mean()), float(ytr.std() or 1.0)
        t = torch.tensor((ytr - out_shift) / out_scale, dtype=torch.float32)
        n_out, loss_fn = 1, nn.MSELoss()
    elif logit1:
        out_shift, out_scale = 0.0, 1.0
        t = torch.tensor(ytr, dtype=torch.float32)
        n_out, loss_fn = 1, nn.BCEWithLogitsLoss()
    else:
        out_shift, out_scale = 0.0, 1.0
        t = torch.tensor(ytr, dtype=torch.long)
        n_out, loss_fn = data.n_classes, nn.CrossEntropyLoss()
    squeeze = n_out == 1
    net = Net(pre, _core(F, hidden, n_out), 0.0, 1.0, squeeze)  # trained on the standardised target
    X = torch.tensor(Xtr, dtype=torch.float32)
    order = rng.permutation(X.shape[0])
    n_stop = max(1, int(0.15 * X.shape[0]))
    stop_idx, fit_idx = torch.as_tensor(order[:n_stop]), torch.as_tensor(order[n_stop:])
    batch_size = batch_size or fit_idx.numel()

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        return loss_fn(net(X[idx]), t[idx])

    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(spec.seed)
    best, best_state, bad, epoch = math.inf, None, 0, 0
    for epoch in range(1, epochs + 1):  # noqa: B007 (epoch is reported)
        net.train()
        shuffled = fit_idx[torch.randperm(fit_idx.numel(), generator=gen)]
        for i in range(0, shuffled.numel() - 1, batch_size):  # never a batch of one (BatchNorm)
            opt.zero_grad()
            loss_of(shuffled[i : i + batch_size]).backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            v = float(loss_of(stop_idx))
        if v < best - 1e-6:
            best, bad = v, 0
            best_state = {k: p.detach().clone() for k, p in net.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.out_shift.fill_(out_shift)
    net.out_scale.fill_(out_scale)
    net.eval()
    return net, epoch, quality(net, Xtr, ytr, data.task, logit1)


def write_case(data: CaseData, trained: Trained, folder: Path) -> dict[str, Any]:
    """Write ``model.pt`` (TorchScript, eval mode) and ``val.csv``; returns the audit's extra options."""
    folder.mkdir(parents=True, exist_ok=True)
    model_path, data_path = folder / "model.pt", folder / "val.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(trained.module.eval()), str(model_path))
    data.val.to_csv(data_path, index=False)
    if trained.auc is not None:
        data.meta["auc"] = round(trained.auc, 4)
    extra: dict[str, Any] = {"slice_col": data.slice_col} if data.slice_col is not None else {}
    return {"model": model_path, "data": data_path, "options": extra}


# --- the corpus -------------------------------------------------------------------------------------------

# Leak plants sit mostly on tables where the real features are weak (fair AUC ~0.73, randhie ~0.65, anes96 ~0.95,
# diabetes R^2 ~0.4), so the model leans on the leak; one easy table per kind shows a leak the model barely needs.
_PLAN: dict[str, tuple[tuple[str, str], ...]] = {
    "followup": (("fair", "raw_mlp"), ("anes96", "bn_mlp"), ("randhie", "std_mlp"), ("breast_cancer", "std_mlp")),
    "label_noise": (("fair", "std_mlp"), ("anes96", "std_linear"), ("randhie", "raw_mlp")),
    "monotone": (("diabetes", "raw_mlp"), ("star98", "std_mlp"), ("fair", "bn_mlp"), ("randhie", "std_linear")),
    "partial97": (("fair", "bn_mlp"), ("randhie", "std_mlp"), ("diabetes", "std_mlp"), ("anes96", "raw_mlp")),
    "partial99": (("fair", "std_mlp"), ("diabetes", "bn_mlp")),
    "category": (("fair", "std_mlp"), ("anes96", "raw_mlp"), ("wine", "raw_mlp"), ("penguins", "bn_mlp")),
    "shuffled_id": (("fair", "std_mlp"), ("randhie", "bn_mlp"), ("diabetes", "bn_mlp"), ("breast_cancer", "raw_mlp")),
    "reversed_slice": (("diabetes", "std_mlp"), ("anes96", "std_mlp"), ("fair", "bn_mlp")),
    "slice_clean": (("diabetes", "std_mlp"), ("anes96", "std_mlp"), ("fair", "bn_mlp")),
    "strong_only": (("iris", "std_mlp"), ("penguins", "std_mlp"), ("breast_cancer", "std_mlp")),
}  # fmt: skip
# small samples: (twin, data set, model, sizes); validation must hold the largest size
_SMALL: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("small", "breast_cancer", "std_mlp", (20, 60)),
    ("small", "penguins", "bn_mlp", (20, 60)),
    ("small", "fair", "std_mlp", SMALL_SIZES),
    ("small_id", "fair", "std_mlp", SMALL_SIZES),
    ("small_followup", "fair", "raw_mlp", SMALL_SIZES),
)
_QUICK_SETS = ("fair", "penguins")


def corpus(quick: bool = False, seeds: Iterable[int] = (0, 1, 2)) -> list[CaseSpec]:
    """Every case: clean (default options) on each table x model x seed, then the twins and the small samples.

    ``quick``: seed 0, two tables, two models, the first plan entry of each twin, 20 rows for the small samples.
    """
    seeds = (0,) if quick else tuple(seeds)
    out: list[CaseSpec] = []
    for seed in seeds:
        for name in _QUICK_SETS if quick else DATASETS:
            models = ("std_mlp", "raw_mlp") if quick else tuple(MODELS)
            out.extend(CaseSpec(name, m, seed) for m in models if (name, m) not in EXCLUDED)
    for twin, plan in _PLAN.items():
        for seed in seeds:
            for name, model in plan[:1] if quick else plan:
                out.append(CaseSpec(name, model, seed, twin))
    for twin, name, model, sizes in _SMALL:
        if quick and name != "fair":
            continue
        for seed in seeds:
            for n in (s for s in sizes if not quick or s == 20):
                out.append(CaseSpec(name, model, seed, twin, n))
    return out


# --- scoring ----------------------------------------------------------------------------------------------


_ORDER = {"info": 0, "warn": 1, "fail": 2}


def worst(row: dict[str, Any], code: str) -> str | None:
    """The worst severity of ``code`` among the row's findings (None when absent)."""
    s = [f["severity"] for f in row["findings"] if f["code"] == code]
    return max(s, key=_ORDER.__getitem__) if s else None


def caught(row: dict[str, Any]) -> bool:
    """A planted row is caught when one of its plant's codes is raised at the plant's severity or worse."""
    plant = PLANTS[row["twin"]]
    return any(_ORDER.get(worst(row, c) or "", -1) >= _ORDER[plant.severity] for c in plant.codes)


def summarise(rows: Sequence[dict[str, Any]], codes: Sequence[str] = ()) -> dict[str, Any]:
    """Per-code false alarms (clean) and detections (planted), per-plant catches, verdicts, the issue's targets.

    ``rows`` need ``kind``, ``twin``, ``n_audit``, ``verdict`` and ``findings`` (``{"code", "severity"}``).
    Errors count in no denominator; ``info`` is not an alarm. The pass rate leaves out clean cases that raised
    ``small_sample`` (their verdict is meant to say "too few rows").
    """
    ok = [r for r in rows if r["verdict"] != "error"]
    clean = [r for r in ok if r["kind"] == "clean"]
    planted = [r for r in ok if r["kind"] == "planted"]
    seen = list(codes)
    for r in ok:
        seen.extend(f["code"] for f in r["findings"] if f["code"] not in seen)
    for p in PLANTS.values():
        seen.extend(c for c in p.codes if c not in seen)
    seen = list(dict.fromkeys(seen))

    def alarms(rs: list[dict[str, Any]], code: str, sevs: tuple[str, ...]) -> dict[str, Any]:
        return _frac(sum(worst(r, code) in sevs for r in rs), len(rs))

    per_code: dict[str, Any] = {}
    for code in seen:
        e: dict[str, Any] = {k: alarms(clean, code, s) for k, s in
                             (("clean_warn", ("warn",)), ("clean_fail", ("fail",)), ("clean_any", ("warn", "fail")))}
        mine = [r for r in planted if code in PLANTS[r["twin"]].codes]
        if mine:
            e["planted_raised"] = alarms(mine, code, ("warn", "fail"))
            e["planted_fail"] = alarms(mine, code, ("fail",))
        per_code[code] = e

    per_plant: dict[str, Any] = {}
    for twin in dict.fromkeys(r["twin"] for r in planted):
        for n in dict.fromkeys(r.get("n_audit") for r in planted if r["twin"] == twin):
            t = [r for r in planted if r["twin"] == twin and r.get("n_audit") == n]
            key = twin + (f"/n{n}" if n else "")
            per_plant[key] = {
                "twin": twin, "n_audit": n, "codes": list(PLANTS[twin].codes), "severity": PLANTS[twin].severity,
                "target": PLANTS[twin].target, "caught": _frac(sum(caught(r) for r in t), len(t)),
                "raised": _frac(sum(any(worst(r, c) in ("warn", "fail") for c in PLANTS[twin].codes) for r in t),
                                len(t)),
                "not_pass": _frac(sum(r["verdict"] != "pass" for r in t), len(t)),
                "small_sample": _frac(sum(worst(r, "small_sample") is not None for r in t), len(t)),
            }  # fmt: skip

    # the same per (plant, table, model): which tables a detector misses, and how much the model leaned on the plant
    per_case_kind: dict[str, Any] = {}
    for r in planted:
        key = f"{r['twin']}/{r['dataset']}/{r['model']}" + (f"/n{r['n_audit']}" if r.get("n_audit") else "")
        per_case_kind.setdefault(key, []).append(r)
    per_plant_table = {
        key: {"caught": _frac(sum(caught(r) for r in t), len(t)),
              "planted_share": [r.get("planted_share") for r in t], "verdicts": [r["verdict"] for r in t]}
        for key, t in per_case_kind.items()
    }  # fmt: skip

    quiet: dict[str, Any] = {}
    for twin, code in QUIET.items():
        for n in dict.fromkeys(r.get("n_audit") for r in clean if r.get("twin") == twin):
            t = [r for r in clean if r.get("twin") == twin and r.get("n_audit") == n]
            key = twin + (f"/n{n}" if n else "")
            quiet[key] = {
                "code": code, "alarm": _frac(sum(code is not None and worst(r, code) in ("warn", "fail") for r in t),
                                             len(t)),
                "fail": _frac(sum(r["verdict"] == "fail" for r in t), len(t)),
                "not_pass": _frac(sum(r["verdict"] != "pass" for r in t), len(t)),
                "small_sample": _frac(sum(worst(r, "small_sample") is not None for r in t), len(t)),
            }  # fmt: skip

    counted = [r for r in clean if worst(r, "small_sample") is None]
    verdicts = {v: sum(r["verdict"] == v for r in clean) for v in ("pass", "warn", "fail")}
    verdicts_counted = {v: sum(r["verdict"] == v for r in counted) for v in ("pass", "warn", "fail")}
    by_model = {m: {v: sum(r["verdict"] == v for r in counted if r["model"] == m) for v in ("pass", "warn", "fail")}
                for m in dict.fromkeys(r["model"] for r in counted)}  # fmt: skip
    healthy = [r for r in clean if not r.get("twin")]
    nc_fail = sum(worst(r, "not_converged") == "fail" for r in healthy)
    leak_targets = [v for v in per_plant.values() if v["target"] and v["severity"] == "fail" and not v["n_audit"]]
    targets = {
        "no_fail_on_clean": bool(clean) and verdicts["fail"] == 0,
        "pass_rate_clean_ge_95": bool(counted) and verdicts_counted["pass"] >= 0.95 * len(counted),
        "every_leak_caught_as_fail": bool(leak_targets) and all(v["caught"]["k"] == v["caught"]["n"]
                                                                for v in leak_targets),
        "not_converged_never_fail_on_healthy": bool(healthy) and nc_fail == 0,
    }  # fmt: skip
    return {
        "n_rows": len(rows), "n_errors": len(rows) - len(ok), "n_clean": len(clean), "n_planted": len(planted),
        "n_clean_counted": len(counted), "per_code": per_code, "per_plant": per_plant,
        "per_plant_table": per_plant_table, "quiet_twins": quiet,
        "verdicts_clean": verdicts, "verdicts_clean_counted": verdicts_counted, "verdicts_by_model": by_model,
        "pass_rate_clean": _frac(verdicts_counted["pass"], len(counted)), "not_converged_fail_healthy": nc_fail,
        "clean_fail_cases": [
            {"case": r["case"], "codes": [f["code"] for f in r["findings"] if f["severity"] == "fail"]}
            for r in clean if r["verdict"] == "fail"
        ],
        "targets": targets,
    }  # fmt: skip
