"""What every request and command shares: settings, keys, database, limits, mail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from pitpass.config import Settings
from pitpass.db.engine import make_engine, make_session_factory
from pitpass.services import data_keys
from pitpass.services.crypto import Keyring
from pitpass.services.mail import Mailer
from pitpass.services.ratelimit import Throttles


@dataclass
class AppContext:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    keyring: Keyring
    throttles: Throttles
    mailer: Mailer = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppContext:
        engine = make_engine(settings.database_url, settings.storage_timeout_seconds)
        session_factory = make_session_factory(engine)
        keyring = Keyring(settings.secret_key_bytes(), settings.previous_secret_keys_bytes())
        keyring.token_hash_key_source = partial(data_keys.token_hash_key, session_factory, keyring)
        return cls(
            settings=settings,
            engine=engine,
            session_factory=session_factory,
            keyring=keyring,
            throttles=Throttles.from_settings(settings),
            mailer=Mailer(settings, keyring),
        )

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back on any error."""
        with self.session_factory() as db, db.begin():
            yield db

    def close(self) -> None:
        self.engine.dispose()
