"""One prebuilt statement, sent straight on a pooled driver connection.

A heartbeat is one indexed UPDATE of one row, far cheaper than SQLAlchemy's execution
path around it (an execution context, the cursor adapter, an explicit BEGIN and COMMIT, a
greenlet started for each of checkout, execute and close); on PostgreSQL the BEGIN and
COMMIT are two more round trips. The figures: docs/performance.md, "What made it fast".

A ``DirectStatement`` keeps SQLAlchemy for what it is good at here (the Core statement,
compiled once per dialect; the type processing of the parameters, so values are stored
exactly as the ORM stores them; the connection pool) and sends the compiled SQL on the
driver connection it checks out from the pool. ``rowcounts`` runs it once per parameter
set: a single run commits on its own (one round trip); several share one transaction,
so they are all written or none is (``taskgate.db.group_commit`` batches concurrent
heartbeats this way). That is only right for statements that are atomic by themselves.
On PostgreSQL a statement may also carry its *many* form, which writes all the parameter
sets in one statement (``UPDATE ... FROM unnest(...)``): one round trip for the whole
batch instead of one per set plus BEGIN and COMMIT. ``execute_all`` runs a write that
always writes (an INSERT) for many sets, atomically, without counting: on PostgreSQL the
driver pipelines them (asyncpg's ``executemany``, one round trip), on SQLite one
``executemany`` and a commit (the read audit's records go this way).
``first`` runs a SELECT and returns its first row, its values processed as SQLAlchemy
would: the token gate reads a TI's standing this way, several times cheaper than through
a session.

Checkout, statements and return run in *one* greenlet, because the pool may have to
wait, connect or ping, and it can only do that inside one. Starting a greenlet is costly
(a fresh interpreter stack each time, which the kernel maps and faults in), so the
greenlet comes from ``taskgate.db.greenlets``, which keeps them for reuse.

A statement cancelled after it was sent may still land (on PostgreSQL it commits on its
own once it gets its lock), as any statement in flight may; it is never half-applied.
That suits the heartbeat, which is idempotent.

Driver errors become ``sqlalchemy.exc.OperationalError`` (answered 503, like every
other database failure) and the connection is invalidated, as SQLAlchemy does for a
connection whose state it cannot vouch for. Drivers other than aiosqlite and asyncpg,
and every driver with the fast paths off (``taskgate.db.fast_paths``), take SQLAlchemy's
ordinary path: a ``Connection`` and ``execute``, several parameter sets in one
transaction, a driver error an ``OperationalError`` there too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, bindparam, column, func
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import CompileError, DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.types import TypeEngine
from sqlalchemy.util import await_only

from taskgate.db import fast_paths
from taskgate.db.greenlets import run_in_greenlet
from taskgate.db.sqlite import InlineSQLiteConnection


@dataclass(slots=True)
class _Compiled:
    sql: str
    # Per positional parameter, in order: either the caller's parameter name and its
    # type's bind processor, or (name None) a value fixed in the statement, processed once.
    positions: tuple[tuple[str | None, Callable[[Any], Any] | None, Any], ...]
    # A SELECT's result processor per column: a processor may depend on the column type
    # the driver reports (as in SQLAlchemy), so they are set at the statement's first run.
    results: tuple[Callable[[Any], Any] | None, ...] | None = None

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        return [
            fixed if name is None else (params[name] if process is None else process(params[name]))
            for name, process, fixed in self.positions
        ]


def parameter_sets(params: Mapping[str, TypeEngine[Any]]) -> Any:
    """The parameter sets of a many form (PostgreSQL), as a table: ``unnest`` of one array
    parameter per name in ``params`` (its SQL type the array's element type), a column
    per name and ``n``, each set's 1-based position (``WITH ORDINALITY``)."""
    return (
        func.unnest(*(bindparam(name, type_=ARRAY(type_)) for name, type_ in params.items()))
        .table_valued(
            *(column(name, type_) for name, type_ in params.items()), with_ordinality="n"
        )
        .render_derived(name="parameter_set")
    )


class DirectStatement:
    """A Core statement run on the driver connection, for one or many parameter sets.

    ``many``, for PostgreSQL: the same write for many parameter sets as one statement.
    Each of its parameters is the array of the values of the parameter of the same name,
    and it returns the 1-based position (``WITH ORDINALITY``) of each set whose row it
    wrote. ``many_key`` names the parameter that picks the row: PostgreSQL writes a row
    once per statement, however many sets name it, so sets naming the same row go to
    statements of their own (in the same transaction, in order).

    ``lock_order`` names the parameter by whose value the sets of one batch are sent
    (``group_commit``): two transactions that lock the same rows in the same order cannot
    deadlock, as they can when two replicas' batches write them in opposite orders.
    """

    def __init__(
        self,
        statement: Executable,
        *,
        many: Executable | None = None,
        many_key: str | None = None,
        lock_order: str | None = None,
    ) -> None:
        # Python-side column defaults (``onupdate=utcnow``) are computed by SQLAlchemy's
        # execution path, which this skips: such a column must be given a value.
        compiled = statement.compile()
        unset = [column.name for column in [*compiled.insert_prefetch, *compiled.update_prefetch]]
        if unset:
            raise ValueError(f"give a value for {', '.join(unset)}: its default is Python-side")
        if any(bind.expanding or bind.literal_execute for bind in compiled.binds.values()):
            raise ValueError("expanding and literal-execute parameters are not supported")
        # Compiled as SQLAlchemy's own path (the fast paths off) compiles it, with the
        # parameter names as column keys: a write refuses a parameter named as a column it
        # does not set. Refused here, at import, whichever path runs.
        names = {bind.key for bind in compiled.binds.values() if bind.required}
        try:
            statement.compile(column_keys=sorted(names))
        except CompileError as exc:
            raise ValueError(f"SQLAlchemy's own path cannot run it: {exc}") from None
        self._statement = statement
        self._compiled: dict[tuple[str, str, str], _Compiled] = {}
        self._many: DirectStatement | None = None
        self._many_key = many_key
        self.lock_order = lock_order
        if many is not None:
            many_names = {b.key for b in many.compile().binds.values() if b.required}
            if many_key not in names or not many_names <= names:
                raise ValueError("the many form takes the statement's parameters, and a key")
            self._many = DirectStatement(many)

    @classmethod
    def batched(
        cls,
        build: Callable[[Callable[[str], Any]], UpdateBase],
        params: Mapping[str, TypeEngine[Any]],
        *,
        key: str,
    ) -> DirectStatement:
        """A write with its many form, written once: ``build(value)`` returns the
        statement in terms of ``value(name)``, the value of the parameter ``name``, whose
        SQL type is ``params[name]``; ``key`` is the parameter that picks the row.

        For one set each ``value(name)`` is a bound parameter. The many form (PostgreSQL)
        reads the sets from ``unnest`` of one array per parameter, ``WITH ORDINALITY``, and
        returns the position of each set whose row it wrote."""
        sets = parameter_sets(params)
        return cls(
            build(lambda name: bindparam(name, type_=params[name])),
            many=build(lambda name: sets.c[name]).returning(sets.c.n),
            many_key=key,
            lock_order=key,
        )

    def _compile(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        found = self._compiled.get(key)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            positions = []
            for name in compiled.positiontup or ():
                bind = compiled.binds[name]
                process = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if bind.required:
                    positions.append((bind.key, process, None))
                else:
                    value = bind.effective_value
                    positions.append((None, None, value if process is None else process(value)))
            found = self._compiled[key] = _Compiled(str(compiled), tuple(positions))
        return found

    async def rowcounts(
        self, engine: AsyncEngine, params: Sequence[Mapping[str, Any]]
    ) -> list[int]:
        """Run the statement once per mapping in ``params``, on one connection and in one
        transaction (a single one commits on its own); the rows each run matched."""
        dialect = engine.dialect
        driver = _direct_driver(engine)
        if driver is None:
            with _as_operational_error():
                async with engine.begin() as conn:
                    return [
                        (await conn.execute(self._statement, dict(p))).rowcount for p in params
                    ]
        if self._many is not None and len(params) > 1 and driver.ordinals is not None:
            return await self._many_rowcounts(engine, driver, params)
        compiled = self._compile(dialect)
        arguments = [compiled.arguments(p) for p in params]
        return await run_in_greenlet(
            _run, engine.sync_engine, driver.rowcounts, compiled.sql, arguments
        )

    async def _many_rowcounts(
        self, engine: AsyncEngine, driver: _Driver, params: Sequence[Mapping[str, Any]]
    ) -> list[int]:
        assert self._many is not None and driver.ordinals is not None
        # Round r holds the r-th set naming each row: no row twice in one statement.
        rounds: list[list[int]] = []
        seen: dict[Any, int] = {}
        for index, p in enumerate(params):
            r = seen[p[self._many_key]] = seen.get(p[self._many_key], -1) + 1
            if r == len(rounds):
                rounds.append([])
            rounds[r].append(index)
        compiled = self._many._compile(engine.dialect)
        names = {name for name, _, _ in compiled.positions if name is not None}
        arguments = [
            compiled.arguments({name: [params[i][name] for i in indices] for name in names})
            for indices in rounds
        ]
        written = await run_in_greenlet(
            _run, engine.sync_engine, driver.ordinals, compiled.sql, arguments
        )
        counts = [0] * len(params)
        for indices, ordinals in zip(rounds, written, strict=True):
            for n in ordinals:
                counts[indices[n - 1]] += 1
        return counts

    async def execute_all(self, engine: AsyncEngine, params: Sequence[Mapping[str, Any]]) -> None:
        """Run the statement (a write whose every run writes, such as an INSERT) once per
        mapping in ``params``, all in one transaction: every set written or none. On
        PostgreSQL the driver sends them all at once (one round trip for the batch)."""
        driver = _direct_driver(engine)
        if driver is None:
            with _as_operational_error():
                async with engine.begin() as conn:
                    await conn.execute(self._statement, [dict(p) for p in params])
            return
        compiled = self._compile(engine.dialect)
        arguments = [compiled.arguments(p) for p in params]
        await run_in_greenlet(
            _run, engine.sync_engine, driver.writes, compiled.sql, arguments
        )

    async def first(self, engine: AsyncEngine, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row the statement (a SELECT) reads with ``params``, or None."""
        dialect = engine.dialect
        driver = _direct_driver(engine)
        if driver is None:
            with _as_operational_error():
                async with engine.connect() as conn:
                    found = (await conn.execute(self._statement, dict(params))).first()
            return None if found is None else tuple(found)
        compiled = self._compile(dialect)
        arguments = compiled.arguments(params)
        if compiled.results is None:
            found, coltypes = await run_in_greenlet(
                _run, engine.sync_engine, driver.describe, compiled.sql, arguments
            )
            columns = self._statement.selected_columns  # type: ignore[attr-defined]
            compiled.results = tuple(
                column.type.dialect_impl(dialect).result_processor(dialect, coltype)
                for column, coltype in zip(columns, coltypes, strict=True)
            )
        else:
            found = await run_in_greenlet(
                _run, engine.sync_engine, driver.first, compiled.sql, arguments
            )
        if found is None:
            return None
        return tuple(
            v if process is None else process(v) for process, v in zip(compiled.results, found)
        )


@contextmanager
def _as_operational_error() -> Iterator[None]:
    """On SQLAlchemy's ordinary path, a driver error is one too, as on the direct path."""
    try:
        yield
    except DBAPIError as exc:
        if isinstance(exc, OperationalError):
            raise
        raise OperationalError(exc.statement, exc.params, exc.orig) from exc


def _direct_driver(engine: AsyncEngine) -> _Driver | None:
    """How to send on ``engine``'s driver; None: SQLAlchemy's ordinary path (another
    driver, or the fast paths off)."""
    if not fast_paths.enabled(engine):
        return None
    return DIRECT_DRIVERS.get(engine.dialect.driver)


def _run(
    engine: Engine, send: Callable[[Any, str, Any], Awaitable[Any]], sql: str, arguments: Any
) -> Any:
    """In SQLAlchemy's greenlet: check out, send (a write commits), return the connection."""
    try:
        pooled = engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:
        # The pool hands on the driver's own error when connecting fails (a server that
        # refuses to serve, say); SQLAlchemy's Connection would wrap it, and so do we.
        raise OperationalError(None, None, exc) from exc
    try:
        return await_only(send(pooled.driver_connection, sql, arguments))
    except Exception as exc:
        pooled.invalidate(exc)
        raise OperationalError(sql, None, exc) from exc
    except BaseException:
        pooled.invalidate()  # cancelled mid-statement: its state is unknown
        raise
    finally:
        pooled.close()


async def _asyncpg_rowcounts(connection: Any, sql: str, arguments: list[list[Any]]) -> list[int]:
    return await _asyncpg_each(connection, sql, arguments, _asyncpg_matched)


async def _asyncpg_ordinals(
    connection: Any, sql: str, arguments: list[list[Any]]
) -> list[list[int]]:
    return await _asyncpg_each(connection, sql, arguments, _asyncpg_returned)


async def _asyncpg_each(
    connection: Any,
    sql: str,
    arguments: list[list[Any]],
    run: Callable[[Any, str, list[Any]], Awaitable[Any]],
) -> list[Any]:
    if len(arguments) == 1:  # outside a transaction: it commits on its own
        return [await run(connection, sql, arguments[0])]
    async with connection.transaction():
        return [await run(connection, sql, args) for args in arguments]


async def _asyncpg_matched(connection: Any, sql: str, args: list[Any]) -> int:
    return _matched(await connection.execute(sql, *args))


async def _asyncpg_returned(connection: Any, sql: str, args: list[Any]) -> list[int]:
    return [row[0] for row in await connection.fetch(sql, *args)]


async def _asyncpg_writes(connection: Any, sql: str, arguments: list[list[Any]]) -> None:
    await connection.executemany(sql, arguments)  # atomic: all sets or none


async def _asyncpg_first(connection: Any, sql: str, arguments: list[Any]) -> Any:
    return await connection.fetchrow(sql, *arguments)


async def _asyncpg_describe(
    connection: Any, sql: str, arguments: list[Any]
) -> tuple[Any, list[int]]:
    prepared = await connection.prepare(sql)
    return await prepared.fetchrow(*arguments), [a.type.oid for a in prepared.get_attributes()]


def _matched(status: str) -> int:
    return int(status.rpartition(" ")[2])  # "UPDATE 1"


def _inline(connection: Any) -> InlineSQLiteConnection:
    if not isinstance(connection, InlineSQLiteConnection):
        raise TypeError("the SQLite engine must come from taskgate.db.session.create_engine")
    return connection


def _aiosqlite_rowcounts(
    connection: Any, sql: str, arguments: list[list[Any]]
) -> Awaitable[list[int]]:
    return _inline(connection).run(partial(_sqlite_rowcounts, sql, arguments))


def _aiosqlite_first(connection: Any, sql: str, arguments: list[Any]) -> Awaitable[Any]:
    # A SELECT opens no transaction here: it reads what is committed, and nothing is left open.
    return _inline(connection).run(lambda conn: conn.execute(sql, arguments).fetchone())


def _aiosqlite_describe(
    connection: Any, sql: str, arguments: list[Any]
) -> Awaitable[tuple[Any, list[None]]]:
    def read(conn: sqlite3.Connection) -> tuple[Any, list[None]]:
        cursor = conn.execute(sql, arguments)
        return cursor.fetchone(), [column[1] for column in cursor.description]  # types: None

    return _inline(connection).run(read)


def _aiosqlite_writes(connection: Any, sql: str, arguments: list[list[Any]]) -> Awaitable[None]:
    return _inline(connection).run(partial(_sqlite_writes, sql, arguments))


def _sqlite_writes(sql: str, arguments: list[list[Any]], connection: sqlite3.Connection) -> None:
    try:
        connection.executemany(sql, arguments)
    except BaseException:
        connection.rollback()  # nothing half-done stays
        raise
    connection.commit()


def _sqlite_rowcounts(
    sql: str, arguments: list[list[Any]], connection: sqlite3.Connection
) -> list[int]:
    try:
        matched = [connection.execute(sql, args).rowcount for args in arguments]
    except BaseException:
        # Nothing half-done stays, and a repeat (after "database is locked") starts afresh.
        connection.rollback()
        raise
    connection.commit()
    return matched


class _Driver(NamedTuple):
    """How one driver sends: writes (rows matched per run); many runs of a write that
    always writes, atomically, uncounted; a read's first row; for a read's first run,
    its first row with the type of each column as the driver reports it; and, where a
    statement's many form runs, the first column of each row each run returned."""

    rowcounts: Callable[[Any, str, list[list[Any]]], Awaitable[list[int]]]
    writes: Callable[[Any, str, list[list[Any]]], Awaitable[None]]
    first: Callable[[Any, str, list[Any]], Awaitable[Any]]
    describe: Callable[[Any, str, list[Any]], Awaitable[tuple[Any, list[Any]]]]
    ordinals: Callable[[Any, str, list[list[Any]]], Awaitable[list[list[int]]]] | None = None


# The drivers sent to directly; others take SQLAlchemy's ordinary path.
DIRECT_DRIVERS: dict[str, _Driver] = {
    "aiosqlite": _Driver(_aiosqlite_rowcounts, _aiosqlite_writes, _aiosqlite_first,
                         _aiosqlite_describe),
    "asyncpg": _Driver(_asyncpg_rowcounts, _asyncpg_writes, _asyncpg_first, _asyncpg_describe,
                       _asyncpg_ordinals),
}
