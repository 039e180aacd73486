"""Where a client keeps its tokens, and the lock that makes a refresh single-flight.

Refresh tokens are single use (PRODUCT.md §4): a second refresh with the same
token is a reuse, and the server revokes the whole session (RFC 9700 §4.14). So
every thread and process sharing one member's tokens must share one store, and a
refresh happens only while holding the store's lock, after reading the store
again (`OAuthClient.access_token`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from filelock import FileLock, Timeout

from pitpass_kit.errors import KitError

# A holder that dies keeps a Redis lock this long at most; a refresh takes far less.
REDIS_LOCK_SECONDS = 30.0
# How long a caller waits for another one's refresh before giving up.
LOCK_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class TokenSet:
    """One member's tokens at one client; times are Unix epoch seconds."""

    access_token: str
    expires_at: float
    obtained_at: float
    refresh_token: str | None = None
    refresh_expires_at: float | None = None
    scope: str = ""
    token_type: str = "Bearer"  # noqa: S105 (RFC 6750's type, not a secret)
    id_token: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> TokenSet:
        data: dict[str, Any] = json.loads(text)
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def fresh(self, now: float, margin: float) -> bool:
        """Usable for at least `margin` seconds more, capped at half its lifetime so that a
        short-lived token is not refreshed at once."""
        lifetime = self.expires_at - self.obtained_at
        return now < self.expires_at - min(margin, lifetime / 2)


class LockTimeout(KitError):
    """Another sharer of the store held its lock for LOCK_WAIT_SECONDS."""


class TokenStore(Protocol):
    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet | None) -> None:
        """Keep `tokens`; None forgets them (signed out, or the session ended)."""

    def lock(self) -> contextlib.AbstractContextManager[None]:
        """Held by whoever refreshes: every sharer of this store waits on it."""


class MemoryTokenStore:
    """Tokens in this process only: shared by its threads."""

    def __init__(self) -> None:
        self._tokens: TokenSet | None = None
        self._lock = threading.Lock()

    def load(self) -> TokenSet | None:
        return self._tokens

    def save(self, tokens: TokenSet | None) -> None:
        self._tokens = tokens

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        with self._lock:
            yield


class FileTokenStore:
    """Tokens in a file (mode 0600, replaced atomically) shared by processes on one
    machine; an advisory lock on `<path>.lock` serialises the refresh."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._threads = threading.Lock()
        self._file_lock = FileLock(f"{self.path}.lock", timeout=LOCK_WAIT_SECONDS, mode=0o600)
        self._cached: tuple[tuple[int, int, int], TokenSet] | None = None

    def load(self) -> TokenSet | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        # A replace gives a new inode, so an unchanged stat means unchanged tokens.
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._cached
        if cached is not None and cached[0] == identity:
            return cached[1]
        try:
            tokens = TokenSet.from_json(self.path.read_bytes())
        except FileNotFoundError:
            return None
        self._cached = (identity, tokens)
        return tokens

    def save(self, tokens: TokenSet | None) -> None:
        if tokens is None:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600; a reader sees the old file or the new, never half.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(tokens.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        # The thread lock first: the threads of one process queue here cheaply, and
        # only one of them at a time competes for the file lock with other processes.
        with self._threads:
            try:
                self._file_lock.acquire()
            except Timeout as error:
                raise LockTimeout(f"{self.path}.lock held for {LOCK_WAIT_SECONDS:.0f} s") from error
            try:
                yield
            finally:
                self._file_lock.release()


class RedisTokenStore:
    """Tokens under one Redis key, shared by processes on any machine; a Redis lock
    (`<key>:lock`, expiring after REDIS_LOCK_SECONDS) serialises the refresh.
    Needs the `redis` extra: `pip install 'pitpass-kit[redis]'`."""

    def __init__(self, url: str, key: str) -> None:
        import redis

        self.key = key
        self._redis = redis.Redis.from_url(url)
        self._threads = threading.Lock()

    def load(self) -> TokenSet | None:
        raw = self._redis.get(self.key)
        return None if raw is None else TokenSet.from_json(raw)

    def save(self, tokens: TokenSet | None) -> None:
        if tokens is None:
            self._redis.delete(self.key)
        else:
            self._redis.set(self.key, tokens.to_json())

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        lock = self._redis.lock(
            f"{self.key}:lock", timeout=REDIS_LOCK_SECONDS, blocking_timeout=LOCK_WAIT_SECONDS
        )
        with self._threads:
            if not lock.acquire():
                raise LockTimeout(f"{self.key}:lock held for {LOCK_WAIT_SECONDS:.0f} s")
            try:
                yield
            finally:
                # Raises if the lock expired meanwhile: then another refresh may have run.
                lock.release()
