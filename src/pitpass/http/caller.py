"""Who sent a request, as the services and the protocol record it (audit trail, sessions,
throttles): the one rule for the caller's address and user agent."""

from __future__ import annotations

from starlette.requests import Request

from pitpass.services.signin import Client

MAX_USER_AGENT = 512  # what a session records of it (the columns' size)


def ip_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def user_agent_of(request: Request) -> str | None:
    return (request.headers.get("user-agent") or "")[:MAX_USER_AGENT] or None


def client_of(request: Request) -> Client:
    return Client(ip=ip_of(request), user_agent=user_agent_of(request))
