"""Prometheus metrics: every series Pitpass exports, and `GET /metrics` (issue #11).

The series are module globals, recorded through the few functions below, which
the layers above call in one line each: requests (middleware.py), grants
(oauth/token_endpoint.py), reuse and replay (oauth/grants/), rate-limit refusals
(services/ratelimit.py), argon2 slots (services/members.py), and connection waits
and errors (storage/). This module sits under storage in the layers so that
all of them may import it; it imports nothing of Pitpass but the policy's names.

Several workers (`pitpass serve --workers N`) share one view through
prometheus_client's multiprocess mode: `pitpass serve` points
PROMETHEUS_MULTIPROC_DIR at a fresh directory before the workers start, each
worker's values live in files there, and a scrape adds them up
(`prepare_multiprocess_dir`, `exposition`). One worker keeps them in memory.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Awaitable
from pathlib import Path
from threading import BoundedSemaphore
from types import TracebackType
from typing import Any, TypeVar

import asyncpg
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.types import Scope

from pitpass.core import policy

T = TypeVar("T")
ExceptionType = type[BaseException] | None
Traceback = TracebackType | None

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR_NAME = "metrics"  # under the data directory

# `_created` series double the output and say nothing an operator needs here.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# ----- the series ---------------------------------------------------------------------

# From a fraction of a millisecond (the token endpoint) to seconds (argon2 under load).
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5)

# The histogram's `_count` is the request counter: no second series to keep in step.
REQUEST_SECONDS = Histogram(
    "pitpass_http_request_duration_seconds",
    "HTTP requests by method, route template and status, and how long they took",
    ("method", "route", "status"),
    buckets=REQUEST_BUCKETS,
)
GRANTS = Counter(
    "pitpass_oauth_grants",
    "Token requests by grant type and outcome: issued, or the error code answered",
    ("grant_type", "outcome"),
)
REFRESH_TOKEN_REUSE = Counter(
    "pitpass_oauth_refresh_token_reuse",
    "Spent refresh tokens presented again outside the grace period (session revoked)",
)
AUTHORIZATION_CODE_REPLAYS = Counter(
    "pitpass_oauth_authorization_code_replays",
    "Authorization codes presented again (their tokens revoked)",
)
RATE_LIMIT_REFUSALS = Counter(
    "pitpass_rate_limit_refusals",
    "Requests refused by a rate limiter, by limiter name",
    ("limiter",),
)
# livesum: the workers alive now, added up (a dead worker's files are dropped).
ARGON2_WAITING = Gauge(
    "pitpass_argon2_waiting",
    "Password hashes or checks waiting for an argon2 slot",
    multiprocess_mode="livesum",
)
ARGON2_IN_USE = Gauge(
    "pitpass_argon2_in_use",
    "argon2 slots in use (at most one per CPU per process)",
    multiprocess_mode="livesum",
)
STORAGE_WAIT_SECONDS = Histogram(
    "pitpass_storage_connection_wait_seconds",
    "Time the protocol store waited for a database connection, by engine",
    ("engine",),
    buckets=WAIT_BUCKETS,
)
STORAGE_ERRORS = Counter(
    "pitpass_storage_errors",
    "Database errors met by the protocol store, by engine and error class",
    ("engine", "kind"),
)

# ----- requests --------------------------------------------------------------------------

# Anything else (clients may send any token as a method) is counted as OTHER.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CONVERTOR = re.compile(r"\{(\w+):\w+\}")
UNMATCHED_ROUTE = "unmatched"  # no route: 404s and slash redirects, never the raw path

# One labelled child per (method, route, status), found without prometheus_client's
# label validation on every request. Bounded: known methods x routes x statuses.
_request_children: dict[tuple[str, str, int], Any] = {}


def observe_request(scope: Scope, status: int, seconds: float) -> None:
    """One HTTP request, labelled by the route that matched it (its template)."""
    method = scope["method"]
    if method not in KNOWN_METHODS:
        method = "OTHER"
    # The matched route's template (Starlette sets scope["route"]), never the raw path;
    # a convertor is left out (`{request_id}`, not `{request_id:row_id}`), as in OpenAPI.
    template: str = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
    if ":" in template:
        template = _CONVERTOR.sub(r"{\1}", template)
    key = (method, template, status)
    child = _request_children.get(key)
    if child is None:
        child = _request_children[key] = REQUEST_SECONDS.labels(key[0], key[1], str(status))
    child.observe(seconds)


class TemplatedRoute(Route):
    """A plain Starlette route that puts itself in the scope when it matches, as
    FastAPI's own routes do; FastAPI's router does it for those only, and an
    unnamed route's requests would be counted as UNMATCHED_ROUTE."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class TemplatedMount(Mount):
    """A mount, named likewise: its requests are counted under its prefix."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


# ----- grants, reuse, replay, limits ------------------------------------------------------

UNKNOWN_GRANT = "unknown"  # grant_type missing or not supported
ISSUED = "issued"
GRANT_OUTCOMES = (ISSUED, *policy.ERRORS)

# Every grant and outcome from the start at 0, so that rates and alerts see them.
_grant_children: dict[tuple[str | None, str], Counter] = {
    (grant, outcome): GRANTS.labels(grant, outcome)
    for grant in (*policy.GRANT_TYPES, UNKNOWN_GRANT)
    for outcome in GRANT_OUTCOMES
}


def count_grant(grant_type: str | None, outcome: str) -> None:
    """One token request's outcome: ISSUED or the error code of PRODUCT.md §4."""
    child = _grant_children.get((grant_type, outcome))
    if child is None:  # an unknown grant type or outcome: never a new label value
        grant = grant_type if grant_type in policy.GRANT_TYPES else UNKNOWN_GRANT
        child = _grant_children.get((grant, outcome)) or _grant_children[(grant, "server_error")]
    child.inc()


