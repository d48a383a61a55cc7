"""What does the audit trail cost? (issue 6, docs/security.md "Audit trail")

- `record`: the cost a request pays: building one PS3.15 message and queueing it (µs per
  message, the caller's thread only; the writer runs beside it).
- `writer`: how many messages per second the background writer appends to the hash-chained
  trail (XML, hash, index rows), in batches, on the SQLite and (with --postgres) PostgreSQL
  index.
- `verify`: how many records per second `hounsfield audit verify` checks.

    python -m bench.audit [--messages 20000] [--postgres postgresql://...]

A measurement, not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

from hounsfield.bootstrap import open_index
from hounsfield.domain.audit import Outcome
from hounsfield.ports.index import IndexStore
from hounsfield.services.audit import Actor, AuditService


def run(index: IndexStore, label: str, messages: int) -> None:
    audit = AuditService(index.audit, source_id="BENCH", queue_size=messages + 10)
    actor = Actor("MODALITY", "10.0.0.1")
    studies = [f"1.2.826.0.1.3680043.2.1125.{n}" for n in range(100)]
    audit._start()
    started = time.perf_counter()
    for n in range(messages):
        audit.record(
            audit.instances_stored(
                actor,
                "default",
                {studies[n % 100]: {"1.2.840.10008.5.1.4.1.1.2": 1}},
                Outcome.SUCCESS,
            )
        )
    queued = time.perf_counter() - started
    audit.flush(600)
    written = time.perf_counter() - started
    audit.close()
    started = time.perf_counter()
    state = audit.verify()
    verified = time.perf_counter() - started
    assert not state.breaks and state.checked >= messages
    print(
        f"{label:10s} record {queued / messages * 1e6:6.1f} µs/msg"
        f"   writer {messages / written:8.0f} msg/s"
        f"   verify {state.checked / verified:8.0f} rec/s   ({messages} messages)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--postgres", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        index = open_index(f"sqlite:///{Path(tmp) / 'index.db'}")
        try:
            run(index, "sqlite", args.messages)
        finally:
            index.close()
    if args.postgres:
        schema = f"bench_audit_{secrets.token_hex(4)}"
        index = open_index(f"{args.postgres}?schema={schema}")
        try:
            run(index, "postgresql", args.messages)
        finally:
            index.close()
            import psycopg  # the audit trail refuses deletes: drop the bench's schema whole

            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    main()
