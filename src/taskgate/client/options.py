"""What the sync and async clients are configured with, and its defaults."""

from __future__ import annotations

import os
import ssl
from typing import Any

import httpx

import taskgate
from taskgate.wire.http import CLIENT_KEEP_ALIVE_SECONDS, EXECUTION_PREFIX

API_URL_ENV = "TASKGATE_API_URL"
CA_BUNDLE_ENV = "TASKGATE_CA_BUNDLE"
DEFAULT_API_URL = f"http://127.0.0.1:8080{EXECUTION_PREFIX}"
# Connecting should be quick; an answer may wait for a busy database (the server gives up
# on a pool wait after 2 s and on a statement after 10 s by default).
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = f"taskgate-client/{taskgate.__version__}"


def api_url(explicit: str | None = None) -> str:
    """The Execution API base URL: ``explicit``, else ``$TASKGATE_API_URL``, else the
    local default. It includes the ``/execution`` prefix."""
    return explicit or os.environ.get(API_URL_ENV) or DEFAULT_API_URL


class CaBundleError(ValueError):
    """``$TASKGATE_CA_BUNDLE`` names no file of PEM CA certificates."""


def server_verification() -> ssl.SSLContext | bool:
    """How an https server's certificate is checked, for every taskgate client (the
    Execution API client and the remote CLI): against the CA certificates in the PEM file
    ``$TASKGATE_CA_BUNDLE`` names (instead of the default ones), else httpx's default
    (certifi's bundle, or ``$SSL_CERT_FILE``/``$SSL_CERT_DIR``). Never switched off."""
    path = os.environ.get(CA_BUNDLE_ENV)
    if not path:
        return True
    try:
        return ssl.create_default_context(cafile=path)
    except ssl.SSLError:  # before OSError, of which it is one
        raise CaBundleError(f"${CA_BUNDLE_ENV}={path}: no PEM CA certificate in it") from None
    except OSError as exc:
        raise CaBundleError(f"${CA_BUNDLE_ENV}={path}: {exc.strerror or exc}") from None


def http_options(
    base_url: str, timeout: float | httpx.Timeout | None, transport: Any, *,
    user_agent: str = USER_AGENT,
) -> dict[str, Any]:
    """The httpx client options of every taskgate client (the Execution API client, the
    worker's, the control API client)."""
    options = {
        "base_url": base_url,
        "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
        "transport": transport,
        "headers": {"User-Agent": user_agent},
        "follow_redirects": False,  # a redirect must not carry the token or key elsewhere
        "limits": httpx.Limits(  # httpx's default pool sizes
            max_connections=100, max_keepalive_connections=20,
            keepalive_expiry=CLIENT_KEEP_ALIVE_SECONDS,
        ),
    }
    if transport is None:  # a given transport (in_process) has no network to verify
        options["verify"] = server_verification()
    return options
