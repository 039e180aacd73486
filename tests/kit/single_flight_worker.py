"""One process of the single-flight load (tests/kit/test_single_flight.py): THREADS threads
call `access_token()` on one shared store until the deadline, then the process prints
what it saw as JSON: every access token, and every error by name.

    python -m tests.kit.single_flight_worker '{"base_url": …, "store": "file", …}'

With `"unlocked": true` the store's lock does nothing: the test runs that too, to prove
it would catch a client that refreshes without it.
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from pitpass_kit.client import OAuthClient
from pitpass_kit.errors import OAuthError
from pitpass_kit.stores import FileTokenStore, RedisTokenStore, TokenStore

THREADS = 20


def store_of(job: dict[str, Any]) -> TokenStore:
    if job["store"] == "file":
        return FileTokenStore(job["path"])
    return RedisTokenStore(job["redis_url"], job["key"])


@contextlib.contextmanager
def no_lock() -> Iterator[None]:
    yield


def main() -> None:
    job = json.loads(sys.argv[1])
    store = store_of(job)
    if job.get("unlocked"):
        store.lock = no_lock  # type: ignore[method-assign]
    client = OAuthClient(job["base_url"], job["client_id"], job["client_secret"], store=store)
    deadline = time.monotonic() + job["seconds"]
    tokens: set[str] = set()
    errors: Counter[str] = Counter()
    calls = [0]
    guard = threading.Lock()

    def keep_calling() -> None:
        while time.monotonic() < deadline:
            try:
                token = client.access_token()
                with guard:
                    tokens.add(token)
                    calls[0] += 1
            except OAuthError as error:
                with guard:
                    errors[error.error] += 1
            except Exception as error:  # anything else counts too: nothing dies unseen
                with guard:
                    errors[type(error).__name__] += 1
            # A call every few tens of milliseconds per thread: continuous, without taking
            # the machine from the rest of the suite.
            time.sleep(random.uniform(0.01, 0.05))

    threads = [threading.Thread(target=keep_calling) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"tokens": sorted(tokens), "errors": errors, "calls": calls[0]}))


if __name__ == "__main__":
    main()
