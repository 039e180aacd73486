"""`pitpass_kit.client` without a server: masking, the redirect checks, the token
stores, typed errors and the `httpx.Auth` retry, against `httpx.MockTransport`."""

from __future__ import annotations

import json
import os
import pickle
import socket
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx
import pytest

from pitpass_kit.client import OAuthClient, pkce_pair, s256_challenge
from pitpass_kit.errors import (
    AccessDenied,
    CallbackError,
    InvalidGrant,
    InvalidScope,
    IssuerMismatch,
    KitError,
    MissingScope,
    NotSignedIn,
    OAuthError,
    RateLimited,
    ServerError,
    StateMismatch,
    TemporarilyUnavailable,
    TokenRejected,
)
from pitpass_kit.loopback import BrowserTimeout, LoopbackReceiver
from pitpass_kit.masking import mask
from pitpass_kit.stores import FileTokenStore, MemoryTokenStore, StoreError, TokenSet

BASE = "https://auth.example/oauth2"
CALLBACK = "http://127.0.0.1/callback"
Handler = Callable[[httpx.Request], httpx.Response]


def client_with(handler: Handler, **options: object) -> OAuthClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return OAuthClient(BASE, "MyClient", "SuperSecret", http=http, **options)  # type: ignore[arg-type]


def token_answer(access: str = "at-1", refresh: str | None = "rt-1", expires_in: int = 600) -> dict:
    answer: dict[str, object] = {"access_token": access, "token_type": "Bearer"}
    answer |= {"expires_in": expires_in, "scope": "iracing.auth"}
    if refresh is not None:
        answer |= {"refresh_token": refresh, "refresh_token_expires_in": 604800}
    return answer


def form_of(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def test_masking_matches_the_books_vectors() -> None:
    assert mask("SuperSecret", "MyClient") == "CDZpTp0GQYZXHJ2tSnH9GtXnutZvyGxESQXfBnqTCVo="
    assert mask("MyPassWord", " CLunky@iracing.Com ") == (
        "xGKecAR27ALXNuMLsGaG0v5Q9pSs2tZTZRKNgmHMg+Q="
    )


def test_password_limited_sends_only_masked_secrets() -> None:
    seen: list[dict[str, str]] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(form_of(request))
        return httpx.Response(200, json=token_answer())

    client = client_with(server)
    tokens = client.password_limited("CLunky@iracing.Com", "MyPassWord", scope="iracing.auth")
    assert tokens.access_token == "at-1" and client.access_token() == "at-1"
    assert seen == [
        {
            "grant_type": "password_limited",
            "username": "CLunky@iracing.Com",
            "password": "xGKecAR27ALXNuMLsGaG0v5Q9pSs2tZTZRKNgmHMg+Q=",
            "scope": "iracing.auth",
            "client_id": "MyClient",
            "client_secret": "CDZpTp0GQYZXHJ2tSnH9GtXnutZvyGxESQXfBnqTCVo=",
        }
    ]


def test_a_rate_limit_is_typed_and_refused_locally_until_retry_after() -> None:
    calls = []

    def server(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        body = {"status": 400, "status_reason": "Bad Request", "error": "unauthorized_client"}
        headers = {"Retry-After": "120", "RateLimit-Limit": "3", "RateLimit-Remaining": "0"}
        return httpx.Response(400, json=body, headers=headers | {"RateLimit-Reset": "120"})

    client = client_with(server)
    with pytest.raises(RateLimited) as first:
        client.password_limited("a@example.com", "pw")
    assert first.value.retry_after == 120 and first.value.error == "unauthorized_client"
    assert client.rate_limit is not None and client.rate_limit.remaining == 0
    # Never a blind retry: the second try does not reach the server.
    with pytest.raises(RateLimited) as second:
        client.password_limited("a@example.com", "pw")
    assert len(calls) == 1 and 0 < second.value.retry_after <= 120


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        (400, {"error": "invalid_scope", "error_description": "no"}, {}, InvalidScope),
        (429, {"error": "invalid_request"}, {"Retry-After": "5"}, RateLimited),
        (503, "<html>busy</html>", {}, TemporarilyUnavailable),
        (500, "oops", {}, ServerError),
        (400, {"error": "brand_new_error"}, {}, OAuthError),
    ],
)
def test_each_error_answer_has_its_type(
    status: int, body: object, headers: dict[str, str], expected: type[OAuthError]
) -> None:
    def server(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers=headers)
        return httpx.Response(status, json=body, headers=headers | {"x-request-id": "r-1"})

    with pytest.raises(OAuthError) as raised:
        client_with(server).password_limited("a@example.com", "pw")
    assert type(raised.value) is expected and raised.value.status == status
    if isinstance(body, dict):
        assert raised.value.error == body["error"] and raised.value.request_id == "r-1"


