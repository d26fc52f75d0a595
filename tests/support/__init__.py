"""What the tests share besides fixtures (those are in ``tests/conftest.py``): request
bodies and tokens (``api``), processes of the CLI and ``taskgate serve`` (``processes``),
reading the database behind a test's back (``database``)."""
