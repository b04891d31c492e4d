"""What `audit run --help` and `audit render --help` print: brackets survive Rich markup, the defaults are
marked, on/off flags show no value type, the argument is named as users type it."""

from __future__ import annotations

import re

from typer.testing import CliRunner

from audit.cli.main import app

runner = CliRunner()


def _help(*cmd: str) -> str:
    res = runner.invoke(app, [*cmd, "--help"], env={"COLUMNS": "220", "TERM": "dumb"})
    assert res.exit_code == 0, res.output
    return res.output


def _line(text: str, flag: str) -> str:
    found = [ln for ln in text.splitlines() if re.search(rf"{re.escape(flag)}(\s|,|$)", ln)]
    assert found, f"{flag} not in the help"
    return found[0]


def test_run_help_keeps_brackets_and_marks_defaults():
    text = _help("run")
    assert "audit.toml with options and a [thresholds] table" in _line(text, "--config")
    assert "[default: ./audit.toml if present]" in _line(text, "--config")
    assert "[default: 200]" in _line(text, "--n-boot")
    assert "[default: reports/latest]" in _line(text, "--out")
    assert "[default: json,html,pdf]" in _line(text, "--format")
    assert "[default: 1024]" in _line(text, "--max-steps")
    assert "[default: 256]" in _line(text, "--crosscheck-rows")
    assert "[default: gausslegendre]" in _line(text, "--method")
    assert "Default 200" not in text and "Default 1024" not in text  # said once, as the marker


def test_run_help_flags_take_no_value():
    text = _help("run")
    for flag in ("--quiet", "--json", "--bf16", "--trust-model"):
        assert "<bool>" not in _line(text, flag), _line(text, flag)
    assert "<int>" in _line(text, "--n-boot")  # options that take a value still say which


def test_render_help_names_the_argument():
    text = _help("render")
    assert "Usage: audit render [OPTIONS] RUN_JSON" in text
    assert "{run_json}" not in text and "{RUN_JSON}" not in text
