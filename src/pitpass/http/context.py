"""The application's shared state as an HTTP handler reaches it."""

from __future__ import annotations

from fastapi import BackgroundTasks, Request

from pitpass.services.context import AppContext


def app_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def deliver_later(background: BackgroundTasks, context: AppContext, mail_ids: list[int]) -> None:
    """Send committed outbox messages after the response (services/mail.py)."""
    if mail_ids:
        background.add_task(context.mailer.deliver, context.session_factory, mail_ids)
