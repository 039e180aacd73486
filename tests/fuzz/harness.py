"""What the fuzzers share (issue #11, Deliver 2): the app's route table, a recorder of the
routes a fuzzer reached, the three callers (anonymous, developer, staff) and the checks
every response must pass.

The acceptance is "a deliberate 500 in any handler makes them fail": each fuzzer asserts
no 5xx on every response, and that it reached every route it owns (`owner_of`), so a
handler no fuzzer calls, or a new route nobody fuzzes, fails the suite too.
"""

from __future__ import annotations

import inspect
import json
import re
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hypothesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from starlette.routing import BaseRoute, Mount, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from pitpass.core.policy import ERRORS
from tests.conftest import Site

DEVELOPER, STAFF = "fuzz-dev@example.com", "fuzz-staff@example.com"

# Repeatable in CI: no example database, the same examples on every run, no timing; no
# shrinking either (minutes against a database): a failure shows the request as sent.
FUZZ_SETTINGS = hypothesis.settings(
    derandomize=True,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)

RouteKey = tuple[Callable[..., Any], str]  # (endpoint, method)
CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def _flat_routes(routes: list[BaseRoute]) -> Iterator[tuple[str, Any, Any]]:
    """(path, route, its included-router context or None) for every route, through
    FastAPI's included routers."""
    for route in routes:
        if isinstance(route, Mount):
            continue  # /static: files, not handlers
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:  # FastAPI's include_router (fastapi >= 0.16x)
            for context in contexts():
                yield _template(context.path), context.original_route, context
        else:
            yield _template(getattr(route, "path", "")), route, None


def _template(path: str) -> str:
    """A path as OpenAPI writes it: `{request_id:row_id}` is `{request_id}`."""
    return CONVERTOR.sub(r"{\1}", path)


def route_table(app: FastAPI) -> dict[RouteKey, str]:
    """Every (endpoint, method) the application serves, named "METHOD /path"."""
    table: dict[RouteKey, str] = {}
    for path, route, _context in _flat_routes(app.routes):
        for method in sorted(set(getattr(route, "methods", None) or ()) - {"HEAD"}):
            table[(route.endpoint, method)] = f"{method} {path}"
    return table


def owner_of(name: str) -> str:
    """Which fuzzer must reach a route: the JSON API's through its OpenAPI document
    (schemathesis), the protocol's through Hypothesis, every other one (pages, docs,
    health) through the pages fuzzer."""
    path = name.split(" ", 1)[1]
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/oauth2/") and not path.startswith("/oauth2/book"):
        return "protocol"
    if path.startswith("/.well-known/"):
        return "protocol"
    return "pages"


@dataclass
class Recorder:
    """An ASGI wrapper noting which route each request reached (scope["endpoint"], set by
    the router; the fast path's routes by their exact path)."""

    app: ASGIApp
    fast_paths: dict[str, Callable[..., Any]] = field(default_factory=dict)
    hits: set[RouteKey] = field(default_factory=set)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                endpoint = scope.get("endpoint") or self.fast_paths.get(scope["path"])
                if endpoint is not None:
                    self.hits.add((endpoint, scope["method"]))

    def missed(self, table: dict[RouteKey, str], owner: str) -> list[str]:
        return sorted(
            name for key, name in table.items() if owner_of(name) == owner and key not in self.hits
        )


def recorder_for(site: Site, app: ASGIApp | None = None) -> Recorder:
    fast = {route.path: route.endpoint for route in site.app.state.protocol_routes}
    return Recorder(app or site.app, fast)


@dataclass
class Caller:
    name: str
    browser: TestClient
    csrf: str | None  # the API's X-CSRF-Token (GET /api/v1/me); None when signed out


def callers(site: Site, app: ASGIApp) -> list[Caller]:
    """Anonymous, a signed-in developer and a signed-in staff member, each with its own
    cookie jar, signed in through the real pages (tests/conftest.py's Site)."""
    site.add_member(DEVELOPER)
    site.add_member(STAFF, staff=True)
    found = [Caller("anonymous", TestClient(app, follow_redirects=False), None)]
    for name, email in (("developer", DEVELOPER), ("staff", STAFF)):
        browser = TestClient(app, follow_redirects=False)
        site.sign_in(browser, email)
        me = browser.get("/api/v1/me")
        assert me.status_code == 200, me.text
        found.append(Caller(name, browser, me.json()["csrf_token"]))
    return found


