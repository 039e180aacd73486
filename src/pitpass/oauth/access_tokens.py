"""Access tokens: ES256 JWTs (`typ: at+jwt`, RFC 9068) with the claims of PRODUCT.md §4;
and OpenID Connect ID tokens (`typ: JWT`), signed with the same keys.

Keys are generated and published as JWKs with joserfc (services/keys.py);
tokens are signed and verified with PyJWT on the same cryptography keys,
because on the hot path PyJWT signs in a third of joserfc's time (measured:
102 µs against 305 µs per token on this kind of machine). The claims are encoded
with orjson and handed to PyJWT's JWS layer (`jws.encode`), which adds the header
and the signature: `jwt.encode` would copy and re-check them and encode them with
the standard library's encoder (issue #14).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
from joserfc.jwk import ECKey
from sqlalchemy.exc import SQLAlchemyError

from pitpass.config import Settings
from pitpass.core import openid
from pitpass.db.models import utcnow
from pitpass.services import keys
from pitpass.services.context import AppContext
from pitpass.storage.records import ClientRecord, SessionRecord

KEY_REFRESH_SECONDS = 30.0  # keys changed by another process are picked up this fast
CLOCK_SKEW_SECONDS = 5
VERIFIED_CACHE_SIZE = 10_000  # resource servers present the same token again and again

log = logging.getLogger("pitpass.keys")


@dataclass(frozen=True)
class SigningState:
    # (signs from, as a Unix time; kid; private key), oldest first: the current key
    # and a scheduled successor, if any (services/keys.py).
    signers: tuple[tuple[float, str, EllipticCurvePrivateKey], ...]
    public_by_kid: dict[str, Any]  # every published public key

    def signer_at(self, timestamp: float) -> tuple[str, EllipticCurvePrivateKey]:
        chosen = self.signers[0]
        for entry in self.signers[1:]:
            if entry[0] <= timestamp:
                chosen = entry
        return chosen[1], chosen[2]


class TokenSigner:
    """Signs and verifies access tokens with the keys held in memory.

    The keys are read from the database (an ORM query and unsealing, ~30 ms) only
    in a background thread, at most once per KEY_REFRESH_SECONDS and one at a time,
    so a token with an unknown `kid` costs a dictionary miss on the event loop
    (issue #11, defect 9). The first load happens at startup (app lifespan)."""

    def __init__(self, ctx: AppContext, clock: Callable[[], float] = time.monotonic) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.jwks_uri = f"{ctx.settings.issuer}/jwks"
        self.clock = clock
        self.wall_clock: Callable[[], datetime] = utcnow
        self._state: SigningState | None = None
        self._lock = threading.Lock()
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._last_refresh = -math.inf  # clock() when the last load began
        self._refresher: threading.Thread | None = None

    def _load(self) -> SigningState:
        now, days = self.wall_clock(), self.settings.signing_key_days
        with self.ctx.session() as db:
            due = keys.rotation_due(keys.all_keys(db), now, days)
        if due:  # a write only when due, not every refresh
            try:
                with self.ctx.session() as db:
                    keys.rotate_if_due(db, self.ctx.keyring, days, now)
            except SQLAlchemyError:  # e.g. SQLite busy: the next refresh tries again
                log.exception("scheduled signing-key rotation failed")
        with self.ctx.session() as db:
            keys.ensure_active_key(db, self.ctx.keyring)
            every = keys.all_keys(db)
            signers = []
            for record in keys.signing_keys(every, now):
                private = keys.private_key(self.ctx.keyring, record).private_key
                assert private is not None  # the sealed JWK always holds the private half
                signers.append((record.created_at.timestamp(), record.kid, private))
            return SigningState(
                signers=tuple(signers),
                public_by_kid={
                    k.kid: ECKey.import_key(dict(k.public_jwk)).public_key
                    for k in keys.published(every, now)
                },
            )

    def state(self) -> SigningState:
        current = self._state
        if current is None:  # only before startup preloaded the keys
            self.reload()
            current = self._state
            assert current is not None
        else:
            self.refresh_if_stale()
        return current

    def reload(self) -> None:
        """Load the keys now, in the calling thread (startup, CLI, tests)."""
        self._last_refresh = self.clock()
        self._state = self._load()

    def refresh_if_stale(self) -> None:
        """Start a background reload unless one ran in the last KEY_REFRESH_SECONDS or
        is running (single flight)."""
        if self.clock() - self._last_refresh < KEY_REFRESH_SECONDS:
            return  # the common case, decided without the lock
        with self._lock:
            if self._refresher is not None and self._refresher.is_alive():
                return
            if self.clock() - self._last_refresh < KEY_REFRESH_SECONDS:
                return
            self._last_refresh = self.clock()
            self._refresher = threading.Thread(
                target=self._refresh, name="pitpass-key-refresh", daemon=True
            )
            self._refresher.start()

    def _refresh(self) -> None:
        try:
            self._state = self._load()
        except Exception:  # the database may be down: keep the keys we have
            log.exception("signing keys could not be reloaded; keeping the previous set")

    def wait_for_refresh(self, timeout: float = 30.0) -> None:
        refresher = self._refresher
        if refresher is not None:
            refresher.join(timeout)

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
        kid, private = self.state().signer_at(now.timestamp())
        header = {"typ": "at+jwt", "kid": kid, "jku": self.jwks_uri}
        return _signed(claims, private, header)

    def id_token(self, facts: openid.IdTokenFacts) -> str:
        """An OpenID Connect ID token (Core §2): the key that signs access tokens at that
        moment, named by `kid`, so a relying party checks it against the same JWKS. Its
        `typ` keeps it from passing for an access token (`_check_signature`)."""
        kid, private = self.state().signer_at(facts.now.timestamp())
        header = {"typ": openid.ID_TOKEN_TYPE, "kid": kid}
        return _signed(openid.id_token_claims(facts), private, header)

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
        if key is None:  # perhaps a key made by another process: look again, off the loop
            self.refresh_if_stale()
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


def _signed(claims: dict[str, Any], key: EllipticCurvePrivateKey, header: dict[str, str]) -> str:
    """A compact JWS of the claims (RFC 7515 §7.1), signed with ES256 by PyJWT."""
    return jwt.api_jws.encode(orjson.dumps(claims), key, algorithm=keys.ALGORITHM, headers=header)


def jwks_document(db: Any, now: datetime | None = None) -> dict[str, Any]:
    published = keys.published(keys.all_keys(db), now or utcnow())
    return {"keys": [dict(k.public_jwk) for k in published]}
