"""HTTPS served by `taskgate serve --tls-cert/--tls-key` itself, and every taskgate client
checking it: a throwaway CA (tests/support/tls.py) signs the server's certificate for
127.0.0.1; the client library, `taskgate worker run` and the remote CLI trust it through
TASKGATE_CA_BUNDLE and refuse the server without it."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from taskgate.client import NO_RETRIES, Client, ServerUnavailable
from taskgate.client.options import CaBundleError
from tests.support.processes import (
    TASKGATE,
    ServeProcess,
    free_port,
    run_cli,
    serve_env,
    server_output,
    start_serve,
)
from tests.support.tls import TlsFiles, make_tls_files

pytestmark = pytest.mark.integration

# Whatever else may tell a client which CAs to trust: these tests decide it alone.
TRUST_ENV = ("TASKGATE_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture
def database_url():  # SQLite only: the database is not what TLS changes
    return None


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return make_tls_files(tmp_path / "tls")


@pytest.fixture
def local(settings) -> dict[str, str]:
    """The server host's environment (its data directory), trusting no CA of ours."""
    return {k: v for k, v in serve_env(settings).items() if k not in TRUST_ENV}


@pytest.fixture(autouse=True)
def _no_ambient_trust(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TRUST_ENV:  # for the clients made in this process
        monkeypatch.delenv(name, raising=False)


@dataclass
class Server:
    process: ServeProcess
    port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture
def server(local: dict[str, str], tls: TlsFiles) -> Iterator[Server]:
    port = free_port()
    proc = start_serve(local, port, "--tls-cert", str(tls.cert), "--tls-key", str(tls.key),
                       ca_bundle=tls.ca)
    yield Server(proc, port)
    proc.terminate()
    proc.wait(timeout=15)


def _remote_env(key: str, ca_bundle: Path | None) -> dict[str, str]:
    """Another machine: no database, no keys; only an operator key and maybe the CA."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TASKGATE_") and k not in TRUST_ENV}
    env["TASKGATE_OPERATOR_KEY"] = key
    if ca_bundle is not None:
        env["TASKGATE_CA_BUNDLE"] = str(ca_bundle)
    return env


def _taskgate(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TASKGATE, *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_client_reaches_the_server_with_the_ca_bundle(server, tls, monkeypatch) -> None:
    monkeypatch.setenv("TASKGATE_CA_BUNDLE", str(tls.ca))
    with Client(f"{server.url}/execution", retry=NO_RETRIES) as api:
        assert api.health() == {"status": "healthy", "database": "ok"}
    starting = next(json.loads(line) for line in server_output(server.process).splitlines()
                    if '"server starting"' in line)
    assert starting["execution_api"] == f"{server.url}/execution"


def test_without_the_ca_bundle_verification_refuses_the_server(server, tmp_path, monkeypatch):
    # httpx's own default (certifi's CAs) does not know the throwaway CA.
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{server.url}/execution/health")
    with (
        Client(f"{server.url}/execution", retry=NO_RETRIES) as api,
        pytest.raises(ServerUnavailable, match="CERTIFICATE_VERIFY_FAILED") as refused,
    ):
        api.health()
    assert refused.value.reason == "ConnectError"
    # A bundle replaces the default CAs: another CA's bundle is no way round the check.
    other = make_tls_files(tmp_path / "other", "other")
    monkeypatch.setenv("TASKGATE_CA_BUNDLE", str(other.ca))
    with (
        Client(f"{server.url}/execution", retry=NO_RETRIES) as api,
        pytest.raises(ServerUnavailable, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        api.health()


def test_plain_http_to_the_tls_port_is_not_served(server) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{server.port}/execution/health", timeout=5)


def test_tls_1_2_is_the_minimum(server, tls) -> None:
    def handshake(highest: ssl.TLSVersion) -> str | None:
        context = ssl.create_default_context(cafile=tls.ca)
        with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point
            warnings.simplefilter("ignore", DeprecationWarning)
            context.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets this client offer TLS 1.1
            context.minimum_version = ssl.TLSVersion.TLSv1
            context.maximum_version = highest
        with (
            socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock,
            context.wrap_socket(sock, server_hostname="127.0.0.1") as conn,
        ):
            return conn.version()

    assert handshake(ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    with pytest.raises(ssl.SSLError) as refused:
        handshake(ssl.TLSVersion.TLSv1_1)
    assert refused.value.reason != "NO_PROTOCOLS_AVAILABLE"  # the server said no, not us


def test_settings_name_the_certificate_and_key(local, tls) -> None:
    env = local | {"TASKGATE_TLS_CERT_FILE": str(tls.cert), "TASKGATE_TLS_KEY_FILE": str(tls.key)}
    port = free_port()
    proc = start_serve(env, port, ca_bundle=tls.ca)  # returns once healthy over https
    proc.terminate()
    assert proc.wait(timeout=15) == 0


def test_a_certificate_without_a_key_is_a_usage_error(local, tls) -> None:
    port = str(free_port())
    alone = run_cli(local, "serve", "--port", port, "--tls-cert", str(tls.cert), check=False)
    assert alone.returncode == 2
    assert "--tls-cert and --tls-key" in alone.stderr
    from_settings = run_cli(local | {"TASKGATE_TLS_KEY_FILE": str(tls.key)}, "serve", "--port",
                            port, check=False)
    assert from_settings.returncode == 2
    assert "--tls-cert and --tls-key" in from_settings.stderr


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("mismatched key", "is not the private key of the certificate in"),
        ("missing certificate", "No such file or directory"),
        ("key as certificate", "no PEM certificate in it"),
        ("certificate as key", "no PEM private key in it"),
    ],
)
def test_unusable_files_end_serve_with_a_message(local, tls, tmp_path, case, message) -> None:
    cert, key = tls.cert, tls.key
    if case == "mismatched key":
        key = make_tls_files(tmp_path / "other", "other").key
    elif case == "missing certificate":
        cert = tmp_path / "nowhere.pem"
    elif case == "key as certificate":
        cert = tls.key
    else:
        key = tls.cert
    done = run_cli(local, "serve", "--port", str(free_port()), "--tls-cert", str(cert),
                   "--tls-key", str(key), check=False)
    assert done.returncode == 1
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (Path(local["TASKGATE_DATA_DIR"]) / "signing-key.pem").exists()  # nothing began


def test_the_remote_cli_verifies_the_server(server, local, tls, tmp_path) -> None:
    key = json.loads(run_cli(local, "operators", "add", "ops", "--role", "reader",
                             "--json").stdout)["key"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    trusted = _taskgate(_remote_env(key, tls.ca), elsewhere,
                        "--server", server.url, "--key", key, "dags", "list", "--json")
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout) == []
    untrusted = _taskgate(_remote_env(key, None), elsewhere,
                          "--server", server.url, "dags", "list", "--json")
    assert untrusted.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr


def test_a_worker_runs_a_task_over_https(server, local, tls, tmp_path) -> None:
    run_cli(local, "dags", "add", "secure")
    created = json.loads(run_cli(local, "runs", "create", "secure", "r1", "--task", "t",
                                 "--json").stdout)
    ti_id = created["task_instances"][0]["id"]
    workload = tmp_path / "workload.json"
    workload.write_text(run_cli(local, "ti", "queue", ti_id, "--json").stdout)
    worker_env = {k: v for k, v in os.environ.items()
                  if not k.startswith("TASKGATE_") and k not in TRUST_ENV}
    worker_env |= {"TASKGATE_API_URL": f"{server.url}/execution",
                   "TASKGATE_CA_BUNDLE": str(tls.ca)}
    ran = _taskgate(worker_env, tmp_path, "worker", "run", str(workload), "--", "python", "-c",
                    "print('over https')")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(run_cli(local, "ti", "show", ti_id, "--json").stdout)["state"] == "success"


def test_a_missing_ca_bundle_is_named(tmp_path, monkeypatch) -> None:
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv("TASKGATE_CA_BUNDLE", str(missing))
    with pytest.raises(CaBundleError, match=f"TASKGATE_CA_BUNDLE={missing}: No such file"):
        Client("https://127.0.0.1:1/execution")
    done = _taskgate(_remote_env("tgk_unused", missing), tmp_path,
                     "--server", "https://127.0.0.1:1", "dags", "list")
    assert done.returncode == 1
    assert f"TASKGATE_CA_BUNDLE={missing}: No such file or directory" in done.stderr
    assert "Traceback" not in done.stderr
