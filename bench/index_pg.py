"""The PostgreSQL index at scale: batched ingest rate and QIDO latency of the common shapes
(DESIGN.md §4 and §5; issue 5 asks for PostgreSQL against SQLite).

    python -m bench.index_pg --studies 20000
    python -m bench.index_pg --url postgresql://postgres@127.0.0.1:5432/test --studies 100000

Uses the synthetic archive and query shapes of `bench.index_scale` (the SQLite measurement),
so the figures compare directly with `python -m bench.index_scale --studies N`. The archive
goes into a fresh schema of the database (dropped at the end unless `--keep`), vacuumed and
analysed before the queries as autovacuum would leave it; commits are
durable (`synchronous_commit = on`) unless `--no-durable`. After the bulk fill, the ingest
rate is also measured with STOW-sized batches (`--small-batch`, 32 instances per commit, as
the ingest service commits) from several threads at once, as concurrent requests would.
This is a measurement, not a test: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import secrets

import orjson
import psycopg

from bench.index_scale import (
    Archive,
    add_arguments,
    keys_of,
    measure,
    small_batches,
    timed_fill,
)
from hounsfield.adapters.index.postgres import PostgresIndex
from hounsfield.adapters.index.postgres.read import PG
from hounsfield.adapters.index.sql.query import candidate_statements
from hounsfield.domain.query import Query


def stored_keys(url: str, schema: str) -> Archive:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        return keys_of(lambda sql: conn.execute(sql).fetchall())


def plan(url: str, schema: str, query: Query) -> str:
    """PostgreSQL's plan of the first keyset page of the main candidate statement."""
    sql, params = candidate_statements(query, PG, keyset=True)[0]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        rows = conn.execute(f"EXPLAIN {sql}", [*params, 0, 101]).fetchall()
    lines = [str(r[0]).strip() for r in rows]
    return " | ".join(line for line in lines if "->" in line or line.startswith("Limit"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_arguments(parser, studies=20_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--schema", help="schema to fill (default: a fresh one)")
    parser.add_argument("--keep", action="store_true", help="keep the schema; reuse if filled")
    parser.add_argument("--no-durable", action="store_true")
    args = parser.parse_args(argv)

    schema = args.schema or f"bench_{secrets.token_hex(4)}"
    index = PostgresIndex(args.url, schema=schema, durable=not args.no_durable, max_connections=8)
    try:
        index.migrate()
        reuse = args.keep and bool(index.stats())
        if reuse:
            archive = stored_keys(args.url, schema)
            filled: dict[str, object] = {"reused": True}
        else:
            archive, filled = timed_fill(index, args.studies, args.batch)
        with psycopg.connect(args.url, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{schema}"')
            # as autovacuum leaves a settled archive: statistics, and the visibility map
            # without which no index-only scan is index-only (a bulk load sets none)
            for (table,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
            ).fetchall():
                conn.execute(f'VACUUM (ANALYZE) "{schema}"."{table}"')
            size = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'r'",
                (schema,),
            ).fetchone()
        [stats] = index.stats()
        print(
            f"{stats.patients:,} patients, {stats.studies:,} studies, {stats.series:,} series,"
            f" {stats.instances:,} instances; {int(size[0] or 0) / 2**20 if size else 0:,.0f} MiB"
            " in PostgreSQL"
        )
        results = measure(index.query, lambda q: plan(args.url, schema, q), archive, args.repeat)
        small = (
            small_batches(index, args.small_studies, args.small_batch, args.threads)
            if args.small_studies
            else {}
        )
        if args.json:
            report = {
                "backend": "postgresql",
                "fill": filled,
                "small_batches": small,
                "stats": stats.__dict__ if hasattr(stats, "__dict__") else str(stats),
                "shapes": results,
            }
            args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2, default=str))
    finally:
        index.close()
        if not args.keep:
            with psycopg.connect(args.url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
