"""`GET /oauth2/authorize` and its consent form (PRODUCT.md §4, RFC 6749 §4.1, RFC 7636).

Until the client and its redirect URI are known and match, every error is a
JSON body and never a redirect (no open redirects). After that, errors go
back to the client's redirect URI with `error`, `error_description`,
`error_uri`, `state` and `iss` (RFC 9207).

A request whose scope has `openid` is also an OpenID Connect authentication request
(Core §3.1.2): its `nonce` is kept with the code, and `prompt=none|login|consent` and
`max_age` are honoured (core/openid.py). Without `openid`, those parameters are ignored
as they always were.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urlsplit

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.core import openid, pkce, policy
from pitpass.core.openid import Prompt
from pitpass.core.paths import MAX_NEXT_PATH
from pitpass.core.policy import OAuthError, ScopeRefused
from pitpass.core.redirect_uris import redirect_uri_matches
from pitpass.db.models import Consent, Member, WebSession, utcnow
from pitpass.http.caller import client_of
from pitpass.http.context import app_context
from pitpass.http.csrf import require_csrf
from pitpass.http.members import browser_session, signin_url
from pitpass.http.render import render
from pitpass.oauth.requests import query_values, single_values
from pitpass.oauth.responses import json_error, redirect_error, with_query
from pitpass.oauth.runtime import OAuthRuntime
from pitpass.services import audit, fresh_verification
from pitpass.services.clients import by_client_id
from pitpass.services.fresh_verification import FRESH_SIGNIN, PROMPT_VERIFY
from pitpass.storage import sync
from pitpass.storage.records import ClientRecord, NewCode

MARKERS = tuple(proof.parameter for proof in fresh_verification.PROOFS)


@dataclass(frozen=True)
class AuthorizationRequest:
    """A request that passed every check: safe to redirect to, ready for consent."""

    client: ClientRecord
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    prompt: Prompt
    verify_mark: str  # signed by us in _signin_first; anything else fails its check
    params: dict[str, str]
    # OpenID Connect (Core §3.1.2.1), only when the scope has `openid`.
    nonce: str | None = None
    max_age: int | None = None
    signin_mark: str = ""  # as verify_mark, for prompt=login and max_age

    @property
    def force_verify(self) -> bool:
        return self.prompt.verify

    @property
    def asks_fresh_signin(self) -> bool:
        """prompt=login or max_age: a sign-in for this request may be needed."""
        return self.prompt.login or self.max_age is not None

    def wants_fresh_signin(self, web_session: WebSession) -> bool:
        """Core §3.1.2.1: prompt=login, or a sign-in longer ago than max_age."""
        return self.prompt.login or openid.signed_in_too_long_ago(
            web_session.verified_at, utcnow(), self.max_age
        )


class UntrustedRedirect(Exception):
    """The client or redirect URI is not known: answer with JSON, never redirect."""

    def __init__(self, error: OAuthError) -> None:
        self.error = error


class RedirectableError(Exception):
    def __init__(self, redirect_uri: str, error: OAuthError, state: str | None) -> None:
        self.redirect_uri = redirect_uri
        self.error = error
        self.state = state


async def check_request(runtime: OAuthRuntime, params: dict[str, str]) -> AuthorizationRequest:
    """Every check of PRODUCT.md §4, in the order that decides JSON versus redirect."""
    client_id = params.get("client_id", "")
    if not client_id:
        raise UntrustedRedirect(OAuthError("invalid_request", "client_id missing"))
    client = await runtime.store.client(client_id, utcnow())
    if client is None:
        raise UntrustedRedirect(OAuthError("invalid_client", "unknown client_id"))
    if client.is_disabled:
        raise UntrustedRedirect(OAuthError("unauthorized_client", "this client is disabled"))
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri:
        raise UntrustedRedirect(OAuthError("invalid_request", "redirect_uri missing"))
    if not any(redirect_uri_matches(r, redirect_uri) for r in client.redirect_uris):
        raise UntrustedRedirect(
            OAuthError("invalid_request", "redirect_uri is not registered for this client")
        )
    state = params.get("state")

    def fail(error: str, description: str) -> RedirectableError:
        return RedirectableError(redirect_uri, OAuthError(error, description), state)

    response_type = params.get("response_type")
    if not response_type:
        raise fail("invalid_request", "response_type missing")
    if response_type != "code":
        raise fail("unsupported_response_type", "only response_type=code is supported")
    if policy.AUTHORIZATION_CODE not in client.flows:
        raise fail("unauthorized_client", "this client may not use authorization_code")
    try:
        scope = policy.requested_scope(
            params.get("scope"), runtime.ctx.settings.profile, openid_allowed=True
        )
    except ScopeRefused as refused:
        raise fail("invalid_scope", str(refused)) from None
    asks_openid = openid.asks_for_openid(scope)
    try:
        prompt = openid.parse_prompt(params.get("prompt"), asks_openid)
        nonce = openid.checked_nonce(params.get("nonce")) if asks_openid else None
        max_age = openid.parse_max_age(params.get("max_age")) if asks_openid else None
    except ValueError as bad:
        raise fail("invalid_request", str(bad)) from None
    if asks_openid:
        for parameter, error in openid.UNSUPPORTED_PARAMETERS.items():
            if parameter in params:
                raise fail(error, f"the {parameter} parameter is not supported")
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if method is not None and method not in policy.PKCE_METHODS:
        raise fail("invalid_request", "code_challenge_method must be S256 or plain")
    if challenge is None:
        if method is not None:
            raise fail("invalid_request", "code_challenge_method sent without code_challenge")
        if not client.is_confidential:
            raise fail("invalid_request", "code_challenge required: public clients must use PKCE")
    elif not pkce.is_well_formed(challenge):
        raise fail("invalid_request", "code_challenge must be 43-128 unreserved characters")
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        code_challenge=challenge,
        code_challenge_method=(method or policy.DEFAULT_PKCE_METHOD) if challenge else None,
        prompt=prompt,
        verify_mark=params.get(PROMPT_VERIFY.parameter, ""),
        # The marks stay in the consent form, whose POST is checked the same way.
        params=params,
        nonce=nonce,
        max_age=max_age,
        signin_mark=params.get(FRESH_SIGNIN.parameter, "") if asks_openid else "",
    )


def _web_session(request: Request, db: Session) -> WebSession | None:
    # Its member comes with it, so the db.get(Member, ...) that follows reads no row.
    signed_in = browser_session(request, db)
    return signed_in.web_session if signed_in else None


def _consented(db: Session, member: Member, auth: AuthorizationRequest) -> bool:
    return (
        db.scalar(
            select(Consent.id).where(
                Consent.member_id == member.id,
                Consent.client_pk == auth.client.pk,
                Consent.scope == auth.scope,
                Consent.withdrawn_at.is_(None),
            )
        )
        is not None
    )


def _issue_code(
    runtime: OAuthRuntime,
    request: Request,
    db: Session,
    auth: AuthorizationRequest,
    member: Member,
    web_session: WebSession,
) -> RedirectResponse:
    code = secrets.token_urlsafe(32)
    caller = client_of(request)
    sync.insert_code(
        db,
        NewCode(
            code_hash=runtime.code_hash(code),
            client_pk=auth.client.pk,
            member_id=member.id,
            session_id=str(uuid.uuid4()),
            redirect_uri=auth.redirect_uri,
            scope=auth.scope,
            code_challenge=auth.code_challenge,
            code_challenge_method=auth.code_challenge_method,
            auth_time=web_session.verified_at,
            expires_at=utcnow()
            + timedelta(seconds=runtime.ctx.settings.authorization_code_seconds),
            ip=caller.ip,
            user_agent=caller.user_agent,
            web_session_id=web_session.id,
            nonce=auth.nonce,  # OpenID Connect Core §3.1.3.6: bound to this code
        ),
    )
    params = {"code": code}
    if auth.state is not None:
        params["state"] = auth.state
    params["iss"] = runtime.issuer  # RFC 9207
    return RedirectResponse(with_query(auth.redirect_uri, params), status_code=302)


def _signin_first(
    runtime: OAuthRuntime, request: Request, auth: AuthorizationRequest
) -> RedirectResponse:
    if auth.prompt.none:
        # OpenID Connect Core §3.1.2.6: prompt=none shows no page.
        return redirect_error(
            runtime.issuer,
            auth.redirect_uri,
            OAuthError("login_required", "the member must sign in: prompt=none shows no page"),
            auth.state,
        )
    params, flag = dict(auth.params), ""
    ctx, client_id = app_context(request), auth.client.client_id
    if auth.force_verify:
        # prompt=verify: the emailed code again, whatever the browser remembers (PRODUCT.md §4).
        params[PROMPT_VERIFY.parameter] = fresh_verification.request_mark(
            ctx, PROMPT_VERIFY, client_id
        )
        flag = "&verify=1"
    elif auth.asks_fresh_signin:
        # OpenID Connect prompt=login, max_age: the sign-in form even when signed in.
        params[FRESH_SIGNIN.parameter] = fresh_verification.request_mark(
            ctx, FRESH_SIGNIN, client_id
        )
        flag = "&again=1"
    next_path = f"{request.url.path}?{urlencode(params)}"
    if len(next_path) > MAX_NEXT_PATH:
        # Sign-in could not bring the member back here: say so, not drop the request.
        return redirect_error(
            runtime.issuer,
            auth.redirect_uri,
            OAuthError(
                "invalid_request",
                f"the request is too long to carry through sign-in ({len(next_path)} of "
                f"{MAX_NEXT_PATH} characters once encoded): shorten state or nonce",
            ),
            auth.state,
        )
    return RedirectResponse(signin_url(next_path) + flag, status_code=303)


def _needs_signin(
    request: Request, auth: AuthorizationRequest, web_session: WebSession | None
) -> bool:
    if web_session is None:
        return True
    ctx, client_id = app_context(request), auth.client.client_id
    # Only a sign-in done for this very request counts (issue #11, defect 7): the nonce of
    # its signed mark, recorded on this web session by that sign-in.
    if auth.force_verify:
        return not fresh_verification.proves(
            ctx, PROMPT_VERIFY, client_id, auth.verify_mark, web_session
        )
    if auth.wants_fresh_signin(web_session):
        return not fresh_verification.proves(
            ctx, FRESH_SIGNIN, client_id, auth.signin_mark, web_session
        )
    return False


def _sign_in_proof_used_up(
    request: Request, db: Session, auth: AuthorizationRequest, web_session: WebSession
) -> bool:
    """The sign-in done for this request ends here: clear its nonce, so the same mark asks
    for a new sign-in. True when the request needed it and it was already gone (a second
    request with the same mark got in first)."""
    ctx, client_id = app_context(request), auth.client.client_id
    if auth.force_verify:
        return not fresh_verification.consume(
            ctx, db, PROMPT_VERIFY, client_id, auth.verify_mark, web_session
        )
    # Cleared even when max_age no longer needs it, or a replay could use it later.
    spent = bool(auth.signin_mark) and fresh_verification.consume(
        ctx, db, FRESH_SIGNIN, client_id, auth.signin_mark, web_session
    )
    return auth.wants_fresh_signin(web_session) and not spent


def _destination(redirect_uri: str) -> str:
    """The host the browser goes to after consent; a native app's scheme when it has none."""
    parts = urlsplit(redirect_uri)
    return parts.hostname or f"{parts.scheme}:"


