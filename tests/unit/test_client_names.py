"""The client-name rule (PRODUCT.md §3): brand imitations blocked, near misses flagged."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pitpass.core.client_names import check_client_name, name_key

BRAND = ["iracing", "iracer", "irace"]
BLOCK, WARN, PASS = "block", "warn", "pass"

NAME_CASES = [
    ("iRacer Tools", BLOCK),
    ("i-Racing Stats", BLOCK),
    ("1Racing", BLOCK),
    ("IRACE", BLOCK),
    ("iRacing", BLOCK),
    ("My iRacing Data Tool", BLOCK),
    ("ｉＲａｃｉｎｇ Ｌｅａｇｕｅ", BLOCK),  # full-width letters
    ("i.r.a.c.i.n.g", BLOCK),
    ("i_racing_bot", BLOCK),
    ("!Racing Hub", BLOCK),
    ("|Racer", BLOCK),
    ("iR4cing", BLOCK),
    ("1R4C3R", BLOCK),
    ("іRacing", BLOCK),  # Cyrillic і
    ("Stats for iRacers", BLOCK),
    ("The iRace Club", BLOCK),
    ("Miracle Laps", PASS),
    ("MyiRacing", WARN),
    ("Hi Racing", WARN),
    ("iRasing Stats", WARN),
    ("Iarce Timing", WARN),
    ("Pit Wall Telemetry", PASS),
    ("My League Manager", PASS),
    ("Sim Data Tool", PASS),
    ("Racing Stats", PASS),
    ("Discord Race Bot", PASS),
    ("Apex Hunter", PASS),
    ("Ace Racer Club", PASS),
    ("Grid Finder", PASS),
    ("ab", "at least 3"),
    ("  ab  ", "at least 3"),
    ("x" * 65, "at most 64"),
    ("Zero\u200bWidth", "invisible"),
    ("Tab\there", "invisible"),
]


@pytest.mark.parametrize(("name", "expected"), NAME_CASES)
def test_client_name_rule(name: str, expected: str) -> None:
    check = check_client_name(name, BRAND)
    if expected == PASS:
        assert check.ok and not check.warnings, (check.problems, check.warnings)
    elif expected == WARN:
        assert check.ok and check.warnings, check.problems
    elif expected == BLOCK:
        assert not check.ok
        assert "must not imitate the platform's name" in check.problems[0]
    else:
        assert not check.ok
        assert expected in check.problems[0]


def test_name_is_trimmed_and_the_key_ignores_case_and_spacing() -> None:
    assert check_client_name("  Pit Wall  ", BRAND).name == "Pit Wall"
    assert name_key("Pit  Wall") == name_key("pit wall") == name_key("PIT WALL")


def test_operator_brand_words_replace_the_default() -> None:
    assert check_client_name("Acme Stats", ["acme"]).problems
    assert check_client_name("iRacing Stats", ["acme"]).ok


@given(st.text(max_size=100))
def test_name_validation_never_raises(name: str) -> None:
    check_client_name(name, BRAND)
