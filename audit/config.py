"""AuditConfig: every option of a run, from CLI flags and an optional ``audit.toml``.

Precedence: flags given on the command line > ``audit.toml`` > defaults here.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.attribution.quadrature import MAX_STEPS  # numpy only: importing it pulls in no torch
from audit.errors import UsageError

__all__ = ["Thresholds", "AuditConfig", "load_toml", "METHODS", "FORMATS", "FAIL_ON", "TASKS", "NEUTRALISE", "KINDS",
           "EXECUTORS"]

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
FORMATS = ("json", "html", "pdf")
FAIL_ON = ("never", "warn", "fail")
TASKS = ("auto", "regression", "binary", "multiclass", "multioutput")  # --task
NEUTRALISE = ("permute", "baseline")  # how noise_leakage takes a feature's information away
KINDS = ("auto", "tabular", "image", "text")  # --kind: what a row of the data is
EXECUTORS = ("local", "ray")  # --executor: where blocks are attributed


@dataclass(frozen=True)
class Thresholds:
    """Detector thresholds. Each can be set in ``audit.toml`` under ``[thresholds]``."""

    # completeness: a row has converged when |sum(attr) - (F(x) - F(x'))| / max(|F(x) - F(x')|, floor) <= this
    convergence_tol: float = 0.01
    # the floor of that denominator, as a fraction of the data set's median |F(x) - F(x')| (measured on the first
    # rows): a row whose output barely moves is judged on its absolute error against a typical change, so
    # 0.003 of error on a change of 0.003 is not "100% off" when the typical change is 0.5
    convergence_floor: float = 0.1
    # share of rows above convergence_tol from which not_converged warns; below it the finding is info
    # (a handful of rows whose output barely moves along the path rarely reach 1% relative error even at 512
    # steps, and cannot change a ranking over thousands of rows)
    not_converged_warn_fraction: float = 0.01
    # no longer used (kept so audit.toml files that set it still load): a share of unconverged rows no longer makes
    # not_converged fail, only unusable attributions do (not_converged_unusable below)
    not_converged_fail_fraction: float = 0.10
    # a feature has "real" attribution when its share of total |attribution| is at least this multiple of
    # the uniform share 1 / n_features
    real_share_factor: float = 0.25
    # noise_leakage by neutralisation: a feature (or a group of correlated features) "does not help" when the
    # upper end of the 95% bootstrap interval of its benefit ratio is below this. The benefit ratio is the loss
    # increase when the feature's information is taken away, divided by the increase expected if the model's
    # own predictions were right (mean squared output change for regression, KL divergence for classifiers):
    # about 1 for a genuine feature, about -1 for one the model follows although it carries no signal
    noise_max_benefit: float = 0.2
    # features whose |Spearman correlation| on the audited rows is at least this are neutralised together
    noise_group_corr: float = 0.7
    # noise_leakage: a declared noise feature, or a neutralisation candidate, must carry at least this multiple of
    # the uniform share 1 / n_features (as much as an average feature) to fail (declared) or to be judged at all
    # (neutralisation): every flexible model leans a little on its noise columns (friedman1's x5-x9 get 0.3-0.6 of
    # the uniform share from healthy MLPs), which is not a defect
    noise_min_share_factor: float = 1.0
    # noise_leakage by neutralisation fails (not warns) from this multiple of the uniform share
    noise_fail_share_factor: float = 2.0
    # target leakage of regressors: the feature alone explains this much of the target (the neighbour R^2 of
    # audit.analysis.univariate_power, the share of the target's variance the feature explains alone; 1 = it
    # determines the target), point score and subsampling lower bound alike
    leak_univariate: float = 0.95
    # concentration: top-1 share (warn) and top-3 share (warn)
    top1_share: float = 0.50
    top3_share: float = 0.80
    # slices: a group whose ranking has Spearman below this against the global one disagrees
    slice_spearman: float = 0.50
    slice_min_rows: int = 30
    # slices: a group whose top feature differs from the global top feature disagrees, when the global top
    # feature's share is at least this multiple of the uniform share (a clear leader, not a near-tie)
    slice_top_share_factor: float = 2.0
    # drift: attribution-weighted KS above this warns
    drift_weighted_ks: float = 0.05
    drift_feature_ks: float = 0.20
    # baseline: |F(baseline) - neutral| in units of the std of F over the data
    baseline_z: float = 1.0
    # classifier baseline: max softmax probability above this is "not neutral"
    baseline_max_prob: float = 0.90
    # cross-check tolerances (native vs Captum), relative to max |attribution| of the row
    crosscheck_abs: float = 1e-4
    crosscheck_rel: float = 1e-3
    # a failed cross-check with no known Captum-side bias fails (not warns) when the Spearman agreement of the
    # two engines' feature rankings is below this
    crosscheck_min_spearman: float = 0.90
    # spurious_token: masking a candidate token must move the probability of the class it pushes toward by at
    # least this much (lower 95% bootstrap bound of the mean drop) to count as driving predictions
    spurious_min_shift: float = 0.05
    # spurious_token without labels: the lower Wilson bound of the share of its rows whose prediction flips when
    # it is masked must reach this
    spurious_min_flip: float = 0.20
    # image spatial leakage: share of the mean |attribution| map in a fixed region outside the centre
    spatial_share: float = 0.30
    # target leakage of classifiers: the lower 95% bound of the worst class's recall under the best single-feature
    # rule (audit.analysis.separation) reaches this: the feature alone tells the class on nearly every row
    leak_separation: float = 0.93
    # target leakage fails (not warns) when the leaking feature is among the model's top 3 or carries this multiple
    # of the uniform share 1 / n_features (the model leans on it heavily)
    leak_fail_share_factor: float = 2.0
    # a feature whose point score reaches this (it separates or orders every audited row) is noted (info) when the
    # rows are too few for its lower bound to reach the bar
    leak_perfect: float = 0.99
    # small_sample: below this many audited rows the verdict cannot be trusted (warn). Measured on the findings
    # corpus: the top features' intervals span 38% of their estimates at 60 rows, 23% at 200; neutralisation
    # caught 0/4 planted noise shortcuts at 20 rows, 3/4 at 60 (benchmarks/bench_small_sample.py)
    small_sample_rows: int = 100
    # ... and for a classifier, below this many rows in its smallest class (the rows a slice group needs)
    small_sample_class_rows: int = 30
    # image spatial leakage is confirmed by occlusion: a candidate region fails when the lower end of the 95%
    # bootstrap interval of the drop in the explained class's probability with the region painted over, beyond
    # the drop with random regions of the same size painted over, reaches this (warns when only the mean does)
    spatial_min_drop: float = 0.05
    # baseline_sensitive: rows of the analysis sample whose ranking is recomputed under a second baseline (0 = off)
    baseline_sensitivity_rows: int = 256
    # baseline_sensitive warns when the upper end of the bootstrap 95% interval of the Spearman correlation between
    # the two rankings (over the features with real attribution under either baseline) is below this, or when the
    # top feature changes and each baseline's interval of the share difference between the two tops excludes 0
    baseline_sensitivity_spearman: float = 0.8
    # not_converged fails (the attributions are unusable) only when the median row's relative completeness error is
    # at least this: the attributions of a typical row then miss that share of its output change and the ranking
    # means nothing. Below it unconverged rows weaken the evidence and not_converged warns at most
    not_converged_unusable: float = 0.5

    def __post_init__(self) -> None:
        # every threshold is a number; shares, fractions, probabilities and correlations lie in [0, 1]
        unit = {
            "not_converged_fail_fraction", "not_converged_warn_fraction", "leak_univariate",
            "noise_group_corr", "convergence_floor",
            "top1_share", "top3_share",
            "slice_spearman", "drift_weighted_ks", "drift_feature_ks", "baseline_max_prob",
            "crosscheck_min_spearman", "spatial_share", "spurious_min_shift", "spurious_min_flip",
            "leak_separation", "leak_perfect",
            "spatial_min_drop",
            "baseline_sensitivity_spearman",
        }  # fmt: skip
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v < 0:
                raise UsageError(f"threshold '{f.name}' must be a number >= 0, got {v!r}; fix [thresholds]")
            whole = ("slice_min_rows", "small_sample_rows", "small_sample_class_rows", "baseline_sensitivity_rows")
            if f.name in whole and int(v) != v:
                raise UsageError(f"threshold '{f.name}' must be a whole number, got {v!r}; fix [thresholds]")
            if f.name in unit and v > 1:
                raise UsageError(f"threshold '{f.name}' must lie between 0 and 1, got {v!r}; fix [thresholds]")


@dataclass(frozen=True)
class AuditConfig:
    model: Path
    data: Path
    out: Path = Path("reports/latest")
    target_col: str | None = None
    drop: tuple[str, ...] = ()
    arch: str | None = None
    trust_model: bool = False
    class_index: str | None = None  # None = predicted class, "all", or an integer as text
    kind: str = "auto"  # auto | tabular | image: what a row of the data is (auto: decided on clear evidence)
    task: str = "auto"  # auto | regression | binary | multiclass | multioutput
    class_names: tuple[str, ...] = ()  # labels of the model's classes, for the report
    sep: str | None = None  # CSV separator; None = detect from the header
    # None = the modality's default: the data mean for tables (one streaming pass), black for images, pad for
    # text; else zero | mean | median | a one-row CSV (images: black | blur | noise | mean)
    baseline: str | None = None
    method: str = "gausslegendre"
    n_steps: int | str = "auto"  # int or "auto"
    max_steps: int = 1024  # the most steps n_steps="auto" may give a row
    noise_features: tuple[str, ...] = ()  # glob patterns
    groups: tuple[str, ...] = ()  # "NAME=GLOB": columns ranked and judged as one feature (one-hot blocks: found)
    slice_col: str | None = None
    reference: Path | None = None
    crosscheck_rows: int | str = 256  # int or "all"
    device: str = "cpu"
    dtype: str = "float32"  # float32 | float64
    bf16: bool = False
    seed: int = 0
    formats: tuple[str, ...] = FORMATS
    fail_on: str = "fail"
    quiet: bool = False
    memory_budget_mb: int = 1024
    chunk_rows: int = 65536  # rows read from the data file at a time
    n_boot: int = 200
    analysis_rows: int = 200_000  # uniform row sample kept for bootstrap, findings and the cross-check
    ablation_rows: int = 20_000  # rows used for neutralised losses and per-class IG with --class all
    neutralise: str = "permute"  # noise_leakage: permute a feature within its column, or set it to the baseline
    thresholds: Thresholds = field(default_factory=Thresholds)
    command: str = ""
    # images
    # "auto": from the images and the model (audit.io.images.choose_size: a set of 64 px images that the model
    # accepts is audited at 64; else resize 256 / crop 224, never enlarging without a note); resize None = no resize
    image_size: int | str | None = "auto"
    resize: int | str | None = "auto"
    normalize: str = "imagenet"  # imagenet | none | "m1,m2,m3/s1,s2,s3"
    labels: Path | None = None
    gallery: int = 6
    # text
    text_col: str | None = None  # the column holding the text; None = the only non-label string column
    tokenizer: Path | None = None  # tokenizer.json (the tokenizers library) for a model that is not a HF folder
    max_length: int | None = None  # tokens per row, longer rows are truncated; None = the model's limit, at most 512
    # executors
    executor: str = "local"  # local | ray
    ray_address: str | None = None  # None: start a local Ray instance; "auto" or host:port joins a cluster
    workers: int | None = None  # Ray actors; None = as many as the cluster's CPUs allow
    cpus_per_worker: float | None = None  # None = sized from the cluster's resources (fractional on small machines)
    gpus_per_worker: float = 0.0
    # set by the demo: known coefficients for the expected-vs-estimated table
    known_coefficients: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise UsageError(f"unknown --method '{self.method}'; use one of {', '.join(METHODS)}")
        if isinstance(self.n_steps, str):
            if self.n_steps != "auto":
                raise UsageError(f"--n-steps must be a whole number >= 2 or 'auto', got '{self.n_steps}'")
        elif self.n_steps < 2:
            raise UsageError(f"--n-steps must be at least 2, got {self.n_steps}; 50 is a good default")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise UsageError(f"unknown --format '{','.join(bad) or ''}'; use a comma list of {', '.join(FORMATS)}")
        if self.kind not in KINDS:
            raise UsageError(f"unknown --kind '{self.kind}'; use one of {', '.join(KINDS)}")
        if self.task not in TASKS:
            raise UsageError(f"unknown --task '{self.task}'; use one of {', '.join(TASKS)}")
        if self.neutralise not in NEUTRALISE:
            raise UsageError(f"unknown --neutralise '{self.neutralise}'; use one of {', '.join(NEUTRALISE)}")
        if self.n_steps != "auto" and self.n_steps > MAX_STEPS:
            raise UsageError(
                f"--n-steps {self.n_steps} is more than {MAX_STEPS:,}; Gauss-Legendre converges far sooner: use "
                "--n-steps auto (refines only the rows that need it)"
            )
        if self.max_steps > MAX_STEPS:
            raise UsageError(f"--max-steps must be at most {MAX_STEPS:,}, got {self.max_steps}")
        if self.fail_on not in FAIL_ON:
            raise UsageError(f"unknown --fail-on '{self.fail_on}'; use one of {', '.join(FAIL_ON)}")
        if isinstance(self.crosscheck_rows, str):
            if self.crosscheck_rows != "all":
                raise UsageError(f"--crosscheck-rows must be a number >= 0 or 'all', got '{self.crosscheck_rows}'")
        elif self.crosscheck_rows < 0:
            raise UsageError(f"--crosscheck-rows must be >= 0, got {self.crosscheck_rows}")
        if self.max_steps < 16:
            raise UsageError(f"--max-steps must be at least 16, got {self.max_steps}")
        if self.dtype not in ("float32", "float64"):
            raise UsageError(f"unknown --dtype '{self.dtype}'; use float32 or float64")
        if self.memory_budget_mb < 16:
            raise UsageError(f"--memory-budget-mb must be at least 16, got {self.memory_budget_mb}")
        if self.analysis_rows < 100 or self.ablation_rows < 100:
            raise UsageError("analysis_rows and ablation_rows must be at least 100")
        if self.executor not in EXECUTORS:
            raise UsageError(f"unknown --executor '{self.executor}'; use one of {', '.join(EXECUTORS)}")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.cpus_per_worker is not None and not self.cpus_per_worker > 0:
            raise UsageError(f"--cpus-per-worker must be > 0, got {self.cpus_per_worker}")
        if self.gpus_per_worker < 0:
            raise UsageError(f"--gpus-per-worker must be >= 0, got {self.gpus_per_worker}")
        if self.max_length is not None and self.max_length < 2:
            raise UsageError(f"--max-length must be at least 2 tokens, got {self.max_length}")
        if self.n_boot < 0:
            raise UsageError(f"--n-boot must be >= 0, got {self.n_boot}")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, Thresholds):
                v = dataclasses.asdict(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out


def load_toml(path: Path | None) -> dict[str, Any]:
    """Read ``audit.toml``: top-level keys are option names (dashes or underscores), ``[thresholds]`` sets
    detector thresholds. Unknown keys are an error, so a typo never silently does nothing."""
    if path is None or not Path(path).is_file():
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"'{path}' is not valid TOML ({e}); fix the file or remove it") from None
    known = {f.name for f in dataclasses.fields(AuditConfig)}
    known_t = {f.name for f in dataclasses.fields(Thresholds)}
    out: dict[str, Any] = {}
    for key, value in data.items():
        k = key.replace("-", "_")
        if k == "thresholds":
            if not isinstance(value, dict):
                raise UsageError(f"'{path}': [thresholds] must be a table")
            for tk in value:
                if tk.replace("-", "_") not in known_t:
                    raise UsageError(
                        f"'{path}': unknown threshold '{tk}'; known: {', '.join(sorted(known_t))}"
                    )
            out["thresholds"] = {tk.replace("-", "_"): tv for tk, tv in value.items()}
        elif k in known or k == "group":
            out[k] = value
        else:
            raise UsageError(f"'{path}': unknown option '{key}'; see 'audit run --help' for the names")
    return out


def _parse_int_or(value: object, word: str, option: str) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == word:
        return word
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"{option} must be a whole number or '{word}', got '{value}'") from None


def _split(values: object) -> tuple[str, ...]:
    """Repeatable options that also accept comma lists: ('a,b', 'c') -> ('a', 'b', 'c')."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in str(v).split(",") if p.strip())
    return tuple(out)


