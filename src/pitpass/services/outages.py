"""What "temporarily unavailable" means: the one list of errors that answer 503.

The database's errors are listed by the store (storage.STORAGE_UNAVAILABLE_ERRORS),
Redis's become ThrottleUnavailable in services/ratelimit.py. The protocol
(oauth/responses.py), the pages and the API (app.py) answer each of them with
503 `temporarily_unavailable` (PRODUCT.md §4) and log it through `unavailable_kind`.
"""

from __future__ import annotations

from typing import Literal

from pitpass.services.ratelimit import ThrottleUnavailable
from pitpass.storage import STORAGE_UNAVAILABLE_ERRORS

UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    *STORAGE_UNAVAILABLE_ERRORS,
    ThrottleUnavailable,
)


def unavailable_kind(error: BaseException) -> Literal["database", "redis"]:
    """Which dependency an UNAVAILABLE_ERRORS error says is down."""
    return "redis" if isinstance(error, ThrottleUnavailable) else "database"


def description(error: BaseException) -> str:
    what = "rate limits" if unavailable_kind(error) == "redis" else "storage"
    return f"{what} unavailable; retry shortly"
