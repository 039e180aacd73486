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
NUL = "a\x00b"  # PostgreSQL refuses NUL in text (issue #11, item 6)


def _is_integer(parameter: Any) -> bool:
    return bool(parameter.definition.get("schema", {}).get("type") == "integer")


def _resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A schema with its $ref followed and `anyOf: [X, null]` reduced to X."""
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    for choice in schema.get("anyOf", []):
        if choice.get("type") != "null":
            return _resolved(document, choice)
    return schema


def _nul_bodies(document: dict[str, Any], operation: Any) -> list[dict[str, Any]]:
    """A valid body (the registration example, or nothing) with one text field, in turn,
    holding a NUL byte."""
    definition = document["paths"][operation.path][operation.method.lower()]
    content = definition.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return []
    properties = _resolved(document, content["schema"]).get("properties", {})
    base = LEAGUE if "client_name" in properties else {}
    bodies = []
    for name, prop in properties.items():
        kind = _resolved(document, prop)
        if kind.get("type") == "string":
            bodies.append(base | {name: NUL})
        elif _resolved(document, kind.get("items", {})).get("type") == "string":
            bodies.append(base | {name: [NUL]})
    return bodies


def _probe_cases(operation: Any, known: dict[str, str], document: dict[str, Any]) -> list[Any]:
    """Explicit cases, sent on every run whatever the generated ones happen to try: every
    integer parameter (path or query) at a boundary; every text parameter, and each text
    field of the body in turn, holding a NUL byte; the rest naming things that exist."""
    path_names = [p for p in operation.path_parameters]
    existing = {p.name: known.get(p.name, "1" if _is_integer(p) else "x") for p in path_names}
    cases = []
    if any(_is_integer(p) for p in [*path_names, *operation.query]):
        for value in BOUNDARY_INTEGERS:
            path = existing | {p.name: value for p in path_names if _is_integer(p)}
            query = {p.name: value for p in operation.query if _is_integer(p)}
            cases.append(operation.Case(path_parameters=path, query=query or None))
    texts = [p for p in [*path_names, *operation.query] if not _is_integer(p)]
    if texts:
        path = existing | {p.name: NUL for p in path_names if not _is_integer(p)}
        query = {p.name: NUL for p in operation.query if not _is_integer(p)}
        cases.append(operation.Case(path_parameters=path, query=query or None))
    for body in _nul_bodies(document, operation):
        cases.append(operation.Case(path_parameters=existing, body=body))
    return cases


def _fuzz_operation(
    operation: Any,
    caller: Caller,
    session: ASGIClient,
    known: dict[str, str],
    examples: int,
    document: dict[str, Any],
) -> int:
    """The probe cases, then `examples` generated ones (none: the probes only)."""
    sent = 0
    takes_csrf = "x-csrf-token" in {p.name.lower() for p in operation.headers}

    def one_operation(case: Any) -> None:
        nonlocal sent
        if caller.csrf is not None and takes_csrf:  # signed in: past the CSRF check
            case.headers = {**(case.headers or {}), "X-CSRF-Token": caller.csrf}
        response = case.call(session=session)
        sent += 1
        case.validate_response(response, checks=CHECKS)

    for probe in _probe_cases(operation, known, document):
        one_operation(probe)
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
                sent += _fuzz_operation(
                    operation, caller, session, self.known, examples, self.schema.raw_schema
                )
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


def test_boundaries_of_the_api_on_postgresql(postgresql_site: Site) -> None:
    """Ids past int4 and NUL bytes fail on PostgreSQL only (issue #11, item 6): the probe
    cases alone (the SQLite run above sends them too)."""
    site = postgresql_site
    fuzzer = prepare_api_fuzzer(site, recorder_for(site))
    assert fuzzer.run(examples=0) > 0
