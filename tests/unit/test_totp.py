"""The authenticator app's code window and the recovery code format (services/totp.py)."""

from __future__ import annotations

import pyotp
import pytest

from pitpass.services import totp
from pitpass.services.signin import normalise_code

SECRET = pyotp.random_base32()
NOW = 1_800_000_000.0  # a fixed moment, mid-step
STEP = int(NOW) // totp.STEP_SECONDS


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_a_code_one_step_either_side_is_accepted(
    monkeypatch: pytest.MonkeyPatch, offset: int
) -> None:
    monkeypatch.setattr(totp.time, "time", lambda: NOW)
    code = pyotp.TOTP(SECRET).at(NOW + offset * totp.STEP_SECONDS)
    assert totp._matching_step(SECRET, code) == STEP + offset


@pytest.mark.parametrize("offset", [-2, 2])
def test_a_code_further_away_is_refused(monkeypatch: pytest.MonkeyPatch, offset: int) -> None:
    monkeypatch.setattr(totp.time, "time", lambda: NOW)
    code = pyotp.TOTP(SECRET).at(NOW + offset * totp.STEP_SECONDS)
    nearby = {pyotp.TOTP(SECRET).at(NOW + o * totp.STEP_SECONDS) for o in (-1, 0, 1)}
    if code not in nearby:  # one chance in a few hundred thousand that they collide
        assert totp._matching_step(SECRET, code) is None


def test_codes_are_typed_loosely_but_checked_strictly() -> None:
    assert normalise_code(" 123 456 ", totp.DIGITS) == "123456"
    assert normalise_code("12345", totp.DIGITS) is None
    assert normalise_code("١٢٣٤٥٦", totp.DIGITS) is None  # digits, but not ASCII ones
    assert totp._normalise_recovery("ABCDE-fghjk") == "abcdefghjk"
    assert totp._normalise_recovery("abcde-fghj0") is None  # 0 is not in the alphabet
