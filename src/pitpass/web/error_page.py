"""The error page every web route shows for what it cannot do."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from pitpass.http.render import render


def error_page(request: Request, title: str, detail: str, status_code: int) -> Response:
    return render(request, "error.html", {"title": title, "detail": detail}, status_code)
