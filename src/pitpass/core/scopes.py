"""Scopes (RFC 6749 §3.3): space-separated, case-sensitive, from the profile's list."""

from __future__ import annotations

from collections.abc import Iterable


def parse_scope(raw: str) -> list[str]:
    """The distinct scopes of a `scope` parameter, in a stable order."""
    return sorted(set(raw.split()))


def unknown_scopes(requested: Iterable[str], known: Iterable[str]) -> list[str]:
    allowed = set(known)
    return [scope for scope in requested if scope not in allowed]


def join_scope(scopes: Iterable[str]) -> str:
    return " ".join(sorted(set(scopes)))
