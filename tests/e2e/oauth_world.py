"""A running Pitpass with members and clients, driven over real HTTP like a client would."""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from pitpass.core.masking import mask_secret
from pitpass.db.models import Member
from tests.support import LiveServer, Mailbox, live_server, smtp_env, smtp_server

STAFF = "staff@example.com"
PASSWORD = "a sturdy test password"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
CALLBACK = "https://app.example/callback"
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636 appendix B
CHROME_ON_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
# One counter for the shared server: every test's members and clients get new names.
NAMES = itertools.count(1)


@dataclass
class World:
    server: LiveServer
    mailbox: Mailbox

    @property
    def base(self) -> str:
        return self.server.base_url

    @property
    def issuer(self) -> str:
        return f"{self.base}/oauth2"

    def member(self, email: str, *, staff: bool = False, name: str | None = None) -> Member:
        """A member with PASSWORD, made in-process (tests/support.py's Provisioner)."""
        return self.server.provision.member(email, PASSWORD, staff=staff, name=name)

    def client(
        self,
        name: str,
        client_type: str = "server-side",
        flows: tuple[str, ...] = ("authorization_code",),
        redirect_uris: tuple[str, ...] = (CALLBACK,),
        audiences: tuple[str, ...] = ("data-server",),
    ) -> tuple[str, str | None]:
        """A client issued by staff: (client_id, plaintext secret or None)."""
        return self.server.provision.client(
            STAFF, name, client_type, flows, redirect_uris, audiences
        )

    def allow(self, client_id: str, email: str) -> None:
        """Staff put `email` on the access list of a password_limited client."""
        self.server.provision.add_to_access_list(client_id, email, STAFF)

    def disable(self, client_id: str) -> None:
        self.server.provision.disable_client(client_id, STAFF)

    def browser(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, follow_redirects=False, timeout=30)

    def sign_in(
        self,
        browser: httpx.Client,
        email: str,
        next_path: str = "/account",
        verify: bool = False,
        remember: bool = False,
        again: bool = False,
        password: str = PASSWORD,
    ) -> httpx.Response:
        """Password, then the emailed code; returns the redirect to `next_path`. `again`:
        the sign-in form an app asked for (OpenID Connect prompt=login or max_age)."""
        sent = self.mailbox.count_for(email)
        flag = ({"verify": "1"} if verify else {}) | ({"again": "1"} if again else {})
        page = browser.get("/signin", params={"next": next_path} | flag)
        csrf = CSRF_FIELD.search(page.text)
        assert csrf
        started = browser.post(
            "/signin",
            data={
                "csrf_token": csrf.group(1),
                "email": email,
                "password": password,
                "next": next_path,
            }
            | flag,
        )
        assert started.status_code == 303, started.text
        if started.headers["location"] != "/signin/code":
            return started  # a remembered browser
        code = self.mailbox.code_for(email, sent + 1)
        page = browser.get("/signin/code")
        csrf = CSRF_FIELD.search(page.text)
        assert csrf
        fields = {"csrf_token": csrf.group(1), "code": code} | (
            {"remember": "1"} if remember else {}
        )
        done = browser.post("/signin/code", data=fields)
        assert done.status_code == 303, done.text
        return done

    def consent(
        self, browser: httpx.Client, page: httpx.Response, decision: str = "approve"
    ) -> httpx.Response:
        fields = dict(
            re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
        )
        fields = {k: _unescape(v) for k, v in fields.items()}
        return browser.post("/oauth2/authorize", data=fields | {"decision": decision})

    def authorization_code(
        self, browser: httpx.Client, client_id: str, **params: str
    ) -> dict[str, list[str]]:
        """Through /authorize (consenting if asked); the redirect's query parameters."""
        query = {"client_id": client_id, "redirect_uri": CALLBACK, "response_type": "code"} | params
        response = browser.get("/oauth2/authorize", params=query)
        if response.status_code == 200 and "decision" in response.text:
            response = self.consent(browser, response)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        return parse_qs(urlsplit(location).query)

    def token(self, **form: str) -> httpx.Response:
        return httpx.post(f"{self.issuer}/token", data=form, timeout=30)


def masked(secret: str | None, identifier: str) -> str:
    assert secret is not None
    return mask_secret(secret, identifier)


def _unescape(value: str) -> str:
    return (
        value.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", '"')
        .replace("&#39;", "'")
        .replace("&quot;", '"')
    )


@contextmanager
def running_world(tmp_path: Path, **extra_env: str) -> Iterator[World]:
    with (
        smtp_server() as (mailbox, port),
        live_server(tmp_path, smtp_env(port) | extra_env) as server,
    ):
        world = World(server, mailbox)
        world.member(STAFF, staff=True)
        yield world


def claims_of(access_token: str) -> dict[str, Any]:
    payload = access_token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def fresh(world: World, **client: object) -> tuple[str, str | None, str, httpx.Client]:
    """A new member, signed in in a new browser, and a new client."""
    n = next(NAMES)
    email = f"member{n}@example.com"
    world.member(email)
    client_id, secret = world.client(f"Test Client {n}", **client)  # type: ignore[arg-type]
    browser = world.browser()
    world.sign_in(browser, email)
    return client_id, secret, email, browser


def redeem(
    world: World, client_id: str, secret: str | None, code: str, **extra: str
) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": client_id,
        "code": code,
        "redirect_uri": CALLBACK,
    } | extra
    if secret:
        form["client_secret"] = masked(secret, client_id)
    return world.token(**form)


def two_sessions_in_chrome(world: World) -> tuple[str, httpx.Client, list[Any]]:
    """A member signed in with Chrome on Linux who authorized a new client twice:
    (client_id, browser, the two token responses)."""
    client_id, secret, _e, browser = fresh(world)
    browser.headers["User-Agent"] = CHROME_ON_LINUX
    tokens = [
        redeem(
            world, client_id, secret, world.authorization_code(browser, client_id)["code"][0]
        ).json()
        for _ in range(2)
    ]
    return client_id, browser, tokens


def expect_error(response: httpx.Response, error: str, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert body["status"] == status
    assert body["error_uri"].endswith(f"/book/errors.html#{error}")
    assert body["error_description"]
    assert response.headers["x-request-id"]  # on every response, fast path included
    assert response.headers["cache-control"] == "no-store"
    return dict(body)
