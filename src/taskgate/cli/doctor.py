"""``taskgate doctor``: print what ``taskgate.doctor.config_checks`` (the configuration) or
``taskgate.doctor.token_verdict`` (``--token``) found; exit 1 on any failure.

A local command: it reads this host's keys and database, as a server on it would.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from taskgate.cli.backend import require_local
from taskgate.cli.common import (
    JsonOption,
    console,
    fail,
    parse_ti_id,
    print_json,
    settings_from_env,
)

if TYPE_CHECKING:
    import uuid

    from taskgate.doctor.config_checks import Check
    from taskgate.doctor.token_verdict import Verdict
    from taskgate.settings import Settings

HELP = (
    "Check the configuration the way a server uses it: signing key, JWKS, accepted keys, "
    "audience/issuer, database, clock, schema, Fernet keys. Each check prints ok or FAIL "
    "and, on failure, the fix.\n\n"
    "With --token TOKEN ('-': read it from stdin), say why this server would accept or "
    "refuse that token (with --ti, for that task instance); the token is never printed. "
    "Exit code 1 on any failure or refusal."
)

_STATUS = {"ok": "ok  ", "fail": "FAIL", "skip": "skip"}


def doctor(
    token: str | None = typer.Option(
        None, "--token", metavar="TOKEN", show_default=False,
        help="A task token to judge; '-' reads it from stdin (keeps it out of the process list).",
    ),
    ti: str | None = typer.Option(
        None, "--ti", metavar="TI_ID", show_default=False,
        help="With --token: the task instance the token is meant for.",
    ),
    json_output: bool = JsonOption,
) -> None:
    require_local("doctor")
    if ti is not None and token is None:
        raise fail("--ti goes with --token", 2)
    ti_id = parse_ti_id(ti) if ti is not None else None
    settings = settings_from_env()
    if token is None:
        _configuration(settings, json_output)
    else:
        raw = sys.stdin.read().strip() if token == "-" else token.strip()
        _token(settings, raw, ti_id, json_output)


def _configuration(settings: Settings, json_output: bool) -> None:
    import asyncio

    from taskgate.doctor.config_checks import diagnose

    checks = asyncio.run(diagnose(settings))
    failed = [check for check in checks if check.failed]
    if json_output:
        print_json({"ok": not failed, "checks": [check.as_dict() for check in checks]})
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            _line(check, width)
        summary = f"{len(failed)} of {len(checks)} checks failed" if failed else "all checks passed"
        console.print(summary, markup=False, highlight=False)
    if failed:
        raise typer.Exit(1)


def _line(check: Check, width: int) -> None:
    console.print(f"{_STATUS[check.status]}  {check.name:<{width}}  {check.detail}",
                  markup=False, highlight=False)
    if check.fix:
        console.print(f"{'':4}  {'':<{width}}  fix: {check.fix}", markup=False, highlight=False)


def _token(settings: Settings, raw: str, ti_id: uuid.UUID | None, json_output: bool) -> None:
    import asyncio

    from taskgate.doctor.token_verdict import CannotJudge, judge_token

    try:
        verdict: Verdict = asyncio.run(judge_token(settings, raw, ti=ti_id))
    except CannotJudge as exc:
        raise fail(f"{exc} (`taskgate doctor` checks the configuration)") from None
    if json_output:
        print_json(verdict.as_dict())
    else:
        head = "accepted" if verdict.accepted else f"refused: {verdict.reason}"
        console.print(head, markup=False, highlight=False)
        for line in verdict.explanation:
            console.print(f"  {line}", markup=False, highlight=False)
    if not verdict.accepted:
        raise typer.Exit(1)
