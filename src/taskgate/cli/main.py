"""``taskgate``: the control plane and the server, on the same settings and database.

Operator commands act on the local database, or with ``--server``/``$TASKGATE_SERVER``
through that server's control API (``taskgate.cli.backend``). Every module here imports
only typer at the top (``taskgate.cli.common`` says why).
"""

from __future__ import annotations

from pathlib import Path

import typer

from taskgate.cli import (
    audit,
    connections,
    dags,
    doctor,
    events,
    keys,
    operators,
    runs,
    task_instances,
    tokens,
    variables,
    worker,
    xcoms,
)
from taskgate.cli.backend import KEY_ENV, SERVER_ENV, Target, require_local, select
from taskgate.cli.common import (
    JsonOption,
    console,
    fail,
    print_json,
    print_table,
    runtime_from_env,
    settings_from_env,
)

app = typer.Typer(
    name="taskgate",
    help="taskgate: a secure Task Execution API for task workers.\n\n"
    "Operator commands (dags, runs, ti, variables, connections, xcoms, tokens revoke, "
    "operators, events, audit) act on the local database, or with --server (or "
    "$TASKGATE_SERVER) on that server through its control API, with an operator key.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def main(
    ctx: typer.Context,
    server: str | None = typer.Option(
        None, "--server", envvar=SERVER_ENV, metavar="URL", show_default=False,
        help="Call this taskgate server's control API (https://host/) instead of using the "
        "local database.",
    ),
    key: str | None = typer.Option(
        None, "--key", envvar=KEY_ENV, metavar="KEY", show_default=False,
        help="Operator key for --server (tgk_...); prefer the environment variable, which "
        "other users cannot see in the process list.",
    ),
) -> None:
    source = ctx.get_parameter_source("key")
    if key and not server and source is not None and source.name == "COMMANDLINE":
        raise fail(f"--key is for a server: add --server URL or set ${SERVER_ENV}", 2)
    select(Target(server or None, key or None))


