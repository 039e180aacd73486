"""The words people see for the slugs Pitpass stores (issue #12, item 10).

Templates write `{{ value | label }}`; a slug missing here is shown as it is, so a new
value is never hidden, only unpolished until it is added.
"""

from __future__ import annotations

LABELS: dict[str, str] = {
    # client types (core/policy.CLIENT_TYPES)
    "server-side": "Server-side app",
    "single-page-app": "Single-page app",
    "mobile": "Mobile app",
    "native": "Desktop or command-line app",
    # request statuses (services/workflow.STATUSES)
    "submitted": "Waiting for review",
    "changes_requested": "Changes requested",
    "approved": "Approved",
    "rejected": "Rejected",
    "withdrawn": "Withdrawn",
    # flows (core/policy)
    "authorization_code": "Authorization code with PKCE",
    "password_limited": "Password (limited)",
    "refresh_token": "Refresh token",
    # outgoing mail (db/models.MailMessage.status)
    "pending": "Waiting to be sent",
    "sent": "Sent",
    "logged": "Written to the log (no mail server)",
    "failed": "Failed",
}


def label(value: object) -> str:
    """The people-facing words for a stored slug."""
    text = "" if value is None else str(value)
    return LABELS.get(text, text)
