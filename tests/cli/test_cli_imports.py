"""The CLI starts without the server: `taskgate --help` and the remote commands load
neither SQLAlchemy nor FastAPI (nor the settings, the services or the database layer).
Start-up time itself is measured in bench/cli_startup.py, not here."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.processes import free_port

HEAVY = ("sqlalchemy", "fastapi", "starlette", "uvicorn", "alembic", "pydantic_settings",
         "taskgate.api", "taskgate.db", "taskgate.services", "taskgate.runtime",
         "taskgate.settings")


def _modules_after(*args: str, env_extra: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Run the ``taskgate`` app in a fresh interpreter with ``args``; its exit code and the
    modules it had loaded by then."""
    probe = (
        "import json, sys\n"
        "from taskgate.cli.main import app\n"
        "try:\n"
        f"    app({list(args)!r})\n"
        "except SystemExit as done:\n"
        "    code = done.code or 0\n"
        "sys.stderr.write(json.dumps([code, sorted(sys.modules)]))\n"
    )
    env = {"PATH": "/usr/bin:/bin", **(env_extra or {})}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=60, env=env)
    code, modules = json.loads(result.stderr.splitlines()[-1])
    return code, modules


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m in HEAVY or m.startswith(tuple(f"{h}." for h in HEAVY))]


@pytest.mark.parametrize("args", [["--help"], ["events", "--help"], ["ti", "list", "--help"]])
def test_help_loads_no_server_code(args: list[str]) -> None:
    code, modules = _modules_after(*args)
    assert code == 0
    assert _heavy(modules) == []
    assert "taskgate.cli.main" in modules


def test_a_remote_command_loads_no_server_code() -> None:
    server = f"http://127.0.0.1:{free_port()}"  # nobody listens: the command runs to its end
    code, modules = _modules_after("dags", "list", "--json",
                                   env_extra={"TASKGATE_SERVER": server,
                                              "TASKGATE_OPERATOR_KEY": "tgk_x"})
    assert code == 1  # no answer from the server
    assert {"taskgate.cli.remote", "taskgate.control", "httpx"} <= set(modules)
    assert _heavy(modules) == []


def test_a_local_command_does_use_the_database(tmp_path) -> None:
    # The probe above would pass vacuously if no command ever loaded these.
    code, modules = _modules_after("dags", "list", "--json",
                                   env_extra={"TASKGATE_DATA_DIR": str(tmp_path / "data")})
    assert code == 0
    assert {"sqlalchemy", "taskgate.services.control", "taskgate.cli.local"} <= set(modules)


def test_the_cli_spells_the_values_it_does_not_import() -> None:
    from taskgate.cli import keys, operators, tokens, worker
    from taskgate.client.options import DEFAULT_API_URL
    from taskgate.services.operators import Role
    from taskgate.tokens import TokenType
    from taskgate.tokens.keys import KeyType

    assert [r.value for r in operators.Role] == [r.value for r in Role]
    assert [k.value for k in keys.KeyType] == [k.value for k in KeyType]
    assert [s.value for s in tokens.Scope] == [t.value for t in TokenType]
    assert worker.DEFAULT_API_URL == DEFAULT_API_URL
