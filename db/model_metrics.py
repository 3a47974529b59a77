"""SQL for `model_metrics`: one figure per model version, metric and dataset (seed 002)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.types.json import Jsonb

from db.pool import Conn


@dataclass(frozen=True)
class ModelMetric:
    model_name: str
    model_version: str
    metric_name: str
    metric_value: float
    dataset: str
    recorded_at: datetime


def record_metric(
    conn: Conn,
    *,
    model_name: str,
    model_version: str,
    metric_name: str,
    value: float,
    dataset: str = "",
    details: dict | None = None,
) -> None:
    """Insert or replace the figure for (model, version, metric, dataset)."""
    conn.execute(
        """
        INSERT INTO model_metrics (model_name, model_version, metric_name, metric_value,
                                   dataset, details)
        VALUES (%(name)s, %(version)s, %(metric)s, %(value)s, %(dataset)s, %(details)s)
        ON CONFLICT (model_name, model_version, metric_name, dataset) DO UPDATE
        SET metric_value = EXCLUDED.metric_value, details = EXCLUDED.details,
            recorded_at = now() AT TIME ZONE 'UTC'
        """,
        {
            "name": model_name,
            "version": model_version,
            "metric": metric_name,
            "value": float(value),
            "dataset": dataset,
            "details": Jsonb(details) if details else None,
        },
    )


def list_metrics(conn: Conn, *, model_name: str | None = None) -> list[ModelMetric]:
    rows = conn.execute(
        """
        SELECT model_name, model_version, metric_name, metric_value, dataset, recorded_at
        FROM model_metrics WHERE %(name)s::text IS NULL OR model_name = %(name)s
        ORDER BY model_name, model_version, metric_name, dataset
        """,
        {"name": model_name},
    ).fetchall()
    return [ModelMetric(**r) for r in rows]
