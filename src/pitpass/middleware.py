"""Plain ASGI middleware (cheap on the hot path): request ids, security headers, access log."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pitpass.core.policy import ERRORS, error_uri
from pitpass.logs import request_id_var
from pitpass.metrics import observe_request

access_log = logging.getLogger("pitpass.access")

# An incoming id is echoed only when it is short and harmless in logs and headers.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# Pages never load anything from elsewhere and may never be framed
# (clickjacking on sign-in and consent: `frame-ancestors 'none'`).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


# The API docs page (Swagger UI, served from the fastapi-offline package) starts
# with an inline script; nothing else may.
DOCS_CSP = PAGE_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'"
)


# What RequestContextMiddleware adds to an answer that has not set its own.
HeaderList = tuple[tuple[bytes, bytes], ...]
EVERY_ANSWER: HeaderList = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)
_PAGE_ONLY = ((b"x-frame-options", b"DENY"), (b"cache-control", b"no-store"))
PAGE = ((b"content-security-policy", PAGE_CSP.encode()), *_PAGE_ONLY)
DOCS_PAGE = ((b"content-security-policy", DOCS_CSP.encode()), *_PAGE_ONLY)
HSTS: HeaderList = ((b"strict-transport-security", b"max-age=31536000"),)


# Pages' forms and the API's JSON are a few KiB; the protocol has its own 16 KiB
# (oauth/requests.py), checked on the fast path where this middleware is not.
MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(HTTPException):
    """413 (RFC 9110 §15.5.14), answered in the route's own shape by the app's handler."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit // 1024} KiB")


class BodyHasNul(HTTPException):
    """400: no field of a page or the API holds a NUL, and PostgreSQL cannot store one."""

    def __init__(self) -> None:
        super().__init__(400, "the request body contains a NUL character")


# A NUL as a form (`%00`), JSON (`\u0000`) or multipart body carries it.
_NUL_SPELLINGS = (b"%00", b"\\u0000", b"\x00")
_NUL_OVERLAP = max(len(spelling) for spelling in _NUL_SPELLINGS) - 1


