"""The embedded broker hands each message over whole, to exactly one consumer."""

from __future__ import annotations

import threading
from pathlib import Path

from kombu import Connection, Queue


def _connection(folder: Path) -> Connection:
    import pipeline.broker  # noqa: F401 - registers the transport

    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder.parent / "control"),
        "polling_interval": 0.001,
    }
    return Connection("cardscanfs://", transport_options=options)


def test_concurrent_producers_and_consumers_see_every_message_once(tmp_path):
    folder = tmp_path / "queue"
    folder.mkdir()
    queue = Queue("scans", routing_key="scans")
    n_producers, per_producer = 3, 100
    received: list[str] = []
    lock = threading.Lock()
    done = threading.Event()

    def produce(p: int) -> None:
        with _connection(folder) as conn:
            producer = conn.Producer(serializer="json")
            for i in range(per_producer):
                producer.publish(
                    {"id": f"{p}-{i}", "pad": "x" * 2000}, routing_key="scans", declare=[queue]
                )

    def consume() -> None:
        with _connection(folder) as conn, conn.SimpleQueue(queue) as simple:
            while not (done.is_set() and not len(simple)):
                try:
                    message = simple.get(timeout=0.05)
                except simple.Empty:
                    continue
                assert message.payload["pad"] == "x" * 2000
                with lock:
                    received.append(message.payload["id"])
                message.ack()

    consumers = [threading.Thread(target=consume) for _ in range(2)]
    producers = [threading.Thread(target=produce, args=(p,)) for p in range(n_producers)]
    for t in consumers + producers:
        t.start()
    for t in producers:
        t.join()
    done.set()
    for t in consumers:
        t.join(30)
    expected = {f"{p}-{i}" for p in range(n_producers) for i in range(per_producer)}
    assert sorted(received) == sorted(expected)