db_app = typer.Typer(help="Database schema (on the server's host).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(dags.app, name="dags")
app.add_typer(runs.app, name="runs")
app.add_typer(task_instances.app, name="ti")
app.add_typer(variables.app, name="variables")
app.add_typer(connections.app, name="connections")
app.add_typer(tokens.app, name="tokens")
app.add_typer(xcoms.app, name="xcoms")
app.add_typer(audit.app, name="audit")
app.add_typer(worker.app, name="worker")
app.add_typer(operators.app, name="operators")


# TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3's are OpenSSL's, untouched.
# Named because uvicorn before 0.48 set a TLS 1.0-era list by default. Python's contexts
# refuse TLS 1.0/1.1 anyway; this list has no suite those versions could agree on either.
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"


def _tls_problem(cert: Path, key: Path, cert_name: str, key_name: str) -> str | None:
    """What keeps ``cert`` and ``key`` from serving HTTPS, or None. Checked before the
    server starts: uvicorn finds out only in each worker process, with a traceback, and
    would ask on the terminal for the passphrase of an encrypted key."""
    import ssl

    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        x509.load_pem_x509_certificates(cert.read_bytes())
    except OSError as exc:
        return f"{cert_name} {cert}: {exc.strerror or exc}"
    except ValueError:
        return f"{cert_name} {cert}: no PEM certificate in it"
    try:
        load_pem_private_key(key.read_bytes(), password=None)
    except OSError as exc:
        return f"{key_name} {key}: {exc.strerror or exc}"
    except TypeError:  # cryptography's answer to an encrypted key without a password
        return f"{key_name} {key}: the key is encrypted; taskgate serve needs it unencrypted"
    except (ValueError, UnsupportedAlgorithm):
        return f"{key_name} {key}: no PEM private key in it"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # as uvicorn makes it
    context.set_ciphers(TLS_CIPHERS)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            return f"{key_name} {key} is not the private key of the certificate in {cert}"
        return f"{cert_name} {cert} with {key_name} {key}: {exc}"
    return None


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8080, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes (each a full replica)."),
    access_log: bool = typer.Option(
        True, help="Log one event per request (http.request); /metrics counts them anyway."
    ),
    timeout_graceful_shutdown: int | None = typer.Option(
        None,
        "--timeout-graceful-shutdown",
        min=1,
        help="Seconds a stop (SIGTERM/SIGINT) waits for requests in flight before cancelling "
        "them. Default: TASKGATE_GRACEFUL_SHUTDOWN_SECONDS (20).",
    ),
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", metavar="FILE", show_default=False,
        help="Serve HTTPS (TLS 1.2+) with this PEM certificate (intermediates after it); "
        "needs --tls-key. Default: TASKGATE_TLS_CERT_FILE; unset: plain HTTP.",
    ),
    tls_key: Path | None = typer.Option(
        None, "--tls-key", metavar="FILE", show_default=False,
        help="The certificate's unencrypted PEM private key. Default: TASKGATE_TLS_KEY_FILE.",
    ),
) -> None:
    """Run the Execution API server (creates data dir, database and signing key if missing)."""
    import asyncio
    import logging.config

    import structlog
    import uvicorn
    from rich.markup import escape

    from taskgate import logs
    from taskgate.cli.signals import clean_exit_on_stop_signals
    from taskgate.tracing import TracingUnavailable, require_opentelemetry
    from taskgate.wire.http import EXECUTION_PREFIX, SERVER_KEEP_ALIVE_SECONDS

    settings = settings_from_env()
    cert = tls_cert or settings.tls_cert_file
    key = tls_key or settings.tls_key_file
    if (cert is None) != (key is None):
        raise fail(
            "--tls-cert and --tls-key (TASKGATE_TLS_CERT_FILE, TASKGATE_TLS_KEY_FILE) go "
            "together: give both, or neither for plain HTTP",
            2,
        )
    if cert is not None and key is not None:
        problem = _tls_problem(
            cert, key,
            "--tls-cert" if tls_cert else "TASKGATE_TLS_CERT_FILE",
            "--tls-key" if tls_key else "TASKGATE_TLS_KEY_FILE",
        )
        if problem:
            raise fail(escape(problem))
    runtime = runtime_from_env(settings=settings)
    if settings.otel_enabled:
        try:
            require_opentelemetry()
        except TracingUnavailable as exc:
            raise fail(escape(str(exc))) from None
    # From here on the process writes only log events, in TASKGATE_LOG_FORMAT: its own,
    # uvicorn's (log_config below) and every worker's.
    log_config = logs.stdlib_config(settings.log_format, settings.log_level, access_log=access_log)
    logging.config.dictConfig(log_config)
    logs.configure(settings.log_format, settings.log_level, trace_ids=settings.otel_enabled)
    log = structlog.get_logger("taskgate.serve")

    async def prepare() -> None:
        # The check and the close of its connections in one event loop: a connection
        # closed from another loop than its own cannot be closed cleanly.
        try:
            await runtime.prepare_database()
        finally:
            await runtime.aclose()

    try:
        asyncio.run(prepare())  # migrate once, before any worker starts
    except Exception as exc:  # noqa: BLE001 - any startup failure is reported, not traced
        log.error("database not ready", error=str(exc))
        raise typer.Exit(1) from None
    keys = runtime.keys
    if keys.created_key_file:
        signing_key = f"created {keys.created_key_file}"
    elif keys.signing is not None:
        signing_key = f"{keys.signing.algorithm} kid={keys.signing.kid}"
    else:
        signing_key = "none (validation-only node)"
    log.info(
        "server starting",
        database=settings.effective_database_url
        if settings.uses_embedded_database
        else "(TASKGATE_DATABASE_URL)",
        signing_key=signing_key,
        execution_api=f"{'http' if cert is None else 'https'}://{host}:{port}{EXECUTION_PREFIX}",
        workers=workers,
        access_log=access_log,
    )
    with clean_exit_on_stop_signals():
        uvicorn.run(
            "taskgate.api.asgi:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=log_config,
            log_level=None,  # the levels are log_config's
            loop=settings.event_loop,
            # uvicorn's plain access line is replaced by the http.request event, which
            # log_config switches on or off.
            access_log=False,
            timeout_keep_alive=SERVER_KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=timeout_graceful_shutdown
            or settings.graceful_shutdown_seconds,
            ssl_certfile=cert,
            ssl_keyfile=key,
            ssl_ciphers=None if cert is None else TLS_CIPHERS,
        )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the schema migrations to the configured database."""
    import asyncio

    require_local("db upgrade")
    from taskgate.db import migrate
    from taskgate.runtime import engine_from_settings

    settings = settings_from_env()

    async def main() -> str | None:
        engine = engine_from_settings(settings)  # no keys needed for this
        try:
            await migrate.upgrade(engine)
            return await migrate.current_revision(engine)
        finally:
            await engine.dispose()

    console.print(f"database at revision {asyncio.run(main())}")


@app.command()
def routes(json_output: bool = JsonOption) -> None:
    """Every route with its allowed token types, subject binding and token gate, or the
    operator role it needs and whose DAGs it reaches (control API: "own" teams' or "all",
    for operators without teams only)."""
    from taskgate.api.app import create_app
    from taskgate.security.route_policy import route_policies

    policies = route_policies(create_app().routes)
    if json_output:
        print_json([p.as_dict() for p in policies])
        return
    rows = [
        (p.method, p.path, ", ".join(p.token_types) or "none", p.subject or "-",
         p.token_gate or "-", p.operator_role or "-", p.operator_teams or "-")
        for p in policies
    ]
    print_table(
        "Routes",
        ["method", "path", "token types", "subject", "token gate", "operator role",
         "operator teams"],
        rows,
    )


app.command("events", help=events.HELP)(events.events)
app.command("doctor", help=doctor.HELP)(doctor.doctor)
