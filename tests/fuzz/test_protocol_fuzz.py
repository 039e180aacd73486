"""Hypothesis over every protocol endpoint's parameters (issue #11, Deliver 2).

Each request mixes values that exist (a client and its masked secret, a member and the
masked password, live codes and tokens) with hostile ones: any text, NUL bytes, invalid
UTF-8 percent escapes and raw bytes, values past the body limit, ids past int4, repeated
parameters, odd content types and odd Authorization headers (Basic and Bearer). The
assertion: never a 5xx, and every error in PRODUCT.md §4's shape with an error of
core/policy.ERRORS. Sent through ProtocolFastPath, the ASGI entry `pitpass serve` runs.

On SQLite every protocol route is fuzzed (and the test checks each was reached); the
most exposed ones (token, introspect, revoke, authorize) also on PostgreSQL, where NUL
bytes and int4 overflow fail first.
"""

from __future__ import annotations

import base64
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote, quote_from_bytes, quote_plus, urlencode

import hypothesis
from fastapi.testclient import TestClient
from hypothesis import strategies as st

from pitpass.app import ProtocolFastPath
from pitpass.core.masking import mask_secret
from pitpass.core.policy import GRANT_TYPES
from pitpass.db.models import AuthorizationCode, utcnow
from pitpass.services import clients as clients_service
from tests.conftest import GOOD_PASSWORD, Site
from tests.fuzz.harness import (
    FUZZ_SETTINGS,
    STAFF,
    Recorder,
    assert_not_server_error,
    assert_protocol_answer,
    recorder_for,
    route_table,
)
from tests.support import Backend, Provisioner

CALLBACK = "https://app.example/cb"
MEMBER = "fuzz-member@example.com"
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 16 * 1024  # oauth/requests.MAX_BODY


@dataclass
class Known:
    """Real values for each parameter, so fuzzed requests also get past the first check."""

    values: dict[str, list[str]]
    basic: str  # the confidential client's HTTP Basic credentials
    member: TestClient  # a browser signed in as MEMBER
    renew: Callable[[], None]  # fresh codes, tokens and session (the fuzzing spends them)
    access_token: str = ""


HOSTILE = [
    "",
    "\x00",
    "a\x00b",
    " ",
    "2147483648",
    "-1",
    "9" * 40,
    "é",
    "😀",
    "%",
    "a b+c",
    "x" * 3000,
    "\r\nX-Injected: 1",
    "\u2026",  # the "…" that WWW-Authenticate could not carry (issue #11, item 1)
    "null",
    "[]",
    CALLBACK + "/",
    CALLBACK + "#",
    "http://127.0.0.1:1/cb",
]
# Percent escapes that are not UTF-8 once decoded, and a NUL (issue #11, items 6 and 10).
RAW_ESCAPES = ["%ff", "%c3%28", "%00", "%e2%82", "%fe%ff", "%80abc"]


CONTENT_TYPES = [
    f"{FORM}; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/json",
    "text/plain",
    "multipart/form-data; boundary=x",
    "",
    None,
]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    shapes: tuple[tuple[str, ...], ...]  # the parameter sets a real request sends
    examples: int
    in_query: bool = False
    client_auth: bool = False  # the client authenticates (body or HTTP Basic)
    bearer: bool = False