class BodyLimitMiddleware:
    """Bounds what a request body may hold in memory: whoever reads it (FastAPI's Form
    and JSON parameters, `request.form()`) gets BodyTooLarge as soon as the declared
    Content-Length or the bytes received pass the limit, before the rest is read. A
    chunked body or a Content-Length lie makes no difference: bytes are counted.
    The one rule for NUL in the bodies of pages and the API lives here too (BodyHasNul),
    as the one for URLs lives in RequestContextMiddleware."""

    def __init__(
        self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES, protocol_prefix: str = "/oauth2/"
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # The protocol says invalid_request for a NUL itself (oauth/requests.single_values).
        self.protocol_prefix = protocol_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        received = 0
        refuse_nul = not str(scope.get("path", "")).startswith(self.protocol_prefix)
        tail = b""  # the end of the previous chunk: a NUL's spelling may straddle two

        async def bounded_receive() -> Message:
            nonlocal received, tail
            if declared > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            message = await receive()
            body = message.get("body", b"")
            received += len(body)
            if received > self.max_bytes:
                raise BodyTooLarge(self.max_bytes)
            if refuse_nul:
                window = tail + body
                if any(spelling in window for spelling in _NUL_SPELLINGS):
                    raise BodyHasNul
                tail = window[-_NUL_OVERLAP:]
            return message

        await self.app(scope, bounded_receive, send)


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0  # the server has vetted its syntax
    return 0


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, *, hsts: bool = False, issuer: str = "", issuer_path: str = "/oauth2"
    ) -> None:
        self.app = app
        self.issuer = issuer
        self.issuer_path = issuer_path.rstrip("/") + "/"
        # The headers an answer gets unless it set its own, by kind of answer.
        hsts_header = HSTS if hsts else ()
        self.defaults_for_data = EVERY_ANSWER + hsts_header
        self.defaults_for_page = EVERY_ANSWER + PAGE + hsts_header
        self.defaults_for_docs = EVERY_ANSWER + DOCS_PAGE + hsts_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if SANE_REQUEST_ID.fullmatch(incoming) else str(uuid.uuid4())
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        status_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, status_started
            if message["type"] == "http.response.start":
                status = message["status"]
                status_started = True
                message["headers"] = self._headers(message.get("headers", ()), request_id, scope)
            await send(message)

        try:
            if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
                await self._refuse_nul(scope, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        except Exception:
            # Never a stack trace to the client: log it, answer 500 with the id to quote.
            access_log.exception("unhandled error")
            if status_started:
                raise
            path = str(scope.get("path", ""))
            if path.startswith((self.issuer_path, "/api/")):
                await _send_json_server_error(send_with_headers, request_id, self.issuer)
            else:
                await _send_server_error(send_with_headers, request_id)
        finally:
            elapsed = time.perf_counter() - started
            observe_request(scope, status, elapsed)
            # The path only: query strings may carry codes and tokens.
            access_log.info(
                "request",
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    def _headers(
        self, raw: Iterable[tuple[bytes, bytes]], request_id: str, scope: Scope
    ) -> list[tuple[bytes, bytes]]:
        """The response's headers with ours: `x-request-id` replaced, the security
        headers added where the response has not set its own. One pass over the list
        (names are lower-case in ASGI), as this runs for every answer of the hot path."""
        headers: list[tuple[bytes, bytes]] = []
        present: set[bytes] = set()
        html = False
        for name, value in raw:
            if name == b"x-request-id":
                continue
            if name == b"content-type":
                html = value.startswith(b"text/html")
            present.add(name)
            headers.append((name, value))
        headers.append((b"x-request-id", request_id.encode("latin-1")))
        defaults = self.defaults_for_data
        if html:
            is_docs = scope.get("path") == "/docs"
            defaults = self.defaults_for_docs if is_docs else self.defaults_for_page
        headers.extend(header for header in defaults if header[0] not in present)
        return headers

    async def _refuse_nul(self, scope: Scope, send: Send) -> None:
        """A NUL (`%00`) in the URL is the client's mistake on every route: no id, name or
        parameter holds one, and PostgreSQL cannot even compare one. One rule for every
        path and query string, before any route reads them (issue #11)."""
        description = "the URL contains a NUL character (%00)"
        if str(scope.get("path", "")).startswith((self.issuer_path, "/api/")):
            body = json.dumps(_error_body(self.issuer, "invalid_request", description)).encode()
            await _send_response(send, 400, b"application/json", body)
        else:
            page = f"<!doctype html><title>Bad request</title><h1>Bad request</h1><p>{description}"
            await _send_response(send, 400, b"text/html; charset=utf-8", page.encode())


async def _send_server_error(send: Send, request_id: str) -> None:
    body = (
        "<!doctype html><title>Something went wrong</title><h1>Something went wrong</h1>"
        f"<p>The error was logged. Quote this request id when reporting it: {request_id}</p>"
    ).encode()
    await _send_response(send, 500, b"text/html; charset=utf-8", body)


async def _send_json_server_error(send: Send, request_id: str, issuer: str) -> None:
    """PRODUCT.md §4's error shape for `server_error`, never a stack trace."""
    description = f"an unexpected error; quote request id {request_id}"
    body = json.dumps(_error_body(issuer, "server_error", description)).encode()
    await _send_response(send, 500, b"application/json", body)


def _error_body(issuer: str, error: str, description: str) -> dict[str, object]:
    """PRODUCT.md §4's error shape, from the policy's table."""
    rule = ERRORS[error]
    return {
        "status": rule.status,
        "status_reason": rule.reason,
        "error": error,
        "error_description": description,
        "error_uri": error_uri(issuer, error),
    }


async def _send_response(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
