"""The findings benchmark's corpus: (data set, model, seed) cases built in code, and the scoring arithmetic.

Nothing here imports ``audit``: the corpus is what the detectors are judged against, so it must not depend on
them. :mod:`bench_findings` runs the audits and prints the tables.

Data sets ship inside scikit-learn or are generated (no network). Features are standardised with a scaler fit
on the train split; the seed drives the 70/30 train/validation split, the weight init and the training order.
The validation split, written as CSV (features + ``target``), is what gets audited.

Planted twins (the defect and its stated strength):

=================  ==========================================================================================
twin               what is planted
=================  ==========================================================================================
``noise``          ``noise_0``: in TRAIN ``rho * z(y) + sqrt(1 - rho^2) * e`` (``z`` = standardised target or
                   label index, ``e`` ~ N(0, 1)), corr(noise_0, y) = :data:`NOISE_RHO`; in VALIDATION the
                   same formula with the labels permuted: same marginal, independent of the target.
``leak``           ``leak`` = label + N(0, 0.01) (classification) or y + N(0, (0.01 sd(y))^2) (regression),
                   in both splits.
``id_raw``         rows ordered by target in both splits; ``row_id`` = the row's position in the whole data
                   set sorted by target (random tie-break), so each split's ids are unique, whole and strictly
                   increasing and the model's mapping carries over. The CSV holds the raw integers; the saved
                   model standardises the column inside itself (a preprocessing layer).
``id_scaled``      the same column, standardised in the CSV like every other feature.
``slice``          a ``group`` column A/B (slice_col, not a feature); the model also gets ``group_b`` (0/1,
                   unscaled, so the zero baseline is group A). Target: ``s = x_f1`` in A and ``x_f2`` in B (f1
                   the first feature, f2 the one least correlated with it), regression ``y = s + N(0, 0.1^2)``,
                   classifiers: quantile bins of ``s``.
``drift``          reference = the train split with the model's top feature (by a quick IG) shifted by
                   :data:`DRIFT_SHIFT` train standard deviations; the validation data unshifted.
=================  ==========================================================================================

Clean twins (options switched on, no defect): ``drift_clean`` (reference = the unshifted train split) and
``slice_clean`` (a random A/B ``group`` column, the data set's own target).
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

__all__ = [
    "DATASETS", "MODELS", "TWINS", "NOISE_RHO", "LEAK_SIGMA", "DRIFT_SHIFT", "SLICE_NOISE",
    "Dataset", "CaseSpec", "CaseData", "Trained", "load_dataset", "build_case", "train_model", "write_case",
    "corpus", "wilson", "summarise", "quality",
]  # fmt: skip

NOISE_RHO = 0.99  # corr(noise_0, target) in the train split: a shortcut the model leans on
LEAK_SIGMA = 0.01  # leak = label + N(0, LEAK_SIGMA^2); regression: y + N(0, (LEAK_SIGMA * sd(y))^2)
DRIFT_SHIFT = 1.5  # reference shift of the top feature, in train standard deviations
SLICE_NOISE = 0.1  # regression slice twin: y = s + N(0, SLICE_NOISE^2)
VAL_FRACTION = 0.3

# twin -> the finding code it must raise (None: a clean twin that must stay quiet for `quiet_code`)
TWINS: dict[str, str | None] = {
    "noise": "noise_leakage",
    "leak": "target_leakage",
    "id_raw": "identifier_leakage",
    "id_scaled": "identifier_leakage",
    "slice": "slice_skew",
    "drift": "drift_skew",
    "drift_clean": None,
    "slice_clean": None,
}
STRENGTH: dict[str, str] = {
    "noise": f"train corr {NOISE_RHO}, val independent",
    "leak": f"label + N(0, {LEAK_SIGMA}^2)",
    "id_raw": "rows sorted by target, raw integer id",
    "id_scaled": "rows sorted by target, standardised id",
    "slice": "A: target = f1, B: target = f2",
    "drift": f"top feature +{DRIFT_SHIFT} sd in reference",
    "drift_clean": "reference = train split",
    "slice_clean": "random A/B groups",
}


# --- data sets ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    name: str
    X: np.ndarray  # (n, F) raw features
    y: np.ndarray  # (n,) labels 0..k-1 (int) or regression target (float)
    names: tuple[str, ...]
    task: str  # binary | multiclass | regression
    n_classes: int  # 1 for regression


def _pos_neg_noise(n: int = 2000, per_group: int = 32) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The IG paper's synthetic set: 32 POS (i+1)/32, 32 NEG -(i+1)/32, 32 NOISE 0; uniform on [-1, 1]."""
    rng = np.random.default_rng(0)
    coef = np.concatenate([np.arange(1, per_group + 1), -np.arange(1, per_group + 1), np.zeros(per_group)])
    coef = coef / per_group
    X = rng.uniform(-1.0, 1.0, size=(n, coef.size))  # (n, 96)
    y = X @ coef + rng.normal(0.0, 0.1, n)
    names = [f"pos_{i:02d}" for i in range(per_group)] + [f"neg_{i:02d}" for i in range(per_group)]
    names += [f"noise_{i:02d}" for i in range(per_group)]
    return X, y, names


