"""Prometheus metrics: this process's upload counters, and service-wide figures read from the
database and the broker at scrape time (so every API replica reports the same totals)."""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

from db import jobs, scans, uploads
from db.pool import connection

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
UPLOAD_REQUESTS = Counter(
    "cardscan_upload_requests",
    "Upload requests answered by this process, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
UPLOAD_SECONDS = Histogram(
    "cardscan_upload_seconds",
    "Wall time of POST /v1/scans in this process",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)


class ServiceCollector:
    """Scans by status, uploads, queue depth and stage latencies, read on each scrape."""

    def describe(self) -> list:
        return []  # nothing to query at registration; names appear on the first scrape

    def collect(self):  # noqa: ANN201
        try:
            with connection() as conn, conn.transaction():
                by_status = scans.count_scans_by_status(conn)
                n_uploads = uploads.count_uploads(conn)
                stages = jobs.stage_latency_summary(conn)
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail with the database
            log.warning("metrics: database unavailable: %s", exc)
        else:
            family = GaugeMetricFamily("cardscan_scans", "Scans by status", labels=["status"])
            for status, n in by_status.items():
                family.add_metric([status], n)
            yield family
            yield GaugeMetricFamily("cardscan_uploads", "Stored uploads", value=n_uploads)
            latency = GaugeMetricFamily(
                "cardscan_stage_latency_ms",
                "Stage latency over the last 1000 jobs",
                labels=["stage", "quantile"],
            )
            for stage, summary in stages.items():
                latency.add_metric([stage, "0.5"], summary["p50"])
                latency.add_metric([stage, "0.95"], summary["p95"])
            yield latency
        try:
            from pipeline.enqueue import queue_depth

            depth = queue_depth()
        except Exception as exc:  # noqa: BLE001
            log.warning("metrics: broker unavailable: %s", exc)
        else:
            yield GaugeMetricFamily(
                "cardscan_queue_depth", "Messages waiting in the scans queue", value=depth
            )


REGISTRY.register(ServiceCollector())