def test_the_redirect_back_is_checked_before_the_code_is_spent() -> None:
    exchanged: list[dict[str, str]] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            exchanged.append(form_of(request))
        return httpx.Response(200, json=token_answer())

    client = client_with(server, redirect_uri="http://127.0.0.1/callback")
    request = client.authorization_request("iracing.auth")
    query = parse_qs(urlsplit(request.url).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] == [request.state]
    assert query["redirect_uri"] == ["http://127.0.0.1/callback"]
    back = f"http://127.0.0.1/callback?code=c1&state={request.state}"

    with pytest.raises(StateMismatch):
        client.finish_authorization(request, "http://127.0.0.1/callback?code=c1&state=forged")
    with pytest.raises(IssuerMismatch):
        client.finish_authorization(request, f"{back}&iss=https%3A%2F%2Fevil.example")
    with pytest.raises(IssuerMismatch):
        client_with(server, require_iss=True).finish_authorization(request, back)
    with pytest.raises(AccessDenied):
        client.finish_authorization(request, f"{back}&error=access_denied".replace("code=c1&", ""))
    assert exchanged == []

    tokens = client.finish_authorization(request, f"{back}&iss={BASE}")
    assert tokens.refresh_token == "rt-1"
    assert exchanged[0]["code_verifier"] == request.code_verifier
    assert exchanged[0]["redirect_uri"] == "http://127.0.0.1/callback"


def test_pkce_challenge_is_rfc_7636s() -> None:
    # RFC 7636 appendix B's verifier and challenge.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    fresh_verifier, challenge = pkce_pair()
    assert 43 <= len(fresh_verifier) <= 128 and challenge == s256_challenge(fresh_verifier)


def test_a_spent_refresh_token_clears_the_store() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_grant", "error_description": "spent"})

    store = MemoryTokenStore()
    now = time.time()
    store.save(TokenSet("old", expires_at=now - 1, obtained_at=now - 601, refresh_token="rt"))
    client = client_with(server, store=store)
    with pytest.raises(InvalidGrant):
        client.access_token()
    assert store.load() is None
    with pytest.raises(NotSignedIn):
        client.access_token()


def test_the_file_store_is_private_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "tokens" / "member.json"
    store = FileTokenStore(path)
    assert store.load() is None
    first = TokenSet("at-1", expires_at=2e9, obtained_at=1e9, refresh_token="rt-1")
    store.save(first)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    inode = os.stat(path).st_ino
    second = TokenSet("at-2", expires_at=2e9, obtained_at=1e9, refresh_token="rt-2")
    FileTokenStore(path).save(second)  # another process
    assert os.stat(path).st_ino != inode
    assert store.load() == second  # the cached first is not served after a replace
    assert json.loads(path.read_text())["refresh_token"] == "rt-2"
    assert [p.name for p in path.parent.iterdir()] == ["member.json"]
    store.save(None)
    assert store.load() is None


