"""The AuditRun record: what a run found, as data. JSON in, JSON out, with ``schema_version``.

Everything the report shows comes from here; the report layer never recomputes. Records are frozen
dataclasses; :func:`to_dict` / :func:`from_dict` round-trip them through plain JSON types, so a saved
``audit.json`` can be re-rendered or diffed later.

Fixed contract (schema_version 1; more fields may be added, these stay):

- ``schema_version``, ``verdict`` (pass|warn|fail), ``task``
- ``features``: ordered by rank, each ``{name, rank, mean_abs, mean, std, share, ci_low, ci_high}``
- ``convergence``: ``{method, n_steps, median_rel_delta, p95_rel_delta, max_rel_delta}``
- ``crosscheck``: ``{rows, max_abs_diff, max_rel_diff, rank_spearman, passed}``
- ``findings``: list of ``{code, severity, features, message, evidence}``
- ``provenance``: ``{model_sha256, data_sha256, versions, command, seed, created_at}``
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any

from audit.errors import ReportError
from audit.records import BaselineSensitivity, FeatureGroup, SliceDirection

__all__ = [
    "SCHEMA_VERSION",
    "Severity",
    "Verdict",
    "FeatureStat",
    "FeatureGroup",
    "Finding",
    "Convergence",
    "Crosscheck",
    "Provenance",
    "ExpectedAttribution",
    "SignedSample",
    "SliceProfile",
    "SliceDirection",
    "DriftStat",
    "ImageItem",
    "ImageSummary",
    "TokenStat",
    "TextExample",
    "TextSummary",
    "BaselineSensitivity",
    "AuditRun",
    "verdict_from_findings",
    "to_dict",
    "from_dict",
    "dumps",
    "save_run",
    "load_run",
]

SCHEMA_VERSION = 1


class Severity(StrEnum):
    """Closed set, ordered: info < warn < fail."""

    INFO = "info"
    WARN = "warn"
    FAIL = "fail"

    @property
    def order(self) -> int:
        return _SEVERITY_ORDER[self.value]


_SEVERITY_ORDER = {"info": 0, "warn": 1, "fail": 2}


class Verdict(StrEnum):
    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"

    @property
    def order(self) -> int:
        return {"pass": 0, "warn": 1, "fail": 2}[self.value]


@dataclass(frozen=True)
class FeatureStat:
    """Global statistics of one feature's attributions over all audited rows."""

    name: str
    rank: int  # 1 = largest mean |attribution|
    mean_abs: float
    mean: float  # signed
    std: float  # of the signed attribution
    share: float  # mean_abs / sum of mean_abs over features
    ci_low: float  # bootstrap 95% interval of mean_abs
    ci_high: float
    rank_ci_low: int = 0  # bootstrap 95% interval of the rank (0 = not computed)
    rank_ci_high: int = 0


@dataclass(frozen=True)
class Finding:
    code: str  # stable: noise_leakage, target_leakage, identifier_leakage, concentration_skew, ...
    severity: Severity
    features: tuple[str, ...]
    message: str  # one sentence, plain words
    evidence: dict[str, Any] = field(default_factory=dict)  # the numbers behind the message


@dataclass(frozen=True)
class Convergence:
    method: str
    n_steps: int | str  # an int, or "auto"
    median_rel_delta: float
    p95_rel_delta: float
    max_rel_delta: float
    tolerance: float = 0.01
    n_rows: int = 0
    n_not_converged: int = 0
    steps_used: dict[str, int] = field(default_factory=dict)  # steps -> number of rows that needed them
    rel_delta_hist_edges: tuple[float, ...] = ()  # log10 bin edges of the relative completeness error
    rel_delta_hist_counts: tuple[int, ...] = ()


