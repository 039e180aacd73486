"""The redirect receiver of the loopback flow for native apps (RFC 8252 §7.3).

It listens on 127.0.0.1 only, on a port the system picks, and waits for the one
request that carries the `state` the app sent. Anything else (a scan, a favicon,
a forged redirect with another state) is answered and ignored: it cannot end or
hijack the sign-in (RFC 8252 §8.3). Each connection has its own thread, so a slow
one cannot hold up the real redirect, and the wait has one overall deadline.
"""

from __future__ import annotations

import hmac
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pitpass_kit.errors import CallbackError, KitError

# RFC 8252 §8.3: the IPv4 loopback literal, not `localhost`, which a resolver may redirect.
LOOPBACK_HOST = "127.0.0.1"

_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
    "<body style='font-family:sans-serif;margin:3rem'><h1>{title}</h1><p>{text}</p>"
)


class BrowserTimeout(CallbackError):
    """The browser did not come back in time."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # Each read of a connection that sends nothing, or a byte at a time, gives up soon.
    timeout = 5.0

    def do_GET(self) -> None:
        target = urlsplit(self.path)
        params = dict(parse_qsl(target.query))
        if target.path != self.server.path:
            self._answer(HTTPStatus.NOT_FOUND, "Not found", "Nothing is waiting here.")
            return
        if not hmac.compare_digest(params.get("state", "").encode(), self.server.state.encode()):
            self._answer(
                HTTPStatus.BAD_REQUEST,
                "Not this sign-in",
                "This answer was not asked for by the app: it was ignored.",
            )
            return
        self.server.deliver(f"http://{LOOPBACK_HOST}:{self.server.port}{self.path}")
        # The app still checks the answer and exchanges the code: promise nothing more.
        self._answer(HTTPStatus.OK, "Back to the app", "You can close this tab.")

    def _answer(self, status: HTTPStatus, title: str, text: str) -> None:
        body = _PAGE.format(title=title, text=text).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the query carries a one-time code."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, path: str) -> None:
        super().__init__((LOOPBACK_HOST, 0), _Handler)
        self.path = path
        self.port = int(self.server_address[1])
        self.state = ""
        self.callback: str | None = None
        self.arrived = threading.Event()

    def deliver(self, callback: str) -> None:
        if not self.arrived.is_set():
            self.callback = callback
            self.arrived.set()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A closed tab or a port scan is not the app user's problem: no traceback."""


class LoopbackReceiver:
    """`with LoopbackReceiver("/callback") as r:` … `r.wait_for(state, timeout)`."""

    def __init__(self, path: str = "/callback") -> None:
        if not path.startswith("/"):
            raise KitError(f"the callback path must start with '/': {path!r}")
        self._server = _Server(path)
        self._serving: threading.Thread | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://{LOOPBACK_HOST}:{self._server.port}{self._server.path}"

    def wait_for(self, state: str, timeout: float) -> str:
        """The full callback URL once the browser brings back `state`."""
        self._server.state = state
        self._serving = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._serving.start()
        if not self._server.arrived.wait(timeout):
            raise BrowserTimeout(f"the browser did not come back within {timeout:.0f} s")
        assert self._server.callback is not None
        return self._server.callback

    def close(self) -> None:
        if self._serving is not None:
            self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackReceiver:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
