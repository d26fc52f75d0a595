"""Figures that tests measure and the run prints at its end (``pytest_terminal_summary``
in tests/conftest.py): the fault matrix's table, the overload test's figures. The docs
quote them from such runs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

# Section title -> its lines, each read when the run ends (a row may still be filling).
REPORTS: defaultdict[str, list[Callable[[], str]]] = defaultdict(list)


def report(section: str, line: Callable[[], str] | str, *, header: tuple[str, ...] = ()) -> None:
    """Add ``line`` to ``section``; ``header`` lines open the section the first time."""
    if section not in REPORTS:
        REPORTS[section].extend(lambda text=text: text for text in header)
    REPORTS[section].append(line if callable(line) else (lambda: line))
