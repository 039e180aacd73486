"""What a client is described by, and the checks those details must pass (PRODUCT.md §3).

One shape, `ClientDetails`, for the request form, the API, the CLI, a
registration request and an issued client.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from pitpass.config import Settings
from pitpass.core import policy
from pitpass.core.client_names import check_client_name, name_key
from pitpass.core.redirect_uris import check_redirect_uri_list
from pitpass.db.models import Client, RegistrationRequest
from pitpass.services.members import email_problem

MAX_DESCRIPTION_LENGTH = 200
MAX_DEVELOPER_NAME_LENGTH = 100
MAX_DEVELOPER_URL_LENGTH = 2000


@dataclass
class ClientDetails:
    """Every field of a request (PRODUCT.md §3): one shape for pages, API and CLI."""

    client_name: str = ""
    client_type: str = ""
    flows: list[str] = field(default_factory=list)
    description: str = ""
    developer_name: str = ""
    developer_url: str = ""
    developer_email: str = ""
    redirect_uris: list[str] = field(default_factory=list)
    audiences: list[str] = field(default_factory=list)

    @property
    def password_limited_only(self) -> bool:
        return self.flows == ["password_limited"]

    def cleaned(self) -> ClientDetails:
        """Trimmed, blank list entries dropped, flows and audiences de-duplicated."""
        return ClientDetails(
            client_name=self.client_name.strip(),
            client_type=self.client_type.strip(),
            flows=[flow for flow in policy.CLIENT_FLOWS if flow in {f.strip() for f in self.flows}]
            + sorted({f.strip() for f in self.flows} - set(policy.CLIENT_FLOWS) - {""}),
            description=self.description.strip(),
            developer_name=self.developer_name.strip(),
            developer_url=self.developer_url.strip(),
            developer_email=self.developer_email.strip(),
            redirect_uris=[uri.strip() for uri in self.redirect_uris if uri.strip()],
            audiences=list(dict.fromkeys(a.strip() for a in self.audiences if a.strip())),
        )

    @classmethod
    def of(cls, record: RegistrationRequest | Client) -> ClientDetails:
        name = record.client_name if isinstance(record, RegistrationRequest) else record.name
        return cls(
            client_name=name,
            client_type=record.client_type,
            flows=list(record.flows),
            description=record.description,
            developer_name=record.developer_name or "",
            developer_url=record.developer_url or "",
            developer_email=record.developer_email,
            redirect_uris=list(record.redirect_uris),
            audiences=list(record.audiences),
        )

    def as_dict(self) -> dict[str, object]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def write_to(self, record: RegistrationRequest | Client) -> None:
        """Store the details on a request or a client (blank optional fields as NULL)."""
        if isinstance(record, RegistrationRequest):
            record.client_name = self.client_name
        else:
            record.name = self.client_name
            record.name_key = name_key(self.client_name)
        record.client_type = self.client_type
        record.flows = self.flows
        record.description = self.description
        record.developer_name = self.developer_name or None
        record.developer_url = self.developer_url or None
        record.developer_email = self.developer_email
        record.redirect_uris = self.redirect_uris
        record.audiences = self.audiences


def is_confidential(client: Client) -> bool:
    """Only server-side clients can keep a secret; the others use PKCE alone."""
    return policy.is_confidential(client.client_type)


@dataclass
class Review:
    """The automatic checks: `errors` block (field → message), `warnings` flag for staff."""

    details: ClientDetails
    errors: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def warn(self, key: str, message: str) -> None:
        self.warnings.setdefault(key, []).append(message)


def _check_developer_url(url: str) -> str | None:
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "https" or not parts.hostname or " " in url:
        return "the developer URL must be an https URL such as https://www.myleague.com"
    if "@" in parts.netloc or parts.fragment:
        return "the developer URL must not contain user information or a fragment"
    if len(url) > MAX_DEVELOPER_URL_LENGTH:
        return f"the developer URL may be at most {MAX_DEVELOPER_URL_LENGTH} characters"
    return None


TYPE_CANNOT_CHANGE = "the client type cannot change: request a new client instead"


def _name_problem(
    db: Session, settings: Settings, name: str, own: Client | None, review: Review
) -> str | None:
    check = check_client_name(name, settings.profile.brand_words)
    if check.problems:
        return "; ".join(check.problems)
    for warning in check.warnings:
        review.warn("client_name", warning)
    clash = db.scalar(
        select(Client.client_id).where(
            Client.name_key == name_key(name),
            Client.is_disabled.is_(False),
            Client.id != (own.id if own else -1),  # never a clash with the client itself
        )
    )
    return f"a live client is already called '{name}'; choose another name" if clash else None


def _type_problem(client_type: str, changing: Client | None) -> str | None:
    if client_type not in policy.CLIENT_TYPES:
        return f"choose the client type: one of {', '.join(policy.CLIENT_TYPES)}"
    if changing is not None and client_type != changing.client_type:
        # A server-side client turned public would lose its secret; a public one
        # turned server-side would have none. Either is a new client.
        return TYPE_CANNOT_CHANGE
    return None


def _unknown(what: str, values: list[str]) -> str:
    """`unknown flow 'x'`, or `unknown flows 'x', 'y'`: every one named."""
    plural = "s" if len(values) > 1 else ""
    return f"unknown {what}{plural} {', '.join(repr(v) for v in values)}"


def _flows_problem(d: ClientDetails) -> str | None:
    unknown = [f for f in d.flows if f not in policy.CLIENT_FLOWS]
    if unknown:
        return f"{_unknown('flow', unknown)}; choose authorization_code and/or password_limited"
    if not d.flows:
        return "choose at least one flow: authorization_code or password_limited"
    if "password_limited" in d.flows and d.client_type in policy.PUBLIC_CLIENT_TYPES:
        return "password_limited needs a server-side client: only a server can keep the secret"
    return None


def _developer_problems(d: ClientDetails) -> dict[str, str]:
    errors = {}
    shown_to_members = not d.password_limited_only
    if shown_to_members and not d.developer_name:
        errors["developer_name"] = "enter the developer's name members will see on the consent page"
    elif len(d.developer_name) > MAX_DEVELOPER_NAME_LENGTH:
        errors["developer_name"] = f"use at most {MAX_DEVELOPER_NAME_LENGTH} characters"
    if shown_to_members and not d.developer_url:
        errors["developer_url"] = (
            "enter the developer's website members will see, such as https://www.myleague.com"
        )
    elif problem := _check_developer_url(d.developer_url):
        errors["developer_url"] = problem
    if problem := email_problem(d.developer_email.lower()):
        errors["developer_email"] = problem.replace("Enter your", "Enter the developer's")
    return errors


def _redirect_uri_problems(d: ClientDetails, review: Review) -> dict[str, str]:
    """One message per bad URI, keyed `redirect_uris.N` (N counts from 0), every problem
    of that URI in it; `redirect_uris` alone when the list itself is wrong."""
    if "authorization_code" in d.flows and not d.redirect_uris:
        return {
            "redirect_uris": "add at least one redirect URI: "
            "the authorization_code flow sends members back to it"
        }
    errors = {}
    for index, check in enumerate(check_redirect_uri_list(d.redirect_uris, d.client_type)):
        if check.problems:
            errors[f"redirect_uris.{index}"] = "; ".join(check.problems)
        for warning in check.warnings:
            review.warn(f"redirect_uris.{index}", warning)
    return errors


def review_details(
    db: Session, settings: Settings, details: ClientDetails, *, changing: Client | None = None
) -> Review:
    """Check every field at once; messages say what is wrong and how to fix it.

    `changing` is the client these details are about (a change request's live client,
    or the client an approved request created): never a clash with itself, and its
    type cannot change."""
    d = details.cleaned()
    review = Review(d)
    allowed = settings.profile.audiences
    unknown = [a for a in d.audiences if a not in allowed]
    found = {
        "client_name": _name_problem(db, settings, d.client_name, changing, review),
        "client_type": _type_problem(d.client_type, changing),
        "flows": _flows_problem(d),
        "description": f"keep the description under {MAX_DESCRIPTION_LENGTH} characters"
        if len(d.description) > MAX_DESCRIPTION_LENGTH
        else None,
        **_developer_problems(d),
        **_redirect_uri_problems(d, review),
        "audiences": f"{_unknown('audience', unknown)}; choose from: {', '.join(allowed) or 'none'}"
        if unknown
        else None,
    }
    review.errors.update({key: message for key, message in found.items() if message})
    return review


def name_field(key: str, names: Mapping[str, str], indexed: Callable[[str, int], str]) -> str:
    """A field key (`redirect_uris.2`) in another vocabulary: `names` renames, `indexed`
    places the index of a list entry."""
    name, _, index = key.partition(".")
    name = names.get(name, name)
    return indexed(name, int(index)) if index.isdigit() else name


def without_summaries(errors: dict[str, str]) -> dict[str, str]:
    """The errors to list one by one: `redirect_uris` only sums up `redirect_uris.N`."""
    indexed = any(key.startswith("redirect_uris.") for key in errors)
    return {k: v for k, v in errors.items() if not (indexed and k == "redirect_uris")}


# What the seed's two sample requests share.
_SAMPLE = ClientDetails(
    client_type=policy.CONFIDENTIAL_CLIENT_TYPE,
    developer_email="developer@example.com",
    audiences=["data-server"],
)
TEMPLATES: dict[str, ClientDetails] = {
    # The seed's sample name "My iRacing Data Tool" would itself fail the brand
    # rule, so the template uses an honest name.
    "data-tool": replace(
        _SAMPLE,
        client_name="My Sim Data Tool",
        flows=["password_limited"],
        description="discord-bot",
    ),
    "league-manager": replace(
        _SAMPLE,
        client_name="My League Manager",
        flows=["authorization_code"],
        description="league manager website",
        developer_name="My Racing League Inc.",
        developer_url="https://www.myleague.com",
        redirect_uris=[
            "https://www.myleague.com/oauth/callback",
            "https://staging.myleague.com/oauth/callback",
        ],
    ),
}


def template(name: str, settings: Settings) -> ClientDetails:
    """A starting template; audiences limited to what this deployment offers."""
    chosen = TEMPLATES.get(name, ClientDetails(flows=["authorization_code"]))
    return replace(
        chosen, audiences=[a for a in chosen.audiences if a in settings.profile.audiences]
    )


FIELD_LABELS = {
    "client_name": "Client name",
    "client_type": "Client type",
    "flows": "Flows",
    "description": "Description",
    "developer_name": "Developer's name",
    "developer_url": "Developer's URL",
    "developer_email": "Developer's email",
    "redirect_uris": "Redirect URIs",
    "audiences": "Audiences",
}
