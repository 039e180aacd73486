"""Readable `client_id`s: `My League Manager` → `my-league-manager` (PRODUCT.md §3)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

MAX_SLUG_LENGTH = 48


def slugify(name: str) -> str:
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_only.lower()).strip("-")
    return slug[:MAX_SLUG_LENGTH].rstrip("-") or "client"


def unique_slug(name: str, taken: Callable[[str], bool]) -> str:
    """The slug, or the slug with `-2`, `-3`… when taken (ever: ids are never reused)."""
    base = slugify(name)
    candidate, number = base, 1
    while taken(candidate):
        number += 1
        candidate = f"{base}-{number}"
    return candidate
