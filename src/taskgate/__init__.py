"""taskgate: a standalone, secure Task Execution API."""

__version__ = "0.1.0"
