"""The outbox: SMTP delivery, offline mode, failures kept for retry."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select, update

from pitpass.db.models import MailMessage
from tests.conftest import Site
from tests.support import free_port

EMAIL = "driver@example.com"


def statuses(site: Site) -> list[str]:
    with site.context.session() as db:
        return list(db.scalars(select(MailMessage.status).order_by(MailMessage.id)))


def test_mail_is_delivered_over_smtp_and_marked_sent(sqlite_site: Site) -> None:
    sqlite_site.add_member(EMAIL)
    sqlite_site.start_sign_in(sqlite_site.browser(), EMAIL)
    message = sqlite_site.mailbox.wait_for(EMAIL)
    assert message["From"] == "Pitpass <no-reply@pitpass.invalid>"
    assert statuses(sqlite_site) == ["sent"]


def test_without_smtp_mail_goes_to_the_log_and_the_staff_page(
    site_factory: Any, sqlite_backend: Any, caplog: pytest.LogCaptureFixture
) -> None:
    site = site_factory(sqlite_backend, smtp_host=None)
    site.add_member("staff@example.com", staff=True)
    browser = site.browser()
    with caplog.at_level(logging.INFO, logger="pitpass.mail"):
        site.start_sign_in(browser, "staff@example.com")
    logged = [r for r in caplog.records if r.getMessage() == "mail not sent (no SMTP configured)"]
    assert len(logged) == 1
    body = logged[0].mail_body  # type: ignore[attr-defined]
    code = body.split("sign-in code is ")[1][:6]
    assert statuses(site) == ["logged"]
    done = site.submit(browser, "/signin/code", "/signin/code", code=code)
    assert done.status_code == 303
    page = browser.get("/console/mail")
    assert f"sign-in code is {code}" in page.text
    assert "No SMTP server is configured" in page.text


def test_unreachable_smtp_keeps_the_message_pending_for_retry(
    site_factory: Any, sqlite_backend: Any, mailbox: Any
) -> None:
    site = site_factory(sqlite_backend, smtp_port=free_port())  # nothing listens there
    site.add_member(EMAIL)
    started = site.start_sign_in(site.browser(), EMAIL)
    assert started.status_code == 303  # the member is not blocked by the outage
    with site.context.session() as db:
        message = db.scalar(select(MailMessage))
        assert message is not None
        assert message.status == "pending"
        assert message.attempts == 1
        assert message.last_error
        # The retry pass takes messages older than its grace period.
        db.execute(update(MailMessage).values(created_at=message.created_at.replace(year=2020)))
    # The SMTP server comes back: point the mailer at it and run one retry pass.
    box, port = mailbox
    site.context.settings.smtp_port = port
    pending = site.context.mailer.due_for_retry(site.context.session_factory)
    with ThreadPoolExecutor(1) as worker:  # its own event loop, whatever runs in this thread
        worker.submit(
            asyncio.run, site.context.mailer.deliver(site.context.session_factory, pending)
        ).result()
    assert box.wait_for(EMAIL)["Subject"] == "Your Pitpass sign-in code"
    assert statuses(site) == ["sent"]