def _consent_page(
    request: Request, auth: AuthorizationRequest, db: Session, member: Member
) -> Response:
    client = by_client_id(db, auth.client.client_id)
    profile = app_context(request).settings.profile
    # "Not you?" signs out, then signs in again for this same request; without the
    # prompt=verify (or prompt=login) mark, which `/authorize` mints afresh when needed.
    again = {k: v for k, v in auth.params.items() if k not in MARKERS}
    return render(
        request,
        "consent.html",
        {
            "client": client,
            "scopes": policy.scope_meanings(auth.scope, profile),
            "params": auth.params,
            "action": request.url.path,
            "signed_in": member,
            "not_you_next": f"{request.url.path}?{urlencode(again)}",
            "destination": _destination(auth.redirect_uri),
        },
    )


def _answer_request(
    runtime: OAuthRuntime, request: Request, auth: AuthorizationRequest
) -> Response:
    """`GET /authorize` once the request checks out: sign in, consent, or a code."""
    with app_context(request).session() as db:
        web_session = _web_session(request, db)
        if _needs_signin(request, auth, web_session):
            return _signin_first(runtime, request, auth)
        assert web_session is not None
        member = db.get(Member, web_session.member_id)
        if member is None or member.is_disabled:
            return _signin_first(runtime, request, auth)
        if auth.prompt.consent or not _consented(db, member, auth):
            if auth.prompt.none:  # OpenID Connect Core §3.1.2.6
                return redirect_error(
                    runtime.issuer,
                    auth.redirect_uri,
                    OAuthError("consent_required", "the member has not agreed to these scopes"),
                    auth.state,
                )
            return _consent_page(request, auth, db, member)  # its POST is checked, and ends it
        if _sign_in_proof_used_up(request, db, auth, web_session):
            return _signin_first(runtime, request, auth)
        return _issue_code(runtime, request, db, auth, member, web_session)


