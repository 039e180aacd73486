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

# A holder that dies keeps a Redis lock this long at most. It must outlast the slowest
# refresh: the kit's HTTP timeout is 10 s per phase, so at most about 40 s.
REDIS_LOCK_SECONDS = 120.0
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
    def from_json(cls, text: str | bytes, where: str) -> TokenSet:
        try:
            data: dict[str, Any] = json.loads(text)
            tokens = cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})
            float(tokens.expires_at) + float(tokens.obtained_at)
        except (ValueError, TypeError, AttributeError) as error:
            problem = f"{where} holds no token set ({error}): delete it, sign in again"
            raise StoreError(problem) from error
        return tokens

    def fresh(self, now: float, margin: float) -> bool:
        """Usable for at least `margin` seconds more, capped at half its lifetime so that a
        short-lived token is not refreshed at once."""
        lifetime = self.expires_at - self.obtained_at
        return now < self.expires_at - min(margin, lifetime / 2)


class LockTimeout(KitError):
    """Another sharer of the store held its lock for LOCK_WAIT_SECONDS."""


class StoreError(KitError):
    """The store cannot be read or written: a damaged file, a full disk, Redis down."""


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
        self.path = Path(path).expanduser()
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
            tokens = TokenSet.from_json(self.path.read_bytes(), str(self.path))
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"cannot read {self.path}: {error}") from error
        self._cached = (identity, tokens)
        return tokens

    def save(self, tokens: TokenSet | None) -> None:
        try:
            if tokens is None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                return
            self._replace(tokens.to_json())
        except OSError as error:
            lost = "" if tokens is None else "; the new refresh token is lost: sign in again"
            raise StoreError(f"cannot write {self.path}: {error}{lost}") from error

    def _replace(self, text: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp creates the file 0600; a reader sees the old file or the new, never half.
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        # The rename itself reaches the disk only with its folder: after a crash, the spent
        # refresh token must not come back.
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)

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
        try:
            import redis
        except ImportError as error:
            raise KitError("RedisTokenStore needs: pip install 'pitpass-kit[redis]'") from error
        self.key = key
        self._redis = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)
        self._redis_error = redis.RedisError
        self._threads = threading.Lock()

    @contextlib.contextmanager
    def _talking(self) -> Iterator[None]:
        try:
            yield
        except self._redis_error as error:
            raise StoreError(f"Redis, for {self.key}: {error}") from error

    def load(self) -> TokenSet | None:
        with self._talking():
            raw = self._redis.get(self.key)
        return None if raw is None else TokenSet.from_json(raw, f"Redis key {self.key}")

    def save(self, tokens: TokenSet | None) -> None:
        with self._talking():
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
            with self._talking():
                acquired = lock.acquire()
            if not acquired:
                raise LockTimeout(f"{self.key}:lock held for {LOCK_WAIT_SECONDS:.0f} s")
            failed = True
            try:
                yield
                failed = False
            finally:
                try:
                    lock.release()
                except self._redis_error as error:
                    # Expired while held (REDIS_LOCK_SECONDS): another refresh may have run.
                    # Said only if nothing else went wrong, which would be the better news.
                    if not failed:
                        raise StoreError(f"{self.key}:lock expired while held") from error
