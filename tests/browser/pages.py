"""Every page of Pitpass, as the page-wide tests visit it (issue #12, acceptance).

`PAGES` is the one list of (role, path) the accessibility and layout tests walk; a new
page is one more line. Paths may name the world's objects with `{client}`,
`{other_client}`, `{request}`, `{change}`, `{sent_back}`, `{authorize}`,
`{authorize_signed_out}` and `{signup_for_app}`. A `Visit` with `post` fields submits a
form from `start` (with that page's CSRF token) and checks the page that answers, e.g. a
confirmation step.

`world` builds one populated server per test module: a member with a consent, a developer
(with a long email) owning an approved client with long redirect URIs, a pending request, a
change request and a request sent back, and staff; one browser context per role, reused.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route

from pitpass.book.render import chapters
from pitpass.core.masking import mask_secret
from pitpass.core.pkce import s256
from pitpass.services import members as members_service
from pitpass.services import workflow
from pitpass.services.client_details import ClientDetails
from pitpass.services.clients import by_client_id
from tests.support import LiveServer, Mailbox, live_server, smtp_env, smtp_server

PASSWORD = "a sturdy test password"
STAFF = "staff@example.com"
MEMBER = "mina@example.com"
CODER = "cody@example.com"  # only ever stops at the code step
FORGETFUL = "fern@example.com"  # asks for a reset link
# Long words with no break opportunity: they must wrap, not widen the page.
DEVELOPER = "a-very-long-developer-address-for-wrapping@an-exceptionally-long-subdomain.example.com"
LONG_URI = (
    "https://a-rather-long-subdomain-name-for-wrapping-tests.callback.example.com"
    "/oauth/callback/with/a/very/long/path/that/never/breaks"
)
CALLBACK = "https://app.example/callback"
SIGNED_OUT, MEMBER_ROLE, DEVELOPER_ROLE, STAFF_ROLE = "signed-out", "member", "developer", "staff"
ROLES = (SIGNED_OUT, MEMBER_ROLE, DEVELOPER_ROLE, STAFF_ROLE)
VERIFIER = "v" * 43


@dataclass(frozen=True)
class Visit:
    role: str
    path: str
    post: dict[str, str] | None = None  # submit these fields to `path` from `start`
    start: str = "/account"
    status: int = 200

    @property
    def id(self) -> str:
        how = "POST " if self.post is not None else ""
        return f"{self.role}:{how}{self.path}"


SIGNED_IN_PAGES = ("/account", "/account/apps")
ACCOUNT_SETTINGS = ("/account/security", "/account/two-step", "/account/delete")

PAGES: list[Visit] = [
    # signed out
    *(
        Visit(SIGNED_OUT, path)
        for path in (
            "/signin",
            "/signup",
            "/signin?next=/portal",
            "{authorize_signed_out}",  # the sign-in page "to continue to" an app
            "{signup_for_app}",
            "/signin/forgot",
            "/signin/forgot/sent",
            "{reset}",  # a live reset link's form
        )
    ),
    Visit(SIGNED_OUT, "/signin/reset?token=not-a-reset-token", status=404),
    # the code step: a sign-in's password, posted as the sign-in form does
    Visit(SIGNED_OUT, "/signin", post={"email": CODER, "password": PASSWORD}, start="/signin"),
    Visit(SIGNED_OUT, "/no-such-page", status=404),
    Visit(SIGNED_OUT, "/oauth2/book/"),
    *(Visit(SIGNED_OUT, f"/oauth2/book/{chapter}.html") for chapter in chapters()),
    # a member
    *(Visit(MEMBER_ROLE, path) for path in SIGNED_IN_PAGES),
    Visit(MEMBER_ROLE, "{authorize}"),  # consent, for a client by the long-email developer
    Visit(MEMBER_ROLE, "/oauth2/book/"),
    Visit(MEMBER_ROLE, "/account/apps/{client}/withdraw", post={}, start="/account/apps"),
    Visit(MEMBER_ROLE, "/portal"),
    *(Visit(MEMBER_ROLE, path) for path in ACCOUNT_SETTINGS),
    Visit(
        MEMBER_ROLE,
        "/account/two-step/start",  # the QR code and key
        post={"password": PASSWORD},
        start="/account/two-step",
    ),
    Visit(
        MEMBER_ROLE,
        "/account/security/email",  # the new address's code step
        post={"new_email": "mina.new@example.com", "current_password": PASSWORD},
        start="/account/security",
    ),
    # a developer: a client, requests in every state
    *(Visit(DEVELOPER_ROLE, path) for path in SIGNED_IN_PAGES),
    *(
        Visit(DEVELOPER_ROLE, path)
        for path in (
            "/portal",
            "/portal/requests/new",
            "/portal/requests/{request}",
            "/portal/requests/{change}",
            "/portal/requests/{sent_back}",
            "/portal/clients/{client}",
            "/portal/clients/{client}/change",
        )
    ),
    # staff
    *(Visit(STAFF_ROLE, path) for path in SIGNED_IN_PAGES),
    *(
        Visit(STAFF_ROLE, path)
        for path in (
            "/console",
            "/console/requests",
            "/console/requests/{request}",
            "/console/requests/{change}",
            "/console/requests/{sent_back}",
            "/console/clients",
            "/console/clients/{client}",
            "/console/members",
            "/console/members?q=mina",
            "{member_page}",
            "/console/mail",
            "/console/audit",
        )
    ),
]


@dataclass
class World:
    server: LiveServer
    mailbox: Mailbox
    contexts: dict[str, BrowserContext]
    names: dict[str, str] = field(default_factory=dict)
    seconds_to_build: float = 0.0

    def url(self, visit: Visit) -> str:
        return visit.path.format(**self.names)

    def open(self, visit: Visit, width: int = 1280) -> Page:
        """A page of the visit's role showing the visit's page, `width` px wide."""
        page = self.contexts[visit.role].new_page()
        page.set_viewport_size({"width": width, "height": 900})
        if visit.post is None:
            response = page.goto(self.url(visit))
        else:
            page.goto(visit.start)
            with page.expect_navigation() as navigation:
                page.evaluate(_SUBMIT, [self.url(visit), visit.post])
            response = navigation.value
        assert response is not None
        assert response.status == visit.status, f"{visit.id} answered {response.status}"
        return page


# Posts `fields` (and the page's own CSRF token) to `action`, as a form on the page would.
_SUBMIT = """([action, fields]) => {
  const form = document.createElement("form");
  form.method = "post";
  form.action = action;
  const token = document.querySelector("input[name=csrf_token]").value;
  for (const [name, value] of Object.entries({...fields, csrf_token: token})) {
    const input = document.createElement("input");
    input.type = "hidden"; input.name = name; input.value = value;
    form.appendChild(input);
  }
  document.body.appendChild(form);
  form.submit();
}"""


def authorize_path(client_id: str, redirect_uri: str) -> str:
    return "/oauth2/authorize?" + urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "iracing.auth iracing.profile",
            "state": "page-tests",
            "code_challenge": s256(VERIFIER),
            "code_challenge_method": "S256",
        }
    )


def _sign_in(browser: Browser, server: LiveServer, mailbox: Mailbox, email: str) -> BrowserContext:
    context = browser.new_context(base_url=server.base_url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    sent_before = mailbox.count_for(email)
    page.goto("/signin")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("Code").fill(mailbox.code_for(email, sent_before + 1))
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/account")
    page.close()
    return context


def _populate(server: LiveServer) -> dict[str, str]:
    provision = server.provision
    provision.member(STAFF, PASSWORD, staff=True)
    mina = provision.member(MEMBER, PASSWORD, name="Mina")
    provision.member(CODER, PASSWORD, name="Cody")
    provision.member(FORGETFUL, PASSWORD, name="Fern")
    provision.member(DEVELOPER, PASSWORD, name="Devon")
    developer = {
        "developer_name": "Devon's Very Long Company Name Limited",
        "developer_url": "https://" + "a-long-developer-website-name.example.com",
        "developer_email": DEVELOPER,
    }
    client, secret = provision.client(
        STAFF,
        "Lap Timer",
        "server-side",
        flows=("authorization_code",),
        redirect_uris=(CALLBACK, LONG_URI),
        audiences=("data-server",),
        **developer,
    )
    other_client, _ = provision.client(
        STAFF, "Race Planner", "server-side", redirect_uris=(LONG_URI,), **developer
    )
    context = provision.context
    with context.session() as db:
        dev = members_service.find_by_email(db, DEVELOPER)
        staff = members_service.find_by_email(db, STAFF)
        assert dev is not None and staff is not None
        details = ClientDetails(
            client_name="Setup Sharer",
            client_type="single-page-app",
            flows=["authorization_code"],
            description="Shares car setups between team mates. " * 4,
            redirect_uris=[LONG_URI, "https://setups.example/callback"],
            **developer,
        )
        pending, _ = workflow.submit(context, db, dev, details)
        sent_back, _ = workflow.submit(context, db, dev, details)
        workflow.decide(
            context, db, sent_back, staff, "request-changes", "Please name the team app."
        )
        live = by_client_id(db, client)
        assert live is not None
        change_details = ClientDetails(
            client_name="Lap Timer",
            client_type="server-side",
            flows=["authorization_code"],
            description="Now with sector times.",
            redirect_uris=[CALLBACK, LONG_URI, "https://app.example/callback2"],
            audiences=["data-server"],
            **developer,
        )
        changing, _ = workflow.submit(context, db, dev, change_details, changing=live)
        names = {
            "client": client,
            "other_client": other_client,
            "request": str(pending.id),
            "sent_back": str(sent_back.id),
            "change": str(changing.id),
            "secret": secret or "",
            "member_page": f"/console/members/{mina.id}",
        }
    names["authorize"] = authorize_path(other_client, LONG_URI)
    names["authorize_signed_out"] = authorize_path(client, CALLBACK)
    names["signup_for_app"] = "/signup?" + urlencode(
        {"next": authorize_path(other_client, LONG_URI)}
    )
    return names


def _reset_link(world: World) -> str:
    """A live reset link, asked for on the forgot page as the member would."""
    page = world.contexts[SIGNED_OUT].new_page()
    page.goto("/signin/forgot")
    page.get_by_label("Email").fill(FORGETFUL)
    page.get_by_role("button", name=re.compile("link", re.I)).click()
    page.wait_for_url("**/signin/forgot/sent**")
    page.close()
    link = world.mailbox.wait_for_match(FORGETFUL, r"(/signin/reset\?token=[\w.-]+)")
    return link.group(1)


def _consent(world: World) -> None:
    """The member allows Lap Timer in the browser; its backend redeems the code, refreshes."""
    page = world.contexts[MEMBER_ROLE].new_page()
    landed: list[str] = []

    def catch(route: Route) -> None:
        landed.append(route.request.url)
        route.fulfill(status=200, body="done")

    page.route(re.compile(r"^https://app\.example/.*"), catch)
    page.goto(authorize_path(world.names["client"], CALLBACK))
    page.get_by_role("button", name="Allow").click()
    page.wait_for_url(re.compile(r"^https://app\.example/callback\?"))
    page.close()
    code = re.search(r"[?&]code=([^&]+)", landed[0])
    assert code is not None
    client = world.names["client"]
    answer = httpx.post(
        f"{world.server.base_url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "code": code.group(1),
            "redirect_uri": CALLBACK,
            "code_verifier": VERIFIER,
            "client_id": client,
            "client_secret": mask_secret(world.names["secret"], client),
        },
        headers={"User-Agent": "curl/8.5.0"},
    )
    assert answer.status_code == 200, answer.text
    # A refresh touches the session: its last user agent is now the app's server.
    refreshed = httpx.post(
        f"{world.server.base_url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": answer.json()["refresh_token"],
            "client_id": client,
            "client_secret": mask_secret(world.names["secret"], client),
        },
        headers={"User-Agent": "curl/8.5.0"},
    )
    assert refreshed.status_code == 200, refreshed.text


@pytest.fixture(scope="module")
def world(chromium: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    started = time.monotonic()
    workdir: Path = tmp_path_factory.mktemp("pages")
    with smtp_server() as (mailbox, port), live_server(workdir, smtp_env(port)) as server:
        names = _populate(server)
        contexts = {SIGNED_OUT: chromium.new_context(base_url=server.base_url)}
        for role, email in (
            (MEMBER_ROLE, MEMBER),
            (DEVELOPER_ROLE, DEVELOPER),
            (STAFF_ROLE, STAFF),
        ):
            contexts[role] = _sign_in(chromium, server, mailbox, email)
        built = World(server, mailbox, contexts, names)
        _consent(built)
        built.names["reset"] = _reset_link(built)
        built.seconds_to_build = time.monotonic() - started
        print(f"\npage world built in {built.seconds_to_build:.1f}s")
        yield built
        for context in contexts.values():
            context.close()
