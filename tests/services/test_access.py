"""The access policy as a table: who may read and write what."""

import uuid

import pytest

from taskgate.services import access


def requester(team):
    return access.Requester(uuid.uuid4(), "dag", "run", "task", -1, team)


@pytest.mark.parametrize(
    "ti_team,entry_team,read,write",
    [
        (None, None, True, True),  # no team: global entries only
        (None, "a", False, False),
        ("a", None, True, False),  # a team reads global entries but does not change them
        ("a", "a", True, True),
        ("a", "b", False, False),
    ],
)
def test_variable_and_connection_policy(ti_team, entry_team, read, write):
    r = requester(ti_team)
    assert access.can_read_entry(r, entry_team) is read
    assert access.can_write_entry(r, entry_team) is write


@pytest.mark.parametrize(
    "target,read,write",
    [
        (("dag", "run", "task", -1), True, True),  # its own XCom
        (("dag", "run", "task", 0), True, False),  # another map index of its task
        (("dag", "run", "other", -1), True, False),  # another task of its run
        (("dag", "older-run", "task", -1), True, False),  # its task in another run
        (("other-dag", "run", "task", -1), False, False),  # another DAG
    ],
)
def test_xcom_policy(target, read, write):
    r = requester(None)
    dag_id, run_id, task_id, map_index = target
    assert access.can_read_dag_data(r, dag_id) is read
    assert access.can_write_xcom(r, dag_id, run_id, task_id, map_index) is write
