"""Signing keys for access tokens (issue #2 item 8; used by issue #4).

EC P-256 keys (ES256, RFC 7518 §3.4). The private JWK is sealed with AES-GCM
under a subkey of PITPASS_SECRET_KEY; `kid` is the RFC 7638 thumbprint.
"""

from __future__ import annotations

import json
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.db.models import SigningKey, utcnow
from pitpass.services import audit
from pitpass.services.crypto import Keyring

ALGORITHM = "ES256"
CURVE = "P-256"
SEAL_CONTEXT = "signing-key"


def _new_key(db: Session, keyring: Keyring, note: str) -> SigningKey:
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
    )
    db.add(record)
    db.flush()
    return record


def active_key(db: Session) -> SigningKey | None:
    return db.scalar(
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )


def ensure_active_key(db: Session, keyring: Keyring) -> SigningKey:
    """Generate the first key on first start; afterwards return the active one."""
    return active_key(db) or _new_key(db, keyring, note="generated on first start")


def rotate(db: Session, keyring: Keyring, actor_label: str) -> tuple[SigningKey, list[str]]:
    """Make a new active key; every older active key is retired (still published)."""
    retired = []
    for record in db.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        record.retired_at = utcnow()
        retired.append(record.kid)
    new = _new_key(db, keyring, note=f"rotated by {actor_label}")
    audit.record(
        db,
        "keys.rotated",
        actor_label=actor_label,
        target_type="signing_key",
        target_id=new.kid,
        details={"retired": retired},
    )
    return new, retired


def all_keys(db: Session) -> list[SigningKey]:
    return list(db.scalars(select(SigningKey).order_by(SigningKey.created_at.desc())))


def private_key(keyring: Keyring, record: SigningKey) -> ECKey:
    data: dict[str, Any] = json.loads(keyring.unseal(record.private_jwk_sealed, SEAL_CONTEXT))
    return ECKey.import_key(data)
