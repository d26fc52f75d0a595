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

A refusal is 403 with ``reason`` ``access_denied`` in the body and, in the
``Taskgate-Reason`` header, the rule that refused: ``other_team`` (an entry of another
team), ``other_dag`` (data of another DAG), ``other_task_instance`` (another TI's XCom),
``unknown_task_instance`` (the token's TI does not exist).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from taskgate.services.errors import AccessDenied
from taskgate.services.token_standing import Standing

# The rules a refusal names (its Taskgate-Reason).
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


def requester(ti_id: uuid.UUID, standing: Standing | None) -> Requester:
    """The requester behind a token, from its TI's standing (``token_standing``)."""
    if standing is None:
        # A token for a TI that does not exist (any more) grants nothing.
        raise AccessDenied("unknown_task_instance", "The token's task instance does not exist")
    return Requester(
        ti_id, standing.dag_id, standing.run_id, standing.task_id, standing.map_index,
        standing.team,
    )


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
