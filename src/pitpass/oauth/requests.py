"""Reading a protocol request: one rule each for repeated parameters, the body (size and
content type) and the caller (its address and user agent: http/caller.py)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.requests import Request

from pitpass.core.policy import OAuthError
from pitpass.http.caller import ip_of, user_agent_of

FORM = "application/x-www-form-urlencoded"
MAX_BODY = 16 * 1024  # a protocol form is a few hundred bytes


@dataclass
class Caller:
    ip: str | None
    user_agent: str | None
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers


def caller_of(request: Request) -> Caller:
    return Caller(ip=ip_of(request), user_agent=user_agent_of(request))


def refuse_nul(name: str, value: str) -> None:
    """No protocol value holds a NUL (`%00`): no client_id, username or token can, and
    PostgreSQL cannot store or compare one. It is the client's mistake, said as such."""
    if "\x00" in value or "\x00" in name:
        raise OAuthError("invalid_request", f"parameter {name!r} contains a NUL character")


def single_values(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The parameters, each once: a repeated one is invalid_request (RFC 6749 §3.1, §3.2).
    Every protocol parameter passes here, so here is where a NUL is refused."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise OAuthError("invalid_request", f"parameter {name} is repeated")
        if "\x00" in value or "\x00" in name:  # refuse_nul's test, inline: the hot path
            refuse_nul(name, value)
        params[name] = value
    return params


NOT_UTF8 = "parameters must be UTF-8, percent-encoded"


def parse_form(body: bytes) -> dict[str, str]:
    # Percent-escapes that are not UTF-8 (`state=%FF`) are refused, not replaced by U+FFFD:
    # a value must come back to the client as it sent it, or not at all.
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", NOT_UTF8) from None
    return single_values(pairs)


def query_values(query_string: bytes) -> dict[str, str]:
    """A protocol request's query parameters (`/authorize`), by the rules of a form body;
    a query is ASCII (RFC 3986 §3.4), everything else percent-encoded."""
    try:
        text = query_string.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        raise OAuthError("invalid_request", NOT_UTF8) from None
    return single_values(pairs)


async def read_form(request: Request) -> dict[str, str]:
    """The form body's parameters. Reading stops past MAX_BODY bytes; an empty body has
    no parameters, whatever its content type; any other body must be a form."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise OAuthError("invalid_request", "the request body is too large")
        chunks.append(chunk)
    if not size:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM:
        raise OAuthError("invalid_request", f"send the parameters as {FORM}")
    return parse_form(b"".join(chunks))