@dataclass(frozen=True)
class Crosscheck:
    """Native against Captum on a sample of rows. A check that did not run has ``rows == 0``, ``None`` for
    every measured field and the reason in ``skipped_reason``: it never reads as passed."""

    rows: int
    max_abs_diff: float | None
    max_rel_diff: float | None
    rank_spearman: float | None
    passed: bool | None
    method: str = ""
    n_steps: int = 0
    tol_abs: float = 0.0
    tol_rel: float = 0.0
    native_median_rel_delta: float = 0.0
    captum_median_rel_delta: float = 0.0
    captum_bias: str = ""  # non-empty when a known Captum-side bias explains a disagreement
    captum_version: str = ""
    explanation: str = ""  # what the numbers mean, in words
    skipped_reason: str = ""  # non-empty when the cross-check did not run


@dataclass(frozen=True)
class Provenance:
    model_sha256: str
    data_sha256: str
    versions: dict[str, str]
    command: str
    seed: int
    created_at: str  # ISO 8601, UTC
    model_form: str = ""  # torchscript | export | state_dict | pickle | demo
    model_path: str = ""
    data_path: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    duration_s: float = 0.0


@dataclass(frozen=True)
class ExpectedAttribution:
    """Known-answer comparison (the demo): expected coef * (x - x') against the estimate, per feature."""

    name: str
    coefficient: float
    expected_mean: float  # mean over rows of coef * (x - x')
    estimated_mean: float
    expected_mean_abs: float
    estimated_mean_abs: float
    max_abs_error: float  # max over rows |estimated - expected|


@dataclass(frozen=True)
class SignedSample:
    """A sample of (feature value, attribution) pairs for one top feature: the direction view."""

    name: str
    values: tuple[float, ...]
    attributions: tuple[float, ...]


@dataclass(frozen=True)
class SliceProfile:
    column: str
    group: str
    rows: int
    top_features: tuple[str, ...]
    shares: dict[str, float]  # feature -> share of |attribution| within the group
    spearman_vs_all: float  # rank agreement of the group's ranking with the global one
    directions: tuple[SliceDirection, ...] = ()  # the global top features' direction here and in the other rows


@dataclass(frozen=True)
class DriftStat:
    name: str
    ks: float  # two-sample Kolmogorov-Smirnov statistic, reference vs audited data
    share: float  # attribution share of the feature
    weighted: float  # ks * share


@dataclass(frozen=True)
class ImageItem:
    """One image of the gallery. Arrays are small (downsampled) and plain lists, no colours."""

    path: str
    label: str
    predicted: str
    confidence: float
    target_class: str
    thumbnail: tuple[tuple[tuple[int, ...], ...], ...]  # (H, W, 3) uint8 values
    heatmap: tuple[tuple[float, ...], ...]  # (H, W) channel-reduced |attribution|, clipped, in [0, 1]
    rel_delta: float = 0.0


@dataclass(frozen=True)
class ImageSummary:
    image_size: tuple[int, int]
    n_images: int
    classes: tuple[str, ...]
    mean_map: tuple[tuple[float, ...], ...]  # (H, W) mean |attribution| over the data set, in [0, 1]
    class_maps: dict[str, tuple[tuple[float, ...], ...]]
    channel_share: dict[str, float]  # channel name -> share of |attribution|
    most_confident: tuple[ImageItem, ...] = ()
    least_confident: tuple[ImageItem, ...] = ()
    baseline: str = "black"


@dataclass(frozen=True)
class TokenStat:
    """One token of a text run's token table: attribution summed over its occurrences in the audited rows."""

    token: str
    rank: int  # 1 = largest share of all |attribution|
    occurrences: int  # positions holding it
    rows: int  # rows containing it
    mean_abs: float  # mean |attribution| per occurrence
    mean: float  # mean signed attribution per occurrence (towards each row's explained class)
    share: float  # sum of its |attribution| / sum over all tokens
    ci_low: float  # bootstrap 95% interval of mean_abs (rows resampled)
    ci_high: float
    share_ci_low: float = 0.0  # bootstrap 95% interval of share
    share_ci_high: float = 0.0
    special: bool = False  # [CLS], [SEP], ...: kept in the pad baseline


