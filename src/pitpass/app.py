"""create_app(): the ASGI application, its routers and middleware."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from pitpass import __version__, metrics
from pitpass.api import v1 as api_v1
from pitpass.api.errors import ApiError
from pitpass.api.schemas import ErrorBody, FieldError
from pitpass.config import Settings, load_settings
from pitpass.db.migrate import is_up_to_date
from pitpass.http.csrf import CsrfRejected
from pitpass.http.deadline import RequestDeadline
from pitpass.http.members import SignInRequired, StaffOnly, TwoStepRequired, signin_url
from pitpass.http.render import render
from pitpass.http.status import MALFORMED, status_text
from pitpass.middleware import BodyLimitMiddleware, RequestContextMiddleware
from pitpass.oauth.access_tokens import TokenSigner
from pitpass.oauth.authorize import authorize_router
from pitpass.oauth.responses import method_not_allowed
from pitpass.oauth.routes import protocol_routes
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.services import keys
from pitpass.services.context import AppContext
from pitpass.services.crypto import SealError
from pitpass.services.outages import UNAVAILABLE_ERRORS, description, unavailable_kind
from pitpass.storage import STORAGE_UNAVAILABLE_ERRORS, token_store
from pitpass.web import (
    account,
    account_data,
    account_security,
    console,
    portal,
    recovery,
    signin,
    site,
    two_step,
)
from pitpass.web.book import book_router

log = logging.getLogger("pitpass.app")

MAIL_RETRY_SECONDS = 60


async def _retry_mail_forever(context: AppContext) -> None:
    while True:
        await asyncio.sleep(MAIL_RETRY_SECONDS)
        try:
            pending = await anyio.to_thread.run_sync(
                context.mailer.due_for_retry, context.session_factory
            )
            await context.mailer.deliver(context.session_factory, pending)
        except SQLAlchemyError:
            log.exception("mail retry pass failed")


def _check_ready_to_serve(context: AppContext, signer: TokenSigner) -> None:
    if not is_up_to_date(context.engine):
        raise SystemExit("pitpass: the database schema is not up to date; run `pitpass db upgrade`")
    with context.session() as db:
        keys.ensure_active_key(db, context.keyring)
    try:  # the keys are in memory before the first request (issue #11, defect 9)
        context.keyring.prepare()
        signer.reload()
    except SealError:
        raise SystemExit(
            "pitpass: the keys sealed in the database open with neither PITPASS_SECRET_KEY "
            "nor PITPASS_SECRET_KEY_PREVIOUS; set the key they were sealed with"
        ) from None


def create_app(settings: Settings | None = None) -> FastAPI:
    context = AppContext.from_settings(settings or load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(_check_ready_to_serve, context, app.state.oauth.signer)
        retry = asyncio.create_task(_retry_mail_forever(context))
        try:
            yield
        finally:
            retry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retry
            await app.state.oauth.store.close()
            context.close()
            metrics.worker_stopped()

    # FastAPIOffline: the /docs page's scripts come from the package, not a CDN.
    app = FastAPIOffline(
        title=f"{context.settings.profile.service_name} registration API",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        description="Request and manage OAuth clients. Sign in on the web pages first; send "
        "`X-CSRF-Token` (from `GET /api/v1/me`) on every change. The developer book, under "
        f"`{context.settings.issuer_path.rstrip('/')}/book/`, explains clients, flows and tokens.",
    )
    app.state.context = context
    app.state.oauth = OAuthRuntime(
        context,
        token_store(context.engine, context.settings.storage_timeout_seconds),
        TokenSigner(context),
    )
    # The protocol's plain Starlette routes go first: the token endpoint is the hot path.
    app.state.protocol_routes = protocol_routes(context.settings.issuer_path)
    app.router.routes[:0] = app.state.protocol_routes
    app.add_middleware(
        BodyLimitMiddleware, protocol_prefix=context.settings.issuer_path.rstrip("/") + "/"
    )
    # Pages and the API: answered by twice the storage deadline (a page makes a few calls).
    app.add_middleware(
        RequestDeadline,
        seconds=2 * context.settings.storage_timeout_seconds,
        answer=lambda request: _temporarily_unavailable(request, "storage past its deadline"),
    )
    app.add_middleware(
        RequestContextMiddleware,
        hsts=context.settings.uses_https,
        issuer=context.settings.issuer,
        issuer_path=context.settings.issuer_path,
    )
    static = StaticFiles(directory=str(Path(__file__).parent / "web" / "static"))
    app.routes.append(metrics.TemplatedMount("/static", static, name="static"))
    pages = [site, signin, recovery, account, account_security, two_step, account_data]
    pages += [portal, console]  # their routers include web/portal_clients, web/console_members
    for module in pages:
        app.include_router(module.router, include_in_schema=False)
    app.include_router(api_v1.router)
    app.include_router(book_router(context.settings.issuer_path))
    app.include_router(authorize_router(context.settings.issuer_path))
    _add_health_routes(app, context)
    token = context.settings.metrics_token
    metrics_read = metrics.metrics_endpoint(token.get_secret_value() if token else None)
    app.routes.append(metrics.TemplatedRoute("/metrics", metrics_read, methods=["GET"]))
    _add_error_pages(app)
    return app


def _add_health_routes(app: FastAPI, context: AppContext) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """The database and Redis (when configured) answer, each within its deadline
        (the store's, Redis's socket timeout); else 503 naming which does not."""
        checks = {"database": "ok", "redis": "ok"}
        try:
            await app.state.oauth.store.ping()
        except STORAGE_UNAVAILABLE_ERRORS as error:
            log.warning("readiness check failed", extra={"error": type(error).__name__})
            checks["database"] = "unreachable"
        if not await anyio.to_thread.run_sync(context.throttles.reachable):
            checks["redis"] = "unreachable"
        ready = all(state == "ok" for state in checks.values())
        return JSONResponse(
            {"status": "ok" if ready else "unavailable"} | checks, 200 if ready else 503
        )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path: a 405's `Allow` lists them all
    (RFC 9110 §15.5.6), where the router names only the first route it tried."""
    allowed: set[str] = set()
    # FastAPI keeps included routers whole; iter_route_contexts yields their routes.
    for route in iter_route_contexts(request.app.router.routes):
        methods = route.methods
        if methods and route.matches(request.scope)[0] is not Match.NONE:
            allowed |= methods
    return sorted(allowed)


