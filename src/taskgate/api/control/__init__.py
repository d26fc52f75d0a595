"""The control API, served under ``/control/v1``: what an orchestrator does over the
network with an operator key (``taskgate.security.operator_auth``)."""
