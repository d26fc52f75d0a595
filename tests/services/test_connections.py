import json

import pytest

from taskgate.services.connections import parse_uri
from taskgate.services.errors import InvalidInput


def test_full_uri():
    fields = parse_uri("google-cloud-platform://us%2Fer:p%40ss%3Aword@host.example:6543/my%2Fdb?a=1&b=two")
    assert fields.conn_type == "google_cloud_platform"
    assert (fields.login, fields.password) == ("us/er", "p@ss:word")
    assert (fields.host, fields.port, fields.schema) == ("host.example", 6543, "my/db")
    assert json.loads(fields.extra) == {"a": "1", "b": "two"}


def test_extra_as_json_and_minimal_uri():
    fields = parse_uri('http://h?__extra__={"k": [1, 2]}')
    assert json.loads(fields.extra) == {"k": [1, 2]}
    assert parse_uri("sqlite://").host is None


@pytest.mark.parametrize("uri", ["no-scheme-here", "postgres://h:notaport/db", "http://h?__extra__={bad"])
def test_invalid_uris_are_refused_with_a_reason(uri):
    with pytest.raises(InvalidInput):
        parse_uri(uri)
