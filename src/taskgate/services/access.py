"""The access policy: which task instance may read or write which runtime data.

One table of rules, applied by the variable, connection and XCom services:

| data                    | read                                 | write / delete                      |
|-------------------------|--------------------------------------|-------------------------------------|
| variable, connection    | global entries and the TI's team's   | entries of the TI's own team only   |
|                         |                                      | (a TI without a team: global ones)  |
| XCom                    | any XCom of the TI's own DAG         | the TI's own (dag, run, task, map)  |
| other TIs, DAG runs     | those of the TI's own DAG            | -                                   |
| task state store        | the TI's own (bound by ``ti:self``)  | the TI's own                        |

A TI's team is its DAG's team (``taskgate dags add DAG --team T``), None for no team.

A DAG may also declare what its tasks may read (``services.declared_access``): then a
variable or connection must be both declared and readable by the rule above, and another
DAG's XComs are readable when declared. The declaration is checked first, before the
entry is looked up, so an undeclared key is refused the same whether it exists or not.

A refusal is 403 with ``reason`` ``access_denied`` in the body and, in the
``Taskgate-Reason`` header, the rule that refused: ``not_declared`` (outside the DAG's
declaration), ``other_team`` (an entry of another team), ``other_dag`` (data of another
DAG), ``other_task_instance`` (another TI's XCom), ``unknown_task_instance`` (the token's
TI does not exist).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from taskgate.services.declared_access import Allowance, Entry, allowance_of
from taskgate.services.errors import AccessDenied
from taskgate.services.token_standing import Standing

# The rules a refusal names (its Taskgate-Reason).
NOT_DECLARED = "not_declared"
OTHER_TEAM = "other_team"
OTHER_DAG = "other_dag"
OTHER_TASK_INSTANCE = "other_task_instance"


@dataclass(frozen=True, slots=True)
class Requester:
    """The task instance on whose behalf a request runs, as the policy sees it."""

    ti_id: uuid.UUID
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    team: str | None
    # What its DAG declares it may read; None: no declaration, the team rule alone.
    allowance: Allowance | None = None
    # For the read audit: the try being run, and the worker's host that started it.
    try_number: int = 0
    hostname: str | None = None


def requester(
    ti_id: uuid.UUID, standing: Standing | None, *, require_declared: bool = False
) -> Requester:
    """The requester behind a token, from its TI's standing (``token_standing``).
    ``require_declared``: a DAG without a declaration reads nothing."""
    if standing is None:
        # A token for a TI that does not exist (any more) grants nothing.
        raise AccessDenied("unknown_task_instance", "The token's task instance does not exist")
    return Requester(
        ti_id, standing.dag_id, standing.run_id, standing.task_id, standing.map_index,
        standing.team, allowance_of(standing.access, standing.task_id, require_declared),
        standing.try_number, standing.hostname,
    )


def check_declared(requester: Requester, entry: Entry, name: str) -> None:
    """The declaration's rule, checked before the entry is looked up."""
    if requester.allowance is not None and not requester.allowance.may_read(entry, name):
        raise denied(f"read {entry} '{name}': DAG '{requester.dag_id}' does not declare it",
                     NOT_DECLARED)


def check_entry_read(requester: Requester, entry: Entry, name: str, entry_team: str | None) -> None:
    """The team rule for reading a stored entry of ``entry_team``."""
    if not can_read_entry(requester, entry_team):
        raise denied(f"read {entry} '{name}'", OTHER_TEAM)


def can_read_entry(requester: Requester, entry_team: str | None) -> bool:
    return entry_team is None or entry_team == requester.team


def can_write_entry(requester: Requester, entry_team: str | None) -> bool:
    return entry_team == requester.team


def can_read_dag_data(requester: Requester, dag_id: str) -> bool:
    """XComs, task instances and runs of a DAG: readable by that DAG's own TIs only."""
    return dag_id == requester.dag_id


def check_dag_read(requester: Requester, dag_id: str, what: str) -> None:
    if not can_read_dag_data(requester, dag_id):
        raise denied(f"read {what} of DAG '{dag_id}'", OTHER_DAG)


def check_xcom_read(requester: Requester, dag_id: str) -> None:
    """XComs of the TI's own DAG, and of the DAGs its declaration names."""
    if dag_id == requester.dag_id:
        return
    allowance = requester.allowance
    if allowance is None:
        raise denied(f"read XComs of DAG '{dag_id}'", OTHER_DAG)
    if not allowance.may_read_xcoms_of(dag_id):
        raise denied(
            f"read XComs of DAG '{dag_id}': DAG '{requester.dag_id}' does not declare it",
            NOT_DECLARED,
        )


def can_write_xcom(
    requester: Requester, dag_id: str, run_id: str, task_id: str, map_index: int
) -> bool:
    return (dag_id, run_id, task_id, map_index) == (
        requester.dag_id,
        requester.run_id,
        requester.task_id,
        requester.map_index,
    )


def denied(what: str, rule: str) -> AccessDenied:
    """The refusal of ``what`` by ``rule`` (one of the rule names above)."""
    return AccessDenied("access_denied", f"Task instance may not {what}", rule=rule)