def _loaders() -> dict[str, Callable[[], Dataset]]:
    from sklearn import datasets as skd

    def bunch(name: str, fn: Callable[..., Any], task: str) -> Callable[[], Dataset]:
        def load() -> Dataset:
            b = fn()
            names = [str(n).replace(" ", "_") for n in b.feature_names] if hasattr(b, "feature_names") else None
            names = names or [f"x{j}" for j in range(b.data.shape[1])]
            y = b.target.astype(np.int64) if task != "regression" else b.target.astype(np.float64)
            k = 1 if task == "regression" else int(y.max()) + 1
            return Dataset(name, b.data.astype(np.float64), y, tuple(names), task, k)

        return load

    def generated(name: str, task: str, make: Callable[[], tuple[np.ndarray, np.ndarray]]) -> Callable[[], Dataset]:
        def load() -> Dataset:
            X, y = make()
            y = y.astype(np.int64) if task != "regression" else y.astype(np.float64)
            k = 1 if task == "regression" else int(y.max()) + 1
            return Dataset(name, X.astype(np.float64), y, tuple(f"x{j}" for j in range(X.shape[1])), task, k)

        return load

    def pnn() -> Dataset:
        X, y, names = _pos_neg_noise()
        return Dataset("pos_neg_noise", X, y, tuple(names), "regression", 1)

    return {
        "breast_cancer": bunch("breast_cancer", skd.load_breast_cancer, "binary"),
        "diabetes": bunch("diabetes", skd.load_diabetes, "regression"),
        "wine": bunch("wine", skd.load_wine, "multiclass"),
        "digits": bunch("digits", skd.load_digits, "multiclass"),
        "iris": bunch("iris", skd.load_iris, "multiclass"),
        "make_class_bin": generated("make_class_bin", "binary", lambda: skd.make_classification(
            n_samples=1000, n_features=20, n_informative=6, n_redundant=4, n_classes=2, random_state=0)),
        "make_class_3": generated("make_class_3", "multiclass", lambda: skd.make_classification(
            n_samples=1000, n_features=20, n_informative=8, n_redundant=4, n_classes=3, random_state=0)),
        "make_regression": generated("make_regression", "regression", lambda: skd.make_regression(
            n_samples=1000, n_features=20, n_informative=8, noise=10.0, random_state=0)),
        "friedman1": generated("friedman1", "regression", lambda: skd.make_friedman1(
            n_samples=1000, n_features=10, noise=1.0, random_state=0)),
        "pos_neg_noise": pnn,
    }  # fmt: skip


DATASETS: tuple[str, ...] = (
    "breast_cancer", "diabetes", "wine", "digits", "iris",
    "make_class_bin", "make_class_3", "make_regression", "friedman1", "pos_neg_noise",
)  # fmt: skip
_CACHE: dict[str, Dataset] = {}


