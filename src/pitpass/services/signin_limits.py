"""Every limit on web sign-in, so that none of them lets an outsider lock a member out
(issue #11; docs/decisions.md "Sign-in limits an outsider cannot turn into a lock-out").

- Before the password is checked, failures are counted per account *and address*, and
  per address: an attacker elsewhere only ever throttles themselves.
- Per account, from anywhere, failures only raise a ceiling: past it the right password
  still signs in, but a remembered browser no longer skips the emailed code.
- Emailed codes: few mails per member a window, few wrong codes per member across codes.
  Both need the right password first, so only someone who knows it can spend them.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy.orm import Session

from pitpass.services import audit
from pitpass.services.context import AppContext
from pitpass.services.ratelimit import Throttle


class Refused(Exception):
    """A person's request refused, with the words to show: wrong input, or "wait"."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    @property
    def status_code(self) -> int:
        """429 when the answer is "wait" (with Retry-After), else 400: the input was wrong."""
        return 429 if self.retry_after else 400


class SignInRefused(Refused):
    """A sign-in step refused (services/signin.py, services/signup.py)."""


def wait_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{round(seconds / 60)} minutes"


def address_key(ip: str | None) -> str:
    """Whom a throttle counts: the address, or its /64 for IPv6 (one subscriber's
    network hands out a whole /64, so single addresses are free to rotate)."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return ip or "unknown"
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _refusing(ctx: AppContext, attempted: str, ip: str | None) -> list[tuple[Throttle, str]]:
    """The throttles that refuse a sign-in before its password is checked."""
    address = address_key(ip)
    return [
        (ctx.throttles.signin_account_ip, f"{attempted}|{address}"),
        (ctx.throttles.signin_ip, address),
    ]


def refuse_if_throttled(ctx: AppContext, db: Session, attempted: str, ip: str | None) -> None:
    checks = _refusing(ctx, attempted, ip)
    waits = [wait for throttle, key in checks if (wait := throttle.retry_after(key)) is not None]
    if not waits:
        return
    wait = max(waits)
    details = {"retry_after": wait}
    audit.record(db, "signin.throttled", actor_label=attempted, ip=ip, details=details)
    raise SignInRefused(
        f"Too many failed sign-in attempts. Try again in {wait_words(wait)}.", retry_after=wait
    )


def count_failed_password(ctx: AppContext, attempted: str, ip: str | None) -> None:
    ceiling = (ctx.throttles.signin_account, attempted)
    for throttle, key in [*_refusing(ctx, attempted, ip), ceiling]:
        throttle.count_failure(key)


def remembered_browsers_suspended(ctx: AppContext, email: str) -> bool:
    """Past the per-account ceiling of failures (from any address), the right password
    still signs in, but only with the emailed code: a remembered browser is not enough."""
    return ctx.throttles.signin_account.is_exceeded(email)


def clear_after_sign_in(ctx: AppContext, email: str, ip: str | None) -> None:
    ctx.throttles.signin_account.clear(email)
    ctx.throttles.signin_account_ip.clear(f"{email}|{address_key(ip)}")


def take_code_mail(ctx: AppContext, db: Session, member_id: int, ip: str | None) -> None:
    """At most `signin_codes_per_member` codes a window: each one mails the member."""
    allowed, _remaining, reset = ctx.throttles.signin_codes.take(str(member_id))
    if allowed:
        return
    wait = max(1, reset)
    audit.record(
        db,
        "signin.codes_throttled",
        actor_label=f"member:{member_id}",
        ip=ip,
        details={"retry_after": wait},
    )
    raise SignInRefused(
        "We have sent this account several codes already. Use the latest one, "
        f"or try again in {wait_words(wait)}.",
        retry_after=wait,
    )


def code_guess_wait(ctx: AppContext, member_id: int) -> int | None:
    """Seconds before this member's codes may be tried again (across all their codes)."""
    return ctx.throttles.signin_code_failures.retry_after(str(member_id))


def count_wrong_code(ctx: AppContext, member_id: int) -> None:
    ctx.throttles.signin_code_failures.count_failure(str(member_id))
