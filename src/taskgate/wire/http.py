"""Names on the wire that the server and the client share: headers and the API prefix."""

# The Execution API's path prefix (the client's base URL ends in it).
EXECUTION_PREFIX = "/execution"

# A fresh execution token, on the answer to /run (exchanged for the workload token) and
# on any answer whose token was close to expiry.
REFRESHED_TOKEN_HEADER = "Refreshed-API-Token"
# The API version (a date) a request speaks; answers name the served one.
API_VERSION_HEADER = "Airflow-API-Version"
# Echoed on the answer and bound to the request's log lines.
CORRELATION_ID_HEADER = "correlation-id"


def asgi_name(header: str) -> bytes:
    """A header name as ASGI carries it: lower-case bytes."""
    return header.lower().encode("latin-1")
