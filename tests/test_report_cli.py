"""``audit render``: re-renders a saved run into the same report, with one-line errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from audit.cli.main import app
from audit.errors import EXIT_CANNOT_RUN, EXIT_USAGE, UsageError
from audit.report import parse_formats, render_html, report_paths, write_reports
from audit.results import load_run, save_run
from tests.report_fixtures import REGRESSION_JSON, make_pass_run

runner = CliRunner()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A small run saved the way 'audit run' saves it."""
    return save_run(make_pass_run(), tmp_path / "audit.json")


def _invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_render_writes_the_same_html_the_run_wrote(tmp_path: Path) -> None:
    """What 'audit run' writes (write_reports on the run) and what 'audit render' rebuilds from audit.json
    are byte for byte the same page."""
    run_dir = tmp_path / "run"
    run = load_run(REGRESSION_JSON)
    original = write_reports(run, report_paths(run_dir, ["html"]))["html"].read_text(encoding="utf-8")
    save_run(run, run_dir / "audit.json")
    saved = str(run_dir / "audit.json")
    code, out, err = _invoke("render", saved, "--format", "html", "--out", str(tmp_path / "again"))
    assert (code, err) == (0, "")
    again = tmp_path / "again" / "report.html"
    assert out.strip() == f"wrote {again}"
    assert again.read_text(encoding="utf-8") == original


def test_default_writes_html_and_pdf_next_to_the_json(saved: Path) -> None:
    code, out, _ = _invoke("render", str(saved))
    assert code == 0
    html, pdf = saved.parent / "report.html", saved.parent / "report.pdf"
    assert out.splitlines() == [f"wrote {html}", f"wrote {pdf}"]
    assert html.read_text(encoding="utf-8") == render_html(make_pass_run())
    first_page = PdfReader(str(pdf)).pages[0].extract_text()
    assert "PASS" in first_page and "No problems found" in first_page
    assert sorted(p.name for p in saved.parent.iterdir()) == ["audit.json", "report.html", "report.pdf"]


def test_out_file_suffix_picks_the_format(saved: Path, tmp_path: Path) -> None:
    code, out, _ = _invoke("render", str(saved), "--out", str(tmp_path / "share" / "audit-summary.html"))
    assert code == 0
    assert (tmp_path / "share" / "audit-summary.html").is_file()
    assert not (tmp_path / "share" / "report.pdf").exists()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--format", "docx"], EXIT_USAGE, "unknown --format 'docx'; use html, pdf or html,pdf"),
        (["--format", "json"], EXIT_USAGE, "audit.json is the saved run itself"),
        (["--format", "html,pdf", "--out", "one.html"], EXIT_USAGE, "names one file but --format asks for html,pdf"),
        (["--format", "pdf", "--out", "x.html"], EXIT_USAGE, "does not end in .pdf"),
    ],
)
def test_bad_options_are_one_line_usage_errors(saved: Path, args: list[str], code: int, message: str) -> None:
    exit_code, out, err = _invoke("render", str(saved), *args)
    assert exit_code == code
    assert message in err and err.startswith("audit: error: ") and err.count("\n") == 1
    assert not (saved.parent / "report.html").exists()


def test_missing_or_broken_json_is_a_report_error(tmp_path: Path) -> None:
    code, _, err = _invoke("render", str(tmp_path / "nope.json"))
    assert code == EXIT_CANNOT_RUN
    assert "no results file at" in err and "pass the audit.json written by 'audit run'" in err
    broken = tmp_path / "audit.json"
    broken.write_text("{not json", encoding="utf-8")
    code, _, err = _invoke("render", str(broken))
    assert code == EXIT_CANNOT_RUN and "is not valid JSON" in err and err.count("\n") == 1
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema_version": 0}), encoding="utf-8")
    code, _, err = _invoke("render", str(old))
    assert code == EXIT_CANNOT_RUN and "schema_version 0" in err


def test_recorded_artifact_names_are_reused(tmp_path: Path) -> None:
    paths = report_paths(tmp_path, ["html", "pdf"], {"html": "churn-audit.html", "pdf": "../escape.pdf"})
    assert paths == {"html": tmp_path / "churn-audit.html", "pdf": tmp_path / "report.pdf"}


def test_parse_formats_orders_and_dedupes() -> None:
    assert parse_formats("pdf,html,pdf") == ("html", "pdf")
    assert parse_formats(" PDF ") == ("pdf",)
    with pytest.raises(UsageError):
        parse_formats("")


def test_render_never_imports_torch_or_captum(tmp_path: Path) -> None:
    saved = save_run(make_pass_run(), tmp_path / "audit.json")
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from audit.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['render', {str(saved)!r}, '--format', 'html'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('torch', 'captum') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
