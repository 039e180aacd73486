"""Access tokens: ES256 JWTs (`typ: at+jwt`, RFC 9068) with the claims of PRODUCT.md §4."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from sqlalchemy import func, select

from pitpass.config import Settings
from pitpass.db.models import Client, SigningKey, utcnow
from pitpass.oauth.store import ClientRecord, SessionRecord
from pitpass.services import keys
from pitpass.services.context import AppContext

KEY_REFRESH_SECONDS = 30.0  # a key rotated by another process is picked up this fast
CLOCK_SKEW_SECONDS = 5


@dataclass(frozen=True)
class SigningState:
    kid: str
    private: ECKey
    verify: KeySet  # every published public key
    loaded_at: float


class TokenSigner:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.jwks_uri = f"{ctx.settings.issuer}/jwks"
        self._state: SigningState | None = None
        self._lock = threading.Lock()

    def _load(self) -> SigningState:
        with self.ctx.session() as db:
            active = keys.ensure_active_key(db, self.ctx.keyring)
            published = published_keys(db)
            state = SigningState(
                kid=active.kid,
                private=keys.private_key(self.ctx.keyring, active),
                verify=KeySet([ECKey.import_key(dict(k.public_jwk)) for k in published]),
                loaded_at=time.monotonic(),
            )
        return state

    def state(self) -> SigningState:
        current = self._state
        if current is None or time.monotonic() - current.loaded_at > KEY_REFRESH_SECONDS:
            with self._lock:
                current = self._state = self._load()
        return current

    def reload(self) -> None:
        with self._lock:
            self._state = self._load()

    def access_token(
        self,
        client: ClientRecord,
        session: SessionRecord,
        scope: str,
        now: datetime,
    ) -> str:
        profile = self.settings.profile
        issued = int(now.timestamp())
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": str(session.customer_id),
            "aud": [client.client_id, *client.audiences],
            "exp": issued + client.access_token_seconds,
            "iat": issued,
            "auth_time": int(session.auth_time.timestamp()),
            "jti": str(uuid.uuid4()),
            "session_id": session.session_id,
            "client_id": client.client_id,
            "scope": scope,
            profile.claim_customer_id: session.customer_id,
            profile.claim_group_ids: session.group_ids,
            profile.claim_environment: profile.environment,
        }
        state = self.state()
        header = {"alg": keys.ALGORITHM, "typ": "at+jwt", "kid": state.kid, "jku": self.jwks_uri}
        return jwt.encode(header, claims, state.private)

    def verify(self, token: str, now: datetime) -> dict[str, Any] | None:
        """The claims of a token this server signed and that has not expired, else None."""
        state = self.state()
        try:
            decoded = jwt.decode(token, state.verify, algorithms=[keys.ALGORITHM])
        except (JoseError, ValueError):
            try:  # a key rotated in another process since our last look
                self.reload()
                decoded = jwt.decode(token, self.state().verify, algorithms=[keys.ALGORITHM])
            except (JoseError, ValueError):
                return None
        claims = decoded.claims
        if decoded.header.get("typ") != "at+jwt" or claims.get("iss") != self.settings.issuer:
            return None
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp + CLOCK_SKEW_SECONDS < now.timestamp():
            return None
        return dict(claims)


def published_keys(db: Any) -> list[SigningKey]:
    """The active key, and retired keys until the last token they signed has expired."""
    longest = db.scalar(select(func.max(Client.access_token_seconds))) or 600
    cutoff = utcnow() - timedelta(seconds=int(longest) + CLOCK_SKEW_SECONDS)
    return [k for k in keys.all_keys(db) if k.retired_at is None or k.retired_at > cutoff]


def jwks_document(db: Any) -> dict[str, Any]:
    return {"keys": [dict(k.public_jwk) for k in published_keys(db)]}
