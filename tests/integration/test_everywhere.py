"""What every page shares (issue #12, item 10): the Docs link, the favicon, people's
words instead of slugs, and no mention of the team's internal documents."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from pitpass.book.render import PAGES as BOOK_PAGES
from pitpass.http.labels import LABELS, label
from tests.conftest import Site
from tests.support import Provisioner

TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "pitpass" / "web" / "templates"
INTERNAL = re.compile(r"PRODUCT\.md|ARCHITECTURE\.md|docs/decisions", re.IGNORECASE)


def test_docs_link_is_in_the_navigation_signed_in_or_not(sqlite_site: Site) -> None:
    signed_out = sqlite_site.browser().get("/signin").text
    assert '<a href="/oauth2/book/">Docs</a>' in signed_out
    sqlite_site.add_member("mina@example.com")
    member = sqlite_site.browser()
    sqlite_site.sign_in(member, "mina@example.com")
    assert '<a href="/oauth2/book/">Docs</a>' in member.get("/account").text


def test_favicon_is_linked_and_answers(sqlite_site: Site) -> None:
    browser = sqlite_site.browser()
    assert '<link rel="icon" href="/static/favicon.svg"' in browser.get("/signin").text
    icon = browser.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
    legacy = browser.get("/favicon.ico", follow_redirects=False)
    assert legacy.status_code == 308 and legacy.headers["location"] == "/static/favicon.svg"


def test_no_page_or_chapter_names_an_internal_document(sqlite_site: Site) -> None:
    sources = [*BOOK_PAGES.glob("*.md"), *TEMPLATES.glob("*.html")]
    named = [
        f"{path.name}: {line.strip()}"
        for path in sources
        for line in path.read_text().splitlines()
        # Template comments ({# … #}) are for us and never reach a page.
        if INTERNAL.search(re.sub(r"\{#.*?#\}", "", line))
    ]
    assert named == []
    browser = sqlite_site.browser()
    assert not INTERNAL.search(browser.get("/openapi.json").text)
    assert not INTERNAL.search(browser.get("/docs").text)


def test_labels_cover_every_stored_slug_shown_on_pages() -> None:
    from pitpass.core import policy
    from pitpass.services import workflow

    for slug in (*policy.CLIENT_TYPES, *policy.CLIENT_FLOWS, *workflow.STATUSES):
        assert slug in LABELS, slug
        assert "_" not in label(slug) and label(slug)[0].isupper()
    assert label("something-new") == "something-new"  # unknown values show, unpolished


def test_pages_show_labels_not_slugs(sqlite_site: Site) -> None:
    sqlite_site.add_member("staff@example.com", staff=True)
    client_id, _ = Provisioner(sqlite_site.context).client(
        "staff@example.com", "Slug Check", "server-side", redirect_uris=("https://a.example/cb",)
    )
    staff = sqlite_site.browser()
    sqlite_site.sign_in(staff, "staff@example.com")
    page = staff.get(f"/console/clients/{client_id}").text
    assert "<dd>Server-side app</dd>" in page
    assert "Authorization code with PKCE" in page
    assert "<dd>server-side</dd>" not in page


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_templates_use_the_label_filter_for_statuses() -> None:
    # A status shown with replace("_", " ") is the slug in disguise: use `| label`.
    found = subprocess.run(
        ["git", "grep", "-n", 'status | replace("_"', "--", str(TEMPLATES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert found.stdout == ""