def test_a_short_token_is_not_refreshed_at_once() -> None:
    now = 1000.0
    ten_seconds = TokenSet("at", expires_at=now + 10, obtained_at=now)
    assert ten_seconds.fresh(now + 4.9, margin=60)
    assert not ten_seconds.fresh(now + 5.1, margin=60)
    hour = TokenSet("at", expires_at=now + 3600, obtained_at=now)
    assert hour.fresh(now + 3539, margin=60) and not hour.fresh(now + 3541, margin=60)


def test_threads_sharing_a_client_refresh_once() -> None:
    refreshes: list[str] = []
    gate = threading.Event()

    def server(request: httpx.Request) -> httpx.Response:
        form = form_of(request)
        refreshes.append(form["refresh_token"])
        gate.wait(1)  # hold the refresh so that the other threads pile up behind the lock
        n = len(refreshes)
        return httpx.Response(200, json=token_answer(f"at-{n + 1}", f"rt-{n + 1}"))

    store = MemoryTokenStore()
    now = time.time()
    store.save(TokenSet("at-1", expires_at=now + 1, obtained_at=now - 599, refresh_token="rt-1"))
    client = client_with(server, store=store)
    seen: list[str] = []
    threads = [
        threading.Thread(target=lambda: seen.append(client.access_token())) for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.2)
    gate.set()
    for thread in threads:
        thread.join()
    assert refreshes == ["rt-1"] and set(seen) == {"at-2"}


def bearer_server(valid: set[str], issued: list[str]) -> Handler:
    """A token endpoint that hands out at-2, at-3, … (into `valid` while it is not empty)
    and an API that accepts only `valid`."""

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            issued.append(f"at-{len(issued) + 2}")
            if valid:
                valid.add(issued[-1])
            return httpx.Response(200, json=token_answer(issued[-1], f"rt-{len(issued) + 1}"))
        if request.headers.get("authorization", "").removeprefix("Bearer ") in valid:
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(401, json={"error": "invalid_token"})

    return server


def test_bearer_auth_refreshes_once_on_a_401_and_retries_once() -> None:
    valid = {"unrelated"}
    issued: list[str] = []
    handler = bearer_server(valid, issued)
    store = MemoryTokenStore()
    now = time.time()
    store.save(TokenSet("at-1", expires_at=now + 600, obtained_at=now, refresh_token="rt-1"))
    client = client_with(handler, store=store)
    api = httpx.Client(transport=httpx.MockTransport(handler), auth=client.auth())
    answer = api.get("https://api.example/me")
    assert answer.status_code == 200 and answer.request.headers["authorization"] == "Bearer at-2"
    assert store.load().access_token == "at-2"  # type: ignore[union-attr]
    valid.clear()  # the API now refuses every token: one refresh, one retry, the 401 stands
    assert api.get("https://api.example/me").status_code == 401
    assert issued == ["at-2", "at-3"]


def test_bearer_auth_works_with_the_async_client() -> None:
    valid = {"at-1", "unrelated"}
    handler = bearer_server(valid, [])
    now = time.time()
    store = MemoryTokenStore()
    store.save(TokenSet("at-1", expires_at=now + 600, obtained_at=now, refresh_token="rt-1"))
    client = client_with(handler, store=store)

    async def call() -> list[int]:
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), auth=client.auth()
        ) as api:
            first = await api.get("https://api.example/me")
            valid.discard("at-1")
            second = await api.get("https://api.example/me")
            return [first.status_code, second.status_code]

    assert anyio.run(call) == [200, 200]
    assert client.access_token() == "at-2"


def due_store(refresh: str | None = "rt-1", seconds_left: float = 20) -> MemoryTokenStore:
    """Tokens within the refresh margin: still valid for `seconds_left`."""
    now = time.time()
    store = MemoryTokenStore()
    store.save(
        TokenSet(
            "at-1",
            expires_at=now + seconds_left,
            obtained_at=now - 600 + seconds_left,
            refresh_token=refresh,
        )
    )
    return store