TOKEN = Endpoint(
    "POST",
    "/oauth2/token",
    (
        ("grant_type", "code", "redirect_uri", "code_verifier"),
        ("grant_type", "refresh_token", "scope"),
        ("grant_type", "username", "password", "scope"),
    ),
    90,
    client_auth=True,
)
TOKEN_CHECK = (("token", "token_type_hint"),)
INTROSPECT = Endpoint("POST", "/oauth2/introspect", TOKEN_CHECK, 35, client_auth=True)
REVOKE = Endpoint("POST", "/oauth2/revoke", TOKEN_CHECK, 35, client_auth=True)
AUTHORIZE_NAMES = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "pitpass_verified_after",
    # OpenID Connect (issue #13, item 3)
    "nonce",
    "max_age",
    "pitpass_signed_in_after",
    "request",
)
AUTHORIZE = Endpoint("GET", "/oauth2/authorize", (AUTHORIZE_NAMES,), 40, in_query=True)
CONSENT = Endpoint("POST", "/oauth2/authorize", ((*AUTHORIZE_NAMES, "csrf_token", "decision"),), 35)
CORE = [TOKEN, INTROSPECT, REVOKE, AUTHORIZE, CONSENT]
MEMBER_ENDPOINTS = [
    Endpoint("POST", "/oauth2/revoke/current", (("forget_browser",),), 15, bearer=True),
    Endpoint("POST", "/oauth2/revoke/sessions", (("session_ids",),), 15, bearer=True),
    Endpoint("POST", "/oauth2/revoke/client", (), 12, bearer=True),
    Endpoint("GET", "/oauth2/iracing/profile", (), 12, in_query=True, bearer=True),
    Endpoint("GET", "/oauth2/sessions", (), 12, in_query=True, bearer=True),
    Endpoint("GET", "/oauth2/jwks", (), 8, in_query=True),
    Endpoint("GET", "/oauth2/userinfo", (), 12, in_query=True, bearer=True),
    Endpoint("POST", "/oauth2/userinfo", (("access_token",),), 12, bearer=True),
    Endpoint("GET", "/oauth2/.well-known/openid-configuration", (), 8, in_query=True),
    Endpoint("GET", "/.well-known/oauth-authorization-server/oauth2", (), 8, in_query=True),
    Endpoint("GET", "/oauth2/.well-known/oauth-authorization-server", (), 8, in_query=True),
]


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    url: str
    body: bytes
    headers: dict[str, bytes]
    signed_in: bool


def hostile_value() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))


HOSTILE_AUTHORIZATIONS = [
    b"Basic",
    b"Basic !!!",
    b"Basic " + base64.b64encode(b"\xff\xfe:\xe9"),
    b"Basic " + base64.b64encode("cl\u00e9:s\u00e9".encode()),
    b"Basic " + base64.b64encode(b"a\x00:b"),
    b"Basic \xe9\xe9",
    b"Bearer",
    b"Bearer ",
    b"bearer  x",
    b"Bearer abc.def.ghi",
    b"Bearer \xe9",
    b"Bearer " + b"a" * 5000,
    b"Negotiate x",
    b"",
]
PERTURBATIONS = ["repeat", "unknown", "escapes", "bytes", "huge"]
OTHER_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


