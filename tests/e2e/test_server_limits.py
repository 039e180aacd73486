"""`pitpass serve` under hostile connections (issue #11, defect 5), with a real server
process and raw sockets: a header past PITPASS_MAX_HEADER_BYTES is 431 or a closed
connection; headers that never finish are closed at PITPASS_HEADER_TIMEOUT_SECONDS,
however slowly they drip; huge bodies, chunked or with a Content-Length lie, leave the
server's peak memory where it was."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LiveServer, live_server

HEADER_TIMEOUT = 1.0  # seconds: short, so the tests are quick
# Far more than the deadline, so a loaded machine never fails a test that should pass;
# a server without a deadline never closes, and the test fails on this timeout.
PATIENCE = 30.0
TWO_HUNDRED_MB = 200 * 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = {"PITPASS_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)}
    with live_server(tmp_path_factory.mktemp("limits"), env) as running:
        yield running


def _connect(server: LiveServer) -> socket.socket:
    host, port = server.base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=PATIENCE)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server sends until it closes (or PATIENCE passes: socket.timeout)."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def _status_of(answer: bytes) -> int | None:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None


def _healthy(server: LiveServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _status_of(_answer(sock)) == 200


class TestHeaders:
    def test_a_huge_header_is_431_or_closed(self, server: LiveServer) -> None:
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            try:
                for _ in range(64):  # 64 MiB, never ending: the server must stop it
                    sock.sendall(b"a" * 1024 * 1024)
            except (BrokenPipeError, ConnectionResetError):
                pass
            assert _status_of(_answer(sock)) in (431, None)
        _healthy(server)

    def test_many_headers_past_the_limit_are_431(self, server: LiveServer) -> None:
        headers = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 100) for n in range(200))  # ~21 KiB
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
            assert _status_of(_answer(sock)) == 431

    def test_headers_within_the_limit_are_served(self, server: LiveServer) -> None:
        headers = b"".join(b"X-H%d: %s\r\n" % (n, b"v" * 100) for n in range(80))  # ~9 KiB
        with _connect(server) as sock:
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + b"\r\n"
            )
            assert _status_of(_answer(sock)) == 200

    def test_headers_that_never_finish_are_closed(self, server: LiveServer) -> None:
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            assert _status_of(_answer(sock)) == 408  # without PATIENCE's socket.timeout

    def test_a_silent_connection_is_closed(self, server: LiveServer) -> None:
        with _connect(server) as sock:
            assert _answer(sock) == b""

    def test_headers_dripping_slowly_are_closed(self, server: LiveServer) -> None:
        """Each byte arrives well within the deadline; the headers as a whole never do."""
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Drip: ")
            sock.settimeout(HEADER_TIMEOUT / 4)
            closed = False
            for _ in range(int(PATIENCE / (HEADER_TIMEOUT / 4))):
                try:
                    sock.sendall(b"a")  # a header value that never ends
                    if sock.recv(65536) == b"":
                        closed = True
                        break
                    closed = True  # the 408 arrived
                    break
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
            assert closed

    def test_a_body_slower_than_the_header_deadline_is_still_answered(
        self, server: LiveServer
    ) -> None:
        """The deadline is for headers: once they are in, the request is the app's."""
        body = b"grant_type=nothing"
        with _connect(server) as sock:
            sock.sendall(
                b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            for byte in range(len(body)):  # spread over about 2.5 header deadlines
                time.sleep(HEADER_TIMEOUT * 2.5 / len(body))
                sock.sendall(body[byte : byte + 1])
            assert _status_of(_answer(sock)) == 400  # unsupported_grant_type, not closed

    def test_a_kept_alive_connection_is_served_then_closed_when_idle(
        self, server: LiveServer
    ) -> None:
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = _answer(sock)  # the response, then the close once idle
            assert _status_of(answer) == 200
            assert answer.count(b"HTTP/1.1 ") == 1 and answer.endswith(b'{"status":"ok"}')


class TestPipelining:
    """Requests sent back to back in one write (HTTP/1.1 pipelining, RFC 9112 §9.3)."""

    def test_a_huge_header_after_another_request_in_the_same_read_is_431(
        self, server: LiveServer
    ) -> None:
        huge = b"X-Big: %s\r\n" % (b"a" * 40 * 1024)  # one loopback segment: one read
        with _connect(server) as sock:
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + huge + b"\r\n"
            )
            answer = _answer(sock)
        assert b"HTTP/1.1 431 " in answer and answer.count(b"HTTP/1.1 200 ") <= 1, answer[:300]

    def test_a_huge_header_begun_after_another_request_is_431_when_it_ends(
        self, server: LiveServer
    ) -> None:
        """The huge header starts in the first request's read and ends in a later one."""
        with _connect(server) as sock:
            sock.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40 * 1024
            )
            time.sleep(HEADER_TIMEOUT / 4)  # most often a read of its own; either way, 431
            sock.sendall(b"\r\n\r\n")
            answer = _answer(sock)
        assert b"HTTP/1.1 431 " in answer and answer.count(b"HTTP/1.1 200 ") <= 1, answer[:300]

    def test_pipelined_requests_are_all_answered_however_long_they_take(
        self, server: LiveServer
    ) -> None:
        """The header deadline runs only while no request is queued or being answered.
        Here the answers outlast it: the client reads nothing for three deadlines, so
        they stall on full socket buffers while the later requests wait their turn."""
        count = 1200  # ~4 MB of stylesheet; the buffers hold about 3 MB of it
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect
            host, port = server.base_url.removeprefix("http://").split(":")
            sock.settimeout(PATIENCE)
            sock.connect((host, int(port)))
            sock.sendall(b"GET /static/pitpass.css HTTP/1.1\r\nHost: x\r\n\r\n" * count)
            time.sleep(HEADER_TIMEOUT * 3)
            answer = _answer(sock)  # all the answers, then the close once idle
        assert answer.count(b"HTTP/1.1 200 ") == count


