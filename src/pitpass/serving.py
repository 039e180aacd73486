"""The HTTP/1.1 connection of `pitpass serve`: uvicorn's httptools protocol with two
bounds it lacks (issue #11, defect 5; decisions.md "Header size and header deadline").

- Header size: the request line and headers may take PITPASS_MAX_HEADER_BYTES; past
  that the answer is 431 (RFC 6585 §5) and the connection is closed. httptools keeps
  a header or URL of any size in memory until it ends; this counts bytes as they
  arrive and stops feeding the parser at the limit. A pipelined request's headers that
  began in the previous request's read are measured as parsed when they end; until then
  such a header may hold the limit plus that one read.
- Header deadline: a request's headers must be complete within
  PITPASS_HEADER_TIMEOUT_SECONDS of the connection opening or of the previous
  response (slowloris). Data arriving slowly does not extend it. Past it, a
  connection that sent part of a request gets 408 (RFC 9110 §15.5.9), one that sent
  nothing is closed.

Bodies are bounded where they are read (oauth/requests.py, middleware.py); once the
headers are in, the application owns the connection's time.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from pitpass.config import load_settings


@functools.cache
def header_bounds() -> tuple[int, float]:
    """(max header bytes, header deadline in seconds): read once per worker process,
    from the same settings the application reads."""
    settings = load_settings()
    return settings.max_header_bytes, settings.header_timeout_seconds


def _refusal(status: int, reason: str) -> bytes:
    body = f"{status} {reason}\n".encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


HEADERS_TOO_LARGE = _refusal(431, "Request Header Fields Too Large")
HEADERS_TOO_SLOW = _refusal(408, "Request Timeout")


class CoalescedWrites:
    """The transport as a response sees it: the header block is held until the body
    follows, so a small answer leaves in one `send` (one TCP segment) instead of two.

    uvicorn writes the status line and headers on `http.response.start` and the body on
    `http.response.body`. Held data goes out with the next write, or at the end of this
    loop iteration if none comes (a streamed body, a slow first chunk), and always
    before the connection closes. Everything but writing is the transport's own.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        if self._held is None:
            self._held = data
            self._loop.call_soon(self.flush)
        else:
            data, self._held = self._held + data, None
            self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            data, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadersTooLarge(Exception):
    """Raised from a parser callback: httptools stops parsing and uvicorn answers the
    parser error through send_400_response, which says 431 instead."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """The token endpoint is the hot path: per request this adds a few attribute writes
    and comparisons, no timer (one per connection re-arms itself) and no per-header call;
    the hooks call the base class directly (cheaper than super() on every request)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_header_bytes, self.header_timeout = header_bounds()
        self.awaiting_headers = True
        # Loop time the wait for the next request's headers began; None while a request
        # is being answered (its time is the application's).
        self.waiting_since: float | None = None
        self.header_bytes = 0  # bytes received while this request's headers are unfinished
        # Pipelining: the next request's headers may begin inside a read that was counted
        # for the previous request (or not at all, being its body), so header_bytes misses
        # them; such headers are measured as parsed when they end. `finished_scope` is the
        # last complete request's scope: uvicorn makes a new one when the next begins.
        self.headers_began_mid_read = False
        self.finished_scope: object = None
        self.headers_too_large = False
        self.header_deadline: asyncio.TimerHandle | None = None

    # ----- the deadline: one timer per connection -----------------------------------------

    def _check_header_deadline(self) -> None:
        self.header_deadline = None
        if self.transport.is_closing():
            return
        left = self.header_timeout
        if self.waiting_since is not None:
            left -= self.loop.time() - self.waiting_since
            if left <= 0:
                self._refuse(HEADERS_TOO_SLOW if self.header_bytes else b"")
                return
        self.header_deadline = self.loop.call_later(left, self._check_header_deadline)

    def _refuse(self, response: bytes) -> None:
        if response:
            self.transport.write(response)
        self.transport.close()

    # ----- uvicorn's hooks --------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.coalesced_writes = CoalescedWrites(transport, self.loop)
        self.waiting_since = self.loop.time()
        self.header_deadline = self.loop.call_later(
            self.header_timeout, self._check_header_deadline
        )

    def connection_lost(self, exc: Exception | None) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.awaiting_headers:
            self.header_bytes += len(data)
        HttpToolsProtocol.data_received(self, data)
        if self.awaiting_headers:
            # Headers still unfinished after this read: the parser holds them all in memory.
            if self.header_bytes > self.max_header_bytes and not self.transport.is_closing():
                self._refuse(HEADERS_TOO_LARGE)
            # A request ended in this read and nothing of the next one came with it: the
            # next read starts its headers and counts them all.
            elif self.headers_began_mid_read and self.scope is self.finished_scope:
                self.headers_began_mid_read = False

    def send_400_response(self, msg: str) -> None:
        if self.headers_too_large:
            self._refuse(HEADERS_TOO_LARGE)
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        # Headers measured as parsed: those that ended within one large read (body and
        # all), only when the read was large enough for them to be too large, and those
        # that began after another request in the same read (pipelining), uncounted.
        if self.header_bytes > self.max_header_bytes or self.headers_began_mid_read:
            parsed = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
            if parsed > self.max_header_bytes:
                self.headers_too_large = True
                raise HeadersTooLarge
            self.headers_began_mid_read = False
        self.awaiting_headers = False
        self.waiting_since = None
        previous = self.cycle
        HttpToolsProtocol.on_headers_complete(self)
        if self.cycle is not previous:  # a request to answer (not an upgrade)
            # Duck-typed: it writes, and hands everything else to the real transport.
            self.cycle.transport = self.coalesced_writes  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        HttpToolsProtocol.on_message_complete(self)
        # The next request's headers may follow at once (pipelining). If this one was
        # answered before its body ended, the connection is idle from now.
        self.awaiting_headers = True
        self.header_bytes = 0
        self.headers_began_mid_read = True
        self.finished_scope = self.scope
        # self.cycle is the latest request: answered means none is running or queued.
        if self.cycle is not None and self.cycle.response_complete:
            self.waiting_since = self.loop.time()

    def on_response_complete(self) -> None:
        HttpToolsProtocol.on_response_complete(self)
        # Idle only once the latest request is received and answered: a pipelined one
        # that arrived whole while this was answered is running now, on the app's time.
        if self.awaiting_headers and self.cycle.response_complete:
            self.waiting_since = self.loop.time()