def _temporarily_unavailable(request: Request, detail: str) -> Response:
    """503: the API's error body, or the error page (PRODUCT.md §4)."""
    named = status_text(503)
    headers = {"Retry-After": "1"}
    if _is_api(request):
        body = ErrorBody(error=named.api_error, error_description=detail)
        return JSONResponse(body.model_dump(), status_code=503, headers=headers)
    # The page's header must not ask the database who is signed in: it may be what is down.
    request.state.member = getattr(request.state, "member", None)
    page = render(request, "error.html", {"title": named.title, "detail": detail}, status_code=503)
    page.headers.update(headers)
    return page


def _add_error_pages(app: FastAPI) -> None:
    @app.exception_handler(CsrfRejected)
    def csrf_rejected(request: Request, _error: CsrfRejected) -> Response:
        return render(
            request,
            "error.html",
            {
                "title": "This form could not be accepted",
                "detail": "The form had expired or did not come from this site, so nothing "
                "was changed. Go back, reload the page and try again.",
            },
            status_code=403,
        )

    @app.exception_handler(SignInRequired)
    def sign_in_required(_request: Request, error: SignInRequired) -> Response:
        return RedirectResponse(signin_url(error.next_path), status_code=303)

    @app.exception_handler(StaffOnly)
    def staff_only(request: Request, _error: StaffOnly) -> Response:
        return render(
            request,
            "error.html",
            {"title": "Staff only", "detail": "This page is for staff. Your account is not."},
            status_code=403,
        )

    @app.exception_handler(TwoStepRequired)
    def two_step_required(_request: Request, error: TwoStepRequired) -> Response:
        query = urlencode({"next": error.next_path})
        return RedirectResponse(f"/account/two-step?{query}", status_code=303)

    @app.exception_handler(ApiError)
    def api_error(_request: Request, error: ApiError) -> Response:
        return error.response()

    def unavailable(request: Request, error: Exception) -> Response:
        """The database or Redis is down (services/outages.py): 503, never a 500."""
        log.warning(
            "%s unavailable", unavailable_kind(error), extra={"error": type(error).__name__}
        )
        return _temporarily_unavailable(request, description(error))

    for error_type in UNAVAILABLE_ERRORS:
        app.add_exception_handler(error_type, unavailable)

    settings: Settings = app.state.context.settings
    protocol_paths = {route.path for route in app.state.protocol_routes}

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> Response:
        if error.status_code == 405:
            allowed = _allowed_methods(request)
            if request.url.path in protocol_paths:
                return method_not_allowed(settings.issuer, allowed)
            error.headers = {**(error.headers or {}), "Allow": ", ".join(allowed)}
        named = status_text(error.status_code)
        if _is_api(request):
            body = ErrorBody(error=named.api_error, error_description=str(error.detail))
            # The error's headers go along: `Allow` on every 405 (RFC 9110 §15.5.6).
            return JSONResponse(
                body.model_dump(), status_code=error.status_code, headers=error.headers
            )
        page = render(
            request,
            "error.html",
            {"title": named.title, "detail": error.detail},
            status_code=error.status_code,
        )
        page.headers.update(error.headers or {})
        return page

    @app.exception_handler(RequestValidationError)
    def bad_request(request: Request, error: RequestValidationError) -> Response:
        if _is_api(request):
            fields = [
                FieldError(
                    field=".".join(str(p) for p in item["loc"] if p != "body") or "body",
                    message=str(item["msg"]),
                )
                for item in error.errors()
            ]
            body = ErrorBody(
                error=MALFORMED.api_error,
                error_description="; ".join(f"{f.field}: {f.message}" for f in fields),
                fields=fields,
            )
            return JSONResponse(body.model_dump(), status_code=400)
        return render(
            request,
            "error.html",
            {"title": MALFORMED.title, "detail": "The request was malformed; nothing was changed."},
            status_code=400,
        )


