"""``taskgate tokens``: mint and inspect task tokens (for operators and tests), revoke a
TI's tokens."""

from __future__ import annotations

from enum import Enum

import typer

from taskgate.cli.backend import backend, require_local
from taskgate.cli.common import console, fail, parse_ti_id, print_json, runtime_from_env

app = typer.Typer(help="Task tokens.", no_args_is_help=True)


class Scope(str, Enum):
    """``taskgate.tokens.TokenType``'s values, without importing the token code."""

    EXECUTION = "execution"
    WORKLOAD = "workload"


@app.command()
def mint(
    ti: str = typer.Option(..., "--ti", help="Task instance id (the token's subject)."),
    scope: Scope = typer.Option(Scope.EXECUTION, "--scope"),
    ttl: int | None = typer.Option(None, "--ttl", min=1, help="Lifetime in seconds."),
) -> None:
    """Print a signed token for a task instance (on the server's host: it needs the
    signing key)."""
    require_local("tokens mint")
    from taskgate.tokens import TokenType

    ti_id = parse_ti_id(ti)
    runtime = runtime_from_env()
    if runtime.issuer is None:
        raise fail("this node has no signing key")
    typer.echo(runtime.issuer.issue(ti_id, TokenType(scope.value), ttl=ttl))


@app.command()
def revoke(
    ti: str = typer.Option(..., "--ti", help="Task instance whose tokens to invalidate."),
) -> None:
    """Invalidate every token issued for a task instance until now (all replicas, within 1 s)."""
    ti_id = parse_ti_id(ti)
    mark = backend().revoke_tokens(str(ti_id))["tokens_not_before"]
    console.print(f"tokens of {ti_id} issued before {mark:.3f} are revoked", highlight=False)


@app.command()
def inspect(token: str) -> None:
    """Validate a token against the configured keys and print its claims (on the
    server's host: it needs the keys)."""
    require_local("tokens inspect")
    from taskgate.tokens import InvalidToken

    runtime = runtime_from_env()
    try:
        validated = runtime.validator.validate(token)
    except InvalidToken as exc:
        print_json({"valid": False, "reason": exc.refusal.code, "detail": exc.reason})
        raise typer.Exit(1) from None
    print_json({"valid": True, "type": validated.token_type.value, "claims": validated.claims})
