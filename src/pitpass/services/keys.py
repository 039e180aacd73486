"""Signing keys for access tokens (issue #2 item 8; issue #4; issue #11 Deliver 5).

EC P-256 keys (ES256, RFC 7518 §3.4). The private JWK is sealed with AES-GCM
under a subkey of PITPASS_SECRET_KEY; `kid` is the RFC 7638 thumbprint.

A key's life (docs/decisions.md, "Signing keys rotate on a schedule"):
- published in the JWKS from the moment it exists;
- signs from `created_at`, which a scheduled rotation sets PUBLISH_AHEAD in the
  future, so resource servers that cache the JWKS already hold the key when the
  first token signed with it arrives;
- stops signing at `retired_at`; stays published until the longest access token
  it may have signed has expired (RETIRED_PUBLISHED_FOR), then is dropped.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from pitpass.core import policy
from pitpass.db.models import SigningKey, utcnow
from pitpass.services import audit
from pitpass.services.crypto import Keyring

ALGORITHM = "ES256"
CURVE = "P-256"
SEAL_CONTEXT = "signing-key"
# Longer than any JWKS cache a resource server keeps (ours says max-age=60; PyJWT's
# PyJWKClient keeps 300 s), so the next key is known before it signs anything.
PUBLISH_AHEAD = timedelta(hours=1)
# The longest access token any client may get (core/policy.LIFETIME_BOUNDS), plus a
# minute for clock skew and for signers that have not yet reloaded their keys.
RETIRED_PUBLISHED_FOR = timedelta(seconds=policy.LIFETIME_BOUNDS["access_token_seconds"][1] + 60)


def _new_key(db: Session, keyring: Keyring, note: str, signs_from: datetime) -> SigningKey:
    key = ECKey.generate_key(CURVE)
    kid = key.thumbprint()
    public = key.as_dict(private=False) | {"kid": kid, "alg": ALGORITHM, "use": "sig"}
    private = json.dumps(key.as_dict(private=True)).encode("utf-8")
    record = SigningKey(
        kid=kid,
        algorithm=ALGORITHM,
        public_jwk=public,
        private_jwk_sealed=keyring.seal(private, SEAL_CONTEXT),
        note=note,
        created_at=signs_from,
    )
    db.add(record)
    db.flush()
    return record


def all_keys(db: Session) -> list[SigningKey]:
    return list(db.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))


def signing_keys(keys: list[SigningKey], now: datetime) -> list[SigningKey]:
    """Keys that sign at `now` or will (a scheduled successor), oldest first: the
    signer uses the newest whose `created_at` has come."""
    live = [k for k in keys if k.retired_at is None or k.retired_at > now]
    current = sorted((k for k in live if k.created_at <= now), key=lambda k: k.created_at)
    pending = [k for k in live if k.created_at > now]
    return current[-1:] + sorted(pending, key=lambda k: k.created_at)


def active_key(db: Session, now: datetime | None = None) -> SigningKey | None:
    now = now or utcnow()
    candidates = [k for k in signing_keys(all_keys(db), now) if k.created_at <= now]
    return candidates[-1] if candidates else None


def published(keys: list[SigningKey], now: datetime) -> list[SigningKey]:
    """The JWKS: every key that signs or will, and retired keys until their tokens expire."""
    return [k for k in keys if k.retired_at is None or k.retired_at + RETIRED_PUBLISHED_FOR > now]


def ensure_active_key(db: Session, keyring: Keyring) -> SigningKey:
    """Generate the first key on first start; afterwards return the active one."""
    return active_key(db) or _new_key(db, keyring, "generated on first start", utcnow())


def rotation_due(keys: list[SigningKey], now: datetime, days: int) -> bool:
    """PITPASS_SIGNING_KEY_DAYS: the newest unretired key (signing, or scheduled to) is
    that old. Unretired: `keys rotate` retires a scheduled successor dated in the future."""
    newest = max(
        (k for k in keys if k.retired_at is None), key=lambda k: k.created_at, default=None
    )
    return newest is not None and newest.created_at <= now - timedelta(days=days)


def rotate_if_due(
    db: Session, keyring: Keyring, days: int, now: datetime | None = None
) -> SigningKey | None:
    """PITPASS_SIGNING_KEY_DAYS: when the newest key is that old, schedule its successor.

    Several processes may find it due at once: the one UPDATE below both decides and
    claims (it retires the newest key only if it is still unretired and due), so only
    the process whose UPDATE changed a row inserts the successor. PostgreSQL makes the
    others wait on the row lock and then match nothing; SQLite runs writers one at a time."""
    now = now or utcnow()
    newest = (
        select(SigningKey.kid)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )
    switch_at = now + PUBLISH_AHEAD
    retired = db.scalars(
        update(SigningKey)
        .where(
            SigningKey.kid == newest.scalar_subquery(),
            SigningKey.retired_at.is_(None),
            SigningKey.created_at <= now - timedelta(days=days),
        )
        .values(retired_at=switch_at)
        .returning(SigningKey.kid)
    ).all()
    if not retired:
        return None  # not due, or another process rotated it first
    new = _new_key(db, keyring, f"scheduled after {days} days", switch_at)
    audit.record(
        db,
        "keys.rotated",
        actor_label="schedule",
        target_type="signing_key",
        target_id=new.kid,
        details={"retired": retired, "signs_from": switch_at.isoformat()},
    )
    return new


def rotate(db: Session, keyring: Keyring, actor_label: str) -> tuple[SigningKey, list[str]]:
    """Make a new key that signs now; every other key stops signing (still published).
    Immediate, for a key believed compromised; the schedule publishes ahead instead."""
    now = utcnow()
    retired = []
    for record in db.scalars(
        select(SigningKey).where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > now))
    ):
        record.retired_at = now
        retired.append(record.kid)
    new = _new_key(db, keyring, f"rotated by {actor_label}", now)
    audit.record(
        db,
        "keys.rotated",
        actor_label=actor_label,
        target_type="signing_key",
        target_id=new.kid,
        details={"retired": retired},
    )
    return new, retired


def private_key(keyring: Keyring, record: SigningKey) -> ECKey:
    data: dict[str, Any] = json.loads(keyring.unseal(record.private_jwk_sealed, SEAL_CONTEXT))
    return ECKey.import_key(data)
