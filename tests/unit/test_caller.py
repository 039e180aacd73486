"""The one rule for who sent a request (http/caller.py), shared by pages and the protocol."""

from __future__ import annotations

from starlette.requests import Request

from pitpass.http.caller import MAX_USER_AGENT, client_of
from pitpass.oauth.requests import caller_of


def _request(user_agent: bytes | None) -> Request:
    headers = [(b"user-agent", user_agent)] if user_agent is not None else []
    return Request({"type": "http", "headers": headers, "client": ("203.0.113.7", 4242)})


def test_pages_and_protocol_record_the_same_caller_within_the_columns_size() -> None:
    long_agent = b"Mozilla/5.0 " + b"x" * 1000
    for request in (_request(long_agent), _request(b"curl/8"), _request(b""), _request(None)):
        page, protocol = client_of(request), caller_of(request)
        assert (page.ip, page.user_agent) == (protocol.ip, protocol.user_agent)
        assert page.ip == "203.0.113.7"
        assert page.user_agent is None or len(page.user_agent) <= MAX_USER_AGENT
    assert client_of(_request(long_agent)).user_agent == long_agent.decode()[:MAX_USER_AGENT]
    assert client_of(_request(b"")).user_agent is None
