"""`pitpass secret-key rewrap`: everything sealed at rest, re-sealed under the current
PITPASS_SECRET_KEY (issue #11, Deliver 5; docs/decisions.md).

What is sealed: signing keys' private halves, mail bodies, client secrets awaiting their
one-time view, authenticator app keys, and the stored token-hash key
(services/data_keys.py). All or nothing: one value that no configured key opens and
nothing is changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from pitpass.db.models import ClientSecret, MailMessage, Member, SealedKey, SigningKey
from pitpass.services import client_secrets, data_keys, keys, mail, totp
from pitpass.services.crypto import Keyring, SealError

# What is sealed: (what it is, its column, the context each value was sealed for).
SEALED: tuple[tuple[str, InstrumentedAttribute[Any], Callable[[Any], str]], ...] = (
    ("signing keys", SigningKey.private_jwk_sealed, lambda _row: keys.SEAL_CONTEXT),
    ("mail bodies", MailMessage.body_sealed, lambda _row: mail.SEAL_CONTEXT),
    (
        "client secrets awaiting their view",
        ClientSecret.reveal_sealed,
        lambda _row: client_secrets.REVEAL_CONTEXT,
    ),
    ("authenticator app keys", Member.totp_secret_sealed, lambda row: totp.seal_context(row.id)),
    ("stored keys", SealedKey.sealed, lambda row: data_keys.seal_context(row.name)),
)


class UnreadableSealed(Exception):
    """Some sealed value opens with no configured key; nothing was changed."""


@dataclass
class RewrapReport:
    resealed: dict[str, int] = field(default_factory=dict)
    already_current: int = 0

    def summary(self) -> str:
        counts = ", ".join(f"{count} {what}" for what, count in self.resealed.items())
        return f"re-sealed {counts}; {self.already_current} already under the current key"


def rewrap(db: Session, keyring: Keyring) -> RewrapReport:
    """Re-seal under the current key whatever a previous key sealed (idempotent)."""
    report = RewrapReport()
    unreadable: dict[str, int] = {}
    for what, column, context_of in SEALED:
        report.resealed[what] = 0
        for row in db.scalars(select(column.class_).where(column.is_not(None))):
            try:
                fresh = keyring.reseal(getattr(row, column.key), context_of(row))
            except SealError:
                unreadable[what] = unreadable.get(what, 0) + 1
                continue
            if fresh is None:
                report.already_current += 1
            else:
                setattr(row, column.key, fresh)
                report.resealed[what] += 1
    if unreadable:
        found = ", ".join(f"{count} {what}" for what, count in unreadable.items())
        raise UnreadableSealed(
            f"{found} open with neither PITPASS_SECRET_KEY nor PITPASS_SECRET_KEY_PREVIOUS "
            "(set the key they were sealed with in PITPASS_SECRET_KEY_PREVIOUS); "
            "nothing was changed"
        )
    return report
