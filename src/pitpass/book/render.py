"""The developer book: Markdown pages with the live settings filled in (PRODUCT.md §5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from markdown_it import MarkdownIt

from pitpass.config import Settings
from pitpass.core import policy
from pitpass.core.client_names import MAX_NAME_LENGTH, MIN_NAME_LENGTH
from pitpass.core.redirect_uris import MAX_REDIRECT_URI_LENGTH, MAX_REDIRECT_URIS

PAGES = Path(__file__).parent / "pages"
# Markdown is written here, not by users: autoescape would mangle it; the
# values filled in are operator settings, shown inside code spans.
_pages = Environment(  # noqa: S701
    loader=FileSystemLoader(PAGES), undefined=StrictUndefined, keep_trailing_newline=True
)
_markdown = MarkdownIt("commonmark").enable("table")


# The reading order of the sidebar; a chapter not named here follows, by file name.
ORDER = (
    "index",
    "quick_start",
    "client_registration",
    "redirect_uris_overview",
    "authorize_endpoint",
    "token_endpoint",
    "masking",
    "tokens_overview",
    "openid_connect",
    "errors",
    "rate_limits",
    "workflows_overview",
    "sessions_overview",
    "kit_client",
    "kit_resource",
)


def chapters() -> list[str]:
    found = {path.stem for path in PAGES.glob("*.md")}
    return [name for name in ORDER if name in found] + sorted(found - set(ORDER))


def chapter_titles(settings: Settings) -> list[tuple[str, str]]:
    """(chapter, title) in reading order, for the sidebar: each file's first `# ` line."""
    titles = []
    for chapter in chapters():
        source = (PAGES / f"{chapter}.md").read_text(encoding="utf-8")
        line = next((row for row in source.splitlines() if row.startswith("# ")), chapter)
        title = _pages.from_string(line.removeprefix("# ").strip()).render(_values(settings))
        titles.append((chapter, "Contents" if chapter == "index" else title))
    return titles


def _boxed(html: str) -> str:
    """Wide tables scroll in their own box; code blocks, which scroll, take keyboard focus."""
    html = html.replace(
        "<table>", '<div class="table-scroll" tabindex="0" role="region" aria-label="Table"><table>'
    )
    html = html.replace("</table>", "</table></div>")
    return html.replace("<pre>", '<pre tabindex="0">')


def _code_list(values: list[str]) -> str:
    return ", ".join(f"`{v}`" for v in values) or "none"


def _values(settings: Settings) -> dict[str, Any]:
    return {
        "settings": settings,
        "service": settings.profile.service_name,
        "base": settings.public_base_url,
        "audiences": _code_list(settings.profile.audiences),
        "brand_words": _code_list(settings.profile.brand_words),
        "scopes": settings.profile.scopes,
        "min_name": MIN_NAME_LENGTH,
        "max_name": MAX_NAME_LENGTH,
        "max_uris": MAX_REDIRECT_URIS,
        "max_length": MAX_REDIRECT_URI_LENGTH,
        "scope_list": ", ".join(
            f"`{name}` ({words})" for name, words in settings.profile.scopes.items()
        ),
        # The policy's tables (core/policy.py), so the book never drifts from the server.
        "errors": policy.ERRORS,
        "grant_types": _code_list(list(policy.GRANT_TYPES)),
        "token_auth_methods": _code_list(list(policy.TOKEN_AUTH_METHODS)),
        "pkce_methods": _code_list(list(policy.PKCE_METHODS)),
        "default_pkce_method": policy.DEFAULT_PKCE_METHOD,
        "default_access_token_seconds": policy.DEFAULT_ACCESS_TOKEN_SECONDS,
        "default_refresh_token_seconds": policy.DEFAULT_REFRESH_TOKEN_SECONDS,
        "default_refresh_grace_seconds": policy.DEFAULT_REFRESH_GRACE_SECONDS,
    }


def render_chapter(chapter: str, settings: Settings) -> tuple[str, str] | None:
    """(title, HTML) of a chapter, or None when there is no such chapter."""
    if chapter not in chapters():
        return None
    try:
        source = _pages.get_template(f"{chapter}.md").render(_values(settings))
    except TemplateNotFound:
        return None
    title = next(
        (line[2:].strip() for line in source.splitlines() if line.startswith("# ")), chapter
    )
    return title, _boxed(_markdown.render(source))
