"""PKCE, RFC 7636: the challenge sent to /authorize and the verifier sent to /token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

METHODS = ("plain", "S256")
DEFAULT_METHOD = "plain"  # RFC 7636 §4.3, and the reference service's default
# §4.1: 43-128 characters from the unreserved set; the challenge has the same form.
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def is_well_formed(value: str) -> bool:
    return VERIFIER.fullmatch(value) is not None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str, method: str) -> bool:
    """RFC 7636 §4.6, compared in constant time."""
    if not is_well_formed(verifier):
        return False
    expected = s256(verifier) if method == "S256" else verifier
    return hmac.compare_digest(expected.encode("ascii"), challenge.encode("ascii"))
