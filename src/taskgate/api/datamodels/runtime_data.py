"""Bodies and answers of the variable, connection and XCom routes."""

from __future__ import annotations

from pydantic import AliasChoices, AwareDatetime, BaseModel, ConfigDict, Field, JsonValue


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