class ProtocolFastPath:
    """The ASGI entry of `pitpass serve`: protocol requests skip FastAPI's own layers.

    /token, /introspect and friends are plain Starlette routes already; here they
    also skip the error, telemetry, body-limit and exit-stack middleware FastAPI
    wraps around every request (a sixth of the token endpoint's time, measured),
    keeping only Pitpass's own (request ids, headers, access log, JSON 500s).
    Every other request goes to the FastAPI application unchanged.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        settings: Settings = app.state.context.settings
        # The protocol's paths are exact, so a dict finds the route without matching each.
        self.routes = {route.path: route for route in app.state.protocol_routes}
        self.issuer = settings.issuer
        self.fast = RequestContextMiddleware(
            self._route,
            hsts=settings.uses_https,
            issuer=settings.issuer,
            issuer_path=settings.issuer_path,
        )

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.app  # endpoints find their state on request.app
        route = scope["route"] = self.routes[scope["path"]]  # the route, as Starlette sets it
        allowed = route.methods or set()
        if scope["method"] in allowed:
            # What Route.handle does, minus its exception wrapper: these endpoints turn
            # their errors into responses themselves (protocol_endpoint), and anything else
            # reaches RequestContextMiddleware's JSON 500.
            response = await route.endpoint(Request(scope, receive))
        else:
            response = method_not_allowed(self.issuer, allowed)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.routes:
            await self.fast(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_server_app() -> ProtocolFastPath:
    """The factory `pitpass serve` gives uvicorn."""
    return ProtocolFastPath(create_app())
