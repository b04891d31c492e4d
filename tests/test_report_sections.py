"""The report's sections are listed once (audit.report.sections.SECTIONS): the page, its navigation and the
context all follow that list, and image-only facts come from the images section."""

from __future__ import annotations

import re

import pytest

import audit.report.context
from audit.report import SECTIONS, build_context, render_html, templates_root
from audit.report.sections import images, summary
from tests.report_fixtures import make_classifier_run, make_image_run, make_pass_run, make_regression_run

MAKERS = [make_regression_run, make_classifier_run, make_image_run, make_pass_run]


def _main_ids(page: str) -> list[str]:
    main = page[page.index("<main>") : page.index("</main>")]
    return re.findall(r'<section class="section" id="([a-z]+)"', main)


def _nav_anchors(page: str) -> list[str]:
    nav = page[page.index('<nav class="toc"') : page.index("</nav>")]
    return re.findall(r'href="#([a-z]+)"', nav)


def test_every_section_has_its_partial_and_a_unique_anchor() -> None:
    root = templates_root()
    assert len({s.anchor for s in SECTIONS}) == len(SECTIONS)
    for s in SECTIONS:
        assert root.joinpath(*s.template.split("/")).is_file(), s.template


@pytest.mark.parametrize("make", MAKERS)
def test_page_and_navigation_follow_the_one_list(make) -> None:
    run = make()
    present = [s.anchor for s in SECTIONS if s.build(run) is not None]
    page = render_html(run)
    assert _main_ids(page) == present
    assert _nav_anchors(page) == ["summary", *present]
    ctx = build_context(run)
    assert ctx["sections"] == [(s.anchor, s.label) for s in SECTIONS if s.anchor in present]
    assert [p["anchor"] for p in ctx["page"]] == [s.anchor for s in SECTIONS]


def test_dropping_a_section_from_the_list_drops_it_everywhere(monkeypatch) -> None:
    run = make_regression_run()
    kept = tuple(s for s in SECTIONS if s.anchor != "drift")
    monkeypatch.setattr(audit.report.context, "SECTIONS", kept)
    page = render_html(run)
    assert "drift" not in _main_ids(page) and "drift" not in _nav_anchors(page)
    assert 'id="drift"' not in page


def test_image_facts_come_from_the_images_section() -> None:
    tabular, image = make_regression_run(), make_image_run()
    assert images.scope(tabular) is None and images.build(tabular) is None
    scope = images.scope(image)
    assert [label for label, _ in scope.facts] == ["Images audited", "Classes"]
    assert scope.picture.startswith("data:image/png;base64,")
    labels = [f["label"] for f in summary.build(image)["facts"]]
    assert "Images audited" in labels and "Rows audited" not in labels
    labels = [f["label"] for f in summary.build(tabular)["facts"]]
    assert "Rows audited" in labels and "Images audited" not in labels
