"""schemathesis over `/openapi.json` (issue #11, Deliver 2): every operation of the JSON API,
as an anonymous caller, a signed-in developer and a signed-in staff member, in-process on
SQLite. The assertion: no 5xx, and every answer conforms to the document (status codes,
content types, response schemas).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hypothesis
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks
from schemathesis.python.asgi import ASGIClient
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.conftest import Site
from tests.fuzz.harness import (
    FUZZ_SETTINGS,
    Caller,
    Recorder,
    callers,
    recorder_for,
    route_table,
)
from tests.integration.test_api import LEAGUE

# Per operation and caller; 22 operations x 3 callers x 4 ≈ 260 requests, a few seconds.
EXAMPLES_PER_CALLER = 4
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def _session(caller: Caller, app: Any) -> ASGIClient:
    """schemathesis's own in-process client (its ASGI transport serialises every case the
    way the document says), with the caller's cookies. Never entered: the Site already
    runs the application's lifespan."""
    session = ASGIClient(app)
    for cookie in caller.browser.cookies.jar:
        session.cookies.set(cookie.name, cookie.value)
    return session


def _known_objects(site: Site, developer: Caller, staff: Caller) -> dict[str, str]:
    """A request, an approved client and a listed member, so path parameters can name
    things that exist and the handlers go past their look-ups."""
    csrf = {"X-CSRF-Token": developer.csrf or ""}
    staff_csrf = {"X-CSRF-Token": staff.csrf or ""}
    tool = LEAGUE | {"client_name": "Fuzzed Tool", "grant_types": ["password_limited"]}
    tool |= {"redirect_uris": []}
    approved = developer.browser.post("/api/v1/requests", json=tool, headers=csrf).json()["id"]
    client_id = staff.browser.post(
        f"/api/v1/staff/requests/{approved}/approve", json={}, headers=staff_csrf
    ).json()["client_id"]
    pending = developer.browser.post("/api/v1/requests", json=LEAGUE, headers=csrf).json()["id"]
    site.add_member("listed@example.com")
    added = developer.browser.post(
        f"/api/v1/clients/{client_id}/access-list",
        json={"member": "listed@example.com"},
        headers=csrf,
    )
    assert added.status_code == 201, added.text
    return {
        "request_id": str(pending),
        "client_id": client_id,
        "reference": "listed@example.com",
    }


def _cases(operation: Any, known: dict[str, str]) -> st.SearchStrategy[Any]:
    """Valid and invalid data, and valid data naming objects that exist."""
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    ]
    names = {p.name for p in operation.path_parameters}
    if names and names <= set(known):
        fixed = {name: known[name] for name in names}
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
    return st.one_of(strategies)


# Ids past int4 (PostgreSQL's integer) and past int64 (SQLite's): a 404, never a 500.
BOUNDARY_INTEGERS = [2**31, 10**23]


def _is_integer(parameter: Any) -> bool:
    return bool(parameter.definition.get("schema", {}).get("type") == "integer")


def _boundary_cases(operation: Any, known: dict[str, str]) -> list[Any]:
    """Explicit cases with every integer parameter (path or query) at a boundary, the
    other path parameters naming things that exist: sent on every run, whatever the
    generated cases happen to try."""
    integers = [p for p in [*operation.path_parameters, *operation.query] if _is_integer(p)]
    if not integers:
        return []
    others = {p.name: known.get(p.name, "x") for p in operation.path_parameters}
    cases = []
    for value in BOUNDARY_INTEGERS:
        path = others | {p.name: value for p in operation.path_parameters if _is_integer(p)}
        query = {p.name: value for p in operation.query if _is_integer(p)}
        cases.append(operation.Case(path_parameters=path, query=query or None))
    return cases


def _fuzz_operation(
    operation: Any, caller: Caller, session: ASGIClient, known: dict[str, str], examples: int
) -> int:
    """The boundary cases, then `examples` generated ones (none: the boundaries only)."""
    sent = 0
    takes_csrf = "x-csrf-token" in {p.name.lower() for p in operation.headers}

    def one_operation(case: Any) -> None:
        nonlocal sent
        if caller.csrf is not None and takes_csrf:  # signed in: past the CSRF check
            case.headers = {**(case.headers or {}), "X-CSRF-Token": caller.csrf}
        response = case.call(session=session)
        sent += 1
        case.validate_response(response, checks=CHECKS)

    for boundary in _boundary_cases(operation, known):
        one_operation(boundary)
    if not examples:
        return sent
    hypothesis.settings(FUZZ_SETTINGS, max_examples=examples)(
        hypothesis.given(case=_cases(operation, known))(one_operation)
    )()
    return sent


@dataclass
class ApiFuzzer:
    """The document, the three callers' sessions and the known objects, ready to run."""

    schema: OpenApiSchema
    sessions: list[tuple[Caller, ASGIClient]]
    known: dict[str, str]

    def run(self, examples: int, only: Callable[[str], bool] = lambda _name: True) -> int:
        """Every operation (named "METHOD /path"), every caller, `examples` cases each;
        returns the requests made."""
        sent = 0
        for result in self.schema.get_all_operations():
            operation = result.ok()
            if not only(f"{operation.method.upper()} {operation.path}"):
                continue
            for caller, session in self.sessions:
                sent += _fuzz_operation(operation, caller, session, self.known, examples)
        return sent


def prepare_api_fuzzer(site: Site, recorder: Recorder) -> ApiFuzzer:
    anonymous, developer, staff = callers(site, recorder)
    known = _known_objects(site, developer, staff)
    document = anonymous.browser.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(document)
    schema.app = recorder  # ASGI transport, in-process
    sessions = [(c, _session(c, recorder)) for c in (anonymous, developer, staff)]
    return ApiFuzzer(schema, sessions, known)


def test_schemathesis_over_the_api_as_three_callers(sqlite_site: Site) -> None:
    recorder = recorder_for(sqlite_site)
    fuzzer = prepare_api_fuzzer(sqlite_site, recorder)

    sent = fuzzer.run(EXAMPLES_PER_CALLER)

    assert sent >= 3 * len(fuzzer.schema.raw_schema["paths"])
    missed = recorder.missed(route_table(sqlite_site.app), "api")
    assert not missed, f"the API fuzzer never reached: {missed}"


def test_integer_boundaries_of_the_api_on_postgresql(postgresql_site: Site) -> None:
    """Ids past int4 fail on PostgreSQL only (issue #11, item 6): the boundary cases alone
    (the SQLite run above sends them too)."""
    site = postgresql_site
    fuzzer = prepare_api_fuzzer(site, recorder_for(site))
    assert fuzzer.run(examples=0) > 0
