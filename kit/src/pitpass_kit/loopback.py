"""The redirect receiver of the loopback flow for native apps (RFC 8252 §7.3).

It listens on 127.0.0.1 only, on a port the system picks, and waits for the one
request that carries the `state` the app sent. Anything else (a scan, a favicon,
a forged redirect with another state) is answered and ignored: it cannot end or
hijack the sign-in (RFC 8252 §8.3).
"""

from __future__ import annotations

import hmac
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pitpass_kit.errors import KitError

# RFC 8252 §8.3: the IPv4 loopback literal, not `localhost`, which a resolver may redirect.
LOOPBACK_HOST = "127.0.0.1"

_DONE_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
    "<body style='font-family:sans-serif;margin:3rem'><h1>{title}</h1><p>{text}</p>"
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # A connection that sends nothing must not hold the single-threaded receiver.
    timeout = 5.0

    def do_GET(self) -> None:
        target = urlsplit(self.path)
        params = dict(parse_qsl(target.query))
        expected = self.server.expected_state
        if target.path != self.server.path or expected is None:
            self._answer(HTTPStatus.NOT_FOUND, "Not found", "Nothing is waiting here.")
            return
        if not hmac.compare_digest(params.get("state", "").encode(), expected.encode()):
            self._answer(
                HTTPStatus.BAD_REQUEST,
                "Not this sign-in",
                "This answer was not asked for by the app: it was ignored.",
            )
            return
        self.server.callback = f"http://{LOOPBACK_HOST}:{self.server.port}{self.path}"
        if "error" in params:
            self._answer(HTTPStatus.OK, "Sign-in not completed", "Return to the app.")
        else:
            self._answer(HTTPStatus.OK, "Signed in", "Close this tab and return to the app.")

    def _answer(self, status: HTTPStatus, title: str, text: str) -> None:
        body = _DONE_PAGE.format(title=title, text=text).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the query carries a one-time code."""


class _Server(HTTPServer):
    def __init__(self, path: str) -> None:
        super().__init__((LOOPBACK_HOST, 0), _Handler)
        self.path = path
        self.port = int(self.server_address[1])
        self.expected_state: str | None = None
        self.callback: str | None = None


class LoopbackReceiver:
    """`with LoopbackReceiver("/callback") as r:` … `r.wait_for(state, timeout)`."""

    def __init__(self, path: str = "/callback") -> None:
        if not path.startswith("/"):
            raise KitError(f"the callback path must start with '/': {path!r}")
        self._server = _Server(path)

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self._server.port}{self._server.path}"

    def wait_for(self, state: str, timeout: float) -> str:
        """The full callback URL once the browser brings back `state`."""
        server = self._server
        server.expected_state = state
        deadline = time.monotonic() + timeout
        while server.callback is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KitError(f"the browser did not come back within {timeout:.0f} s")
            server.timeout = remaining
            server.handle_request()
        return server.callback

    def close(self) -> None:
        self._server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