@dataclass(frozen=True)
class TextExample:
    """One row of a text run, for the per-example views: its tokens and their attributions (no colours)."""

    row: int  # 0-based data row
    tokens: tuple[str, ...]
    attributions: tuple[float, ...]  # per token, towards target_class
    label: str  # "" when the data has no labels
    predicted: str
    confidence: float
    target_class: str
    rel_delta: float = 0.0
    truncated: bool = False


@dataclass(frozen=True)
class TextSummary:
    """What a text run adds: settings, the global token table (and per class), the per-example views."""

    text_col: str
    n_rows: int
    max_length: int
    n_truncated: int
    baseline: str  # "pad" | "zero"
    pad_token: str
    vocab_size: int
    classes: tuple[str, ...]
    tokens: tuple[TokenStat, ...]  # the top tokens by share, rank order
    n_distinct_tokens: int = 0
    class_tokens: dict[str, tuple[TokenStat, ...]] = field(default_factory=dict)  # explained class -> table
    most_confident: tuple[TextExample, ...] = ()
    least_confident: tuple[TextExample, ...] = ()
    misclassified: tuple[TextExample, ...] = ()
    accuracy: float | None = None
    settings: dict[str, Any] = field(default_factory=dict)  # engine, batching and masking settings


@dataclass(frozen=True)
class AuditRun:
    schema_version: int
    verdict: Verdict
    # regression | multioutput_regression | binary_classification | classification | image_classification |
    # text_classification
    task: str
    features: tuple[FeatureStat, ...]
    convergence: Convergence
    crosscheck: Crosscheck
    findings: tuple[Finding, ...]
    provenance: Provenance
    n_rows: int = 0
    n_features: int = 0
    target_col: str = ""
    explained_output: str = ""  # "output 0" / "predicted class" / "class 3"
    baseline: str = "zero"
    class_features: dict[str, tuple[FeatureStat, ...]] = field(default_factory=dict)
    signed: tuple[SignedSample, ...] = ()
    expected: tuple[ExpectedAttribution, ...] = ()
    slices: tuple[SliceProfile, ...] = ()
    drift: tuple[DriftStat, ...] = ()
    declared_noise: tuple[str, ...] = ()
    images: ImageSummary | None = None
    text: TextSummary | None = None  # text runs only; left out of audit.json when None (see to_dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # kind -> file name next to audit.json
    notes: tuple[str, ...] = ()  # things the user should know (fallback paths taken, rows sampled, ...)
    task_reason: str = ""  # how the task was chosen: "binary classification, detected: one output and ..."
    class_names: tuple[str, ...] = ()  # labels of the model's outputs, when known
    signed_class: str = ""  # the class the direction samples explain (classifiers), e.g. "1" or "malignant"
    groups: tuple[FeatureGroup, ...] = ()  # one-hot blocks and --group declarations
    # the grouped ranking: each group one entry (mean |sum of its members' attributions|), other columns as they are
    group_features: tuple[FeatureStat, ...] = ()
    # tables: True when ``baseline`` is the modality's default (no --baseline given); None for runs that do not
    # record it (left out of audit.json then)
    baseline_default: bool | None = None
    # tables: the ranking under a second baseline (None when it did not run; left out of audit.json then)
    baseline_sensitivity: BaselineSensitivity | None = None

    def save(self, folder: str | Path, formats: typing.Sequence[str] = ("json", "html", "pdf")) -> dict[str, Path]:
        """Write ``audit.json`` and the reports into ``folder`` (all or nothing, as ``audit run`` does).

        Returns the files written, by name."""
        from audit.outputs import save_outputs

        return save_outputs(self, Path(folder), tuple(formats))

    def features_frame(self) -> Any:
        """The global ranking as a pandas DataFrame, one row per feature in rank order."""
        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(s) for s in self.features])

    def _repr_html_(self) -> str:
        """Jupyter shows a run as a summary card: verdict, top features, findings."""
        from audit.report.card import summary_card

        return summary_card(self)


