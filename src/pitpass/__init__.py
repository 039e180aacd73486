"""Pitpass: an OAuth 2.0 authorization service with a developer program built in."""

__version__ = "0.1.0"