def load_dataset(name: str) -> Dataset:
    if name not in _CACHE:
        _CACHE[name] = _loaders()[name]()
    return _CACHE[name]


# --- cases ------------------------------------------------------------------------------------------------

# model kind -> (hidden layer widths, weight decay, single logit head for binary tasks)
MODELS: dict[str, tuple[tuple[int, ...], float, bool]] = {
    "linear": ((), 0.0, False),
    "mlp": ((64, 64), 0.0, False),
    "mlp_wd": ((64, 64), 1e-2, False),  # Adam's L2 weight decay
    "deep": ((64, 64, 64, 64), 0.0, False),
    "linear_logit1": ((), 0.0, True),  # binary tasks only: BCEWithLogitsLoss, one output
    "mlp_logit1": ((64, 64), 0.0, True),
}


@dataclass(frozen=True)
class CaseSpec:
    dataset: str
    model: str
    seed: int
    twin: str | None = None  # None: a clean case with default options

    @property
    def kind(self) -> str:
        return "planted" if self.twin is not None and TWINS[self.twin] is not None else "clean"

    @property
    def planted_code(self) -> str | None:
        return None if self.twin is None else TWINS[self.twin]

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.model}/s{self.seed}" + (f"/{self.twin}" if self.twin else "")


@dataclass
class CaseData:
    """One case's data, ready to train on and to write out. Frames hold the values as written to CSV."""

    spec: CaseSpec
    task: str
    n_classes: int
    names: list[str]  # feature columns, model input order
    train: pd.DataFrame  # features + target
    val: pd.DataFrame  # features + target (+ group for slice twins): the audited file
    in_shift: np.ndarray  # (F,) the model standardises its inputs as (x - in_shift) / in_scale
    in_scale: np.ndarray
    slice_col: str | None = None
    planted_feature: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def _rng(spec: CaseSpec, salt: str = "") -> np.random.Generator:
    return np.random.default_rng([spec.seed, zlib.crc32(f"{spec.dataset}|{spec.twin}|{salt}".encode())])


