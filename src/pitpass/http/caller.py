"""Who sent a request, as the services record it (audit trail, sessions, throttles)."""

from __future__ import annotations

from fastapi import Request

from pitpass.services.signin import Client


def client_of(request: Request) -> Client:
    return Client(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
