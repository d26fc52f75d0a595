"""Secrets at rest: what the database holds is ciphertext, and rotation keeps it readable."""

import pytest
from sqlalchemy import text

from taskgate.runtime import Runtime
from taskgate.services import connections, variables
from taskgate.services.secrets import SecretBox, SecretKeyError, prepend_key, read_key_file
from taskgate.settings import Settings


async def raw_rows(runtime, sql):
    async with runtime.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql)))]


async def test_values_and_connection_secrets_are_encrypted(runtime):
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "token", "s3cr3t-value")
        fields = connections.parse_uri("postgres://u:pa55word@h/db?sslkey=private")
        await connections.put(session, runtime.secrets, "db", fields)
    dump = repr(await raw_rows(runtime, "select * from variables"))
    dump += repr(await raw_rows(runtime, "select * from connections"))
    for plaintext in ("s3cr3t-value", "pa55word", "private"):
        assert plaintext not in dump
    async with runtime.sessionmaker() as session:
        assert (await variables.get(session, runtime.secrets, "token")).value == "s3cr3t-value"
        got = await connections.get(session, runtime.secrets, "db")
    assert (got.fields.password, got.fields.login) == ("pa55word", "u")


async def test_rotation_reencrypts_under_the_new_key(settings):
    runtime = Runtime.from_settings(settings)
    await runtime.prepare_database()
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "k", "v")
    old_keys = read_key_file(settings.fernet_key_file)
    await runtime.aclose()

    keys = prepend_key(settings.fernet_key_file)
    assert keys[1:] == old_keys
    rotated = Runtime.from_settings(settings)
    async with rotated.sessionmaker() as session:
        assert await variables.reencrypt(session, rotated.secrets) == 1
    await rotated.aclose()
    new_only = Runtime.from_settings(Settings(data_dir=settings.data_dir, database_url=settings.database_url, fernet_keys=keys[0]))
    async with new_only.sessionmaker() as session:
        assert (await variables.get(session, new_only.secrets, "k")).value == "v"
    old_only = Runtime.from_settings(Settings(data_dir=settings.data_dir, database_url=settings.database_url, fernet_keys=old_keys[0]))
    async with old_only.sessionmaker() as session:
        with pytest.raises(SecretKeyError) as err:
            await variables.get(session, old_only.secrets, "k")
    assert "v" not in str(err.value).split()
    await new_only.aclose()
    await old_only.aclose()


def test_bad_keys_are_refused():
    with pytest.raises(SecretKeyError):
        SecretBox(["not-a-fernet-key"])
    with pytest.raises(SecretKeyError):
        SecretBox([])
