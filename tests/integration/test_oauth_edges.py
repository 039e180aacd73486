"""Kept only for tests/integration/test_token_store.py's import (the lead rewrites that
module with the store): the helpers live in tests/oauth/in_process.py and the tests that
were here in tests/oauth/ by spec section. Delete this file with that import."""

from tests.oauth.in_process import CALLBACK, issue, mint_code, new_client, redeem, refresh

__all__ = ["CALLBACK", "issue", "mint_code", "new_client", "redeem", "refresh"]