def test_an_outage_at_refresh_time_keeps_the_still_valid_token() -> None:
    calls: list[httpx.Request] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, text="maintenance")

    client = client_with(down, store=due_store())
    assert client.access_token() == "at-1"
    assert client.access_token() == "at-1"
    assert len(calls) == 1  # then a pause before trying again, not a queue of failures
    expired = client_with(down, store=due_store(seconds_left=-1))
    with pytest.raises(TemporarilyUnavailable):
        expired.access_token()


def test_without_a_refresh_token_the_token_is_used_up() -> None:
    client = client_with(lambda request: pytest.fail("no call"), store=due_store(None))
    assert client.access_token() == "at-1"


def test_refresh_without_a_stale_token_always_refreshes() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=token_answer("at-2", "rt-2"))

    now = time.time()
    store = MemoryTokenStore()
    store.save(TokenSet("at-1", expires_at=now + 600, obtained_at=now, refresh_token="rt-1"))
    assert client_with(server, store=store).refresh().access_token == "at-2"


def test_a_refresh_answer_without_refresh_token_or_scope_keeps_them() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"access_token": "at-2", "expires_in": 600})

    store = due_store()
    store.save(replace(store.load(), scope="iracing.auth"))  # type: ignore[type-var]
    tokens = client_with(server, store=store).refresh()
    assert (tokens.access_token, tokens.refresh_token, tokens.scope) == (
        "at-2",
        "rt-1",
        "iracing.auth",
    )


def test_the_local_refusal_is_per_username_and_follows_any_retry_after() -> None:
    asked: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        username = form_of(request)["username"]
        asked.append(username)
        if username == "a@example.com":
            return httpx.Response(
                400, json={"error": "unauthorized_client"}, headers={"Retry-After": "60"}
            )
        if username == "throttled@example.com":
            return httpx.Response(
                403, json={"error": "invalid_client"}, headers={"Retry-After": "9"}
            )
        return httpx.Response(200, json=token_answer())

    client = client_with(server)
    with pytest.raises(RateLimited):
        client.password_limited("a@example.com", "pw")
    with pytest.raises(RateLimited):
        client.password_limited(" A@example.com", "pw")  # the same member, refused here
    client.password_limited("b@example.com", "pw")  # another member is not held back
    for _ in range(2):
        with pytest.raises(OAuthError) as throttled:
            client.password_limited("throttled@example.com", "pw")
    assert throttled.value.retry_after and throttled.value.retry_after <= 9
    assert asked == ["a@example.com", "b@example.com", "throttled@example.com"]


def test_a_429_is_always_a_rate_limit_and_retry_after_is_bounded() -> None:
    answers = iter(
        [
            httpx.Response(429, text="slow down", headers={"RateLimit-Reset": "7"}),
            httpx.Response(
                400, json={"error": "unauthorized_client"}, headers={"Retry-After": "inf"}
            ),
        ]
    )
    client = client_with(lambda request: next(answers))
    with pytest.raises(RateLimited) as first:
        client.password_limited("a@example.com", "pw")
    assert first.value.retry_after == 7 and first.value.status == 429
    with pytest.raises(RateLimited) as second:
        client.password_limited("b@example.com", "pw")
    assert second.value.retry_after == 86_400


def test_a_streamed_body_is_sent_again_after_the_401() -> None:
    bodies: list[bytes] = []
    valid = {"keep"}
    handler = bearer_server(valid, [])

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/upload"):
            bodies.append(request.read())
            ok = request.headers["authorization"] == "Bearer at-2"
            return httpx.Response(200 if ok else 401)
        return handler(request)

    now = time.time()
    store = MemoryTokenStore()
    store.save(TokenSet("at-1", expires_at=now + 600, obtained_at=now, refresh_token="rt-1"))
    client = client_with(api, store=store)
    with httpx.Client(transport=httpx.MockTransport(api), auth=client.auth()) as session:
        sent = session.post("https://api.example/upload", content=iter([b"lap ", b"times"]))
    assert sent.status_code == 200 and bodies == [b"lap times", b"lap times"]


