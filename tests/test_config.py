"""Options from flags over audit.toml over defaults; bad values are one clear UsageError each."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.config import AuditConfig, Thresholds, build_config, load_toml
from audit.errors import UsageError


def _toml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "audit.toml"
    p.write_text(text)
    return p


def test_flags_win_over_toml_which_wins_over_defaults(tmp_path):
    toml = _toml(tmp_path, 'n-steps = "auto"\nseed = 7\nnoise-features = ["noise_*"]\n[thresholds]\ntop1_share = 0.5\n')
    cfg = build_config({"model": "m.pt", "data": "d.csv", "seed": 3}, toml)
    assert cfg.n_steps == "auto" and cfg.seed == 3 and cfg.noise_features == ("noise_*",)
    assert cfg.thresholds.top1_share == 0.5 and cfg.thresholds.leak_univariate == Thresholds().leak_univariate
    assert cfg.method == "gausslegendre" and cfg.formats == ("json", "html", "pdf")
    assert isinstance(cfg.model, Path)


def test_comma_lists_and_int_or_word_options():
    cfg = build_config({"model": "m", "data": "d", "formats": "JSON,html", "drop": ["a,b", "c"],
                        "n_steps": "64", "crosscheck_rows": "all", "resize": 0})
    assert cfg.formats == ("json", "html") and cfg.drop == ("a", "b", "c")
    assert cfg.n_steps == 64 and cfg.crosscheck_rows == "all" and cfg.resize is None


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"n_steps": "lots"}, "--n-steps"),
        ({"n_steps": 1}, "--n-steps"),
        ({"crosscheck_rows": "some"}, "--crosscheck-rows"),
        ({"method": "simpson"}, "simpson"),
        ({"formats": "json,docx"}, "docx"),
        ({"fail_on": "maybe"}, "--fail-on"),
        ({"dtype": "float16"}, "float16"),
    ],
)
def test_bad_values_name_the_option(flags, words):
    with pytest.raises(UsageError, match=words.replace("-", r"\-")):
        build_config({"model": "m", "data": "d", **flags})


def test_toml_typos_and_bad_files_are_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown option 'n-stepz'"):
        load_toml(_toml(tmp_path, "n-stepz = 3\n"))
    with pytest.raises(UsageError, match="unknown threshold 'leak'"):
        load_toml(_toml(tmp_path, "[thresholds]\nleak = 0.3\n"))
    with pytest.raises(UsageError, match="not valid TOML"):
        load_toml(_toml(tmp_path, "n-steps = \n"))
    with pytest.raises(UsageError, match="between 0 and 1"):
        build_config({"model": "m", "data": "d"}, _toml(tmp_path, "[thresholds]\nleak_univariate = 3\n"))
    with pytest.raises(UsageError, match="does not exist"):
        build_config({"model": "m", "data": "d"}, tmp_path / "missing.toml")
    with pytest.raises(UsageError, match="--model is required"):
        build_config({"data": "d"})


def test_config_round_trips_to_plain_types():
    cfg = AuditConfig(model=Path("m"), data=Path("d"), noise_features=("n*",))
    d = cfg.to_dict()
    assert d["model"] == "m" and d["noise_features"] == ["n*"] and isinstance(d["thresholds"], dict)


def test_object_store_uris_are_refused_with_what_to_do_and_file_uris_are_paths():
    from audit.config import build_config
    from audit.errors import UsageError

    with pytest.raises(UsageError, match="s3:// URIs are not read directly yet; mount the bucket"):
        build_config({"model": "m.pt", "data": "s3://bucket/part-*.parquet"})
    cfg = build_config({"model": "file:///tmp/m.pt", "data": "/tmp/d.csv"})
    assert str(cfg.model) == "/tmp/m.pt"
