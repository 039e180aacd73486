"""`pitpass_kit.resource` (issue #13, item 2): `TokenVerifier` against tokens minted here
with joserfc and keys served by an `httpx.MockTransport` JWKS; the FastAPI dependency
and the ASGI middleware through Starlette's TestClient; and real tokens of a running
Pitpass, through a `pitpass keys rotate`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import anyio
import httpx
import pytest
from fastapi import Depends, FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from pitpass_kit.errors import InvalidClient, MissingScope, TemporarilyUnavailable, TokenRejected
from pitpass_kit.masking import mask
from pitpass_kit.resource import BearerMiddleware, TokenVerifier, VerifiedToken
from pitpass_kit.resource.dependency import install_error_handler
from tests.e2e.oauth_world import PASSWORD, World, running_world
from tests.support import live_server

ISSUER = "https://auth.example/oauth2"
AUDIENCE = "data-server"
NOW = 1_800_000_000  # the tests' wall clock


class Clock:
    """A clock the test moves: `clock()` is now."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def new_key() -> ECKey:
    key = ECKey.generate_key("P-256")
    key.ensure_kid()  # the RFC 7638 thumbprint, as Pitpass names its keys
    return key


def public_jwk(key: ECKey) -> dict[str, Any]:
    return key.as_dict(private=False) | {"kid": key.kid, "alg": "ES256", "use": "sig"}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    """What Pitpass puts in an access token (PRODUCT.md §4), `None` removing a claim."""
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "100001",
        "aud": ["my-app", AUDIENCE],
        "exp": NOW + 600,
        "iat": NOW,
        "auth_time": NOW - 60,
        "jti": str(uuid.uuid4()),
        "session_id": str(uuid.uuid4()),
        "client_id": "my-app",
        "scope": "iracing.auth iracing.profile",
        "iracing_cust_id": 100001,
        "iracing_group_ids": [1],
        "iracing_env": None,
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def mint(key: ECKey, header: dict[str, Any] | None = None, **claim_changes: Any) -> str:
    """An ES256 access token as Pitpass signs it, with the header and claims changed."""
    head = {"alg": "ES256", "typ": "at+jwt", "kid": key.kid, "jku": f"{ISSUER}/jwks"}
    head.update(header or {})
    head = {name: value for name, value in head.items() if value is not None}
    return jwt.encode(head, claims(**claim_changes), key, algorithms=["ES256"])