class Draws:
    """One request's choices. Which shape, value or perturbation is picked comes from a
    Random that Hypothesis seeds (so the mix stays as weighted, and repeatable); the
    hostile values themselves come from Hypothesis's own strategies."""

    def __init__(self, draw: st.DrawFn, known: Known) -> None:
        self.draw = draw
        self.known = known
        # A seeded Random, not st.randoms(): its draws would lean to the first choices.
        self.rnd = random.Random(draw(st.integers(0, 2**64)))

    def chance(self, p: float) -> bool:
        return self.rnd.random() < p

    def value(self, name: str, hostile: bool = False) -> str:
        """A real value of the parameter, else (or when asked) a hostile one."""
        real = self.known.values.get(name)
        if real and not hostile:
            return self.rnd.choice(real)
        return self.draw(hostile_value())

    def pairs(self, endpoint: Endpoint) -> list[tuple[str, str]]:
        """One of the endpoint's request shapes, each parameter mostly present, and (most
        of the time) one of them hostile: one mutation at a time goes deepest."""
        shape = self.rnd.choice(endpoint.shapes) if endpoint.shapes else ()
        names = [name for name in shape if self.chance(0.9)]
        victim = self.rnd.choice(names) if names and self.chance(0.7) else None
        return [(name, self.value(name, hostile=name == victim)) for name in names]

    def encoded(self, pairs: list[tuple[str, str]]) -> bytes:
        """The pairs as a query string or form body, mostly well formed, else with one
        perturbation: a repeated or unknown parameter, raw non-UTF-8 escapes, arbitrary
        bytes, a body past the limit."""
        how = "none" if self.chance(0.6) else self.rnd.choice(PERTURBATIONS)
        if how == "bytes":
            return self.draw(st.binary(max_size=64))
        if how == "repeat" and pairs:
            pairs = [*pairs, (self.rnd.choice(pairs)[0], self.draw(hostile_value()))]
        if how == "unknown":
            pairs = [*pairs, (self.draw(st.text(max_size=8)), self.draw(hostile_value()))]
        text = urlencode(pairs)
        if how == "escapes":
            name = self.rnd.choice(pairs)[0] if pairs else "client_id"
            text += f"&{quote_plus(name)}={self.rnd.choice(RAW_ESCAPES)}"
        if how == "huge":
            text += "&padding=" + "x" * (MAX_BODY + 1)
        return text.encode()

    def authorization(self) -> bytes:
        """A broken Authorization header of any kind."""
        if self.chance(0.5):
            return self.rnd.choice(HOSTILE_AUTHORIZATIONS)
        scheme = self.rnd.choice([b"Basic ", b"Bearer "])
        if self.chance(0.5):  # credentials of any text, base64-encoded as RFC 7617 says
            joined = f"{self.draw(hostile_value())}:{self.draw(hostile_value())}".encode()
            return scheme + base64.b64encode(joined)
        return scheme + self.draw(hostile_value()).encode()

    def client_auth(self) -> tuple[list[tuple[str, str]], bytes | None]:
        """The client's credentials: in the body, with HTTP Basic, as a public client, or
        broken."""
        how = self.rnd.choice(["body", "body", "basic", "public", "broken"])
        if how == "body":
            return [
                ("client_id", self.value("client_id")),
                ("client_secret", self.value("client_secret")),
            ], None
        if how == "basic":
            return [], self.known.basic.encode()
        if how == "public":
            return [("client_id", self.rnd.choice(self.known.values["client_id"]))], None
        return [], self.authorization()

    def request(self, endpoint: Endpoint) -> FuzzRequest:
        method = endpoint.method if self.chance(0.85) else self.rnd.choice(OTHER_METHODS)
        pairs = self.pairs(endpoint)
        authorization: bytes | None = None
        if endpoint.client_auth:
            credentials, authorization = self.client_auth()
            pairs = credentials + pairs
        elif endpoint.bearer:
            bearer = f"Bearer {self.known.access_token}".encode()
            authorization = bearer if self.chance(0.6) else self.authorization()
        elif self.chance(0.3):
            authorization = self.authorization()
        headers = {} if authorization is None else {"authorization": authorization}
        payload = self.encoded(pairs)
        url, body = endpoint.path, b""
        if endpoint.in_query:
            url = f"{url}?{quote_from_bytes(payload, safe='=&%+')}"
        else:
            body = payload
            content_type = FORM if self.chance(0.85) else self.rnd.choice(CONTENT_TYPES)
            if content_type is not None:
                headers["content-type"] = content_type.encode()
        return FuzzRequest(method, url, body, headers, self.chance(0.7))


def requests_for(endpoint: Endpoint, known: Known) -> st.SearchStrategy[FuzzRequest]:
    return st.composite(lambda draw: Draws(draw, known).request(endpoint))()


def send(known: Known, anonymous: TestClient, request: FuzzRequest) -> None:
    browser = known.member if request.signed_in else anonymous
    response = browser.request(
        request.method, request.url, content=request.body, headers=request.headers
    )
    if request.method == "OPTIONS" or request.url.startswith("/oauth2/authorize"):
        # The consent form is a page: a wrong CSRF token gets the page's 403.
        assert_not_server_error(response)
        if response.headers.get("content-type", "").startswith("text/html"):
            return
    assert_protocol_answer(response)


# Sent on every run, whatever the generated requests happen to try: a NUL byte and an
# invalid UTF-8 escape in each parameter (PostgreSQL refuses NUL in text; issue #11, 6).
PROBES = ["a%00b", "%ff%fe"]


