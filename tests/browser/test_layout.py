"""No page scrolls sideways, on a phone (390 px) or a laptop (1280 px) (issue #12, item 9).

Every page of tests/browser/pages.py, in every role; long emails and redirect URIs in the
world must wrap and wide tables scroll inside their own box.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.pages import MEMBER_ROLE, PAGES, SIGNED_OUT, Visit, World

pytestmark = pytest.mark.browser

WIDTHS = (390, 1280)
# The widest element sticking out, to say what to fix.
_WIDEST = """() => {
  const limit = document.documentElement.clientWidth;
  let worst = null;
  for (const el of document.querySelectorAll("body *")) {
    const right = el.getBoundingClientRect().right;
    if (right > limit + 1 && (!worst || right > worst.right)) {
      worst = {right, what: el.tagName.toLowerCase() + (el.className ? "." + el.className : "")
        + " " + (el.textContent || "").trim().slice(0, 60)};
    }
  }
  return worst;
}"""


@pytest.mark.parametrize("visit", PAGES, ids=lambda visit: visit.id)
def test_page_fits_the_viewport(world: World, visit: Visit) -> None:
    # One load, then each width: the browser lays the page out again on a resize, media
    # queries included, so a second load (or a second POST) would test nothing more.
    page = world.open(visit, WIDTHS[0])
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, (
                f"{visit.id} is {scroll_width} px wide at {width} px; "
                f"widest: {page.evaluate(_WIDEST)}"
            )
    finally:
        page.close()


def test_docs_from_the_header_to_a_chapter_on_a_phone(world: World) -> None:
    page = world.contexts[SIGNED_OUT].new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto("/signin")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Docs").click()
        chapters = page.get_by_role("navigation", name="Developer book")
        expect(chapters.get_by_role("link", name="Contents")).to_have_attribute(
            "aria-current", "page"
        )
        chapters.get_by_role("link", name=re.compile("^Quick start")).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Quick start")
        current = chapters.locator("[aria-current=page]")
        expect(current).to_have_count(1)
        expect(current).to_contain_text("Quick start")
        # On a phone the chapter list stacks above the chapter, not beside it.
        nav_box, article_box = chapters.bounding_box(), page.locator("article").bounding_box()
        assert nav_box and article_box and nav_box["y"] + nav_box["height"] <= article_box["y"]
        # Code blocks are boxed and scroll inside their box.
        style = page.locator("article pre").first.evaluate(
            "pre => { const s = getComputedStyle(pre);"
            " return [s.overflowX, s.borderTopWidth, s.backgroundColor, s.whiteSpace]; }"
        )
        assert style[0] == "auto" and style[1] != "0px" and style[3] == "pre"
        assert style[2] not in ("rgba(0, 0, 0, 0)", "transparent")
    finally:
        page.close()


def test_connected_apps_do_not_call_the_apps_server_the_members_device(world: World) -> None:
    page = world.contexts[MEMBER_ROLE].new_page()
    try:
        page.goto("/account/apps")
        app = page.locator("section.connected-app", has_text="Lap Timer")
        # The member allowed it in Chromium; its backend then refreshed the token with curl.
        expect(app.get_by_role("cell", name=re.compile("^Not a browser"))).to_be_visible()
        expect(app).not_to_contain_text("unknown")
    finally:
        page.close()


def test_favicon_answers_for_browsers_that_ask_for_it(world: World) -> None:
    page = world.contexts[SIGNED_OUT].new_page()
    try:
        response = page.goto("/favicon.ico")
        assert response is not None and response.status == 200
        assert response.headers["content-type"].startswith("image/svg+xml")
    finally:
        page.close()
