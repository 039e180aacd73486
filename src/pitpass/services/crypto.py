"""Keys derived from PITPASS_SECRET_KEY and the few primitives built on them.

Each purpose gets its own subkey through HKDF (RFC 5869), so a key used to
seal data at rest is never the key that hashes tokens or signs cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cached_property

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12  # the AES-GCM nonce size NIST SP 800-38D recommends


class SealError(Exception):
    """Sealed data could not be opened: wrong key or tampered bytes."""


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random value (256 bits by default)."""
    return secrets.token_urlsafe(nbytes)


def constant_time_equals(left: str, right: str) -> bool:
    return hmac.compare_digest(left.encode("utf-8"), right.encode("utf-8"))


class Keyring:
    def __init__(self, secret_key: bytes) -> None:
        self._secret_key = secret_key

    def _derive(self, purpose: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"pitpass:{purpose}".encode()
        ).derive(self._secret_key)

    @cached_property
    def _sealing_key(self) -> AESGCM:
        return AESGCM(self._derive("seal-at-rest"))

    @cached_property
    def _token_hash_key(self) -> bytes:
        return self._derive("token-hash")

    @cached_property
    def cookie_signing_key(self) -> bytes:
        return self._derive("cookie-signing")

    @cached_property
    def _csrf_key(self) -> bytes:
        return self._derive("csrf")

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """AES-GCM encrypt; `context` is bound as associated data (what the bytes are for)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._sealing_key.encrypt(nonce, plaintext, context.encode())

    def unseal(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._sealing_key.decrypt(
                sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode()
            )
        except Exception as error:  # InvalidTag, or bytes too short to hold a nonce
            raise SealError("sealed data could not be opened") from error

    def token_hash(self, value: str) -> str:
        """Keyed hash for high-entropy values (tokens, codes): fast, useless without the key."""
        return hmac.new(self._token_hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def csrf_token_for(self, cookie_value: str) -> str:
        """The form token that goes with a CSRF cookie (signed double-submit)."""
        return hmac.new(self._csrf_key, cookie_value.encode("utf-8"), hashlib.sha256).hexdigest()
