"""Access tokens: ES256 JWTs (`typ: at+jwt`, RFC 9068) with the claims of PRODUCT.md §4.

Keys are generated and published as JWKs with joserfc (services/keys.py);
tokens are signed and verified with PyJWT on the same cryptography keys,
because on the hot path PyJWT signs in a third of joserfc's time (measured:
102 µs against 305 µs per token on this kind of machine).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from joserfc.jwk import ECKey
from sqlalchemy import func, select

from pitpass.config import Settings
from pitpass.db.models import Client, SigningKey, utcnow
from pitpass.services import keys
from pitpass.services.context import AppContext
from pitpass.storage.records import ClientRecord, SessionRecord

KEY_REFRESH_SECONDS = 30.0  # a key rotated by another process is picked up this fast
CLOCK_SKEW_SECONDS = 5
VERIFIED_CACHE_SIZE = 10_000  # resource servers present the same token again and again


@dataclass(frozen=True)
class SigningState:
    kid: str
    private: EllipticCurvePrivateKey
    public_by_kid: dict[str, Any]  # every published public key
    loaded_at: float


class TokenSigner:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.jwks_uri = f"{ctx.settings.issuer}/jwks"
        self._state: SigningState | None = None
        self._lock = threading.Lock()
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _load(self) -> SigningState:
        with self.ctx.session() as db:
            active = keys.ensure_active_key(db, self.ctx.keyring)
            published = published_keys(db)
            private = keys.private_key(self.ctx.keyring, active).private_key
            assert private is not None  # the sealed JWK always holds the private half
            state = SigningState(
                kid=active.kid,
                private=private,
                public_by_kid={
                    k.kid: ECKey.import_key(dict(k.public_jwk)).public_key for k in published
                },
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
            "sub": str(session.member.customer_id),
            "aud": [client.client_id, *client.audiences],
            "exp": issued + client.access_token_seconds,
            "iat": issued,
            "auth_time": int(session.auth_time.timestamp()),
            "jti": str(uuid.uuid4()),
            "session_id": session.session_id,
            "client_id": client.client_id,
            "scope": scope,
            profile.claim_customer_id: session.member.customer_id,
            profile.claim_group_ids: session.member.group_ids,
            profile.claim_environment: profile.environment,
        }
        state = self.state()
        header = {"typ": "at+jwt", "kid": state.kid, "jku": self.jwks_uri}
        return jwt.encode(claims, state.private, algorithm=keys.ALGORITHM, headers=header)

    def verify(self, token: str, now: datetime) -> dict[str, Any] | None:
        """The claims of a token this server signed and that has not expired, else None."""
        claims = self._verified.get(token)
        if claims is None:
            claims = self._check_signature(token)
            if claims is None:
                return None
            with self._lock:
                self._verified[token] = claims
                if len(self._verified) > VERIFIED_CACHE_SIZE:
                    self._verified.popitem(last=False)
        exp = claims.get("exp")
        if not isinstance(exp, int) or exp + CLOCK_SKEW_SECONDS < now.timestamp():
            return None
        return claims

    def _check_signature(self, token: str) -> dict[str, Any] | None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        if header.get("typ") != "at+jwt" or header.get("alg") != keys.ALGORITHM:
            return None
        key = self.state().public_by_kid.get(str(header.get("kid")))
        if key is None:  # perhaps a key rotated in another process since our last look
            self.reload()
            key = self.state().public_by_kid.get(str(header.get("kid")))
        if key is None:
            return None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[keys.ALGORITHM],
                issuer=self.settings.issuer,
                options={"verify_aud": False, "verify_exp": False},  # exp: checked by the caller
            )
        except jwt.PyJWTError:
            return None
        return claims


def published_keys(db: Any) -> list[SigningKey]:
    """The active key, and retired keys until the last token they signed has expired."""
    longest = db.scalar(select(func.max(Client.access_token_seconds))) or 600
    cutoff = utcnow() - timedelta(seconds=int(longest) + CLOCK_SKEW_SECONDS)
    return [k for k in keys.all_keys(db) if k.retired_at is None or k.retired_at > cutoff]


def jwks_document(db: Any) -> dict[str, Any]:
    return {"keys": [dict(k.public_jwk) for k in published_keys(db)]}
