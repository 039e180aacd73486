"""Keys derived from PITPASS_SECRET_KEY and the few primitives built on them.

Each purpose gets its own subkey through HKDF (RFC 5869), so a key used to
seal data at rest is never the key that hashes tokens or signs cookies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
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
    """The current secret key and the previous ones (PITPASS_SECRET_KEY_PREVIOUS, newest
    first): new data is sealed and signed with the current key; the previous keys only
    open and verify what they made, until `pitpass secret-key rewrap` (docs/decisions.md).

    Keyed hashes cannot be re-made without the values they hash (client secrets, refresh
    tokens), so their key does not follow the secret key: it is stored sealed in the
    database (services/data_keys.py) and `token_hash_key_source` reads it."""

    def __init__(self, secret_key: bytes, previous: Sequence[bytes] = ()) -> None:
        self._secret_key = secret_key
        self._previous = tuple(previous)
        self.token_hash_key_source: Callable[[], bytes] | None = None

    @staticmethod
    def _derive(secret_key: bytes, purpose: str) -> bytes:
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=f"pitpass:{purpose}".encode()
        ).derive(secret_key)

    def _all_derived(self, purpose: str) -> list[bytes]:
        """The subkey for `purpose` under each secret key: current first."""
        return [self._derive(key, purpose) for key in (self._secret_key, *self._previous)]

    @cached_property
    def _sealing_keys(self) -> list[AESGCM]:
        return [AESGCM(key) for key in self._all_derived("seal-at-rest")]

    def derived_token_hash_key(self, oldest: bool = False) -> bytes:
        """The token-hash key as every version before the stored one derived it: from
        the secret key (or, `oldest`, from the oldest previous key)."""
        key = self._previous[-1] if oldest and self._previous else self._secret_key
        return self._derive(key, "token-hash")

    @property
    def has_previous(self) -> bool:
        return bool(self._previous)

    @cached_property
    def _token_hash_key(self) -> bytes:
        if self.token_hash_key_source is None:
            return self.derived_token_hash_key()
        return self.token_hash_key_source()

    def prepare(self) -> None:
        """Read the stored token-hash key now (at startup, in a thread), not on first use."""
        _ = self._token_hash_key

    @cached_property
    def cookie_signing_keys(self) -> list[bytes]:
        """For itsdangerous: verifies with any, signs with the last (the current key)."""
        return list(reversed(self._all_derived("cookie-signing")))

    @cached_property
    def _csrf_keys(self) -> list[bytes]:
        return self._all_derived("csrf")

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """AES-GCM encrypt; `context` is bound as associated data (what the bytes are for)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._sealing_keys[0].encrypt(nonce, plaintext, context.encode())

    def unseal(self, sealed: bytes, context: str) -> bytes:
        return self._open(sealed, context)[0]

    def _open(self, sealed: bytes, context: str) -> tuple[bytes, int]:
        """The plaintext and the position of the key that opened it (0: current)."""
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        for position, key in enumerate(self._sealing_keys):
            try:
                plaintext = key.decrypt(nonce, ciphertext, context.encode())
            except Exception:  # noqa: S112 - InvalidTag, or too short: try the next key
                continue
            return plaintext, position
        raise SealError("sealed data could not be opened")

    def reseal(self, sealed: bytes, context: str) -> bytes | None:
        """`sealed` under the current key, or None when it already is; SealError when no
        key opens it."""
        plaintext, position = self._open(sealed, context)
        return None if position == 0 else self.seal(plaintext, context)

    def token_hash(self, value: str) -> str:
        """Keyed hash for high-entropy values (tokens, codes): fast, useless without the key."""
        return hmac.new(self._token_hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def csrf_token_for(self, cookie_value: str) -> str:
        """The form token that goes with a CSRF cookie (signed double-submit)."""
        return self._csrf_token(self._csrf_keys[0], cookie_value)

    def csrf_token_matches(self, cookie_value: str, submitted: str) -> bool:
        """Made from this cookie by the current key or a previous one."""
        return any(
            constant_time_equals(self._csrf_token(key, cookie_value), submitted)
            for key in self._csrf_keys
        )

    @staticmethod
    def _csrf_token(key: bytes, cookie_value: str) -> str:
        return hmac.new(key, cookie_value.encode("utf-8"), hashlib.sha256).hexdigest()
