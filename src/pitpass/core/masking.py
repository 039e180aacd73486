"""Secret and password masking of the reference service (PRODUCT.md §4).

The client sends `base64(sha256(secret + identifier.strip().lower()))` instead of
the secret itself: standard Base64 with padding, secret first, identifier
normalised (never the secret).
"""

from __future__ import annotations

import base64
import hashlib


def normalise_identifier(identifier: str) -> str:
    return identifier.strip().lower()


def mask_secret(secret: str, identifier: str) -> str:
    digest = hashlib.sha256((secret + normalise_identifier(identifier)).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")