def test_a_damaged_token_file_is_a_clear_store_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.json"
    path.write_text('{"access_token": "at-1", "expires_at": "soon"')
    client = client_with(lambda request: pytest.fail("no call"), store=FileTokenStore(path))
    with pytest.raises(StoreError, match=r"tokens\.json holds no token set"):
        client.access_token()


def test_a_home_relative_path_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = FileTokenStore("~/.app/tokens.json")
    assert store.path == tmp_path / ".app" / "tokens.json"


def test_iss_is_required_where_the_metadata_says_it_is_sent() -> None:
    metadata: dict[str, object] = {"authorization_response_iss_parameter_supported": True}

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/oauth-authorization-server/oauth2":
            return httpx.Response(200, json=metadata)
        return httpx.Response(200, json=token_answer())

    request = client_with(server, redirect_uri=CALLBACK).authorization_request()
    back = f"{CALLBACK}?code=c1&state={request.state}"
    with pytest.raises(IssuerMismatch):
        client_with(server, redirect_uri=CALLBACK).finish_authorization(request, back)
    metadata.clear()  # a server that does not say so (the reference publishes no metadata)
    tokens = client_with(server, redirect_uri=CALLBACK).finish_authorization(request, back)
    assert tokens.access_token == "at-1"
    # The redirect's query alone, as a web framework hands it over, does as well.
    query = f"code=c1&state={request.state}&iss={BASE}"
    assert client_with(server).finish_authorization(request, query).access_token == "at-1"


def test_mistakes_in_use_are_clear_errors() -> None:
    with pytest.raises(KitError, match="base_url must be an address"):
        OAuthClient("auth.example/oauth2", "MyClient")
    client = client_with(lambda request: pytest.fail("no call"), redirect_uri=CALLBACK)
    with pytest.raises(KitError, match="sets state itself"):
        client.authorization_request(state="mine")
    with pytest.raises(CallbackError, match="no query parameters"):
        client.finish_authorization(client.authorization_request(), CALLBACK)


def test_errors_survive_a_trip_to_another_process() -> None:
    limited = RateLimited("slow down", status=400, retry_after=5.0, error="unauthorized_client")
    again = pickle.loads(pickle.dumps(limited))  # noqa: S301 (our own bytes)
    assert type(again) is RateLimited and str(again) == str(limited)
    assert again.retry_after == 5.0
    for refusal in (
        TokenRejected("aud", "wrong audience"),
        MissingScope(frozenset("ab"), frozenset("a")),
    ):
        copy = pickle.loads(pickle.dumps(refusal))  # noqa: S301 (our own bytes)
        assert type(copy) is type(refusal) and str(copy) == str(refusal)


def test_the_loopback_receiver_ignores_strangers_and_slow_clients() -> None:
    with LoopbackReceiver("/callback") as receiver:
        host, port = "127.0.0.1", int(receiver.redirect_uri.split(":")[2].split("/")[0])
        slow = socket.create_connection((host, port))
        slow.sendall(b"GET /call")  # and nothing more, for now
        caught: list[str] = []
        waiting = threading.Thread(target=lambda: caught.append(receiver.wait_for("s1", 10)))
        waiting.start()
        time.sleep(0.1)
        forged = httpx.get(f"{receiver.redirect_uri}?code=x&state=guess", timeout=5)
        other = httpx.get(f"http://{host}:{port}/favicon.ico", timeout=5)
        assert (forged.status_code, other.status_code) == (400, 404) and not caught
        real = httpx.get(f"{receiver.redirect_uri}?code=c&state=s1", timeout=5)
        waiting.join(5)
        slow.close()
    assert real.status_code == 200 and "code" not in real.text
    assert caught == [f"{receiver.redirect_uri}?code=c&state=s1"]
    with LoopbackReceiver() as idle, pytest.raises(BrowserTimeout):
        idle.wait_for("never", 0.2)
