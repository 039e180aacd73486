"""Every page and API request is answered by a deadline, even when PostgreSQL is frozen.

The protocol's store bounds each of its statements itself (storage/pg_connections.py).
The pages' ORM runs on psycopg, which has no client-side statement deadline: a frozen
server holds its thread until it resumes. So the request runs as its own task, and at
the deadline, if no response has started, it is answered with `answer` (503,
docs/decisions.md "Deadlines on storage"); the late handler's output is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("pitpass.http")


class RequestDeadline:
    def __init__(self, app: ASGIApp, seconds: float, answer: Callable[[Request], Response]):
        self.app = app
        self.seconds = seconds
        self.answer = answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = abandoned = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if abandoned:
                return  # answered already, at the deadline
            started = True
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _pending = await asyncio.wait({handler}, timeout=self.seconds)
        if done or started:
            await handler  # finished, or already answering: let it finish as it will
            return
        abandoned = True
        handler.add_done_callback(_log_late_failure)
        log.warning("request past its deadline", extra={"path": scope.get("path")})
        await self.answer(Request(scope))(scope, receive, send)


def _log_late_failure(handler: asyncio.Future[None]) -> None:
    if not handler.cancelled() and (error := handler.exception()) is not None:
        log.warning("a request answered at its deadline failed later: %r", error)
