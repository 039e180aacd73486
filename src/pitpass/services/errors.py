"""The one error the services raise for a refused change (PRODUCT.md §3).

Its `kind` tells the caller how to answer, so no caller has to guess from the
messages: a field error is bad input the caller can correct (the API says 400),
a conflict is a change the current state does not allow (the API says 409),
throttled means "not now": too many attempts, retry after `retry_after` seconds (429).
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(Enum):
    FIELD = "field"
    CONFLICT = "conflict"
    THROTTLED = "throttled"


class ServiceError(Exception):
    """`errors` maps what is at fault (a field, or the thing in conflict) to a message."""

    def __init__(
        self, kind: ErrorKind, errors: dict[str, str], retry_after: int | None = None
    ) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.kind = kind
        self.errors = errors
        self.retry_after = retry_after

    @classmethod
    def fields(cls, errors: dict[str, str]) -> ServiceError:
        return cls(ErrorKind.FIELD, errors)

    @classmethod
    def field(cls, name: str, message: str) -> ServiceError:
        return cls(ErrorKind.FIELD, {name: message})

    @classmethod
    def conflict(cls, subject: str, message: str) -> ServiceError:
        return cls(ErrorKind.CONFLICT, {subject: message})

    @classmethod
    def throttled(cls, field: str, message: str, retry_after: int) -> ServiceError:
        return cls(ErrorKind.THROTTLED, {field: message}, retry_after)
