"""The redirect-URI rule (PRODUCT.md §3, RFC 8252): registration and matching tables."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitpass.core.redirect_uris import (
    check_redirect_uri,
    check_redirect_uri_list,
    redirect_uri_matches,
)

OK, WARN = "ok", "warn"

# (uri, client type, expected: "ok", "warn" or a fragment of the blocking problem)
REGISTRATION_CASES = [
    ("https://app.example/", "server-side", OK),
    ("https://app.example/callback", "server-side", OK),
    ("https://app.example", "server-side", "at least three slashes"),
    ("https://app.example/cb?tenant=7&x=y", "server-side", OK),
    ("https://app.example/cb?", "server-side", OK),
    ("https://app.example/cb#", "server-side", "must not contain a fragment: remove '#'"),
    ("https://app.example/cb#frag", "server-side", "must not contain a fragment: remove '#frag'"),
    ("https://user@app.example/cb", "server-side", "user information"),
    ("https://user:pw@app.example/cb", "server-side", "user information"),
    ("https://*.app.example/cb", "server-side", "wildcards are not allowed"),
    ("https://app.example/*", "server-side", "wildcards are not allowed"),
    ("http://app.example/cb", "server-side", "http is only allowed for loopback"),
    ("http://10.0.0.5/cb", "server-side", "http is only allowed for loopback"),
    ("http://127.0.0.1/cb", "native", OK),
    ("http://127.0.0.1:8080/cb", "native", OK),
    ("http://127.0.0.1:12345/callback", "server-side", OK),
    ("http://[::1]/cb", "native", OK),
    ("http://[::1]:5000/cb", "native", OK),
    ("http://localhost/cb", "native", WARN),
    ("http://localhost:3000/cb", "single-page-app", WARN),
    ("https://127.0.0.1/cb", "native", WARN),
    ("https://203.0.113.9/cb", "server-side", WARN),
    ("com.example.app:/callback", "mobile", OK),
    ("com.example.app://callback/path", "native", OK),
    ("example.yourdomain.app://", "mobile", OK),
    ("com.example.app:/callback", "server-side", "only for mobile and native clients"),
    ("com.example.app:/callback", "single-page-app", "only for mobile and native clients"),
    ("myapp:/callback", "mobile", "reversed domain name"),
    ("com.example.app:callback", "mobile", "followed by a path"),
    ("javascript:alert(1)//", "native", "can never be a redirect URI"),
    ("data:text/html,hi", "mobile", "can never be a redirect URI"),
    ("file:///etc/passwd", "native", "can never be a redirect URI"),
    ("/relative/path", "server-side", "must be absolute"),
    ("app.example/cb", "server-side", "must be absolute"),
    ("", "server-side", "enter a redirect URI"),
    ("https://app.example/" + "a" * 1990, "server-side", "at most 2000 characters"),
    ("https://app.example/" + "a" * 1980, "server-side", OK),
    ("https://app.example/call back", "server-side", "spaces or control characters"),
    ("https://app.example/cb\n", "server-side", "spaces or control characters"),
    ("https://app.example:99999/cb", "server-side", "port must be a number"),
    ("https://app.example:/cb", "server-side", "port must be a number"),
    ("https://app.example:443/cb", "server-side", OK),
    ("HTTPS://app.example/cb", "server-side", "lower case"),
    ("https://App.Example/cb", "server-side", "lower case"),
    ("https://app.example/%zz", "server-side", "percent-encoded"),
    ("https://app.example/caf%C3%A9", "server-side", OK),
    ("https://café.example/cb", "server-side", "must be ASCII"),
    ("https:app.example/cb", "server-side", "followed by the host"),
    ("https:///cb", "server-side", "needs a host"),
]


@pytest.mark.parametrize(("uri", "client_type", "expected"), REGISTRATION_CASES)
def test_registration_rule(uri: str, client_type: str, expected: str) -> None:
    check = check_redirect_uri(uri, client_type)
    if expected == OK:
        assert check.ok and not check.warnings, (check.problems, check.warnings)
    elif expected == WARN:
        assert check.ok and check.warnings, check.problems
    else:
        assert not check.ok
        assert any(expected in problem for problem in check.problems), check.problems


def test_list_rules_name_the_offending_entries() -> None:
    uris = [f"https://app.example/cb{n}" for n in range(11)] + ["https://app.example/cb0"]
    checks = check_redirect_uri_list(uris, "server-side")
    assert [c.ok for c in checks[:10]] == [True] * 10
    assert "at most 10 redirect URIs" in checks[10].problems[0]
    assert "listed twice" in checks[11].problems[0]


# (registered, presented, matches?)
MATCH_CASES = [
    ("https://app.example/cb", "https://app.example/cb", True),
    ("https://app.example/cb", "https://APP.example/cb", False),
    ("https://app.example/cb", "https://app.example/CB", False),
    ("https://app.example/cb", "https://app.example/cb/", False),
    ("https://app.example/cb/", "https://app.example/cb", False),
    ("https://app.example/cb", "https://app.example:443/cb", False),
    ("https://app.example:443/cb", "https://app.example/cb", False),
    ("https://app.example/cb?a=1&b=2", "https://app.example/cb?a=1&b=2", True),
    ("https://app.example/cb?a=1&b=2", "https://app.example/cb?b=2&a=1", False),
    ("https://app.example/cb?a=1", "https://app.example/cb?a=1&extra=1", False),
    ("https://app.example/cb", "https://app.example/cb?", False),
    ("https://app.example/cb", "https://app.example/cb#", False),
    ("https://app.example/cb", "https://evil@app.example/cb", False),
    ("https://app.example/cb", "https://app.example.evil/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:51234/cb", True),
    ("http://127.0.0.1/cb", "http://127.0.0.1/cb", True),
    ("http://[::1]/cb", "http://[::1]:8080/cb", True),
    ("http://127.0.0.1:8080/cb", "http://127.0.0.1:8081/cb", False),
    ("http://127.0.0.1:8080/cb", "http://127.0.0.1:8080/cb", True),
    ("http://127.0.0.1/cb", "http://127.0.0.1:8080/other", False),
    ("http://127.0.0.1/cb", "http://127.0.0.2:8080/cb", False),
    ("http://127.0.0.1/cb", "http://localhost:8080/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:abc/cb", False),
    ("http://127.0.0.1/cb", "http://user@127.0.0.1:80/cb", False),
    # Only the port may vary (RFC 8252 §7.3): nothing a URL parser would normalise away.
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb#", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb#x", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb?", False),
    ("http://127.0.0.1/cb", "HTTP://127.0.0.1:1/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:0/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:08080/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:65536/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb\t", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/cb ", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1/%63b", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:1:2/cb", False),
    ("http://127.0.0.1/cb", "http://127.0.0.1:65535/cb", True),
    ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:9/cb?x=1", True),
    ("http://127.0.0.1/cb?x=1", "http://127.0.0.1:9/cb?x=1#", False),
    ("http://[::1]/cb", "http://[::1]:0/cb", False),
    ("http://localhost/cb", "http://localhost:8080/cb", False),
    ("https://127.0.0.1/cb", "https://127.0.0.1:8443/cb", False),
    ("com.example.app:/cb", "com.example.app:/cb", True),
]


@pytest.mark.parametrize(("registered", "presented", "matches"), MATCH_CASES)
def test_matching_rule(registered: str, presented: str, matches: bool) -> None:
    assert redirect_uri_matches(registered, presented) is matches


CLIENT_TYPES = st.sampled_from(["server-side", "single-page-app", "mobile", "native"])


@given(st.text(max_size=300), CLIENT_TYPES)
def test_validation_never_raises(uri: str, client_type: str) -> None:
    check_redirect_uri(uri, client_type)
    redirect_uri_matches(uri, uri + ":1")


URL_TEXT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~%/?=&+", max_size=40)


@given(
    st.sampled_from(["https://app.example", "http://127.0.0.1:8080", "https://a.b.example"]),
    URL_TEXT,
    CLIENT_TYPES,
)
def test_accepted_uris_round_trip_unchanged(base: str, tail: str, client_type: str) -> None:
    uri = f"{base}/{tail}"
    check = check_redirect_uri(uri, client_type)
    if check.ok:
        assert check.uri == uri
        assert redirect_uri_matches(uri, uri)
