"""How a command ends on an error: a bug is exit 4 with its traceback and a report line, never exit 1 (the FAIL
verdict); an AuditError stays one line with its documented code; Ctrl-C is exit 130."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import audit.bench
import audit.cli._execute
import audit.demo
import audit.results
from audit.cli.main import app
from audit.errors import EXIT_BUG, EXIT_CANNOT_RUN, EXIT_INTERRUPTED, DataError

runner = CliRunner()


def _raiser(exc: BaseException):
    def boom(*_args, **_kwargs):
        raise exc

    return boom


def _command(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> list[str]:
    """Arguments for command ``name`` with the function at its core replaced by one that raises ``exc``."""
    monkeypatch.chdir(tmp_path)  # no ./audit.toml of the repository leaks in
    if name == "run":
        monkeypatch.setattr(audit.cli._execute, "run_audit", _raiser(exc))
        (tmp_path / "m.pt").write_bytes(b"")
        (tmp_path / "d.csv").write_text("a\n1\n")
        return ["run", "--model", "m.pt", "--data", "d.csv", "--out", str(tmp_path / "out"), "--quiet"]
    if name == "demo":
        monkeypatch.setattr(audit.demo, "make_synthetic", _raiser(exc))
        return ["demo", "--out", str(tmp_path / "demo"), "--quiet"]
    if name == "render":
        monkeypatch.setattr(audit.results, "load_run", _raiser(exc))
        (tmp_path / "audit.json").write_text("{}")
        return ["render", str(tmp_path / "audit.json")]
    monkeypatch.setattr(audit.bench, "bench", _raiser(exc))
    return ["bench", "--rows", "4", "--n-steps", "4", "--repeats", "1"]


def _stderr_lines(res) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.strip()]


@pytest.mark.parametrize("name", ["run", "demo", "render", "bench"])
def test_a_bug_exits_4_with_its_traceback_and_one_report_line(name, tmp_path, monkeypatch):
    args = _command(name, tmp_path, monkeypatch, RuntimeError("index 7 is out of\nbounds for dim 0"))
    res = runner.invoke(app, args)
    assert res.exit_code == EXIT_BUG == 4, (res.exit_code, res.output)
    err = res.stderr
    assert "Traceback (most recent call last):" in err
    assert "in boom" in err  # the traceback reaches the frame that raised
    last = _stderr_lines(res)[-1]
    assert last.startswith("audit: internal error: RuntimeError: index 7 is out of bounds for dim 0; ")
    assert "this is a bug in audit" in last and "audit --version" in last
    assert "Traceback" not in res.stdout


@pytest.mark.parametrize("name", ["run", "render", "bench"])
def test_an_audit_error_is_still_one_line_with_its_code(name, tmp_path, monkeypatch):
    args = _command(name, tmp_path, monkeypatch, DataError("the table has no rows; pass a file with data rows"))
    res = runner.invoke(app, args)
    assert res.exit_code == EXIT_CANNOT_RUN, (res.exit_code, res.output)
    assert _stderr_lines(res) == ["audit: error: the table has no rows; pass a file with data rows"]
    assert "Traceback" not in res.output and "internal error" not in res.output


def test_ctrl_c_exits_130_with_one_line(tmp_path, monkeypatch):
    res = runner.invoke(app, _command("bench", tmp_path, monkeypatch, KeyboardInterrupt()))
    assert res.exit_code == EXIT_INTERRUPTED == 130, (res.exit_code, res.output)
    assert _stderr_lines(res) == ["audit: interrupted"]


def test_usage_errors_of_the_cli_framework_pass_through(tmp_path, monkeypatch):
    # Typer's own errors (a bad option value) keep Typer's exit code 2 and are not called bugs
    res = runner.invoke(app, ["bench", "--rows", "many"])
    assert res.exit_code == 2, res.output
    assert "internal error" not in res.output