def describe(response: Response) -> str:
    """The request as sent (body and Authorization too) and the answer, to reproduce it."""
    request = response.request
    sent = f"{request.method} {request.url} {request.content[:300]!r}"
    if "authorization" in request.headers:
        sent += f" Authorization: {request.headers.get_list('authorization')[0][:100]!r}"
    if "content-type" in request.headers:
        sent += f" Content-Type: {request.headers['content-type']!r}"
    return f"{sent} -> {response.status_code}: {response.text[:500]!r}"


def assert_not_server_error(response: Response) -> None:
    assert response.status_code < 500, describe(response)


def assert_protocol_error(response: Response) -> None:
    """PRODUCT.md §4's JSON error shape, with an error of core/policy.ERRORS at its status."""
    assert response.headers.get("content-type", "").startswith("application/json"), describe(
        response
    )
    try:
        body = response.json()
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON: {describe(response)}") from None
    assert isinstance(body, dict), describe(response)
    assert set(body) == {"status", "status_reason", "error", "error_description", "error_uri"}, (
        describe(response)
    )
    rule = ERRORS.get(body["error"])
    assert rule is not None, describe(response)
    if response.status_code == 405:  # oauth/responses.method_not_allowed: RFC 9110 §15.5.6
        assert body["error"] == "invalid_request", describe(response)
        assert "allow" in response.headers, describe(response)
    else:
        assert body["status"] == rule.status == response.status_code, describe(response)
        assert body["status_reason"] == rule.reason, describe(response)
    assert isinstance(body["error_description"], str) and body["error_description"], describe(
        response
    )


def assert_protocol_answer(response: Response) -> None:
    """A protocol endpoint's answer: no 5xx, and any error in PRODUCT.md §4's shape: a JSON
    body, or (at /authorize, once the redirect URI is trusted) a redirect carrying it."""
    assert_not_server_error(response)
    if response.status_code in (302, 303):
        query = parse_qs(urlsplit(response.headers["location"]).query)
        if "error" in query:
            assert query["error"][0] in ERRORS, describe(response)
            assert query.get("error_description"), describe(response)
        return
    if response.status_code >= 400:
        assert_protocol_error(response)


class DeliberateFault(RuntimeError):
    """Raised by a handler on purpose: what any bug in it would do."""


def routes_by_name(app: FastAPI) -> dict[str, tuple[Any, Any]]:
    """Every (route, its included-router context or None) by "METHOD /path"."""
    found: dict[str, tuple[Any, Any]] = {}
    for path, route, context in _flat_routes(app.routes):
        for method in set(getattr(route, "methods", None) or ()) - {"HEAD"}:
            found[f"{method} {path}"] = (route, context)
    return found


@contextmanager
def deliberate_500(app: FastAPI, name: str) -> Iterator[None]:
    """Make the handler of route `name` raise, as if it had a bug: FastAPI routes call
    `dependant.call` per request (an included router's context has its own dependant),
    plain Starlette routes their `endpoint` (the protocol's fast path) or `app`."""
    route, context = routes_by_name(app)[name]

    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise DeliberateFault(f"a deliberate 500 in {name}")

    async def fail_async(*_args: Any, **_kwargs: Any) -> Any:
        fail()

    dependants = [d for d in (getattr(o, "dependant", None) for o in (route, context)) if d]
    if dependants:  # fastapi.routing.APIRoute
        original = dependants[0].call
        for dependant in dependants:
            dependant.call = fail_async if inspect.iscoroutinefunction(original) else fail
        try:
            yield
        finally:
            for dependant in dependants:
                dependant.call = original
        return
    endpoint, handle = route.endpoint, route.app
    route.endpoint, route.app = fail_async, request_response(fail_async)
    try:
        yield
    finally:
        route.endpoint, route.app = endpoint, handle


def fails_with_a_500(name: str, run: Callable[[], Any]) -> str:
    """Run a fuzzer expected to fail on the 500 of route `name`; returns the failure."""
    try:
        run()
    # An AssertionError, or schemathesis's FailureGroup (a BaseExceptionGroup).
    except (Exception, BaseExceptionGroup) as failure:
        text = "".join(traceback.format_exception(failure))  # groups: every member
        assert "500" in text, f"{name}: {text}"
        return text
    raise AssertionError(f"the fuzzer passed although {name} answers 500")
