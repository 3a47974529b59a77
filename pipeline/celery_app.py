"""The Celery app: queue `scans`, JSON only, late acks; Redis when configured, else the
filesystem transport under var/broker (embedded, zero set-up)."""

from __future__ import annotations

import threading
from pathlib import Path

from celery import Celery
from kombu import Queue

from pipeline.broker import SCHEME
from pipeline.settings import settings

QUEUE = "scans"
PROCESS_SCAN = "pipeline.tasks.process_scan"

_lock = threading.Lock()
_app: Celery | None = None
_app_key: tuple | None = None


def broker_folder() -> Path:
    return (settings.var_dir / "broker").resolve()


def broker_config() -> dict:
    """Broker URL and transport options from the current settings."""
    if settings.broker_url:
        return {
            "broker_url": settings.broker_url,
            # Redis redelivers an unacked message after this; see
            # https://docs.celeryq.dev/en/stable/getting-started/backends-and-brokers/redis.html
            "broker_transport_options": {
                "visibility_timeout": settings.broker_visibility_timeout_s,
                **(
                    {"global_keyprefix": settings.broker_key_prefix}
                    if settings.broker_key_prefix
                    else {}
                ),
            },
        }
    folder = broker_folder()
    queue_dir, control_dir = folder / "queue", folder / "control"
    for path in (queue_dir, control_dir):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "broker_url": f"{SCHEME}://",
        "broker_transport_options": {
            # One folder both ways: producers write where consumers read.
            "data_folder_in": str(queue_dir),
            "data_folder_out": str(queue_dir),
            "control_folder": str(control_dir),
            "store_processed": False,
            # The transport polls the folder; 10 ms keeps the queue hop far below a scan.
            "polling_interval": 0.01,
        },
    }


def make_app() -> Celery:
    """A Celery app configured from the current settings."""
    app = Celery("cardscan", include=["pipeline.tasks"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=QUEUE,
        task_queues=[Queue(QUEUE, routing_key=QUEUE)],
        task_routes={PROCESS_SCAN: {"queue": QUEUE}},
        # A task is acknowledged after it ran, and requeued if its process dies
        # (https://docs.celeryq.dev/en/stable/userguide/configuration.html#task-acks-late);
        # safe because process_scan is idempotent.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Models load in worker_process_init; the default 4 s would kill a child mid-load.
        worker_proc_alive_timeout=300,
        worker_send_task_events=False,
        broker_connection_retry_on_startup=True,
        # When the broker connection drops, the unacked message is redelivered; cancelling the
        # running task then avoids doing the same scan twice at once (Celery 6's default).
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_timeout=3,
        enable_utc=True,
        **broker_config(),
    )
    return app


def get_app() -> Celery:
    """The process's app, rebuilt if the broker settings changed (tests switch brokers)."""
    global _app, _app_key
    key = (
        settings.broker_url,
        str(settings.var_dir),
        settings.broker_visibility_timeout_s,
        settings.broker_key_prefix,
    )
    with _lock:
        if _app is None or _app_key != key:
            _app, _app_key = make_app(), key
        return _app


def queue_depth() -> int:
    """Messages waiting in the `scans` queue (0 when the queue does not exist yet)."""
    from kombu.exceptions import ChannelError

    with get_app().connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        try:
            return conn.default_channel.queue_declare(queue=QUEUE, passive=True).message_count
        except ChannelError:  # Redis drops an empty list's key: no queue means no messages
            return 0


app = get_app()
