"""Masking (PRODUCT.md §4): the reference service's vectors."""

from __future__ import annotations

import pytest

from pitpass.core.masking import mask_secret


@pytest.mark.parametrize(
    ("secret", "identifier", "masked"),
    [
        ("SuperSecret", "MyClient", "CDZpTp0GQYZXHJ2tSnH9GtXnutZvyGxESQXfBnqTCVo="),
        ("MyPassWord", "CLunky@iracing.Com", "xGKecAR27ALXNuMLsGaG0v5Q9pSs2tZTZRKNgmHMg+Q="),
        (
            "SuperSecure123",
            "john.smith@iracing.com",
            "3NkLTzZtITXmFo7HHDwbGEnZox4VfwLMHHaNZzdNuE4=",
        ),
    ],
)
def test_reference_vectors(secret: str, identifier: str, masked: str) -> None:
    assert mask_secret(secret, identifier) == masked


def test_identifier_case_and_surrounding_space_do_not_matter() -> None:
    assert mask_secret("SuperSecret", "  MyClient ") == mask_secret("SuperSecret", "myclient")


def test_the_secret_itself_is_not_normalised() -> None:
    assert mask_secret("supersecret", "MyClient") != mask_secret("SuperSecret", "MyClient")
    assert mask_secret(" SuperSecret", "MyClient") != mask_secret("SuperSecret", "MyClient")
