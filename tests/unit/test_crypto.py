"""Keys derived from the secret key, sealing at rest, keyed hashes."""

from __future__ import annotations

import pytest

from pitpass.services.crypto import Keyring, SealError

KEY = b"k" * 40


def test_sealed_data_opens_with_the_same_key_and_context() -> None:
    keyring = Keyring(KEY)
    sealed = keyring.seal(b"private key bytes", "signing-key")
    assert b"private key bytes" not in sealed
    assert keyring.unseal(sealed, "signing-key") == b"private key bytes"


@pytest.mark.parametrize("damage", ["flip", "context", "key", "short"])
def test_tampered_or_misused_sealed_data_does_not_open(damage: str) -> None:
    keyring = Keyring(KEY)
    sealed = keyring.seal(b"payload", "mail-body")
    context = "mail-body"
    if damage == "flip":
        sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    elif damage == "context":
        context = "signing-key"
    elif damage == "key":
        keyring = Keyring(b"x" * 40)
    else:
        sealed = sealed[:5]
    with pytest.raises(SealError):
        keyring.unseal(sealed, context)


def test_token_hashes_are_keyed_and_purposes_are_separate() -> None:
    one, other = Keyring(KEY), Keyring(b"z" * 40)
    assert one.token_hash("abc") == one.token_hash("abc")
    assert one.token_hash("abc") != other.token_hash("abc")
    assert one.token_hash("abc") != one.csrf_token_for("abc")


def test_previous_keys_open_and_verify_and_reseal_moves_to_the_current_key() -> None:
    old, new = Keyring(KEY), Keyring(b"n" * 40, previous=[b"p" * 40, KEY])
    sealed = old.seal(b"payload", "mail-body")
    assert new.unseal(sealed, "mail-body") == b"payload"
    resealed = new.reseal(sealed, "mail-body")
    assert resealed is not None and new.reseal(resealed, "mail-body") is None
    with pytest.raises(SealError):
        old.unseal(resealed, "mail-body")
    assert new.csrf_token_matches("cookie", old.csrf_token_for("cookie"))
    assert not Keyring(b"n" * 40).csrf_token_matches("cookie", old.csrf_token_for("cookie"))
    assert new.cookie_signing_keys[-1] == Keyring(b"n" * 40).cookie_signing_keys[-1]
    with pytest.raises(SealError):
        Keyring(b"n" * 40, previous=[b"p" * 40]).reseal(sealed, "mail-body")
