"""`prompt=verify`: proof that the member typed an emailed code for *this* request.

PRODUCT.md §4; issue #11, defect 7:
- the *request mark* travels in the authorize URL: a value the server signed naming the
  client and a random nonce, made when /authorize first sends the request to the code.
  Anyone may get one and old ones sit in browser history, so a mark alone proves nothing;
- the emailed-code step finds the mark in the path the sign-in returns to (kept server
  side in the sign-in challenge) and records its nonce on the web session the code opens;
- /authorize (GET and the consent POST) accepts the mark only while that web session
  holds its nonce, and clears the nonce when the request ends: one code, one request.
A remembered browser, a plain sign-in or a code typed for another request records no
matching nonce, so they only lead to a new emailed code.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update
from sqlalchemy.orm import Session

from pitpass.db.models import WebSession
from pitpass.services.context import AppContext

REQUEST_MARK = "pitpass_verified_after"  # our own authorize parameter; clients never send it


def _marks(ctx: AppContext) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.keyring.cookie_signing_keys, salt="prompt-verify-mark")


def _round_trip_seconds(ctx: AppContext) -> int:
    """How long a mark stays good: sign-in, mail and code, twice the code's own lifetime."""
    return ctx.settings.signin_code_minutes * 60 * 2


def request_mark(ctx: AppContext, client_id: str) -> str:
    """A new signed mark for this client's request, put in the URL the sign-in returns to."""
    return _marks(ctx).dumps({"client": client_id, "nonce": secrets.token_urlsafe(24)})


def _nonce_of(ctx: AppContext, mark: str, client_id: str | None = None) -> str | None:
    """The nonce of a mark we signed, still in time (and for `client_id`, when given)."""
    try:
        payload = _marks(ctx).loads(mark, max_age=_round_trip_seconds(ctx))
    except BadSignature:  # also expired marks (SignatureExpired)
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("nonce"), str):
        return None  # e.g. a mark of the earlier, time-only kind
    if client_id is not None and payload.get("client") != client_id:
        return None
    return str(payload["nonce"])


def nonce_for_code(ctx: AppContext, next_path: str) -> str | None:
    """When an emailed code is accepted: the nonce of the prompt=verify request it was
    typed for, read from the sign-in challenge's return path; None for any other sign-in."""
    marks = parse_qs(urlsplit(next_path).query).get(REQUEST_MARK, [])
    return _nonce_of(ctx, marks[0]) if len(marks) == 1 else None


def proves_fresh_code(ctx: AppContext, client_id: str, mark: str, web_session: WebSession) -> bool:
    """True only for a valid mark of this client whose nonce this web session holds,
    i.e. the code that opened this session was typed for this very request."""
    nonce = _nonce_of(ctx, mark, client_id) if mark else None
    held = web_session.prompt_verify_nonce
    return nonce is not None and held is not None and hmac.compare_digest(nonce, held)


def consume(
    ctx: AppContext, db: Session, client_id: str, mark: str, web_session: WebSession
) -> bool:
    """Clear the nonce as the request ends (a code issued or consent refused); False when
    it is not there any more, e.g. another request with the same mark got in first."""
    nonce = _nonce_of(ctx, mark, client_id) if mark else None
    if nonce is None:
        return False
    cleared = db.execute(
        update(WebSession)
        .where(WebSession.id == web_session.id, WebSession.prompt_verify_nonce == nonce)
        .values(prompt_verify_nonce=None)
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(cleared, "rowcount", 0) == 1)
