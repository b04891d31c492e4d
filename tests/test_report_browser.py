"""The report in a real headless browser (Debian's Chromium): it loads with no console errors or blocked
requests, the key elements exist after load, and a screenshot shows the verdict banner at the top."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from audit.report import write_html
from audit.report.context import sort_findings
from tests.report_fixtures import make_regression_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(  # in CI a missing browser fails, never skips
        CHROMIUM is None and not os.environ.get("CI"), reason="Debian's chromium is not installed (CI installs it)"
    ),
]

WIDTH, HEIGHT = 1280, 2000
# Chromium logs page console messages (errors, CSP violations, failed loads) as "...:CONSOLE:<line>] ..."
_CONSOLE = re.compile(r":CONSOLE[:(]|Failed to load resource|net::ERR_")


def _chromium(page: Path, profile: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        *mode,
        page.resolve().as_uri(),
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if _CONSOLE.search(line)]


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.items.append((tag, {k: v or "" for k, v in attrs}))


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_html(make_regression_run(), tmp_path_factory.mktemp("browser") / "report.html")


@pytest.fixture(scope="module")
def dom(report: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    result = _chromium(report, tmp_path_factory.mktemp("profile"), "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr


def test_page_loads_without_console_errors_or_blocked_requests(dom: tuple[str, str]) -> None:
    html, stderr = dom
    assert _console_problems(stderr) == []
    assert html.rstrip().endswith("</html>")


def test_key_elements_exist_after_load(dom: tuple[str, str]) -> None:
    html, _ = dom
    parser = _Elements()
    parser.feed(html)
    tags = parser.items
    assert re.search(r'class="banner-label"[^>]*>FAIL<', html)
    codes = [a["data-code"] for t, a in tags if t == "article" and "data-code" in a]
    assert codes == [f.code for f in sort_findings(make_regression_run().findings)]
    assert sum(1 for t, _ in tags if t == "svg") == 10
    ids = {a.get("id") for _, a in tags}
    assert {"summary", "findings", "ranking", "convergence", "crosscheck", "provenance"} <= ids
    for name in ("days_until_churn_copy", "monthly_spend", "tenure_months", "noise_03", "support_calls"):
        assert name in html


def test_screenshot_shows_the_verdict_banner_first(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    result = _chromium(report, tmp_path / "profile", f"--screenshot={shot}")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    assert _console_problems(result.stderr) == []
    img = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int32)
    assert img.shape[:2] == (HEIGHT, WIDTH)
    assert img.std() > 10  # not a blank page
    # the FAIL banner's red (#b42318) fills a block in the first screenful, where a reviewer looks first
    red = (np.abs(img[:400] - np.array([0xB4, 0x23, 0x18])).sum(axis=2) < 30).sum()
    assert red > 5000


def test_console_check_catches_a_page_that_loads_from_the_network(tmp_path: Path) -> None:
    """Planted case: an external image is blocked by the report's CSP and shows up in the console log."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!doctype html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:\"></head>"
        '<body><img src="https://example.invalid/x.png" alt=""></body></html>',
        encoding="utf-8",
    )
    result = _chromium(page, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0
    assert _console_problems(result.stderr) != []
