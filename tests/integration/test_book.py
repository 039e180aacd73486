"""The developer book shows the live settings (PRODUCT.md §5)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Site


def test_registration_chapter_reflects_the_live_settings(
    site_factory: Any, sqlite_backend: Any
) -> None:
    site: Site = site_factory(
        sqlite_backend,
        request_due_days=5,
        secret_grace_days=3,
        profile={
            "service_name": "Grid Auth",
            "audiences": ["data-server", "league-api"],
            "brand_words": ["gridauth"],
        },
    )
    page = site.browser().get("/oauth2/book/client_registration.html")
    assert page.status_code == 200
    assert "within <strong>5 days</strong>" in page.text
    assert "<strong>3 days</strong>" in page.text
    assert "<code>league-api</code>" in page.text
    assert "<code>gridauth</code>" in page.text
    assert "Grid Auth" in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_book_index_links_every_chapter_and_unknown_pages_are_404(sqlite_site: Site) -> None:
    browser = sqlite_site.browser()
    index = browser.get("/oauth2/book/")
    assert 'href="redirect_uris_overview.html"' in index.text
    assert browser.get("/oauth2/book").status_code == 308
    assert browser.get("/oauth2/book/redirect_uris_overview.html").status_code == 200
    missing = browser.get("/oauth2/book/nope.html")
    assert missing.status_code == 404
    assert "The book has no page" in missing.text
    assert browser.get("/oauth2/book/..%2Fconfig.html").status_code == 404


def test_every_error_uri_lands_on_its_entry(sqlite_site: Site) -> None:
    from pitpass.core.policy import ERRORS, error_uri

    page = sqlite_site.browser().get("/oauth2/book/errors.html")
    assert page.status_code == 200
    for error in ERRORS:
        anchor = error_uri(sqlite_site.context.settings.issuer, error).split("#")[1]
        assert f'<h2 id="{anchor}">{error}</h2>' in page.text


def test_protocol_chapters_show_the_masking_vectors_and_live_limits(
    site_factory: Any, sqlite_backend: Any
) -> None:
    site: Site = site_factory(sqlite_backend, password_limited_rate="7/hour")
    browser = site.browser()
    masking = browser.get("/oauth2/book/masking.html").text
    assert "CDZpTp0GQYZXHJ2tSnH9GtXnutZvyGxESQXfBnqTCVo=" in masking
    assert "xGKecAR27ALXNuMLsGaG0v5Q9pSs2tZTZRKNgmHMg+Q=" in masking
    assert "7/hour" in browser.get("/oauth2/book/rate_limits.html").text
    for chapter in (
        "authorize_endpoint",
        "token_endpoint",
        "tokens_overview",
        "workflows_overview",
        "sessions_overview",
    ):
        assert browser.get(f"/oauth2/book/{chapter}.html").status_code == 200


def test_sidebar_lists_every_chapter_and_marks_the_current_one(sqlite_site: Site) -> None:
    from pitpass.book.render import chapters

    page = sqlite_site.browser().get("/oauth2/book/quick_start.html")
    assert page.status_code == 200
    sidebar = page.text.split('class="book-nav"')[1].split("</nav>")[0]
    for chapter in chapters():
        target = "/oauth2/book/" if chapter == "index" else f"/oauth2/book/{chapter}.html"
        assert f'href="{target}"' in sidebar
    assert sidebar.count('aria-current="page"') == 1
    assert 'href="/oauth2/book/quick_start.html" aria-current="page"' in sidebar
    assert chapters()[:2] == ["index", "quick_start"]  # reading order, not alphabetical


def test_code_blocks_are_boxed_and_tables_scroll_in_their_own_box(sqlite_site: Site) -> None:
    masking = sqlite_site.browser().get("/oauth2/book/masking.html").text
    assert '<pre tabindex="0"><code class="language-python">' in masking
    assert '<div class="table-scroll" tabindex="0" role="region"' in masking
    assert masking.count("<table>") == masking.count('<div class="table-scroll"')


def test_quick_start_gives_the_real_commands_for_this_server(
    site_factory: Any, sqlite_backend: Any
) -> None:
    site: Site = site_factory(sqlite_backend)
    page = site.browser().get("/oauth2/book/quick_start.html").text
    issuer = site.context.settings.issuer
    assert "make run" in page
    assert "pitpass requests approve 1 --as staff@pitpass.test" in page
    assert f"curl -s {issuer}/token" in page
    assert "grant_type=authorization_code" in page and "grant_type=password_limited" in page
    # The mask the shell function computes is the book's: checked against its test vector.
    assert "openssl dgst -sha256 -binary | base64" in page
