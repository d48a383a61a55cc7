"""Contract of the EventBus port, run against every adapter and the real local brokers
(Redis 127.0.0.1:6379, RabbitMQ 127.0.0.1:5672, NATS JetStream 127.0.0.1:4222; override with
HOUNSFIELD_TEST_REDIS_URL, _AMQP_URL, _NATS_URL). An unreachable broker skips locally and fails
in CI (`require_component`). Each test uses its own stream/exchange name, deleted afterwards,
so the suite runs in parallel."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hounsfield.adapters.bus.inprocess import InProcessBus
from hounsfield.ports.bus import EventBus
from hounsfield.ports.index import Event
from hounsfield.services.events import Deduplicator, consume, consume_once
from tests.conftest import require_component
from tests.servicesupport import BUS_URLS, reachable

SOURCE = "urn:hounsfield:TEST"
NAMES = {"redis": "Redis", "amqp": "RabbitMQ", "nats": "NATS JetStream"}
ACK_WAIT = 1.0


def _open(kind: str, name: str) -> EventBus:
    url = f"{BUS_URLS[kind]}?name={name}&ack_wait={ACK_WAIT}"
    if kind == "redis":
        from hounsfield.adapters.bus.redis import RedisStreamBus

        return RedisStreamBus(url, SOURCE)
    if kind == "amqp":
        from hounsfield.adapters.bus.amqp import AmqpBus

        return AmqpBus(url, SOURCE)
    from hounsfield.adapters.bus.nats import NatsJetStreamBus

    return NatsJetStreamBus(url, SOURCE)


BusFactory = Callable[[], EventBus]


@pytest.fixture(params=["inprocess", "redis", "amqp", "nats"])
def bus_factory(request: pytest.FixtureRequest) -> Iterator[BusFactory]:
    """Opens buses on one fresh stream/exchange: several calls are several processes' views of
    the same broker objects (the in-process bus is one object)."""
    kind: str = request.param
    opened: list[EventBus] = []
    if kind == "inprocess":
        bus = InProcessBus(ack_wait=ACK_WAIT)
        yield lambda: bus
        bus.close()
        return
    require_component(NAMES[kind], reachable(BUS_URLS[kind]))
    name = f"hftest-{secrets.token_hex(4)}"

    def factory() -> EventBus:
        opened.append(_open(kind, name))
        return opened[-1]

    yield factory
    destroy: Any = getattr(opened[-1], "destroy", None) if opened else None
    if destroy is not None:
        if kind == "amqp":
            destroy(["g1", "g2", "crash", "order", "loop"])
        else:
            destroy()
    for bus in opened:
        bus.close()


def _event(seq: int, partition: str = "default", kind: str = "hounsfield.instance.stored") -> Event:
    return Event(
        type=kind,
        partition=partition,
        data={"studyInstanceUID": "1.2.3", "sopInstanceUID": f"1.2.3.{seq}"},
        seq=seq,
        time=datetime(2026, 11, 25, 12, 0, seq % 60, tzinfo=UTC),
    )


def _drain(bus: EventBus, group: str, want: int, timeout: float = 10.0) -> list[Any]:
    got: list[Any] = []
    end = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < end:
        batch = bus.fetch(group, want - len(got), 0.5)
        got.extend(batch)
    return got


def test_publish_then_fetch_round_trips_events(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.declare("g1")
    events = [_event(1), _event(2, "other", "hounsfield.study.deleted")]
    bus.publish(events)
    got = _drain(bus, "g1", 2)
    assert [d.event for d in got] == events
    assert not any(d.redelivered for d in got)
    bus.ack("g1", got)
    assert bus.fetch("g1", 10, 0.2) == []


def test_every_group_gets_every_event_once(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.declare("g1")
    bus.declare("g2")
    bus.publish([_event(1), _event(2)])
    for group in ("g1", "g2"):
        got = _drain(bus, group, 2)
        assert [d.event.seq for d in got] == [1, 2]
        bus.ack(group, got)
        assert bus.fetch(group, 10, 0.2) == []


def test_nacked_event_is_delivered_again(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.declare("g1")
    bus.publish([_event(1)])
    first = _drain(bus, "g1", 1)
    bus.nack("g1", first)
    again = _drain(bus, "g1", 1)
    assert [d.event for d in again] == [first[0].event]
    bus.ack("g1", again)
    assert bus.fetch("g1", 10, ACK_WAIT + 0.5) == []


def test_unacked_event_is_redelivered_after_a_consumer_crash(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    bus.declare("crash")
    bus.publish([_event(7)])
    taken = _drain(bus, "crash", 1)
    assert len(taken) == 1
    if bus.capabilities.shared_groups:
        bus.close()  # the consumer dies without acknowledging
        bus = bus_factory()
    again = _drain(bus, "crash", 1, timeout=ACK_WAIT + 10)
    assert [d.event for d in again] == [taken[0].event]
    bus.ack("crash", again)


def test_order_is_kept_within_a_partition(bus_factory: BusFactory) -> None:
    bus = bus_factory()
    assert bus.capabilities.ordered
    bus.declare("order")
    events = [_event(i, partition=("a" if i % 2 else "b")) for i in range(1, 41)]
    for start in range(0, 40, 7):
        bus.publish(events[start : start + 7])
    got = _drain(bus, "order", 40)
    bus.ack("order", got)
    for partition in ("a", "b"):
        seqs = [d.event.seq for d in got if d.event.partition == partition]
        assert seqs == sorted(seqs) and len(seqs) == 20


def test_consumer_loop_dedupes_and_retries_failures(bus_factory: BusFactory) -> None:
    """The idempotent consumer: a failed event comes back, a duplicate is handled once."""
    bus = bus_factory()
    bus.declare("loop")
    handled: list[int] = []
    failures = {2}

    def handler(event: Event) -> None:
        if event.seq in failures:
            failures.discard(event.seq)
            raise RuntimeError("transient")
        handled.append(event.seq)

    bus.publish([_event(1), _event(2), _event(3), _event(1)])  # 1 re-published by a relay
    dedupe = Deduplicator()
    deadline = time.monotonic() + 15
    while sorted(handled) != [1, 2, 3] and time.monotonic() < deadline:
        consume_once(bus, "loop", handler, dedupe, timeout=0.5)
    assert sorted(handled) == [1, 2, 3]
    assert bus.fetch("loop", 10, 0.3) == []

    stop = threading.Event()
    worker = threading.Thread(target=consume, args=(bus, "loop", handler, stop, dedupe))
    worker.start()
    bus.publish([_event(4)])
    deadline = time.monotonic() + 10
    while 4 not in handled and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(5)
    assert handled.count(4) == 1


def test_fetch_from_an_undeclared_group_starts_it(bus_factory: BusFactory) -> None:
    """Redis, JetStream and the in-process bus create a group on first fetch (receiving events
    from then on). A RabbitMQ queue exists only once declared, so its consumers declare first
    (`services.events.consume` always does)."""
    bus = bus_factory()
    if type(bus).__name__ == "AmqpBus":
        bus.declare("g2")
    assert bus.fetch("g2", 10, 0.2) == []
    bus.publish([_event(1)])
    got = _drain(bus, "g2", 1)
    assert [d.event.seq for d in got] == [1]
    bus.ack("g2", got)
