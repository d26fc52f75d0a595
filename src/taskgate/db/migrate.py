"""Run the Alembic migrations shipped inside the package (``taskgate db upgrade``).

Every CLI command and server start checks the schema first. Alembic is imported only
when there is something to migrate: the check itself is one query against ``HEAD``, so
that a CLI command on an up-to-date database does not pay for Alembic's import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision in migrations/versions (tests/db/test_migrations.py holds them equal).
HEAD = "0014"


def alembic_config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision``."""
    if revision == "head" and await current_revision(engine) == HEAD:
        return

    def run(connection: Connection) -> None:
        from alembic import command

        command.upgrade(alembic_config(connection), revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


def head_revision() -> str | None:
    """The newest revision, as Alembic reads it from the migration scripts."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    try:
        async with engine.connect() as connection:
            found = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return found.scalar_one_or_none()
    except DBAPIError as exc:
        if _no_such_table(exc):
            return None
        raise


def _no_such_table(exc: DBAPIError) -> bool:
    # SQLite: "no such table"; PostgreSQL: SQLSTATE 42P01 (undefined_table).
    message = str(exc.orig)
    return "no such table" in message or getattr(exc.orig, "sqlstate", None) == "42P01" or (
        "does not exist" in message and "alembic_version" in message
    )
