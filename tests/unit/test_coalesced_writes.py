"""serving.CoalescedWrites (issue #14): a response's header block leaves with its body in
one write; held data is never lost or reordered (end of the loop iteration, close)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from pitpass.serving import CoalescedWrites


class RecordingTransport:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1234) if name == "peername" else None


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = asyncio.new_event_loop()
    yield running
    running.close()


def _coalesced(loop: asyncio.AbstractEventLoop) -> tuple[CoalescedWrites, RecordingTransport]:
    transport = RecordingTransport()
    return CoalescedWrites(transport, loop), transport  # type: ignore[arg-type]


def _next_iteration(loop: asyncio.AbstractEventLoop) -> None:
    loop.run_until_complete(asyncio.sleep(0))


def test_headers_and_body_leave_in_one_write(loop: asyncio.AbstractEventLoop) -> None:
    writes, transport = _coalesced(loop)
    writes.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    writes.write(b"{}")
    assert transport.sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
    _next_iteration(loop)  # the scheduled flush finds nothing held
    assert len(transport.sent) == 1


def test_a_lone_write_leaves_at_the_end_of_the_loop_iteration(
    loop: asyncio.AbstractEventLoop,
) -> None:
    writes, transport = _coalesced(loop)
    writes.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
    assert transport.sent == []
    _next_iteration(loop)
    assert transport.sent == [b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"]
    writes.write(b"5\r\nhello\r\n")
    writes.write(b"0\r\n\r\n")
    assert transport.sent[1:] == [b"5\r\nhello\r\n0\r\n\r\n"]  # in order, nothing lost


def test_close_sends_what_is_held_first(loop: asyncio.AbstractEventLoop) -> None:
    writes, transport = _coalesced(loop)
    writes.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
    writes.close()
    assert transport.sent == [b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n"]
    assert transport.closed
    _next_iteration(loop)  # the scheduled flush does not write to the closed transport
    assert len(transport.sent) == 1


def test_everything_else_is_the_transports(loop: asyncio.AbstractEventLoop) -> None:
    writes, transport = _coalesced(loop)
    assert writes.get_extra_info("peername") == ("127.0.0.1", 1234)
    assert writes.is_closing() is False
    transport.closed = True
    assert writes.is_closing() is True
