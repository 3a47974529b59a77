"""model_metrics keeps one figure per (model, version, metric, dataset)."""

from db.model_metrics import list_metrics, record_metric
from db.pool import connection


def test_recording_twice_replaces_the_figure(clean_db):
    with connection() as conn, conn.transaction():
        record_metric(
            conn,
            model_name="embedder",
            model_version="v1",
            metric_name="top1",
            value=0.9,
            dataset="synthetic",
        )
        record_metric(
            conn,
            model_name="embedder",
            model_version="v1",
            metric_name="top1",
            value=0.95,
            dataset="synthetic",
        )
        record_metric(
            conn,
            model_name="embedder",
            model_version="v2",
            metric_name="top1",
            value=0.97,
            dataset="synthetic",
        )
    with connection() as conn:
        rows = list_metrics(conn, model_name="embedder")
    assert [(r.model_version, r.metric_value) for r in rows] == [("v1", 0.95), ("v2", 0.97)]
