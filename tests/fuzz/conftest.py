from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Site
from tests.support import Backend, postgres_database, require_redis


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.services)])
def postgresql_backend() -> Iterator[Backend]:
    """PostgreSQL + Redis only: the fuzzers' SQLite runs already cover what these add."""
    redis_url = require_redis()
    with postgres_database(migrated=True) as url:
        yield Backend("postgresql", url, redis_url)


@pytest.fixture
def postgresql_site(site_factory: Any, postgresql_backend: Backend) -> Site:
    built: Site = site_factory(postgresql_backend)
    return built
