"""Alembic environment: the engine comes from ``dinhdanh.store.engine.upgrade`` (or the URL)."""

from alembic import context

from dinhdanh.store.engine import make_engine
from dinhdanh.store.schema import metadata

config = context.config
engine = config.attributes.get("engine") or make_engine(config.get_main_option("sqlalchemy.url") or None)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()