class Issuer:
    """The issuer's JWKS and introspection endpoint, in memory; counts the calls."""

    def __init__(self, *keys: ECKey) -> None:
        self.keys = list(keys)
        self.jwks_fetches = 0
        self.jwks_threads: list[int] = []
        self.jwks_status = 200
        self.jwks_gate: threading.Event | None = None  # when set, a fetch waits for it
        self.active: dict[str, bool] = {}
        self.introspections: list[dict[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/jwks":
            self.jwks_fetches += 1
            self.jwks_threads.append(threading.get_ident())
            if self.jwks_gate is not None:
                self.jwks_gate.wait(timeout=10)
            if self.jwks_status != 200:
                return httpx.Response(self.jwks_status)
            return httpx.Response(200, json={"keys": [public_jwk(k) for k in self.keys]})
        if request.url.path == "/oauth2/introspect":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.introspections.append(form)
            if form["client_secret"] != mask("rs-secret", "rs-client"):
                return httpx.Response(403, json={"error": "invalid_client"})
            return httpx.Response(200, json={"active": self.active.get(form["token"], False)})
        return httpx.Response(404)


@pytest.fixture
def key() -> ECKey:
    return new_key()


@pytest.fixture
def issuer(key: ECKey) -> Issuer:
    return Issuer(key)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def timer() -> Clock:
    return Clock(1000.0)


@pytest.fixture
def verifier(issuer: Issuer, clock: Clock, timer: Clock) -> Iterator[TokenVerifier]:
    built = verifier_for(issuer, clock, timer)
    yield built
    built.close()


def verifier_for(issuer: Issuer, clock: Clock, timer: Clock, **options: Any) -> TokenVerifier:
    http = httpx.Client(transport=httpx.MockTransport(issuer))
    return TokenVerifier(ISSUER, AUDIENCE, http=http, clock=clock, timer=timer, **options)


def rejected(verifier: TokenVerifier, token: str, **options: Any) -> TokenRejected:
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token, **options)
    assert caught.value.error == "invalid_token" and caught.value.status == 401
    return caught.value


# ----- what passes ----------------------------------------------------------------------


def test_a_valid_access_token_verifies_and_says_who_and_what(
    verifier: TokenVerifier, key: ECKey
) -> None:
    token = mint(key, jti="the-jti", session_id="the-session")
    verified = verifier.verify(token, scopes=["iracing.auth"])
    assert verified.subject == "100001" and verified.customer_id == 100001
    assert verified.client_id == "my-app"
    assert verified.scopes == {"iracing.auth", "iracing.profile"}
    assert verified.audience == ("my-app", AUDIENCE)
    assert (verified.expires_at, verified.issued_at) == (NOW + 600, NOW)
    assert (verified.token_id, verified.session_id) == ("the-jti", "the-session")
    assert verified.key_id == key.kid and verified.claims["iracing_group_ids"] == [1]
    assert verified.has_scopes("iracing.profile iracing.auth")
    assert verifier.verify(token, scopes="iracing.auth iracing.profile") == verified
    with pytest.raises(TypeError):
        verified.claims["sub"] = "someone else"  # type: ignore[index]


def test_application_at_jwt_is_the_same_type_and_any_listed_audience_passes(
    issuer: Issuer, key: ECKey, clock: Clock, timer: Clock
) -> None:
    verifier = verifier_for(issuer, clock, timer)
    assert verifier.verify(mint(key, {"typ": "application/AT+JWT"})).client_id == "my-app"
    several = TokenVerifier(ISSUER, ["other-api", "my-app"], http=verifier.http, clock=clock)
    assert several.verify(mint(key, aud="my-app")).audience == ("my-app",)


# ----- what is refused, one rule each (the issue's acceptance) --------------------------


def test_wrong_audience_is_rejected(verifier: TokenVerifier, key: ECKey) -> None:
    assert rejected(verifier, mint(key, aud=["my-app", "other-api"])).reason == "aud"
    assert rejected(verifier, mint(key, aud="other-api")).reason == "aud"
    assert rejected(verifier, mint(key, aud=None)).reason == "claims"  # none at all


def test_wrong_issuer_is_rejected(verifier: TokenVerifier, key: ECKey) -> None:
    error = rejected(verifier, mint(key, iss="https://evil.example/oauth2"))
    assert error.reason == "iss" and "another issuer" in error.description
    assert rejected(verifier, mint(key, iss=ISSUER + "/")).reason == "iss"  # exactly (RFC 9068)


def test_a_type_other_than_at_jwt_is_rejected(verifier: TokenVerifier, key: ECKey) -> None:
    # RFC 9068 §4 step 1: an ID token or any other JWT signed by the same key is no
    # access token, however good its signature.
    assert rejected(verifier, mint(key, {"typ": "JWT"})).reason == "typ"
    assert rejected(verifier, mint(key, {"typ": None})).reason == "typ"
    assert rejected(verifier, mint(key, {"typ": "dpop+jwt"})).reason == "typ"


def test_an_expired_token_is_rejected_past_the_leeway(
    verifier: TokenVerifier, key: ECKey, clock: Clock
) -> None:
    token = mint(key, exp=NOW - 10)
    assert verifier.verify(token).expires_at == NOW - 10  # within the 30 s leeway
    clock.now = NOW + 20  # exp + leeway reached: the one verified above is refused too
    error = rejected(verifier, token)
    assert error.reason == "exp" and "expired" in error.description
    assert rejected(verifier, mint(key, exp=NOW - 31)).reason == "exp"


def test_a_token_not_yet_valid_is_rejected(verifier: TokenVerifier, key: ECKey) -> None:
    assert verifier.verify(mint(key, nbf=NOW + 30)).subject == "100001"  # within the leeway
    error = rejected(verifier, mint(key, nbf=NOW + 31))
    assert error.reason == "nbf" and "not valid yet" in error.description
    assert rejected(verifier, mint(key, iat=NOW + 31)).reason == "iat"


def test_an_unknown_kid_is_rejected_after_one_refetch_and_refetches_are_rationed(
    verifier: TokenVerifier, issuer: Issuer, key: ECKey, timer: Clock
) -> None:
    verifier.verify(mint(key))
    assert issuer.jwks_fetches == 1
    timer.now += 10  # min_refetch_interval since that fetch
    stranger = new_key()
    error = rejected(verifier, mint(stranger))
    assert error.reason == "kid" and stranger.kid in error.description
    assert issuer.jwks_fetches == 2  # looked again once, found nothing
    for _ in range(50):  # a flood of made-up kids within the interval costs no fetch
        assert rejected(verifier, mint(key, {"kid": str(uuid.uuid4())})).reason == "kid"
    assert issuer.jwks_fetches == 2
    timer.now += 10
    assert rejected(verifier, mint(key, {"kid": "another"})).reason == "kid"
    assert issuer.jwks_fetches == 3  # one more per interval, no more
    assert rejected(verifier, mint(key, {"kid": None})).reason == "kid"


def test_alg_none_is_rejected(verifier: TokenVerifier, key: ECKey) -> None:
    verifier.verify(mint(key))  # the key set is known: only the algorithm is wrong
    header = {"alg": "none", "typ": "at+jwt", "kid": key.kid}
    for unsigned in (f"{b64(header)}.{b64(claims())}.", f"{b64(header)}.{b64(claims())}.c2ln"):
        error = rejected(verifier, unsigned)
        assert error.reason == "alg" and "ES256" in error.description


def test_hs256_keyed_with_the_public_key_is_rejected(verifier: TokenVerifier, key: ECKey) -> None:
    # The classic confusion: HMAC with the published key as the secret. The token's alg
    # never chooses the algorithm.
    # (joserfc itself refuses to make such a key, so the attacker's token is made by hand.)
    verifier.verify(mint(key))
    signing_input = f"{b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': key.kid})}.{b64(claims())}"
    for secret in (key.as_pem(private=False), json.dumps(public_jwk(key)).encode()):
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
        assert rejected(verifier, forged).reason == "alg"
    for alg in ("ES384", "RS256", "EdDSA"):
        assert rejected(verifier, f"{b64({'alg': alg, 'typ': 'at+jwt', 'kid': key.kid})}.e30.c2ln")


def test_a_key_from_another_jwks_is_rejected(
    verifier: TokenVerifier, issuer: Issuer, key: ECKey, timer: Clock
) -> None:
    other_issuers_key = new_key()
    posing = mint(other_issuers_key, {"kid": key.kid})  # claims to be ours
    error = rejected(verifier, posing)
    assert error.reason == "signature" and "signature" in error.description
    timer.now += 60
    assert rejected(verifier, mint(other_issuers_key)).reason == "kid"  # under its own name
    assert issuer.jwks_fetches == 2


def test_a_missing_scope_is_refused_with_what_is_missing(
    verifier: TokenVerifier, key: ECKey
) -> None:
    token = mint(key, scope="iracing.profile")
    with pytest.raises(MissingScope) as caught:
        verifier.verify(token, scopes=["iracing.auth", "iracing.profile"])
    assert caught.value.error == "insufficient_scope" and caught.value.status == 403
    assert caught.value.missing == ("iracing.auth",)
    assert caught.value.required == ("iracing.auth", "iracing.profile")
    assert verifier.verify(token, scopes="iracing.profile").scopes == {"iracing.profile"}
    with pytest.raises(MissingScope):  # no scope claim at all: no scope
        verifier.verify(mint(key, scope=None), scopes="iracing.auth")


def test_a_bad_signature_or_shape_is_rejected(verifier: TokenVerifier, key: ECKey) -> None:
    token = mint(key)
    head, _claims, signature = token.split(".")
    tampered = f"{head}.{b64(claims(sub='100002'))}.{signature}"
    assert rejected(verifier, tampered).reason == "signature"
    long = token + "x" * 9000
    for junk in (
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "é.b.c",
        long,
        f"{head}.!!.{signature}",
    ):
        assert rejected(verifier, junk).reason == "malformed", junk
    assert rejected(verifier, "e30.e30.e30").reason == "alg"  # a header without alg
    assert rejected(verifier, mint(key, sub=100001)).reason == "claims"  # sub: a string
    assert rejected(verifier, mint(key, client_id=None)).reason == "claims"


# ----- the JWKS cache -------------------------------------------------------------------


def test_a_key_rotation_is_picked_up_without_a_new_verifier(
    verifier: TokenVerifier, issuer: Issuer, key: ECKey, timer: Clock
) -> None:
    old_token = mint(key)
    verifier.verify(old_token)
    successor = new_key()
    issuer.keys.append(successor)  # the issuer rotates; the old key stays published
    timer.now += 10
    assert verifier.verify(mint(successor)).key_id == successor.kid
    assert issuer.jwks_fetches == 2
    assert verifier.verify(old_token).key_id == key.kid  # both still verify


def test_the_key_set_is_fetched_again_once_old_and_a_dropped_key_stops_verifying(
    verifier: TokenVerifier, issuer: Issuer, key: ECKey, timer: Clock
) -> None:
    token = mint(key)
    verifier.verify(token)
    timer.now += 299
    verifier.verify(token)
    assert issuer.jwks_fetches == 1  # younger than jwks_max_age (300 s)
    successor = new_key()
    issuer.keys = [successor]  # the old key is withdrawn
    timer.now += 1
    error = rejected(verifier, token)  # remembered as verified, but its key is gone
    assert error.reason == "kid" and issuer.jwks_fetches == 2
    assert verifier.verify(mint(successor)).key_id == successor.kid
    assert issuer.jwks_fetches == 2


def test_an_unreachable_jwks_is_unavailable_and_known_keys_outlive_a_failed_fetch(
    verifier: TokenVerifier, issuer: Issuer, key: ECKey, timer: Clock
) -> None:
    issuer.jwks_status = 503
    with pytest.raises(TemporarilyUnavailable) as caught:
        verifier.verify(mint(key))
    assert caught.value.status == 503 and "HTTP 503" in caught.value.description
    with pytest.raises(TemporarilyUnavailable):
        verifier.verify(mint(key))
    assert issuer.jwks_fetches == 1  # a failed attempt also waits out the interval
    issuer.jwks_status = 200
    timer.now += 10
    verifier.verify(mint(key))
    issuer.jwks_status = 500
    timer.now += 300  # the set is old: looked at again, which fails; keep what we had
    assert verifier.verify(mint(key)).key_id == key.kid
    with pytest.raises(TemporarilyUnavailable):  # an unknown kid cannot be told apart now
        verifier.verify(mint(new_key()))
    assert issuer.jwks_fetches == 3


def test_the_jwks_keeps_only_public_es256_signing_keys(
    issuer: Issuer, key: ECKey, clock: Clock, timer: Clock
) -> None:
    other_curve = ECKey.generate_key("P-384")
    other_curve.ensure_kid()
    for_encryption = new_key()
    served = [
        public_jwk(other_curve) | {"alg": "ES384"},
        public_jwk(for_encryption) | {"use": "enc"},
        {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        key.as_dict(private=True) | {"kid": key.kid},  # a private member: only x, y are read
    ]

    def jwks(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": served})

    http = httpx.Client(transport=httpx.MockTransport(jwks))
    verifier = TokenVerifier(ISSUER, AUDIENCE, http=http, clock=clock, timer=timer)
    assert verifier.verify(mint(key)).key_id == key.kid
    assert set(verifier.jwks._keys or {}) == {key.kid}
    assert not verifier.jwks._keys[key.kid].is_private  # type: ignore[index]


def test_unknown_kids_from_many_threads_fetch_once(issuer: Issuer, key: ECKey) -> None:
    verifier = verifier_for(issuer, Clock(NOW), Clock(1000.0))
    tokens = [mint(key, {"kid": f"made-up-{n}"}) for n in range(16)]
    barrier = threading.Barrier(16)
    reasons: list[str] = []

    def attempt(token: str) -> None:
        barrier.wait()
        try:
            verifier.verify(token)
        except TokenRejected as error:
            reasons.append(error.reason)

    threads = [threading.Thread(target=attempt, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reasons == ["kid"] * 16 and issuer.jwks_fetches == 1


def test_a_token_arriving_during_the_first_fetch_waits_for_its_keys(
    issuer: Issuer, key: ECKey
) -> None:
    """The first fetch marks its attempt before the keys arrive; a second token in that
    window must wait for them, not answer 503 from the empty set (a CI failure)."""
    verifier = verifier_for(issuer, Clock(NOW), Clock(1000.0))
    issuer.jwks_gate = threading.Event()
    outcomes: list[str] = []

    def attempt() -> None:
        try:
            outcomes.append(verifier.verify(mint(key)).subject)
        except Exception as error:  # recorded, so the assertion shows it
            outcomes.append(repr(error))

    first = threading.Thread(target=attempt)
    first.start()
    while issuer.jwks_fetches == 0:  # the first fetch is under way, held at the gate
        threading.Event().wait(0.001)
    second = threading.Thread(target=attempt)
    second.start()
    second.join(timeout=0.2)
    waited = second.is_alive()
    issuer.jwks_gate.set()
    first.join()
    second.join()
    assert waited and outcomes == ["100001", "100001"] and issuer.jwks_fetches == 1


# ----- repeated tokens ------------------------------------------------------------------


def test_a_repeated_token_is_checked_once_and_the_cache_is_bounded(
    issuer: Issuer, key: ECKey, clock: Clock, timer: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifier = verifier_for(issuer, clock, timer, cache_size=3)
    checked: list[str] = []
    check = verifier._check

    def counting(token: str, may_block: bool) -> VerifiedToken:
        checked.append(token)
        return check(token, may_block)

    monkeypatch.setattr(verifier, "_check", counting)
    tokens = [mint(key) for _ in range(4)]
    for _ in range(3):
        verifier.verify(tokens[0])
    assert checked == [tokens[0]]
    for token in tokens[1:]:
        verifier.verify(token)
    assert len(verifier._verified) == 3  # the least recently used went
    verifier.verify(tokens[0])
    assert checked == [*tokens, tokens[0]]
    with pytest.raises(MissingScope):  # the scopes asked are checked on every use
        verifier.verify(tokens[0], scopes="sessions")


# ----- introspection --------------------------------------------------------------------


def test_introspection_rejects_an_inactive_token_and_keeps_answers_briefly(
    issuer: Issuer, key: ECKey, clock: Clock, timer: Clock
) -> None:
    verifier = verifier_for(issuer, clock, timer, introspection=("rs-client", "rs-secret"))
    token = mint(key)
    issuer.active[token] = True
    assert verifier.verify(token).client_id == "my-app"
    assert verifier.verify(token, introspect=False).client_id == "my-app"
    assert issuer.introspections == [
        {
            "token": token,
            "token_type_hint": "access_token",
            "client_id": "rs-client",
            "client_secret": mask("rs-secret", "rs-client"),  # masked, as every secret
        }
    ]
    issuer.active[token] = False  # the member signs out
    timer.now += 9
    verifier.verify(token)  # the answer is 10 s old at most
    timer.now += 1
    error = rejected(verifier, token)
    assert error.reason == "inactive" and len(issuer.introspections) == 2
    assert rejected(verifier, mint(key, aud="other")).reason == "aud"
    assert len(issuer.introspections) == 2  # refused offline first: the issuer is not asked


def test_introspection_failures_are_not_the_tokens(
    issuer: Issuer, key: ECKey, clock: Clock, timer: Clock
) -> None:
    wrong = verifier_for(issuer, clock, timer, introspection=("rs-client", "not it"))
    with pytest.raises(InvalidClient):
        wrong.verify(mint(key))

    def down(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/introspect"):
            raise httpx.ConnectError("refused", request=request)
        return issuer(request)

    http = httpx.Client(transport=httpx.MockTransport(down))
    unreachable = TokenVerifier(
        ISSUER, AUDIENCE, http=http, clock=clock, introspection=("rs-client", "rs-secret")
    )
    with pytest.raises(TemporarilyUnavailable):
        unreachable.verify(mint(key))
    plain = verifier_for(issuer, clock, timer)
    with pytest.raises(Exception, match="no introspection="):
        plain.verify(mint(key), introspect=True)


# ----- async ----------------------------------------------------------------------------


def test_verify_async_fetches_keys_off_the_event_loop(issuer: Issuer, key: ECKey) -> None:
    verifier = verifier_for(issuer, Clock(NOW), Clock(1000.0))
    loop_threads: list[int] = []

    async def main() -> tuple[VerifiedToken, VerifiedToken]:
        loop_threads.append(threading.get_ident())
        first = await verifier.verify_async(mint(key), "iracing.auth")
        return first, await verifier.verify_async(mint(key))

    first, second = anyio.run(main)
    assert first.subject == second.subject == "100001"
    assert issuer.jwks_fetches == 1 and issuer.jwks_threads[0] != loop_threads[0]


# ----- HTTP: the FastAPI dependency and the ASGI middleware ------------------------------


def test_the_kit_needs_no_web_framework() -> None:
    """FastAPI and Starlette are no dependencies of pitpass-kit: importing the resource
    side, middleware included, imports neither."""
    probe = (
        "import sys, pitpass_kit.resource, pitpass_kit.resource.asgi;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def fastapi_app(verifier: TokenVerifier, handler: bool = True) -> FastAPI:
    app = FastAPI()
    if handler:
        install_error_handler(app)

    @app.get("/laps")
    async def laps(
        token: VerifiedToken = Depends(verifier.dependency("iracing.auth", realm="laps")),
    ) -> dict[str, Any]:
        return {"customer_id": token.customer_id, "client_id": token.client_id}

    @app.get("/anyone")
    def anyone(token: VerifiedToken = Depends(verifier.dependency())) -> dict[str, Any]:
        return {"sub": token.subject}

    return app


def starlette_app(verifier: TokenVerifier) -> BearerMiddleware:
    async def laps(request: Request) -> JSONResponse:
        token: VerifiedToken = request.state.token
        return JSONResponse({"customer_id": token.customer_id, "client_id": token.client_id})

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    async def live(socket: WebSocket) -> None:
        await socket.accept()
        await socket.send_json({"sub": socket.state.token.subject})
        await socket.close()

    routes = [Route("/laps", laps), Route("/healthz", health), WebSocketRoute("/live", live)]
    return BearerMiddleware(
        Starlette(routes=routes),
        verifier,
        scopes=["iracing.auth"],
        realm="laps",
        public_paths={"/healthz"},
    )


def error_body(status: int, reason: str, error: str, description: str) -> dict[str, Any]:
    return {
        "status": status,
        "status_reason": reason,
        "error": error,
        "error_description": description,
        "error_uri": f"{ISSUER}/book/errors.html#{error}",
    }


@pytest.mark.parametrize("kind", ["fastapi", "asgi"])
def test_rfc_6750_answers(kind: str, verifier: TokenVerifier, key: ECKey) -> None:
    app = fastapi_app(verifier) if kind == "fastapi" else starlette_app(verifier)
    client = TestClient(app)

    def get(authorization: str | None) -> httpx.Response:
        headers = {} if authorization is None else {"Authorization": authorization}
        return client.get("/laps", headers=headers)

    ok = get(f"Bearer {mint(key)}")
    assert ok.status_code == 200 and ok.json() == {"customer_id": 100001, "client_id": "my-app"}
    assert get(f"bearer  {mint(key)} ").status_code == 200  # the scheme is case-insensitive

    for missing in (None, "Basic dXNlcjpwYXNz"):  # §3.1: no credentials, no error code
        answer = get(missing)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == 'Bearer realm="laps"'
        assert answer.json() == error_body(
            401,
            "Unauthorized",
            "invalid_token",
            "this resource needs an access token: send Authorization: Bearer <token>",
        )

    expired = get(f"Bearer {mint(key, exp=NOW - 60)}")
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == (
        'Bearer realm="laps", error="invalid_token", '
        'error_description="the access token has expired"'
    )
    assert expired.json() == error_body(
        401, "Unauthorized", "invalid_token", "the access token has expired"
    )
    assert expired.headers["cache-control"] == "no-store"

    narrow = get(f"Bearer {mint(key, scope='iracing.profile')}")
    assert narrow.status_code == 403
    assert narrow.headers["www-authenticate"] == (
        'Bearer realm="laps", error="insufficient_scope", '
        'error_description="the access token lacks the scope iracing.auth", '
        'scope="iracing.auth"'
    )
    assert narrow.json() == error_body(
        403, "Forbidden", "insufficient_scope", "the access token lacks the scope iracing.auth"
    )

    empty = get("Bearer ")
    assert empty.status_code == 400
    assert empty.headers["www-authenticate"] == (
        'Bearer realm="laps", error="invalid_request", '
        "error_description=\"the Authorization header is not 'Bearer <token>'\""
    )
    twice = client.get(
        "/laps",
        headers=[("Authorization", f"Bearer {mint(key)}")] * 2,  # type: ignore[arg-type]
    )
    assert twice.status_code == 400 and twice.json()["error"] == "invalid_request"


def test_the_fastapi_dependency_without_the_handler_keeps_status_and_challenge(
    verifier: TokenVerifier, key: ECKey
) -> None:
    client = TestClient(fastapi_app(verifier, handler=False))
    answer = client.get("/laps", headers={"Authorization": f"Bearer {mint(key, iss='x')}"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="laps", error="invalid_token", '
        'error_description="the access token comes from another issuer"'
    )
    assert answer.json()["detail"]["error"] == "invalid_token"  # FastAPI's own wrapping
    anyone = client.get("/anyone")  # no realm given: none sent
    assert anyone.status_code == 401 and anyone.headers["www-authenticate"] == "Bearer"
    assert client.get("/anyone", headers={"Authorization": f"Bearer {mint(key)}"}).json() == {
        "sub": "100001"
    }


def test_the_middleware_leaves_public_paths_and_guards_websockets(
    verifier: TokenVerifier, key: ECKey
) -> None:
    client = TestClient(starlette_app(verifier))
    assert client.get("/healthz").json() == {"ok": True}
    with client.websocket_connect(
        "/live", headers={"Authorization": f"Bearer {mint(key)}"}
    ) as socket:
        assert socket.receive_json() == {"sub": "100001"}
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/live"):
        pass
    assert refused.value.code == 1008


def test_an_unreachable_issuer_is_503_without_a_challenge(
    issuer: Issuer, key: ECKey, clock: Clock, timer: Clock
) -> None:
    issuer.jwks_status = 502
    client = TestClient(starlette_app(verifier_for(issuer, clock, timer)))
    answer = client.get("/laps", headers={"Authorization": f"Bearer {mint(key)}"})
    assert answer.status_code == 503 and "www-authenticate" not in answer.headers
    assert answer.json()["error"] == "temporarily_unavailable"


# ----- a real Pitpass -------------------------------------------------------------------


def password_client(world: World) -> tuple[str, str, str]:
    """A confidential client with the password_limited flow and the `data-server`
    audience, and a member on its access list: (client_id, secret, email)."""
    email = f"resource-{uuid.uuid4().hex[:8]}@example.com"
    world.member(email)
    client_id, secret = world.client(
        f"Resource Test {uuid.uuid4().hex[:6]}", flows=("password_limited",), redirect_uris=()
    )
    assert secret is not None
    world.allow(client_id, email)
    return client_id, secret, email


def password_grant(world: World, client_id: str, secret: str, email: str) -> dict[str, Any]:
    form = {
        "grant_type": "password_limited",
        "client_id": client_id,
        "client_secret": mask(secret, client_id),
        "username": email,
        "password": mask(PASSWORD, email),
        "scope": "iracing.auth",
    }
    answer = world.token(**form)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def kid_of(token: str) -> str:
    head = token.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"])


def test_real_tokens_verify_and_introspection_sees_a_sign_out(world: World) -> None:
    client_id, secret, email = password_client(world)
    resource_id, resource_secret = world.client(f"Resource API {uuid.uuid4().hex[:6]}")
    assert resource_secret is not None
    tokens = password_grant(world, client_id, secret, email)
    verifier = TokenVerifier(
        world.issuer,
        "data-server",
        introspection=(resource_id, resource_secret),
        introspection_ttl=0,
    )
    verified = verifier.verify(tokens["access_token"], scopes="iracing.auth")
    assert verified.client_id == client_id and verified.audience == (client_id, "data-server")
    assert verified.customer_id is not None and verified.subject == str(verified.customer_id)
    assert verified.session_id and verifier.introspector is not None
    assert verifier.introspector.requests == 1  # asked, and active
    with pytest.raises(MissingScope):
        verifier.verify(tokens["access_token"], scopes="iracing.profile")
    signed_out = httpx.post(
        f"{world.issuer}/revoke/current",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=30,
    )
    assert signed_out.status_code == 200, signed_out.text
    assert verifier.verify(tokens["access_token"], introspect=False).client_id == client_id
    assert rejected(verifier, tokens["access_token"]).reason == "inactive"
    other_api = TokenVerifier(world.issuer, "other-api")
    assert rejected(other_api, tokens["access_token"]).reason == "aud"


def test_a_pitpass_key_rotation_is_picked_up_by_the_same_verifier(tmp_path: Path) -> None:
    """`pitpass keys rotate` beside a running server: its JWKS publishes the new key at
    once. A second instance on the same database (production runs several) signs with it
    from its start (the first would after its next key reload, up to 30 s later). The
    verifier made before the rotation verifies tokens of both keys."""
    with running_world(tmp_path / "first") as world:
        client_id, secret, email = password_client(world)
        # Looks again at most once a second (default 10 s: the second instance may start
        # faster than that, and then the new kid would be refused until the interval ends).
        verifier = TokenVerifier(world.issuer, "data-server", min_refetch_interval=1.0)
        before = password_grant(world, client_id, secret, email)
        assert verifier.verify(before["access_token"]).client_id == client_id
        old_kid = kid_of(before["access_token"])
        rotated = world.server.pitpass("keys", "rotate", "--json")
        assert rotated.returncode == 0, rotated.stderr
        new_kid = json.loads(rotated.stdout)["kid"]
        assert new_kid != old_kid
        shared = {k: v for k, v in world.server.env.items() if k.startswith("PITPASS_")}
        shared.pop("PITPASS_DATA_DIR")
        with live_server(tmp_path / "second", shared) as second:
            form = {
                "grant_type": "refresh_token",
                "client_id": client_id,
                "client_secret": mask(secret, client_id),
                "refresh_token": before["refresh_token"],
            }
            answer = httpx.post(f"{second.base_url}/oauth2/token", data=form, timeout=30)
            assert answer.status_code == 200, answer.text
        after = answer.json()["access_token"]
        assert kid_of(after) == new_kid
        fetches = verifier.jwks.fetches
        verified = verifier.verify(after, scopes="iracing.auth")
        assert verified.key_id == new_kid and verified.claims["iss"] == world.issuer
        assert verifier.jwks.fetches == fetches + 1  # the unknown kid made it look again
        assert verifier.verify(before["access_token"]).key_id == old_kid  # still published
