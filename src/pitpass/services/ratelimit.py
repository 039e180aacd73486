"""Throttles built on `limits`: memory storage by default, Redis when configured.

Counters live in Redis when PITPASS_REDIS_URL is set, so every instance sees
the same counts (PRODUCT.md §6). What a Redis outage means for each throttle is
decided here, once (docs/decisions.md "When Redis is down"): a throttle that
guards passwords fails closed (`ThrottleUnavailable`, a 503 where it is answered),
one that only counts failures of a high-entropy secret fails open.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

from pitpass.config import Settings
from pitpass.metrics import count_rate_limit_refusal

log = logging.getLogger("pitpass.ratelimit")

# The throttles run on the event loop: a Redis that is down or frozen must cost a request
# a second at most, never the default five-second socket timeout times redis-py's retries.
REDIS_TIMEOUT_SECONDS = 1.0

Result = TypeVar("Result")


class ThrottleUnavailable(Exception):
    """The counters cannot be read or written (Redis is down): answer 503, retry later."""


@dataclass(frozen=True)
class Throttle:
    """Counts failures under one name; `retry_after` says when trying is allowed again.

    `fails_open`: when the counters are unreachable, allow the attempt and count nothing
    (instead of raising ThrottleUnavailable)."""

    name: str
    limit: RateLimitItem
    limiter: MovingWindowRateLimiter
    fails_open: bool = False

    def _counted(self, step: Callable[[], Result], when_open: Result) -> Result:
        """The one place a storage error becomes "unavailable" (or is let through)."""
        try:
            return step()
        except StorageError as error:  # wrap_exceptions=True: every Redis error
            log.warning(
                "rate-limit storage unavailable",
                extra={"throttle": self.name, "error": type(error.storage_error).__name__},
            )
            if self.fails_open:
                return when_open
            raise ThrottleUnavailable(self.name) from error

    def retry_after(self, key: str) -> int | None:
        """Seconds to wait before the next attempt, or None when attempts are allowed."""

        def step() -> int | None:
            if self.limiter.test(self.limit, self.name, key):
                return None
            count_rate_limit_refusal(self.name)  # every caller refuses when there is a wait
            reset_at = self.limiter.get_window_stats(self.limit, self.name, key).reset_time
            return max(1, math.ceil(reset_at - time.time()))

        return self._counted(step, None)

    def is_exceeded(self, key: str) -> bool:
        """The limit is reached, for a throttle that changes what is asked rather than
        refusing (so nothing is counted as a refusal)."""
        return self._counted(lambda: not self.limiter.test(self.limit, self.name, key), True)

    def count_failure(self, key: str) -> None:
        self._counted(lambda: self.limiter.hit(self.limit, self.name, key), True)

    def take(self, key: str) -> tuple[bool, int, int]:
        """Count one attempt: (allowed, remaining, seconds until the window resets)."""

        def step() -> tuple[bool, int, int]:
            allowed = self.limiter.hit(self.limit, self.name, key)
            if not allowed:
                count_rate_limit_refusal(self.name)
            stats = self.limiter.get_window_stats(self.limit, self.name, key)
            return allowed, stats.remaining, max(0, math.ceil(stats.reset_time - time.time()))

        return self._counted(step, (True, self.limit.amount, 0))

    def clear(self, key: str) -> None:
        self._counted(lambda: self.limiter.clear(self.limit, self.name, key), None)


def make_storage(redis_url: str | None, key_prefix: str) -> Storage:
    if redis_url:
        # redis-py reconnects on the next command once Redis is back: no restart needed.
        return RedisStorage(
            redis_url,
            key_prefix=key_prefix,
            wrap_exceptions=True,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]  # passed to redis.Redis
        )
    return MemoryStorage()


@dataclass(frozen=True)
class Throttles:
    signin_account: Throttle
    signin_ip: Throttle
    password_limited: Throttle  # every password_limited attempt, per client and username
    client_auth: Throttle  # failed client authentication at /token, per client and IP
    signin_account_ip: Throttle  # failed sign-ins, per account and address
    signin_code_failures: Throttle  # wrong emailed codes, per member across challenges
    signin_codes: Throttle  # emailed codes (challenges started), per member
    signup_notices: Throttle  # "you already have an account" mails, per address
    access_list_adds: Throttle  # a developer's access-list additions, per developer
    password_resets_email: Throttle  # reset links asked for, per typed email (issue #12)
    password_resets_ip: Throttle  # reset links asked for, per address
    signin_code_resends: Throttle  # "send a new code", per sign-in challenge
    email_changes: Throttle  # email changes started, per member
    storage: Storage

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttles:
        storage = make_storage(settings.redis_url, settings.redis_key_prefix)
        limiter = MovingWindowRateLimiter(storage)
        return cls(
            signin_account=Throttle(
                "signin-account", parse(settings.signin_failures_per_account), limiter
            ),
            signin_ip=Throttle("signin-ip", parse(settings.signin_failures_per_ip), limiter),
            password_limited=Throttle(
                "password-limited", parse(settings.password_limited_rate), limiter
            ),
            # Fails open: a 256-bit secret cannot be guessed, the count only tames the load
            # of guessing, and failing closed would stop every confidential client's /token.
            client_auth=Throttle(
                "client-auth",
                parse(settings.client_auth_failures_per_client),
                limiter,
                fails_open=True,
            ),
            signin_account_ip=Throttle(
                "signin-account-ip", parse(settings.signin_failures_per_account_ip), limiter
            ),
            signin_code_failures=Throttle(
                "signin-code-failures", parse(settings.signin_code_failures_per_member), limiter
            ),
            signin_codes=Throttle("signin-codes", parse(settings.signin_codes_per_member), limiter),
            signup_notices=Throttle(
                "signup-notices", parse(settings.signup_notices_per_email), limiter
            ),
            access_list_adds=Throttle(
                "access-list-adds", parse(settings.access_list_adds_per_developer), limiter
            ),
            password_resets_email=Throttle(
                "password-resets-email", parse(settings.password_resets_per_email), limiter
            ),
            password_resets_ip=Throttle(
                "password-resets-ip", parse(settings.password_resets_per_ip), limiter
            ),
            signin_code_resends=Throttle(
                "signin-code-resends", parse(settings.signin_code_resends_per_challenge), limiter
            ),
            email_changes=Throttle(
                "email-changes", parse(settings.email_changes_per_member), limiter
            ),
            storage=storage,
        )

    def reachable(self) -> bool:
        """The counters answer (always, in memory): for /readyz."""
        try:
            return bool(self.storage.check())
        except StorageError:
            return False
