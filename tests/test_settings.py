from pathlib import Path

import pytest

from taskgate.runtime import load_key_material
from taskgate.settings import Settings
from taskgate.tokens import keys as keylib


def test_defaults_need_no_setting(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path(".taskgate")
    assert settings.effective_database_url.endswith(".taskgate/taskgate.db")
    assert (settings.audience, settings.execution_token_ttl, settings.workload_token_ttl,
            settings.leeway) == ("urn:taskgate:task", 600, 3600, 10)


def test_environment_and_toml_file(monkeypatch, tmp_path):
    config = tmp_path / "taskgate.toml"
    config.write_text('audience = "urn:from-file"\nleeway = 3\n')
    monkeypatch.setenv("TASKGATE_CONFIG_FILE", str(config))
    monkeypatch.setenv("TASKGATE_LEEWAY", "7")
    settings = Settings()
    assert settings.audience == "urn:from-file"
    assert settings.leeway == 7  # the environment wins over the file


def test_first_start_creates_an_ed25519_key_once(tmp_path):
    settings = Settings(data_dir=tmp_path / "d")
    first = load_key_material(settings)
    assert first.created_key_file == tmp_path / "d" / "signing-key.pem"
    assert first.signing.algorithm == "EdDSA"
    second = load_key_material(settings)
    assert second.created_key_file is None and second.signing.kid == first.signing.kid


def test_jwks_only_node_validates_but_cannot_sign(tmp_path):
    import json

    signer = keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(keylib.jwks_document([signer.verification])))
    material = load_key_material(Settings(data_dir=tmp_path / "v", jwks_url=str(jwks)))
    assert material.signing is None
    assert [k.kid for k in material.verification] == [signer.kid]
    assert not (tmp_path / "v" / "signing-key.pem").exists()


def test_jwt_secret_selects_hs512(tmp_path):
    material = load_key_material(Settings(data_dir=tmp_path, jwt_secret=keylib.generate_secret()))
    assert material.signing.algorithm == "HS512"
    assert not (tmp_path / "signing-key.pem").exists()


def test_requests_in_flight_default_from_the_pool(tmp_path) -> None:
    assert Settings(data_dir=tmp_path).effective_max_requests_in_flight == 64  # SQLite
    postgres = "postgresql+asyncpg://u@db/taskgate"
    assert Settings(data_dir=tmp_path, database_url=postgres).effective_max_requests_in_flight == 160
    bigger = Settings(data_dir=tmp_path, database_url=postgres, db_pool_size=20, db_max_overflow=20)
    assert bigger.effective_max_requests_in_flight == 320
    assert Settings(data_dir=tmp_path, max_requests_in_flight=7).effective_max_requests_in_flight == 7


def test_the_event_loop_is_asyncio_unless_uvloop_is_chosen(monkeypatch, tmp_path) -> None:
    # asyncio accepts every waiting connection at each turn (docs/operations.md, "Overload").
    assert Settings(data_dir=tmp_path).event_loop == "asyncio"
    monkeypatch.setenv("TASKGATE_EVENT_LOOP", "uvloop")
    assert Settings(data_dir=tmp_path).event_loop == "uvloop"
    monkeypatch.setenv("TASKGATE_EVENT_LOOP", "tokio")
    with pytest.raises(ValueError, match="event_loop"):
        Settings(data_dir=tmp_path)
