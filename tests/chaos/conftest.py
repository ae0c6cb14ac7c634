"""Fixtures of the chaos suite: the cluster tests' stack, re-exported."""

from tests.cluster.conftest import config, stack  # noqa: F401
