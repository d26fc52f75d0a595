"""The fault matrix's table (tests/integration/test_fault_matrix.py), printed at the end
of the run by ``pytest_terminal_summary`` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable

HEADER = (
    "| backend | fault | answers seen | slowest answer | recovery |",
    "|---|---|---|---|---|",
)
FAULT_TABLE: list[Callable[[], str]] = []  # one line per fault, read at the end
