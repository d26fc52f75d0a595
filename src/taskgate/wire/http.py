"""Names on the wire that the server and the client share: the API's path prefixes,
header names and formats, and the values of a DAG's token binding."""

from enum import StrEnum

# The Execution API's path prefix (the client's base URL ends in it), and the prefix of
# each of its areas under it.
EXECUTION_PREFIX = "/execution"
HEALTH = "/health"
TASK_INSTANCES = "/task-instances"
TASK_RESCHEDULES = "/task-reschedules"
TASK_STATE_STORE = "/store/ti"
DAG_RUNS = "/dag-runs"
CONNECTIONS = "/connections"
VARIABLES = "/variables"
XCOMS = "/xcoms"

# How long an idle keep-alive connection lives. `taskgate serve` closes one after
# SERVER_KEEP_ALIVE_SECONDS; a client stops reusing one a second earlier, so it never sends
# a request on a connection the server is closing at that instant (the request would be
# lost on the wire, and /run is not sent twice).
SERVER_KEEP_ALIVE_SECONDS = 5
CLIENT_KEEP_ALIVE_SECONDS = 4.0

# A fresh execution token, on the answer to /run (exchanged for the workload token) and
# on any answer whose token was close to expiry.
REFRESHED_TOKEN_HEADER = "Refreshed-API-Token"
DPOP_HEADER = "DPoP"  # the request header that carries a DPoP proof (RFC 9449 §4.1)
DPOP_NONCE_HEADER = "DPoP-Nonce"  # the server's nonce for the next proofs (RFC 9449 §8)
# The API version (a date) a request speaks; answers name the served one.
API_VERSION_HEADER = "Airflow-API-Version"
# Echoed on the answer and bound to the request's log lines.
CORRELATION_ID_HEADER = "correlation-id"
# On every refusal (401/403/409, and the other 4xx a service answers): the stable,
# machine-readable reason (``token_expired``, ``subject_mismatch``, ``revoked``, ...),
# while the body keeps the wording the Task SDK expects.
REASON_HEADER = "Taskgate-Reason"
# How many map indexes pushed an XCom key (HEAD of the XCom): "map_indexes N".
XCOM_COUNT_HEADER = "Content-Range"
XCOM_COUNT_UNIT = "map_indexes"


def asgi_name(header: str) -> bytes:
    """A header name as ASGI carries it: lower-case bytes."""
    return header.lower().encode("latin-1")


class TokenBinding(StrEnum):
    """A DAG's ``token_binding`` (control API, ``taskgate dags add --token-binding``, and
    ``TASKGATE_TOKEN_BINDING`` for DAGs without one): ``dpop``, its tasks start only with a
    DPoP proof, so their execution tokens are bound to a key; ``bearer``, unbound too."""

    BEARER = "bearer"
    DPOP = "dpop"
