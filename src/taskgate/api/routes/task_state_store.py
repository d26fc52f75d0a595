"""The task state store. Security policy: execution tokens, bound to the token's own TI
(``ti:self``): a TI reads and writes only its own keys."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Security, status

from taskgate.api.deps import DbSession
from taskgate.api.responses import NOT_FOUND
from taskgate.security import TaskRoute, require_auth
from taskgate.services import task_state_store as store
from taskgate.wire.http import TASK_STATE_STORE
from taskgate.wire.runtime_data import TaskStateStorePutBody, TaskStateStoreResponse

router = APIRouter(
    prefix=TASK_STATE_STORE,
    tags=["Task State Store"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth, scopes=["ti:self"])],
    responses=NOT_FOUND,
)

Key = Annotated[str, Path(min_length=1, max_length=512)]


@router.get("/{task_instance_id}/{key:path}")
async def get_task_state(
    task_instance_id: uuid.UUID, key: Key, session: DbSession
) -> TaskStateStoreResponse:
    return TaskStateStoreResponse(value=await store.read(session, task_instance_id, key))


@router.put("/{task_instance_id}/{key:path}", status_code=status.HTTP_204_NO_CONTENT)
async def set_task_state(
    task_instance_id: uuid.UUID, key: Key, body: TaskStateStorePutBody, session: DbSession
) -> None:
    await store.write(session, task_instance_id, key, body.value, body.expires_at)


@router.delete("/{task_instance_id}/{key:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task_state(task_instance_id: uuid.UUID, key: Key, session: DbSession) -> None:
    await store.remove(session, task_instance_id, key)


@router.delete("/{task_instance_id}", status_code=status.HTTP_204_NO_CONTENT)
async def clear_task_state(task_instance_id: uuid.UUID, session: DbSession) -> None:
    await store.remove(session, task_instance_id)
