"""The PostgreSQL index adapter (`postgresql://user@host:port/db`), for archives that scale out
over several replicas (issue 5). Needs the `postgresql` extra: psycopg 3 and psycopg-pool."""

from hounsfield.adapters.index.postgres.store import PostgresIndex

__all__ = ["PostgresIndex"]
