"""The password rule for new accounts (pure, no I/O)."""

from __future__ import annotations

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256

# The most common leaked passwords that pass the length rule; a short list is
# enough to stop the obvious ones without shipping a data set.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "0123456789",
        "1111111111",
        "0000000000",
        "qwertyuiop",
        "password12",
        "password123",
        "password1234",
        "iloveyou12",
        "qwerty1234",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "abcdefghij",
        "letmein123",
        "welcome123",
        "administrator",
        "passw0rd123",
        "football123",
        "monkey1234",
        "sunshine123",
        "princess123",
        "qwertyuiop123",
        "asdfghjkl1",
        "zaq12wsxcde",
    }
)


def password_problem(password: str, email: str = "", name: str = "") -> str | None:
    """Why this password may not be used, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    lowered = password.lower()
    if lowered in COMMON_PASSWORDS or len(set(lowered)) < 4:
        return "This password is too easy to guess; choose something less common."
    local_part = email.split("@", 1)[0].lower()
    if len(local_part) >= 4 and local_part in lowered:
        return "Do not build the password from your email address."
    if len(name) >= 4 and name.lower().replace(" ", "") in lowered.replace(" ", ""):
        return "Do not build the password from your name."
    return None
