"""What the HTTP layers share: `web/` (pages), `api/` (JSON) and `oauth/` (the protocol).

They import this package and never each other (the import-linter contract in
pyproject.toml): cookies, CSRF, the signed-in member, the page renderer, the
caller, and what each error status is called.
"""
