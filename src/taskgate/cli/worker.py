"""``taskgate worker run``: run a command as a task instance."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from taskgate.cli.common import fail, runtime_from_env, settings_from_env
from taskgate.client.retry import RetryPolicy

if TYPE_CHECKING:
    from taskgate.worker.console import WorkerConsole

app = typer.Typer(help="Run commands as task instances.", no_args_is_help=True)

# taskgate.client.options.DEFAULT_API_URL, spelled out here: importing it loads httpx,
# which --help does not need (tests/cli/test_cli_imports.py checks that they agree).
DEFAULT_API_URL = "http://127.0.0.1:8080/execution"

# A worker must get its heartbeats and, above all, its final state through: it keeps
# retrying idempotent calls for up to five minutes of outage.
WORKER_RETRY = RetryPolicy(attempts=30, first_delay=0.25, max_delay=10.0, deadline=300.0)


class _NoteHandler(logging.Handler):
    """The client's retry warnings, as worker notes (console and log file)."""

    def __init__(self, console: WorkerConsole) -> None:
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.note(record.getMessage())


RUN_HELP = (
    "Start a queued task instance, run CMD as it, heartbeat while it runs and report its "
    "outcome (exit 0: success; otherwise up_for_retry or failed, by the TI's tries).\n\n"
    "The command's output goes to the console and the log file; JSON it writes to the file "
    "named by $TASKGATE_XCOM_FILE becomes the return_value XCom. SIGTERM and SIGINT are "
    "forwarded to it (the TI is then reported failed). Exits with the command's exit code."
)


@app.command(help=RUN_HELP, no_args_is_help=True)
def run(
    workload_json: str = typer.Argument(
        ..., metavar="WORKLOAD_JSON",
        help="What `taskgate ti queue TI_ID --json` printed: a file path, or - for stdin.",
    ),
    command: list[str] = typer.Argument(
        ..., metavar="-- CMD [ARGS...]", help="The command to run, after --.", show_default=False
    ),
    api_url_option: str | None = typer.Option(
        None, "--api-url", metavar="URL",
        help=f"Execution API base URL (default: $TASKGATE_API_URL, else {DEFAULT_API_URL}).",
        show_default=False,
    ),
    in_process: bool = typer.Option(
        False, "--in-process",
        help="Serve the API inside this process on the local database and keys (the settings "
        "`taskgate serve` would use) instead of calling a server. Every security check runs.",
    ),
    heartbeat_interval: float = typer.Option(5.0, min=0.1, help="Seconds between heartbeats."),
    stop_timeout: float = typer.Option(
        10.0, min=0, help="Seconds a command has to stop after SIGTERM/SIGINT before SIGKILL."
    ),
    log_file: Path | None = typer.Option(
        None, help="Where the command's output is logged "
        "(default: <data_dir>/logs/dag_id=D/run_id=R/task_id=T/attempt=N.log).",
        show_default=False,
    ),
    dpop: bool = typer.Option(
        True, "--dpop/--no-dpop",
        help="Prove a key generated in memory for this run on every request (DPoP), so the "
        "execution token is bound to it and worthless without it; --no-dpop: bearer tokens.",
    ),
) -> None:
    from taskgate.client import Client
    from taskgate.client.in_process import InProcessServer
    from taskgate.client.options import CaBundleError
    from taskgate.worker.console import WorkerConsole
    from taskgate.worker.logfile import default_log_file
    from taskgate.worker.runner import TaskRun, WorkerError, WorkerOptions
    from taskgate.worker.workload import WorkloadError, read_workload

    if in_process and api_url_option:
        raise fail("--api-url and --in-process exclude each other", 2)
    try:
        workload = read_workload(workload_json)
    except WorkloadError as exc:
        raise fail(str(exc), 2) from None
    settings = settings_from_env()
    path = log_file or default_log_file(settings.data_dir, workload.ti)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = path.open("ab")
    except OSError as exc:
        raise fail(f"cannot open log file {path}: {exc.strerror}") from None
    options = WorkerOptions(heartbeat_interval=heartbeat_interval, stop_timeout=stop_timeout)
    with ExitStack() as stack:
        stack.enter_context(log)
        console = WorkerConsole(log)
        handler = _NoteHandler(console)
        client_log = logging.getLogger("taskgate.client")
        client_log.addHandler(handler)
        stack.callback(client_log.removeHandler, handler)
        if in_process:
            runtime = runtime_from_env(settings=settings)  # reports a bad key file itself
            try:
                server = stack.enter_context(InProcessServer(runtime))
            except Exception as exc:  # noqa: BLE001 - any startup failure is reported, not traced
                raise fail(f"database not ready: {exc}") from None
            api = server.client(token=workload.token, retry=WORKER_RETRY, dpop=dpop)
        else:
            try:
                api = Client(api_url_option, token=workload.token, retry=WORKER_RETRY, dpop=dpop)
            except CaBundleError as exc:
                raise fail(str(exc)) from None
        stack.enter_context(api)
        console.note(f"log file: {path}")
        try:
            code = TaskRun(api, workload, console, options).execute(command)
        except WorkerError as exc:
            raise fail(str(exc), exc.exit_code) from None
    raise typer.Exit(code)
