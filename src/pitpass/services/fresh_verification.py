"""`prompt=verify`: proof that the member typed an emailed code after the request began.

Both halves are values the server signed (PRODUCT.md §4; issue #11, defect 7):
- the *request mark* travels in the authorize URL and says when the server first
  sent this client's request to the emailed code; it cannot be forged or backdated;
- the *code proof* is a cookie set only when an emailed code is accepted, bound to
  the web session that code opened. A remembered browser never gets one.
`prompt=verify` is satisfied when the code proof is not older than the request mark.
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.db.models import WebSession
from pitpass.services.context import AppContext

REQUEST_MARK = "pitpass_verified_after"  # our own authorize parameter; clients never send it


def _serializer(ctx: AppContext, purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(ctx.keyring.cookie_signing_keys, salt=purpose)


def _round_trip_seconds(ctx: AppContext) -> int:
    """How long a mark stays good: sign-in, mail and code, twice the code's own lifetime."""
    return ctx.settings.signin_code_minutes * 60 * 2


def request_mark(ctx: AppContext, client_id: str) -> str:
    """A signed "now" for this client's request, put in the URL the sign-in returns to."""
    return _serializer(ctx, "prompt-verify-mark").dumps(client_id)


def _signed_at(serializer: URLSafeTimedSerializer, value: str, max_age: int) -> tuple[object, int]:
    payload, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
    return payload, int(signed_at.timestamp())


def code_proof(ctx: AppContext, db: Session, session_token: str) -> str:
    """The cookie value for a web session just opened by an accepted emailed code."""
    session_id = db.scalar(
        select(WebSession.id).where(WebSession.token_hash == ctx.keyring.token_hash(session_token))
    )
    return _serializer(ctx, "prompt-verify-proof").dumps(session_id)


def proves_fresh_code(
    ctx: AppContext, client_id: str, mark: str, proof: str | None, web_session_id: int
) -> bool:
    """True only for a valid mark of this client and a code proof of this web session
    signed no earlier than the mark (signatures carry whole seconds)."""
    if not mark or not proof:
        return False
    try:
        marked_client, marked_at = _signed_at(
            _serializer(ctx, "prompt-verify-mark"), mark, _round_trip_seconds(ctx)
        )
        proved_session, proved_at = _signed_at(
            _serializer(ctx, "prompt-verify-proof"), proof, ctx.settings.web_session_hours * 3600
        )
    except BadSignature:  # also expired marks and proofs (SignatureExpired)
        return False
    same_request = marked_client == client_id and proved_session == web_session_id
    return same_request and proved_at >= marked_at