def verdict_from_findings(findings: typing.Iterable[Finding]) -> Verdict:
    """The worst finding severity; ``info`` counts as pass."""
    worst = max((f.severity.order for f in findings), default=0)
    return {0: Verdict.PASS, 1: Verdict.WARN, 2: Verdict.FAIL}[worst]


# --- JSON round trip -------------------------------------------------------------------------------


def _clean_float(x: float) -> float | None:
    return None if (isinstance(x, float) and not math.isfinite(x)) else x


# optional sections that are left out of the JSON when absent, so the records of runs without them (tables, images)
# stay byte for byte what they were before the section existed
_OMIT_WHEN_NONE = {"text", "baseline_default", "baseline_sensitivity"}


def to_dict(obj: Any) -> Any:
    """A record as plain JSON types (NaN/inf become null)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {
            f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)
            if not (f.name in _OMIT_WHEN_NONE and getattr(obj, f.name) is None)
        }
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, float):
        return _clean_float(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy / torch scalars
        return to_dict(obj.item())
    return obj


def _build(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        for a in non_none:
            if dataclasses.is_dataclass(a) and isinstance(value, dict):
                return _build(a, value)
        for a in non_none:
            if a in (int, float, str, bool) and isinstance(value, a):
                return value
        return value if len(non_none) != 1 else _build(non_none[0], value)
    if dataclasses.is_dataclass(tp):
        return _from_fields(tp, value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_build(args[0], v) for v in value)
        if args:
            return tuple(_build(a, v) for a, v in zip(args, value, strict=False))
        return tuple(value)
    if origin is dict:
        vt = args[1] if len(args) == 2 else Any
        return {k: _build(vt, v) for k, v in value.items()}
    if origin is list:
        return [_build(args[0], v) for v in value]
    if tp is float:
        return float("nan") if value is None else float(value)
    return value


def _from_fields(cls: type, data: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            v = data[f.name]
            kwargs[f.name] = float("nan") if (v is None and hints[f.name] is float) else _build(hints[f.name], v)
    return cls(**kwargs)


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a record of type ``cls`` from :func:`to_dict` output. Unknown keys are ignored."""
    return _from_fields(cls, data)


# a JSON array holding only numbers, nulls and nested such arrays: no quotes, colons or braces can occur in it
_NUMERIC_ARRAY = re.compile(r"\[[-0-9.eE+,\s\[\]nul]*\]")


def dumps(run: AuditRun) -> str:
    """``audit.json`` text: indented structure, with arrays of numbers (heatmaps, samples) kept on one line
    each, which keeps image runs several times smaller than plain ``indent=2``."""
    text = json.dumps(to_dict(run), indent=2, allow_nan=False)
    return _NUMERIC_ARRAY.sub(lambda m: re.sub(r"\s+", "", m.group(0)), text)


def save_run(run: AuditRun, path: str | Path) -> Path:
    """Write ``audit.json`` atomically (a temp file renamed into place), so no half-written result stays."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(run) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_run(path: str | Path) -> AuditRun:
    """Read a saved run. Errors are one line that says what to do."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"no results file at '{path}'; pass the audit.json written by 'audit run'")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportError(f"'{path}' is not valid JSON ({e}); pass the audit.json written by 'audit run'") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(f"'{path}' has no schema_version; it is not an audit.json written by 'audit run'")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ReportError(
            f"'{path}' has schema_version {data['schema_version']}, this audit reads {SCHEMA_VERSION}; "
            "re-run 'audit run' with this version"
        )
    try:
        return from_dict(AuditRun, data)
    except (TypeError, ValueError, KeyError) as e:
        raise ReportError(f"'{path}' does not match the audit.json schema ({e}); re-run 'audit run'") from None
