"""Hypothesis over every other route (issue #11, Deliver 2): the sign-in, account, portal
and console pages, the developer book, health checks and the API docs, as an anonymous
visitor, a developer and a staff member, in-process on SQLite.

Each page gets its path parameters (real ids and names, or hostile ones: past int4, NUL,
any text), query parameters and form fields of the pages' forms with real or hostile
values, and (mostly) the caller's own CSRF token so the handlers go past the check.
The assertion: never a 5xx; and every such route is reached at least once.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import hypothesis
from fastapi.testclient import TestClient
from hypothesis import strategies as st

from tests.conftest import Site
from tests.fuzz.harness import (
    DEVELOPER,
    FUZZ_SETTINGS,
    Caller,
    Recorder,
    assert_not_server_error,
    callers,
    owner_of,
    recorder_for,
    route_table,
)
from tests.integration.test_api import LEAGUE

EXAMPLES_PER_CALLER = 2
PATH_PARAMETER = re.compile(r"{([a-z_]+)}")
# The fields of the pages' forms (web/templates) and the pages' query parameters.
FIELDS = [
    "message",
    "member_reference",
    "flows",
    "decision",
    "verify",
    "until",
    "since",
    "target",
    "actor",
    "action",
    "remember",
    "redirect_uris",
    "password",
    "next",
    "email",
    "developer_url",
    "developer_name",
    "developer_email",
    "description",
    "code",
    "client_type",
    "client_name",
    "audiences",
    "page",
    "show",
    "template",
    "forgotten",
    "signed_out",
    "password_again",
    "current_password",
    "new_password",
    "new_password_again",
    "new_email",
    "q",
    "reason",
]
HOSTILE = [
    "",
    "0",
    "-1",
    "2147483648",
    "9" * 30,
    "\x00",
    "a\x00b",
    "é",
    "😀",
    "..",
    "%2e%2e",
    "x" * 3000,
    "null",
]


def hostile_value() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30))


def known_values(site: Site, developer: Caller, staff: Caller) -> dict[str, list[str]]:
    """A request, an approved client with the developer invited to its access list, and
    the closed sets the pages take (answers, actions, decisions, book pages)."""
    dev = {"X-CSRF-Token": developer.csrf or ""}
    tool = LEAGUE | {"client_name": "Paged Tool", "grant_types": ["password_limited"]}
    tool |= {"redirect_uris": []}
    first = developer.browser.post("/api/v1/requests", json=tool, headers=dev).json()["id"]
    client_id = staff.browser.post(
        f"/api/v1/staff/requests/{first}/approve", json={}, headers={"X-CSRF-Token": staff.csrf}
    ).json()["client_id"]
    pending = developer.browser.post("/api/v1/requests", json=LEAGUE, headers=dev).json()["id"]
    staff.browser.post(
        f"/api/v1/staff/clients/{client_id}/access-list",
        json={"member": DEVELOPER},
        headers={"X-CSRF-Token": staff.csrf},
    )
    book = site.app.state.context.settings.issuer_path.rstrip("/")
    assert book
    return {
        "request_id": [str(first), str(pending)],
        "client_id": [client_id],
        "entry_id": ["1", "2", "3"],
        "member_id": ["1", "2"],
        "session_id": ["00000000-0000-0000-0000-000000000000"],
        "answer": ["accept", "decline"],
        "action": [
            *("disable", "enable", "access-add", "access-remove", "disconnect", "withdraw"),
            *("grant-staff", "remove-staff"),
        ],
        "decision": ["approve", "reject", "request-changes"],
        "page": ["1", "2", "errors.html", "index.html", "token_endpoint.html"],
        "token": ["x" * 43],
        "email": [DEVELOPER],
        "member_reference": [DEVELOPER, "100001"],
        "client_name": ["Paged Again"],
        "client_type": ["server-side", "native"],
        "flows": ["authorization_code", "password_limited"],
        "redirect_uris": ["https://paged.example/cb"],
        "show": ["open", "all"],
        "message": ["Thanks"],
    }


class PageDraws:
    def __init__(self, draw: st.DrawFn, known: dict[str, list[str]]) -> None:
        self.draw = draw
        self.known = known
        self.rnd = random.Random(draw(st.integers(0, 2**64)))

    def value(self, name: str) -> str:
        real = self.known.get(name)
        if real and self.rnd.random() < 0.7:
            return self.rnd.choice(real)
        return self.draw(hostile_value())

    def fields(self) -> list[tuple[str, str]]:
        names = self.rnd.sample(FIELDS, self.rnd.randint(0, 4))
        return [(name, self.value(name)) for name in names]


def _path(template: str, draws: PageDraws) -> str:
    return PATH_PARAMETER.sub(lambda m: quote(draws.value(m.group(1)), safe=""), template)


# Ids past int4 (PostgreSQL's integer) and past int64 (SQLite's): a 404, never a 500.
BOUNDARY_INTEGERS = [str(2**31), str(10**23)]
INTEGER_PARAMETERS = {"request_id", "entry_id", "member_id", "page"}


def boundary_requests(
    caller: Caller, name: str, csrf: dict[str, str], known: dict[str, list[str]]
) -> None:
    """Sent on every run, whatever the generated requests happen to try: every integer
    parameter (path, and `page` in the query) at a boundary, the others real; then every
    field of the forms (or query) with a NUL byte, which PostgreSQL refuses in text."""
    method, template = name.split(" ", 1)
    for value in BOUNDARY_INTEGERS:
        path = PATH_PARAMETER.sub(
            lambda m, v=value: v if m.group(1) in INTEGER_PARAMETERS else known[m.group(1)][0],
            template,
        )
        if method == "GET":
            response = caller.browser.get(path, params={"page": value})
        else:
            response = caller.browser.request(method, path, data={"csrf_token": csrf[caller.name]})
        assert_not_server_error(response)
    path = PATH_PARAMETER.sub(lambda m: known[m.group(1)][0], template)
    nul = {field: "a\x00b" for field in FIELDS}
    if method == "GET":
        response = caller.browser.get(path, params=nul)
    else:
        response = caller.browser.request(
            method, path, data=nul | {"csrf_token": csrf[caller.name]}
        )
    assert_not_server_error(response)


def fuzz_route_as(
    caller: Caller, name: str, csrf: dict[str, str], known: dict[str, list[str]]
) -> None:
    """EXAMPLES_PER_CALLER requests to one route ("METHOD /path") as one caller."""
    method, template = name.split(" ", 1)

    @hypothesis.settings(FUZZ_SETTINGS, max_examples=EXAMPLES_PER_CALLER)
    @hypothesis.given(data=st.data())
    def one_request(data: st.DataObject) -> None:
        draws = data.draw(st.composite(lambda draw: PageDraws(draw, known))())
        path, fields = _path(template, draws), draws.fields()
        browser: TestClient = caller.browser
        if method == "GET":
            response = browser.get(path, params=fields)
        else:
            if draws.rnd.random() < 0.85:  # the caller's own token: past the CSRF check
                fields = [("csrf_token", csrf[caller.name]), *fields]
            response = browser.request(method, path, data=dict(fields))
        assert_not_server_error(response)

    one_request()


def _csrf_of(site: Site, caller: Caller) -> str:
    cookie = caller.browser.cookies.get("pitpass_csrf")
    if cookie is None:
        caller.browser.get("/signin")
        cookie = caller.browser.cookies.get("pitpass_csrf")
    assert cookie
    token: str = site.context.keyring.csrf_token_for(cookie)
    return token


@dataclass
class PagesFuzzer:
    people: list[Caller]
    csrf: dict[str, str]
    known: dict[str, list[str]]
    names: list[str]  # the routes this fuzzer owns, "METHOD /path"

    def run(self, only: Callable[[str], bool] = lambda _n: True, generated: bool = True) -> None:
        for name in self.names:
            if only(name):
                for caller in self.people:
                    boundary_requests(caller, name, self.csrf, self.known)
                    if generated:
                        fuzz_route_as(caller, name, self.csrf, self.known)


def prepare_pages_fuzzer(site: Site, recorder: Recorder) -> PagesFuzzer:
    people = callers(site, recorder)
    _anonymous, developer, staff = people
    known = known_values(site, developer, staff)
    csrf = {caller.name: _csrf_of(site, caller) for caller in people}
    names = sorted(name for name in route_table(site.app).values() if owner_of(name) == "pages")
    # Signing out last: the callers stay signed in for every other page.
    names.sort(key=lambda name: name == "POST /signout")
    return PagesFuzzer(people, csrf, known, names)


def test_hypothesis_over_every_page(sqlite_site: Site) -> None:
    recorder = recorder_for(sqlite_site)
    prepare_pages_fuzzer(sqlite_site, recorder).run()
    missed = recorder.missed(route_table(sqlite_site.app), "pages")
    assert not missed, f"the pages fuzzer never reached: {missed}"


def test_boundaries_of_the_pages_on_postgresql(postgresql_site: Site) -> None:
    """Ids past int4 and NUL bytes fail on PostgreSQL only (issue #11, item 6): the
    boundary requests alone (the SQLite run above sends them too)."""
    site = postgresql_site
    prepare_pages_fuzzer(site, recorder_for(site)).run(generated=False)
