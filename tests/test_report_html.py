"""The report page: structure (verdict, every finding, top features), self-containment, escaping, size,
determinism and the JSON round trip. Fixed records from tests/report_fixtures.py."""

from __future__ import annotations

import dataclasses
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from audit.errors import ReportError
from audit.report import build_context, render_html, sort_findings, write_html
from audit.report.html import atomic_write, templates_root
from audit.results import AuditRun, Finding, Severity, load_run, save_run, to_dict
from tests.report_fixtures import (
    ESCAPE_ME,
    LEAK,
    NOISE_USED,
    REGRESSION_JSON,
    make_classifier_run,
    make_image_run,
    make_pass_run,
    make_regression_run,
)


class _Page(HTMLParser):
    """Collects elements (tag, attrs), the text under each id, and the visible text in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._stack: list[tuple[str, dict[str, str]]] = []
        self.by_class: dict[str, list[str]] = {}
        self._open_class: list[tuple[str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag in ("meta", "img", "br", "link", "input", "rect", "line", "circle", "path"):
            return
        buf: list[str] = []
        self._open_class.append((a.get("class", ""), buf))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("meta", "img", "br", "link", "input", "rect", "line", "circle", "path"):
            return
        if self._open_class:
            cls, buf = self._open_class.pop()
            for c in cls.split():
                self.by_class.setdefault(c, []).append(" ".join("".join(buf).split()))

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for _, buf in self._open_class:
            buf.append(data)


def _parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def regression() -> AuditRun:
    return make_regression_run()


@pytest.fixture(scope="module")
def regression_html(regression: AuditRun) -> str:
    return render_html(regression)


# --- structure -------------------------------------------------------------------------------------


def test_verdict_banner_shows_the_verdict_and_the_worst_finding(regression_html: str) -> None:
    page = _parse(regression_html)
    assert page.by_class["banner-label"] == ["FAIL"]
    assert ("body", {"class": "verdict-fail"}) in page.elements
    lead = page.by_class["banner-lead"][0]
    worst = sort_findings(make_regression_run().findings)[0]
    assert lead == worst.message
    assert page.by_class["banner-counts"] == ["2 failures · 3 warnings · 2 notes"]
    assert "<title>FAIL · Model audit: churn.pt</title>" in regression_html


def test_every_finding_is_shown_worst_first_with_code_message_and_evidence(
    regression: AuditRun, regression_html: str
) -> None:
    page = _parse(regression_html)
    codes = [a["data-code"] for tag, a in page.elements if tag == "article" and "data-code" in a]
    expected = sorted(regression.findings, key=lambda f: (-f.severity.order, f.code))
    assert codes == [f.code for f in expected]
    assert codes[:2] == ["noise_leakage", "target_leakage"]
    assert codes[-2:] == ["baseline_not_neutral", "concentration_skew"]
    messages = page.by_class["finding-message"]
    assert messages == [" ".join(f.message.split()) for f in expected]
    severities = [a["class"].split()[1] for tag, a in page.elements if tag == "article" and "data-code" in a]
    assert severities == ["finding-fail"] * 2 + ["finding-warn"] * 3 + ["finding-info"] * 2
    evidence = " ".join(page.by_class["evidence"])
    assert "Univariate R²: 0.991" in evidence and "Share: 38.0%" in evidence and "P value: n/a" in evidence


def test_top_features_are_listed_in_rank_order(regression: AuditRun, regression_html: str) -> None:
    page = _parse(regression_html)
    top5 = [s.name for s in sorted(regression.features, key=lambda s: s.rank)[:5]]
    assert page.by_class["top-name"] == top5
    assert top5[0] == LEAK and top5[3] == NOISE_USED
    # the ranking table lists all 100 features, rank 1 first
    ranked = page.by_class["name"]
    assert ranked[0].startswith(LEAK) and len([n for n in ranked if n.startswith("x_0")]) >= 80


def test_charts_are_inline_svg_with_titles_and_axis_labels(regression_html: str) -> None:
    svgs = re.findall(r"<svg.*?</svg>", regression_html, flags=re.S)
    # ranking, 6 signed panels, known answer, convergence histogram, steps
    assert len(svgs) == 10
    for svg in svgs:
        assert 'role="img"' in svg and "<title" in svg
        assert svg.count("<text") >= 3  # title and two axis labels at least
    assert "mean |attribution| (whiskers: 95% bootstrap interval)" in regression_html


def test_optional_sections_appear_only_when_the_run_has_them(regression_html: str) -> None:
    for anchor in ("signed", "expected", "noise", "slices", "drift", "convergence", "crosscheck", "provenance"):
        assert f'id="{anchor}"' in regression_html
    assert 'id="classes"' not in regression_html and 'id="images"' not in regression_html
    classifier = render_html(make_classifier_run())
    assert 'id="classes"' in classifier and 'id="signed"' not in classifier and 'id="drift"' not in classifier
    page = _parse(classifier)
    heads = [a for tag, a in page.elements if tag == "th" and a.get("class") == "heat-col"]
    assert len(heads) == 3


def test_pass_run_says_pass_and_no_problems() -> None:
    page = _parse(render_html(make_pass_run()))
    assert page.by_class["banner-label"] == ["PASS"]
    assert page.by_class["banner-headline"] == ["No problems found"]
    assert page.by_class["banner-lead"] == [
        "8 features audited on 500 rows; attributions converged and they agree with Captum."
    ]


def test_image_run_renders_the_gallery_as_data_uris() -> None:
    html = render_html(make_image_run())
    page = _parse(html)
    imgs = [a for tag, a in page.elements if tag == "img"]
    # mean map (on the cover and in the section) + 2 class maps + (2 most + 2 least confident) x (thumbnail, overlay)
    assert len(imgs) == 2 + 2 + 4 * 2
    assert all(a["src"].startswith("data:image/png;base64,") and a.get("alt") for a in imgs)
    assert page.by_class["banner-label"] == ["FAIL"]
    assert "spatial_leakage" in html and 'id="ranking"' not in html


# --- self-contained, escaped, small --------------------------------------------------------------


@pytest.mark.parametrize("make", [make_regression_run, make_classifier_run, make_image_run, make_pass_run])
def test_page_loads_nothing_from_outside(make: object) -> None:
    html = render_html(make())  # type: ignore[operator]
    page = _parse(html)
    for tag, attrs in page.elements:
        for key in ("src", "href", "srcset", "data", "poster"):
            value = attrs.get(key, "")
            assert not re.match(r"^\s*(https?:)?//", value), f"<{tag} {key}={value}> loads from the network"
            if tag in ("img", "script", "link", "iframe", "source") and value:
                assert value.startswith("data:"), f"<{tag} {key}={value[:40]}> is not embedded"
    assert not any(tag in ("script", "link", "iframe") for tag, _ in page.elements)
    assert "@import" not in html and "url(" not in html
    csp = [
        a["content"] for tag, a in page.elements if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'"]


def test_names_and_messages_are_escaped() -> None:
    hostile = "<script>alert(1)</script>"
    run = dataclasses.replace(
        make_pass_run(),
        findings=(Finding("x_code", Severity.WARN, (hostile,), f"message with {hostile}", {hostile: hostile}),),
    )
    html = render_html(run)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    reg = render_html(make_regression_run())
    assert ESCAPE_ME not in reg  # 'ratio<b>&gt;' as a name: its '<b>' must not become markup
    assert "ratio&lt;b&gt;&amp;gt;" in reg


def test_report_for_100_features_stays_small(regression_html: str) -> None:
    size = len(regression_html.encode("utf-8"))
    assert size < 3 * 1024 * 1024
    assert size < 400 * 1024  # today ~200 KB; a jump means something got embedded that should not


# --- determinism and the JSON round trip ---------------------------------------------------------


def test_rendering_is_deterministic(regression: AuditRun, regression_html: str) -> None:
    assert render_html(regression) == regression_html


@pytest.mark.parametrize("make", [make_regression_run, make_classifier_run, make_image_run])
def test_saved_and_reloaded_run_renders_the_same_page(make: object, tmp_path: Path) -> None:
    run = make()  # type: ignore[operator]
    reloaded = load_run(save_run(run, tmp_path / "audit.json"))
    assert render_html(reloaded) == render_html(run)


def test_fixture_json_matches_the_fixture_builder() -> None:
    """tests/fixtures/run_regression.json is make_regression_run() saved; regenerate it with
    ``python -m tests.report_fixtures`` after a deliberate change to the builder."""
    saved = json.loads(REGRESSION_JSON.read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(to_dict(make_regression_run())))


def test_fixture_json_loads_and_renders(regression_html: str) -> None:
    assert render_html(load_run(REGRESSION_JSON)) == regression_html


# --- context -------------------------------------------------------------------------------------


def test_context_sorts_findings_fail_warn_info_then_code() -> None:
    fs = [
        Finding("b", Severity.INFO, (), "i"),
        Finding("z", Severity.FAIL, (), "f2"),
        Finding("a", Severity.WARN, (), "w"),
        Finding("c", Severity.FAIL, (), "f1"),
    ]
    assert [f.code for f in sort_findings(fs)] == ["c", "z", "a", "b"]


def test_context_findings_carry_words_and_numbers(regression: AuditRun) -> None:
    ctx = build_context(regression)
    leak = next(f for f in ctx["findings"] if f["code"] == "target_leakage")
    assert leak["title"] == "Possible target leakage"
    assert leak["severity_label"] == "Fail"
    assert ("Univariate R²", "0.991") in leak["evidence"]
    assert leak["evidence_line"] == "Univariate R²: 0.991; Share: 38.0%; Rank: 1; Threshold R²: 0.95"
    assert ctx["counts"] == {"fail": 2, "warn": 3, "info": 2}
    odd = (Finding("odd_new_code", Severity.WARN, (), "m"),)
    unknown = build_context(dataclasses.replace(regression, findings=odd))
    assert unknown["findings"][0]["title"] == "Odd new code"


def test_context_flags_features_named_by_findings(regression: AuditRun) -> None:
    rows = {r["name"]: r for r in build_context(regression)["ranking"]["rows"]}
    assert rows[LEAK]["flag"] == "fail" and rows[NOISE_USED]["flag"] == "fail"
    assert rows["customer_id"]["flag"] == "warn"
    assert rows["noise_01"]["flag"] == "noise"  # declared noise, no finding
    assert rows["tenure_months"]["flag"] == ""  # named only by an info finding


def test_context_rejects_something_that_is_not_a_run() -> None:
    with pytest.raises(ReportError, match="pass an AuditRun"):
        build_context({"verdict": "pass"})  # type: ignore[arg-type]


def test_broken_record_raises_one_report_error() -> None:
    bad = dataclasses.replace(
        make_pass_run(),
        convergence=dataclasses.replace(make_pass_run().convergence, rel_delta_hist_edges=(0.0, 1.0)),
    )
    with pytest.raises(ReportError, match="re-run it"):
        render_html(bad)


# --- files ---------------------------------------------------------------------------------------


def test_templates_are_found_in_the_checkout() -> None:
    root = templates_root()
    assert root.joinpath("report.html.j2").is_file() and root.joinpath("print.css").is_file()


def test_write_html_writes_the_page_and_no_temp_files(tmp_path: Path) -> None:
    run = make_pass_run()
    out = write_html(run, tmp_path / "sub" / "report.html")
    assert out.read_text(encoding="utf-8") == render_html(run)
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    target.write_text("old report", encoding="utf-8")

    def explode(tmp: Path) -> None:
        tmp.write_text("half a rep", encoding="utf-8")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, explode)
    assert target.read_text(encoding="utf-8") == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_unwritable_folder_is_a_report_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(ReportError, match="pass --out to a writable folder"):
        write_html(make_pass_run(), blocker / "report.html")
