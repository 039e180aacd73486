"""Throttles built on `limits`: memory storage by default, Redis when configured.

Counters live in Redis when PITPASS_REDIS_URL is set, so every instance sees
the same counts (PRODUCT.md §6).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from pitpass.config import Settings
from pitpass.metrics import count_rate_limit_refusal


@dataclass(frozen=True)
class Throttle:
    """Counts failures under one name; `retry_after` says when trying is allowed again."""

    name: str
    limit: RateLimitItem
    limiter: MovingWindowRateLimiter

    def retry_after(self, key: str) -> int | None:
        """Seconds to wait before the next attempt, or None when attempts are allowed."""
        if self.limiter.test(self.limit, self.name, key):
            return None
        count_rate_limit_refusal(self.name)  # every caller refuses when there is a wait
        reset_at = self.limiter.get_window_stats(self.limit, self.name, key).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def count_failure(self, key: str) -> None:
        self.limiter.hit(self.limit, self.name, key)

    def take(self, key: str) -> tuple[bool, int, int]:
        """Count one attempt: (allowed, remaining, seconds until the window resets)."""
        allowed = self.limiter.hit(self.limit, self.name, key)
        if not allowed:
            count_rate_limit_refusal(self.name)
        stats = self.limiter.get_window_stats(self.limit, self.name, key)
        return allowed, stats.remaining, max(0, math.ceil(stats.reset_time - time.time()))

    def clear(self, key: str) -> None:
        self.limiter.clear(self.limit, self.name, key)


def make_storage(redis_url: str | None, key_prefix: str) -> Storage:
    if redis_url:
        return RedisStorage(redis_url, key_prefix=key_prefix)
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

    @classmethod
    def from_settings(cls, settings: Settings) -> Throttles:
        limiter = MovingWindowRateLimiter(
            make_storage(settings.redis_url, settings.redis_key_prefix)
        )
        return cls(
            signin_account=Throttle(
                "signin-account", parse(settings.signin_failures_per_account), limiter
            ),
            signin_ip=Throttle("signin-ip", parse(settings.signin_failures_per_ip), limiter),
            password_limited=Throttle(
                "password-limited", parse(settings.password_limited_rate), limiter
            ),
            client_auth=Throttle(
                "client-auth", parse(settings.client_auth_failures_per_client), limiter
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
        )
