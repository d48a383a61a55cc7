"""Fixtures of the end-to-end suites besides tests/conftest.py's `server`."""

from tests.e2e.authsupport import secured

__all__ = ["secured"]
