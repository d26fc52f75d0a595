"""One prebuilt statement, sent straight on the pooled driver connection.

A heartbeat is one indexed UPDATE of one row: about 20 µs of SQLite work. Run through
SQLAlchemy's execution path (a greenlet hand-off per call, an execution context, the
cursor adapter, an explicit BEGIN and COMMIT) it cost about ten times that, measured
in-process, and on PostgreSQL the BEGIN and COMMIT are two more round trips.

A ``DirectStatement`` keeps SQLAlchemy for what it is good at here (the Core statement,
compiled once per dialect; the type processing of the parameters, so values are stored
exactly as the ORM stores them; the connection pool) and sends the compiled SQL on the
driver connection it checks out from the pool: one round trip, committed on its own. That
is only right for a single statement that is atomic by itself.

A statement cancelled after it was sent may still land (on PostgreSQL it commits on its
own once it gets its lock), as any statement in flight may; it is never half-applied.
That suits the heartbeat, which is idempotent.

Driver errors become ``sqlalchemy.exc.OperationalError`` (answered 503, like every
other database failure) and the connection is invalidated, as SQLAlchemy does for a
connection whose state it cannot vouch for. Drivers other than aiosqlite and asyncpg take
SQLAlchemy's ordinary path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable

DIRECT_DRIVERS = frozenset({"aiosqlite", "asyncpg"})


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    compiled: Any  # sqlalchemy.sql.compiler.Compiled
    # Positional parameters, in order: the bind name and its type's bind processor.
    positions: tuple[tuple[str, Callable[[Any], Any] | None], ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        values = self.compiled.construct_params(params)
        return [
            values[name] if process is None else process(values[name])
            for name, process in self.positions
        ]


class DirectStatement:
    """A Core statement run as one round trip on the driver connection: ``rowcount``."""

    def __init__(self, statement: Executable) -> None:
        # Python-side column defaults (``onupdate=utcnow``) are computed by SQLAlchemy's
        # execution path, which this skips: such a column must be given a value.
        compiled = statement.compile()
        unset = [column.name for column in [*compiled.insert_prefetch, *compiled.update_prefetch]]
        if unset:
            raise ValueError(f"give a value for {', '.join(unset)}: its default is Python-side")
        self._statement = statement
        self._compiled: dict[tuple[str, str, str], _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        found = self._compiled.get(key)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            positions = tuple(
                (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                for name in compiled.positiontup or ()
            )
            found = self._compiled[key] = _Compiled(str(compiled), compiled, positions)
        return found

    async def rowcount(self, engine: AsyncEngine, params: Mapping[str, Any]) -> int:
        """Run the statement with ``params``; the number of rows it matched."""
        dialect = engine.dialect
        if dialect.driver not in DIRECT_DRIVERS:
            async with engine.begin() as conn:
                return (await conn.execute(self._statement, dict(params))).rowcount
        compiled = self._compile(dialect)
        arguments = compiled.arguments(params)
        conn = await engine.connect()
        try:
            driver = (await conn.get_raw_connection()).driver_connection
            try:
                if dialect.driver == "asyncpg":
                    # Outside a transaction: the statement commits on its own.
                    status = await driver.execute(compiled.sql, *arguments)  # "UPDATE 1"
                    return int(status.rpartition(" ")[2])
                cursor = await driver.execute(compiled.sql, arguments)
                try:
                    matched = cursor.rowcount
                finally:
                    await cursor.close()
                await driver.commit()
                return matched
            except Exception as exc:
                await conn.invalidate(exc)
                raise OperationalError(compiled.sql, None, exc) from exc
            except BaseException:
                await conn.invalidate()  # cancelled mid-statement: its state is unknown
                raise
        finally:
            # Closed in this task. ``async with`` would close it in a task of its own, so
            # that a cancellation cannot abandon the close halfway; that costs two trips
            # through the event loop per request. Here nothing is left to roll back, so
            # the close returns the connection to the pool without waiting, and if it
            # ever is cancelled, SQLAlchemy's pool discards the connection instead.
            await conn.close()
