"""Prefix matching in SQL with the user's text taken literally (``%`` and ``_`` escaped)."""

from __future__ import annotations

from typing import Any


def starts_with(column: Any, prefix: str) -> Any:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f"{escaped}%", escape="\\")
