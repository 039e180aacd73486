"""Proof that the member signed in *for this request*: `prompt=verify`'s emailed code, and
OpenID Connect's `prompt=login` and `max_age` sign-in.

PRODUCT.md §4; issue #11, defect 7; issue #13, item 3:
- the *request mark* travels in the authorize URL: a value the server signed naming the
  client and a random nonce, made when /authorize first sends the request to sign in.
  Anyone may get one and old ones sit in browser history, so a mark alone proves nothing;
- the sign-in finds the mark in the path it returns to (for the code, kept server side in
  the sign-in challenge) and records its nonce on the web session it opens;
- /authorize (GET and the consent POST) accepts the mark only while that web session
  holds its nonce, and clears the nonce when the request ends: one sign-in, one request.
A remembered browser, a plain sign-in or one done for another request records no
matching nonce, so they only lead to a new sign-in.

Two kinds of proof, each with its own parameter, signing salt and column, so that one
never stands for the other: `PROMPT_VERIFY` is recorded only when the emailed code (or the
authenticator app's) was typed; `FRESH_SIGNIN` by any sign-in, a remembered browser's
password-only one included.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import update
from sqlalchemy.orm import Session

from pitpass.db.models import WebSession
from pitpass.services.context import AppContext


@dataclass(frozen=True)
class Proof:
    parameter: str  # our own authorize parameter carrying the mark; clients never send it
    salt: str
    column: str  # the WebSession attribute that holds the nonce

    def held_by(self, web_session: WebSession) -> str | None:
        value: str | None = getattr(web_session, self.column)
        return value


PROMPT_VERIFY = Proof("pitpass_verified_after", "prompt-verify-mark", "prompt_verify_nonce")
FRESH_SIGNIN = Proof("pitpass_signed_in_after", "fresh-signin-mark", "fresh_signin_nonce")
PROOFS = (PROMPT_VERIFY, FRESH_SIGNIN)


def _marks(ctx: AppContext, proof: Proof) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.keyring.cookie_signing_keys, salt=proof.salt)


def _round_trip_seconds(ctx: AppContext) -> int:
    """How long a mark stays good: sign-in, mail and code, twice the code's own lifetime."""
    return ctx.settings.signin_code_minutes * 60 * 2


def request_mark(ctx: AppContext, proof: Proof, client_id: str) -> str:
    """A new signed mark for this client's request, put in the URL the sign-in returns to."""
    return _marks(ctx, proof).dumps({"client": client_id, "nonce": secrets.token_urlsafe(24)})


def _nonce_of(ctx: AppContext, proof: Proof, mark: str, client_id: str | None = None) -> str | None:
    """The nonce of a mark we signed, still in time (and for `client_id`, when given)."""
    try:
        payload = _marks(ctx, proof).loads(mark, max_age=_round_trip_seconds(ctx))
    except BadSignature:  # also expired marks (SignatureExpired)
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("nonce"), str):
        return None  # e.g. a mark of the earlier, time-only kind
    if client_id is not None and payload.get("client") != client_id:
        return None
    return str(payload["nonce"])


def nonce_in_path(ctx: AppContext, proof: Proof, next_path: str) -> str | None:
    """When a sign-in succeeds: the nonce of the request it was done for, read from the path
    it returns to; None for any other sign-in."""
    marks = parse_qs(urlsplit(next_path).query).get(proof.parameter, [])
    return _nonce_of(ctx, proof, marks[0]) if len(marks) == 1 else None


def proves(
    ctx: AppContext, proof: Proof, client_id: str, mark: str, web_session: WebSession
) -> bool:
    """True only for a valid mark of this client whose nonce this web session holds,
    i.e. the sign-in that opened this session was done for this very request."""
    nonce = _nonce_of(ctx, proof, mark, client_id) if mark else None
    held = proof.held_by(web_session)
    return nonce is not None and held is not None and hmac.compare_digest(nonce, held)


def consume(
    ctx: AppContext,
    db: Session,
    proof: Proof,
    client_id: str,
    mark: str,
    web_session: WebSession,
) -> bool:
    """Clear the nonce as the request ends (a code issued or consent refused); False when
    it is not there any more, e.g. another request with the same mark got in first."""
    nonce = _nonce_of(ctx, proof, mark, client_id) if mark else None
    if nonce is None:
        return False
    column = getattr(WebSession, proof.column)
    cleared = db.execute(
        update(WebSession)
        .where(WebSession.id == web_session.id, column == nonce)
        .values({proof.column: None})
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(cleared, "rowcount", 0) == 1)
