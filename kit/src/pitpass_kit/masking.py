"""The service's masking (PRODUCT.md §4): a client never sends its secret, nor a member
their password, in the clear, but `base64(sha256(secret + identifier.strip().lower()))`.

The kit is its own distribution and does not import the server, so the rule is
written here too; the kit's tests check it against the book's vectors.
"""

from __future__ import annotations

import base64
import hashlib


def mask(secret: str, identifier: str) -> str:
    """The client secret masked with the client_id, or the password with the username."""
    salted = secret + identifier.strip().lower()
    return base64.b64encode(hashlib.sha256(salted.encode("utf-8")).digest()).decode("ascii")
