"""The redirect-URI rule: one module for registration and for `/authorize`.

PRODUCT.md §3 and the reference book's redirect-URI page: absolute, at least
three slashes, no fragment (not even an empty `#`), no user-info, no
wildcards, query kept and matched byte for byte; `https` expected, `http` only
for loopback; custom reverse-domain schemes only for mobile and native
clients (RFC 8252 §7.1). Matching is exact, except that a loopback `http` URI
registered without a port accepts any port (RFC 8252 §7.3).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

MAX_REDIRECT_URI_LENGTH = 2000
MAX_REDIRECT_URIS = 10
NATIVE_CLIENT_TYPES = frozenset({"mobile", "native"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]"})
# Schemes that run code or read local files in a browser: never a redirect target.
FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "blob", "about"})
SCHEME_PATTERN = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*")  # RFC 3986 §3.1
REVERSE_DOMAIN_SCHEME = re.compile(r"[a-z][a-z0-9-]*(\.[a-z0-9-]+)+")
BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


@dataclass
class RedirectUriCheck:
    """What is wrong with one redirect URI: `problems` block it, `warnings` are for reviewers."""

    uri: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _authority_host(parts: SplitResult) -> str:
    """The host as written, brackets kept for IPv6 (`[::1]`)."""
    authority = parts.netloc.rsplit("@", 1)[-1]
    if authority.startswith("["):
        return authority[: authority.find("]") + 1]
    return authority.rsplit(":", 1)[0] if ":" in authority else authority


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def check_redirect_uri(uri: str, client_type: str) -> RedirectUriCheck:
    check = RedirectUriCheck(uri)
    problems, warnings = check.problems, check.warnings
    if not uri:
        problems.append("enter a redirect URI such as https://app.example/callback")
        return check
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        problems.append(
            f"a redirect URI may be at most {MAX_REDIRECT_URI_LENGTH} characters; "
            f"this one has {len(uri)}"
        )
        return check
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        problems.append("a redirect URI must not contain spaces or control characters")
        return check
    if not uri.isascii():
        problems.append(
            "a redirect URI must be ASCII: percent-encode other characters and "
            "write international host names in punycode (xn--…)"
        )
        return check
    scheme, colon, rest = uri.partition(":")
    if not colon or not SCHEME_PATTERN.fullmatch(scheme):
        problems.append("a redirect URI must be absolute, starting with https://")
        return check
    if scheme != scheme.lower():
        problems.append(f"write the scheme in lower case: '{scheme.lower()}:'")
        return check
    if "#" in uri:
        problems.append(
            f"a redirect URI must not contain a fragment: remove '{uri[uri.index('#') :]}'"
        )
    if "*" in uri:
        problems.append("wildcards are not allowed: register each redirect URI exactly")
    if BAD_PERCENT.search(uri):
        problems.append("'%' must start a percent-encoded byte such as %2F")
    if scheme in FORBIDDEN_SCHEMES:
        problems.append(f"the '{scheme}:' scheme can never be a redirect URI")
        return check
    if scheme in ("http", "https"):
        _check_web_uri(uri, scheme, rest, check)
    else:
        _check_custom_scheme(scheme, rest, client_type, check)
    if problems:
        warnings.clear()  # a blocked URI needs fixing first; hints would only distract
    return check


def _check_web_uri(uri: str, scheme: str, rest: str, check: RedirectUriCheck) -> None:
    problems, warnings = check.problems, check.warnings
    if not rest.startswith("//"):
        problems.append(f"write '{scheme}://' followed by the host, e.g. {scheme}://app.example/")
        return
    try:
        parts = urlsplit(uri.split("#", 1)[0])
        port = parts.port
    except ValueError:
        problems.append("the port must be a number from 1 to 65535")
        return
    if "@" in parts.netloc:
        problems.append("a redirect URI must not contain user information: remove the 'user@' part")
    host = _authority_host(parts)
    if not host:
        problems.append("a redirect URI needs a host, e.g. https://app.example/")
        return
    if port == 0 or parts.netloc.endswith(":"):
        problems.append("the port must be a number from 1 to 65535")
    if not parts.path.startswith("/"):
        problems.append(
            f"a redirect URI needs at least three slashes: write '{scheme}://{parts.netloc}/…', "
            f"not '{scheme}://{parts.netloc}'"
        )
    lowered_host = host.lower()
    if host != lowered_host:
        problems.append(f"write the host in lower case: '{lowered_host}'")
    is_loopback = lowered_host in LOOPBACK_HOSTS
    if scheme == "http":
        if lowered_host == "localhost":
            warnings.append(
                "prefer http://127.0.0.1 or http://[::1] to localhost, which a resolver "
                "may send elsewhere (RFC 8252 §8.3)"
            )
        elif not is_loopback:
            problems.append(
                "http is only allowed for loopback addresses (127.0.0.1, [::1]); use https"
            )
    elif is_loopback or lowered_host == "localhost":
        warnings.append("loopback redirect URIs normally use http (RFC 8252 §7.3)")
    if not is_loopback and _is_ip_literal(host):
        warnings.append("use a host name rather than an IP address")


def _check_custom_scheme(scheme: str, rest: str, client_type: str, check: RedirectUriCheck) -> None:
    problems = check.problems
    if client_type not in NATIVE_CLIENT_TYPES:
        problems.append(
            f"custom schemes such as '{scheme}:' are only for mobile and native clients; use https"
        )
        return
    if not REVERSE_DOMAIN_SCHEME.fullmatch(scheme):
        problems.append(
            "a custom scheme must be a reversed domain name you control, "
            "e.g. com.example.app:/callback (RFC 8252 §7.1)"
        )
    if not rest.startswith("/"):
        problems.append(f"write '{scheme}:/' followed by a path, e.g. {scheme}:/callback")
    elif rest.startswith("//") and "@" in rest[2:].split("/", 1)[0]:
        problems.append("a redirect URI must not contain user information: remove the 'user@' part")


def check_redirect_uri_list(uris: list[str], client_type: str) -> list[RedirectUriCheck]:
    """Each URI checked, plus the list rules (count, duplicates) on the offending entries."""
    checks = [check_redirect_uri(uri, client_type) for uri in uris]
    seen: set[str] = set()
    for check in checks:
        if check.uri in seen:
            check.problems.append("this redirect URI is listed twice")
        seen.add(check.uri)
    for check in checks[MAX_REDIRECT_URIS:]:
        check.problems.append(f"a client may have at most {MAX_REDIRECT_URIS} redirect URIs")
    return checks


# A port as RFC 3986 §3.2.3 writes it, 1-65535 without leading zeros (0 is no port).
LOOPBACK_PORT = re.compile(r"[1-9][0-9]{0,4}")


def _port_varies_only(registered: str, presented: str) -> bool:
    """`presented` is `registered` with `:port` after its loopback host, every other
    character the same (RFC 8252 §7.3). The strings are compared as sent, never parsed
    and rebuilt: a parser would forgive an upper-case scheme, an empty `?` or `#`, port 0
    or a trailing tab, and the code would go somewhere the client never registered."""
    for host in LOOPBACK_HOSTS:
        origin = f"http://{host}"
        path = registered.removeprefix(origin)
        if path == registered or not path.startswith("/"):
            continue  # not this loopback host, or registered with a port
        if not (presented.startswith(origin + ":") and presented.endswith(path)):
            return False
        port = presented[len(origin) + 1 : len(presented) - len(path)]
        return LOOPBACK_PORT.fullmatch(port) is not None and int(port) <= 65535
    return False


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact, byte-for-byte match; a loopback URI registered without a port takes any port."""
    return presented == registered or _port_varies_only(registered, presented)
