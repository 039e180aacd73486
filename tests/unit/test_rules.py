"""Pure rules: password policy, safe next paths."""

from __future__ import annotations

import pytest

from pitpass.core.passwords import password_problem
from pitpass.core.paths import safe_next_path


@pytest.mark.parametrize(
    ("password", "fragment"),
    [
        ("short", "at least 10"),
        ("x" * 257, "at most 256"),
        ("1234567890", "too easy"),
        ("aaaaaaaaaaaa", "too easy"),
        ("abababababab", "too easy"),
        ("jordan.racer-2024", "email address"),
        ("Jo Racer rules!", "your name"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, fragment: str) -> None:
    problem = password_problem(password, "jordan.racer@example.com", "Jo Racer")
    assert problem is not None
    assert fragment in problem


def test_a_reasonable_password_passes() -> None:
    assert password_problem("correct horse battery staple", "jo@example.com", "Jo") is None


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/account", "/account"),
        ("/console/audit?action=signin", "/console/audit?action=signin"),
        ("", "/account"),
        (None, "/account"),
        ("https://evil.example/", "/account"),
        ("//evil.example/", "/account"),
        ("/\\evil.example", "/account"),
        ("javascript:alert(1)", "/account"),
        ("account", "/account"),
        ("/ok\r\nSet-Cookie: x=y", "/account"),
    ],
)
def test_next_path_stays_on_this_site(candidate: str | None, expected: str) -> None:
    assert safe_next_path(candidate) == expected
