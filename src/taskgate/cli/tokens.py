"""``taskgate tokens``: mint and inspect task tokens (for operators and tests)."""

from __future__ import annotations

import typer

from taskgate.cli.common import (
    console,
    fail,
    parse_ti_id,
    print_json,
    runtime_from_env,
    with_runtime,
)
from taskgate.tokens import InvalidToken, TokenType

app = typer.Typer(help="Task tokens.", no_args_is_help=True)


@app.command()
def mint(
    ti: str = typer.Option(..., "--ti", help="Task instance id (the token's subject)."),
    scope: TokenType = typer.Option(TokenType.EXECUTION, "--scope"),
    ttl: int | None = typer.Option(None, "--ttl", min=1, help="Lifetime in seconds."),
) -> None:
    """Print a signed token for a task instance."""
    ti_id = parse_ti_id(ti)
    runtime = runtime_from_env()
    if runtime.issuer is None:
        raise fail("this node has no signing key")
    typer.echo(runtime.issuer.issue(ti_id, scope, ttl=ttl))


@app.command()
def revoke(
    ti: str = typer.Option(..., "--ti", help="Task instance whose tokens to invalidate."),
) -> None:
    """Invalidate every token issued for a task instance until now (all replicas, within 1 s)."""
    ti_id = parse_ti_id(ti)
    mark = with_runtime(lambda runtime: runtime.lifecycle.revoke_tokens(ti_id))
    console.print(f"tokens of {ti_id} issued before {mark:.3f} are revoked", highlight=False)


@app.command()
def inspect(token: str) -> None:
    """Validate a token against the configured keys and print its claims."""
    runtime = runtime_from_env()
    try:
        validated = runtime.validator.validate(token)
    except InvalidToken as exc:
        print_json({"valid": False, "reason": exc.reason})
        raise typer.Exit(1) from None
    print_json({"valid": True, "type": validated.token_type.value, "claims": validated.claims})