def _local_path(value: object, key: str) -> object:
    """``file://`` URIs as paths; other URIs (``s3://``, ``gs://``) are refused with what to do, before ``Path``
    would fold ``s3://b/k`` into ``s3:/b/k`` and report a missing file."""
    if not isinstance(value, str) or "://" not in value:
        return value
    scheme, rest = value.split("://", 1)
    if scheme.lower() == "file":
        return rest
    raise UsageError(
        f"--{key} '{value}': {scheme}:// URIs are not read directly yet; mount the bucket (s3fs, gcsfuse, a "
        "Kubernetes volume) or copy the files to a filesystem every node shares, and pass that path"
    )


def build_config(flags: dict[str, Any], toml_path: Path | None = None) -> AuditConfig:
    """AuditConfig from CLI flags (None = not given) over ``audit.toml`` over the defaults.

    ``toml_path`` None means ``./audit.toml`` when it exists.
    """
    if toml_path is None and Path("audit.toml").is_file():
        toml_path = Path("audit.toml")
    elif toml_path is not None and not Path(toml_path).is_file():
        raise UsageError(f"--config '{toml_path}' does not exist; pass an existing audit.toml")
    merged: dict[str, Any] = load_toml(toml_path)
    merged.update({k: v for k, v in flags.items() if v is not None and v != () and v != []})
    thresholds = Thresholds(**merged.pop("thresholds", {}))
    for key in ("model", "data"):
        if key not in merged:
            raise UsageError(f"--{key} is required; pass --{key} PATH")
    for key in ("model", "data", "reference"):
        merged[key] = _local_path(merged.get(key), key)
    for key in ("model", "data", "out", "reference", "labels", "tokenizer"):
        if merged.get(key) is not None:
            merged[key] = Path(merged[key])
    if "n_steps" in merged:
        merged["n_steps"] = _parse_int_or(merged["n_steps"], "auto", "--n-steps")
    if "crosscheck_rows" in merged:
        merged["crosscheck_rows"] = _parse_int_or(merged["crosscheck_rows"], "all", "--crosscheck-rows")
    if "group" in merged:  # audit.toml may say group = [...] as the flag is --group
        merged["groups"] = merged.pop("group")
    for key in ("drop", "noise_features", "formats", "class_names", "groups"):
        if key in merged:
            merged[key] = _split(merged[key])
    if "formats" in merged:
        merged["formats"] = tuple(f.lower() for f in merged["formats"])
    if merged.get("resize") == 0:
        merged["resize"] = None  # --resize 0: no resize
    for key in ("task", "kind", "executor"):
        if key in merged:
            merged[key] = str(merged[key]).strip().lower()
    if merged.get("sep") is not None:
        merged["sep"] = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";"}.get(merged["sep"], merged["sep"])
    if merged.get("class_index") is not None:
        merged["class_index"] = str(merged["class_index"]).strip().lower()
    try:
        return AuditConfig(thresholds=thresholds, **merged)
    except TypeError as e:
        raise UsageError(f"bad option in the configuration ({e}); see 'audit run --help'") from None