def count_refresh_token_reuse() -> None:
    REFRESH_TOKEN_REUSE.inc()


def count_authorization_code_replay() -> None:
    AUTHORIZATION_CODE_REPLAYS.inc()


def count_rate_limit_refusal(limiter: str) -> None:
    """`limiter` is a Throttle's fixed name (services/ratelimit.py), never a key."""
    RATE_LIMIT_REFUSALS.labels(limiter).inc()


# ----- argon2 ----------------------------------------------------------------------------


class CountedSlots:
    """A BoundedSemaphore whose waiters and holders are the argon2 gauges."""

    def __init__(self, slots: BoundedSemaphore) -> None:
        self._slots = slots

    def __enter__(self) -> None:
        if not self._slots.acquire(blocking=False):
            ARGON2_WAITING.inc()
            try:
                self._slots.acquire()
            finally:
                ARGON2_WAITING.dec()
        ARGON2_IN_USE.inc()

    def __exit__(self, kind: ExceptionType, error: BaseException | None, tb: Traceback) -> None:
        ARGON2_IN_USE.dec()
        self._slots.release()


# ----- storage ---------------------------------------------------------------------------

# What a database driver or its socket raises; anything else (an OAuthError
# raised while a connection is held, say) is not a storage error.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (TimeoutError is one)
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


class StorageErrors:
    """`with` it around database work: a driver error is counted under its class name
    (bounded by the drivers' exception classes), and raised on."""

    __slots__ = ("engine",)

    def __init__(self, engine: str) -> None:
        self.engine = engine

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: ExceptionType, error: BaseException | None, tb: Traceback) -> None:
        if error is not None and isinstance(error, DRIVER_ERRORS):
            STORAGE_ERRORS.labels(self.engine, type(error).__name__).inc()


SQLITE_ERRORS = StorageErrors("sqlite")
POSTGRESQL_ERRORS = StorageErrors("postgresql")
_postgresql_wait = STORAGE_WAIT_SECONDS.labels("postgresql")


async def postgresql_borrowed(borrow: Awaitable[T]) -> T:
    """A connection from the lender, its wait observed and a failure to get one counted."""
    started = time.perf_counter()
    with POSTGRESQL_ERRORS:
        connection = await borrow
    _postgresql_wait.observe(time.perf_counter() - started)
    return connection


# ----- exposition ------------------------------------------------------------------------


def _in_multiprocess_mode() -> bool:
    """What prometheus_client chose when first imported (it reads the variable then)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


def prepare_multiprocess_dir(data_dir: Path) -> Path:
    """An empty directory for the workers' files; set in the environment, which the
    workers `pitpass serve` spawns inherit before they import prometheus_client."""
    directory = (data_dir / METRICS_DIR_NAME).resolve()
    shutil.rmtree(directory, ignore_errors=True)  # last run's counts are not this run's
    directory.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a zombie has died, only uvicorn has not collected it yet
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def forget_dead_workers(directory: str) -> list[int]:
    """Drop the live gauges of workers that died, however they died (kill -9 included);
    their counters stay, so totals never go back. The pids dropped."""
    pids = {path.stem.rsplit("_", 1)[-1] for path in Path(directory).glob("gauge_live*_*.db")}
    dead = sorted(int(pid) for pid in pids if pid.isdigit() and not _pid_alive(int(pid)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    return dead


def worker_stopped() -> None:
    """A worker shutting down cleanly: its live gauges go at once."""
    directory = os.environ.get(MULTIPROC_ENV)
    if _in_multiprocess_mode() and directory:
        multiprocess.mark_process_dead(os.getpid(), directory)  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The text format: this process's values, or every worker's added up."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not (_in_multiprocess_mode() and directory):
        return prometheus_client.generate_latest()
    forget_dead_workers(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return prometheus_client.generate_latest(registry)


# ----- who may read them ------------------------------------------------------------------

# A request a proxy relayed carries one of these; its peer may be a proxy on
# loopback, so it is not a local request whatever the address says.
FORWARDING_HEADERS = frozenset({b"forwarded", b"x-forwarded-for", b"x-real-ip"})


def _is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def is_local_request(scope: Scope) -> bool:
    """Sent from this machine, not relayed.

    With `proxy_headers`, uvicorn replaces the client address with X-Forwarded-For's
    when the peer is a trusted proxy, so "127.0.0.1" may be an outsider's claim
    relayed by nginx; and nginx on loopback is itself a loopback peer. Neither is
    local: any forwarding header makes a request remote. Without one, uvicorn left
    the address alone and it is the real peer of the TCP connection.
    """
    client = scope.get("client")
    if not client or not _is_loopback(str(client[0])):
        return False
    return not any(name in FORWARDING_HEADERS for name, _value in scope["headers"])


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def metrics_endpoint(token: str | None) -> Any:
    """`GET /metrics`: from loopback (not relayed), or with `Authorization: Bearer
    <PITPASS_METRICS_TOKEN>`. Anyone else gets the 404 of a page that does not exist
    (the app's own error page); a Bearer token that does not match gets 403, so an
    operator sees why."""
    expected = token.encode() if token else None

    async def metrics(request: Request) -> Response:
        given = bearer_token(request.headers.get("authorization"))
        if given is not None and not is_local_request(request.scope):
            # Constant time: the comparison must not tell how much of a guess was right.
            if expected is None or not hmac.compare_digest(given.encode(), expected):
                raise HTTPException(403, "The metrics token does not match.")
        elif not is_local_request(request.scope):
            raise HTTPException(404)
        return Response(exposition(), media_type=prometheus_client.CONTENT_TYPE_LATEST)

    return metrics
