"""What every CLI command shares: output, errors, and (local mode) settings -> runtime ->
session.

Start-up time: this module and every command module import only typer and the standard
library at the top. The server, the database layer, pydantic-settings and rich are
imported inside the functions that need them, so ``taskgate --help`` and the commands
that call a remote server (``taskgate.cli.remote``) never load them.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy.ext.asyncio import AsyncSession

    from taskgate.runtime import Runtime
    from taskgate.settings import Settings

T = TypeVar("T")


class _LazyConsole:
    """A rich ``Console``, made on first use (rich takes a noticeable part of start-up)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


console: Any = _LazyConsole(soft_wrap=True)
err_console: Any = _LazyConsole(stderr=True, soft_wrap=True)

JsonOption = typer.Option(False, "--json", help="Print machine-readable JSON.")


def fail(message: str, code: int = 1) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def parse_ti_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise fail(f"not a task instance id: {value!r}", 2) from None


def settings_from_env() -> Settings:
    """The settings from TASKGATE_* and the TOML file; bad ones end the command (exit 1)."""
    from taskgate.settings import Settings

    try:
        return Settings()
    except ValueError as exc:
        raise fail(str(exc)) from None


def runtime_from_env(*, create_key: bool = True, settings: Settings | None = None) -> Runtime:
    from taskgate.runtime import Runtime
    from taskgate.tokens.keys import KeyFileError

    try:
        return Runtime.from_settings(settings or settings_from_env(), create_key=create_key)
    except (KeyFileError, ValueError) as exc:
        raise fail(str(exc)) from None


def with_session(work: Callable[[AsyncSession, Runtime], Awaitable[T]]) -> T:
    """Run ``work`` with a session on the configured database (migrated if embedded)."""

    async def in_session(runtime: Runtime) -> T:
        async with runtime.sessionmaker() as session:
            return await work(session, runtime)

    return with_runtime(in_session)


def with_runtime(work: Callable[[Runtime], Awaitable[T]]) -> T:
    """Run ``work`` with the configured runtime (its database migrated if embedded).
    Service errors end the command: bad input with exit 2, the others with exit 1."""
    import asyncio

    from taskgate.services.errors import InvalidInput, ServiceError

    async def main() -> T:
        runtime = runtime_from_env()
        try:
            await runtime.prepare_database()
            return await work(runtime)
        finally:
            await runtime.aclose()

    try:
        return asyncio.run(main())
    except InvalidInput as exc:
        raise fail(exc.message, 2) from None
    except ServiceError as exc:
        raise fail(exc.message) from None
    except RuntimeError as exc:
        raise fail(str(exc)) from None


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def print_json_line(data: Any) -> None:
    """One JSON object on one line (JSON Lines: a stream a script reads as it comes)."""
    sys.stdout.write(json.dumps(data, default=str) + "\n")
    sys.stdout.flush()


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text, not markup: cells hold data that workers wrote (keys, hostnames, fields).
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    console.print(table)
