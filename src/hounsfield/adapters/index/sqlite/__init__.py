"""The embedded SQLite index adapter (`sqlite:///path/to/index.db`)."""

from hounsfield.adapters.index.sqlite.store import SqliteIndex

__all__ = ["SqliteIndex"]
