from __future__ import annotations

from alembic import context

from pitpass.db.models import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # The serving engine's statement deadline (db/engine.py) is not a migration's.
        connection.exec_driver_sql("SET LOCAL statement_timeout = 0")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
