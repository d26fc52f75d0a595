"""``python -m taskgate``: the same as the ``taskgate`` command."""

from taskgate.cli.main import app

app()
