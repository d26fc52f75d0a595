"""The Alembic migrations build exactly the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from taskgate.db import migrate
from taskgate.db.models import Base
from taskgate.db.session import create_engine


async def test_migrated_schema_matches_models(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await migrate.upgrade(engine)
    assert await migrate.current_revision(engine) == migrate.head_revision() == migrate.HEAD

    def diff(connection):
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
    await migrate.upgrade(engine)  # a second upgrade is a no-op
    await engine.dispose()


async def test_unmigrated_external_database_is_refused(tmp_path):
    from taskgate.runtime import Runtime
    from taskgate.settings import Settings

    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    runtime = Runtime.from_settings(settings)
    try:
        with pytest.raises(RuntimeError, match="taskgate db upgrade"):
            await runtime.prepare_database()
        await migrate.upgrade(runtime.engine)
        await runtime.prepare_database()
    finally:
        await runtime.aclose()


async def test_a_database_never_migrated_has_no_revision(database_url, tmp_path):
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    engine = create_engine(url)
    try:
        if database_url is None:
            assert await migrate.current_revision(engine) is None
        else:  # the fixture's database is migrated: take the version table away
            async with engine.begin() as connection:
                await connection.exec_driver_sql("DROP TABLE alembic_version")
            assert await migrate.current_revision(engine) is None
    finally:
        await engine.dispose()
