"""The developer book: Markdown pages with the live settings filled in (PRODUCT.md §5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from markdown_it import MarkdownIt

from pitpass.config import Settings
from pitpass.core.client_names import MAX_NAME_LENGTH, MIN_NAME_LENGTH
from pitpass.core.redirect_uris import MAX_REDIRECT_URI_LENGTH, MAX_REDIRECT_URIS
from pitpass.oauth.errors import STATUS

# One line per error of PRODUCT.md §4: what it means and what to do.
ERROR_EXPLANATIONS = {
    "access_denied": "The member declined, or is not allowed. Ask again later; do not loop.",
    "insufficient_scope": "The access token lacks the scope this endpoint needs: ask for it at "
    "`/authorize`.",
    "invalid_client": "The client is unknown, or its authentication failed: send the client "
    "secret masked with the client_id, once (body or HTTP Basic).",
    "invalid_grant": "The code or refresh token is unknown, expired, already used or issued "
    "to another client; or the PKCE verifier or redirect_uri does not match. Start a new "
    "authorization.",
    "invalid_request": "A parameter is missing, repeated or malformed; the description says which.",
    "invalid_scope": "A scope is unknown, or more than was granted.",
    "invalid_token": "The access token is malformed, expired, or its session was signed out.",
    "unauthorized_client": "This client may not use this flow, is disabled, or is over its "
    "rate limit (then `Retry-After` says when to come back).",
    "unsupported_grant_type": "Use authorization_code, refresh_token or password_limited.",
    "unsupported_response_type": "Use response_type=code.",
    "server_error": "Something failed on our side; quote the `x-request-id`.",
    "temporarily_unavailable": "Try again shortly.",
}

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
        "errors": list(STATUS.items()),
        "explanations": ERROR_EXPLANATIONS,
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
