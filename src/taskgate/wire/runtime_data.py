"""Bodies and answers of the variable, connection and XCom routes."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
)

# Keys and ids travel in URL paths: printable text only (no NUL or other control
# characters, which one backend would store and the other refuse).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


def _finite(value: Any) -> Any:
    # NaN and Infinity are not JSON (RFC 8259); one backend would refuse them and the
    # other would hand back documents no client can parse. Walked iteratively: depth is
    # the client's choice.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise ValueError("NaN and Infinity are not valid JSON numbers")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


FiniteJson = Annotated[JsonValue, AfterValidator(_finite)]


class MessageResponse(BaseModel):
    message: str


class VariableResponse(BaseModel):
    key: str
    value: str | None


class VariableKeysResponse(BaseModel):
    keys: list[str]
    total_entries: int


class VariablePostBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    val: str | None = Field(validation_alias=AliasChoices("val", "value"))
    description: str | None = None


class ConnectionResponse(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    conn_id: str
    conn_type: str
    host: str | None
    schema_: str | None = Field(alias="schema")
    login: str | None
    password: str | None
    port: int | None
    extra: str | None


class XComResponse(BaseModel):
    key: str
    value: JsonValue


class TaskStateStorePutBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: JsonValue
    expires_at: AwareDatetime | None = None


class TaskStateStoreResponse(BaseModel):
    value: JsonValue
