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


def chapters() -> list[str]:
    return sorted(path.stem for path in PAGES.glob("*.md"))


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
    return title, _markdown.render(source)
