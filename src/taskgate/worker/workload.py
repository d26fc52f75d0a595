"""The workload a worker runs: what ``taskgate ti queue --json`` prints."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class WorkloadTI(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    dag_id: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    task_id: str = Field(min_length=1)
    map_index: int = -1
    try_number: int = Field(ge=0)


class Workload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=1)  # the workload token: starts the TI once
    ti: WorkloadTI


class WorkloadError(ValueError):
    """The workload JSON cannot be used; the message says why."""


HINT = "expected the JSON that `taskgate ti queue TI_ID --json` prints"


def read_workload(source: str) -> Workload:
    """Read the workload from a file path, or from stdin when ``source`` is ``-``."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise WorkloadError(f"cannot read workload {source!r}: {exc.strerror}") from None
    if not text.strip():
        raise WorkloadError(f"workload {source!r} is empty; {HINT}")
    try:
        data = json.loads(text)
    except ValueError:
        raise WorkloadError(f"workload {source!r} is not JSON; {HINT}") from None
    try:
        return Workload.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'document'}: {e['msg']}" for e in exc.errors()
        )
        raise WorkloadError(f"workload {source!r} is not usable ({problems}); {HINT}") from None
