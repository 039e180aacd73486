"""Keys stored in the database, sealed under PITPASS_SECRET_KEY (issue #11, Deliver 5).

The keyed hashes of client secrets, refresh tokens, codes, sessions and remembered
browsers cannot be re-made without the values they hash, so their key must not change
when the secret key does: it is stored here, and rotating the secret key only re-seals
it (`pitpass secret-key rewrap`). See docs/decisions.md.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from pitpass.db.models import SealedKey
from pitpass.services.crypto import Keyring

TOKEN_HASH = "token-hash"  # noqa: S105 - a row name, not a secret


def seal_context(name: str) -> str:
    return f"data-key:{name}"


def token_hash_key(session_factory: sessionmaker[Session], keyring: Keyring) -> bytes:
    """The stored token-hash key. On the first start after the upgrade there is none:
    store the key earlier versions derived from the secret key (from the oldest previous
    key if PITPASS_SECRET_KEY_PREVIOUS is already set), so no existing hash changes."""
    with session_factory() as db, db.begin():
        row = db.get(SealedKey, TOKEN_HASH)
        if row is not None:
            return keyring.unseal(row.sealed, seal_context(TOKEN_HASH))
    key = keyring.derived_token_hash_key(oldest=True)
    try:
        with session_factory() as db, db.begin():
            sealed = keyring.seal(key, seal_context(TOKEN_HASH))
            db.add(SealedKey(name=TOKEN_HASH, sealed=sealed))
    except IntegrityError:  # another process stored it first: use that one
        return token_hash_key(session_factory, keyring)
    return key
