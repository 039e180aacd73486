"""The short confirmation a page shows after an action (issue #12, item 8).

An action redirects with `?done=<key>`; the next page shows the sentence for that key.
Only keys listed here are shown, so the query string cannot put words on a page.
"""

from __future__ import annotations

NOTICES: dict[str, str] = {
    "signed-out": "You are signed out.",
    "app-signed-out": "The app is signed out on every device.",
    "consent-withdrawn": "Consent withdrawn: the app is signed out and must ask again.",
    "two-step-on": "Your authenticator app is on: sign-in now asks for its code.",
    "two-step-off": "Your authenticator app is off: sign-in emails you a code again.",
    "recovery-codes-replaced": "New recovery codes made: the old ones no longer work.",
    "account-deleted": "Your account is deleted. A confirmation was sent to your old address.",
    # Issue #12, items 1 and 2 (web/recovery.py, web/account_security.py, web/signin.py).
    "password-reset": "Your password was changed and every browser was signed out, apps too. "
    "Sign in with the new password.",
    "password-changed": "Your password was changed. Every other browser was signed out.",
    "email-changed": "Your email address was changed and every other browser was signed out. "
    "Sign in with the new one from now on.",
    "two-step-cleared": "The authenticator app is off: the member signs in with the emailed "
    "code again, and was told by mail.",
    "code-resent": "We sent a new code. The one sent before no longer works.",
    # the developer portal and the review of requests (issue #12, item 8)
    "request-sent": "Request sent: staff will review it and email you.",
    "change-sent": "Change request sent: the client keeps working as it is until staff approve.",
    "request-resubmitted": "Request resubmitted: staff will review it again.",
    "request-withdrawn": "Request withdrawn.",
    "request-approved": "Request approved: the developer has been emailed.",
    "request-rejected": "Request rejected: the developer has been emailed.",
    "changes-requested": "Changes requested: the developer has been emailed.",
    "secret-rotated": "Secret rotated: a new secret is shown below, once.",
    "client-disabled": "Client disabled: its sessions are signed out.",
    "client-enabled": "Client enabled again.",
    # staff acting on a member (web/console_members.py)
    "member-disabled": "Account disabled: the member is signed out everywhere and every token "
    "is inactive.",
    "member-enabled": "Account enabled: the member can sign in again.",
    "staff-granted": "Staff granted: the member can use the console at their next page.",
    "staff-removed": "Staff removed: the member can no longer use the console.",
}


def notice_for(done: str | None) -> str:
    """The sentence for a `done` key, or nothing for a key this module does not know."""
    return NOTICES.get(done or "", "")


def done_url(path: str, key: str) -> str:
    """`path` with the confirmation `key` added to its query string."""
    if key not in NOTICES:
        raise KeyError(f"no notice for {key!r}: add it to NOTICES")
    separator = "&" if "?" in path else "?"
    return f"{path}{separator}done={key}"
