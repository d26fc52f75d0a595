"""Workloads as `taskgate ti queue --json` prints them, and `taskgate worker run` as a
process."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from taskgate.db.models import TaskInstance
from taskgate.runtime import Runtime
from taskgate.services import control, views
from tests.support.database import fresh_ti
from tests.support.processes import TASKGATE, serve_env


class Workloads:
    """Creates task instances and queues them, writing each workload to a file."""

    def __init__(self, runtime: Runtime, directory: Path) -> None:
        self.runtime = runtime
        self.directory = directory

    async def new_ti(self, task_id: str = "task", *, max_tries: int = 0) -> uuid.UUID:
        async with self.runtime.sessionmaker() as session:
            await control.add_dag(session, "dag")
            run_id = f"run-{uuid.uuid4().hex[:8]}"
            created = await control.create_run(session, "dag", run_id, [task_id], max_tries=max_tries)
        return created.task_instances[0].id

    async def queue(self, ti_id: uuid.UUID) -> Path:
        """`taskgate ti queue TI --json`, written to a file."""
        queued = await self.runtime.lifecycle.queue(ti_id)
        path = self.directory / f"workload-{ti_id}-{queued.ti.try_number}.json"
        path.write_text(json.dumps({"token": queued.workload_token, "ti": views.task_instance(queued.ti)}))
        return path

    async def ti(self, ti_id: uuid.UUID) -> TaskInstance:
        return await fresh_ti(self.runtime, ti_id)


def worker_env(settings) -> dict[str, str]:
    env = serve_env(settings)
    env.pop("TASKGATE_API_URL", None)
    return env


def start_worker(
    workload: Path, *command: str, env: dict[str, str], api_url: str | None = None,
    interval: float = 0.5, extra: tuple[str, ...] = (),
) -> subprocess.Popen:
    target = ["--api-url", api_url] if api_url else ["--in-process"]
    return subprocess.Popen(
        [*TASKGATE, "worker", "run", str(workload), *target,
         "--heartbeat-interval", str(interval), *extra, "--", *command],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err
