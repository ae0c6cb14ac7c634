"""Example third-party plugins used by the unit tests (see :mod:`tests.plugins.example`)."""