def _answer_consent(
    runtime: OAuthRuntime, request: Request, auth: AuthorizationRequest, decision: str
) -> Response:
    """`POST /authorize` once the request checks out: record the member's decision."""
    with app_context(request).session() as db:
        web_session = _web_session(request, db)
        if _needs_signin(request, auth, web_session):
            return _signin_first(runtime, request, auth)
        assert web_session is not None
        member = db.get(Member, web_session.member_id)
        assert member is not None
        if _sign_in_proof_used_up(request, db, auth, web_session):
            return _signin_first(runtime, request, auth)

        def audit_decision(event: str, **details: str) -> None:
            audit.record(
                db,
                event,
                actor=member,
                target_type="client",
                target_id=auth.client.client_id,
                ip=client_of(request).ip,
                details=details or None,
            )

        if decision != "approve":
            audit_decision("consent.denied")
            return redirect_error(
                runtime.issuer,
                auth.redirect_uri,
                OAuthError("access_denied", "the member declined"),
                auth.state,
            )
        if not _consented(db, member, auth):
            db.add(Consent(member_id=member.id, client_pk=auth.client.pk, scope=auth.scope))
            audit_decision("consent.granted", scope=auth.scope)
        return _issue_code(runtime, request, db, auth, member, web_session)


def authorize_router(issuer_path: str) -> APIRouter:
    router = APIRouter(prefix=issuer_path.rstrip("/"), include_in_schema=False)

    async def _answer(
        runtime: OAuthRuntime,
        params: Callable[[], dict[str, str]],
        answer: Callable[[AuthorizationRequest], Response],
    ) -> Response:
        """Check the request on the loop (the client comes from the async token store),
        then answer it in a worker thread: the ORM's queries must not hold up the loop,
        which also serves the token endpoint."""
        try:
            # A repeated, NUL-bearing or non-UTF-8 parameter is answered before the client
            # is known: never redirected (oauth/requests.py).
            auth = await check_request(runtime, params())
            return await anyio.to_thread.run_sync(answer, auth)
        except OAuthError as error:
            return json_error(runtime.issuer, error)
        except UntrustedRedirect as untrusted:
            return json_error(runtime.issuer, untrusted.error)
        except RedirectableError as redirectable:
            return redirect_error(
                runtime.issuer, redirectable.redirect_uri, redirectable.error, redirectable.state
            )

    @router.get("/authorize", response_class=HTMLResponse)
    async def authorize(request: Request) -> Response:
        runtime: OAuthRuntime = request.app.state.oauth
        return await _answer(
            runtime,
            functools.partial(query_values, request.scope["query_string"]),
            functools.partial(_answer_request, runtime, request),
        )

    @router.post("/authorize", response_class=HTMLResponse)
    async def consent(request: Request) -> Response:
        runtime: OAuthRuntime = request.app.state.oauth
        form = await request.form()
        pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        fields = dict(pairs)
        require_csrf(request, fields.pop("csrf_token", ""))
        decision = fields.pop("decision", "")
        oauth_pairs = [(k, v) for k, v in pairs if k not in ("csrf_token", "decision")]
        return await _answer(
            runtime,
            functools.partial(single_values, oauth_pairs),
            functools.partial(_answer_consent, runtime, request, decision=decision),
        )

    return router