def _zscore(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    sd = v.std()
    return (v - v.mean()) / (sd if sd > 0 else 1.0)


def _quantile_labels(s: np.ndarray, k: int) -> np.ndarray:
    edges = np.quantile(s, np.linspace(0, 1, k + 1)[1:-1])
    return np.searchsorted(edges, s, side="right").astype(np.int64)


def build_case(spec: CaseSpec) -> CaseData:
    """The train and validation frames of ``spec``, with its twin's defect planted."""
    ds = load_dataset(spec.dataset)
    rng = _rng(spec)
    X = ds.X.copy()
    y = ds.y.copy()
    names = list(ds.names)
    n = X.shape[0]
    perm = rng.permutation(n)
    n_val = int(round(VAL_FRACTION * n))
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    twin = spec.twin
    meta: dict[str, Any] = {"strength": STRENGTH.get(twin or "", "")}
    groups: np.ndarray | None = None
    raw_cols: set[str] = set()  # written unscaled; the model standardises them inside itself
    passthrough: set[str] = set()  # written unscaled and fed to the model as they are (0/1 indicators)

    if twin in ("slice", "slice_clean"):
        groups = np.where(rng.random(n) < 0.5, "A", "B")
    if twin == "slice":
        Xs = (X - X[tr_idx].mean(0)) / np.where(X[tr_idx].std(0) > 0, X[tr_idx].std(0), 1.0)
        f1 = 0
        corr = np.abs(np.corrcoef(Xs[tr_idx].T)[f1])
        corr[f1] = np.inf
        corr[~np.isfinite(corr)] = np.inf
        f2 = int(np.argmin(corr))
        s = np.where(groups == "A", Xs[:, f1], Xs[:, f2])
        noisy = s + rng.normal(0.0, SLICE_NOISE, n)
        y = noisy if ds.task == "regression" else _quantile_labels(s, ds.n_classes)
        X = np.column_stack([X, (groups == "B").astype(np.float64)])
        names.append("group_b")
        passthrough.add("group_b")
        meta.update(f1=names[f1], f2=names[f2])

    if twin == "leak":
        if ds.task == "regression":
            leak = y + rng.normal(0.0, LEAK_SIGMA * y.std(), n)
        else:
            leak = y + rng.normal(0.0, LEAK_SIGMA, n)
        X = np.column_stack([X, leak])
        names.append("leak")

    if twin == "noise":
        z = _zscore(y)
        e = rng.normal(0.0, 1.0, n)
        z_used = z.copy()
        z_used[val_idx] = z[val_idx][rng.permutation(n_val)]  # validation: the labels shuffled away
        noise = NOISE_RHO * z_used + math.sqrt(1.0 - NOISE_RHO**2) * e
        X = np.column_stack([X, noise])
        names.append("noise_0")

    if twin in ("id_raw", "id_scaled"):
        order = np.lexsort((rng.random(n), y))  # by target, random tie-break
        row_id = np.empty(n, dtype=np.int64)
        row_id[order] = np.arange(n)
        X = np.column_stack([X, row_id.astype(np.float64)])
        names.append("row_id")
        # each split ordered by target (= by row_id)
        tr_idx = tr_idx[np.argsort(row_id[tr_idx])]
        val_idx = val_idx[np.argsort(row_id[val_idx])]
        if twin == "id_raw":
            raw_cols.add("row_id")

    mu = X[tr_idx].mean(0)
    sd = X[tr_idx].std(0)
    sd = np.where(sd > 0, sd, 1.0)
    in_shift = np.zeros(len(names))
    in_scale = np.ones(len(names))
    Xw = (X - mu) / sd  # what the CSV holds
    for c in raw_cols | passthrough:
        j = names.index(c)
        Xw[:, j] = X[:, j]
        if c in raw_cols:
            in_shift[j], in_scale[j] = mu[j], sd[j]

    def frame(idx: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(Xw[idx], columns=names)
        for c in raw_cols | passthrough:
            df[c] = X[idx, names.index(c)].astype(np.int64)
        df["target"] = y[idx]
        if groups is not None:
            df["group"] = groups[idx]
        return df

    planted = {"noise": "noise_0", "leak": "leak", "id_raw": "row_id", "id_scaled": "row_id", "slice": "group_b"}
    return CaseData(
        spec=spec, task=ds.task, n_classes=ds.n_classes, names=names, train=frame(tr_idx), val=frame(val_idx),
        in_shift=in_shift, in_scale=in_scale, slice_col="group" if groups is not None else None,
        planted_feature=planted.get(twin or ""), meta=meta,
    )


# --- models -----------------------------------------------------------------------------------------------


class Net(nn.Module):
    """``core((x - in_shift) / in_scale) * out_scale + out_shift``; regression squeezes to shape (rows,)."""

    def __init__(
        self, core: nn.Module, in_shift: np.ndarray, in_scale: np.ndarray, out_shift: float, out_scale: float,
        squeeze: bool,
    ) -> None:  # fmt: skip
        super().__init__()
        self.core = core
        self.register_buffer("in_shift", torch.tensor(in_shift, dtype=torch.float32))
        self.register_buffer("in_scale", torch.tensor(in_scale, dtype=torch.float32))
        self.register_buffer("out_shift", torch.tensor(float(out_shift)))
        self.register_buffer("out_scale", torch.tensor(float(out_scale)))
        self.squeeze = squeeze

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.core((x - self.in_shift) / self.in_scale) * self.out_scale + self.out_shift
        if self.squeeze:
            out = out.squeeze(-1)
        return out


def _core(n_in: int, hidden: tuple[int, ...], n_out: int) -> nn.Module:
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


@dataclass
class Trained:
    module: Net
    quality: float  # validation accuracy (classifiers) or R^2 (regression)
    metric: str
    train_quality: float
    epochs: int


def quality(module: nn.Module, X: np.ndarray, y: np.ndarray, task: str, single_logit: bool) -> float:
    """Accuracy of a classifier (argmax, or logit > 0 for a single-logit head), R^2 of a regressor."""
    with torch.no_grad():
        out = module(torch.tensor(np.asarray(X), dtype=torch.float32)).numpy()
    if task == "regression":
        out = out.reshape(-1)
        ss = float(((y - y.mean()) ** 2).sum())
        return 1.0 - float(((y - out) ** 2).sum()) / ss if ss > 0 else float("nan")
    pred = (out.reshape(-1) > 0).astype(np.int64) if single_logit else out.argmax(1)
    return float((pred == y).mean())


def train_model(
    data: CaseData, *, max_epochs: int = 150, patience: int = 12, batch_size: int = 64, lr: float | None = None
) -> Trained:
    """Adam on the train split with early stopping on 15% of it (the validation split is never seen).

    ``lr`` defaults to 1e-2 for linear models and 3e-3 for the others.
    """
    spec = data.spec
    hidden, wd, logit1 = MODELS[spec.model]
    lr = lr if lr is not None else (1e-2 if not hidden else 3e-3)
    if logit1 and data.task != "binary":
        raise ValueError(f"model '{spec.model}' needs a binary task, '{spec.dataset}' is {data.task}")
    torch.manual_seed(spec.seed)
    rng = _rng(spec, "train")
    F = len(data.names)
    Xtr_raw = data.train[data.names].to_numpy(np.float64)
    Xtr = (Xtr_raw - data.in_shift) / data.in_scale  # (n, F): what the core sees
    ytr = data.train["target"].to_numpy()
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
    core = _core(F, hidden, n_out)
    X = torch.tensor(Xtr, dtype=torch.float32)
    order = rng.permutation(X.shape[0])
    n_stop = max(1, int(0.15 * X.shape[0]))
    stop_idx, fit_idx = torch.as_tensor(order[:n_stop]), torch.as_tensor(order[n_stop:])

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        out = core(X[idx])
        if n_out == 1:
            out = out.squeeze(-1)
        return loss_fn(out, t[idx])

    opt = torch.optim.Adam(core.parameters(), lr=lr, weight_decay=wd)
    gen = torch.Generator().manual_seed(spec.seed)
    best, best_state, bad, epoch = math.inf, None, 0, 0
    for epoch in range(1, max_epochs + 1):  # noqa: B007 (epoch is reported)
        core.train()
        shuffled = fit_idx[torch.randperm(fit_idx.numel(), generator=gen)]
        for i in range(0, shuffled.numel(), batch_size):
            opt.zero_grad()
            loss = loss_of(shuffled[i : i + batch_size])
            loss.backward()
            opt.step()
        core.eval()
        with torch.no_grad():
            v = float(loss_of(stop_idx))
        if v < best - 1e-6:
            best, bad = v, 0
            best_state = {k: p.detach().clone() for k, p in core.state_dict().items()}
        else:
            bad += 1
            if bad >= patience:
                break
    if best_state is not None:
        core.load_state_dict(best_state)
    squeeze = data.task == "regression"
    net = Net(core, data.in_shift, data.in_scale, out_shift, out_scale, squeeze).eval()
    Xval = data.val[data.names].to_numpy(np.float64)
    yval = data.val["target"].to_numpy()
    q = quality(net, Xval, yval, data.task, logit1)
    qt = quality(net, Xtr_raw, ytr, data.task, logit1)
    return Trained(net, q, "r2" if data.task == "regression" else "acc", qt, epoch)


def top_feature(module: nn.Module, X: np.ndarray, names: Sequence[str], steps: int = 16) -> str:
    """The feature with the largest mean |IG| (zero baseline, midpoint Riemann, predicted class)."""
    x = torch.tensor(np.asarray(X), dtype=torch.float32)  # (n, F)
    with torch.no_grad():
        out = module(x)
    target = None if out.dim() == 1 or out.shape[-1] == 1 else out.argmax(1)
    total = torch.zeros_like(x)
    for a in (torch.arange(steps, dtype=torch.float32) + 0.5) / steps:
        p = (a * x).requires_grad_(True)
        o = module(p)
        o = o.reshape(o.shape[0], -1)
        o = o[:, 0] if target is None else o.gather(1, target[:, None])[:, 0]
        (g,) = torch.autograd.grad(o.sum(), p)
        total += g
    attr = (total / steps * x).abs().mean(0).numpy()  # (F,)
    return str(names[int(np.argmax(attr))])


def write_case(data: CaseData, trained: Trained, folder: Path) -> dict[str, Any]:
    """Write ``model.pt`` (TorchScript), ``val.csv`` and, for drift twins, ``reference.csv``.

    Returns the keyword arguments for ``AuditConfig`` beyond model/data/target_col (slice_col, reference)
    and what was written.
    """
    folder.mkdir(parents=True, exist_ok=True)
    model_path, data_path = folder / "model.pt", folder / "val.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(trained.module.eval()), str(model_path))
    data.val.to_csv(data_path, index=False)
    extra: dict[str, Any] = {}
    if data.slice_col is not None:
        extra["slice_col"] = data.slice_col
    twin = data.spec.twin
    if twin in ("drift", "drift_clean"):
        ref = data.train[data.names].copy()
        if twin == "drift":
            top = top_feature(trained.module, data.val[data.names].to_numpy(np.float64), data.names)
            ref[top] = ref[top] + DRIFT_SHIFT * float(ref[top].std())
            data.planted_feature = top
        ref_path = folder / "reference.csv"
        ref.to_csv(ref_path, index=False)
        extra["reference"] = ref_path
    return {"model": model_path, "data": data_path, "options": extra}


# --- the corpus -------------------------------------------------------------------------------------------

_CLEAN_MODELS = ("linear", "mlp", "mlp_wd", "deep")
_BINARY_EXTRA = ("linear_logit1", "mlp_logit1")
_TWIN_PLAN: dict[str, tuple[tuple[str, str], ...]] = {
    "noise": (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("wine", "mlp"), ("friedman1", "mlp")),
    "leak": (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("digits", "mlp"), ("make_class_3", "linear")),
    "id_raw": (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("make_class_3", "mlp")),
    "id_scaled": (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("make_class_3", "mlp")),
    "slice": (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("make_class_3", "mlp")),
    "slice_clean": (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("make_class_3", "mlp")),
    "drift": (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("wine", "mlp")),
    "drift_clean": (("breast_cancer", "mlp"), ("diabetes", "mlp"), ("wine", "mlp")),
}
_QUICK_SETS = ("breast_cancer", "diabetes", "wine")


def corpus(quick: bool = False, seeds: Iterable[int] = (0, 1, 2)) -> list[CaseSpec]:
    """Every case: clean (default options) on each data set x model x seed, then the twins."""
    seeds = (0,) if quick else tuple(seeds)
    sets = _QUICK_SETS if quick else DATASETS
    out: list[CaseSpec] = []
    for seed in seeds:
        for name in sets:
            task = load_dataset(name).task
            models = ("linear", "mlp") if quick else _CLEAN_MODELS + (_BINARY_EXTRA if task == "binary" else ())
            out.extend(CaseSpec(name, m, seed) for m in models)
    for twin, plan in _TWIN_PLAN.items():
        for seed in seeds:
            for name, model in plan[:1] if quick else plan:
                out.append(CaseSpec(name, model, seed, twin))
    return out


# --- scoring ----------------------------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% by default); (0, 1) when n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if k <= 0 else max(0.0, centre - half)
    hi = 1.0 if k >= n else min(1.0, centre + half)
    return lo, hi


def _frac(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": (k / n) if n else float("nan"), "ci": [lo, hi]}


def summarise(rows: Sequence[dict[str, Any]], codes: Sequence[str] = ()) -> dict[str, Any]:
    """Per-code false alarms on clean cases and detections on planted ones, the verdict table, the targets.

    ``rows`` need ``kind`` (clean | planted), ``twin``, ``planted_code``, ``verdict`` (pass | warn | fail |
    error) and ``findings`` (a list of ``{"code", "severity"}``). Errors count in no denominator (they are
    listed separately); ``info`` findings are not alarms.
    """
    ok = [r for r in rows if r["verdict"] != "error"]
    clean = [r for r in ok if r["kind"] == "clean"]
    planted = [r for r in ok if r["kind"] == "planted"]
    seen = list(codes)
    for r in ok:
        for f in r["findings"]:
            if f["code"] not in seen:
                seen.append(f["code"])
    for r in planted:
        if r["planted_code"] not in seen:
            seen.append(r["planted_code"])

    def sev(r: dict[str, Any], code: str) -> str | None:
        order = {"info": 0, "warn": 1, "fail": 2}
        s = [f["severity"] for f in r["findings"] if f["code"] == code]
        return max(s, key=order.__getitem__) if s else None

    per_code: dict[str, Any] = {}
    for code in seen:
        sevs = [sev(r, code) for r in clean]
        entry: dict[str, Any] = {
            "clean_warn": _frac(sum(s == "warn" for s in sevs), len(clean)),
            "clean_fail": _frac(sum(s == "fail" for s in sevs), len(clean)),
            "clean_any": _frac(sum(s in ("warn", "fail") for s in sevs), len(clean)),
        }
        mine = [r for r in planted if r["planted_code"] == code]
        if mine:
            entry["caught"] = _frac(sum(sev(r, code) in ("warn", "fail") for r in mine), len(mine))
            by_twin: dict[str, Any] = {}
            for twin in dict.fromkeys(r["twin"] for r in mine):
                t = [r for r in mine if r["twin"] == twin]
                by_twin[twin] = _frac(sum(sev(r, code) in ("warn", "fail") for r in t), len(t))
            entry["caught_by_twin"] = by_twin
        per_code[code] = entry

    verdicts = {v: sum(r["verdict"] == v for r in clean) for v in ("pass", "warn", "fail")}
    default_clean = [r for r in clean if not r.get("twin")]
    verdicts_default = {v: sum(r["verdict"] == v for r in default_clean) for v in ("pass", "warn", "fail")}
    n_clean = len(clean)
    pass_rate = verdicts["pass"] / n_clean if n_clean else float("nan")
    caught_all = all(e["caught"]["k"] == e["caught"]["n"] for e in per_code.values() if "caught" in e)
    quiet_twins = {}
    for twin, code in (("drift_clean", "drift_skew"), ("slice_clean", "slice_skew")):
        t = [r for r in clean if r.get("twin") == twin]
        if t:
            quiet_twins[twin] = _frac(sum(sev(r, code) in ("warn", "fail") for r in t), len(t))
    targets = {
        "no_fail_on_clean": verdicts["fail"] == 0 and n_clean > 0,
        "pass_rate_clean_ge_95": bool(n_clean and pass_rate >= 0.95),
        "every_planted_caught": bool(planted) and caught_all,
    }
    return {
        "n_rows": len(rows),
        "n_errors": len(rows) - len(ok),
        "n_clean": n_clean,
        "n_planted": len(planted),
        "per_code": per_code,
        "verdicts_clean": verdicts,
        "verdicts_clean_default_options": verdicts_default,
        "pass_rate_clean": _frac(verdicts["pass"], n_clean),
        "clean_twins_quiet": quiet_twins,
        "clean_fail_cases": [
            {"case": r["case"], "codes": [f["code"] for f in r["findings"] if f["severity"] == "fail"]}
            for r in clean if r["verdict"] == "fail"
        ],  # fmt: skip
        "targets": targets,
    }
