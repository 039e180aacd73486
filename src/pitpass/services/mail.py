"""Mail: an outbox table first, then SMTP delivery (issue #2, item 5).

Every message is written to `mail_outbox` inside the caller's transaction, so
a message exists exactly when the change that caused it was committed. After
the commit, `deliver` sends it over SMTP, or, with no SMTP configured, writes
it to the log and leaves it readable on the staff mail page, so that a fresh
`make run` works offline.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
import anyio
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from pitpass.config import Settings
from pitpass.db.models import MailMessage, utcnow
from pitpass.services.crypto import Keyring

log = logging.getLogger("pitpass.mail")

MAX_ATTEMPTS = 5
SEAL_CONTEXT = "mail-body"


class Mailer:
    def __init__(self, settings: Settings, keyring: Keyring) -> None:
        self.settings = settings
        self.keyring = keyring

    @property
    def smtp_configured(self) -> bool:
        return bool(self.settings.smtp_host)

    def enqueue(self, db: Session, to: str, subject: str, body: str, kind: str) -> MailMessage:
        message = MailMessage(
            to_address=to,
            subject=subject,
            body_sealed=self.keyring.seal(body.encode("utf-8"), SEAL_CONTEXT),
            kind=kind,
        )
        db.add(message)
        db.flush()
        return message

    def body_of(self, message: MailMessage) -> str:
        return self.keyring.unseal(message.body_sealed, SEAL_CONTEXT).decode("utf-8")

    def _claim(self, factory: sessionmaker[Session], message_id: int) -> MailMessage | None:
        """Claim a pending message with one conditional UPDATE: two workers never both send."""
        with factory() as db, db.begin():
            claimed = db.execute(
                update(MailMessage)
                .where(MailMessage.id == message_id, MailMessage.status == "pending")
                .values(status="sending", attempts=MailMessage.attempts + 1)
            )
            if claimed.rowcount != 1:  # type: ignore[attr-defined]
                return None
            return db.get(MailMessage, message_id)

    def _finish(
        self, factory: sessionmaker[Session], message_id: int, status: str, error: str | None
    ) -> None:
        with factory() as db, db.begin():
            message = db.get(MailMessage, message_id)
            if message is None:
                return
            if status == "pending" and message.attempts >= MAX_ATTEMPTS:
                status = "failed"
            message.status = status
            message.last_error = error[:500] if error else None
            if status in ("sent", "logged"):
                message.sent_at = utcnow()

    def _as_email(self, message: MailMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.settings.mail_from
        email["To"] = message.to_address
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = make_msgid(domain="pitpass")
        email.set_content(self.body_of(message))
        return email

    async def _send(self, email: EmailMessage) -> None:
        settings = self.settings
        await aiosmtplib.send(
            email,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            username=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=15,
        )

    async def deliver(self, factory: sessionmaker[Session], message_ids: Iterable[int]) -> None:
        for message_id in message_ids:
            message = await anyio.to_thread.run_sync(self._claim, factory, message_id)
            if message is None:
                continue
            if not self.smtp_configured:
                # Offline mode: the log is the mailbox (the staff mail page shows it too).
                log.info(
                    "mail not sent (no SMTP configured)",
                    extra={
                        "mail_to": message.to_address,
                        "mail_subject": message.subject,
                        "mail_body": self.body_of(message),
                    },
                )
                await anyio.to_thread.run_sync(self._finish, factory, message_id, "logged", None)
                continue
            try:
                await self._send(self._as_email(message))
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                log.warning(
                    "mail delivery failed",
                    extra={"mail_id": message_id, "error": type(error).__name__},
                )
                await anyio.to_thread.run_sync(
                    self._finish, factory, message_id, "pending", f"{type(error).__name__}: {error}"
                )
            else:
                log.info("mail sent", extra={"mail_id": message_id, "mail_kind": message.kind})
                await anyio.to_thread.run_sync(self._finish, factory, message_id, "sent", None)

    def due_for_retry(self, factory: sessionmaker[Session]) -> list[int]:
        """Pending messages a first delivery did not finish (a crash, an SMTP outage)."""
        cutoff = utcnow() - timedelta(seconds=30)
        with factory() as db:
            return list(
                db.scalars(
                    select(MailMessage.id)
                    .where(MailMessage.status == "pending", MailMessage.created_at < cutoff)
                    .order_by(MailMessage.id)
                    .limit(100)
                )
            )

    def recent(self, db: Session, limit: int = 50) -> list[MailMessage]:
        return list(db.scalars(select(MailMessage).order_by(MailMessage.id.desc()).limit(limit)))
