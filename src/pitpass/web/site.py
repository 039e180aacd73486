"""What browsers ask of every site: the icon at /favicon.ico (the pages link the SVG)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse

router = APIRouter(include_in_schema=False)


@router.get("/favicon.ico")
def favicon() -> RedirectResponse:
    # Browsers follow the redirect and cache the icon; no second copy of it to keep.
    return RedirectResponse("/static/favicon.svg", status_code=308)