def probes(endpoint: Endpoint, known: Known) -> list[FuzzRequest]:
    """Each parameter of each shape in turn set to each probe, the others real, the
    client authenticated in the body, as the signed-in member; and the client_id probed
    inside HTTP Basic too."""
    found = []
    client = [("client_id", known.values["client_id"][0])]
    client += [("client_secret", known.values["client_secret"][0])]
    for shape in endpoint.shapes or ((),):
        names = [*shape, *(n for n, _ in client if endpoint.client_auth)]
        for name in names:
            pairs = [(n, known.values.get(n, ["x"])[0]) for n in shape]
            pairs = (client if endpoint.client_auth else []) + pairs
            for probe in PROBES:
                text = "&".join(
                    f"{quote_plus(n)}={probe if n == name else quote_plus(v)}" for n, v in pairs
                )
                found.append(probe_request(endpoint, text.encode(), {}))
    if endpoint.client_auth:
        secret = quote(known.values["client_secret"][0])
        for client_id in ("a\x00b", "cl\u00e9"):
            basic = base64.b64encode(f"{quote(client_id)}:{secret}".encode())
            raw = base64.b64encode(f"{client_id}:{secret}".encode())
            for credentials in (basic, raw):
                headers = {"authorization": b"Basic " + credentials}
                found.append(probe_request(endpoint, b"token=x&grant_type=refresh_token", headers))
    return found


def probe_request(endpoint: Endpoint, payload: bytes, headers: dict[str, bytes]) -> FuzzRequest:
    if endpoint.in_query:
        return FuzzRequest(
            endpoint.method, f"{endpoint.path}?{payload.decode()}", b"", headers, True
        )
    headers = headers | {"content-type": FORM.encode()}
    return FuzzRequest(endpoint.method, endpoint.path, payload, headers, True)


def fuzz_endpoint(endpoint: Endpoint, known: Known, anonymous: TestClient) -> None:
    """The probes, then endpoint.examples generated requests."""
    for request in probes(endpoint, known):
        send(known, anonymous, request)

    @hypothesis.settings(FUZZ_SETTINGS, max_examples=endpoint.examples)
    @hypothesis.given(request=requests_for(endpoint, known))
    def one_request(request: FuzzRequest) -> None:
        send(known, anonymous, request)

    one_request()


def _mint_codes(site: Site, client_id: str, member_id: int, count: int) -> list[str]:
    """Codes of an OpenID Connect request (so the grants sign ID tokens too), half of them
    with a nonce."""
    codes = []
    with site.context.session() as db:
        client = clients_service.by_client_id(db, client_id)
        assert client is not None
        for _ in range(count):
            code = secrets.token_urlsafe(24)
            db.add(
                AuthorizationCode(
                    code_hash=site.app.state.oauth.code_hash(code),
                    client_pk=client.id,
                    member_id=member_id,
                    session_id=str(uuid.uuid4()),
                    redirect_uri=CALLBACK,
                    scope="iracing.auth iracing.profile openid",
                    auth_time=utcnow(),
                    expires_at=utcnow() + timedelta(minutes=5),
                    nonce="fuzz-nonce" if len(codes) % 2 else None,
                )
            )
            codes.append(code)
    return codes