class TestAnswers:
    """The coalesced writes (serving.CoalescedWrites) lose and reorder nothing."""

    def test_pipelined_requests_are_answered_whole_and_in_order(self, server: LiveServer) -> None:
        form = b"grant_type=nothing"
        token = (
            b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(form), form)
        )
        last = b"GET /oauth2/jwks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        with _connect(server) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + token + last)
            answer = _answer(sock)
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)
        assert statuses == [b"200", b"400", b"200"], answer
        assert b'"error":"unsupported_grant_type"' in answer
        assert answer.endswith(b"]}")  # the key set, whole, before the close

    def test_a_static_file_streamed_in_chunks_arrives_whole(self, server: LiveServer) -> None:
        with _connect(server) as sock:
            request = b"GET /static/pitpass.css HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            sock.sendall(request)
            answer = _answer(sock)
        head, _, body = answer.partition(b"\r\n\r\n")
        length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE)[1])  # type: ignore[index]
        assert _status_of(answer) == 200 and len(body) == length > 0


def _peak_rss_kib(server: LiveServer) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1])


def _post(server: LiveServer, path: str, headers: bytes, body: Iterator[bytes]) -> int | None:
    with _connect(server) as sock:
        sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path.encode(), headers))
        try:
            for chunk in body:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _status_of(_answer_first(sock))


def _answer_first(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def _raw(total: int) -> Iterator[bytes]:
    block = b"a" * (1024 * 1024)
    for _ in range(total // len(block)):
        yield block


def _chunked(total: int) -> Iterator[bytes]:
    for block in _raw(total):
        yield b"%x\r\n%s\r\n" % (len(block), block)
    yield b"0\r\n\r\n"


def test_huge_bodies_leave_memory_where_it_was(server: LiveServer) -> None:
    """Four 200 MB posts to the protocol, a page and the API, chunked, declared, and with
    a Content-Length that lies: refused (4xx or a closed connection), and the server's peak
    memory grows by far less than one of them."""
    _healthy(server)
    before = _peak_rss_kib(server)
    form = b"Content-Type: application/x-www-form-urlencoded\r\n"
    chunked = b"Transfer-Encoding: chunked\r\n"
    answers = [
        _post(server, "/oauth2/token", form + chunked, _chunked(TWO_HUNDRED_MB)),
        _post(
            server,
            "/signin",
            form + b"Content-Length: %d\r\n" % TWO_HUNDRED_MB,
            _raw(TWO_HUNDRED_MB),
        ),
        _post(
            server,
            "/api/v1/requests",
            b"Content-Type: application/json\r\n" + chunked,
            _chunked(TWO_HUNDRED_MB),
        ),
        # The lie: 100 bytes declared, 200 MB sent; the rest is no valid next request.
        _post(
            server, "/oauth2/introspect", form + b"Content-Length: 100\r\n", _raw(TWO_HUNDRED_MB)
        ),
    ]
    for answer in answers:
        assert answer is None or 400 <= answer < 500, answers
    assert answers[0] == 400 and answers[1] in (403, 413) and answers[2] == 413
    _healthy(server)
    grown_mib = (_peak_rss_kib(server) - before) / 1024
    assert grown_mib < 50, f"peak memory grew by {grown_mib:.0f} MiB"
