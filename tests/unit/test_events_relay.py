"""The outbox relay, its durable position and lock, the CloudEvents envelope, and how
bootstrap chooses a bus by URL (docs/adr/0009-events.md, docs/events.md)."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from hounsfield.adapters.bus.inprocess import InProcessBus
from hounsfield.adapters.index.sqlite import SqliteIndex
from hounsfield.bootstrap import bus_opener
from hounsfield.config import ConfigError, load_settings
from hounsfield.ports.index import Event
from hounsfield.services.cloudevents import (
    MalformedEventError,
    decode,
    default_source,
    encode,
    to_cloudevent,
)
from hounsfield.services.events import (
    IndexRelayPosition,
    LeaseLostError,
    OutboxRelay,
    RelayPosition,
    run_relay,
)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[SqliteIndex]:
    index = SqliteIndex(tmp_path / "index.db", durable=False)
    index.migrate()
    yield index
    index.close()


def _write_events(index: SqliteIndex, count: int, partition: str = "default") -> None:
    """Outbox rows without instances: commit writes the events even with nothing pending."""
    index.commit(
        [],
        [
            Event("hounsfield.study.deleted", partition, {"studyInstanceUID": f"1.2.{n}"})
            for n in range(count)
        ],
    )


def test_cloudevent_envelope_round_trips() -> None:
    event = Event(
        "hounsfield.instance.stored",
        "p1",
        {"studyInstanceUID": "1.2", "seriesInstanceUID": "1.2.3", "sopInstanceUID": "1.2.3.4"},
        seq=42,
        time=datetime(2026, 11, 25, 19, 0, tzinfo=UTC),
    )
    doc = to_cloudevent(event, default_source("MY AE"))
    assert doc["specversion"] == "1.0"
    assert doc["id"] == "p1:42"
    assert doc["source"] == "urn:hounsfield:MY%20AE"
    assert doc["time"] == "2026-11-25T19:00:00Z"
    assert doc["subject"] == "studies/1.2/series/1.2.3/instances/1.2.3.4"
    assert doc["sequence"] == "42" and doc["partition"] == "p1"
    assert decode(encode(event, "urn:x")) == event
    with pytest.raises(MalformedEventError):
        decode(b'{"specversion": "0.3"}')
    with pytest.raises(MalformedEventError):
        decode(b"not json")


def test_relay_publishes_in_order_and_remembers_its_position(
    index: SqliteIndex, tmp_path: Path
) -> None:
    _write_events(index, 5)
    bus = InProcessBus()
    bus.declare("g")
    position = RelayPosition(tmp_path / "pos.json", "sqlite:///x", durable=False)
    relay = OutboxRelay(index, bus, position, batch=2)
    assert relay.drain() == 5
    got = bus.fetch("g", 10, 0)
    assert [d.event.seq for d in got] == [1, 2, 3, 4, 5]
    assert position.load() == 5
    # A restarted relay continues after the saved position.
    _write_events(index, 1)
    again = OutboxRelay(index, bus, RelayPosition(tmp_path / "pos.json", "sqlite:///x"))
    assert again.drain() == 1
    assert [d.event.seq for d in bus.fetch("g", 10, 0)] == [6]
    # Another index (a fresh database) starts from the beginning.
    assert RelayPosition(tmp_path / "pos.json", "sqlite:///other").load() == 0


class FailingBus(InProcessBus):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    def publish(self, events: Sequence[Event]) -> None:
        if self.fail:
            raise ConnectionError("broker down")
        super().publish(events)


def test_a_failed_publish_does_not_advance_the_position(index: SqliteIndex, tmp_path: Path) -> None:
    _write_events(index, 3)
    bus = FailingBus()
    bus.declare("g")
    position = RelayPosition(tmp_path / "pos.json", "u", durable=False)
    relay = OutboxRelay(index, bus, position)
    with pytest.raises(ConnectionError):
        relay.relay_once()
    assert position.load() == 0
    bus.fail = False
    assert relay.drain() == 3
    assert [d.event.seq for d in bus.fetch("g", 10, 0)] == [1, 2, 3]


def test_only_one_relay_holds_the_lock(tmp_path: Path) -> None:
    first = RelayPosition(tmp_path / "pos.json", "u")
    second = RelayPosition(tmp_path / "pos.json", "u")
    assert first.try_lock()
    assert not second.try_lock()
    first.unlock()
    assert second.try_lock()
    second.unlock()


def test_unreadable_position_restarts_from_zero(tmp_path: Path) -> None:
    (tmp_path / "pos.json").write_bytes(b"{garbage")
    assert RelayPosition(tmp_path / "pos.json", "u").load() == 0
    (tmp_path / "pos.json").write_bytes(orjson.dumps({"index_url": "u", "seq": 9}))
    assert RelayPosition(tmp_path / "pos.json", "u").load() == 9


def test_background_relay_task_publishes_new_events(index: SqliteIndex, tmp_path: Path) -> None:
    bus = InProcessBus()
    bus.declare("g")
    position = RelayPosition(tmp_path / "pos.json", "u", durable=False)

    async def scenario() -> list[int]:
        task = asyncio.create_task(run_relay(index, lambda: bus, position, poll_seconds=0.02))
        await asyncio.to_thread(_write_events, index, 2)
        got: list[int] = []
        for _ in range(200):
            got += [d.event.seq for d in bus.fetch("g", 10, 0)]
            if len(got) >= 2:
                break
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return got

    assert asyncio.run(scenario()) == [1, 2]
    assert position.try_lock()  # released on cancellation
    position.unlock()


def test_bus_url_setting_defaults_to_inprocess_and_rejects_unknown_schemes() -> None:
    assert load_settings(environ={}).bus_url == "inprocess://"
    with pytest.raises(ConfigError, match="bus_url"):
        load_settings(environ={"HOUNSFIELD_BUS_URL": "kafka://broker:9092"})
    assert isinstance(bus_opener("inprocess://", "urn:x")(), InProcessBus)


@pytest.mark.parametrize(
    ("url", "client", "extra"),
    [
        ("redis://127.0.0.1:6379/0", "redis", "redis"),
        ("amqp://guest:guest@127.0.0.1/", "pika", "amqp"),
        ("nats://127.0.0.1:4222", "nats", "nats"),
    ],
)
def test_missing_bus_client_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, client: str, extra: str
) -> None:
    import sys

    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".", maxsplit=1)[0] == client:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    for module in list(sys.modules):
        if module.startswith("hounsfield.adapters.bus.") and not module.endswith(
            ("inprocess", "options")
        ):
            monkeypatch.delitem(sys.modules, module)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ConfigError, match=rf"pip install 'hounsfield\[{extra}\]'"):
        bus_opener(url, "urn:x")


def test_index_lease_makes_one_relay_of_many_and_hands_over_its_position(
    tmp_path: Path,
) -> None:

    index = SqliteIndex(tmp_path / "index.db", durable=False)
    index.migrate()
    try:
        index.commit([], [Event("t", "default", {"n": n}) for n in range(5)])
        bus = InProcessBus()
        bus.declare("g")
        first = IndexRelayPosition(index, "first")
        second = IndexRelayPosition(index, "second")
        assert first.try_lock() and not second.try_lock()
        OutboxRelay(index, bus, first).drain()
        index.commit([], [Event("t", "default", {"n": 5})])
        first.unlock()
        assert second.try_lock()
        assert OutboxRelay(index, bus, second).drain() == 1  # continues, no re-publication
        with pytest.raises(LeaseLostError):
            first.save(99)  # fenced: it no longer holds the lease
        assert len(bus.fetch("g", 100, 0.1)) == 6
    finally:
        index.close()


def test_index_position_adopts_the_legacy_file_once(tmp_path: Path) -> None:

    legacy = RelayPosition(tmp_path / "pos.json", "u", durable=False)
    legacy.save(3)
    index = SqliteIndex(tmp_path / "index.db", durable=False)
    index.migrate()
    try:
        position = IndexRelayPosition(index, "me", legacy=legacy)
        assert position.try_lock() and position.load() == 3
        position.save(4)
        assert position.try_lock() and position.load() == 4
    finally:
        index.close()