def known_world(site: Site, app: Any) -> Known:
    """A confidential and a public client, a member on the access list with a session of
    each, tokens and codes: the real values the fuzzers mix in."""
    site.add_member(STAFF, staff=True)
    member = site.add_member(MEMBER)
    provision = Provisioner(site.context)
    flows = ["authorization_code", "password_limited"]
    confidential, secret = provision.client(
        STAFF, "Fuzz Server", flows=flows, redirect_uris=[CALLBACK], developer_name="Dev"
    )
    public, _ = provision.client(
        STAFF, "Fuzz Native", "native", redirect_uris=[CALLBACK], developer_name="Dev"
    )
    provision.add_to_access_list(confidential, MEMBER, STAFF)
    assert secret
    masked = mask_secret(secret, confidential)
    basic = "Basic " + base64.b64encode(f"{quote(confidential)}:{quote(masked)}".encode()).decode()
    member_browser = TestClient(app, follow_redirects=False)
    site.sign_in(member_browser, MEMBER)
    consent = member_browser.get(
        "/oauth2/authorize",
        params={"client_id": confidential, "redirect_uri": CALLBACK, "response_type": "code"},
    )
    assert consent.status_code == 200, consent.text
    verifier = secrets.token_urlsafe(48)
    values = {
        "grant_type": [*GRANT_TYPES],
        "client_id": [confidential, public],
        "client_secret": [masked],
        "redirect_uri": [CALLBACK],
        "code_verifier": [verifier],
        "username": [MEMBER],
        "password": [mask_secret(GOOD_PASSWORD, MEMBER)],
        "scope": [
            "iracing.auth",
            "iracing.profile",
            "iracing.auth iracing.profile",
            "openid",
            "openid iracing.profile",
            "iracing.auth openid",
        ],
        "token_type_hint": ["access_token", "refresh_token"],
        "response_type": ["code"],
        "state": ["xyz"],
        "code_challenge": [verifier],
        "code_challenge_method": ["S256", "plain"],
        "prompt": ["", "login", "verify", "none", "consent", "none login"],
        "pitpass_verified_after": ["0", str(2**31), str(2**63)],
        "pitpass_signed_in_after": ["0", str(2**63)],
        "nonce": ["n-0S6_WzA2Mj", "x" * 300],
        "max_age": ["0", "3600", str(2**63)],
        "request": ["eyJhbGciOiJub25lIn0.e30."],
        "decision": ["approve", "deny"],
        "forget_browser": ["true", "false"],
        "csrf_token": [site.csrf_of(consent)],
    }
    issuer = TestClient(app)

    def renew() -> None:
        codes = _mint_codes(site, confidential, member.id, 6)
        tokens = issuer.post(
            "/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": codes.pop(),
                "redirect_uri": CALLBACK,
            },
            headers={"Authorization": basic},
        )
        assert tokens.status_code == 200, tokens.text
        access, refresh = tokens.json()["access_token"], tokens.json()["refresh_token"]
        sessions = issuer.get("/oauth2/sessions", headers={"Authorization": f"Bearer {access}"})
        session_id = sessions.json()["sessions"][0]["session_id"]
        known.access_token = access
        known.values |= {
            "code": codes,
            "refresh_token": [refresh],
            "token": [access, refresh],
            "session_ids": [session_id, f"{session_id},{session_id}", "1,2"],
        }

    known = Known(values, basic, member_browser, renew)
    return known


@dataclass
class ProtocolFuzzer:
    recorder: Recorder
    known: Known
    anonymous: TestClient

    def run(self, endpoints: list[Endpoint], only: Callable[[str], bool] = lambda _n: True) -> None:
        for endpoint in endpoints:
            if only(f"{endpoint.method} {endpoint.path}"):
                self.known.renew()
                fuzz_endpoint(endpoint, self.known, self.anonymous)


def prepare_protocol_fuzzer(site: Site) -> ProtocolFuzzer:
    """Requests go through ProtocolFastPath, the ASGI entry `pitpass serve` runs."""
    recorder = recorder_for(site, ProtocolFastPath(site.app))
    known = known_world(site, recorder)
    return ProtocolFuzzer(recorder, known, TestClient(recorder, follow_redirects=False))


def test_hypothesis_over_the_exposed_protocol_endpoints(site: Site, backend: Backend) -> None:
    """Token, introspect, revoke and authorize, on SQLite and on PostgreSQL + Redis; on
    SQLite also every other protocol route, each reached at least once."""
    everything = backend.name == "sqlite"
    fuzzer = prepare_protocol_fuzzer(site)
    fuzzer.run(CORE + MEMBER_ENDPOINTS if everything else CORE)
    if everything:
        missed = fuzzer.recorder.missed(route_table(site.app), "protocol")
        assert not missed, f"the protocol fuzzer never reached: {missed}"
