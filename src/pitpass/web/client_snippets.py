"""Ready-to-run token requests for one client, as its portal page shows them (issue #12, item 6).

The secret never appears in a snippet: it is read from the CLIENT_SECRET environment
variable and masked there (PRODUCT.md §4: base64(sha256(secret + identifier.strip().lower()))),
the computation of core/masking.py and of the book's masking page.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from pitpass.core import policy
from pitpass.db.models import Client


@dataclass(frozen=True)
class Snippet:
    id: str  # the HTML id its copy button names
    title: str
    code: str


# The mask in POSIX shell: trim and lower-case the identifier, secret first, Base64.
SHELL_MASK = (
    'mask() { printf \'%s%s\' "$1" "$(printf \'%s\' "$2" | '
    "sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | tr '[:upper:]' '[:lower:]')\" "
    "| openssl dgst -sha256 -binary | base64; }"
)

PYTHON_MASK = '''def mask(secret: str, identifier: str) -> str:
    """base64(sha256(secret + identifier.strip().lower())): sent instead of the secret."""
    digest = hashlib.sha256((secret + identifier.strip().lower()).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")'''


@dataclass(frozen=True)
class _Grant:
    """One token request: its variables, and its form fields as shell and Python values."""

    needs: tuple[str, ...]
    fields: tuple[tuple[str, str, str], ...]  # (name, shell value, Python expression)


def _py(text: str) -> str:
    """A Python string literal in double quotes (the values are ASCII: URLs and slugs)."""
    return json.dumps(text)


def _grant(client: Client, flow: str) -> _Grant:
    if flow == policy.AUTHORIZATION_CODE:
        redirect_uri = client.redirect_uris[0] if client.redirect_uris else ""
        return _Grant(
            ("CODE", "CODE_VERIFIER"),
            (
                ("grant_type", "authorization_code", _py("authorization_code")),
                ("code", "$CODE", "CODE"),
                ("redirect_uri", redirect_uri, _py(redirect_uri)),
                ("code_verifier", "$CODE_VERIFIER", "CODE_VERIFIER"),
            ),
        )
    # Not USERNAME: shells and Windows already set that to the login name.
    return _Grant(
        ("MEMBER_EMAIL", "MEMBER_PASSWORD"),
        (
            ("grant_type", "password_limited", _py("password_limited")),
            ("username", "$MEMBER_EMAIL", "MEMBER_EMAIL"),
            (
                "password",
                '$(mask "$MEMBER_PASSWORD" "$MEMBER_EMAIL")',
                "mask(MEMBER_PASSWORD, MEMBER_EMAIL)",
            ),
        ),
    )


def _shell_field(name: str, value: str) -> str:
    if "$" in value:  # expanded by the shell: double quotes
        return f'  --data-urlencode "{name}={value}"'
    return f"  --data-urlencode {shlex.quote(f'{name}={value}')}"


def _curl(client: Client, token_url: str, grant: _Grant, confidential: bool) -> str:
    needs = [*grant.needs, *(["CLIENT_SECRET"] if confidential else [])]
    lines = [f"# First set {', '.join(needs)} in your shell (never in a file you share)."]
    fields = [("client_id", client.client_id)]
    if confidential:
        fields.append(
            ("client_secret", f'$(mask "$CLIENT_SECRET" {shlex.quote(client.client_id)})')
        )
    fields += [(name, shell) for name, shell, _python in grant.fields]
    if any("mask " in value for _name, value in fields):
        lines.append(SHELL_MASK)
    lines.append(f"curl -sS -X POST {shlex.quote(token_url)} \\")
    lines.append(" \\\n".join(_shell_field(name, value) for name, value in fields))
    return "\n".join(lines)


def _python(client: Client, token_url: str, grant: _Grant, confidential: bool) -> str:
    data = [("client_id", "CLIENT_ID")]
    if confidential:
        data.append(("client_secret", "mask(CLIENT_SECRET, CLIENT_ID)"))
    data += [(name, python) for name, _shell, python in grant.fields]
    masked = any("mask(" in expression for _name, expression in data)
    lines = ["import base64", "import hashlib", "import os"] if masked else ["import os"]
    lines += ["", "import requests", "", f"TOKEN_URL = {_py(token_url)}"]
    lines.append(f"CLIENT_ID = {_py(client.client_id)}")
    if confidential:
        lines.append('CLIENT_SECRET = os.environ["CLIENT_SECRET"]  # never in source code')
    lines += [f'{name} = os.environ["{name}"]' for name in grant.needs]
    lines += ["", "", PYTHON_MASK, "", ""] if masked else [""]
    lines.append("data = {")
    lines += [f'    "{name}": {expression},' for name, expression in data]
    lines += [
        "}",
        "response = requests.post(TOKEN_URL, data=data, timeout=10)",
        "print(response.status_code, response.json())",
    ]
    return "\n".join(lines)


def token_snippets(client: Client, issuer: str) -> list[Snippet]:
    """A curl and a Python (`requests`) token request for each flow of `client`."""
    token_url = f"{issuer}/token"
    confidential = policy.is_confidential(client.client_type)
    found = []
    for flow in client.flows:
        if flow not in policy.CLIENT_FLOWS:
            continue
        grant = _grant(client, flow)
        words = "exchange the code" if flow == policy.AUTHORIZATION_CODE else "password_limited"
        curl = _curl(client, token_url, grant, confidential)
        python = _python(client, token_url, grant, confidential)
        found.append(Snippet(f"curl-{flow}", f"curl: {words}", curl))
        found.append(Snippet(f"python-{flow}", f"Python (requests): {words}", python))
    return found
