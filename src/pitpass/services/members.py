"""Member accounts (PRODUCT.md §2).

Passwords are stored as argon2id of the *masked* password,
`mask_secret(password, email)` (PRODUCT.md §4), so one record serves web
sign-in and, later, the `password_limited` grant whose clients send the
masked form.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pitpass.core.masking import mask_secret, normalise_identifier
from pitpass.core.passwords import password_problem
from pitpass.db.models import Member
from pitpass.metrics import CountedSlots
from pitpass.services import audit

FIRST_CUSTOMER_ID = 100001
# No spaces or control characters (a NUL, above all: PostgreSQL cannot store one).
EMAIL_PATTERN = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s.\x00-\x1f\x7f]+")
MAX_EMAIL_LENGTH = 320
MAX_NAME_LENGTH = 100
MAX_CUSTOMER_ID = 2**63 - 1  # members.customer_id is a PostgreSQL bigint

_hasher = PasswordHasher()  # argon2id with the library's RFC 9106 defaults
# One verification per CPU at a time: more only share the cores and each holds
# 64 MiB, so a burst of sign-ins would cost memory and time (cache thrash) for nothing.
_argon2_slots = CountedSlots(threading.BoundedSemaphore(len(os.sched_getaffinity(0))))


@functools.cache
def _unknown_member_hash() -> str:
    """Verified against when the email is unknown, so both failures cost the same time."""
    return _hasher.hash(mask_secret("not a password", "nobody@pitpass.invalid"))


class MemberError(ValueError):
    """Bad input for a member; `field` names the form field it belongs beside."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normalise_email(email: str) -> str:
    return normalise_identifier(email)


def by_ids(db: Session, ids: set[int]) -> dict[int, Member]:
    """Many members in one query (lists name the member of each row)."""
    return {m.id: m for m in db.scalars(select(Member).where(Member.id.in_(ids)))} if ids else {}


def email_problem(email: str) -> str | None:
    if not email:
        return "Enter your email address."
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL_PATTERN.fullmatch(email):
        return "Enter an email address like name@example.com."
    return None


def hash_masked_password(masked_password: str) -> str:
    with _argon2_slots:
        return _hasher.hash(masked_password)


def masked_password_matches(stored_hash: str | None, masked_password: str) -> bool:
    """Constant work whether or not there is an account (argon2 either way)."""
    against = stored_hash or _unknown_member_hash()
    try:
        with _argon2_slots:
            return _hasher.verify(against, masked_password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def verify_masked_password(member: Member | None, masked_password: str) -> bool:
    return masked_password_matches(member.password_hash if member else None, masked_password)


def verify_password(member: Member | None, email: str, password: str) -> bool:
    return verify_masked_password(member, mask_secret(password, email))


def password_hash_for(email: str, password: str) -> str:
    """The stored form of a password: bound to the email it is masked with (PRODUCT.md §4),
    so a new email needs the password again."""
    return hash_masked_password(mask_secret(password, normalise_email(email)))


def find_by_email(db: Session, email: str) -> Member | None:
    if "\x00" in email:
        return None  # no account has one (EMAIL_PATTERN), and PostgreSQL cannot compare it
    return db.scalar(select(Member).where(Member.email == normalise_email(email)))


def _next_customer_id(db: Session) -> int:
    highest = db.scalar(select(func.max(Member.customer_id)))
    return max(FIRST_CUSTOMER_ID, (highest or 0) + 1)


@dataclass(frozen=True)
class NewMember:
    email: str
    display_name: str
    password: str
    is_staff: bool = False
    customer_id: int | None = None
    group_ids: Sequence[int] = ()


def validate_new_member(
    db: Session, new: NewMember, *, email_taken_is_a_problem: bool = True
) -> list[MemberError]:
    """Every problem at once, each tied to its field. Self sign-up passes
    `email_taken_is_a_problem=False`: it must not say which emails have accounts."""
    problems: list[MemberError] = []
    email = normalise_email(new.email)
    name = new.display_name.strip()
    if message := email_problem(email):
        problems.append(MemberError("email", message))
    elif email_taken_is_a_problem and find_by_email(db, email) is not None:
        problems.append(
            MemberError("email", "An account with this email already exists. Sign in instead.")
        )
    if not name:
        problems.append(MemberError("display_name", "Enter the name other people will see."))
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(MemberError("display_name", f"Use at most {MAX_NAME_LENGTH} characters."))
    if message := password_problem(new.password, email, name):
        problems.append(MemberError("password", message))
    if new.customer_id is not None:
        if not 0 < new.customer_id <= MAX_CUSTOMER_ID:
            problems.append(
                MemberError(
                    "customer_id", f"A customer id is a number from 1 to {MAX_CUSTOMER_ID}."
                )
            )
        elif db.scalar(select(Member.id).where(Member.customer_id == new.customer_id)):
            problems.append(
                MemberError("customer_id", f"Customer id {new.customer_id} is already taken.")
            )
    if any(group_id <= 0 for group_id in new.group_ids):
        problems.append(MemberError("group_ids", "Group ids are positive numbers."))
    return problems


def create_member(
    db: Session,
    new: NewMember,
    *,
    actor: Member | None = None,
    actor_label: str | None = None,
    ip: str | None = None,
) -> Member:
    """Create a member or raise the first MemberError (see `validate_new_member` for all)."""
    problems = validate_new_member(db, new)
    if problems:
        raise problems[0]
    email = normalise_email(new.email)
    member = Member(
        email=email,
        display_name=new.display_name.strip(),
        customer_id=new.customer_id or _next_customer_id(db),
        group_ids=list(new.group_ids),
        is_staff=new.is_staff,
        password_hash=password_hash_for(email, new.password),
    )
    db.add(member)
    try:
        db.flush()
    except IntegrityError:
        # Two sign-ups raced for the same email or customer id; the caller's
        # transaction is rolled back as this error leaves it.
        raise MemberError("email", "An account with this email already exists.") from None
    audit.record(
        db,
        "member.created",
        # Self sign-up when nobody else acts.
        actor=actor if (actor or actor_label) else member,
        actor_label=actor_label,
        target_type="member",
        target_id=member.customer_id,
        ip=ip,
        details={"staff": new.is_staff},
    )
    return member
